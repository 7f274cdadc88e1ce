//! ldap/ldaps negotiate checks against a real OpenLDAP slapd (Debian `slapd`), configured
//! from a slapd.conf in a temp dir with a tiny mdb database loaded by slapadd, listening
//! on ldap:// and ldaps:// (self-signed certificate) free loopback ports.

mod proto_support;

use std::process::Command;
use std::sync::{Mutex, Weak};

use ldirectord_checks::CheckSpec;
use ldirectord_parsers::config::Service;
use proto_support::*;

struct Slapd {
    _daemon: Daemon,
    ldap: u16,
    ldaps: u16,
}

static SLAPD: Mutex<Weak<Slapd>> = Mutex::new(Weak::new());

const DATA: &str = "\
dn: dc=example,dc=test
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=health,dc=example,dc=test
objectClass: organizationalUnit
ou: health

dn: cn=monitor-user,dc=example,dc=test
objectClass: person
cn: monitor-user
sn: user
userPassword: s3cret
";

fn slapd() -> std::sync::Arc<Slapd> {
    shared(&SLAPD, || start_slapd("127.0.0.1"))
}

/// slapd listening on `ipv4` (`0.0.0.0`: every address, in a namespace of the test's).
fn start_slapd(ipv4: &str) -> Slapd {
    let binary = require("/usr/sbin/slapd", "slapd");
    let slapadd = require("/usr/sbin/slapadd", "slapd");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = self_signed_cert(d, "localhost");
    std::fs::create_dir(d.join("db")).unwrap();
    let conf = format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
         pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n\
         TLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n\
         database mdb\nmaxsize 10485760\nsuffix \"dc=example,dc=test\"\n\
         rootdn \"cn=admin,dc=example,dc=test\"\nrootpw adminpw\ndirectory {d}/db\n\
         access to attrs=userPassword by anonymous auth by * none\n\
         access to * by * read\n",
        d = d.display(),
        cert = cert.display(),
        key = key.display(),
    );
    let conf_path = d.join("slapd.conf");
    std::fs::write(&conf_path, conf).unwrap();
    std::fs::write(d.join("data.ldif"), DATA).unwrap();
    let out = Command::new(slapadd)
        .arg("-f")
        .arg(&conf_path)
        .arg("-l")
        .arg(d.join("data.ldif"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "slapadd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ldap, ldaps) = (free_port(), free_port());
    let mut cmd = Command::new(binary);
    cmd.arg("-d")
        .arg("0")
        .arg("-f")
        .arg(&conf_path)
        .arg("-h")
        .arg(format!("ldap://{ipv4}:{ldap}/ ldaps://{ipv4}:{ldaps}/"));
    let mut daemon = Daemon::spawn("slapd", dir, cmd);
    daemon.wait_tcp(ldap);
    daemon.wait_tcp(ldaps);
    Slapd {
        _daemon: daemon,
        ldap,
        ldaps,
    }
}

fn ldap(service: Service, port: u16, request: &str, pattern: Option<&str>) -> CheckSpec {
    let mut spec = spec(service, port);
    spec.request = request.to_owned();
    spec.receive = pattern.and_then(receive);
    spec
}

#[tokio::test]
async fn up_anonymously_on_the_root_dse_and_an_entry() {
    let server = slapd();
    // Default request `/`: empty base, the root DSE.
    let outcome = run(&ldap(Service::Ldap, server.ldap, "/", None)).await;
    assert_up(&outcome);
    assert_eq!(outcome.reason, "Success");
    assert_up(
        &run(&ldap(
            Service::Ldap,
            server.ldap,
            "/ou=health,dc=example,dc=test",
            Some("^ou=health,"),
        ))
        .await,
    );
}

#[tokio::test]
async fn ldaps_up_with_a_self_signed_certificate() {
    let server = slapd();
    assert_up(
        &run(&ldap(
            Service::Ldaps,
            server.ldaps,
            "/dc=example,dc=test",
            Some("dc=example"),
        ))
        .await,
    );
}

#[tokio::test]
async fn up_with_a_simple_bind() {
    let server = slapd();
    let mut spec = ldap(
        Service::Ldap,
        server.ldap,
        "/ou=health,dc=example,dc=test",
        None,
    );
    spec.login = "cn=monitor-user,dc=example,dc=test".to_owned();
    spec.passwd = "s3cret".to_owned();
    assert_up(&run(&spec).await);
}

#[tokio::test]
async fn down_on_wrong_password() {
    let server = slapd();
    for (service, port) in [(Service::Ldap, server.ldap), (Service::Ldaps, server.ldaps)] {
        let mut spec = ldap(service, port, "/ou=health,dc=example,dc=test", None);
        spec.login = "cn=monitor-user,dc=example,dc=test".to_owned();
        spec.passwd = "wrong".to_owned();
        assert_down(&run(&spec).await, "Bind failed: rc=49 (invalidCredentials)");
    }
}

#[tokio::test]
async fn down_when_the_dn_does_not_match_or_the_entry_is_missing() {
    let server = slapd();
    let outcome = run(&ldap(
        Service::Ldap,
        server.ldap,
        "/ou=health,dc=example,dc=test",
        Some("^cn="),
    ))
    .await;
    assert_down(&outcome, "Response mismatch: ou=health,dc=example,dc=test");
    let outcome = run(&ldap(
        Service::Ldap,
        server.ldap,
        "/ou=gone,dc=example,dc=test",
        None,
    ))
    .await;
    assert_down(&outcome, "Search failed: rc=32 (noSuchObject)");
}

#[tokio::test]
async fn down_on_closed_port() {
    let port = free_port();
    assert_down(
        &run(&ldap(Service::Ldap, port, "/", None)).await,
        "Connection failed",
    );
    assert_down(
        &run(&ldap(Service::Ldaps, port, "/", None)).await,
        "Connection failed",
    );
}

#[tokio::test]
async fn ldaps_down_when_the_server_speaks_plaintext() {
    let server = slapd();
    let outcome = run(&short(ldap(Service::Ldaps, server.ldap, "/", None))).await;
    assert!(
        !outcome.is_up(),
        "plaintext port passed as ldaps: {}",
        outcome.reason
    );
}

#[tokio::test]
async fn down_within_timeout_when_server_hangs() {
    let hung = hung_tcp();
    assert_timed_out(&run(&short(ldap(Service::Ldap, hung.port, "/", None))).await);
    assert_timed_out(&run(&short(ldap(Service::Ldaps, hung.port, "/", None))).await);
}

#[tokio::test]
async fn the_smaller_of_checktimeout_and_negotiatetimeout_bounds_the_check() {
    let hung = hung_tcp();
    let mut spec = ldap(Service::Ldap, hung.port, "/", None);
    spec.checktimeout = std::time::Duration::from_secs(1);
    spec.negotiatetimeout = std::time::Duration::from_secs(30);
    assert_timed_out(&run(&spec).await);
}

/// ldap and ldaps through the forwarding path (`checkpath=forwarding`): ldap3 runs on the
/// check's own socket, which carries the route's mark and the source towards the real, or
/// the namespace's rule refuses it (see `in_forwarding_netns`).
#[test]
fn ldap_and_ldaps_go_through_the_forwarding_path() {
    use ldirectord_checks::route::DIRECT_ANSWERS;
    in_forwarding_netns(|| {
        let server = start_slapd("0.0.0.0");
        for (service, port) in [(Service::Ldap, server.ldap), (Service::Ldaps, server.ldaps)] {
            let mut real = ldap(service, port, "/dc=example,dc=test", Some("dc=example"));
            real.ip = FWD_REAL;
            block_on(async {
                let mut vip = real.clone();
                vip.ip = FWD_VIP;
                assert_down(&run(&short(vip)).await, "Connection refused");
                let through = run(&forwarded(&real, FWD_MARK)).await;
                assert_up(&through);
                assert_eq!(through.reason, "Success");
                let other = run(&forwarded(&real, FWD_MARK + 1)).await;
                assert_down(&other, DIRECT_ANSWERS);
            });
        }
    });
}
