//! `src/probe.rs` (the daemon crate's `--probe`), compiled here as a module so it is
//! tested with the checks it drives: a parsed ldirectord.cf against a real nginx, a closed
//! port, `checktype=off`, `service=oracle`, and deduplication of shared reals.
mod core_support;

#[path = "../../src/probe.rs"]
mod probe;

use std::path::Path;

use core_support::*;
use ldirectord_parsers::config::parse_str;

fn config(text: &str) -> ldirectord_parsers::config::Config {
    parse_str(text, Path::new("/etc/ha.d/ldirectord.cf"))
        .expect("test config parses")
        .config
}

#[tokio::test]
async fn one_round_of_every_check_with_shared_reals_checked_once() {
    let nginx = Nginx::start();
    let closed = closed_port();
    let http = nginx.http;
    let cf = format!(
        "checktimeout=2\n\
         virtual=127.0.0.1:{http}\n\
         \treal=127.0.0.1:{http} masq\n\
         \treal=127.0.0.1:{closed} masq\n\
         \tservice=http\n\
         \trequest=\"ok\"\n\
         \treceive=\"OK\"\n\
         \tchecktype=negotiate\n\
         \n\
         virtual=127.0.0.2:{http}\n\
         \treal=127.0.0.1:{http} masq\n\
         \tservice=http\n\
         \trequest=\"ok\"\n\
         \treceive=\"OK\"\n\
         \tchecktype=negotiate\n\
         \n\
         virtual=127.0.0.3:80\n\
         \treal=127.0.0.1:80 masq\n\
         \tchecktype=off\n\
         \n\
         virtual=127.0.0.4:1521\n\
         \treal=127.0.0.1:1521 masq\n\
         \tservice=oracle\n\
         \tchecktype=negotiate\n"
    );
    let rows = probe::run(&config(&cf)).await;
    assert_eq!(rows.len(), 5, "{rows:#?}");

    assert_eq!(rows[0].r#virtual, format!("tcp:127.0.0.1:{http}"));
    assert_eq!(rows[0].real, format!("127.0.0.1:{http}"));
    assert_eq!(rows[0].check, "negotiate:http");
    assert!(rows[0].up, "{:?}", rows[0]);
    assert_eq!(rows[0].reason, "200 OK");

    assert!(!rows[1].up);
    assert_eq!(
        rows[1].reason,
        format!("Can't connect to 127.0.0.1:{closed} (Connection refused)")
    );

    // The same real, checked the same way, in a second virtual: one request for both.
    assert_eq!(rows[2].r#virtual, format!("tcp:127.0.0.2:{http}"));
    assert!(rows[2].up);
    assert_eq!(rows[2].latency_ms, rows[0].latency_ms);
    let log = nginx.access_log_when(|l| l.contains("GET /ok "));
    assert_eq!(log.matches("GET /ok ").count(), 1, "{log}");

    assert_eq!(rows[3].check, "off");
    assert!(!rows[3].up);
    assert_eq!(rows[3].reason, "checktype=off: not checked");

    assert!(!rows[4].up);
    assert!(
        rows[4].reason.contains("service=oracle is not supported"),
        "{}",
        rows[4].reason
    );

    let table = probe::render_table(&rows);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 6);
    assert!(lines[0].starts_with("VIRTUAL"));
    // Columns are aligned: REAL starts at the same offset on every line.
    let col = lines[0].find("REAL").unwrap();
    assert!(
        lines[1..]
            .iter()
            .all(|l| l[col..].starts_with("127.0.0.1:")),
        "{table}"
    );
    assert!(
        lines[1].contains("up") && lines[1].ends_with("200 OK"),
        "{table}"
    );

    let json: serde_json::Value = serde_json::from_str(&probe::render_json(&rows)).unwrap();
    let first = json.as_array().unwrap()[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["check", "latency_ms", "real", "reason", "up", "virtual"]
    );
    assert_eq!(first["up"], serde_json::Value::Bool(true));
}

#[tokio::test]
async fn empty_config_gives_a_header_only_table() {
    let rows = probe::run(&config("checktimeout=1\n")).await;
    assert!(rows.is_empty());
    assert_eq!(probe::render_table(&rows).lines().count(), 1);
    assert_eq!(probe::render_json(&rows), "[]");
}
