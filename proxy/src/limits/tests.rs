use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;

const STOLEN: [u8; 32] = [1; 32];
const HONEST: [u8; 32] = [2; 32];

#[test]
fn a_certificate_gets_its_rate_and_a_second_of_burst_and_no_more() {
    let start = Instant::now();
    let mut rate = RequestRate::new(20);
    let burst = (0..100).filter(|_| rate.admit(STOLEN, start)).count();
    assert_eq!(burst, 20, "one second's worth at once");
    // Then 20 per second, whatever is asked: 200 tries over 2 s.
    let admitted = (1..=200)
        .filter(|step| rate.admit(STOLEN, start + Duration::from_millis(step * 10)))
        .count();
    assert!((39..=41).contains(&admitted), "{admitted} in 2 s");
    // Another certificate is not held back by the first.
    let later = start + Duration::from_secs(2);
    assert!((0..20).all(|_| rate.admit(HONEST, later)));
}

#[test]
fn idle_certificates_are_forgotten() {
    let start = Instant::now();
    let mut rate = RequestRate::new(5);
    for byte in 0..50 {
        assert!(rate.admit([byte; 32], start));
    }
    assert_eq!(rate.tracked(), 50);
    assert!(rate.admit(STOLEN, start + FORGET_AFTER + Duration::from_secs(1)));
    assert_eq!(rate.tracked(), 1, "only the one seen lately");
}

#[test]
fn connections_per_source_stop_at_the_limit_and_free_on_close() {
    let source = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 66));
    let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 98));
    let mut open = SourceConnections::default();
    assert!((0..3).all(|_| open.open(source, 3)));
    assert!(!open.open(source, 3), "the fourth is refused");
    assert!(open.open(other, 3), "others are not affected");
    open.close(source);
    assert!(open.open(source, 3));
    for _ in 0..5 {
        open.close(source);
    }
    assert_eq!(open.of(source), 0, "never below zero");
}
