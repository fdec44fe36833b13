//! Two speakers on loopback addresses: sessions come up (TCP-MD5, GTSM),
//! routes flow, a withdrawal is seen, a stop ends the session. The real
//! routers are in the lab tests; this is the speaker against itself.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::net::IpAddr;
use std::time::Duration;

use ixgate_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use ixgate_bgp::wire::{Attributes, Family, Nlri, Origin};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

fn speaker(asn: u32, local: &str, remote: &str, remote_asn: u32, port: u16) -> Speaker {
    let config = SpeakerConfig {
        local_asn: asn,
        router_id: match ip(local) {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => unreachable!("IPv4 test addresses"),
        },
        port,
        connect_retry: Duration::from_secs(1),
        peers: vec![PeerConfig {
            telco: "test".into(),
            address: ip(remote),
            local: ip(local),
            remote_asn,
            hold_time: 9,
            password: Some(b"loopback-secret".to_vec()),
            gtsm: true,
            import_max_prefixes: 10,
            families: vec![Family::Ipv4Unicast, Family::Ipv4Flowspec],
        }],
    };
    Speaker::start(&config).expect("speaker starts")
}

/// Polls `check` every 50 ms for up to 20 s; on time-out, shows both
/// speakers' status.
async fn eventually(what: &str, speakers: [&Speaker; 2], mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "gave up waiting for {what}: {:#?} {:#?}",
        speakers[0].status(),
        speakers[1].status()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn two_speakers_exchange_routes_with_md5_and_gtsm() {
    // A port of our own per test process, so parallel runs do not collide.
    let port = 20_000 + u16::try_from(std::process::id() % 20_000).expect("small");
    let a = speaker(65000, "127.0.0.11", "127.0.0.12", 65010, port);
    let b = speaker(65010, "127.0.0.12", "127.0.0.11", 65000, port);
    eventually("both sessions Established", [&a, &b], || {
        a.status()[0].state == "Established" && b.status()[0].state == "Established"
    })
    .await;
    assert_eq!(a.status()[0].families, ["Ipv4Unicast", "Ipv4Flowspec"]);

    let route = (
        Nlri::Unicast("192.0.2.0/24".parse().expect("prefix")),
        Attributes {
            origin: Origin::Igp,
            as_path: vec![65000, 65000],
            // Not the loopback address of the session: a loopback next hop
            // is invalid (RFC 7606 §7.11) and would be treated as withdraw.
            next_hop: Some(ip("198.51.100.11")),
            communities: vec!["65010:100".parse().expect("community")],
            large_communities: Vec::new(),
            flow_actions: Vec::new(),
        },
    );
    a.set_routes(ip("127.0.0.12"), vec![route])
        .expect("peer exists");
    eventually("b to receive the route", [&a, &b], || {
        b.status()[0].received == 1
    })
    .await;
    let received = b.routes(ip("127.0.0.11")).expect("peer").received;
    assert_eq!(received[0].route, "192.0.2.0/24");
    assert_eq!(received[0].as_path, [65000, 65000]);
    assert_eq!(received[0].communities, ["65010:100"]);

    a.set_routes(ip("127.0.0.12"), Vec::new())
        .expect("peer exists");
    eventually("b to see the withdrawal", [&a, &b], || {
        b.status()[0].received == 0
    })
    .await;

    a.stop();
    eventually("b to see the Cease", [&a, &b], || {
        b.status()[0].last_error.as_deref() == Some("received NOTIFICATION 6/2")
    })
    .await;
}
