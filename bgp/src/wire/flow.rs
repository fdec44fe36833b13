//! Flowspec rules (RFC 8955 for IPv4, RFC 8956 for IPv6) as ixgate writes
//! them: match components and actions.

use ipnet::IpNet;

/// Which Flowspec family a rule belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlowFamily {
    Ipv4,
    Ipv6,
}

/// A comparison of a numeric component (RFC 8955 §4.2.1.1): the `lt`,
/// `gt` and `eq` bits of the operator byte, all eight combinations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NumericOp {
    /// No bit set: never matches.
    False,
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
    /// All bits set: always matches.
    True,
}

impl NumericOp {
    /// The operator's (lt, gt, eq) bits.
    pub fn bits(self) -> (bool, bool, bool) {
        match self {
            Self::False => (false, false, false),
            Self::Eq => (false, false, true),
            Self::Lt => (true, false, false),
            Self::Le => (true, false, true),
            Self::Gt => (false, true, false),
            Self::Ge => (false, true, true),
            Self::Ne => (true, true, false),
            Self::True => (true, true, true),
        }
    }

    pub fn from_bits(lt: bool, gt: bool, eq: bool) -> Self {
        match (lt, gt, eq) {
            (false, false, false) => Self::False,
            (false, false, true) => Self::Eq,
            (true, false, false) => Self::Lt,
            (true, false, true) => Self::Le,
            (false, true, false) => Self::Gt,
            (false, true, true) => Self::Ge,
            (true, true, false) => Self::Ne,
            (true, true, true) => Self::True,
        }
    }
}

/// One term of a numeric component; terms are ORed unless `and` is set,
/// which ANDs a term with the one before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NumericTerm {
    pub and: bool,
    pub op: NumericOp,
    pub value: u32,
}

impl NumericTerm {
    pub fn eq(value: u32) -> Self {
        Self {
            and: false,
            op: NumericOp::Eq,
            value,
        }
    }

    /// `low <= x <= high`, as two ANDed terms.
    pub fn range(low: u32, high: u32) -> [Self; 2] {
        [
            Self {
                and: false,
                op: NumericOp::Ge,
                value: low,
            },
            Self {
                and: true,
                op: NumericOp::Le,
                value: high,
            },
        ]
    }
}

/// One term of a bitmask component (TCP flags, fragment; RFC 8955 §4.2.1.2):
/// with `match_all`, all of `bits` must be set, else any of them; `not`
/// negates the test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BitmaskTerm {
    pub and: bool,
    pub not: bool,
    pub match_all: bool,
    pub bits: u16,
}

/// TCP flag bits as Flowspec matches them.
pub mod tcp_flags {
    pub const FIN: u16 = 0x01;
    pub const SYN: u16 = 0x02;
    pub const RST: u16 = 0x04;
    pub const PSH: u16 = 0x08;
    pub const ACK: u16 = 0x10;
}

/// The match part of a rule. An empty component matches everything.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlowMatch {
    pub family: FlowFamily,
    pub destination: Option<IpNet>,
    pub source: Option<IpNet>,
    /// IP protocol (IPv4) or next header (IPv6).
    pub protocols: Vec<NumericTerm>,
    pub ports: Vec<NumericTerm>,
    pub destination_ports: Vec<NumericTerm>,
    pub source_ports: Vec<NumericTerm>,
    pub icmp_types: Vec<NumericTerm>,
    pub icmp_codes: Vec<NumericTerm>,
    pub tcp_flags: Vec<BitmaskTerm>,
    pub packet_lengths: Vec<NumericTerm>,
    pub dscp: Vec<NumericTerm>,
    pub fragments: Vec<BitmaskTerm>,
}

impl FlowMatch {
    /// Matches everything of `family` (narrow it by setting components).
    pub fn new(family: FlowFamily) -> Self {
        Self {
            family,
            destination: None,
            source: None,
            protocols: Vec::new(),
            ports: Vec::new(),
            destination_ports: Vec::new(),
            source_ports: Vec::new(),
            icmp_types: Vec::new(),
            icmp_codes: Vec::new(),
            tcp_flags: Vec::new(),
            packet_lengths: Vec::new(),
            dscp: Vec::new(),
            fragments: Vec::new(),
        }
    }

    /// Traffic to `destination` (RFC 8955 type 1), of its family.
    pub fn to(destination: IpNet) -> Self {
        let family = if destination.addr().is_ipv4() {
            FlowFamily::Ipv4
        } else {
            FlowFamily::Ipv6
        };
        Self {
            destination: Some(destination),
            ..Self::new(family)
        }
    }

    /// From `source` (type 2).
    #[must_use]
    pub fn from_source(mut self, source: IpNet) -> Self {
        self.source = Some(source);
        self
    }

    /// Exactly this IP protocol (type 3).
    #[must_use]
    pub fn protocol(mut self, protocol: u8) -> Self {
        self.protocols = vec![NumericTerm::eq(protocol.into())];
        self
    }

    /// Exactly this destination port (type 5).
    #[must_use]
    pub fn destination_port(mut self, port: u16) -> Self {
        self.destination_ports = vec![NumericTerm::eq(port.into())];
        self
    }

    /// All of these TCP flags set (type 9, match bit).
    #[must_use]
    pub fn tcp_flags_set(mut self, bits: u8) -> Self {
        self.tcp_flags = vec![BitmaskTerm {
            and: false,
            not: false,
            match_all: true,
            bits: bits.into(),
        }];
        self
    }

    /// An IP packet length within `low..=high` (type 10).
    #[must_use]
    pub fn packet_length(mut self, low: u16, high: u16) -> Self {
        self.packet_lengths = if low == high {
            vec![NumericTerm::eq(low.into())]
        } else {
            NumericTerm::range(low.into(), high.into()).to_vec()
        };
        self
    }
}

/// What to do with matching traffic (RFC 8955 §7).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FlowAction {
    /// traffic-rate-bytes; 0 discards.
    RateBytes(f32),
    /// traffic-rate-packets (RFC 8955 §7.7).
    RatePackets(f32),
    /// traffic-action: sample, and whether later rules still apply.
    Action { sample: bool, terminal: bool },
    /// traffic-marking: set this DSCP.
    Marking(u8),
    /// redirect to the VRF with this route target, 2-octet AS form.
    Redirect2Octet { asn: u16, value: u32 },
    /// redirect, 4-octet AS form (RFC 7674).
    Redirect4Octet { asn: u32, value: u16 },
    /// redirect, IPv4-address form (RFC 7674).
    RedirectIpv4 {
        address: std::net::Ipv4Addr,
        value: u16,
    },
}

/// A whole rule: match and actions.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowRule {
    pub matches: FlowMatch,
    pub actions: Vec<FlowAction>,
}
