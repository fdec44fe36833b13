//! The session state machine of one BGP connection (RFC 4271 §8), sans-IO:
//! events and the time go in, actions come out. The shell owns the socket
//! and the clock; it calls [`Session::handle`] for each event and
//! [`Session::handle_timeout`] when [`Session::poll_timeout`] is reached.
//!
//! Left out of RFC 4271's optional attributes: DelayOpen, passive TCP
//! establishment on one side only, and peer oscillation damping, which the
//! idle-hold backoff replaces.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::wire::{Family, Message, Notification, Open, Update, codes};

/// RFC 4271 §8.2.2 states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// What a session is configured with.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub local_asn: u32,
    pub remote_asn: u32,
    pub router_id: Ipv4Addr,
    /// The hold time we propose; 0 turns keepalives off (RFC 4271 §4.2).
    pub hold_time: u16,
    /// The families we offer (Multiprotocol capability, RFC 4760).
    pub families: Vec<Family>,
    /// ConnectRetryTime.
    pub connect_retry: Duration,
}

/// What both sides agreed on when the session came up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub hold_time: u16,
    /// Families both sides offered.
    pub families: Vec<Family>,
    pub four_octet_as: bool,
    pub route_refresh: bool,
    pub remote_router_id: Ipv4Addr,
}

/// RFC 4271 §8.1 events, as the shell reports them.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Event 1, ManualStart (and event 3, AutomaticStart, after idle hold).
    Start,
    /// Event 2, ManualStop: Cease / Administrative Shutdown (RFC 4486).
    Stop,
    /// Events 16 and 17, Tcp_CR_Acked and TcpConnectionConfirmed: a TCP
    /// connection to the peer is up, whoever opened it.
    Connected,
    /// Event 18, TcpConnectionFails.
    ConnectionFailed,
    /// Events 19 (BGPOpen), 25 (NotifMsg), 26 (KeepAliveMsg), 27 (UpdateMsg),
    /// and ROUTE-REFRESH (RFC 2918): a message that decoded.
    Received(Message),
    /// Events 21, 22 and 28 (BGPHeaderErr, BGPOpenMsgErr, UpdateMsgErr): a
    /// message that did not decode, with the NOTIFICATION it calls for.
    Malformed(Notification),
    /// The session must end with this NOTIFICATION (e.g. Cease / Maximum
    /// Number of Prefixes Reached, RFC 4486).
    Terminate(Notification),
}

/// Why an established session went down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    Stopped,
    /// We sent this NOTIFICATION.
    Sent(Notification),
    /// The peer sent this NOTIFICATION.
    Received(Notification),
    /// The TCP connection broke.
    ConnectionLost,
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Open a TCP connection to the peer.
    Connect,
    Send(Message),
    /// Close the TCP connection (after sending what came before).
    Disconnect,
    /// Established (event 26 in OpenConfirm): announce the adj-RIB-out.
    Established(Negotiated),
    /// Left Established: flush the adj-RIB-in.
    Down(DownReason),
    /// An UPDATE in Established: for the adj-RIB-in.
    Received(Update),
    /// The peer asks for our routes again (RFC 2918).
    RouteRefresh(Family),
}

/// RFC 4271 §8.2.2 suggests 4 minutes for the hold timer in OpenSent.
const OPEN_HOLD: Duration = Duration::from_mins(4);
/// First and longest wait before an automatic restart after an error.
const IDLE_HOLD_FIRST: Duration = Duration::from_secs(1);
const IDLE_HOLD_MAX: Duration = Duration::from_mins(1);

/// One BGP connection's session.
#[derive(Clone, Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    negotiated: Option<Negotiated>,
    /// Set by [`Event::Stop`]: no automatic restart.
    stopped: bool,
    connect_retry: Option<Instant>,
    hold: Option<Instant>,
    keepalive: Option<Instant>,
    /// AutomaticStart after an error, with exponential backoff.
    idle_hold: Option<Instant>,
    idle_hold_delay: Duration,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            negotiated: None,
            stopped: true,
            connect_retry: None,
            hold: None,
            keepalive: None,
            idle_hold: None,
            idle_hold_delay: IDLE_HOLD_FIRST,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The next instant at which [`Session::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.connect_retry,
            self.hold,
            self.keepalive,
            self.idle_hold,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The OPEN we send.
    fn open(&self) -> Open {
        Open {
            asn: self.config.local_asn,
            hold_time: self.config.hold_time,
            router_id: self.config.router_id,
            families: self.config.families.clone(),
            four_octet_as: true,
            route_refresh: true,
        }
    }

    fn clear_timers(&mut self) {
        self.connect_retry = None;
        self.hold = None;
        self.keepalive = None;
        self.idle_hold = None;
    }

    /// Goes to Idle, closing the connection. Unless stopped, an automatic
    /// start follows after the idle hold time, which doubles each time.
    fn enter_idle(&mut self, now: Instant, actions: &mut Vec<Action>, reason: DownReason) {
        if self.state == State::Established {
            actions.push(Action::Down(reason));
        }
        if self.state != State::Idle {
            actions.push(Action::Disconnect);
        }
        self.state = State::Idle;
        self.negotiated = None;
        self.clear_timers();
        if !self.stopped {
            self.idle_hold = Some(now + self.idle_hold_delay);
            self.idle_hold_delay = (self.idle_hold_delay * 2).min(IDLE_HOLD_MAX);
        }
    }

    /// Sends `notification` and goes to Idle.
    fn fail(&mut self, now: Instant, actions: &mut Vec<Action>, notification: Notification) {
        actions.push(Action::Send(Message::Notification(notification.clone())));
        self.enter_idle(now, actions, DownReason::Sent(notification));
    }

    fn start(&mut self, now: Instant, actions: &mut Vec<Action>) {
        self.clear_timers();
        self.connect_retry = Some(now + self.config.connect_retry);
        self.state = State::Connect;
        actions.push(Action::Connect);
    }

    fn restart_hold(&mut self, now: Instant) {
        if let Some(negotiated) = &self.negotiated {
            self.hold = (negotiated.hold_time > 0)
                .then(|| now + Duration::from_secs(negotiated.hold_time.into()));
        }
    }

    fn restart_keepalive(&mut self, now: Instant) {
        if let Some(negotiated) = &self.negotiated {
            let interval = Duration::from_secs(u64::from(negotiated.hold_time) / 3);
            self.keepalive =
                (negotiated.hold_time > 0).then(|| now + interval.max(Duration::from_secs(1)));
        }
    }

    /// Handles one event at `now`.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        match (self.state, event) {
            (State::Idle, Event::Start) => {
                self.stopped = false;
                self.idle_hold_delay = IDLE_HOLD_FIRST;
                self.start(now, &mut actions);
            }
            (_, Event::Start) | (State::Idle, _) => {}

            (State::OpenSent | State::OpenConfirm | State::Established, Event::Stop) => {
                self.stopped = true;
                let cease = Notification::new(codes::CEASE, codes::ADMINISTRATIVE_SHUTDOWN);
                actions.push(Action::Send(Message::Notification(cease)));
                self.enter_idle(now, &mut actions, DownReason::Stopped);
            }
            (_, Event::Stop) => {
                self.stopped = true;
                self.enter_idle(now, &mut actions, DownReason::Stopped);
            }

            (State::Connect | State::Active, Event::Connected) => {
                self.connect_retry = None;
                actions.push(Action::Send(Message::Open(self.open())));
                self.hold = Some(now + OPEN_HOLD);
                self.state = State::OpenSent;
            }
            (State::Connect, Event::ConnectionFailed) => {
                self.connect_retry = Some(now + self.config.connect_retry);
                self.state = State::Active;
            }
            (_, Event::ConnectionFailed) => {
                self.enter_idle(now, &mut actions, DownReason::ConnectionLost);
            }

            (State::OpenSent, Event::Received(Message::Open(open))) => match self.check_open(&open)
            {
                Ok(negotiated) => {
                    self.negotiated = Some(negotiated);
                    actions.push(Action::Send(Message::Keepalive));
                    self.restart_hold(now);
                    self.restart_keepalive(now);
                    self.state = State::OpenConfirm;
                }
                Err(notification) => self.fail(now, &mut actions, notification),
            },
            (State::OpenConfirm, Event::Received(Message::Keepalive)) => {
                self.restart_hold(now);
                self.state = State::Established;
                // A session that came up has proven the peer sane again.
                self.idle_hold_delay = IDLE_HOLD_FIRST;
                if let Some(negotiated) = &self.negotiated {
                    actions.push(Action::Established(negotiated.clone()));
                }
            }
            (State::Established, Event::Received(Message::Keepalive)) => self.restart_hold(now),
            (State::Established, Event::Received(Message::Update(update))) => {
                self.restart_hold(now);
                actions.push(Action::Received(update));
            }
            (State::Established, Event::Received(Message::RouteRefresh(family))) => {
                if self
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.families.contains(&family))
                {
                    actions.push(Action::RouteRefresh(family));
                }
            }
            (_, Event::Received(Message::Notification(notification))) => {
                self.enter_idle(now, &mut actions, DownReason::Received(notification));
            }
            // RFC 6608: a message the state does not expect.
            (State::OpenSent | State::OpenConfirm | State::Established, Event::Received(_)) => {
                let subcode = match self.state {
                    State::OpenSent => 1,
                    State::OpenConfirm => 2,
                    _ => 3,
                };
                self.fail(now, &mut actions, Notification::new(codes::FSM, subcode));
            }
            // Nothing is connected in Connect or Active: ignore stray input;
            // a second connection is the shell's collision to resolve.
            (State::Connect | State::Active, Event::Received(_) | Event::Malformed(_))
            | (_, Event::Connected) => {}
            (_, Event::Malformed(notification) | Event::Terminate(notification)) => {
                self.fail(now, &mut actions, notification);
            }
        }
        actions
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let due = |deadline: Option<Instant>| deadline.is_some_and(|at| at <= now);
        if due(self.idle_hold) {
            // Event 3, AutomaticStart.
            self.idle_hold = None;
            self.start(now, &mut actions);
        } else if due(self.connect_retry) {
            // Event 9, ConnectRetryTimer_Expires.
            if matches!(self.state, State::Connect | State::Active) {
                self.connect_retry = Some(now + self.config.connect_retry);
                self.state = State::Connect;
                actions.push(Action::Disconnect);
                actions.push(Action::Connect);
            }
        } else if due(self.hold) {
            // Event 10, HoldTimer_Expires.
            self.fail(
                now,
                &mut actions,
                Notification::new(codes::HOLD_TIMER_EXPIRED, 0),
            );
        } else if due(self.keepalive) {
            // Event 11, KeepaliveTimer_Expires.
            actions.push(Action::Send(Message::Keepalive));
            self.restart_keepalive(now);
        }
        actions
    }

    /// An UPDATE to send; only in Established. Sending resets the
    /// keepalive timer (RFC 4271 §4.4).
    pub fn send_update(&mut self, update: Update, now: Instant) -> Option<Action> {
        (self.state == State::Established).then(|| {
            self.restart_keepalive(now);
            Action::Send(Message::Update(update))
        })
    }

    /// RFC 4271 §6.2 checks of the peer's OPEN, and what we agree on.
    fn check_open(&self, open: &Open) -> Result<Negotiated, Notification> {
        if open.asn != self.config.remote_asn {
            return Err(Notification::new(codes::OPEN_MESSAGE, codes::BAD_PEER_AS));
        }
        if open.hold_time == 1 || open.hold_time == 2 {
            return Err(Notification::new(
                codes::OPEN_MESSAGE,
                codes::UNACCEPTABLE_HOLD_TIME,
            ));
        }
        if open.router_id.is_unspecified() || open.router_id == self.config.router_id {
            return Err(Notification::new(
                codes::OPEN_MESSAGE,
                codes::BAD_BGP_IDENTIFIER,
            ));
        }
        Ok(Negotiated {
            hold_time: self.config.hold_time.min(open.hold_time),
            families: self
                .config
                .families
                .iter()
                .copied()
                .filter(|family| open.families.contains(family))
                .collect(),
            four_octet_as: open.four_octet_as,
            route_refresh: open.route_refresh,
            remote_router_id: open.router_id,
        })
    }
}

/// Which of two colliding connections survives (RFC 4271 §6.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Survivor {
    /// The connection we opened.
    Ours,
    /// The connection the peer opened.
    Theirs,
}

/// RFC 4271 §6.8: the speaker with the higher BGP Identifier keeps the
/// connection it opened.
pub fn resolve_collision(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> Survivor {
    if u32::from(local_id) > u32::from(remote_id) {
        Survivor::Ours
    } else {
        Survivor::Theirs
    }
}

#[cfg(test)]
mod tests;
