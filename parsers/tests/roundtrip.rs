//! Property: rendering a parsed configuration and parsing the text again gives the same
//! model (spans aside). Configurations are generated as ldirectord.cf text from the
//! grammar's pieces, so every generated model is one a real file can produce.

use std::path::Path;

use ldirectord_parsers::config::render::render;
use ldirectord_parsers::config::{Config, ParseOptions, Span, parse_with};
use proptest::prelude::*;

fn opts() -> ParseOptions<'static> {
    ParseOptions {
        check_files: false,
        hostname: Some("director".into()),
        ..ParseOptions::default()
    }
}

fn strip_spans(c: &mut Config) {
    for f in [&mut c.globals.fallback, &mut c.globals.fallback6]
        .into_iter()
        .flatten()
    {
        f.span = Span::default();
    }
    for v in &mut c.virtuals {
        v.span = Span::default();
        if let Some(f) = &mut v.fallback {
            f.span = Span::default();
        }
        for r in &mut v.reals {
            r.span = Span::default();
        }
        if let Some(s) = &mut v.real_sources {
            s.spans.clear();
        }
    }
}

/// Text safe inside a quoted value: no `"`, no `#` (stock strips comments in blocks).
fn safe_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 ._/:-]{1,12}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn regex_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("OK".to_owned()),
        Just("^up$".to_owned()),
        Just("a.c".to_owned()),
        "[A-Za-z0-9]{1,8}"
    ]
}

fn ipv4() -> impl Strategy<Value = String> {
    (1u8..=223, any::<u8>(), any::<u8>(), 1u8..=254)
        .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}"))
}

fn ipv6() -> impl Strategy<Value = String> {
    (any::<u16>(), any::<u16>(), 1u16..)
        .prop_map(|(a, b, c)| format!("2001:db8:{a:x}:{b:x}::{c:x}"))
}

fn real_line(six: bool) -> impl Strategy<Value = String> {
    let addr = if six {
        ipv6().prop_map(|a| format!("[{a}]")).boxed()
    } else {
        ipv4().boxed()
    };
    (
        addr,
        prop::option::of(0u16..=65535),
        prop::sample::select(vec!["gate", "masq", "ipip"]),
        prop::option::of(0u32..1000),
        prop::option::of((safe_text(), regex_text())),
        prop::option::of(1u32..1000),
        prop::option::of(1u32..1000),
    )
        .prop_map(move |(a, port, fwd, w, pair, l, u)| {
            let mut s = format!("real{}={a}", if six { "6" } else { "" });
            if let Some(p) = port {
                s += &format!(":{p}");
            }
            s += &format!(" {fwd}");
            // Stock's weight pattern is unanchored: without an explicit weight, digits
            // after a space inside the request would be taken as the weight.
            match (w, &pair) {
                (Some(w), _) => s += &format!(" {w}"),
                (None, Some(_)) => s += " 1",
                (None, None) => {}
            }
            if let Some((req, rec)) = pair {
                s += &format!(" \"{}\", \"{rec}\"", req.trim_start_matches('/'));
            }
            if let Some(l) = l {
                s += &format!(" l:{l}");
            }
            if let Some(u) = u {
                s += &format!(" u:{u}");
            }
            s
        })
}

/// Host names and addresses as real-server sources print them.
fn host() -> impl Strategy<Value = String> {
    prop_oneof!["node[0-9]{1,2}", ipv4()]
}

fn host_weights() -> impl Strategy<Value = String> {
    prop::collection::vec((host(), prop::option::of(0u32..100)), 1..4).prop_map(|items| {
        items
            .into_iter()
            .map(|(h, w)| match w {
                Some(w) => format!("{h},{w}"),
                None => h,
            })
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// The dynamic real-server directives of one block (extension), in any order after the
/// `realsource=` line.
fn real_sources() -> impl Strategy<Value = Vec<String>> {
    let source = prop_oneof![
        "[a-z][a-z0-9-]{0,12}".prop_map(|r| format!("realsource=resource {r}")),
        Just("realsource=partition".to_owned()),
        "/usr/local/bin/[a-z]{1,8}( --[a-z]{1,5}){0,2}"
            .prop_map(|c| format!("realsource=command {c}")),
        Just("realsource=command \"/usr/bin/printf '%s ' node1 node2\"".to_owned()),
        host_weights().prop_map(|l| format!("realsource=list {l}")),
    ];
    let extra = prop_oneof![
        Just("realfilter=attribute pgsql-status HS:sync|HS:potential|HS:async".to_owned()),
        Just("realfilter=attribute readable \"1\"".to_owned()),
        Just("realfilter=attribute role (primary|standby) x?".to_owned()),
        "/usr/local/bin/[a-z]{1,8}".prop_map(|c| format!("realfilter=command {c}")),
        Just("realfallback=attribute pgsql-status HS:alone".to_owned()),
        host_weights().prop_map(|w| format!("realweights={w}")),
        (
            prop::sample::select(vec!["gate", "masq", "ipip"]),
            prop::option::of(0u32..100)
        )
            .prop_map(|(f, w)| match w {
                Some(w) => format!("realdefault={f} {w}"),
                None => format!("realdefault={f}"),
            }),
    ];
    (source, prop::collection::vec(extra, 0..4)).prop_map(|(s, mut rest)| {
        // realfallback= needs a realfilter= (a config error otherwise).
        if rest.iter().any(|l| l.starts_with("realfallback="))
            && !rest.iter().any(|l| l.starts_with("realfilter="))
        {
            rest.push("realfilter=attribute readable 1".to_owned());
        }
        rest.insert(0, s);
        rest
    })
}

fn block(index: usize) -> impl Strategy<Value = String> {
    (any::<bool>(), any::<bool>())
        .prop_flat_map(move |(six, fwmark)| {
            let head = if fwmark {
                Just(format!(
                    "virtual{}={}",
                    if six { "6" } else { "" },
                    index + 1
                ))
                .boxed()
            } else if six {
                ipv6()
                    .prop_map(move |a| format!("virtual6=[{a}]:{}", 1000 + index))
                    .boxed()
            } else {
                ipv4()
                    .prop_map(move |a| format!("virtual={a}:{}", 1000 + index))
                    .boxed()
            };
            let settings = prop::collection::vec(
                prop_oneof![
                    prop::sample::select(vec![
                        "checktype=connect",
                        "checktype=negotiate",
                        "checktype=ping",
                        "checktype=external",
                        "checktype=on",
                        "checktype=off",
                        "checktype=3",
                        "service=http",
                        "service=https",
                        "service=ftp",
                        "service=sip",
                        "service=pgsql",
                        "service=dns",
                        "service=none",
                        "httpmethod=head",
                        "scheduler=rr",
                        "scheduler=wlc",
                        "quiescent=yes",
                        "quiescent=no",
                        "cleanstop=no",
                        "ops=yes",
                        "persistent=300",
                        "failurecount=3",
                        "checkinterval=7",
                        "checkport=8080",
                        "emailalertfreq=60",
                        "emailalertstatus=starting,running",
                        "emailalertstatus=none",
                        "tlsverify=yes",
                        "tlssni=yes",
                        "schedflags=sh-port",
                        "risecount=2",
                    ])
                    .prop_map(str::to_owned),
                    safe_text().prop_map(|t| format!("request=\"{t}\"")),
                    regex_text().prop_map(|t| format!("receive=\"{t}\"")),
                    safe_text().prop_map(|t| format!("login=\"{t}\"")),
                    safe_text().prop_map(|t| format!("virtualhost={}", t.trim())),
                    (1u32..100).prop_map(|t| format!("checktimeout={t}")),
                    (1u32..100).prop_map(|t| format!("negotiatetimeout={t}")),
                    "[a-z]{3,8}@example\\.org".prop_map(|t| format!("emailalert={t}")),
                    "/usr/local/bin/[a-z]{1,8}".prop_map(|t| format!("checkcommand={t}")),
                    "/usr/local/bin/[a-z]{1,8}".prop_map(|t| format!("fallbackcommand={t}")),
                ],
                0..8,
            );
            (
                head,
                prop::collection::vec(real_line(six), 0..4),
                settings,
                Just(six),
                prop::option::of(real_sources()),
            )
        })
        .prop_map(|(head, reals, settings, six, sources)| {
            let mut s = head + "\n";
            for r in reals {
                s += &format!("\t{r}\n");
            }
            for line in settings {
                // netmask/persistent only make sense per family; keep v6 from v4 masks.
                if six && line.starts_with("ops") {
                    continue;
                }
                s += &format!("    {line}\n");
            }
            for line in sources.unwrap_or_default() {
                s += &format!("\t{line}\n");
            }
            s
        })
}

fn config_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop::sample::select(vec![
                "checktimeout=4",
                "negotiatetimeout=9",
                "checkinterval=3",
                "failurecount=2",
                "quiescent=yes",
                "readdquiescent=yes",
                "cleanstop=no",
                "autoreload=yes",
                "fork=yes",
                "supervised=yes",
                "fallback=127.0.0.1:80 gate",
                "fallback=127.0.0.1 masq",
                "fallback6=[::1]:80",
                "fallbackcommand=/usr/local/bin/fb",
                "logfile=\"local0\"",
                "emailalert=\"ops@example.org\"",
                "emailalertfreq=600",
                "emailalertstatus=all",
                "smtp=mail.example.org",
                "risecount=3",
                "checkjitter=20",
                "checkspread=30",
                "checkspread=lockstep",
                "execute=other.cf",
                "callback=\"/usr/local/bin/sync\"",
                "nodeaddress=node1 10.0.0.1",
                "nodeaddress=node2 [2001:db8::2]",
                "nodeaddress=node1 10.0.0.11",
                "metrics=127.0.0.1:9595",
                "metrics=[::1]:9100",
            ]),
            0..8,
        ),
        (0usize..5).prop_flat_map(|n| (0..n).map(block).collect::<Vec<_>>()),
    )
        .prop_map(|(globals, blocks)| {
            let mut s = String::new();
            for g in globals {
                s += g;
                s.push('\n');
            }
            for b in blocks {
                s.push('\n');
                s += &b;
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn render_then_parse_gives_the_same_model(text in config_text()) {
        let first = parse_with(&text, Path::new("gen.cf"), &opts());
        let first = match first {
            Ok(p) => p.config,
            Err(e) => return Err(TestCaseError::fail(format!("generated text rejected: {}\n{text}", e.error))),
        };
        let rendered = render(&first);
        let second = parse_with(&rendered, Path::new("gen.cf"), &opts())
            .map_err(|e| TestCaseError::fail(format!("rendered text rejected: {}\n{rendered}", e.error)))?
            .config;
        let (mut a, mut b) = (first, second);
        strip_spans(&mut a);
        strip_spans(&mut b);
        prop_assert_eq!(a, b, "rendered:\n{}", rendered);
    }
}
