//! Golden packets, written out byte by byte.

use super::*;
use crate::detector::Class;

/// IPv4 TCP SYN 198.51.100.7:40000 → 192.0.2.10:443, TTL 57, 60 bytes.
const IPV4_SYN: [u8; 40] = [
    0x45, 0x00, 0x00, 0x3c, // version 4, IHL 5; total length 60
    0x12, 0x34, 0x40, 0x00, // id; DF, offset 0
    0x39, 0x06, 0x00, 0x00, // TTL 57, TCP, checksum
    198, 51, 100, 7, // source
    192, 0, 2, 10, // destination
    0x9c, 0x40, 0x01, 0xbb, // ports 40000 → 443
    0, 0, 0, 1, // sequence
    0, 0, 0, 0, // acknowledgement
    0xa0, 0x02, 0xff, 0xff, // data offset 10; SYN; window
    0, 0, 0, 0, // checksum, urgent
];

/// IPv6 UDP 2001:db8::1:5353 → 2001:db8:1::10:443 behind a hop-by-hop
/// header, hop limit 64, 8 bytes of UDP payload.
fn ipv6_udp_behind_hop_by_hop() -> Vec<u8> {
    let mut packet = vec![
        0x60, 0, 0, 0, // version 6
        0x00, 0x18, 0x00, 0x40, // payload length 24; hop-by-hop; hop limit 64
    ];
    packet.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    packet.extend([
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ]);
    packet.extend([17, 0, 1, 4, 0, 0, 0, 0]); // next UDP, 8 bytes, PadN
    packet.extend([0x14, 0xe9, 0x01, 0xbb, 0x00, 0x10, 0, 0]); // 5353 → 443
    packet.extend([0; 8]);
    packet
}

#[test]
fn an_ipv4_syn() {
    let sample = decode(&IPV4_SYN).expect("decodes");
    assert_eq!(
        sample,
        PacketSample {
            via: None,
            source: "198.51.100.7".parse().expect("address"),
            destination: "192.0.2.10".parse().expect("address"),
            protocol: 6,
            source_port: Some(40000),
            destination_port: Some(443),
            tcp_flags: Some(0x02),
            length: 60,
            ttl: 57,
            fragment: false,
        }
    );
    assert_eq!(Class::of(&sample), Class::Syn);
}

#[test]
fn an_ipv6_udp_datagram_behind_an_extension_header() {
    let sample = decode(&ipv6_udp_behind_hop_by_hop()).expect("decodes");
    assert_eq!(
        sample.source,
        "2001:db8::1".parse::<IpAddr>().expect("address")
    );
    assert_eq!(
        sample.destination,
        "2001:db8:1::10".parse::<IpAddr>().expect("address")
    );
    assert_eq!(sample.protocol, 17);
    assert_eq!(sample.source_port, Some(5353));
    assert_eq!(sample.destination_port, Some(443));
    assert_eq!(sample.tcp_flags, None);
    assert_eq!(sample.length, 64);
    assert_eq!(sample.ttl, 64);
    assert!(!sample.fragment);
    assert_eq!(Class::of(&sample), Class::Udp);
}

#[test]
fn a_later_ipv4_fragment_has_no_ports() {
    let mut packet = IPV4_SYN;
    packet[6] = 0x00;
    packet[7] = 0xb9; // offset 185 × 8 bytes
    let sample = decode(&packet).expect("decodes");
    assert!(sample.fragment);
    assert_eq!((sample.source_port, sample.tcp_flags), (None, None));
    assert_eq!(Class::of(&sample), Class::Fragment);
}

#[test]
fn a_first_ipv6_fragment_keeps_its_ports() {
    let mut packet = ipv6_udp_behind_hop_by_hop();
    // The hop-by-hop header becomes a fragment header (offset 0, M set).
    packet[6] = 44;
    packet[40..48].copy_from_slice(&[17, 0, 0x00, 0x01, 0, 0, 0, 7]);
    let sample = decode(&packet).expect("decodes");
    assert!(sample.fragment);
    assert_eq!(sample.protocol, 17);
    assert_eq!(sample.destination_port, Some(443));
    // A later fragment of it carries no ports.
    packet[42] = 0x05;
    packet[43] = 0x01;
    let later = decode(&packet).expect("decodes");
    assert!(later.fragment);
    assert_eq!(later.destination_port, None);
}

#[test]
fn a_snapshot_cut_before_the_transport_header_leaves_it_unknown() {
    let sample = decode(&IPV4_SYN[..20]).expect("decodes");
    assert_eq!(sample.protocol, 6);
    assert_eq!((sample.destination_port, sample.tcp_flags), (None, None));
    let sample = decode(&IPV4_SYN[..24]).expect("decodes");
    assert_eq!(sample.destination_port, Some(443));
    assert_eq!(sample.tcp_flags, None);
}

#[test]
fn what_cannot_be_read_says_why() {
    assert_eq!(decode(&[]), Err(SampleError::Truncated));
    assert_eq!(decode(&IPV4_SYN[..19]), Err(SampleError::Truncated));
    assert_eq!(decode(&[0x50; 40]), Err(SampleError::Version(5)));
    let mut short_header = IPV4_SYN;
    short_header[0] = 0x44;
    assert_eq!(decode(&short_header), Err(SampleError::HeaderLength(16)));
    assert_eq!(
        decode(&ipv6_udp_behind_hop_by_hop()[..39]),
        Err(SampleError::Truncated)
    );
}

/// Every prefix and every single-byte change of the golden packets
/// decodes or fails with a reason; none panics.
#[test]
fn no_cut_or_corruption_panics() {
    for golden in [IPV4_SYN.to_vec(), ipv6_udp_behind_hop_by_hop()] {
        for end in 0..=golden.len() {
            let _ = decode(&golden[..end]);
        }
        for at in 0..golden.len() {
            for value in [0x00, 0x0f, 0x2c, 0x3c, 0x45, 0x60, 0xff] {
                let mut changed = golden.clone();
                changed[at] = value;
                let _ = decode(&changed);
            }
        }
    }
}
