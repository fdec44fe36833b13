//! The ruleset, rendered from policy by a pure function ([`render`]).
//!
//! `netdev ixgate`, on the anycast interface's ingress, before the IP
//! stack and conntrack see anything:
//!
//! ```text
//! ingress: ARP and IPv6 ND accepted; IPv4 → ipv4, IPv6 → ipv6
//! ipv4/ipv6: BGP from configured neighbours accepted;
//!            to a service address → svc_<address>;
//!            anything else to the anycast prefixes dropped and counted
//! svc_<address>: fragments dropped; 1:N sampled to NFLOG; classified and
//!            counted (syn, tcp-other, udp, icmp), then per class:
//!   _syn:  only port 443; per-source meter; trusted sources skip the
//!          per-destination limit; untracked, for the SYN proxy
//!   _tcp:  only port 443 (tracked: the SYN proxy's connections)
//!   _udp:  only port 443 (QUIC); per-source meter, per-destination limit
//!   _icmp: per-source meter, per-destination limit
//! ```
//!
//! A per-source meter that is full lets new sources fall through to the
//! per-destination limit behind it, so a spoofed flood with more sources
//! than the meter holds still meets a limit. `inet ixgate` runs the SYN
//! proxy for TCP/443 to the service addresses.
//!
//! Named counters (packets and bytes) per service address and class keep
//! their identity across rule changes, so tightening a limit or changing
//! the sampling rate does not reset them.

use std::net::IpAddr;

use ixgate_policy::Config;
use ixgate_policy::node::Firewall;

use crate::detector::Class;
use crate::nft::{Chain, Expression, Family, Header, Hook, Set, Verdict, meta};

/// The name of our tables, in both families.
pub const TABLE: &str = "ixgate";

/// Bytes of each sampled packet sent to user space: IPv6 with a few
/// extension headers and the TCP header fit.
pub const SAMPLE_SNAPLEN: u32 = 128;

/// The MSS the SYN proxy announces: a 1500-byte MTU on the anycast network.
const SYNPROXY_MSS_V4: u16 = 1460;
const SYNPROXY_MSS_V6: u16 = 1440;

const HTTPS: u16 = 443;
const BGP: u16 = 179;

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;
/// IPv6 neighbour discovery: router solicitation to redirect (RFC 4861).
const ND_TYPES: std::ops::RangeInclusive<u8> = 133..=137;

/// What may change while the appliance runs, without a new configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Knobs {
    /// The per-destination limits are divided by the configured divisor.
    pub tightened: bool,
    /// One packet in this many is sampled.
    pub sample_one_in: u32,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            tightened: false,
            sample_one_in: 1024,
        }
    }
}

/// What a named counter counts, for one service address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Counted {
    /// Packets of a class, before any limit.
    Traffic(Class),
    /// Not allowed by the filter (a port or protocol the service does not use).
    DroppedByFilter,
    /// Over a per-source or per-destination limit.
    DroppedByLimit,
}

impl Counted {
    pub const ALL: [Self; 7] = [
        Self::Traffic(Class::Syn),
        Self::Traffic(Class::TcpOther),
        Self::Traffic(Class::Udp),
        Self::Traffic(Class::Icmp),
        Self::Traffic(Class::Fragment),
        Self::DroppedByFilter,
        Self::DroppedByLimit,
    ];

    /// The name's suffix, and what operators read.
    pub fn label(self) -> &'static str {
        match self {
            Self::Traffic(Class::Syn) => "syn",
            Self::Traffic(Class::TcpOther) => "tcp_other",
            Self::Traffic(Class::Udp) => "udp",
            Self::Traffic(Class::Icmp) => "icmp",
            Self::Traffic(Class::Fragment) => "fragment",
            Self::DroppedByFilter => "dropped_filter",
            Self::DroppedByLimit => "dropped_limit",
        }
    }
}

/// One named counter of the netdev table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterSpec {
    pub name: String,
    /// The service address; `None` for the rest of the anycast prefixes.
    pub target: Option<IpAddr>,
    pub counted: Counted,
}

/// A rule: expressions, in a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub chain: String,
    pub expressions: Vec<Expression>,
}

/// One table as it should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub family: Family,
    pub sets: Vec<Set>,
    pub counters: Vec<String>,
    pub chains: Vec<Chain>,
    pub rules: Vec<Rule>,
}

/// Everything we put in the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ruleset {
    pub tables: Vec<Table>,
    /// The named counters and what each counts.
    pub counters: Vec<CounterSpec>,
    /// The sets the appliance adds trusted sources to, per family.
    pub trusted_v4: String,
    pub trusted_v6: String,
}

/// The sets of each family: the trusted sources, and a meter per class.
const SET_ROLES: [&str; 4] = ["trusted", "syn", "udp", "icmp"];

/// The chain that samples.
const SAMPLE_CHAIN: &str = "sample";

/// Renders the ruleset for `config` with `knobs`.
pub fn render(config: &Config, knobs: Knobs) -> Ruleset {
    let firewall = &config.node.firewall;
    let mut netdev = TableBuilder::new(Family::Netdev);
    sets(&mut netdev, firewall);
    ingress(&mut netdev, config.node.interfaces.anycast.as_str());
    sampler(&mut netdev, firewall, knobs);

    let mut inet = TableBuilder::new(Family::Inet);
    inet.chains.push(Chain {
        name: "input".into(),
        hook: Some(Hook {
            number: 1,
            priority: 0,
            device: None,
            accept_by_default: true,
        }),
    });
    for family in [IpFamily::V4, IpFamily::V6] {
        family_rules(&mut netdev, &mut inet, config, knobs, family);
    }

    let counters = std::mem::take(&mut netdev.specs);
    Ruleset {
        tables: vec![netdev.build(), inet.build()],
        counters,
        trusted_v4: IpFamily::V4.set("trusted"),
        trusted_v6: IpFamily::V6.set("trusted"),
    }
}

/// The trusted set and the per-source meters, per family.
fn sets(netdev: &mut TableBuilder, firewall: &Firewall) {
    for family in [IpFamily::V4, IpFamily::V6] {
        for role in SET_ROLES {
            let trusted = role == "trusted";
            let (size, timeout) = if trusted {
                (firewall.trusted_size, firewall.trusted_timeout)
            } else {
                (firewall.meter_size, firewall.meter_timeout)
            };
            netdev.sets.push(Set {
                name: family.set(role),
                id: family.set_id(role),
                ipv6: family == IpFamily::V6,
                size,
                timeout: Some(timeout.duration()),
                dynamic: !trusted,
            });
        }
    }
}

/// The base chain: ARP and ND pass first, whatever follows.
fn ingress(netdev: &mut TableBuilder, device: &str) {
    netdev.chains.push(Chain {
        name: "ingress".into(),
        hook: Some(Hook {
            number: 0,
            priority: -500,
            device: Some(device.to_owned()),
            accept_by_default: true,
        }),
    });
    netdev.rule(
        "ingress",
        vec![
            Expression::Meta {
                key: meta::PROTOCOL,
            },
            Expression::equals(0x0806_u16.to_be_bytes().to_vec()),
            Expression::Verdict(Verdict::Accept),
        ],
    );
    for nd_type in ND_TYPES {
        let mut accept = IpFamily::V6.is();
        accept.extend(protocol_is(ICMPV6));
        accept.extend(transport(0, 1, vec![nd_type]));
        accept.push(Expression::Verdict(Verdict::Accept));
        netdev.rule("ingress", accept);
    }
    for family in [IpFamily::V4, IpFamily::V6] {
        let mut to_family = family.is();
        to_family.push(Expression::Verdict(Verdict::Goto(family.chain().into())));
        netdev.rule("ingress", to_family);
    }
}

/// One chain, one rule, one token bucket: every service's packets are
/// sampled 1 in N, and never more than the budget per second in all.
fn sampler(netdev: &mut TableBuilder, firewall: &Firewall, knobs: Knobs) {
    netdev.chains.push(Chain::regular(SAMPLE_CHAIN));
    let cap = firewall.sample_budget.per_second();
    netdev.rule(
        SAMPLE_CHAIN,
        vec![
            Expression::RandomNumber {
                modulus: knobs.sample_one_in.max(1),
            },
            Expression::equals(0_u32.to_ne_bytes().to_vec()),
            Expression::Limit {
                rate: cap,
                burst: burst_of(cap),
                over: false,
            },
            Expression::Log {
                group: firewall.nflog_group,
                snaplen: SAMPLE_SNAPLEN,
            },
        ],
    );
}

/// The chain of one IP family: BGP from the neighbours, each service
/// address to its chain, the rest of the anycast prefixes dropped.
fn family_rules(
    netdev: &mut TableBuilder,
    inet: &mut TableBuilder,
    config: &Config,
    knobs: Knobs,
    family: IpFamily,
) {
    let chain = family.chain();
    netdev.chains.push(Chain::regular(chain));
    for neighbour in neighbours(config, family) {
        for port_offset in [2, 0] {
            let mut bgp = family.source_is(neighbour);
            bgp.extend(protocol_is(TCP));
            bgp.extend(transport(port_offset, 2, BGP.to_be_bytes().to_vec()));
            bgp.push(Expression::Verdict(Verdict::Accept));
            netdev.rule(chain, bgp);
        }
    }
    let services = config
        .node
        .anycast
        .service_ips
        .iter()
        .copied()
        .filter(|ip| IpFamily::of(*ip) == family);
    for service in services {
        let mut to_service = family.destination_is(service);
        to_service.push(Expression::Verdict(Verdict::Goto(service_chain(service))));
        netdev.rule(chain, to_service);
        ServiceRules::new(&config.node.firewall, knobs, service).render(netdev);
        synproxy_rules(inet, service);
    }
    let other = format!("anycast_{}_dropped_filter", family.label());
    for prefix in &config.node.anycast.prefixes {
        let net = prefix.net();
        if IpFamily::of(net.addr()) == family {
            let mut to_prefix = family.destination_in(net);
            to_prefix.extend([
                Expression::NamedCounter(other.clone()),
                Expression::Verdict(Verdict::Drop),
            ]);
            netdev.rule(chain, to_prefix);
        }
    }
    netdev.counter(CounterSpec {
        name: other,
        target: None,
        counted: Counted::DroppedByFilter,
    });
}

/// The rules of one service address: its chain and one per class.
struct ServiceRules<'a> {
    firewall: &'a Firewall,
    family: IpFamily,
    service: IpAddr,
    chain: String,
    /// The per-destination limits are divided by this.
    divisor: u64,
}

impl<'a> ServiceRules<'a> {
    fn new(firewall: &'a Firewall, knobs: Knobs, service: IpAddr) -> Self {
        Self {
            firewall,
            family: IpFamily::of(service),
            service,
            chain: service_chain(service),
            divisor: if knobs.tightened {
                u64::from(firewall.tighten_divisor.max(1))
            } else {
                1
            },
        }
    }

    fn counter(&self, counted: Counted) -> String {
        format!("{}_{}", self.chain, counted.label())
    }

    fn dropped(&self, counted: Counted) -> [Expression; 2] {
        [
            Expression::NamedCounter(self.counter(counted)),
            Expression::Verdict(Verdict::Drop),
        ]
    }

    /// Over the rate for all sources together: dropped and counted.
    fn per_destination(&self, rate: ixgate_policy::types::Rate) -> Vec<Expression> {
        let rate = (rate.per_second() / self.divisor).max(1);
        let mut over = vec![Expression::Limit {
            rate,
            burst: burst_of(rate),
            over: true,
        }];
        over.extend(self.dropped(Counted::DroppedByLimit));
        over
    }

    /// Over the rate for this source (a meter): dropped and counted. A full
    /// meter does not match, and the packet goes on to the next rule.
    fn per_source(&self, meter: &str, rate: ixgate_policy::types::Rate) -> Vec<Expression> {
        let rate = rate.per_second();
        let mut over = self.family.is();
        over.push(self.family.source());
        over.push(Expression::AddToSet {
            set: self.family.set(meter),
            set_id: self.family.set_id(meter),
            per_element: Box::new(Expression::Limit {
                rate,
                burst: burst_of(rate),
                over: true,
            }),
        });
        over.extend(self.dropped(Counted::DroppedByLimit));
        over
    }

    fn render(&self, netdev: &mut TableBuilder) {
        for counted in Counted::ALL {
            netdev.counter(CounterSpec {
                name: self.counter(counted),
                target: Some(self.service),
                counted,
            });
        }
        let chain = &self.chain;
        netdev.chains.push(Chain::regular(chain.clone()));
        let mut fragment = self.family.fragment();
        fragment.extend(self.dropped(Counted::Traffic(Class::Fragment)));
        netdev.rule(chain, fragment);
        netdev.rule(
            chain,
            vec![Expression::Verdict(Verdict::Jump(SAMPLE_CHAIN.into()))],
        );
        let classes = [
            (Class::Syn, "syn", syn_flags()),
            (Class::TcpOther, "tcp", protocol_is(TCP)),
            (Class::Udp, "udp", protocol_is(UDP)),
            (Class::Icmp, "icmp", protocol_is(self.family.icmp())),
        ];
        for (class, suffix, mut classify) in classes {
            classify.extend([
                Expression::NamedCounter(self.counter(Counted::Traffic(class))),
                Expression::Verdict(Verdict::Goto(format!("{chain}_{suffix}"))),
            ]);
            netdev.rule(chain, classify);
        }
        netdev.rule(chain, self.dropped(Counted::DroppedByFilter).to_vec());
        self.class_chains(netdev);
    }

    fn class_chains(&self, netdev: &mut TableBuilder) {
        let chain = &self.chain;
        let firewall = self.firewall;
        let untracked_accept = || vec![Expression::Notrack, Expression::Verdict(Verdict::Accept)];
        let dropped_filter = self.dropped(Counted::DroppedByFilter);

        let syn = format!("{chain}_syn");
        netdev.chains.push(Chain::regular(syn.clone()));
        netdev.rule(&syn, port_is_not(TCP, HTTPS, dropped_filter.clone()));
        netdev.rule(&syn, self.per_source("syn", firewall.syn_per_source));
        let mut trusted = self.family.is();
        trusted.push(self.family.source());
        trusted.push(Expression::Lookup {
            set: self.family.set("trusted"),
            set_id: self.family.set_id("trusted"),
            inverted: false,
        });
        trusted.extend(untracked_accept());
        netdev.rule(&syn, trusted);
        netdev.rule(&syn, self.per_destination(firewall.syn_per_destination));
        netdev.rule(&syn, untracked_accept());

        let tcp = format!("{chain}_tcp");
        netdev.chains.push(Chain::regular(tcp.clone()));
        let mut https = protocol_is(TCP);
        https.extend(transport(2, 2, HTTPS.to_be_bytes().to_vec()));
        https.push(Expression::Verdict(Verdict::Accept));
        netdev.rule(&tcp, https);
        netdev.rule(&tcp, dropped_filter.to_vec());

        let udp = format!("{chain}_udp");
        netdev.chains.push(Chain::regular(udp.clone()));
        netdev.rule(&udp, port_is_not(UDP, HTTPS, dropped_filter));
        netdev.rule(&udp, self.per_source("udp", firewall.udp_per_source));
        netdev.rule(&udp, self.per_destination(firewall.udp_per_destination));
        netdev.rule(&udp, untracked_accept());

        let icmp = format!("{chain}_icmp");
        netdev.chains.push(Chain::regular(icmp.clone()));
        netdev.rule(&icmp, self.per_source("icmp", firewall.icmp_per_source));
        netdev.rule(&icmp, self.per_destination(firewall.icmp_per_destination));
        netdev.rule(&icmp, untracked_accept());
    }
}

/// In `inet ixgate`: the SYN proxy answers untracked SYNs to the service's
/// port 443 with a cookie and hands the connection to the stack once the
/// client's ACK proves the address real; invalid packets are dropped.
fn synproxy_rules(inet: &mut TableBuilder, service: IpAddr) {
    let family = IpFamily::of(service);
    let to_https = || {
        let mut expressions = vec![
            Expression::Meta { key: meta::NFPROTO },
            Expression::equals(vec![family.nfproto()]),
        ];
        expressions.push(Expression::Payload {
            header: Header::Network,
            offset: family.address_offsets().1,
            length: family.address_len(),
        });
        expressions.push(Expression::equals(octets(service)));
        expressions.extend(protocol_is(TCP));
        expressions.extend(transport(2, 2, HTTPS.to_be_bytes().to_vec()));
        expressions
    };
    let state_has = |bits: u32| {
        [
            Expression::ConntrackState,
            Expression::Mask {
                mask: bits.to_ne_bytes().to_vec(),
            },
            Expression::Compare {
                not: true,
                data: vec![0; 4],
            },
        ]
    };
    // IP_CT_INVALID is bit 0; untracked is bit 6.
    let mut proxy = to_https();
    proxy.extend(state_has(0x41));
    proxy.push(Expression::Synproxy {
        mss: match family {
            IpFamily::V4 => SYNPROXY_MSS_V4,
            IpFamily::V6 => SYNPROXY_MSS_V6,
        },
    });
    inet.rule("input", proxy);
    let mut invalid = to_https();
    invalid.extend(state_has(0x01));
    invalid.push(Expression::Verdict(Verdict::Drop));
    inet.rule("input", invalid);
}

/// `tcp flags & (fin|syn|rst|ack) == syn`: a connection's first packet.
fn syn_flags() -> Vec<Expression> {
    let mut expressions = protocol_is(TCP);
    expressions.extend([
        Expression::Payload {
            header: Header::Transport,
            offset: 13,
            length: 1,
        },
        Expression::Mask { mask: vec![0x17] },
        Expression::equals(vec![0x02]),
    ]);
    expressions
}

/// `meta l4proto PROTOCOL`.
fn protocol_is(protocol: u8) -> Vec<Expression> {
    vec![
        Expression::Meta { key: meta::L4PROTO },
        Expression::equals(vec![protocol]),
    ]
}

/// Loads `length` bytes at `offset` of the transport header and compares.
fn transport(offset: u32, length: u32, value: Vec<u8>) -> [Expression; 2] {
    [
        Expression::Payload {
            header: Header::Transport,
            offset,
            length,
        },
        Expression::equals(value),
    ]
}

/// `PROTOCOL dport != PORT` and then `then`.
fn port_is_not(protocol: u8, port: u16, then: [Expression; 2]) -> Vec<Expression> {
    let mut expressions = protocol_is(protocol);
    expressions.extend([
        Expression::Payload {
            header: Header::Transport,
            offset: 2,
            length: 2,
        },
        Expression::Compare {
            not: true,
            data: port.to_be_bytes().to_vec(),
        },
    ]);
    expressions.extend(then);
    expressions
}

/// A token bucket holds a tenth of a second at the rate, at least 5
/// packets (nft's own default).
fn burst_of(rate: u64) -> u32 {
    u32::try_from(rate / 10).unwrap_or(u32::MAX).max(5)
}

/// The chain of a service address: `svc_192_0_2_10`, `svc_2001_db8__10`.
pub fn service_chain(service: IpAddr) -> String {
    format!("svc_{}", service.to_string().replace(['.', ':'], "_"))
}

/// The configured BGP neighbours of a family.
fn neighbours(config: &Config, family: IpFamily) -> Vec<IpAddr> {
    config
        .telcos
        .iter()
        .filter_map(|telco| match family {
            IpFamily::V4 => telco.neighbor_v4.map(IpAddr::V4),
            IpFamily::V6 => telco.neighbor_v6.map(IpAddr::V6),
        })
        .collect()
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() { Self::V4 } else { Self::V6 }
    }

    fn label(self) -> &'static str {
        match self {
            Self::V4 => "v4",
            Self::V6 => "v6",
        }
    }

    fn chain(self) -> &'static str {
        match self {
            Self::V4 => "ipv4",
            Self::V6 => "ipv6",
        }
    }

    /// `syn_v4`, `trusted_v6`.
    fn set(self, role: &str) -> String {
        format!("{role}_{}", self.label())
    }

    /// The id rules of the same batch refer to the set by.
    fn set_id(self, role: &str) -> u32 {
        let index = SET_ROLES.iter().position(|r| *r == role).unwrap_or(0);
        let base = match self {
            Self::V4 => 1,
            Self::V6 => 1 + SET_ROLES.len(),
        };
        u32::try_from(base + index).unwrap_or(0)
    }

    fn nfproto(self) -> u8 {
        match self {
            Self::V4 => 2,
            Self::V6 => 10,
        }
    }

    fn icmp(self) -> u8 {
        match self {
            Self::V4 => ICMP,
            Self::V6 => ICMPV6,
        }
    }

    /// `meta protocol ip` / `ip6` (the EtherType, at netdev ingress).
    fn is(self) -> Vec<Expression> {
        let ethertype: u16 = match self {
            Self::V4 => 0x0800,
            Self::V6 => 0x86dd,
        };
        vec![
            Expression::Meta {
                key: meta::PROTOCOL,
            },
            Expression::equals(ethertype.to_be_bytes().to_vec()),
        ]
    }

    /// The source address's offset in the network header, and the
    /// destination follows it.
    fn address_offsets(self) -> (u32, u32) {
        match self {
            Self::V4 => (12, 16),
            Self::V6 => (8, 24),
        }
    }

    fn address_len(self) -> u32 {
        match self {
            Self::V4 => 4,
            Self::V6 => 16,
        }
    }

    fn source(self) -> Expression {
        Expression::Payload {
            header: Header::Network,
            offset: self.address_offsets().0,
            length: self.address_len(),
        }
    }

    fn source_is(self, ip: IpAddr) -> Vec<Expression> {
        let mut expressions = self.is();
        expressions.push(self.source());
        expressions.push(Expression::equals(octets(ip)));
        expressions
    }

    fn destination_is(self, ip: IpAddr) -> Vec<Expression> {
        let mut expressions = self.is();
        expressions.push(Expression::Payload {
            header: Header::Network,
            offset: self.address_offsets().1,
            length: self.address_len(),
        });
        expressions.push(Expression::equals(octets(ip)));
        expressions
    }

    /// The destination inside `net`, as nft compiles it: a whole number of
    /// bytes is loaded and compared alone; otherwise the whole address,
    /// masked.
    fn destination_in(self, net: ipnet::IpNet) -> Vec<Expression> {
        let mut expressions = self.is();
        let bits = usize::from(net.prefix_len());
        let network = octets(net.network());
        let whole_bytes = bits % 8 == 0;
        let length = if whole_bytes { bits / 8 } else { network.len() };
        expressions.push(Expression::Payload {
            header: Header::Network,
            offset: self.address_offsets().1,
            length: u32::try_from(length).unwrap_or(0),
        });
        if !whole_bytes {
            expressions.push(Expression::Mask {
                mask: octets(net.netmask()),
            });
        }
        expressions.push(Expression::equals(network[..length].to_vec()));
        expressions
    }

    /// Any fragment, first or not: `ip frag-off & 0x3fff != 0` (offset or
    /// more-fragments), `exthdr frag exists`.
    fn fragment(self) -> Vec<Expression> {
        let mut expressions = self.is();
        match self {
            Self::V4 => expressions.extend([
                Expression::Payload {
                    header: Header::Network,
                    offset: 6,
                    length: 2,
                },
                Expression::Mask {
                    mask: vec![0x3f, 0xff],
                },
                Expression::Compare {
                    not: true,
                    data: vec![0, 0],
                },
            ]),
            Self::V6 => {
                expressions.extend([Expression::Ipv6FragmentHeader, Expression::equals(vec![1])]);
            }
        }
        expressions
    }
}

/// A table being rendered.
struct TableBuilder {
    family: Family,
    /// What each named counter counts.
    specs: Vec<CounterSpec>,
    sets: Vec<Set>,
    counters: Vec<String>,
    chains: Vec<Chain>,
    rules: Vec<Rule>,
}

impl TableBuilder {
    fn new(family: Family) -> Self {
        Self {
            family,
            specs: Vec::new(),
            sets: Vec::new(),
            counters: Vec::new(),
            chains: Vec::new(),
            rules: Vec::new(),
        }
    }

    fn rule(&mut self, chain: &str, expressions: Vec<Expression>) {
        self.rules.push(Rule {
            chain: chain.to_owned(),
            expressions,
        });
    }

    fn counter(&mut self, spec: CounterSpec) {
        self.counters.push(spec.name.clone());
        self.specs.push(spec);
    }

    fn build(self) -> Table {
        Table {
            family: self.family,
            sets: self.sets,
            counters: self.counters,
            chains: self.chains,
            rules: self.rules,
        }
    }
}

#[cfg(test)]
mod tests;
