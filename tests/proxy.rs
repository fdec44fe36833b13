//! The mTLS proxy of `ixgate run` in node-1 of the lab of examples/lab:
//! clients behind telco-a reach each bank's service through the anycast
//! network, the proxy opens a new TLS session to the bank's hidden origin
//! over transit, and every client the bank did not sign is refused at the
//! handshake, so its origin never sees a byte of it.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use ixgate_proxy::HEALTH_USER_AGENT;
use ixgate_testbed::Lab;
use ixgate_testbed::client::{
    ClientOutcome, ClientRequest, HttpVersion, SessionRequest, TlsVersions,
};
use ixgate_testbed::example;
use ixgate_testbed::load::{LoadMode, LoadTarget};
use ixgate_testbed::origin::OriginRequest;
use ixgate_testbed::wait::{self, NotYet};

/// One lab at a time: the 2 cores are for one lab's routers and floods.
static ONE_LAB: Mutex<()> = Mutex::new(());

const NODE: &str = "node-1";
const CLIENT: &str = "client-a";
const BANK_A: Ipv4Addr = example::BANK_A;
const BANK_B: Ipv4Addr = example::BANK_B;
/// node-1's transit source (examples/lab/node-1, `[transit]`).
const TRANSIT_SOURCE: &str = "203.0.113.11";

fn lab() -> Lab {
    let lab = example::serving_client_a().expect("the lab serves client-a");
    lab.exec(
        NODE,
        "ip",
        &["addr", "add", &format!("{BANK_B}/32"), "dev", "lo"],
    )
    .expect("bank-b's service address");
    lab
}

/// A request from client-a to `host` at `address` (see
/// [`example::app_request`]).
fn request(lab: &Lab, host: &str, address: Ipv4Addr, client: Option<&str>) -> ClientRequest {
    example::app_request(lab, host, IpAddr::V4(address), client)
}

/// What reached the origin, less the proxy's own health checks.
fn origin_log(lab: &Lab, origin: &str) -> Vec<OriginRequest> {
    let mut requests = lab.origin_requests(origin).expect("the origin's log");
    requests.retain(|request| request.header("user-agent") != Some(HEALTH_USER_AGENT));
    requests
}

#[test]
fn the_app_gets_through_with_its_identity_and_every_other_client_is_refused_at_the_handshake() {
    let _one = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();
    the_apps_get_through_with_their_identity(&lab);
    every_other_client_is_refused_and_counted(&lab);
    oversized_requests_stop_at_the_proxy(&lab);
    an_idle_connection_is_parked_and_carries_on(&lab);
    // Last: it spends the good certificate's request budget.
    a_stolen_certificate_cannot_flood_the_bank(&lab);
}

/// Each bank's app reaches its own bank's origin, over transit, with its
/// identity in headers.
fn the_apps_get_through_with_their_identity(lab: &Lab) {
    // The bank's app, over HTTP/1.1 and HTTP/2, over TLS 1.2 (whose last
    // server flight comes after the app's) and over TLS 1.3 asked again
    // for its key share (X448 is none of ours: a second server flight),
    // with forged identity headers that must not survive.
    for (http, tls, groups) in [
        (HttpVersion::Http11, TlsVersions::Default, None),
        (HttpVersion::Http2, TlsVersions::Default, None),
        (HttpVersion::Http11, TlsVersions::Only12, None),
        (
            HttpVersion::Http11,
            TlsVersions::Only13,
            Some("X448:X25519"),
        ),
    ] {
        let mut good = request(
            lab,
            "api.bank-a.example",
            BANK_A,
            Some("bank-a-client-good"),
        )
        .path("/accounts?page=1")
        .http(http)
        .tls(tls)
        .header("X-Client-Cert-Subject", "CN=forged")
        .header("Client-Cert", ":Zm9yZ2Vk:");
        if let Some(groups) = groups {
            good = good.groups(groups);
        }
        let outcome = lab.request(CLIENT, &good).expect("curl runs");
        let ClientOutcome::Response { status, body } = &outcome else {
            panic!("{http:?} {tls:?} {groups:?}: the good app was refused: {outcome:?}");
        };
        assert_eq!(*status, 200, "{body}");
        assert!(
            body.contains("bank-a"),
            "the bank's origin answered: {body}"
        );
    }
    let seen = origin_log(lab, "origin-a");
    assert_eq!(seen.len(), 4, "{seen:#?}");
    for request in &seen {
        assert_eq!(request.path, "/accounts?page=1");
        assert_eq!(
            request.peer.ip().to_string(),
            TRANSIT_SOURCE,
            "the origin is reached from the node's transit side"
        );
        assert_eq!(request.sni.as_deref(), Some("origin.bank-a.example"));
        let subject = request.header("x-client-cert-subject").unwrap_or_default();
        assert!(
            subject.contains("bank-a app good") && !subject.contains("forged"),
            "{request:#?}"
        );
        let client_cert = request.header("client-cert").unwrap_or_default();
        assert!(
            client_cert.starts_with(':') && client_cert.len() > 100,
            "RFC 9440 Client-Cert: {client_cert}"
        );
        assert_eq!(
            request.header("x-client-cert-san"),
            Some("DNS:good.app.bank-a.example")
        );
        assert_eq!(
            request.header("x-client-cert-sha256").map(str::len),
            Some(64)
        );
        assert_eq!(request.header("x-forwarded-for"), Some("198.51.100.66"));
        assert_eq!(request.header("host"), Some("api.bank-a.example"));
    }
    // The app's source is now in the firewall's trusted set: its SYNs skip
    // the per-destination limit during a flood.
    wait::until(
        Duration::from_secs(2),
        "client-a in the trusted set",
        || {
            let listed = lab
                .exec(
                    NODE,
                    "nft",
                    &["list", "set", "netdev", "ixgate", "trusted_v4"],
                )
                .map_err(|error| NotYet::Failed(error.to_string()))?;
            let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
            if listed.contains("198.51.100.66") {
                Ok(())
            } else {
                Err(NotYet::Pending(listed))
            }
        },
    )
    .expect("the verified source is trusted");
    // bank-b's app reaches bank-b's origin, not bank-a's.
    let other = request(
        lab,
        "api.bank-b.example",
        BANK_B,
        Some("bank-b-client-good"),
    );
    let outcome = lab.request(CLIENT, &other).expect("curl runs");
    assert!(
        matches!(&outcome, ClientOutcome::Response { status: 200, .. }),
        "{outcome:?}"
    );
    assert_eq!(origin_log(lab, "origin-b").len(), 1);
}

/// Every client the bank did not sign, and every bad handshake, with the
/// reason it is counted under (TLS 1.1 is refused at its ClientHello,
/// before it names a service).
const REFUSED: [(&str, Option<&str>, TlsVersions, &str); 9] = [
    (
        "no certificate",
        None,
        TlsVersions::Default,
        "no_client_cert",
    ),
    (
        "another bank's app",
        Some("bank-b-client-good"),
        TlsVersions::Default,
        "unknown_ca",
    ),
    (
        "expired",
        Some("bank-a-client-expired"),
        TlsVersions::Default,
        "expired",
    ),
    (
        "not yet valid",
        Some("bank-a-client-not-yet-valid"),
        TlsVersions::Default,
        "not_yet_valid",
    ),
    (
        "revoked",
        Some("bank-a-client-revoked"),
        TlsVersions::Default,
        "revoked",
    ),
    (
        "not for client auth",
        Some("bank-a-client-wrong-eku"),
        TlsVersions::Default,
        "wrong_purpose",
    ),
    (
        "self-signed",
        Some("bank-a-client-self-signed"),
        TlsVersions::Default,
        "unknown_ca",
    ),
    (
        "TLS 1.1",
        Some("bank-a-client-good"),
        TlsVersions::Only11,
        ":incompatible",
    ),
    (
        "TLS 1.2, revoked",
        Some("bank-a-client-revoked"),
        TlsVersions::Only12,
        "revoked",
    ),
];

/// The negative matrix: nothing of it reaches the origin; each is counted
/// under its reason.
fn every_other_client_is_refused_and_counted(lab: &Lab) {
    for (what, client, tls, _) in &REFUSED {
        let bad = request(lab, "api.bank-a.example", BANK_A, *client)
            .tls(*tls)
            .path("/must-not-arrive");
        let outcome = lab.request(CLIENT, &bad).expect("curl runs");
        let ClientOutcome::Failed { message, .. } = &outcome else {
            panic!("{what}: {outcome:?}");
        };
        // The app is told why: in TLS 1.3 the alert is encrypted and
        // follows the handshake, and must not be lost with the connection.
        assert!(
            message.contains("alert"),
            "{what}: told by an alert: {message}"
        );
    }
    let unknown = request(
        lab,
        "api.unknown.example",
        BANK_A,
        Some("bank-a-client-good"),
    )
    .path("/must-not-arrive");
    let outcome = lab.request(CLIENT, &unknown).expect("curl runs");
    assert!(
        matches!(outcome, ClientOutcome::Failed { .. }),
        "{outcome:?}"
    );

    assert_eq!(
        origin_log(lab, "origin-a").len(),
        4,
        "not one request of a refused client reached the bank"
    );
    let metrics = lab.metrics(NODE).expect("metrics");
    let mut expected = std::collections::BTreeMap::new();
    for (_, _, _, reason) in &REFUSED {
        *expected.entry(*reason).or_insert(0.0) += 1.0;
    }
    for (reason, count) in expected {
        let (service, reason) = reason
            .strip_prefix(':')
            .map_or(("bank-a", reason), |r| ("", r));
        let key = format!(
            "ixgate_proxy_handshake_failures_total{{service=\"{service}\",reason=\"{reason}\",transport=\"tcp\"}}"
        );
        assert_eq!(metrics.value(&key), Some(count), "{key}\n{metrics}");
    }
    assert_eq!(
        metrics.value("ixgate_proxy_handshake_failures_total{service=\"\",reason=\"unknown_sni\",transport=\"tcp\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metrics.value(
            "ixgate_proxy_requests_total{service=\"bank-a\",protocol=\"h2\",status=\"200\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}

/// A body over the service's limit (1 MiB by default) gets 413, headers
/// over theirs (16 KiB) 431; the bank sees neither.
fn oversized_requests_stop_at_the_proxy(lab: &Lab) {
    let big = lab.run_dir().join("two-mebibytes");
    std::fs::write(&big, vec![b'x'; 2 * 1024 * 1024]).expect("write the body");
    let before = origin_log(lab, "origin-a").len();
    let post = request(
        lab,
        "api.bank-a.example",
        BANK_A,
        Some("bank-a-client-good"),
    )
    .path("/too-big")
    .body(big);
    let outcome = lab.request(CLIENT, &post).expect("curl runs");
    assert!(
        matches!(outcome, ClientOutcome::Response { status: 413, .. }),
        "{outcome:?}"
    );
    let long = "a".repeat(20 * 1024);
    let get = request(
        lab,
        "api.bank-a.example",
        BANK_A,
        Some("bank-a-client-good"),
    )
    .path("/too-long")
    .header("X-Long", &long);
    let outcome = lab.request(CLIENT, &get).expect("curl runs");
    assert!(
        matches!(outcome, ClientOutcome::Response { status: 431, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        origin_log(lab, "origin-a").len(),
        before,
        "the bank saw neither"
    );
}

/// bank-a's limit in examples/lab/node-1: 20 requests per second per app
/// certificate, with a burst of one second's worth.
const RATE_PER_CERTIFICATE: f64 = 20.0;

/// bank-a's good app as the load generator plays it, from client-a.
fn good_app(lab: &Lab) -> LoadTarget {
    let pki = lab.pki_dir();
    LoadTarget {
        address: SocketAddr::new(IpAddr::V4(BANK_A), 443),
        server_name: "api.bank-a.example".to_owned(),
        ca: pki.join("server-ca.pem"),
        certificate: pki.join("bank-a-client-good.pem"),
        key: pki.join("bank-a-client-good.key"),
    }
}

/// One app certificate sending requests as fast as two connections can
/// for a second: the bank sees the certificate's rate and burst, no more;
/// the rest is answered 429 and counted.
fn a_stolen_certificate_cannot_flood_the_bank(lab: &Lab) {
    let stolen = good_app(lab);
    let before = arrived(lab, "/");
    let flood = LoadMode::Requests {
        connections: 2,
        duration: Duration::from_secs(1),
    };
    let report = lab.load(CLIENT, &stolen, flood).expect("the load runs");
    let reached = arrived(lab, "/") - before;
    let count = |n: u64| f64::from(u32::try_from(n).unwrap_or(u32::MAX));
    let allowed = RATE_PER_CERTIFICATE * (1.0 + report.elapsed_s);
    assert!(
        count(report.ok) <= allowed.ceil() && reached == usize::try_from(report.ok).unwrap_or(0),
        "{report:?}: {reached} reached the bank, at most {allowed} allowed"
    );
    assert!(report.failed > report.ok, "{report:?}: most were refused");
    let limited = lab
        .metrics(NODE)
        .expect("metrics")
        .value("ixgate_proxy_rate_limited_total{service=\"bank-a\"}");
    assert_eq!(limited, Some(count(report.failed)), "every refusal counted");
}

/// Between requests an HTTP/1.1 connection gives hyper's buffers back
/// (it is parked, holding only its TLS session): at once the first time,
/// after a second of quiet once it came back quickly. The app's next
/// request on it is served as if nothing happened, with its identity;
/// its close_notify is answered with the proxy's.
fn an_idle_connection_is_parked_and_carries_on(lab: &Lab) {
    until_parked(lab, 0.0, "no connection parked before");
    let before = origin_log(lab, "origin-a").len();
    let mut app = PacedApp::start(lab, 3);
    // One connection: the generator answers 0 if the proxy closed it.
    for request in ["first", "second", "third"] {
        assert_eq!(app.request(), "answered 200", "the {request} request");
        // Between requests only the TLS session is held.
        until_parked(lab, 1.0, "the connection to park after its answer");
    }
    let report = app.finish();
    assert!(
        report.contains("closed: the proxy answered close_notify"),
        "a parked connection answers the app's close_notify: {report}"
    );
    until_parked(lab, 0.0, "the closed connection to leave the count");
    let arrivals = origin_log(lab, "origin-a").split_off(before);
    assert_eq!(arrivals.len(), 3, "three requests: {arrivals:?}; {report}");
    for arrival in &arrivals {
        assert!(
            arrival
                .header("client-cert")
                .is_some_and(|cert| cert.len() > 100),
            "every request carries the app's certificate: {arrival:?}"
        );
    }
}

/// Waits until `count` connections of node-1 are parked.
fn until_parked(lab: &Lab, count: f64, what: &str) {
    wait::until(Duration::from_secs(5), what, || {
        let parked = lab
            .metrics(NODE)
            .map_err(|error| NotYet::Failed(error.to_string()))?
            .value("ixgate_proxy_connections_parked")
            .ok_or_else(|| NotYet::Failed("no parked gauge".into()))?;
        if (parked - count).abs() < f64::EPSILON {
            Ok(())
        } else {
            Err(NotYet::Pending(format!("{parked} parked")))
        }
    })
    .expect("the parked count");
}

/// bank-a's good app on one keep-alive connection from client-a, each
/// request made when the test says.
struct PacedApp {
    driver: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl PacedApp {
    fn start(lab: &Lab, requests: u64) -> Self {
        let mut driver = lab
            .load_command(CLIENT, &good_app(lab), LoadMode::Paced { requests })
            .expect("the load generator")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the load generator runs");
        let stdin = driver.stdin.take().expect("its input");
        let stdout = std::io::BufReader::new(driver.stdout.take().expect("its output"));
        Self {
            driver,
            stdin,
            stdout,
        }
    }

    /// The next request: `answered STATUS` (0: the connection failed).
    fn request(&mut self) -> String {
        use std::io::{BufRead as _, Write as _};
        writeln!(self.stdin, "go").expect("ask for a request");
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).expect("its answer");
        answer.trim().to_owned()
    }

    /// Closes the connection; the generator's report.
    fn finish(self) -> String {
        let Self {
            mut driver,
            stdin,
            mut stdout,
        } = self;
        drop(stdin);
        let mut report = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut report).expect("its report");
        driver.wait().expect("the load generator ends");
        report
    }
}

#[test]
fn sigterm_serves_through_the_graceful_shutdown_then_drains_the_apps_connections() {
    let _one = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();
    let mut app = PacedApp::start(&lab, 3);
    assert_eq!(app.request(), "answered 200", "before the shutdown");
    until_parked(&lab, 1.0, "the connection to park");
    lab.terminate_appliance(NODE).expect("SIGTERM");
    // While the telcos are told to move away (RFC 8326), the node serves.
    assert_eq!(app.request(), "answered 200", "during GRACEFUL_SHUTDOWN");
    // After the withdrawal the proxy closes the idle connection and the
    // appliance goes.
    let log = lab.run_dir().join(NODE).join("ixgate.out");
    let drained = wait::until(Duration::from_secs(15), "the drain", || {
        let text = std::fs::read_to_string(&log).map_err(|e| NotYet::Failed(e.to_string()))?;
        text.lines()
            .find(|line| line.contains("\"proxy_drained\""))
            .map(str::to_owned)
            .ok_or_else(|| NotYet::Pending("not yet".into()))
    })
    .expect("the proxy drained");
    assert!(
        drained.contains("\"connections_left\":0"),
        "every connection closed: {drained}"
    );
    assert_eq!(app.request(), "answered 0", "the connection was closed");
    wait::until(
        Duration::from_secs(10),
        "the appliance to exit",
        || match lab.appliance_pid(NODE) {
            Ok(pid) => Err(NotYet::Pending(format!("pid {pid} still runs"))),
            Err(_) => Ok(()),
        },
    )
    .expect("the appliance exits");
    app.finish();
}

/// A session of `client` (a stem of the test PKI) to bank-a's service,
/// saved in `save`, offering `resume` when given.
fn session(lab: &Lab, client: &str, save: &str, resume: Option<&str>) -> SessionRequest {
    let run = lab.run_dir();
    SessionRequest {
        request: request(lab, "api.bank-a.example", BANK_A, Some(client)).path("/session"),
        save: run.join(save),
        resume: resume.map(|stem| run.join(stem)),
    }
}

/// Makes `session` from `client` and checks whether it resumed and
/// which status it got (`None`: refused at the handshake).
fn expect_session(
    lab: &Lab,
    client: &str,
    session: &SessionRequest,
    expected: (bool, Option<u16>),
    what: &str,
) {
    let outcome = lab.session_request(client, session).expect("s_client runs");
    assert_eq!(
        (outcome.resumed, outcome.status),
        expected,
        "{what}: {}",
        outcome.transcript
    );
}

/// Requests with `path` that reached bank-a's origin.
fn arrived(lab: &Lab, path: &str) -> usize {
    origin_log(lab, "origin-a")
        .iter()
        .filter(|request| request.path == path)
        .count()
}

#[test]
fn sessions_resume_on_either_node_and_a_crl_reload_ends_them_for_the_newly_revoked() {
    let _one = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut lab = lab();
    lab.start_anycast_service(
        "node-2",
        SocketAddr::new(IpAddr::V4(BANK_A), 443),
        "198.51.100.96/27",
        "198.51.100.2",
        "client-b",
    )
    .expect("node-2 serves client-b through telco-b");

    // A full handshake on node-1 (through telco-a), then the same session
    // resumed on node-2 (through telco-b): both derive the same ticket keys
    // from the shared file.
    let app = "bank-a-client-revoked-later";
    let first = session(&lab, app, "first.session", None);
    expect_session(&lab, CLIENT, &first, (false, Some(200)), "full handshake");
    let again = session(&lab, app, "again.session", Some("first.session"));
    expect_session(
        &lab,
        "client-b",
        &again,
        (true, Some(200)),
        "resumed on node-2",
    );
    let peers: Vec<String> = origin_log(&lab, "origin-a")
        .iter()
        .map(|request| request.peer.ip().to_string())
        .collect();
    assert_eq!(
        peers,
        ["203.0.113.11", "203.0.113.12"],
        "one request through each node's transit side"
    );

    // A connection established before the reloads, used after them.
    let good = session(&lab, "bank-a-client-good", "good.session", None);
    let established = lab.open_session(CLIENT, &good).expect("s_client runs");

    // A broken CRL: the reload is refused whole, the service carries on.
    let crl = lab.pki_dir().join("bank-a.crl.pem");
    let good_crl = std::fs::read(&crl).expect("the CRL");
    std::fs::write(
        &crl,
        b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    )
    .expect("write the broken CRL");
    let refused = lab.ctl(NODE, &["reload"]);
    assert!(
        format!("{refused:?}").contains("bank-a.crl.pem"),
        "a broken CRL was taken, or the refusal does not name it: {refused:?}"
    );
    std::fs::write(&crl, &good_crl).expect("restore the CRL");
    expect_session(
        &lab,
        CLIENT,
        &again,
        (true, Some(200)),
        "the old one serves",
    );

    // The bank's next CRL revokes the app; SIGHUP reloads (as systemd's
    // ExecReload does). Then its session no longer resumes on node-1 and
    // its full handshake is refused.
    std::fs::copy(lab.pki_dir().join("bank-a.crl-next.pem"), &crl).expect("the next CRL");
    let pid = lab.appliance_pid(NODE).expect("node-1's ixgate");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(hup.success(), "SIGHUP sent");
    wait::until(Duration::from_secs(5), "the reload to take", || {
        let outcome = lab
            .session_request(CLIENT, &again)
            .map_err(|error| NotYet::Failed(error.to_string()))?;
        if outcome.status.is_none() {
            Ok(())
        } else {
            Err(NotYet::Pending(format!("{:?}", outcome.status)))
        }
    })
    .expect("after SIGHUP the revoked app is refused");
    let before = arrived(&lab, "/session");
    expect_session(
        &lab,
        CLIENT,
        &again,
        (false, None),
        "revoked since its ticket",
    );
    assert_eq!(arrived(&lab, "/session"), before, "nothing of it arrived");

    // The connection from before the reloads still carries a request, and
    // a good app still gets through afresh.
    let established = established.finish().expect("s_client ends");
    assert_eq!(
        established.status,
        Some(200),
        "an established connection survives reloads: {}",
        established.transcript
    );
    expect_session(&lab, CLIENT, &good, (false, Some(200)), "the good app");
    let metrics = lab.metrics(NODE).expect("metrics");
    let revoked = "ixgate_proxy_handshake_failures_total{service=\"bank-a\",reason=\"revoked\",transport=\"tcp\"}";
    // The refusal that ended the wait for the reload, and the one after.
    assert_eq!(metrics.value(revoked), Some(2.0), "{metrics}");
}

/// node-1's file with bank-a's client idle timeout at `idle` (the lab's is
/// the default 60 s), reloaded.
fn set_bank_a_idle(lab: &Lab, idle: &str) {
    lab.reconfigure(NODE, |text| {
        // bank-a is the first service: its tables end where bank-b's begins.
        let bank_b = "\n[[services]]\nname = \"bank-b\"";
        text.replacen(
            bank_b,
            &format!("\n[services.timeouts]\nclient_idle = \"{idle}\"\n{bank_b}"),
            1,
        )
    })
    .expect("the reload is taken");
}

/// The seconds from `since` to now, for assertions on timeouts.
fn seconds_since(since: std::time::Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

#[test]
fn idle_http2_connections_and_slow_request_heads_are_closed_on_time() {
    let _one = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();
    set_bank_a_idle(&lab, "2s");
    let before = origin_log(&lab, "origin-a").len();

    // HTTP/2 has no idle timeout in hyper: our watchdog sends GOAWAY after
    // 2 s without a byte either way, and ends the connection.
    let mut h2 = session(&lab, "bank-a-client-good", "h2.session", None);
    h2.request = h2.request.http(HttpVersion::Http2);
    let mut opened = lab.open_session(CLIENT, &h2).expect("s_client runs");
    // An app's HTTP/2 start (RFC 9113 §3.4): the preface and an empty
    // SETTINGS frame; then nothing.
    let mut start = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    start.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    assert!(opened.send(&start), "the connection is open");
    let since = std::time::Instant::now();
    let transcript = opened.closed().expect("s_client ends");
    let idle_for = seconds_since(since);
    // GOAWAY (RFC 9113 §6.8: length 8, type 7, stream 0) after 2 s;
    // s_client does not answer the PING that h2 sends with it, like a
    // phone gone silent, so the connection ends after the 5 s grace (without
    // the watchdog it would stay until s_client's own 30 s bound).
    assert!(
        transcript.contains("\0\0\x08\x07\0\0\0\0\0"),
        "a GOAWAY came: {transcript}"
    );
    assert!(
        (6.5..8.5).contains(&idle_for),
        "closed {idle_for:.1} s after its last bytes (idle 2 s, grace 5 s)"
    );

    // Slowloris: a request head one byte at a time keeps bytes moving, so
    // the idle timer never fires; the head's own deadline (the idle time,
    // at most 10 s) closes the connection all the same.
    let slow = session(&lab, "bank-a-client-good", "slow.session", None);
    let mut opened = lab.open_session(CLIENT, &slow).expect("s_client runs");
    let head = b"GET /slowloris HTTP/1.1\r\nHost: api.bank-a.example\r\nX-Padding: ";
    let since = std::time::Instant::now();
    let mut sent = 0;
    // One byte every 200 ms: the attack's pace, not a wait for a state.
    while seconds_since(since) < 15.0 && opened.send(&[head[sent % head.len()]]) {
        sent += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let trickled_for = seconds_since(since);
    assert!(
        (1.5..4.0).contains(&trickled_for),
        "the slow head was cut off after {trickled_for:.1} s ({sent} bytes sent)"
    );
    let _ = opened.closed();
    let arrived = origin_log(&lab, "origin-a");
    assert_eq!(
        arrived.len(),
        before,
        "nothing of either reached the bank: {arrived:#?}"
    );
}
