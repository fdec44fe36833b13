//! The session FSM driven with a virtual clock: every timer is a deadline
//! we step to, never a real wait.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::wire::{Family, Message, Notification, Open, Update, codes};

const OURS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
const THEIRS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn config() -> SessionConfig {
    SessionConfig {
        local_asn: 65000,
        remote_asn: 65010,
        router_id: OURS,
        hold_time: 90,
        families: vec![Family::Ipv4Unicast, Family::Ipv4Flowspec],
        connect_retry: Duration::from_secs(5),
    }
}

fn their_open(hold_time: u16) -> Open {
    Open {
        asn: 65010,
        hold_time,
        router_id: THEIRS,
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        four_octet_as: true,
        route_refresh: true,
    }
}

fn notification_sent(actions: &[Action]) -> Option<(u8, u8)> {
    actions.iter().find_map(|action| match action {
        Action::Send(Message::Notification(n)) => Some((n.code, n.subcode)),
        _ => None,
    })
}

/// A session brought to Established with a peer proposing `hold_time`.
fn established(hold_time: u16, t0: Instant) -> Session {
    let mut session = Session::new(config());
    assert_eq!(session.handle(Event::Start, t0), [Action::Connect]);
    assert_eq!(session.state(), State::Connect);
    let actions = session.handle(Event::Connected, t0);
    assert!(
        matches!(actions.as_slice(), [Action::Send(Message::Open(open))] if open.asn == 65000 && open.hold_time == 90)
    );
    assert_eq!(session.state(), State::OpenSent);
    let actions = session.handle(Event::Received(Message::Open(their_open(hold_time))), t0);
    assert_eq!(actions, [Action::Send(Message::Keepalive)]);
    assert_eq!(session.state(), State::OpenConfirm);
    let actions = session.handle(Event::Received(Message::Keepalive), t0);
    assert!(matches!(actions.as_slice(), [Action::Established(_)]));
    assert_eq!(session.state(), State::Established);
    session
}

#[test]
fn comes_up_and_negotiates_the_lower_hold_time_and_common_families() {
    let t0 = Instant::now();
    let session = established(30, t0);
    let negotiated = session.negotiated().unwrap();
    assert_eq!(negotiated.hold_time, 30);
    assert_eq!(negotiated.families, [Family::Ipv4Unicast]);
    assert_eq!(negotiated.remote_router_id, THEIRS);
    // Keepalives every hold/3.
    assert_eq!(session.poll_timeout(), Some(t0 + Duration::from_secs(10)));
}

#[test]
fn sends_keepalives_and_keeps_the_session_while_the_peer_does() {
    let t0 = Instant::now();
    let mut session = established(30, t0);
    for second in [10, 20] {
        let now = t0 + Duration::from_secs(second);
        assert_eq!(
            session.handle_timeout(now),
            [Action::Send(Message::Keepalive)]
        );
        assert!(
            session
                .handle(Event::Received(Message::Keepalive), now)
                .is_empty()
        );
    }
    assert_eq!(session.state(), State::Established);
}

#[test]
fn hold_timer_expiry_sends_a_notification_and_restarts_with_backoff() {
    let t0 = Instant::now();
    let mut session = established(30, t0);
    // The peer goes silent: our keepalives go out, then the hold timer fires.
    let mut now;
    let actions = loop {
        now = session.poll_timeout().unwrap();
        let actions = session.handle_timeout(now);
        if actions != [Action::Send(Message::Keepalive)] {
            break actions;
        }
    };
    assert_eq!(now, t0 + Duration::from_secs(30));
    assert_eq!(
        notification_sent(&actions),
        Some((codes::HOLD_TIMER_EXPIRED, 0))
    );
    assert!(actions.contains(&Action::Disconnect));
    assert!(
        actions.contains(&Action::Down(DownReason::Sent(Notification::new(
            codes::HOLD_TIMER_EXPIRED,
            0
        ))))
    );
    assert_eq!(session.state(), State::Idle);

    // AutomaticStart after 1 s, then 2 s, then 4 s: the backoff doubles.
    let mut expected_wait = 1;
    for _ in 0..3 {
        let restart = session.poll_timeout().unwrap();
        assert_eq!(restart, now + Duration::from_secs(expected_wait));
        assert_eq!(session.handle_timeout(restart), [Action::Connect]);
        now = restart;
        let actions = session.handle(Event::ConnectionFailed, now);
        assert!(actions.is_empty());
        assert_eq!(session.state(), State::Active);
        // A reset connection in Active ends in Idle too.
        session.handle(Event::Connected, now);
        session.handle(Event::ConnectionFailed, now);
        assert_eq!(session.state(), State::Idle);
        expected_wait *= 2;
    }
}

#[test]
fn the_backoff_resets_once_a_session_comes_up() {
    let t0 = Instant::now();
    let mut session = established(30, t0);
    session.handle(Event::ConnectionFailed, t0);
    let restart = session.poll_timeout().unwrap();
    assert_eq!(restart, t0 + Duration::from_secs(1));
    session.handle_timeout(restart);
    session.handle(Event::Connected, restart);
    session.handle(Event::Received(Message::Open(their_open(30))), restart);
    session.handle(Event::Received(Message::Keepalive), restart);
    assert_eq!(session.state(), State::Established);
    session.handle(Event::ConnectionFailed, restart);
    assert_eq!(
        session.poll_timeout(),
        Some(restart + Duration::from_secs(1))
    );
}

#[test]
fn connect_retry_while_the_peer_does_not_answer() {
    let t0 = Instant::now();
    let mut session = Session::new(config());
    session.handle(Event::Start, t0);
    let retry = session.poll_timeout().unwrap();
    assert_eq!(retry, t0 + Duration::from_secs(5));
    assert_eq!(
        session.handle_timeout(retry),
        [Action::Disconnect, Action::Connect]
    );
    assert_eq!(session.state(), State::Connect);
    assert_eq!(session.poll_timeout(), Some(retry + Duration::from_secs(5)));
}

#[test]
fn open_errors_map_to_their_notifications() {
    let t0 = Instant::now();
    let cases: [(Open, (u8, u8)); 3] = [
        (
            Open {
                asn: 65099,
                ..their_open(90)
            },
            (codes::OPEN_MESSAGE, codes::BAD_PEER_AS),
        ),
        (
            their_open(2),
            (codes::OPEN_MESSAGE, codes::UNACCEPTABLE_HOLD_TIME),
        ),
        (
            Open {
                router_id: OURS,
                ..their_open(90)
            },
            (codes::OPEN_MESSAGE, codes::BAD_BGP_IDENTIFIER),
        ),
    ];
    for (open, expected) in cases {
        let mut session = Session::new(config());
        session.handle(Event::Start, t0);
        session.handle(Event::Connected, t0);
        let actions = session.handle(Event::Received(Message::Open(open)), t0);
        assert_eq!(notification_sent(&actions), Some(expected));
        assert_eq!(session.state(), State::Idle);
        // Not established, so nothing to flush.
        assert!(!actions.iter().any(|a| matches!(a, Action::Down(_))));
    }
}

#[test]
fn unexpected_messages_are_fsm_errors_rfc_6608() {
    let t0 = Instant::now();
    // An UPDATE in OpenSent, then in OpenConfirm; an OPEN in Established.
    let mut session = Session::new(config());
    session.handle(Event::Start, t0);
    session.handle(Event::Connected, t0);
    let actions = session.handle(Event::Received(Message::Update(Update::default())), t0);
    assert_eq!(notification_sent(&actions), Some((codes::FSM, 1)));

    let mut session = Session::new(config());
    session.handle(Event::Start, t0);
    session.handle(Event::Connected, t0);
    session.handle(Event::Received(Message::Open(their_open(90))), t0);
    let actions = session.handle(Event::Received(Message::Update(Update::default())), t0);
    assert_eq!(notification_sent(&actions), Some((codes::FSM, 2)));

    let mut session = established(90, t0);
    let actions = session.handle(Event::Received(Message::Open(their_open(90))), t0);
    assert_eq!(notification_sent(&actions), Some((codes::FSM, 3)));
    assert!(actions.iter().any(|a| matches!(a, Action::Down(_))));
}

#[test]
fn updates_reach_the_rib_and_refresh_the_hold_timer() {
    let t0 = Instant::now();
    let mut session = established(30, t0);
    let later = t0 + Duration::from_secs(25);
    let actions = session.handle(Event::Received(Message::Update(Update::default())), later);
    assert_eq!(actions, [Action::Received(Update::default())]);
    // The hold timer now runs from `later`: nothing fires at t0 + 30 s
    // but a keepalive.
    let at_30 = t0 + Duration::from_secs(30);
    assert_eq!(
        session.handle_timeout(at_30),
        [Action::Send(Message::Keepalive)]
    );
    assert_eq!(session.state(), State::Established);
}

#[test]
fn route_refresh_only_for_negotiated_families() {
    let t0 = Instant::now();
    let mut session = established(90, t0);
    assert_eq!(
        session.handle(
            Event::Received(Message::RouteRefresh(Family::Ipv4Unicast)),
            t0
        ),
        [Action::RouteRefresh(Family::Ipv4Unicast)]
    );
    assert!(
        session
            .handle(
                Event::Received(Message::RouteRefresh(Family::Ipv6Unicast)),
                t0
            )
            .is_empty()
    );
}

#[test]
fn manual_stop_ceases_and_stays_down() {
    let t0 = Instant::now();
    let mut session = established(90, t0);
    let actions = session.handle(Event::Stop, t0);
    assert_eq!(
        notification_sent(&actions),
        Some((codes::CEASE, codes::ADMINISTRATIVE_SHUTDOWN))
    );
    assert!(actions.contains(&Action::Down(DownReason::Stopped)));
    assert_eq!(session.state(), State::Idle);
    assert_eq!(
        session.poll_timeout(),
        None,
        "no automatic restart after a manual stop"
    );
}

#[test]
fn terminate_sends_the_given_notification() {
    let t0 = Instant::now();
    let mut session = established(90, t0);
    let cease = Notification::new(codes::CEASE, codes::MAX_PREFIXES);
    let actions = session.handle(Event::Terminate(cease.clone()), t0);
    assert_eq!(
        notification_sent(&actions),
        Some((codes::CEASE, codes::MAX_PREFIXES))
    );
    assert!(actions.contains(&Action::Down(DownReason::Sent(cease))));
}

#[test]
fn a_notification_from_the_peer_ends_the_session() {
    let t0 = Instant::now();
    let mut session = established(90, t0);
    let theirs = Notification::new(codes::CEASE, codes::ADMINISTRATIVE_SHUTDOWN);
    let actions = session.handle(Event::Received(Message::Notification(theirs.clone())), t0);
    assert_eq!(
        actions,
        [
            Action::Down(DownReason::Received(theirs)),
            Action::Disconnect
        ]
    );
    assert_eq!(
        notification_sent(&actions),
        None,
        "never answer a NOTIFICATION with one"
    );
}

#[test]
fn hold_time_zero_means_no_keepalives_and_no_hold_timer() {
    let t0 = Instant::now();
    let session = established(0, t0);
    assert_eq!(session.negotiated().unwrap().hold_time, 0);
    assert_eq!(session.poll_timeout(), None);
}

#[test]
fn updates_are_sent_only_when_established() {
    let t0 = Instant::now();
    let mut session = Session::new(config());
    assert_eq!(session.send_update(Update::default(), t0), None);
    let mut session = established(30, t0);
    let later = t0 + Duration::from_secs(8);
    assert!(session.send_update(Update::default(), later).is_some());
    // Sending restarted the keepalive timer.
    assert_eq!(
        session.poll_timeout(),
        Some(later + Duration::from_secs(10))
    );
}

#[test]
fn malformed_messages_send_their_notification() {
    let t0 = Instant::now();
    let mut session = established(90, t0);
    let malformed = Notification::new(codes::UPDATE_MESSAGE, 1);
    let actions = session.handle(Event::Malformed(malformed), t0);
    assert_eq!(
        notification_sent(&actions),
        Some((codes::UPDATE_MESSAGE, 1))
    );
    assert_eq!(session.state(), State::Idle);
}

#[test]
fn collision_keeps_the_higher_identifiers_connection() {
    assert_eq!(resolve_collision(OURS, THEIRS), Survivor::Ours);
    assert_eq!(resolve_collision(THEIRS, OURS), Survivor::Theirs);
}
