//! The rules that span keys and files. Each finding names the file and the
//! key path it is about; the loader turns that into a line and column.
//!
//! `check_rules` is pure; `check_files` reads the files the configuration
//! names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::files;
use crate::node::{Http3, NodeFile, ProxySection, Service, Threshold};
use crate::source::{Key, key_path};
use crate::telco::{TelcoFile, ThresholdOverrides};
use crate::types::{Name, Prefix};

/// Which file a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileRef {
    Node,
    /// The telco file at this index of the telcos given.
    Telco(usize),
}

/// One broken rule, with where it is broken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub file: FileRef,
    pub path: Vec<Key<'static>>,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut path = String::new();
        for key in &self.path {
            match key {
                Key::Field(name) if path.is_empty() => path.push_str(name),
                Key::Field(name) => {
                    let _ = write!(path, ".{name}");
                }
                Key::Index(index) => {
                    let _ = write!(path, "[{index}]");
                }
            }
        }
        write!(f, "{:?} {path}: {}", self.file, self.message)
    }
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn push(&mut self, file: FileRef, path: &[Key<'static>], message: impl Into<String>) {
        self.0.push(Finding {
            file,
            path: path.to_vec(),
            message: message.into(),
        });
    }
}

/// The rules that need no file system. `all_telcos_read` says whether
/// `telcos` is every telco file, so that a telco missing from it is really
/// missing and not merely unreadable.
pub fn check_rules(
    node: Option<&NodeFile>,
    telcos: &[TelcoFile],
    all_telcos_read: bool,
) -> Vec<Finding> {
    let mut findings = Findings::default();
    if let Some(node) = node {
        check_node(node, &mut findings);
    }
    for (index, telco) in telcos.iter().enumerate() {
        check_telco(FileRef::Telco(index), telco, &mut findings);
    }
    check_unique_telcos(telcos, &mut findings);
    if let Some(node) = node {
        check_node_against_telcos(node, telcos, all_telcos_read, &mut findings);
    }
    findings.0
}

fn check_node(node: &NodeFile, findings: &mut Findings) {
    use crate::node::HolderKind;
    let n = FileRef::Node;
    let interfaces = &node.interfaces;
    if interfaces.anycast == interfaces.transit {
        findings.push(
            n,
            key_path!["interfaces", "transit"],
            "the transit interface must not be the anycast interface; the two networks must stay apart",
        );
    }
    if interfaces.anycast_holder == HolderKind::Lo && interfaces.anycast_holder_name.is_some() {
        findings.push(
            n,
            key_path!["interfaces", "anycast_holder_name"],
            "the lo interface holds the service addresses itself; remove anycast_holder_name",
        );
    }

    let prefixes = &node.anycast.prefixes;
    if prefixes.is_empty() {
        findings.push(
            n,
            key_path!["anycast", "prefixes"],
            "at least one anycast prefix is needed",
        );
    }
    for (index, prefix) in prefixes.iter().enumerate() {
        if let Some(earlier) = prefixes[..index].iter().find(|earlier| {
            earlier.net().contains(&prefix.net()) || prefix.net().contains(&earlier.net())
        }) {
            findings.push(
                n,
                key_path!["anycast", "prefixes", index],
                format!("{prefix} overlaps {earlier}, listed before it"),
            );
        }
    }
    let inside_anycast = |ip: IpAddr| prefixes.iter().copied().find(|prefix| prefix.contains(ip));
    let prefix_list = || {
        prefixes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };

    if node.anycast.service_ips.is_empty() {
        findings.push(
            n,
            key_path!["anycast", "service_ips"],
            "at least one service IP is needed",
        );
    }
    for (index, ip) in node.anycast.service_ips.iter().enumerate() {
        if inside_anycast(*ip).is_none() {
            findings.push(
                n,
                key_path!["anycast", "service_ips", index],
                format!(
                    "service IP {ip} is outside the anycast prefixes ({}); no announcement would bring traffic to it",
                    prefix_list()
                ),
            );
        }
        if node.anycast.service_ips[..index].contains(ip) {
            findings.push(
                n,
                key_path!["anycast", "service_ips", index],
                format!("service IP {ip} is listed twice"),
            );
        }
    }

    check_transit(node, &inside_anycast, findings);

    let metrics = node.management.metrics.ip();
    if metrics.is_unspecified() {
        findings.push(
            n,
            key_path!["management", "metrics"],
            format!("{metrics} would serve metrics on every address, the anycast service IPs too; give the management address"),
        );
    } else if let Some(prefix) = inside_anycast(metrics) {
        findings.push(
            n,
            key_path!["management", "metrics"],
            format!("the metrics address {metrics} is inside anycast prefix {prefix}; management must not be reachable from the anycast side"),
        );
    }
    for (key, local) in [
        ("local_v4", node.bgp.local_v4.map(IpAddr::V4)),
        ("local_v6", node.bgp.local_v6.map(IpAddr::V6)),
    ] {
        if let Some(prefix) = local.and_then(inside_anycast) {
            findings.push(
                n,
                &[Key::Field("bgp"), Key::Field(key)],
                format!("the BGP session address is inside anycast prefix {prefix}; sessions must use the peering LAN address"),
            );
        }
    }

    check_services(node, findings);
    check_flood(node, findings);
    check_firewall(node, findings);
}

fn check_services(node: &NodeFile, findings: &mut Findings) {
    let n = FileRef::Node;
    if node.services.is_empty() {
        findings.push(n, key_path!["services"], "at least one service is needed");
    }
    if node.quic.max_handshakes == 0 {
        findings.push(
            n,
            key_path!["quic", "max_handshakes"],
            "at least one handshake must be allowed",
        );
    }
    if node
        .proxy
        .threads
        .is_some_and(|threads| threads == 0 || threads > ProxySection::MAX_THREADS)
    {
        findings.push(
            n,
            key_path!["proxy", "threads"],
            format!(
                "between 1 and {} proxy threads (leave it out for one per core)",
                ProxySection::MAX_THREADS
            ),
        );
    }
    let mut sni_owner = BTreeMap::new();
    let mut quic_owner = BTreeMap::new();
    for (index, service) in node.services.iter().enumerate() {
        if let Some(http3) = &service.http3 {
            check_http3(node, index, service, http3, &mut quic_owner, findings);
        }
        if node.services[..index]
            .iter()
            .any(|earlier| earlier.name == service.name)
        {
            findings.push(
                n,
                key_path!["services", index, "name"],
                format!("service name {} is used twice", service.name),
            );
        }
        if service.sni.is_empty() {
            findings.push(
                n,
                key_path!["services", index, "sni"],
                "a service needs at least one SNI name",
            );
        }
        for (sni_index, sni) in service.sni.iter().enumerate() {
            if let Some(owner) = sni_owner.insert(sni.clone(), service.name.clone()) {
                findings.push(
                    n,
                    key_path!["services", index, "sni", sni_index],
                    format!("SNI name {sni} is already served by service {owner}"),
                );
            }
        }
        if service.origins.is_empty() {
            findings.push(
                n,
                key_path!["services", index, "origins"],
                "a service needs at least one origin",
            );
        }
    }
}

/// Each HTTP/3 address is a service address, and only one service's: the
/// address is how a QUIC connection finds its bank.
fn check_http3(
    node: &NodeFile,
    index: usize,
    service: &Service,
    http3: &Http3,
    owners: &mut BTreeMap<IpAddr, Name>,
    findings: &mut Findings,
) {
    let n = FileRef::Node;
    if http3.addresses.is_empty() {
        findings.push(
            n,
            key_path!["services", index, "http3", "addresses"],
            "HTTP/3 needs at least one service address",
        );
    }
    for (address_index, address) in http3.addresses.iter().enumerate() {
        let at = key_path!["services", index, "http3", "addresses", address_index];
        if !node.anycast.service_ips.contains(address) {
            findings.push(
                n,
                at,
                format!("{address} is not one of [anycast] service_ips"),
            );
        }
        if let Some(owner) = owners.insert(*address, service.name.clone()) {
            findings.push(
                n,
                at,
                format!(
                    "{address} already takes HTTP/3 for service {owner}: QUIC chooses the bank by address, \
                     so each service needs its own"
                ),
            );
        }
    }
}

fn check_flood(node: &NodeFile, findings: &mut Findings) {
    let n = FileRef::Node;
    let flood = &node.flood;
    for (class, threshold) in [
        ("syn", flood.syn),
        ("tcp_other", flood.tcp_other),
        ("udp", flood.udp),
        ("icmp", flood.icmp),
    ] {
        check_hysteresis(
            n,
            &[Key::Field("flood"), Key::Field(class)],
            threshold,
            findings,
        );
    }
}

fn check_firewall(node: &NodeFile, findings: &mut Findings) {
    use crate::node::Firewall;
    let n = FileRef::Node;
    let firewall = &node.firewall;
    for (key, size) in [
        ("meter_size", firewall.meter_size),
        ("trusted_size", firewall.trusted_size),
    ] {
        if size == 0 || size > Firewall::MAX_SET_SIZE {
            findings.push(
                n,
                &[Key::Field("firewall"), Key::Field(key)],
                format!(
                    "a set holds from 1 to {} addresses, not {size}",
                    Firewall::MAX_SET_SIZE
                ),
            );
        }
    }
    let interval = firewall.counter_interval;
    if interval < Firewall::MIN_COUNTER_INTERVAL || interval > Firewall::MAX_COUNTER_INTERVAL {
        findings.push(
            n,
            &[Key::Field("firewall"), Key::Field("counter_interval")],
            format!(
                "counters are read every {} to {}, not every {interval}",
                Firewall::MIN_COUNTER_INTERVAL,
                Firewall::MAX_COUNTER_INTERVAL
            ),
        );
    }
    if firewall.sample_budget.per_second() > Firewall::MAX_SAMPLE_BUDGET {
        findings.push(
            n,
            &[Key::Field("firewall"), Key::Field("sample_budget")],
            format!(
                "at most {} samples per second, not {}",
                Firewall::MAX_SAMPLE_BUDGET,
                firewall.sample_budget
            ),
        );
    }
    if firewall.tighten_divisor == 0 {
        findings.push(
            n,
            &[Key::Field("firewall"), Key::Field("tighten_divisor")],
            "the divisor must be at least 1 (1 leaves the limits as they are during a flood)",
        );
    }
}

fn check_transit(
    node: &NodeFile,
    inside_anycast: &dyn Fn(IpAddr) -> Option<Prefix>,
    findings: &mut Findings,
) {
    let n = FileRef::Node;
    let transit = &node.transit;
    if transit.sources.is_empty() {
        findings.push(
            n,
            key_path!["transit", "sources"],
            "at least one transit source address is needed",
        );
    }
    for (index, source) in transit.sources.iter().enumerate() {
        if let Some(prefix) = inside_anycast(*source) {
            findings.push(
                n,
                key_path!["transit", "sources", index],
                format!("transit source {source} is inside anycast prefix {prefix}; transit must stay apart from anycast"),
            );
        }
        if transit.sources[..index]
            .iter()
            .any(|earlier| earlier.is_ipv4() == source.is_ipv4())
        {
            findings.push(
                n,
                key_path!["transit", "sources", index],
                format!(
                    "a second {} transit source; give one per address family",
                    family(*source)
                ),
            );
        }
        if !transit
            .gateways
            .iter()
            .any(|gateway| gateway.is_ipv4() == source.is_ipv4())
        {
            findings.push(
                n,
                key_path!["transit", "gateways"],
                format!("no {} gateway for transit source {source}", family(*source)),
            );
        }
    }
    for (index, gateway) in transit.gateways.iter().enumerate() {
        if transit.gateways[..index]
            .iter()
            .any(|earlier| earlier.is_ipv4() == gateway.is_ipv4())
        {
            findings.push(
                n,
                key_path!["transit", "gateways", index],
                format!(
                    "a second {} gateway; give one per address family",
                    family(*gateway)
                ),
            );
        }
    }
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn check_hysteresis(
    file: FileRef,
    path: &[Key<'static>],
    threshold: Threshold,
    findings: &mut Findings,
) {
    if !threshold.has_hysteresis() {
        let mut path = path.to_vec();
        path.push(Key::Field("exit_pps"));
        findings.push(
            file,
            &path,
            format!(
                "the exit rate of {} pps must be at most 3/4 of the enter rate of {} pps, so that a flood near the threshold is not called over and over",
                threshold.exit_pps, threshold.enter_pps
            ),
        );
    }
}

fn check_telco(t: FileRef, telco: &TelcoFile, findings: &mut Findings) {
    if telco.neighbor_v4.is_none() && telco.neighbor_v6.is_none() {
        findings.push(
            t,
            key_path!["name"],
            format!(
                "telco {} has neither neighbor_v4 nor neighbor_v6",
                telco.name
            ),
        );
    }
    let mitigation = &telco.mitigation;
    if mitigation.rtbh && mitigation.rtbh_communities.is_empty() {
        findings.push(
            t,
            key_path!["mitigation", "rtbh_communities"],
            "RTBH is allowed but no RTBH community is given (RFC 7999's is 65535:666)",
        );
    }
    if mitigation.withdraw_above_pps.is_some() && !mitigation.withdraw {
        findings.push(
            t,
            key_path!["mitigation", "withdraw_above_pps"],
            format!(
                "a flood rate to withdraw at is given, but telco {} does not allow withdrawal (withdraw = false)",
                telco.name
            ),
        );
    }
    let ThresholdOverrides {
        syn,
        tcp_other,
        udp,
        icmp,
    } = telco.thresholds;
    for (class, threshold) in [
        ("syn", syn),
        ("tcp_other", tcp_other),
        ("udp", udp),
        ("icmp", icmp),
    ] {
        if let Some(threshold) = threshold {
            check_hysteresis(
                t,
                &[Key::Field("thresholds"), Key::Field(class)],
                threshold,
                findings,
            );
        }
    }
}

/// Names, AS numbers and neighbour addresses each belong to one telco; the
/// later file is the one reported.
fn check_unique_telcos(telcos: &[TelcoFile], findings: &mut Findings) {
    for (index, telco) in telcos.iter().enumerate() {
        let t = FileRef::Telco(index);
        let earlier = &telcos[..index];
        if let Some(other) = earlier.iter().find(|other| other.name == telco.name) {
            findings.push(
                t,
                key_path!["name"],
                format!(
                    "telco name {} is used by another telco file too",
                    other.name
                ),
            );
        }
        if let Some(other) = earlier.iter().find(|other| other.asn == telco.asn) {
            findings.push(
                t,
                key_path!["asn"],
                format!("{} is already the AS of telco {}", telco.asn, other.name),
            );
        }
        if let Some(other) = earlier
            .iter()
            .find(|other| telco.neighbor_v4.is_some() && other.neighbor_v4 == telco.neighbor_v4)
        {
            findings.push(
                t,
                key_path!["neighbor_v4"],
                format!(
                    "neighbour {} is already the neighbour of telco {}",
                    other
                        .neighbor_v4
                        .map(IpAddr::V4)
                        .map_or_else(String::new, |ip| ip.to_string()),
                    other.name
                ),
            );
        }
        if let Some(other) = earlier
            .iter()
            .find(|other| telco.neighbor_v6.is_some() && other.neighbor_v6 == telco.neighbor_v6)
        {
            findings.push(
                t,
                key_path!["neighbor_v6"],
                format!(
                    "neighbour {} is already the neighbour of telco {}",
                    other
                        .neighbor_v6
                        .map(IpAddr::V6)
                        .map_or_else(String::new, |ip| ip.to_string()),
                    other.name
                ),
            );
        }
    }
}

fn check_node_against_telcos(
    node: &NodeFile,
    telcos: &[TelcoFile],
    all_telcos_read: bool,
    findings: &mut Findings,
) {
    let n = FileRef::Node;
    if telcos.is_empty() && all_telcos_read {
        findings.push(
            n,
            key_path!["node", "telco_dir"],
            "no telco file (*.toml) in this directory",
        );
    }
    for (index, telco) in telcos.iter().enumerate() {
        let t = FileRef::Telco(index);
        if telco.asn == node.node.asn {
            findings.push(
                t,
                key_path!["asn"],
                format!(
                    "{} is our own AS; ixgate peers with telcos over eBGP only",
                    telco.asn
                ),
            );
        }
        if telco.neighbor_v4.is_some() && node.bgp.local_v4.is_none() {
            findings.push(
                t,
                key_path!["neighbor_v4"],
                "an IPv4 neighbour needs bgp.local_v4 in the node file",
            );
        }
        if telco.neighbor_v6.is_some() && node.bgp.local_v6.is_none() {
            findings.push(
                t,
                key_path!["neighbor_v6"],
                "an IPv6 neighbour needs bgp.local_v6 in the node file",
            );
        }
        if telco.neighbor_v4.is_some() && telco.neighbor_v4 == node.bgp.local_v4 {
            findings.push(
                t,
                key_path!["neighbor_v4"],
                "the neighbour is this node's own BGP address",
            );
        }
        if telco.neighbor_v6.is_some() && telco.neighbor_v6 == node.bgp.local_v6 {
            findings.push(
                t,
                key_path!["neighbor_v6"],
                "the neighbour is this node's own BGP address",
            );
        }
    }

    let Some(paired) = telcos
        .iter()
        .find(|telco| telco.name == node.node.paired_telco)
    else {
        if all_telcos_read {
            let known = telcos
                .iter()
                .map(|telco| telco.name.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            findings.push(
                n,
                key_path!["node", "paired_telco"],
                format!(
                    "paired telco {} is not defined; the telco files define: {known}",
                    node.node.paired_telco
                ),
            );
        }
        return;
    };
    // The paired telco must see the strictly shortest AS path, or anycast
    // would not bring its customers to this node first.
    let paired_count = paired.prepend.effective(true);
    for (index, telco) in telcos.iter().enumerate() {
        if telco.name == paired.name {
            continue;
        }
        let count = telco.prepend.effective(false);
        if count <= paired_count {
            let key = if telco.prepend.fixed.is_some() {
                "override"
            } else {
                "not_paired"
            };
            findings.push(
                FileRef::Telco(index),
                &[Key::Field("prepend"), Key::Field(key)],
                format!(
                    "telco {} would get {count} prepends, not more than the {paired_count} of paired telco {}; the paired telco must see the shortest path",
                    telco.name, paired.name
                ),
            );
        }
    }
}

/// The rules that read the files the configuration names.
pub fn check_files(node: Option<&NodeFile>, telcos: &[TelcoFile]) -> Vec<Finding> {
    let mut findings = Findings::default();
    if let Some(node) = node {
        let n = FileRef::Node;
        if let Err(error) = files::read_ticket_keys(&node.tls.ticket_key_file) {
            findings.push(n, key_path!["tls", "ticket_key_file"], error.to_string());
        }
        for (index, service) in node.services.iter().enumerate() {
            if let Err(error) = files::read_certificate_chain(&service.certificate) {
                findings.push(
                    n,
                    key_path!["services", index, "certificate"],
                    error.to_string(),
                );
            }
            if let Err(error) = files::read_private_key(&service.private_key) {
                findings.push(
                    n,
                    key_path!["services", index, "private_key"],
                    error.to_string(),
                );
            }
            match files::read_ca_bundle(&service.client_ca) {
                Ok(cas) => {
                    for (crl_index, crl) in service.crls.iter().enumerate() {
                        if let Err(error) = files::read_crl(crl, &cas, &service.client_ca) {
                            findings.push(
                                n,
                                key_path!["services", index, "crls", crl_index],
                                error.to_string(),
                            );
                        }
                    }
                }
                Err(error) => findings.push(
                    n,
                    key_path!["services", index, "client_ca"],
                    error.to_string(),
                ),
            }
            if let Err(error) = files::read_ca_bundle(&service.origin_ca) {
                findings.push(
                    n,
                    key_path!["services", index, "origin_ca"],
                    error.to_string(),
                );
            }
        }
    }
    for (index, telco) in telcos.iter().enumerate() {
        if let Some(password) = &telco.md5_password_file
            && let Err(error) = files::check_md5_password(password)
        {
            findings.push(
                FileRef::Telco(index),
                key_path!["md5_password_file"],
                error.to_string(),
            );
        }
    }
    findings.0
}
