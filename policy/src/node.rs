//! The node file, `ixgate.toml`: what this one appliance is, where it sits,
//! what it announces and which bank services it terminates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::types::{Asn, DnsName, InterfaceName, Interval, Name, OriginUrl, Prefix, Rate};

/// The whole node file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    pub node: NodeSection,
    pub interfaces: Interfaces,
    #[serde(default)]
    pub bgp: BgpSection,
    pub anycast: Anycast,
    pub transit: Transit,
    pub management: Management,
    pub tls: Tls,
    pub services: Vec<Service>,
    #[serde(default)]
    pub flood: Flood,
    #[serde(default)]
    pub firewall: Firewall,
    #[serde(default)]
    pub quic: Quic,
    #[serde(default)]
    pub proxy: ProxySection,
}

/// `[proxy]`: how the proxy uses the machine.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// Worker threads of the runtime that carries the proxy (and the
    /// rest of the appliance); none: one per core.
    pub threads: Option<u32>,
}

impl ProxySection {
    pub const MAX_THREADS: u32 = 256;
}

/// `[node]`: identity and pairing.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    pub name: Name,
    /// Our AS number, shared by every node announcing the anycast prefixes.
    pub asn: Asn,
    pub router_id: Ipv4Addr,
    /// The telco this node serves first: it sees the shortest AS path.
    pub paired_telco: Name,
    /// Where the telco files are, relative to this file.
    #[serde(default = "default_telco_dir")]
    pub telco_dir: PathBuf,
}

fn default_telco_dir() -> PathBuf {
    PathBuf::from("telcos")
}

/// `[interfaces]`: the two networks that must never mix.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Interfaces {
    /// The port on the exchange's peering LAN, toward the telcos.
    pub anycast: InterfaceName,
    /// The port toward the transit network and the banks' origins.
    pub transit: InterfaceName,
    /// The kind of link that holds the anycast service addresses.
    pub anycast_holder: HolderKind,
    /// Its name (not used with `lo`, which holds them itself).
    pub anycast_holder_name: Option<InterfaceName>,
}

/// What holds the anycast service addresses. Production uses `dummy`; a
/// kernel without the dummy driver can use a port-less `bridge`, or `lo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HolderKind {
    Dummy,
    Bridge,
    Lo,
}

impl Interfaces {
    pub const DEFAULT_HOLDER_NAME: &'static str = "ixgate0";

    /// The interface that carries the service addresses.
    pub fn holder_name(&self) -> &str {
        match (self.anycast_holder, &self.anycast_holder_name) {
            (HolderKind::Lo, _) => "lo",
            (_, Some(name)) => name.as_str(),
            (_, None) => Self::DEFAULT_HOLDER_NAME,
        }
    }
}

/// `[bgp]`: our side of the sessions on the peering LAN.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BgpSection {
    /// Local address for sessions with IPv4 neighbours.
    pub local_v4: Option<Ipv4Addr>,
    /// Local address for sessions with IPv6 neighbours.
    pub local_v6: Option<Ipv6Addr>,
}

/// `[anycast]`: what every node announces and serves.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Anycast {
    pub prefixes: Vec<Prefix>,
    /// The addresses the proxy listens on; each inside one of `prefixes`.
    pub service_ips: Vec<IpAddr>,
}

/// `[transit]`: how this node reaches the banks' origins, out of sight of
/// the anycast network.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Transit {
    /// Source addresses for connections to origins (one per family used).
    pub sources: Vec<IpAddr>,
    /// The transit router, one per family of `sources`.
    pub gateways: Vec<IpAddr>,
}

/// `[management]`: where operators and monitoring reach the node.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Management {
    /// Prometheus metrics endpoint.
    pub metrics: SocketAddr,
    /// The control socket of `ixgate ctl`.
    pub control_socket: PathBuf,
}

/// `[tls]`: settings shared by every service.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Session-ticket keys shared by all nodes, so a client resumes on any
    /// node. One key per line, 96 hex digits (a 16-byte name and a 32-byte
    /// AES-256-GCM key); the first line encrypts new tickets.
    pub ticket_key_file: PathBuf,
}

/// `[[services]]`: one bank's API, terminated with mutual TLS.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: Name,
    /// The names the bank's app sends as SNI.
    pub sni: Vec<DnsName>,
    /// Our server certificate chain for those names (PEM).
    pub certificate: PathBuf,
    /// Its private key (PEM).
    pub private_key: PathBuf,
    /// The CA certificates that sign the bank's app certificates (PEM).
    pub client_ca: PathBuf,
    /// Revocation lists issued by those CAs (PEM or DER).
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// The bank's hidden origin, reached over transit.
    pub origins: Vec<OriginUrl>,
    /// The CA that signs the origin's certificate (PEM).
    pub origin_ca: PathBuf,
    /// The name the origin's certificate is checked against.
    pub origin_sni: DnsName,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub limits: Limits,
    /// HTTP/3 for this service, on addresses of its own.
    pub http3: Option<Http3>,
}

/// `[services.http3]`: the service over QUIC. quinn cannot choose a TLS
/// configuration by SNI, so the service address tells which bank a QUIC
/// connection is for: each service needs addresses no other service uses
/// for HTTP/3.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Http3 {
    /// Service addresses (of `[anycast] service_ips`) that take this
    /// service's QUIC connections on UDP/443.
    pub addresses: Vec<IpAddr>,
    /// How long apps may remember the `Alt-Svc` advertisement.
    #[serde(default = "default_alt_svc_max_age")]
    pub alt_svc_max_age: Interval,
}

fn default_alt_svc_max_age() -> Interval {
    Interval::from_secs(24 * 60 * 60)
}

/// `[quic]`: how the node holds up against floods of QUIC Initials.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quic {
    /// Handshakes in progress beyond which a new client must first prove
    /// its address with a Retry round trip: a spoofed Initial gets one
    /// small packet back and costs no handshake. 0: always.
    pub retry_above_handshakes: u32,
    /// Handshakes in progress at most; Initials beyond are dropped.
    pub max_handshakes: u32,
}

impl Default for Quic {
    fn default() -> Self {
        Self {
            retry_above_handshakes: 64,
            max_handshakes: 1024,
        }
    }
}

/// `[services.timeouts]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub handshake: Interval,
    pub origin_connect: Interval,
    pub origin_response: Interval,
    pub client_idle: Interval,
    pub origin_idle: Interval,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            handshake: Interval::from_secs(5),
            origin_connect: Interval::from_secs(3),
            origin_response: Interval::from_secs(30),
            client_idle: Interval::from_secs(60),
            origin_idle: Interval::from_secs(90),
        }
    }
}

/// `[services.limits]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_header_bytes: u32,
    pub max_body_bytes: u64,
    pub max_connections_per_source: u32,
    /// A stolen app certificate cannot flood the bank.
    pub requests_per_second_per_certificate: Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            max_connections_per_source: 256,
            requests_per_second_per_certificate: Rate::DEFAULT_PER_CERTIFICATE,
        }
    }
}

/// `[flood]`: when the detector calls a flood, per traffic class. A telco
/// file may override the thresholds for traffic through that telco.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Flood {
    /// A mitigation stays at least this long once started.
    pub min_active: Interval,
    /// After a flood ends, wait this long before taking mitigations back.
    pub hold_down: Interval,
    pub syn: Threshold,
    pub tcp_other: Threshold,
    pub udp: Threshold,
    pub icmp: Threshold,
}

impl Default for Flood {
    fn default() -> Self {
        Self {
            min_active: Interval::from_secs(10),
            hold_down: Interval::from_secs(30),
            syn: Threshold::DEFAULT_SYN,
            tcp_other: Threshold::DEFAULT_TCP_OTHER,
            udp: Threshold::DEFAULT_UDP,
            icmp: Threshold::DEFAULT_ICMP,
        }
    }
}

/// Enter and exit rates of one class, with hysteresis between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub enter_pps: Rate,
    pub exit_pps: Rate,
}

impl Threshold {
    /// The exit rate may be at most this fraction of the enter rate, so a
    /// flood hovering near the threshold does not flap.
    pub const MAX_EXIT_NUMERATOR: u64 = 3;
    pub const MAX_EXIT_DENOMINATOR: u64 = 4;

    const DEFAULT_SYN: Self = Self::pps(20_000, 10_000);
    const DEFAULT_TCP_OTHER: Self = Self::pps(100_000, 50_000);
    const DEFAULT_UDP: Self = Self::pps(50_000, 25_000);
    const DEFAULT_ICMP: Self = Self::pps(2_000, 1_000);

    const fn pps(enter: u64, exit: u64) -> Self {
        Self {
            enter_pps: Rate::new_const(enter),
            exit_pps: Rate::new_const(exit),
        }
    }

    pub fn has_hysteresis(self) -> bool {
        self.exit_pps.per_second() * Self::MAX_EXIT_DENOMINATOR
            <= self.enter_pps.per_second() * Self::MAX_EXIT_NUMERATOR
    }
}

/// `[firewall]`: the kernel filter in front of the services, on the anycast
/// interface's ingress. Per-source limits catch a few loud sources; the
/// per-destination limits behind them catch a spoofed flood whose sources
/// are too many to track.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Firewall {
    /// SYNs per second from one source address. Mobile carriers put many
    /// users behind one CGNAT address, so this is per address, not per user.
    pub syn_per_source: Rate,
    pub udp_per_source: Rate,
    pub icmp_per_source: Rate,
    /// SYNs per second to one service address from all sources not in the
    /// trusted set (sources that completed mutual TLS lately).
    pub syn_per_destination: Rate,
    pub udp_per_destination: Rate,
    pub icmp_per_destination: Rate,
    /// During a flood the per-destination limits are divided by this.
    pub tighten_divisor: u32,
    /// Source addresses each per-source meter tracks; sources beyond it
    /// meet only the per-destination limits.
    pub meter_size: u32,
    /// A source leaves a meter after this long without packets.
    pub meter_timeout: Interval,
    /// Sources the trusted set holds at most.
    pub trusted_size: u32,
    /// A trusted source is forgotten after this long.
    pub trusted_timeout: Interval,
    /// How often the counters are read (each read is one netlink dump).
    pub counter_interval: Interval,
    /// Sampled packets per second the sampler aims at (never more).
    pub sample_budget: Rate,
    /// The NFLOG group samples go to.
    pub nflog_group: u16,
}

impl Default for Firewall {
    fn default() -> Self {
        Self {
            syn_per_source: Rate::new_const(200),
            udp_per_source: Rate::new_const(5_000),
            icmp_per_source: Rate::new_const(10),
            syn_per_destination: Rate::new_const(20_000),
            udp_per_destination: Rate::new_const(200_000),
            icmp_per_destination: Rate::new_const(1_000),
            tighten_divisor: 4,
            meter_size: 65_536,
            meter_timeout: Interval::from_secs(10),
            trusted_size: 65_536,
            trusted_timeout: Interval::from_secs(600),
            counter_interval: Interval::from_millis(100),
            sample_budget: Rate::new_const(2_000),
            nflog_group: 4242,
        }
    }
}

impl Firewall {
    /// Elements a meter or the trusted set may hold at most: about 200 B of
    /// kernel memory each, so 200 MiB at most per set.
    pub const MAX_SET_SIZE: u32 = 1 << 20;
    pub const MIN_COUNTER_INTERVAL: Interval = Interval::from_millis(10);
    pub const MAX_COUNTER_INTERVAL: Interval = Interval::from_secs(10);
    /// NFLOG copies every sample to user space; more than this costs more
    /// than the detection gains.
    pub const MAX_SAMPLE_BUDGET: u64 = 100_000;
}
