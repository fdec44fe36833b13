#![allow(clippy::unwrap_used)]

use rustls::server::ProducesTickets as _;

use super::*;

fn key(byte: u8) -> TicketKey {
    TicketKey {
        name: [byte; 16],
        secret: [byte ^ 0x5a; 32],
    }
}

const STATE: &[u8] = b"resumption state of one session";

#[test]
fn nodes_with_the_same_file_open_each_others_tickets() {
    let node_1 = ServiceTicketer::new(&[key(1)], "bank-a", b"crl").unwrap();
    let node_2 = ServiceTicketer::new(&[key(1)], "bank-a", b"crl").unwrap();
    let ticket = node_1.encrypt(STATE).unwrap();
    assert_eq!(node_2.decrypt(&ticket).unwrap(), STATE);
    assert_ne!(&ticket[NAME_LEN + NONCE_LEN..][..STATE.len()], STATE);
    assert_ne!(
        node_1.encrypt(STATE).unwrap(),
        ticket,
        "a fresh nonce each time"
    );
}

#[test]
fn another_service_or_another_crl_cannot_open_a_ticket() {
    let bank_a = ServiceTicketer::new(&[key(1)], "bank-a", b"crl").unwrap();
    let ticket = bank_a.encrypt(STATE).unwrap();
    let bank_b = ServiceTicketer::new(&[key(1)], "bank-b", b"crl").unwrap();
    assert_eq!(bank_b.decrypt(&ticket), None);
    let new_crl = ServiceTicketer::new(&[key(1)], "bank-a", b"crl 2").unwrap();
    assert_eq!(new_crl.decrypt(&ticket), None);
}

#[test]
fn rotation_seals_with_the_first_key_and_opens_with_any() {
    let old = ServiceTicketer::new(&[key(1)], "bank-a", b"").unwrap();
    let old_ticket = old.encrypt(STATE).unwrap();
    // Step 1: the new key rolled out second; step 2: moved to the top.
    let rolled_out = ServiceTicketer::new(&[key(1), key(2)], "bank-a", b"").unwrap();
    let promoted = ServiceTicketer::new(&[key(2), key(1)], "bank-a", b"").unwrap();
    assert_eq!(rolled_out.decrypt(&old_ticket).unwrap(), STATE);
    assert_eq!(promoted.decrypt(&old_ticket).unwrap(), STATE);
    let new_ticket = promoted.encrypt(STATE).unwrap();
    assert_eq!(rolled_out.decrypt(&new_ticket).unwrap(), STATE);
    // Step 3: the old key retired; its tickets no longer open.
    let retired = ServiceTicketer::new(&[key(2)], "bank-a", b"").unwrap();
    assert_eq!(retired.decrypt(&old_ticket), None);
    assert_eq!(retired.decrypt(&new_ticket).unwrap(), STATE);
}

#[test]
fn tampered_or_truncated_tickets_are_refused() {
    let ticketer = ServiceTicketer::new(&[key(1)], "bank-a", b"").unwrap();
    let ticket = ticketer.encrypt(STATE).unwrap();
    for index in [0, NAME_LEN, NAME_LEN + NONCE_LEN, ticket.len() - 1] {
        let mut tampered = ticket.clone();
        tampered[index] ^= 1;
        assert_eq!(ticketer.decrypt(&tampered), None, "byte {index} flipped");
    }
    for len in [0, NAME_LEN, NAME_LEN + NONCE_LEN, ticket.len() - 1] {
        assert_eq!(ticketer.decrypt(&ticket[..len]), None, "cut to {len}");
    }
    assert!(matches!(
        ServiceTicketer::new(&[], "bank-a", b""),
        Err(TicketError::NoKey)
    ));
}
