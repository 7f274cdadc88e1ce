//! http, https and http_proxy checks against a real nginx on loopback (self-signed
//! certificate made by openssl), plus closed, hung (nginx under SIGSTOP), resetting and
//! garbage-speaking servers.
mod core_support;

use std::sync::Arc;
use std::time::Duration;

use core_support::*;
use ldirectord_checks::{Checker, Outcome, build};
use ldirectord_parsers::config::{HttpMethod, Service};

fn checker(s: &ldirectord_checks::CheckSpec) -> Arc<dyn Checker> {
    build(s).unwrap().unwrap()
}

async fn check_http(port: u16, path: &str, recv: Option<&str>) -> Outcome {
    check(Service::Http, port, path, recv).await
}

async fn check(service: Service, port: u16, path: &str, recv: Option<&str>) -> Outcome {
    let mut s = http_spec(service, "127.0.0.1", port, path);
    s.receive = recv.and_then(receive);
    checker(&s).check().await
}

/// http and https share the HTTP/1.1 client (https over rustls): both must judge the same
/// answers the same way.
#[tokio::test]
async fn status_and_receive_decide() {
    let nginx = Nginx::start();
    for (service, port) in [(Service::Http, nginx.http), (Service::Https, nginx.https)] {
        let check = |path, recv| check(service, port, path, recv);
        // 200 and receive matches.
        let out = check("ok", Some("OK")).await;
        assert!(out.is_up(), "{service:?}: {out:?}");
        assert_eq!(out.reason, "200 OK");
        // Perl `$` matches before the final newline of "OK\n".
        assert!(check("ok", Some("^OK$")).await.is_up(), "{service:?}");
        // No receive: any 2xx is up.
        assert!(check("ok", None).await.is_up(), "{service:?}");
        // 200 but the body does not match: down, the body is the reason.
        let out = check("error", Some("OK")).await;
        assert!(!out.is_up());
        assert_eq!(out.reason, "ERROR", "{service:?}");
        // 500 with a body that matches: still down, the status line is the reason.
        let out = check("500", Some("OK")).await;
        assert!(!out.is_up());
        assert_eq!(out.reason, "500 Internal Server Error", "{service:?}");
        // 404 without receive: down.
        let out = check("missing", None).await;
        assert!(!out.is_up());
        assert_eq!(out.reason, "404 Not Found", "{service:?}");
        // A chunked body is decoded before receive sees it.
        let out = check("chunked", Some("^CHUNKED OK$")).await;
        assert!(out.is_up(), "{service:?}: {out:?}");
    }
    // nginx really sends /chunked chunked.
    let raw = raw_get(nginx.http, "/chunked");
    assert!(
        raw.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{raw}"
    );
}

/// The raw answer to `GET path` on 127.0.0.1:port.
fn raw_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test]
async fn redirects_are_followed_up_to_seven() {
    let nginx = Nginx::start();
    for (service, port) in [(Service::Http, nginx.http), (Service::Https, nginx.https)] {
        // Relative (same scheme), then absolute to the plain http port.
        for path in ["redirect", "redirect-abs"] {
            let out = check(service, port, path, Some("OK")).await;
            assert!(out.is_up(), "{service:?} {path}: {out:?}");
        }
        // A redirect loop ends on a 3xx after 7 hops: down.
        let out = check(service, port, "loop", None).await;
        assert!(!out.is_up());
        assert_eq!(out.reason, "302 Found");
    }
    let log = nginx.access_log_when(|l| l.matches("GET /loop ").count() >= 16);
    assert_eq!(log.matches("GET /loop ").count(), 16, "{log}");
}

#[tokio::test]
async fn head_sends_head_and_judges_the_status() {
    let nginx = Nginx::start();
    let mut s = http_spec(Service::Http, "127.0.0.1", nginx.http, "ok");
    s.httpmethod = HttpMethod::Head;
    let out = checker(&s).check().await;
    assert!(out.is_up(), "{out:?}");
    let mut s = http_spec(Service::Http, "127.0.0.1", nginx.http, "missing");
    s.httpmethod = HttpMethod::Head;
    assert!(!checker(&s).check().await.is_up());
    let log = nginx.access_log_when(|l| l.contains("HEAD /ok") && l.contains("HEAD /missing"));
    assert!(log.contains("\"HEAD /ok HTTP/1.1\" 200"), "{log}");
    assert!(log.contains("\"HEAD /missing HTTP/1.1\" 404"), "{log}");
}

#[tokio::test]
async fn host_header_is_the_virtualhost_or_the_real_without_port() {
    let nginx = Nginx::start();
    let mut s = http_spec(Service::Http, "127.0.0.1", nginx.http, "host");
    s.receive = receive(r"^host=127\.0\.0\.1$");
    assert!(
        checker(&s).check().await.is_up(),
        "Host must be the real's address without port"
    );
    s.virtualhost = Some("www.example.com".into());
    s.receive = receive(r"^host=www\.example\.com$");
    let out = checker(&s).check().await;
    assert!(out.is_up(), "{out:?}");
    s.receive = receive(r"^host=other\.example$");
    let out = checker(&s).check().await;
    assert!(!out.is_up());
    assert_eq!(out.reason, "host=www.example.com");
    let ua = nginx.access_log_when(|l| l.lines().count() >= 3);
    assert!(
        ua.contains("libwww-perl"),
        "User-Agent keeps the libwww-perl word: {ua}"
    );
}

#[tokio::test]
async fn ipv6_real() {
    let nginx = Nginx::start();
    let mut s = http_spec(Service::Http, "::1", nginx.http, "host");
    s.receive = receive(r"^host=\[::1\]$");
    let out = checker(&s).check().await;
    assert!(out.is_up(), "{out:?}");
}

#[tokio::test]
async fn https_accepts_self_signed_by_default_and_rejects_with_tls_verify() {
    let nginx = Nginx::start();
    let mut s = http_spec(Service::Https, "127.0.0.1", nginx.https, "ok");
    s.receive = receive("OK");
    let out = checker(&s).check().await;
    assert!(out.is_up(), "{out:?}");
    s.tls_verify = true;
    let out = checker(&s).check().await;
    assert!(!out.is_up());
    assert!(
        out.reason.starts_with(&format!(
            "Can't connect to 127.0.0.1:{} (certificate verify failed",
            nginx.https
        )),
        "{}",
        out.reason
    );
    // Full verification (with SNI) rejects it as well.
    s.tls_sni = true;
    s.virtualhost = Some("www.example.com".into());
    assert!(!checker(&s).check().await.is_up());
}

#[tokio::test]
async fn sni_only_when_asked() {
    let nginx = Nginx::start();
    let mut s = http_spec(Service::Https, "127.0.0.1", nginx.https, "sni");
    s.virtualhost = Some("www.example.com".into());
    s.receive = receive(r"^sni=\[\]$");
    let out = checker(&s).check().await;
    assert!(out.is_up(), "no SNI by default: {out:?}");
    s.tls_sni = true;
    s.receive = receive(r"^sni=\[www\.example\.com\]$");
    let out = checker(&s).check().await;
    assert!(out.is_up(), "SNI = virtualhost with tls_sni: {out:?}");
}

#[tokio::test]
async fn http_proxy_sends_the_absolute_url_to_the_real() {
    let nginx = Nginx::start();
    // The real server is the proxy; it gets the absolute URL and never resolves the host.
    let mut s = http_spec(Service::HttpProxy, "127.0.0.1", nginx.http, "");
    s.url = Some("http://www.example.com/proxied".into());
    s.receive =
        receive(r"host=www\.example\.com request=GET http://www\.example\.com/proxied HTTP/1\.1");
    let out = checker(&s).check().await;
    assert!(out.is_up(), "{out:?}");
    s.url = Some("http://www.example.com/missing".into());
    s.receive = None;
    let out = checker(&s).check().await;
    assert!(!out.is_up());
    assert_eq!(out.reason, "404 Not Found");
    // Not an absolute URL: down every time, with the reason.
    s.url = Some(String::new());
    let out = checker(&s).check().await;
    assert!(!out.is_up());
    assert!(
        out.reason.contains("absolute http:// URL"),
        "{}",
        out.reason
    );
    // Proxy not listening.
    let mut s = http_spec(Service::HttpProxy, "127.0.0.1", closed_port(), "");
    s.url = Some("http://www.example.com/proxied".into());
    let out = checker(&s).check().await;
    assert!(!out.is_up());
    assert!(
        out.reason.ends_with("(Connection refused)"),
        "{}",
        out.reason
    );
}

/// `HTTP_PROXY`/`http_proxy` in the daemon's environment must not reroute checks. The
/// variables are set for a child run of this same test (setting them in-process would
/// need `unsafe`), pointing at a dead proxy: the check must still go direct.
#[test]
fn environment_proxies_never_apply() {
    if std::env::var_os("LDRS_PROXY_CHILD").is_some() {
        let nginx = Nginx::start();
        let out = block_on(check_http(nginx.http, "ok", Some("OK")));
        assert!(out.is_up(), "went through the environment's proxy: {out:?}");
        return;
    }
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "environment_proxies_never_apply",
            "--test-threads=1",
        ])
        .env("LDRS_PROXY_CHILD", "1")
        .env("HTTP_PROXY", &dead)
        .env("http_proxy", &dead)
        .env("ALL_PROXY", &dead)
        .env("all_proxy", &dead)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .status()
        .unwrap();
    assert!(st.success(), "the child run with HTTP_PROXY={dead} failed");
}

#[tokio::test]
async fn closed_port_is_down_with_a_connect_reason() {
    let port = closed_port();
    let out = check_http(port, "ok", None).await;
    assert!(!out.is_up());
    assert_eq!(
        out.reason,
        format!("Can't connect to 127.0.0.1:{port} (Connection refused)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hung_nginx_fails_within_the_timeout() {
    let nginx = Nginx::start();
    nginx.freeze();
    let mut s = http_spec(Service::Http, "127.0.0.1", nginx.http, "ok");
    s.negotiatetimeout = Duration::from_secs(1);
    let out = tokio::time::timeout(Duration::from_secs(30), checker(&s).check())
        .await
        .expect("check must end");
    nginx.thaw();
    assert!(!out.is_up());
    assert_eq!(out.reason, "timed out after 1s");
}

#[tokio::test]
async fn hung_https_handshake_fails_within_the_timeout() {
    let mut s = http_spec(Service::Https, "127.0.0.1", hung_server(), "ok");
    s.negotiatetimeout = Duration::from_secs(1);
    let out = tokio::time::timeout(Duration::from_secs(30), checker(&s).check())
        .await
        .expect("check must end");
    assert!(!out.is_up());
    assert_eq!(out.reason, "timed out after 1s");
}

#[tokio::test]
async fn resetting_and_garbage_servers_are_down_not_a_panic() {
    for port in [resetting_server(), garbage_server()] {
        for service in [Service::Http, Service::Https] {
            let mut s = http_spec(service, "127.0.0.1", port, "ok");
            s.negotiatetimeout = Duration::from_secs(2);
            let out = checker(&s).check().await;
            assert!(!out.is_up(), "{service:?} on {port}: {out:?}");
            assert!(!out.reason.is_empty());
        }
    }
}

#[tokio::test]
async fn combined_runs_http_once_per_n_plus_one_rounds() {
    use ldirectord_parsers::config::CheckType;
    let nginx = Nginx::start();
    let mut s = http_spec(Service::Http, "127.0.0.1", nginx.http, "ok");
    s.checktype = CheckType::Combined(3);
    s.receive = receive("OK");
    let c = checker(&s);
    for _ in 0..8 {
        assert!(c.check().await.is_up());
    }
    // Rounds: N C C C N C C C: two HTTP requests, six bare connects.
    let log = nginx.access_log_when(|l| l.matches("GET /ok ").count() >= 2);
    assert_eq!(log.matches("GET /ok ").count(), 2, "{log}");
}

/// Plain http checks close with a reset once the answer is read: neither the director nor
/// the real server keeps a TIME_WAIT socket per check (nginx closes first on
/// `Connection: close`, so a normal close would leave one on its side every time).
#[tokio::test]
async fn plain_http_leaves_no_time_wait_on_either_side() {
    let nginx = Nginx::start();
    // Start-up's readiness probe closes first and may still be on its way to TIME_WAIT
    // (FIN_WAIT2 until nginx closes too): every socket of the port before the checks is
    // left out.
    let before = sockets_of(nginx.http, |_| true);
    for path in ["ok", "chunked", "missing", "redirect"] {
        for _ in 0..10 {
            check_http(nginx.http, path, None).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let new: Vec<String> = sockets_of(nginx.http, |state| state == "06")
        .into_iter()
        .filter(|s| !before.contains(s))
        .collect();
    assert!(
        new.is_empty(),
        "sockets of port {} left in TIME_WAIT: {new:?}",
        nginx.http
    );
    // And the checks did reach nginx.
    let log = nginx.access_log_when(|l| l.matches("GET /ok ").count() >= 20);
    assert_eq!(log.matches("GET /ok ").count(), 20, "{log}");
}

/// https through the forwarding path (`checkpath=forwarding`): the check's socket carries
/// the route's mark and the source towards the real, or the namespace's rule refuses it
/// (see `in_forwarding_netns`). The Host it sends is the VIP, as clients send it.
#[test]
fn https_goes_through_the_forwarding_path() {
    use ldirectord_checks::route::DIRECT_ANSWERS;
    in_forwarding_netns(|| {
        let nginx = Nginx::start_on("0.0.0.0");
        let real = FWD_REAL.to_string();
        let mut s = http_spec(Service::Https, &real, nginx.https, "host");
        s.receive = receive(r"^host=10\.2\.0\.1$");
        s.negotiatetimeout = Duration::from_secs(5);
        block_on(async {
            // The rule bites: the VIP without the mark is refused.
            let vip = http_spec(Service::Https, &FWD_VIP.to_string(), nginx.https, "ok");
            let out = checker(&vip).check().await;
            assert!(out.reason.ends_with("(Connection refused)"), "{out:?}");
            // With the mark the rule wants: up, through the VIP.
            let out = checker(&forwarded(&s, FWD_MARK)).check().await;
            assert!(out.is_up(), "{out:?}");
            assert_eq!(out.reason, "200 OK");
            // Another mark: refused on the forwarding path, and the real answers directly
            // (where the Host is the real's address, so the receive is not about it).
            let mut s = http_spec(Service::Https, &real, nginx.https, "ok");
            s.receive = receive("^OK$");
            let out = checker(&forwarded(&s, FWD_MARK + 1)).check().await;
            assert!(!out.is_up());
            assert_eq!(out.reason, DIRECT_ANSWERS);
        });
        // One request through the VIP; the refused ones never reached nginx.
        let log = nginx.access_log_when(|l| l.matches("GET /ok ").count() >= 1);
        assert_eq!(log.matches("GET /host ").count(), 1, "{log}");
        assert_eq!(log.matches("GET /ok ").count(), 1, "{log}");
    });
}
