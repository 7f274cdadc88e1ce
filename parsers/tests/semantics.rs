//! ldirectord.cf semantics, case by case (reference §2): the lexical rules, defaults,
//! timeout resolution, the grammar of each directive, and stock's error messages with
//! their line numbers. Hermetic: names resolve through a fixed table.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use ldirectord_parsers::config::resolve::StaticResolver;
use ldirectord_parsers::config::*;

mod common;

fn resolver() -> StaticResolver {
    let mut hosts = HashMap::new();
    hosts.insert(
        "localhost".to_owned(),
        vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
    );
    hosts.insert("web1".to_owned(), vec!["192.0.2.11".parse().unwrap()]);
    hosts.insert("web3".to_owned(), vec!["192.0.2.13".parse().unwrap()]);
    let mut services = HashMap::new();
    for (name, port) in [("http", 80), ("https", 443), ("www", 80), ("domain", 53)] {
        for proto in ["tcp", "udp", ""] {
            services.insert((name.to_owned(), proto.to_owned()), port);
        }
    }
    let users = HashMap::from([("nobody".to_owned(), (65534, 65534))]);
    let groups = HashMap::from([("nogroup".to_owned(), 65534), ("adm".to_owned(), 4)]);
    StaticResolver {
        hosts,
        services,
        users,
        groups,
    }
}

fn parse(text: &str) -> Result<Parsed, ConfigError> {
    let r = Box::leak(Box::new(resolver()));
    let opts = ParseOptions {
        resolver: r,
        check_files: false,
        hostname: Some("director".into()),
    };
    parse_with(text, Path::new("/etc/ha.d/test.cf"), &opts)
}

fn ok(text: &str) -> Config {
    match parse(text) {
        Ok(p) => p.config,
        Err(e) => panic!(
            "rejected at line {}: {}\n{text}",
            e.error.span.line, e.error.message
        ),
    }
}

/// (line, first line of the message)
fn err(text: &str) -> (usize, String) {
    match parse(text) {
        Ok(_) => panic!("accepted, expected an error:\n{text}"),
        Err(e) => (
            e.error.span.line,
            e.error
                .message
                .lines()
                .next()
                .unwrap_or("")
                .trim_end()
                .to_owned(),
        ),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn stock_error_messages_at_stock_lines() {
    #[rustfmt::skip]
    let cases: &[(&str, usize, &str)] = &[
        ("foobar\n", 1, "Unknown command foobar"),
        ("checktimeout=0\n", 1, "invalid check timeout value"),
        ("checktimeout=x\n", 1, "invalid check timeout value"),
        ("negotiatetimeout=0\n", 1, "invalid negotiate timeout value"),
        ("checkinterval=0\n", 1, "invalid check interval value"),
        ("failurecount=none\n", 1, "invalid failure count value"),
        ("connecttimeout=3\n", 1, "connecttimeout directive deprecated in favour of negotiatetimeout"),
        ("timeout=3\n", 1, "timeout directive deprecated in favour of checktimeout and negotiatetimeout"),
        ("quiescent=no # off\n", 1, "quiescent must be 'yes' or 'no'"),
        ("quiescent=no \n", 1, "quiescent must be 'yes' or 'no'"),
        ("quiescent=no\r\n", 1, "quiescent must be 'yes' or 'no'"),
        ("autoreload=on\n", 1, "autoreload must be 'yes' or 'no'"),
        ("supervised=1\n", 1, "supervised must be 'yes' or 'no'"),
        ("emailalertfreq=x\n", 1, "invalid email alert frequency"),
        ("emailalert=\n", 1, "no email address specified"),
        ("emailalertfrom=\n", 1, "no email from address specified"),
        ("smtp=\"mail\"\n", 1, "invalid SMTP server address"),
        ("emailalertstatus=bogus\n", 1, "invalid email alert status at: \"bogus\""),
        ("emailalertstatus=none,running\n", 1, "invalid email alert status: \"running\" specified with \"none\""),
        ("maintenancedir=\n", 1, "maintenance directory not specified"),
        ("callback=/bin/x\n", 1, "Unknown command callback=/bin/x"),
        ("fallback=127.0.0.1:80 nat\n", 1, "forward method must be gate, masq or ipip"),
        ("fallback=nosuchhost:80\n", 1, "invalid IPv4 address or could not resolve for fallback server: nosuchhost"),
        ("fallback=127.0.0.1:nosuchsvc\n", 1, "invalid port for fallback server"),
        ("fallback=127.0.0.1:65536\n", 1, "invalid port for fallback server"),
        ("  checktimeout=3\n", 1, "Unknown command   checktimeout=3"),
        ("checktype=connect\n", 1, "Unknown command checktype=connect"),
        ("virtual=!bad\n", 1, "invalid address for virtual server"),
        ("virtual=[::1]:80\n", 1, "cannot specify an IPv6 address here. please use \"virtual6\" instead."),
        ("virtual6=[zz::1]:80\n", 1, "invalid address for virtual server"),
        ("virtual6=[1::2::3]:80\n", 1, "invalid ipv6 address for virtual server"),
        ("virtual=nosuchhost:80\n", 1, "invalid address for virtual service"),
        ("virtual=1.2.3.4:99999\n", 1, "invalid address for virtual service"),
        ("virtual=1.2.3.4:80\n\treal6=[::1]:80 gate\n", 2, "cannot specify \"real6\" here.  please use \"real\" instead"),
        ("virtual6=[::1]:80\n\treal=1.2.3.4:80 gate\n", 2, "cannot specify \"real\" here.  please use \"real6\" instead"),
        ("virtual=1.2.3.4:80\n\tfallback6=[::1]:80\n", 2, "cannot specify \"fallback6\" here.  please use \"fallback\" instead"),
        ("virtual=1.2.3.4:80\n\treal=1.2.3.5:80\n", 2, "invalid address for real server (wrong format)"),
        ("virtual=1.2.3.4:80\n\treal=1.2.3.5:80 nat\n", 2, "forward method must be gate, masq or ipip"),
        ("virtual=1.2.3.4:80\n\treal=nosuch:80 gate\n", 2, "invalid address (nosuch) for real server (could not resolve host)"),
        ("virtual=1.2.3.4:80\n\treal=1.2.3.5:nosuchsvc gate\n", 2, "invalid port (nosuchsvc) for real server (could not resolve port)"),
        ("virtual=1.2.3.4:80\n\treal=1.2.3.9->1.2.3.5:80 gate\n", 2, "Invalid Range: 1.2.3.9-1.2.3.5: First value must be greater than or equal to the second value"),
        ("virtual6=[::1]:80\n\treal6=[::2]->[::5]:80 gate\n", 2, "Address range for IPv6 is not supported yet"),
        ("virtual=1.2.3.4:80\n\treal=1.2.3.5:80 gate 1 junk\n", 2, "Invalid real server line, around \" junk\""),
        ("virtual=1.2.3.4:80\n\trequest=\"\"\n", 2, "no request string specified"),
        ("virtual=1.2.3.4:80\n\treceive=\"\"\n", 2, "invalid receive string"),
        ("virtual=1.2.3.4:80\n\treceive=\"#ok\"\n", 2, "Unknown command \"\treceive=\"#ok\""),
        ("virtual=1.2.3.4:80\n\trequest=/x\n", 2, "Unknown command \"\trequest=/x"),
        ("virtual=1.2.3.4:80\n\tlogin=\"\"\n", 2, "invalid login string"),
        ("virtual=1.2.3.4:80\n\tpasswd=\"\"\n", 2, "invalid password"),
        ("virtual=1.2.3.4:80\n\tdatabase=\"\"\n", 2, "invalid database"),
        ("virtual=1.2.3.4:80\n\tsecret=\"\"\n", 2, "invalid secret"),
        ("virtual=1.2.3.4:80\n\tload=\"!!\"\n", 2, "invalid string for load testing"),
        ("virtual=1.2.3.4:80\n\tchecktype=Negotiate\n", 2, "checktype must be \"connect\", \"negotiate\", \"on\", \"off\", \"ping\", \"external\", \"external-perl\" or a positive number"),
        ("virtual=1.2.3.4:80\n\tcheckcommand=\n", 2, "invalid check command"),
        ("virtual=1.2.3.4:80\n\tchecktimeout=0\n", 2, "invalid check timeout"),
        ("virtual=1.2.3.4:80\n\tnegotiatetimeout=x\n", 2, "invalid negotiate timeout"),
        ("virtual=1.2.3.4:80\n\tcheckcount=0\n", 2, "invalid check count"),
        ("virtual=1.2.3.4:80\n\tfailurecount=0\n", 2, "invalid failure count"),
        ("virtual=1.2.3.4:80\n\tcheckinterval=0\n", 2, "invalid checkinterval"),
        ("virtual=1.2.3.4:80\n\tcheckport=x\n", 2, "invalid port"),
        ("virtual=1.2.3.4:80\n\tcheckport=0\n", 2, "checkport must be in range 1..65536"),
        ("virtual=1.2.3.4:80\n\tcheckport=65536\n", 2, "checkport must be in range 1..65536"),
        ("virtual=1.2.3.4:80\n\tscheduler=WRR\n", 2, "invalid scheduler, should be only lowercase letters (a-z)"),
        ("virtual=1.2.3.4:80\n\tpersistent=x\n", 2, "invalid persistent timeout"),
        ("virtual=1.2.3.4:80\n\tnetmask=24\n", 2, "invalid netmask: dotted quad notation is required"),
        ("virtual6=[::1]:80\n\tnetmask=129\n", 2, "invalid netmask: a prefix length between 1 and 128 is required"),
        ("virtual=5\n\tprotocol=tcp\n", 2, "protocol must be fwm if the virtual service is a fwmark (a number)"),
        ("virtual=1.2.3.4:80\n\tprotocol=fwm\n", 2, "protocol must be tcp or udp if the virtual service is an address and port"),
        ("virtual=1.2.3.4:80\n\tprotocol=\n", 2, "invalid protocol"),
        ("virtual=1.2.3.4:80\n\tops=1\n", 2, "ops must be 'yes' or 'no'"),
        ("virtual=1.2.3.4:80\n\tservice=HTTP\n", 2, "service must be dns, ftp, http, https, http_proxy, imap, imaps, ldap, ldaps, mysql, nntp, none, oracle, pop, pops, radius, pgsql, simpletcp, sip, smtp or submission"),
        ("virtual=1.2.3.4:80\n\thttpmethod=POST\n", 2, "httpmethod must be GET or HEAD"),
        ("virtual=1.2.3.4:80\n\tfallbackcommand=\"\"\n", 2, "invalid fallback command"),
        ("virtual=1.2.3.4:80\n\tcleanstop=0\n", 2, "cleanstop must be 'yes' or 'no'"),
        ("virtual=1.2.3.4:80\n\tautoreload=yes\n", 2, "Unknown command \"\tautoreload=yes"),
        ("virtual=1.2.3.4:80\n\tsorryserver=1.2.3.9:80\n", 2, "Unknown command \"\tsorryserver=1.2.3.9:80"),
        // A blank line ends the block: the next indented line is a global line.
        ("virtual=1.2.3.4:80\n\treal=1.2.3.5:80 gate\n\n\tservice=http\n", 4, "Unknown command \tservice=http"),
        // Trailing text left by a stripped comment breaks yes/no in blocks too.
        ("virtual=1.2.3.4:80\n\tquiescent=no # x\n", 2, "quiescent must be 'yes' or 'no'"),
        // Five or more spaces alone still belong to the block (Perl backtracking).
        ("virtual=1.2.3.4:80\n\t \n", 2, "Unknown command \""),
        // Duplicates: reported at the line that ended the second block (or the last line).
        ("virtual=1.2.3.4:80\n\treal=1.2.3.5:80 gate\nvirtual=1.2.3.4:80\n\treal=1.2.3.6:80 gate\n", 4, "duplicate virtual server"),
        ("virtual=1.2.3.4:80\n\nvirtual=1.2.3.4:80\n\tscheduler=rr\n\n# end\n", 5, "duplicate virtual server"),
        ("virtual=5\nvirtual=5\n", 2, "duplicate virtual server"),
    ];
    let mut failures = Vec::new();
    for (text, line, message) in cases {
        let (got_line, got) = err(text);
        if got_line != *line || !got.starts_with(message) {
            failures.push(format!(
                "{text:?}\n   want line {line}: {message}\n   got  line {got_line}: {got}"
            ));
        }
    }
    common::assert_none_differ(&failures, cases.len());
}

#[test]
fn errors_inside_a_block_come_before_resolution_errors() {
    // Stock resolves reals after the block: a later bad directive is reported first.
    assert_eq!(
        err("virtual=1.2.3.4:80\n\treal=nosuch:80 gate\n\tscheduler=WRR\n").0,
        3
    );
}

#[test]
fn indentation_rules() {
    let c = ok(
        "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n    real=10.0.0.2:80 gate\n \treal=10.0.0.3:80 gate\n\t real=10.0.0.4:80 gate\n        # a comment does not end the block\n  # nor does this one\n\tscheduler=rr\n",
    );
    let v = &c.virtuals[0];
    assert_eq!(v.reals.len(), 4);
    assert_eq!(v.scheduler, "rr");
    // Three spaces end the block; the line is then a global line.
    assert_eq!(
        err("virtual=10.0.0.100:80\n   real=10.0.0.1:80 gate\n").0,
        2
    );
}

#[test]
fn defaults_of_a_virtual_service() {
    let c = ok("virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n");
    let v = &c.virtuals[0];
    assert_eq!(
        v.address,
        VirtualAddress::Inet {
            ip: ip("10.0.0.100"),
            port: 80
        }
    );
    assert_eq!(v.protocol, Protocol::Tcp);
    assert_eq!(v.scheduler, "wrr");
    assert_eq!(v.check.checktype, CheckType::Negotiate);
    assert_eq!(v.check.service, Service::Http);
    assert_eq!(v.check.request, "/");
    assert_eq!(v.check.receive, None);
    assert_eq!(v.check.checkcommand, "/bin/true");
    assert_eq!(v.check.checktimeout, Duration::from_secs(5));
    assert_eq!(v.check.negotiatetimeout, Duration::from_secs(30));
    assert_eq!((v.checkinterval, v.failurecount, v.risecount), (10, 1, 1));
    assert!(!v.quiescent && v.cleanstop);
    let r = &v.reals[0];
    assert_eq!(
        (r.ip, r.port, r.forward, r.weight, r.lower, r.upper),
        (ip("10.0.0.1"), 80, Forward::Gate, 1, 0, 0)
    );
    assert_eq!(
        c.globals.logfile,
        LogTarget::File("/var/log/ldirectord.log".into())
    );
}

#[test]
fn services_and_protocols_by_port() {
    let c = ok(
        "virtual=10.0.0.100:53\nvirtual=10.0.0.99:domain\nvirtual=10.0.0.101:8080\nvirtual=10.0.0.101:443\nvirtual=localhost:https\nvirtual=7\n",
    );
    let v = &c.virtuals;
    assert_eq!(
        (v[0].protocol, v[0].check.service),
        (Protocol::Udp, Service::Dns)
    );
    assert_eq!((v[1].protocol, v[1].port()), (Protocol::Udp, 53));
    assert_eq!(v[2].check.service, Service::None);
    assert_eq!(v[3].check.service, Service::Https);
    assert_eq!(
        v[4].address,
        VirtualAddress::Inet {
            ip: ip("127.0.0.1"),
            port: 443
        }
    );
    assert_eq!(
        (v[5].protocol, v[5].check.service),
        (Protocol::Fwm, Service::None)
    );
    assert_eq!(
        v[5].address,
        VirtualAddress::Fwmark {
            mark: 7,
            family: Family::Inet
        }
    );
}

#[test]
fn timeouts_resolve_in_stock_order() {
    let t = |text: &str| {
        let c = ok(text);
        (
            c.virtuals[0].check.checktimeout.as_secs(),
            c.virtuals[0].check.negotiatetimeout.as_secs(),
        )
    };
    assert_eq!(t("virtual=1.2.3.4:80\n"), (5, 30));
    assert_eq!(t("checktimeout=3\nvirtual=1.2.3.4:80\n"), (3, 3));
    assert_eq!(t("negotiatetimeout=9\nvirtual=1.2.3.4:80\n"), (9, 9));
    assert_eq!(
        t("checktimeout=3\nnegotiatetimeout=9\nvirtual=1.2.3.4:80\n"),
        (3, 9)
    );
    assert_eq!(
        t("checktimeout=3\nnegotiatetimeout=9\nvirtual=1.2.3.4:80\n\tnegotiatetimeout=7\n"),
        (7, 7)
    );
    assert_eq!(
        t("checktimeout=3\nvirtual=1.2.3.4:80\n\tchecktimeout=2\n\tnegotiatetimeout=8\n"),
        (2, 8)
    );
    // A numeric directive takes the first digits: `checktimeout=3 # s` is 3.
    assert_eq!(t("checktimeout=3 # s\nvirtual=1.2.3.4:80\n"), (3, 3));
}

#[test]
fn real_server_forms() {
    let c = ok(
        "virtual=10.0.0.100:80\n\treal=10.0.0.1->10.0.0.3:80 gate 9\n\treal=web1:http masq\n\treal=10.0.0.9 ipip 0\n\treal=10.0.0.7:80 masq 7 l:10 u:100\n\treal=10.0.0.8:80 gate 2 \"health\", \"OK\"\n\treal=10.0.0.5:80 gate # comment\n",
    );
    let r = &c.virtuals[0].reals;
    assert_eq!(r.len(), 8);
    assert_eq!(
        r[..3].iter().map(|r| (r.ip, r.weight)).collect::<Vec<_>>(),
        vec![
            (ip("10.0.0.1"), 9),
            (ip("10.0.0.2"), 9),
            (ip("10.0.0.3"), 9)
        ]
    );
    assert_eq!(
        (r[3].ip, r[3].port, r[3].forward),
        (ip("192.0.2.11"), 80, Forward::Masq)
    );
    assert_eq!(
        (r[4].port, r[4].forward, r[4].weight),
        (0, Forward::Ipip, 0)
    );
    assert_eq!((r[5].weight, r[5].lower, r[5].upper), (7, 10, 100));
    assert_eq!(r[6].request.as_deref(), Some("/health"));
    assert_eq!(r[6].receive.as_ref().map(|x| x.as_str()), Some("OK"));
    assert_eq!(r[7].ip, ip("10.0.0.5"));
    // Quoted thresholds are a request/receive pair, as in stock.
    let c = ok("virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate 1 \"l:10\" \"u:100\"\n");
    assert_eq!(c.virtuals[0].reals[0].request.as_deref(), Some("/l:10"));
}

#[test]
fn per_real_request_with_a_slash_is_honoured_and_flagged() {
    // Stock loses the receive here (defect §7.2-1); we keep it and warn.
    let p =
        parse("virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate 1 \"/health\",\"OK\" l:5\n").unwrap();
    let r = &p.config.virtuals[0].reals[0];
    assert_eq!(
        (
            r.request.as_deref(),
            r.receive.as_ref().map(|x| x.as_str()),
            r.lower
        ),
        (Some("/health"), Some("OK"), 5)
    );
    assert!(
        p.warnings.iter().any(
            |w| w.origin == Origin::Extension && w.message.contains("stock ldirectord ignores")
        )
    );
}

#[test]
fn fallbacks() {
    let c = ok(
        "fallback=127.0.0.1\nvirtual=10.0.0.100:80\nvirtual=10.0.0.100:8080\n\tfallback=127.0.0.2 masq\nvirtual=5\nvirtual6=[2001:db8::5]:80\n\tfallback6=[::1]:81\n",
    );
    let f = |i: usize| c.virtuals[i].fallback.clone().unwrap();
    assert_eq!(
        (f(0).ip, f(0).port, f(0).forward),
        (ip("127.0.0.1"), Some(80), Forward::Gate)
    );
    assert_eq!(
        (f(1).ip, f(1).port, f(1).forward),
        (ip("127.0.0.2"), Some(8080), Forward::Masq)
    );
    // Stock gives a fwmark virtual an empty fallback with a global one (defect §7.2-8);
    // we give it the address with port 0.
    assert_eq!((f(2).ip, f(2).port), (ip("127.0.0.1"), Some(0)));
    assert_eq!((f(3).ip, f(3).port), (ip("::1"), Some(81)));
}

#[test]
fn ftp_and_sip_default_logins_only_with_an_explicit_service() {
    let c = ok(
        "virtual=1.2.3.4:21\nvirtual=1.2.3.4:2121\n\tservice=ftp\nvirtual=1.2.3.4:5061\n\tlogin=\"me\"\n\tservice=sip\nvirtual=1.2.3.4:5062\n\tservice=sip\n",
    );
    let l = |i: usize| {
        (
            c.virtuals[i].check.login.clone(),
            c.virtuals[i].check.passwd.clone(),
        )
    };
    assert_eq!(l(0), (String::new(), String::new()));
    assert_eq!(l(1), ("anonymous".into(), "ldirectord@director".into()));
    assert_eq!(l(2).0, "me");
    assert_eq!(l(3).0, "ldirectord@director");
}

#[test]
fn checktype_forms() {
    let t = |v: &str| {
        ok(&format!("virtual=1.2.3.4:80\n\tchecktype={v}\n")).virtuals[0]
            .check
            .checktype
    };
    assert_eq!(t("3"), CheckType::Combined(3));
    assert_eq!(t("0"), CheckType::Combined(0));
    assert_eq!(t("external-perl"), CheckType::ExternalPerl);
    assert_eq!(t("off"), CheckType::Off);
}

#[test]
fn receive_is_a_perl_regex_checked_at_parse_time() {
    let matches = |text: &str, answer: &[u8]| {
        let c = ok(text);
        c.virtuals[0]
            .check
            .receive
            .as_ref()
            .unwrap()
            .is_match(answer)
    };
    assert!(matches(
        "virtual=1.2.3.4:80\n\treceive=\"(?<=Status: )up\"\n",
        b"Status: up"
    ));
    assert!(matches(
        "virtual=1.2.3.4:80\n\treceive=\"OK$\"\n",
        b"200 OK\n"
    ));
    // Stock accepts this and dies at the first check (defect §7.2-22).
    let (line, message) = err("virtual=1.2.3.4:80\n\treceive=\"(\"\n");
    assert_eq!(line, 2);
    assert!(
        message.starts_with("invalid receive regular expression"),
        "{message}"
    );
}

#[test]
fn warnings_for_traps() {
    let p = parse("virtual=192.168.1.1\nvirtual=10.0.0.1:8080\n\treal=10.0.0.2:8080 gate\ncheckcount=2\nsupervised\n").unwrap();
    let texts: Vec<(usize, &str, Origin)> = p
        .warnings
        .iter()
        .map(|w| (w.span.line, w.message.as_str(), w.origin))
        .collect();
    assert!(
        texts.iter().any(|(l, m, o)| *l == 1
            && m.contains("read as firewall mark 192")
            && *o == Origin::Extension),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|(l, m, _)| *l == 2 && m.contains("is never checked")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|(l, m, o)| *l == 4
        && m.starts_with("checkcount option is deprecated")
        && *o == Origin::Stock));
    assert!(
        texts
            .iter()
            .any(|(l, m, _)| *l == 5 && m.contains("bare supervised"))
    );
    assert!(p.config.globals.supervised);
}

#[test]
fn checkspread_takes_a_percentage_or_lockstep() {
    assert_eq!(ok("").globals.checkspread, CheckSpread::Percent(0));
    assert_eq!(
        ok("checkspread=20\n").globals.checkspread,
        CheckSpread::Percent(20)
    );
    assert_eq!(
        ok("checkspread=lockstep\n").globals.checkspread,
        CheckSpread::Lockstep
    );
    assert_eq!(err("checkspread=101\n").1, "invalid check spread");
    assert_eq!(err("checkspread=sometimes\n").1, "invalid check spread");
}

#[test]
fn extension_directives() {
    let c = ok(
        "risecount=2\ncheckjitter=25\nvirtual=1.2.3.4:5432\n\tpgsqlrole=standby\n\tpgsqlmaxlag=10s\n\tpgsqlsyncstate=sync, potential\n\ttlsverify=yes\n",
    );
    let v = &c.virtuals[0];
    let pg = v.check.pgsql_role.as_ref().unwrap();
    assert_eq!(
        (pg.role, pg.max_lag),
        (PgRole::Standby, Some(Duration::from_secs(10)))
    );
    assert_eq!(
        pg.sync_states.iter().copied().collect::<Vec<_>>(),
        vec![SyncState::Sync, SyncState::Potential]
    );
    assert_eq!(
        (v.risecount, c.globals.checkjitter, v.check.tls_verify),
        (2, 25, true)
    );
    assert_eq!(
        err("virtual=1.2.3.4:80\n\tpgsqlrole=standby\n").1,
        "pgsqlrole needs service=pgsql"
    );
    assert_eq!(
        err("virtual=1.2.3.4:5432\n\tpgsqlmaxlag=10s\n").1,
        "pgsqlmaxlag needs pgsqlrole=standby"
    );
}

#[test]
fn engine_directive() {
    assert_eq!(
        ok("virtual=1.2.3.4:80\n").globals.engine,
        EngineName::Netlink
    );
    for word in ["netlink", "ipvsadm", "userspace"] {
        let c = ok(&format!("engine={word}\nvirtual=1.2.3.4:80\n"));
        assert_eq!(c.globals.engine.as_str(), word);
        assert_eq!(Some(c.globals.engine), EngineName::from_word(word));
    }
    let text = "checkinterval=5\nengine = kernel\nvirtual=1.2.3.4:80\n";
    let e = parse(text).unwrap_err();
    assert_eq!(
        (
            e.error.span.line,
            e.error.span.column,
            e.error.message.as_str()
        ),
        (2, 10, "unknown engine")
    );
    let rendered = e.error.render(Path::new("/etc/ha.d/t.cf"), text);
    assert!(rendered.contains("--> /etc/ha.d/t.cf:2:10"), "{rendered}");
    assert!(
        rendered.contains("netlink (the default), ipvsadm or userspace"),
        "{rendered}"
    );
    assert_eq!(
        err("virtual=1.2.3.4:80\n\tengine=ipvsadm\n").0,
        2,
        "engine= is global only"
    );
}

#[test]
fn syncdaemon_is_a_master_sync_daemon_with_checked_options() {
    use ldirectord_parsers::config::{SyncDaemon, SyncRole};
    assert_eq!(ok("virtual=1.2.3.4:80\n").globals.syncdaemon, None);
    let c = ok("syncdaemon=eth1\nvirtual=1.2.3.4:80\n");
    assert_eq!(
        c.globals.syncdaemon,
        Some(SyncDaemon::new(SyncRole::Master, "eth1", 0))
    );
    // Options may come before the daemon; all of them join it.
    let c = ok(
        "syncport=8850\nsyncdaemon = br0 255\nsyncmaxlen=1400\nsyncgroup=ff02::81\nsyncttl=2\nvirtual=1.2.3.4:80\n",
    );
    let d = c.globals.syncdaemon.unwrap();
    assert_eq!(
        (d.interface.as_str(), d.syncid, d.maxlen, d.port, d.ttl),
        ("br0", 255, Some(1400), Some(8850), Some(2))
    );
    assert_eq!(d.group, Some("ff02::81".parse().unwrap()));
    let bad = [
        ("syncdaemon=eth1 256\n", (1, 17), "sync id out of range"),
        ("syncdaemon=eth1 -1\n", (1, 17), "sync id out of range"),
        ("syncdaemon=\n", (1, 12), "invalid sync daemon"),
        ("syncdaemon=eth1 2 3\n", (1, 12), "invalid sync daemon"),
        (
            "syncdaemon=an-interface-name-too-long\n",
            (1, 12),
            "invalid sync daemon interface name",
        ),
        (
            "syncdaemon=eth1\nsyncmaxlen=1500\n",
            (2, 12),
            "invalid syncmaxlen value",
        ),
        (
            "syncdaemon=eth1\nsyncport=0\n",
            (2, 10),
            "invalid syncport value",
        ),
        (
            "syncdaemon=eth1\nsyncttl=256\n",
            (2, 9),
            "invalid syncttl value",
        ),
        (
            "syncdaemon=eth1\nsyncgroup=10.0.0.1\n",
            (2, 11),
            "invalid sync multicast group",
        ),
        (
            "checkinterval=2\nsyncport=8848\n",
            (2, 1),
            "syncport= without syncdaemon=",
        ),
    ];
    for (text, at, message) in bad {
        let text = format!("{text}virtual=1.2.3.4:80\n");
        let e = parse(&text).unwrap_err();
        assert_eq!(
            (
                (e.error.span.line, e.error.span.column),
                e.error.message.as_str()
            ),
            (at, message),
            "{text}"
        );
    }
    assert_eq!(
        err("virtual=1.2.3.4:80\n\tsyncdaemon=eth0\n").0,
        2,
        "syncdaemon= is global only"
    );
}

#[test]
fn metrics_directive() {
    assert_eq!(ok("virtual=1.2.3.4:80\n").globals.metrics, None);
    for (text, addr) in [
        ("127.0.0.1:9595", "127.0.0.1:9595"),
        ("[::1]:9100", "[::1]:9100"),
    ] {
        let c = ok(&format!("metrics={text}\nvirtual=1.2.3.4:80\n"));
        assert_eq!(
            c.globals.metrics.map(|a| a.to_string()).as_deref(),
            Some(addr)
        );
    }
    for bad in [
        "localhost:9595",
        "127.0.0.1",
        "127.0.0.1:0",
        "::1:9100",
        "1.2.3.4:99999",
    ] {
        let text = format!("checkinterval=5\nmetrics={bad}\nvirtual=1.2.3.4:80\n");
        let e = parse(&text).unwrap_err();
        assert_eq!(
            (
                e.error.span.line,
                e.error.span.column,
                e.error.message.as_str()
            ),
            (2, 9, "invalid metrics address"),
            "{bad}"
        );
    }
    assert_eq!(
        err("virtual=1.2.3.4:80\n\tmetrics=127.0.0.1:9595\n").0,
        2,
        "metrics= is global only"
    );
}

#[test]
fn diagnostics_point_at_the_value() {
    let e = parse("virtual=1.2.3.4:80\n\tscheduler=WRR\n").unwrap_err();
    assert_eq!((e.error.span.line, e.error.span.column), (2, 12));
    let text = e.error.render(
        Path::new("/etc/ha.d/test.cf"),
        "virtual=1.2.3.4:80\n\tscheduler=WRR\n",
    );
    assert!(text.contains("--> /etc/ha.d/test.cf:2:12"), "{text}");
    assert!(text.contains("^^^"), "{text}");
    assert_eq!(
        e.error.stock_format(42, Path::new("/etc/ha.d/test.cf")),
        "Error [42] reading file /etc/ha.d/test.cf at line 2: invalid scheduler, should be only lowercase letters (a-z)"
    );
}

#[test]
fn dynamic_real_server_directives() {
    let c = ok(
        "nodeaddress=node2 10.0.0.2\nnodeaddress = node3 [2001:db8::3]\n\
         virtual=192.168.0.237:5432\n\tchecktype=on\n\
         \trealweights=node3,4 node9\n\
         \trealsource=resource lvsdr-realsvr-clone\n\
         \trealfilter=attribute pgsql-status \"HS:sync|HS:potential|HS:async\"\n\
         \trealfilter=command /usr/local/bin/is-standby --quick\n\
         \trealdefault=masq 2\n\treal=10.0.0.9:5432 gate\n\
         virtual=192.168.0.238:80\n\treal=10.0.0.9:80 masq\n",
    );
    assert_eq!(
        c.globals.node_addresses.get("node3").map(IpAddr::to_string),
        Some("2001:db8::3".to_owned())
    );
    assert_eq!(c.globals.node_addresses.len(), 2);
    let s = c.virtuals[0].real_sources.as_ref().unwrap();
    assert_eq!(
        s.candidates,
        RealCandidates::Resource("lvsdr-realsvr-clone".into())
    );
    assert_eq!(s.filters.len(), 2);
    let RealFilter::Attribute { name, pattern } = &s.filters[0] else {
        panic!("{:?}", s.filters)
    };
    assert_eq!(name, "pgsql-status");
    assert!(pattern.is_match("HS:async") && !pattern.is_match("HS:asyncX"));
    assert!(!pattern.is_match("xHS:sync") && !pattern.is_match("HS:alone"));
    assert_eq!(
        s.filters[1],
        RealFilter::Command("/usr/local/bin/is-standby --quick".into())
    );
    // A weight left out is realdefault's, whatever the order of the lines.
    assert_eq!(s.weights, [("node3".into(), 4), ("node9".into(), 2)]);
    assert_eq!((s.forward, s.default_weight), (Forward::Masq, 2));
    assert_eq!(
        s.spans.iter().map(|s| s.line).collect::<Vec<_>>(),
        [5, 6, 7, 8, 9]
    );
    assert!(s.fallback_filters.is_empty());
    assert_eq!(c.virtuals[0].reals.len(), 1, "static reals stay");
    assert_eq!(c.virtuals[1].real_sources, None);

    // realfallback= (the pool when the filters keep none), any order after realfilter=.
    let c = ok("virtual=1.2.3.4:5432\n\trealsource=resource pgsql-clone\n\
         \trealfallback=attribute pgsql-status HS:alone\n\
         \trealfilter=attribute pgsql-status HS:sync|HS:potential|HS:async\n");
    let s = c.virtuals[0].real_sources.as_ref().unwrap();
    assert_eq!(s.filters.len(), 1);
    let [RealFilter::Attribute { name, pattern }] = &s.fallback_filters[..] else {
        panic!("{:?}", s.fallback_filters)
    };
    assert_eq!(name, "pgsql-status");
    assert!(pattern.is_match("HS:alone") && !pattern.is_match("HS:async"));

    let c = ok(
        "virtual=1.2.3.4:80\n\trealsource=list node1,5 10.0.0.7 node2\n\
         \trealweights=node2,3 node1,9\n",
    );
    let s = c.virtuals[0].real_sources.as_ref().unwrap();
    assert_eq!(
        s.candidates,
        RealCandidates::List(vec![
            ("node1".into(), Some(5)),
            ("10.0.0.7".into(), None),
            ("node2".into(), None)
        ])
    );
    assert_eq!(
        (
            s.weight_of("node1"),
            s.weight_of("node2"),
            s.weight_of("10.0.0.7")
        ),
        (5, 3, 1),
        "a list's own weight, else realweights, else the default"
    );
    assert_eq!((s.forward, s.default_weight), (Forward::Gate, 1));
    let c = ok("virtual=5\n\trealsource=partition\n\
         virtual=1.2.3.4:80\n\trealsource=command \"/bin/echo node1\"\n");
    assert_eq!(
        c.virtuals[0].real_sources.as_ref().unwrap().candidates,
        RealCandidates::Partition
    );
    assert_eq!(
        c.virtuals[1].real_sources.as_ref().unwrap().candidates,
        RealCandidates::Command("/bin/echo node1".into())
    );
}

#[test]
fn dynamic_real_server_errors_name_line_and_column() {
    let cases: [(&str, usize, usize, &str); 14] = [
        (
            "virtual=1.2.3.4:80\n\trealsource=partition\n\trealfallback=attribute s HS:alone\n",
            3,
            2,
            "realfallback= needs a realfilter=",
        ),
        (
            "virtual=1.2.3.4:80\n\trealsource=partition\n\trealfallback=attribute s (x\n",
            3,
            15,
            "invalid realfallback regular expression",
        ),
        (
            "virtual=1.2.3.4:80\n\trealsource=everything\n",
            2,
            13,
            "realsource=everything: expected resource RSC, partition, command CMD... or list HOST[,WEIGHT]...",
        ),
        (
            "virtual=1.2.3.4:80\n\trealsource=resource a b\n",
            2,
            13,
            "realsource=resource a b: expected",
        ),
        (
            "virtual=1.2.3.4:80\n\trealsource=partition\n\trealsource=partition\n",
            3,
            2,
            "only one realsource= per virtual block",
        ),
        (
            "virtual=1.2.3.4:80\n\tchecktype=on\n\trealweights=a,1\n",
            3,
            2,
            "realfilter=, realfallback=, realweights= and realdefault= need a realsource= in the same virtual block",
        ),
        (
            "virtual=1.2.3.4:80\n\trealsource=partition\n\trealfilter=attribute s (HS\n",
            3,
            13,
            "invalid realfilter regular expression",
        ),
        (
            "virtual=1.2.3.4:80\n\trealsource=partition\n\trealfilter=attribute s\n",
            3,
            13,
            "realfilter=attribute s: expected attribute NAME REGEX",
        ),
        (
            "virtual=1.2.3.4:80\n\trealsource=partition\n\trealfilter=grep x\n",
            3,
            13,
            "realfilter=grep x: expected",
        ),
        (
            "virtual=1.2.3.4:80\n\trealsource=list n1,x\n",
            2,
            13,
            "realsource=list: bad item \"n1,x\"",
        ),
        (
            "virtual=1.2.3.4:80\n\trealsource=partition\n\trealdefault=route 1\n",
            3,
            14,
            "realdefault=route 1: expected FORWARD [WEIGHT]",
        ),
        (
            "nodeaddress=n1 x\n",
            1,
            13,
            "nodeaddress: \"x\" is not an IP address",
        ),
        (
            "nodeaddress=n1\n",
            1,
            13,
            "nodeaddress=n1: expected NODE ADDRESS",
        ),
        (
            "realsource=partition\n",
            1,
            1,
            "Unknown command realsource=partition",
        ),
    ];
    for (text, line, column, message) in cases {
        let e = parse(text).unwrap_err().error;
        assert!(
            e.message.starts_with(message),
            "{text:?}: {:?} does not start with {message:?}",
            e.message
        );
        assert_eq!((e.span.line, e.span.column), (line, column), "{text:?}");
        if line > 1 || text.starts_with("nodeaddress") {
            assert_eq!(e.origin, Origin::Extension, "{text:?}");
            assert!(e.help.is_some(), "{text:?}");
        }
    }
    let e = parse("virtual=1.2.3.4:80\n\tnodeaddress=n1 10.0.0.1\n")
        .unwrap_err()
        .error;
    assert_eq!(
        e.label.as_deref(),
        Some("`nodeaddress` is a global directive")
    );
    let e = parse("realsource=partition\n").unwrap_err().error;
    assert_eq!(
        e.label.as_deref(),
        Some("`realsource` belongs inside a virtual block")
    );
}

#[test]
fn a_secret_in_a_file_everyone_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ldirectord.cf");
    std::fs::write(
        &path,
        "checktimeout=3\nvirtual=127.0.0.1:1812\n\treal=127.0.0.2:1812 gate\n\tservice=radius\n\tprotocol=udp\n\tlogin=\"bob\"\n\tsecret=\"testing123\"\n",
    )
    .unwrap();
    let exposed = |mode| {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let parsed = ldirectord_parsers::config::load(&path).unwrap();
        parsed
            .warnings
            .into_iter()
            .find(|w| w.message.contains("readable by every user"))
    };
    let w = exposed(0o644).expect("a warning for mode 644");
    assert!(
        w.message.contains("ldirectord.cf") && w.message.contains("(secret= at line 7)"),
        "{w:?}"
    );
    assert!(!w.message.contains("testing123"));
    assert_eq!(
        w.help.as_deref(),
        Some(format!("chmod o-r {}", path.display()).as_str())
    );
    assert_eq!(exposed(0o640), None);
    assert_eq!(exposed(0o600), None);
}

/// `scriptuser=USER[:GROUP]` (extension): resolved when read, whole-file, only external
/// checks carry it; an unknown user or group is an error at its column.
#[test]
fn script_user_is_resolved_and_applies_to_external_checks() {
    let c = ok(
        "virtual=192.0.2.1:80\n\treal=192.0.2.2:80 masq\n\tchecktype=external\n\
                virtual=192.0.2.1:81\n\treal=192.0.2.2:81 masq\n\
                scriptuser=nobody:adm\n",
    );
    let user = c.globals.scriptuser.clone().unwrap();
    assert_eq!(
        (user.written.as_str(), user.uid, user.gid),
        ("nobody:adm", 65534, 4)
    );
    for v in &c.virtuals {
        assert_eq!(v.check.scriptuser.as_ref(), Some(&user), "whole-file");
    }
    assert_eq!(
        ok("scriptuser=nobody\n").globals.scriptuser.unwrap().gid,
        65534
    );
    let parsed = parse("checktimeout=3\nscriptuser=nobdy:nogroup\n").unwrap_err();
    let e = &parsed.error;
    assert_eq!((e.span.line, e.span.column), (2, 12));
    assert_eq!(e.message, "unknown user nobdy");
    let parsed = parse("scriptuser=nobody:nogrp\n").unwrap_err();
    assert_eq!(
        (parsed.error.span.column, parsed.error.message.as_str()),
        (19, "unknown group nogrp")
    );
    assert_eq!(err("scriptuser=nobody:\n").1, "invalid script user");
}

/// `keepcapabilities=yes|no` (extension, global only, default no).
#[test]
fn keep_capabilities_is_a_global_yes_or_no() {
    assert!(!ok("checktimeout=3\n").globals.keepcapabilities);
    assert!(ok("keepcapabilities=yes\n").globals.keepcapabilities);
    assert!(!ok("keepcapabilities=no\n").globals.keepcapabilities);
    assert_eq!(
        err("checktimeout=3\nkeepcapabilities=all\n"),
        (2, "keepcapabilities must be 'yes' or 'no'".to_owned())
    );
    let (line, message) =
        err("virtual=192.0.2.1:80\n\treal=192.0.2.2:80 masq\n\tkeepcapabilities=yes\n");
    assert_eq!(line, 3, "{message}");
}

/// Stock's messages quote the raw line; for a `passwd=`/`secret=` line the value is cut
/// out of the message and of the excerpt (`--test`, the log).
#[test]
fn a_secret_on_a_broken_line_is_not_shown() {
    let text = "virtual=192.0.2.1:110\n\treal=192.0.2.2:110 masq\n\tservice=pop\n\tpasswd=Unquoted5ecret\n";
    let e = parse(text).unwrap_err().error;
    assert_eq!(e.span.line, 4);
    assert_eq!(e.message, "Unknown command \"\tpasswd=***\n\"");
    let shown = format!(
        "{}{}",
        e.stock_format(1, Path::new("t.cf")),
        e.render(Path::new("t.cf"), text)
    );
    assert!(!shown.contains("Unquoted5ecret"), "{shown}");
    assert!(shown.contains("passwd=***"), "{shown}");
    // Other lines are shown as written.
    let e = parse("virtual=192.0.2.1:110\n\tbogus=Unquoted5ecret\n")
        .unwrap_err()
        .error;
    assert!(e.message.contains("Unquoted5ecret"), "{}", e.message);
}

#[test]
fn checkpath_and_checkmarkbase() {
    let c = ok(
        "checkpath=forwarding\ncheckmarkbase=0x100\nvirtual=1.2.3.4:80\n\treal=1.1.1.1:80 gate\nvirtual=1.2.3.4:81\n\treal=1.1.1.1:81 gate\n\tcheckpath=direct\n",
    );
    assert_eq!(c.globals.checkpath, CheckPath::Forwarding);
    assert_eq!(c.globals.checkmarkbase, 0x100);
    assert_eq!(c.virtuals[0].checkpath, CheckPath::Forwarding);
    assert_eq!(c.virtuals[1].checkpath, CheckPath::Direct);
    let c = ok("virtual=1.2.3.4:80\n\treal=1.1.1.1:80 gate\n\tcheckpath=forwarding\n");
    assert_eq!(c.globals.checkpath, CheckPath::Direct);
    assert_eq!(c.globals.checkmarkbase, DEFAULT_CHECK_MARK_BASE);
    assert_eq!(c.virtuals[0].checkpath, CheckPath::Forwarding);
    assert_eq!(ok("checkmarkbase=4096\n").globals.checkmarkbase, 4096);
    let cases = [
        ("checkpath=sideways\n", 1, "invalid check path"),
        (
            "virtual=1.2.3.4:80\n\tcheckpath=Forwarding\n",
            2,
            "invalid check path",
        ),
        ("checkmarkbase=0\n", 1, "invalid check mark base"),
        ("checkmarkbase=0xffffffff\n", 1, "invalid check mark base"),
        ("checkmarkbase=lots\n", 1, "invalid check mark base"),
    ];
    for (text, line, message) in cases {
        assert_eq!(err(text), (line, message.to_owned()), "{text}");
    }
}
