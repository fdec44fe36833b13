//! Our own BGP message types: what the rest of ixgate speaks. The codec
//! behind them (`rustbgpd-wire`) never shows outside `wire/`.

use std::net::Ipv4Addr;

use super::update::Update;

/// The address families ixgate carries (AFI/SAFI, RFC 4760).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// AFI 1, SAFI 1.
    Ipv4Unicast,
    /// AFI 2, SAFI 1.
    Ipv6Unicast,
    /// AFI 1, SAFI 133 (RFC 8955).
    Ipv4Flowspec,
    /// AFI 2, SAFI 133 (RFC 8956).
    Ipv6Flowspec,
}

impl Family {
    pub const ALL: [Self; 4] = [
        Self::Ipv4Unicast,
        Self::Ipv6Unicast,
        Self::Ipv4Flowspec,
        Self::Ipv6Flowspec,
    ];

    pub fn afi_safi(self) -> (u16, u8) {
        match self {
            Self::Ipv4Unicast => (1, 1),
            Self::Ipv6Unicast => (2, 1),
            Self::Ipv4Flowspec => (1, 133),
            Self::Ipv6Flowspec => (2, 133),
        }
    }

    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|family| family.afi_safi() == (afi, safi))
    }

    pub fn is_ipv4(self) -> bool {
        matches!(self, Self::Ipv4Unicast | Self::Ipv4Flowspec)
    }
}

/// An OPEN message (RFC 4271 §4.2) with the capabilities we use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The sender's AS: the 4-octet one when it advertised the capability
    /// (RFC 6793), else the 2-octet field.
    pub asn: u32,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    /// Multiprotocol capabilities (RFC 4760).
    pub families: Vec<Family>,
    /// The 4-octet AS number capability (RFC 6793).
    pub four_octet_as: bool,
    /// The route refresh capability (RFC 2918).
    pub route_refresh: bool,
}

/// A NOTIFICATION (RFC 4271 §4.5): the last word before a session closes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8) -> Self {
        Self {
            code,
            subcode,
            data: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_data(mut self, data: Vec<u8>) -> Self {
        self.data = data;
        self
    }
}

/// RFC 4271 §4.5 error codes, with the subcodes we send.
pub mod codes {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// RFC 6608 subcodes: 1 in OpenSent, 2 in OpenConfirm, 3 in Established.
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;

    /// OPEN subcodes.
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;

    /// Cease subcodes (RFC 4486).
    pub const MAX_PREFIXES: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const CONNECTION_COLLISION: u8 = 7;
}

/// One BGP message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    /// RFC 2918.
    RouteRefresh(Family),
}
