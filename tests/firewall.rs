//! The firewall of `ixgate run` in node-1 of the lab of examples/lab:
//! what passes and what is dropped and counted, counters against the
//! generator, and the flood detector against real floods from the
//! attacker behind telco-a.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ixgate_testbed::Lab;
use ixgate_testbed::example;
use ixgate_testbed::flood::{Flood, FloodKind, FloodRate, Sources};
use ixgate_testbed::probe::Transport;
use ixgate_testbed::wait::{self, NotYet};
use serde_json::Value;

/// One lab at a time: floods and timing must not compete for the 2 cores.
static ONE_LAB: Mutex<()> = Mutex::new(());

const SERVICE: Ipv4Addr = example::BANK_A;
const NODE: &str = "node-1";

/// The lab with `ixgate run` in the nodes, and behind node-1's firewall
/// a plain service on 192.0.2.10:443 (the proxy's stand-in until the
/// proxy lands) that client-a reaches through telco-a.
fn lab() -> Lab {
    example::serving_client_a().expect("the lab serves client-a")
}

fn service(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(SERVICE), port)
}

/// The counter `counted` of the service address, as `ixgate ctl` shows it.
fn counter(lab: &Lab, counted: &str) -> (u64, u64) {
    let data = lab
        .ctl(NODE, &["show", "counters"])
        .expect("ixgate ctl show counters");
    let found = data["counters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["target"] == SERVICE.to_string() && c["counted"] == counted)
        .unwrap_or_else(|| panic!("no counter {counted}: {data}"));
    (
        found["packets"].as_u64().unwrap_or_default(),
        found["bytes"].as_u64().unwrap_or_default(),
    )
}

/// Waits until `counted` has grown by `expected` packets (within 1 %) and
/// has stopped moving; returns the growth.
fn grown_by(lab: &Lab, counted: &str, before: u64, expected: u64) -> u64 {
    let mut last = None;
    wait::until(
        Duration::from_secs(10),
        &format!("{counted} to reach {expected}"),
        || {
            let now = counter(lab, counted).0 - before;
            let settled = last == Some(now);
            last = Some(now);
            let close = within_one_percent(now, expected);
            if settled && close {
                Ok(now)
            } else {
                Err(NotYet::Pending(format!("{now} of {expected}")))
            }
        },
    )
    .unwrap_or_else(|error| panic!("{error}"))
}

fn within_one_percent(value: u64, expected: u64) -> bool {
    value.abs_diff(expected) * 100 <= expected
}

#[test]
fn https_and_quic_pass_other_ports_are_dropped_and_counters_match_the_generator() {
    let _one = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut lab = lab();

    let tcp = lab
        .probe(
            "client-a",
            Transport::Tcp,
            service(443),
            20,
            Duration::from_millis(20),
            Duration::from_secs(1),
        )
        .expect("probe");
    assert_eq!(tcp.succeeded, 20, "TCP/443 through the SYN proxy: {tcp:?}");
    // UDP/443 of bank-a is the proxy's HTTP/3 (tests/http3.rs); bank-b's
    // has none in the lab, so a plain echo answers there.
    let echo = SocketAddr::new(IpAddr::V4(example::BANK_B), 443);
    lab.start_service(NODE, echo, true)
        .expect("a UDP echo on bank-b's address");
    let udp = lab
        .probe(
            "client-a",
            Transport::Udp,
            echo,
            20,
            Duration::from_millis(20),
            Duration::from_secs(1),
        )
        .expect("probe");
    assert_eq!(udp.succeeded, 20, "UDP/443: {udp:?}");

    // TCP/80: dropped in the kernel, so not even refused.
    let (filtered_before, _) = counter(&lab, "dropped_filter");
    let http = lab
        .probe(
            "client-a",
            Transport::Tcp,
            service(80),
            3,
            Duration::ZERO,
            Duration::from_millis(300),
        )
        .expect("probe");
    assert_eq!(http.succeeded, 0, "{http:?}");
    let dropped = counter(&lab, "dropped_filter").0 - filtered_before;
    assert!(
        dropped >= 3,
        "3 SYNs to port 80 counted as dropped: {dropped}"
    );

    // 20 000 UDP datagrams to port 53 from the attacker: every one counted
    // as UDP to the service, and as dropped by the filter.
    let (udp_before, udp_bytes_before) = counter(&lab, "udp");
    let (filtered_before, _) = counter(&lab, "dropped_filter");
    let flood = Flood::new(
        FloodKind::Udp {
            port: 53,
            payload: 64,
        },
        SERVICE,
        20_000,
        Duration::from_secs(10),
    )
    .rate(FloodRate::PacketsPerSecond(20_000))
    .sources(Sources::Fixed(vec![Ipv4Addr::new(198, 51, 100, 82)]));
    let report = lab.flood("attacker", &flood).expect("flood");
    assert!(report.packets_sent >= 19_000, "{report:?}");
    let sent = report.packets_sent;
    let counted = grown_by(&lab, "udp", udp_before, sent);
    let filtered = grown_by(&lab, "dropped_filter", filtered_before, sent);
    println!("sent {sent}, counted as UDP {counted}, dropped by the filter {filtered}");
    // L3 bytes: 20 (IP) + 8 (UDP) + 64.
    let bytes = counter(&lab, "udp").1 - udp_bytes_before;
    assert!(
        within_one_percent(bytes, counted * 92),
        "{bytes} bytes for {counted} datagrams of 92 bytes"
    );
}

/// The flood records `ixgate ctl show floods` lists.
fn floods(lab: &Lab) -> Vec<Value> {
    lab.ctl(NODE, &["show", "floods"])
        .expect("ixgate ctl show floods")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A SYN flood to the service that started at or after `since`.
fn syn_flood_since(lab: &Lab, since: u64) -> Option<Value> {
    floods(lab).into_iter().find(|flood| {
        flood["class"] == "syn"
            && flood["target"] == SERVICE.to_string()
            && flood["started_unix_ms"]
                .as_u64()
                .is_some_and(|at| at >= since)
    })
}

/// The lab's SYN thresholds (examples/lab/node-1): enter 5 000 pps, exit
/// 2 500 pps. The flood is paced at no more than four times the enter
/// rate (about 2.5 times, measured: pacing costs time per packet).
const FLOOD_PPS: u64 = 20_000;
const HALF_THRESHOLD_PPS: u64 = 2_500;
const TRIALS: usize = 10;

/// A flood ends once the moving average (τ = 1 s) has fallen from the
/// flood's rate to the exit rate, ln(20 000 / 2 500) ≈ 2.1 s, and stayed
/// there for the exit hold (1 s); plus two counter reads.
const EXIT_TIME: Duration = Duration::from_millis(2_100 + 1_000 + 200);

#[test]
fn a_spoofed_syn_flood_is_detected_fast_with_its_signature_and_half_the_threshold_never_is() {
    let _one = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();

    let mut latencies = Vec::new();
    for trial in 0..TRIALS {
        let spoofed = Flood::new(
            FloodKind::Syn { port: 443 },
            SERVICE,
            FLOOD_PPS * 2,
            Duration::from_millis(1_500),
        )
        .rate(FloodRate::PacketsPerSecond(FLOOD_PPS));
        let started = unix_millis(SystemTime::now());
        let report = lab.flood("attacker", &spoofed).expect("flood");
        let stopped = Instant::now();
        let flood = wait::until(Duration::from_secs(5), "the flood on record", || {
            syn_flood_since(&lab, started).ok_or_else(|| NotYet::Pending("none".into()))
        })
        .expect("the spoofed SYN flood was detected");
        // From trafgen's start, not from the flood's set-up (route and
        // neighbour lookups in the attacker take some tens of ms).
        let detected_after = flood["started_unix_ms"]
            .as_u64()
            .unwrap_or(u64::MAX)
            .saturating_sub(unix_millis(report.started));
        latencies.push(detected_after);
        println!("trial {trial}: {report:?}, detected after {detected_after} ms: {flood}");

        let signature = &flood["signature"];
        assert_eq!(signature["protocol"], 6, "{flood}");
        assert_eq!(signature["destination_port"], 443, "{flood}");
        assert_eq!(signature["tcp_flags"], 0x02, "{flood}");
        assert_eq!(
            signature["source_prefixes"],
            Value::Array(vec![]),
            "spoofed: no source in the signature: {flood}"
        );

        let ended = wait::until(Duration::from_secs(10), "the flood to end", || {
            let flood = syn_flood_since(&lab, started).unwrap_or_default();
            if flood["ended_unix_ms"].is_null() {
                Err(NotYet::Pending(flood.to_string()))
            } else {
                Ok(stopped.elapsed())
            }
        })
        .expect("the flood ended");
        assert!(
            ended <= EXIT_TIME,
            "ended {ended:?} after the flood stopped; exit time {EXIT_TIME:?}"
        );
    }
    latencies.sort_unstable();
    let median = latencies[TRIALS / 2];
    println!("detection latency over {TRIALS} trials (ms): {latencies:?}; median {median}");
    assert!(median <= 300, "median detection latency {median} ms");

    // Half the enter threshold, from a few steady sources, for 5 s: never a flood.
    let since = unix_millis(SystemTime::now());
    let (syn_before, _) = counter(&lab, "syn");
    let legit = Flood::new(
        FloodKind::Syn { port: 443 },
        SERVICE,
        HALF_THRESHOLD_PPS * 5,
        Duration::from_secs(6),
    )
    .rate(FloodRate::PacketsPerSecond(HALF_THRESHOLD_PPS))
    .sources(Sources::Fixed(
        (82..=94)
            .map(|host| Ipv4Addr::new(198, 51, 100, host))
            .collect(),
    ));
    let report = lab.flood("attacker", &legit).expect("steady SYNs");
    assert!(report.packets_sent >= HALF_THRESHOLD_PPS * 4, "{report:?}");
    // The detector has seen every packet once the counters show them: the
    // same read feeds both.
    grown_by(&lab, "syn", syn_before, report.packets_sent);
    assert_eq!(
        syn_flood_since(&lab, since),
        None,
        "{report:?} at half the threshold was called a flood"
    );
}
