//! The mTLS proxy of `ixgate run` in node-1 of the lab of examples/lab:
//! clients behind telco-a reach each bank's service through the anycast
//! network, the proxy opens a new TLS session to the bank's hidden origin
//! over transit, and every client the bank did not sign is refused at the
//! handshake, so its origin never sees a byte of it.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;

use ixgate_proxy::HEALTH_USER_AGENT;
use ixgate_testbed::Lab;
use ixgate_testbed::client::{ClientOutcome, ClientRequest, HttpVersion, TlsVersions};
use ixgate_testbed::origin::OriginRequest;
use ixgate_testbed::topology::Topology;

/// One lab at a time: the 2 cores are for one lab's routers and floods.
static ONE_LAB: Mutex<()> = Mutex::new(());

const NODE: &str = "node-1";
const CLIENT: &str = "client-a";
const BANK_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const BANK_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
/// node-1's transit source (examples/lab/node-1, `[transit]`).
const TRANSIT_SOURCE: &str = "203.0.113.11";

fn lab() -> Lab {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/topologies/lab.toml");
    let topology = Topology::load(&path).expect("topology").with_appliances();
    let mut lab = Lab::start(topology).expect("lab starts");
    lab.start_anycast_service(
        NODE,
        SocketAddr::new(IpAddr::V4(BANK_A), 443),
        "198.51.100.64/27",
        "198.51.100.1",
        CLIENT,
    )
    .expect("the service answers through the firewall");
    lab.exec(
        NODE,
        "ip",
        &["addr", "add", &format!("{BANK_B}/32"), "dev", "lo"],
    )
    .expect("bank-b's service address");
    lab
}

/// A request from client-a to `host` at `address`, trusting ixgate's
/// server CA, with the app certificate `client` of the test PKI
/// (`bank-a-client-good`, …) when given.
fn request(lab: &Lab, host: &str, address: Ipv4Addr, client: Option<&str>) -> ClientRequest {
    let pki = lab.pki_dir();
    let request = ClientRequest::new(host, 443, IpAddr::V4(address), pki.join("server-ca.pem"));
    match client {
        Some(stem) => request.certificate(
            pki.join(format!("{stem}.pem")),
            pki.join(format!("{stem}.key")),
        ),
        None => request,
    }
}

/// What reached the origin, less the proxy's own health checks.
fn origin_log(lab: &Lab, origin: &str) -> Vec<OriginRequest> {
    let mut requests = lab.origin_requests(origin).expect("the origin's log");
    requests.retain(|request| request.header("user-agent") != Some(HEALTH_USER_AGENT));
    requests
}

/// The proxy's metrics, from the management address inside node-1.
fn metrics(lab: &Lab) -> String {
    let output = lab
        .exec(NODE, "curl", &["--silent", "http://127.0.0.1:9180/metrics"])
        .expect("the metrics endpoint");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of the sample `name{labels}` in `metrics`, if there is one.
fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(name_and_labels)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

#[test]
fn the_app_gets_through_with_its_identity_and_every_other_client_is_refused_at_the_handshake() {
    let _one = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();
    the_apps_get_through_with_their_identity(&lab);
    every_other_client_is_refused_and_counted(&lab);
}

/// Each bank's app reaches its own bank's origin, over transit, with its
/// identity in headers.
fn the_apps_get_through_with_their_identity(lab: &Lab) {
    // The bank's app, over HTTP/1.1 and HTTP/2, with forged identity
    // headers that must not survive.
    for http in [HttpVersion::Http11, HttpVersion::Http2] {
        let good = request(
            lab,
            "api.bank-a.example",
            BANK_A,
            Some("bank-a-client-good"),
        )
        .path("/accounts?page=1")
        .http(http)
        .header("X-Client-Cert-Subject", "CN=forged")
        .header("Client-Cert", ":Zm9yZ2Vk:");
        let outcome = lab.request(CLIENT, &good).expect("curl runs");
        let ClientOutcome::Response { status, body } = &outcome else {
            panic!("{http:?}: the good app was refused: {outcome:?}");
        };
        assert_eq!(*status, 200, "{body}");
        assert!(
            body.contains("bank-a"),
            "the bank's origin answered: {body}"
        );
    }
    let seen = origin_log(lab, "origin-a");
    assert_eq!(seen.len(), 2, "{seen:#?}");
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
        assert!(
            matches!(outcome, ClientOutcome::Failed { .. }),
            "{what}: {outcome:?}"
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
        2,
        "not one request of a refused client reached the bank"
    );
    let metrics = metrics(lab);
    let mut expected = std::collections::BTreeMap::new();
    for (_, _, _, reason) in &REFUSED {
        *expected.entry(*reason).or_insert(0.0) += 1.0;
    }
    for (reason, count) in expected {
        let (service, reason) = reason
            .strip_prefix(':')
            .map_or(("bank-a", reason), |r| ("", r));
        let key = format!(
            "ixgate_proxy_handshake_failures_total{{service=\"{service}\",reason=\"{reason}\"}}"
        );
        assert_eq!(sample(&metrics, &key), Some(count), "{key}\n{metrics}");
    }
    assert_eq!(
        sample(
            &metrics,
            "ixgate_proxy_handshake_failures_total{service=\"\",reason=\"unknown_sni\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "ixgate_proxy_requests_total{service=\"bank-a\",protocol=\"h2\",status=\"200\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}
