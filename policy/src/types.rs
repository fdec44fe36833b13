//! Validated newtypes: a value of one of these types is valid by
//! construction, so the rest of the appliance never re-checks it.
//!
//! Each type deserializes through `TryFrom`, so a bad value is refused while
//! the file is read, with the position of the value in the file.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Why a single value is not acceptable. The text is what the operator reads
/// next to the file position, so it says what is wrong and what would be right.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("AS number 0 is reserved (RFC 7607) and never valid on a BGP session")]
    AsnZero,
    #[error(
        "AS number 23456 is AS_TRANS (RFC 6793), a stand-in for 4-octet AS numbers, not a real AS"
    )]
    AsnTrans,
    #[error("hold time must be 0 or at least 3 seconds (RFC 4271 §4.2), not {0}")]
    HoldTime(u16),
    #[error("{0} is not an IP prefix such as 192.0.2.0/24 or 2001:db8::/48")]
    PrefixSyntax(String),
    #[error("{given} has host bits set; the prefix is {network}")]
    PrefixHostBits { given: IpNet, network: IpNet },
    #[error(
        "{0} is longer than /24; IPv4 announcements longer than /24 are filtered by most networks and would not propagate"
    )]
    PrefixTooLongV4(IpNet),
    #[error(
        "{0} is longer than /48; IPv6 announcements longer than /48 are filtered by most networks and would not propagate"
    )]
    PrefixTooLongV6(IpNet),
    #[error("{0:?} is not a community; write ASN:VALUE with both parts from 0 to 65535")]
    Community(String),
    #[error(
        "{0:?} is not a large community; write GLOBAL:LOCAL1:LOCAL2 with each part from 0 to 4294967295 (RFC 8092)"
    )]
    LargeCommunity(String),
    #[error(
        "{0:?} is not a duration; write a whole number with ms, s, m or h, such as \"300ms\" or \"5s\""
    )]
    Duration(String),
    #[error("a rate must be above 0")]
    RateZero,
    #[error("{count} prepends is more than the {max} that any sane policy needs")]
    TooManyPrepends { count: u8, max: u8 },
    #[error(
        "{0:?} is not an interface name; Linux allows 1 to 15 characters without '/', ':' or white space"
    )]
    InterfaceName(String),
    #[error(
        "{0:?} is not a name; use 1 to 32 lowercase letters, digits and '-', starting with a letter"
    )]
    Name(String),
    #[error("{0:?} is not a DNS name that a TLS client can send as SNI")]
    DnsName(String),
    #[error("{0:?} is not an origin URL; write https://HOST[:PORT] with no path")]
    OriginUrl(String),
}

// ===== Asn =====

/// A four-octet AS number (RFC 6793) that may appear on a session: not 0
/// (RFC 7607) and not `AS_TRANS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Asn(u32);

impl Asn {
    /// RFC 6793 §9: the 2-octet stand-in for a 4-octet AS number.
    pub const AS_TRANS: u32 = 23456;

    pub fn new(value: u32) -> Result<Self, ValueError> {
        match value {
            0 => Err(ValueError::AsnZero),
            Self::AS_TRANS => Err(ValueError::AsnTrans),
            _ => Ok(Self(value)),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Asn {
    type Error = ValueError;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Asn> for u32 {
    fn from(asn: Asn) -> Self {
        asn.0
    }
}

impl fmt::Display for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AS{}", self.0)
    }
}

// ===== HoldTime =====

/// A BGP hold time in seconds: 0 (no keepalives) or at least 3 (RFC 4271 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct HoldTime(u16);

impl HoldTime {
    pub const DEFAULT: Self = Self(90);

    pub fn new(seconds: u16) -> Result<Self, ValueError> {
        if seconds == 1 || seconds == 2 {
            Err(ValueError::HoldTime(seconds))
        } else {
            Ok(Self(seconds))
        }
    }

    pub fn seconds(self) -> u16 {
        self.0
    }
}

impl Default for HoldTime {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u16> for HoldTime {
    type Error = ValueError;
    fn try_from(seconds: u16) -> Result<Self, Self::Error> {
        Self::new(seconds)
    }
}

impl From<HoldTime> for u16 {
    fn from(hold: HoldTime) -> Self {
        hold.0
    }
}

// ===== Prefix =====

/// A prefix we announce: no host bits, and short enough to propagate
/// (IPv4 at most /24, IPv6 at most /48).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prefix(IpNet);

impl Prefix {
    pub const MAX_LEN_V4: u8 = 24;
    pub const MAX_LEN_V6: u8 = 48;

    pub fn new(net: IpNet) -> Result<Self, ValueError> {
        let network = net.trunc();
        if network != net {
            return Err(ValueError::PrefixHostBits {
                given: net,
                network,
            });
        }
        match net {
            IpNet::V4(_) if net.prefix_len() > Self::MAX_LEN_V4 => {
                Err(ValueError::PrefixTooLongV4(net))
            }
            IpNet::V6(_) if net.prefix_len() > Self::MAX_LEN_V6 => {
                Err(ValueError::PrefixTooLongV6(net))
            }
            _ => Ok(Self(net)),
        }
    }

    pub fn net(self) -> IpNet {
        self.0
    }

    pub fn contains(self, addr: IpAddr) -> bool {
        self.0.contains(&addr)
    }

    pub fn is_ipv4(self) -> bool {
        matches!(self.0, IpNet::V4(_))
    }
}

impl FromStr for Prefix {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let net = text
            .parse::<IpNet>()
            .map_err(|_| ValueError::PrefixSyntax(text.to_owned()))?;
        Self::new(net)
    }
}

impl TryFrom<String> for Prefix {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Prefix> for String {
    fn from(prefix: Prefix) -> Self {
        prefix.to_string()
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

// ===== Community =====

/// A standard BGP community (RFC 1997), written `ASN:VALUE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Community {
    pub asn: u16,
    pub value: u16,
}

impl Community {
    /// RFC 7999 §5: the well-known BLACKHOLE community.
    pub const BLACKHOLE: Self = Self {
        asn: 65535,
        value: 666,
    };
    /// RFC 1997: do not advertise outside this AS (or confederation).
    pub const NO_EXPORT: Self = Self {
        asn: 65535,
        value: 65281,
    };
    /// RFC 8326: the sender is about to withdraw this path.
    pub const GRACEFUL_SHUTDOWN: Self = Self {
        asn: 65535,
        value: 0,
    };
}

impl FromStr for Community {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ValueError::Community(text.to_owned());
        let (asn, value) = text.split_once(':').ok_or_else(bad)?;
        Ok(Self {
            asn: asn.parse().map_err(|_| bad())?,
            value: value.parse().map_err(|_| bad())?,
        })
    }
}

impl TryFrom<String> for Community {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Community> for String {
    fn from(community: Community) -> Self {
        community.to_string()
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.asn, self.value)
    }
}

// ===== LargeCommunity =====

/// A large BGP community (RFC 8092), written `GLOBAL:LOCAL1:LOCAL2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl FromStr for LargeCommunity {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ValueError::LargeCommunity(text.to_owned());
        let mut parts = text.split(':').map(str::parse::<u32>);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(global)), Some(Ok(local1)), Some(Ok(local2)), None) => Ok(Self {
                global,
                local1,
                local2,
            }),
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for LargeCommunity {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<LargeCommunity> for String {
    fn from(community: LargeCommunity) -> Self {
        community.to_string()
    }
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

// ===== Interval =====

/// A duration written as a whole number with a unit: `300ms`, `5s`, `2m`, `1h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Interval(Duration);

impl Interval {
    pub const fn from_secs(seconds: u64) -> Self {
        Self(Duration::from_secs(seconds))
    }

    pub const fn from_millis(millis: u64) -> Self {
        Self(Duration::from_millis(millis))
    }

    pub fn duration(self) -> Duration {
        self.0
    }
}

impl FromStr for Interval {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ValueError::Duration(text.to_owned());
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let millis_per_unit = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        number
            .checked_mul(millis_per_unit)
            .map(|millis| Self(Duration::from_millis(millis)))
            .ok_or_else(bad)
    }
}

impl TryFrom<String> for Interval {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Interval> for String {
    fn from(interval: Interval) -> Self {
        interval.to_string()
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis.is_multiple_of(1_000) {
            write!(f, "{}s", millis / 1_000)
        } else {
            write!(f, "{millis}ms")
        }
    }
}

// ===== Rate =====

/// A packet rate in packets per second, above zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Rate(u64);

impl Rate {
    /// Requests per second one app certificate may make, unless configured.
    pub const DEFAULT_PER_CERTIFICATE: Self = Self::new_const(50);

    /// For rates written in code; a zero fails the build.
    pub const fn new_const(per_second: u64) -> Self {
        assert!(per_second > 0, "a rate must be above 0");
        Self(per_second)
    }

    pub fn new(per_second: u64) -> Result<Self, ValueError> {
        if per_second == 0 {
            Err(ValueError::RateZero)
        } else {
            Ok(Self(per_second))
        }
    }

    pub fn per_second(self) -> u64 {
        self.0
    }
}

impl TryFrom<u64> for Rate {
    type Error = ValueError;
    fn try_from(per_second: u64) -> Result<Self, Self::Error> {
        Self::new(per_second)
    }
}

impl From<Rate> for u64 {
    fn from(rate: Rate) -> Self {
        rate.0
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

// ===== Prepends =====

/// How many extra copies of our AS number go in front of the AS path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Prepends(u8);

impl Prepends {
    pub const NONE: Self = Self(0);
    pub const DEFAULT_NOT_PAIRED: Self = Self(2);

    /// Beyond this a path is as good as withdrawn, and long AS paths are
    /// themselves filtered by some networks.
    pub const MAX: u8 = 10;

    pub fn new(count: u8) -> Result<Self, ValueError> {
        if count > Self::MAX {
            Err(ValueError::TooManyPrepends {
                count,
                max: Self::MAX,
            })
        } else {
            Ok(Self(count))
        }
    }

    pub fn count(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Prepends {
    type Error = ValueError;
    fn try_from(count: u8) -> Result<Self, Self::Error> {
        Self::new(count)
    }
}

impl From<Prepends> for u8 {
    fn from(prepends: Prepends) -> Self {
        prepends.0
    }
}

impl fmt::Display for Prepends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

// ===== string newtypes =====

/// Defines a string newtype whose values pass `$check`, with the usual
/// conversions, so every validated name is declared the same way.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:expr, $error:path) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[derive(Deserialize, Serialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(text: String) -> Result<Self, Self::Error> {
                let check: fn(&str) -> bool = $check;
                if check(&text) { Ok(Self(text)) } else { Err($error(text)) }
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::try_from(text.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_string!(
    /// A Linux network interface name (`IFNAMSIZ` is 16 with the NUL).
    InterfaceName,
    |name| {
        (1..=15).contains(&name.len())
            && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
            && name != "."
            && name != ".."
    },
    ValueError::InterfaceName
);

checked_string!(
    /// The name of a node, telco or service: it appears in file names,
    /// metrics labels and log lines, so it is kept plain.
    Name,
    |name| {
        (1..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    },
    ValueError::Name
);

checked_string!(
    /// A DNS name a TLS client sends as SNI (no IP addresses, no wildcards).
    DnsName,
    |name| {
        !name.contains('*')
            && name.parse::<IpAddr>().is_err()
            && rustls_pki_types::DnsName::try_from(name).is_ok()
    },
    ValueError::DnsName
);

// ===== OriginUrl =====

/// Where the bank's origin listens: `https://HOST[:PORT]`, reached over transit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct OriginUrl {
    pub host: OriginHost,
    pub port: u16,
}

/// The host part of an origin URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OriginHost {
    Ip(IpAddr),
    Name(DnsName),
}

impl FromStr for OriginUrl {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ValueError::OriginUrl(text.to_owned());
        let authority = text.strip_prefix("https://").ok_or_else(bad)?;
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, rest) = bracketed.split_once(']').ok_or_else(bad)?;
            let ip: std::net::Ipv6Addr = host.parse().map_err(|_| bad())?;
            (OriginHost::Ip(IpAddr::V6(ip)), rest)
        } else {
            let (host, rest) = match authority.find(':') {
                Some(colon) => authority.split_at(colon),
                None => (authority, ""),
            };
            let host = match host.parse::<std::net::Ipv4Addr>() {
                Ok(ip) => OriginHost::Ip(IpAddr::V4(ip)),
                Err(_) => OriginHost::Name(host.parse().map_err(|_| bad())?),
            };
            (host, rest)
        };
        let port = match port.strip_prefix(':') {
            Some(port) => port.parse().ok().filter(|&p| p != 0).ok_or_else(bad)?,
            None if port.is_empty() => 443,
            None => return Err(bad()),
        };
        Ok(Self { host, port })
    }
}

impl TryFrom<String> for OriginUrl {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<OriginUrl> for String {
    fn from(url: OriginUrl) -> Self {
        url.to_string()
    }
}

impl fmt::Display for OriginUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            OriginHost::Ip(IpAddr::V6(ip)) => write!(f, "https://[{ip}]:{}", self.port),
            OriginHost::Ip(IpAddr::V4(ip)) => write!(f, "https://{ip}:{}", self.port),
            OriginHost::Name(name) => write!(f, "https://{name}:{}", self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn_refuses_zero_and_as_trans() {
        assert_eq!(Asn::new(0), Err(ValueError::AsnZero));
        assert_eq!(Asn::new(23456), Err(ValueError::AsnTrans));
        assert_eq!(Asn::new(4_200_000_000).map(Asn::get), Ok(4_200_000_000));
    }

    #[test]
    fn hold_time_refuses_one_and_two() {
        assert!(HoldTime::new(0).is_ok());
        assert_eq!(HoldTime::new(1), Err(ValueError::HoldTime(1)));
        assert_eq!(HoldTime::new(2), Err(ValueError::HoldTime(2)));
        assert!(HoldTime::new(3).is_ok());
    }

    #[test]
    fn prefix_limits_and_host_bits() {
        assert!("192.0.2.0/24".parse::<Prefix>().is_ok());
        assert!("2001:db8:100::/48".parse::<Prefix>().is_ok());
        assert!(matches!(
            "192.0.2.0/25".parse::<Prefix>(),
            Err(ValueError::PrefixTooLongV4(_))
        ));
        assert!(matches!(
            "2001:db8:100::/56".parse::<Prefix>(),
            Err(ValueError::PrefixTooLongV6(_))
        ));
        let err = "192.0.2.1/24".parse::<Prefix>().map(|_| ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "192.0.2.1/24 has host bits set; the prefix is 192.0.2.0/24"
        );
    }

    #[test]
    fn communities_round_trip_and_refuse_garbage() {
        assert_eq!("65535:666".parse(), Ok(Community::BLACKHOLE));
        assert!("65536:1".parse::<Community>().is_err());
        assert!("1:2:3".parse::<Community>().is_err());
        let large: LargeCommunity = "4200000000:1:2".parse().unwrap();
        assert_eq!(large.to_string(), "4200000000:1:2");
        assert!("1:2".parse::<LargeCommunity>().is_err());
        assert!("1:2:3:4".parse::<LargeCommunity>().is_err());
    }

    #[test]
    fn intervals() {
        assert_eq!("300ms".parse(), Ok(Interval::from_millis(300)));
        assert_eq!("2m".parse(), Ok(Interval::from_secs(120)));
        assert!("5".parse::<Interval>().is_err());
        assert!("s".parse::<Interval>().is_err());
        assert!("1.5s".parse::<Interval>().is_err());
        assert_eq!(Interval::from_millis(1500).to_string(), "1500ms");
    }

    #[test]
    fn names() {
        assert!("telco-a".parse::<Name>().is_ok());
        assert!("Telco".parse::<Name>().is_err());
        assert!("-a".parse::<Name>().is_err());
        assert!("ixp0".parse::<InterfaceName>().is_ok());
        assert!("a-very-long-interface".parse::<InterfaceName>().is_err());
        assert!("api.bank-a.example".parse::<DnsName>().is_ok());
        assert!("*.bank-a.example".parse::<DnsName>().is_err());
        assert!("192.0.2.1".parse::<DnsName>().is_err());
    }

    #[test]
    fn origin_urls() {
        let url: OriginUrl = "https://203.0.113.65:8443".parse().unwrap();
        assert_eq!(url.port, 8443);
        let url: OriginUrl = "https://[2001:db8::1]".parse().unwrap();
        assert_eq!(url.to_string(), "https://[2001:db8::1]:443");
        let url: OriginUrl = "https://origin.bank-a.example/".parse().unwrap();
        assert_eq!(url.to_string(), "https://origin.bank-a.example:443");
        assert!("http://203.0.113.65".parse::<OriginUrl>().is_err());
        assert!("https://203.0.113.65/api".parse::<OriginUrl>().is_err());
        assert!("https://203.0.113.65:0".parse::<OriginUrl>().is_err());
    }
}
