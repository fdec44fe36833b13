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

/// A peer that speaks just enough BGP to come up, then misbehaves with
/// hand-made bytes.
struct RawPeer {
    stream: tokio::net::TcpStream,
    buffer: bytes::BytesMut,
}

impl RawPeer {
    async fn accept(listener: &tokio::net::TcpListener, asn: u32, id: std::net::Ipv4Addr) -> Self {
        use ixgate_bgp::wire::{Context, Message, Open, encode};
        use tokio::io::AsyncWriteExt as _;
        let (stream, _) = listener.accept().await.expect("the speaker connects");
        let mut peer = Self {
            stream,
            buffer: bytes::BytesMut::new(),
        };
        assert!(matches!(peer.next().await, Message::Open(_)));
        let open = Open {
            asn,
            hold_time: 9,
            router_id: id,
            families: vec![Family::Ipv4Unicast],
            four_octet_as: true,
            route_refresh: true,
        };
        for message in [Message::Open(open), Message::Keepalive] {
            let bytes = encode(&message, Context::INITIAL).expect("encodes");
            peer.stream.write_all(&bytes).await.expect("sent");
        }
        peer
    }

    async fn next(&mut self) -> ixgate_bgp::wire::Message {
        use ixgate_bgp::wire::{Context, decode};
        use tokio::io::AsyncReadExt as _;
        loop {
            if let Some(message) =
                decode(&mut self.buffer, Context::INITIAL).expect("well-formed from ixgate")
            {
                return message;
            }
            let read = self.stream.read_buf(&mut self.buffer).await.expect("reads");
            assert!(read > 0, "the speaker closed the connection");
        }
    }

    async fn send_update(&mut self, body: &[u8]) {
        use tokio::io::AsyncWriteExt as _;
        let length = u16::try_from(19 + body.len()).expect("short");
        let bytes = [
            vec![0xff; 16],
            length.to_be_bytes().to_vec(),
            vec![2],
            body.to_vec(),
        ]
        .concat();
        self.stream.write_all(&bytes).await.expect("sent");
    }
}

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_misbehaving_peer_does_not_disturb_the_others() {
    let port = 20_000 + u16::try_from((std::process::id() + 7) % 20_000).expect("small");
    let raw_listener = tokio::net::TcpListener::bind(("127.0.0.23", port))
        .await
        .expect("raw peer listens");
    let peer = |address: &str, asn: u32| PeerConfig {
        telco: "test".into(),
        address: ip(address),
        local: ip("127.0.0.21"),
        remote_asn: asn,
        hold_time: 9,
        password: None,
        gtsm: false,
        import_max_prefixes: 10,
        families: vec![Family::Ipv4Unicast],
    };
    let a = Speaker::start(&SpeakerConfig {
        local_asn: 65000,
        router_id: "127.0.0.21".parse().expect("id"),
        port,
        connect_retry: Duration::from_secs(1),
        // The good peer is a speaker like the others: TCP-MD5 and GTSM.
        peers: vec![
            PeerConfig {
                password: Some(b"loopback-secret".to_vec()),
                gtsm: true,
                families: vec![Family::Ipv4Unicast, Family::Ipv4Flowspec],
                ..peer("127.0.0.22", 65010)
            },
            peer("127.0.0.23", 65020),
        ],
    })
    .expect("a starts");
    let good = speaker(65010, "127.0.0.22", "127.0.0.21", 65000, port);
    let mut bad = RawPeer::accept(&raw_listener, 65020, "127.0.0.23".parse().expect("id")).await;
    let state = |speaker: &Speaker, neighbor: &str| {
        speaker
            .status()
            .into_iter()
            .find(|p| p.neighbor == ip(neighbor))
            .expect("peer")
    };
    eventually("a's sessions up", [&a, &good], || {
        state(&a, "127.0.0.22").state == "Established"
            && state(&a, "127.0.0.23").state == "Established"
    })
    .await;

    // A route, then the same route with ORIGIN 5 (undefined): RFC 7606
    // treat-as-withdraw; the session stays up.
    let route =
        "00 00 00 14 40 01 01 00 40 02 06 02 01 00 00 fd fc 40 03 04 c6 33 64 17 18 cb 00 71";
    bad.send_update(&hex(route)).await;
    eventually("the route from the raw peer", [&a, &good], || {
        state(&a, "127.0.0.23").received == 1
    })
    .await;
    let bad_origin =
        "00 00 00 14 40 01 01 05 40 02 06 02 01 00 00 fd fc 40 03 04 c6 33 64 17 18 cb 00 71";
    bad.send_update(&hex(bad_origin)).await;
    eventually("the route treated as withdrawn", [&a, &good], || {
        state(&a, "127.0.0.23").received == 0
    })
    .await;
    assert_eq!(state(&a, "127.0.0.23").state, "Established");

    // An attribute section that lies about its length: UPDATE Message
    // Error, that session closes, and only that one.
    bad.send_update(&hex("00 00 00 30 40 01 01 00")).await;
    let notification = loop {
        if let ixgate_bgp::wire::Message::Notification(n) = bad.next().await {
            break n;
        }
    };
    assert_eq!(notification.code, 3, "{notification:?}");
    let good_session = state(&a, "127.0.0.22");
    assert_eq!(good_session.state, "Established");
    assert_eq!(
        good_session.established_count, 1,
        "the good session never flapped"
    );
}
