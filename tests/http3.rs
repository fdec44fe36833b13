//! HTTP/3 through `ixgate run` in node-1 of the lab of examples/lab: the
//! app over QUIC with mutual TLS, bank-a's service chosen by its address
//! (`[services.http3]`), the same identity headers and origin as over
//! TCP; every client the bank did not sign is refused at the handshake
//! and its origin sees nothing; a phone that changes address keeps its
//! connection; Retry under load; Alt-Svc on the TCP side.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ixgate_proxy::HEALTH_USER_AGENT;
use ixgate_testbed::Lab;
use ixgate_testbed::client::{ClientOutcome, ClientRequest, HttpVersion};
use ixgate_testbed::example;
use ixgate_testbed::h3::H3Run;
use ixgate_testbed::origin::OriginRequest;
use ixgate_testbed::wait::{self, NotYet};

const NODE: &str = "node-1";
const CLIENT: &str = "client-a";
/// client-a's address, and a second one on its network (the phone moves).
const CLIENT_ADDRESS: &str = "198.51.100.66";
const CLIENT_MOVED: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 67);
const TRANSIT_SOURCE: &str = "203.0.113.11";

/// A request from client-a to bank-a's address over HTTP/3, as `host`,
/// with the app certificate `client` of the test PKI when given.
fn h3_request(lab: &Lab, host: &str, client: Option<&str>) -> ClientRequest {
    example::app_request(lab, host, IpAddr::V4(example::BANK_A), client).http(HttpVersion::Http3)
}

/// What reached bank-a's origin, less the proxy's own health checks.
fn origin_log(lab: &Lab) -> Vec<OriginRequest> {
    let mut requests = lab.origin_requests("origin-a").expect("the origin's log");
    requests.retain(|request| request.header("user-agent") != Some(HEALTH_USER_AGENT));
    requests
}

/// A counter of node-1's metrics (0 before it first counts).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn metric(lab: &Lab, name: &str) -> u64 {
    lab.metrics(NODE)
        .expect("node-1's metrics")
        .value(name)
        .map_or(0, |value| value as u64)
}

#[test]
fn apps_over_http3_get_through_others_are_refused_and_a_moving_phone_keeps_its_connection() {
    let lab = example::serving_client_a().expect("the lab serves client-a");
    the_app_gets_through_with_its_identity(&lab);
    every_other_client_is_refused_and_the_origin_sees_nothing(&lab);
    a_phone_that_moves_keeps_its_connection(&lab);
    tcp_answers_advertise_http3_where_the_service_has_it(&lab);
    under_load_new_clients_prove_their_address_first(&lab);
    beyond_the_handshake_cap_initials_are_dropped(&lab);
}

fn the_app_gets_through_with_its_identity(lab: &Lab) {
    let good = h3_request(lab, "api.bank-a.example", Some("bank-a-client-good"))
        .path("/accounts?page=3")
        .header("X-Client-Cert-Subject", "CN=forged");
    let outcome = lab.request(CLIENT, &good).expect("the h3 client runs");
    let ClientOutcome::Response { status, body } = &outcome else {
        panic!("the good app was refused over HTTP/3: {outcome:?}");
    };
    assert_eq!(*status, 200, "{body}");
    assert!(
        body.contains("bank-a"),
        "the bank's origin answered: {body}"
    );
    let seen = origin_log(lab);
    let request = seen
        .iter()
        .find(|request| request.path == "/accounts?page=3")
        .unwrap_or_else(|| panic!("the request reached the origin: {seen:#?}"));
    assert_eq!(request.peer.ip().to_string(), TRANSIT_SOURCE);
    let subject = request.header("x-client-cert-subject").unwrap_or_default();
    assert!(
        subject.contains("bank-a app good") && !subject.contains("forged"),
        "{request:#?}"
    );
    assert!(
        request
            .header("client-cert")
            .is_some_and(|value| value.starts_with(':') && value.len() > 100),
        "RFC 9440 Client-Cert: {request:#?}"
    );
    assert_eq!(request.header("x-forwarded-for"), Some(CLIENT_ADDRESS));
    assert_eq!(request.header("host"), Some("api.bank-a.example"));
    assert_eq!(
        metric(
            lab,
            "ixgate_proxy_requests_total{service=\"bank-a\",protocol=\"h3\",status=\"200\"}"
        ),
        1,
        "counted as an HTTP/3 request"
    );
}

fn every_other_client_is_refused_and_the_origin_sees_nothing(lab: &Lab) {
    let before = origin_log(lab).len();
    // (host, app certificate, the refusal counted). TLS 1.1 has no place
    // here: QUIC is TLS 1.3 only (RFC 9001 §4.2).
    let bad = [
        ("api.bank-a.example", None, "no_client_cert"),
        (
            "api.bank-a.example",
            Some("bank-b-client-good"),
            "unknown_ca",
        ),
        (
            "api.bank-a.example",
            Some("bank-a-client-self-signed"),
            "unknown_ca",
        ),
        (
            "api.bank-a.example",
            Some("bank-a-client-expired"),
            "expired",
        ),
        (
            "api.bank-a.example",
            Some("bank-a-client-not-yet-valid"),
            "not_yet_valid",
        ),
        (
            "api.bank-a.example",
            Some("bank-a-client-revoked"),
            "revoked",
        ),
        (
            "api.bank-a.example",
            Some("bank-a-client-wrong-eku"),
            "wrong_purpose",
        ),
        // bank-b's name at bank-a's address: the address chose bank-a.
        (
            "api.bank-b.example",
            Some("bank-a-client-good"),
            "unknown_sni",
        ),
    ];
    for (host, client, reason) in bad {
        let counted = format!(
            "ixgate_proxy_handshake_failures_total{{service=\"bank-a\",reason=\"{reason}\",transport=\"quic\"}}"
        );
        let counted_before = metric(lab, &counted);
        let outcome = lab
            .request(
                CLIENT,
                &h3_request(lab, host, client).path("/must-not-arrive"),
            )
            .expect("the h3 client runs");
        assert!(
            matches!(outcome, ClientOutcome::Failed { .. }),
            "{host} {client:?} got through: {outcome:?}"
        );
        wait::until(Duration::from_secs(3), "the refusal counted", || {
            let now = metric(lab, &counted);
            if now > counted_before {
                Ok(())
            } else {
                Err(NotYet::Pending(format!("{counted} = {now}")))
            }
        })
        .unwrap_or_else(|error| panic!("{host} {client:?}: {error}"));
    }
    let after = origin_log(lab);
    assert_eq!(
        after.len(),
        before,
        "the origin saw none of them: {after:#?}"
    );
    assert!(
        after
            .iter()
            .all(|request| request.path != "/must-not-arrive")
    );
}

fn a_phone_that_moves_keeps_its_connection(lab: &Lab) {
    lab.exec(
        CLIENT,
        "ip",
        &["addr", "add", &format!("{CLIENT_MOVED}/28"), "dev", "eth0"],
    )
    .expect("client-a's second address");
    let handshakes =
        "ixgate_proxy_handshakes_total{service=\"bank-a\",kind=\"quic\",version=\"TLSv1_3\"}";
    let handshakes_before = metric(lab, handshakes);
    let run = H3Run {
        request: h3_request(lab, "api.bank-a.example", Some("bank-a-client-good")).path("/moving"),
        count: 3,
        move_to: Some(IpAddr::V4(CLIENT_MOVED)),
        stall: None,
    };
    let report = lab.h3(CLIENT, &run).expect("the h3 client runs");
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.responses.len(), 3, "{report:?}");
    assert!(
        report
            .responses
            .iter()
            .all(|response| response.status == 200)
    );
    assert_eq!(
        report.responses[1].from.ip(),
        IpAddr::V4(CLIENT_MOVED),
        "the client moved: {report:?}"
    );
    let seen: Vec<String> = origin_log(lab)
        .iter()
        .filter(|request| request.path == "/moving")
        .map(|request| {
            request
                .header("x-forwarded-for")
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        seen,
        [
            CLIENT_ADDRESS.to_owned(),
            CLIENT_MOVED.to_string(),
            CLIENT_MOVED.to_string()
        ],
        "the origin is told where the app is now"
    );
    assert_eq!(
        metric(lab, handshakes) - handshakes_before,
        1,
        "one handshake: the connection moved, it did not start again"
    );
}

/// curl's response headers for `address` as `host` over HTTP/1.1.
fn tcp_headers(lab: &Lab, host: &str, address: Ipv4Addr, client: &str) -> String {
    let request = example::app_request(lab, host, IpAddr::V4(address), Some(client));
    let mut args = vec!["--dump-header".to_owned(), "-".to_owned()];
    args.extend(request.curl_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = lab.exec(CLIENT, "curl", &args).expect("curl runs");
    String::from_utf8_lossy(&output.stdout).to_ascii_lowercase()
}

fn tcp_answers_advertise_http3_where_the_service_has_it(lab: &Lab) {
    let bank_a = tcp_headers(
        lab,
        "api.bank-a.example",
        example::BANK_A,
        "bank-a-client-good",
    );
    assert!(
        bank_a.contains("alt-svc: h3=\":443\"; ma=86400"),
        "bank-a has HTTP/3: {bank_a}"
    );
    let bank_b = tcp_headers(
        lab,
        "api.bank-b.example",
        example::BANK_B,
        "bank-b-client-good",
    );
    assert!(bank_b.starts_with("http/1.1 200"), "{bank_b}");
    assert!(
        !bank_b.contains("alt-svc"),
        "bank-b has no HTTP/3: {bank_b}"
    );
}

/// Rewrites node-1's `[quic]` section (appended last) and reloads.
fn set_quic(lab: &Lab, section: &str) {
    lab.reconfigure(NODE, |text| {
        let kept = text.split("\n[quic]\n").next().unwrap_or_default();
        format!("{kept}\n[quic]\n{section}")
    })
    .expect("the reload is taken");
}

/// With `retry_above_handshakes = 0` every handshake counts as load: a new
/// client gets a Retry and must echo its token before any handshake work,
/// which a spoofed source cannot.
fn under_load_new_clients_prove_their_address_first(lab: &Lab) {
    set_quic(lab, "retry_above_handshakes = 0\n");
    let retries = "ixgate_proxy_quic_initials_total{action=\"retry\"}";
    let retries_before = metric(lab, retries);
    let good = h3_request(lab, "api.bank-a.example", Some("bank-a-client-good")).path("/retried");
    let outcome = lab.request(CLIENT, &good).expect("the h3 client runs");
    assert!(
        matches!(outcome, ClientOutcome::Response { status: 200, .. }),
        "the app proves its address and gets through: {outcome:?}"
    );
    assert_eq!(metric(lab, retries) - retries_before, 1, "one Retry");
}

/// With `max_handshakes = 1`, the handshake of one slow phone (held 4 s
/// at the certificate, within the 5 s handshake timeout) fills the node:
/// the next app's Initials are dropped unanswered (it times out), and the
/// slow phone still gets through.
fn beyond_the_handshake_cap_initials_are_dropped(lab: &Lab) {
    set_quic(lab, "retry_above_handshakes = 100\nmax_handshakes = 1\n");
    let slow = H3Run {
        request: h3_request(lab, "api.bank-a.example", Some("bank-a-client-good"))
            .path("/slow")
            .timeout(Duration::from_secs(10)),
        count: 1,
        move_to: None,
        stall: Some(Duration::from_secs(4)),
    };
    let slow_phone = lab
        .h3_command(CLIENT, &slow)
        .expect("the h3 client")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the slow phone starts");
    let in_progress = "ixgate_proxy_quic_handshakes_in_progress";
    wait::until(
        Duration::from_secs(3),
        "the slow handshake under way",
        || match metric(lab, in_progress) {
            1 => Ok(()),
            other => Err(NotYet::Pending(format!("{in_progress} = {other}"))),
        },
    )
    .expect("one handshake in progress");
    let dropped = "ixgate_proxy_quic_initials_total{action=\"dropped_handshake_cap\"}";
    let dropped_before = metric(lab, dropped);
    let turned_away = h3_request(lab, "api.bank-a.example", Some("bank-a-client-good"))
        .path("/turned-away")
        .timeout(Duration::from_millis(1500));
    let outcome = lab
        .request(CLIENT, &turned_away)
        .expect("the h3 client runs");
    assert!(
        matches!(outcome, ClientOutcome::Failed { .. }),
        "over the cap: {outcome:?}"
    );
    assert!(metric(lab, dropped) > dropped_before, "counted as dropped");
    let output = slow_phone.wait_with_output().expect("the slow phone ends");
    let report: ixgate_testbed::h3::H3Report =
        serde_json::from_slice(&output.stdout).expect("the slow phone's report");
    assert_eq!(
        report.responses.first().map(|response| response.status),
        Some(200),
        "the slow phone got through: {report:?}"
    );
    set_quic(lab, "");
}
