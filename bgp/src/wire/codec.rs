//! Bytes to our messages and back, through `rustbgpd-wire`. Decoding never
//! panics: every problem becomes the NOTIFICATION RFC 4271 and RFC 7606
//! call for, or, for an attribute that RFC 7606 lets us survive, a
//! treat-as-withdraw of the routes it came with.

use std::net::{IpAddr, Ipv4Addr};

use bytes::{Bytes, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use ixgate_policy::types::{Community, LargeCommunity};
use rustbgpd_wire as codec;
use rustbgpd_wire::flowspec::{
    BitmaskMatch, FlowSpecAction, FlowSpecComponent, FlowSpecPrefix, FlowSpecRule,
    Ipv6PrefixOffset, NumericMatch,
};
use rustbgpd_wire::validate::ErrorDisposition;
use rustbgpd_wire::{Afi, Capability, ExtendedCommunity, PathAttribute, Safi};

use super::flow::{BitmaskTerm, FlowAction, FlowFamily, FlowMatch, NumericOp, NumericTerm};
use super::message::{Family, Message, Notification, Open, codes};
use super::update::{Attributes, Nlri, Origin, Update};

/// RFC 4271 §4.1: without the Extended Message capability (not offered),
/// no message is longer than 4096 bytes.
pub const MAX_MESSAGE_LEN: u16 = 4096;

/// GoBGP mishandles Flowspec NLRI of 240 bytes or more (the long length
/// form), so ixgate never sends one.
pub const MAX_FLOW_RULE_LEN: usize = 239;

/// Why a message could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("an UPDATE carries one address family; this one mixes several")]
    MixedFamilies,
    #[error("the flow rule {0} is invalid: {1}")]
    InvalidFlowRule(String, String),
    #[error("the flow rule {0} is {1} bytes; rules are kept under 240 bytes")]
    FlowRuleTooLong(String, usize),
    #[error("announced routes need path attributes")]
    NoAttributes,
    #[error("a unicast announcement needs a next hop of its family")]
    NoNextHop,
    #[error("{0}")]
    Codec(String),
}

/// What the session negotiated that changes the encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    /// RFC 6793: AS numbers are 4 octets on the wire.
    pub four_octet_as: bool,
}

impl Context {
    /// Before the OPENs are exchanged (and ixgate always offers 4-octet AS).
    pub const INITIAL: Self = Self {
        four_octet_as: true,
    };
}

// ===== decode =====

/// Takes one whole message off the front of `buffer`. `Ok(None)`: more bytes
/// are needed. `Err`: the NOTIFICATION to send before closing.
pub fn decode(buffer: &mut BytesMut, context: Context) -> Result<Option<Message>, Notification> {
    loop {
        let length = match codec::peek_message_length(buffer, MAX_MESSAGE_LEN) {
            Ok(Some(length)) => usize::from(length),
            Ok(None) => return Ok(None),
            Err(error) => return Err(notification(&error)),
        };
        if buffer.len() < length {
            return Ok(None);
        }
        let mut frame: Bytes = buffer.split_to(length).freeze();
        let message = codec::decode_message(&mut frame, MAX_MESSAGE_LEN)
            .map_err(|error| notification(&error))?;
        let decoded = match message {
            codec::Message::Open(open) => Some(Message::Open(decode_open(&open))),
            codec::Message::Update(update) => {
                Some(Message::Update(decode_update(&update, context)?))
            }
            codec::Message::Notification(n) => Some(Message::Notification(Notification {
                code: n.code.as_u8(),
                subcode: n.subcode,
                data: n.data.to_vec(),
            })),
            codec::Message::Keepalive => Some(Message::Keepalive),
            // RFC 7313 §5: a ROUTE-REFRESH for a family we do not carry is
            // ignored.
            codec::Message::RouteRefresh(refresh) => {
                family_of(refresh.afi_raw, refresh.safi_raw).map(Message::RouteRefresh)
            }
            _ => None,
        };
        if decoded.is_some() {
            return Ok(decoded);
        }
    }
}

fn notification(error: &codec::DecodeError) -> Notification {
    let (code, subcode, data) = error.to_notification();
    Notification {
        code: code.as_u8(),
        subcode,
        data: data.to_vec(),
    }
}

fn family_of(afi: u16, safi: u8) -> Option<Family> {
    Family::from_afi_safi(afi, safi)
}

fn decode_open(open: &codec::OpenMessage) -> Open {
    let mut families = Vec::new();
    let mut four_octet_as = false;
    let mut route_refresh = false;
    for capability in &open.capabilities {
        match capability {
            Capability::MultiProtocol { afi, safi } => {
                if let Some(family) = family_of(*afi as u16, *safi as u8) {
                    families.push(family);
                }
            }
            Capability::FourOctetAs { .. } => four_octet_as = true,
            Capability::RouteRefresh => route_refresh = true,
            _ => {}
        }
    }
    // RFC 4760 §8: a speaker without Multiprotocol capabilities carries
    // IPv4 unicast only.
    if families.is_empty() {
        families.push(Family::Ipv4Unicast);
    }
    Open {
        asn: open.four_byte_as(),
        hold_time: open.hold_time,
        router_id: open.bgp_identifier,
        families,
        four_octet_as,
        route_refresh,
    }
}

fn decode_update(update: &codec::UpdateMessage, context: Context) -> Result<Update, Notification> {
    let parsed = update
        .parse_revised(context.four_octet_as, false, false, &[])
        .map_err(|error| notification(&error))?;
    let mut withdrawn: Vec<Nlri> = parsed
        .update
        .withdrawn
        .iter()
        .map(|entry| Nlri::Unicast(v4(entry.prefix)))
        .collect();
    let mut announced: Vec<Nlri> = parsed
        .update
        .announced
        .iter()
        .map(|entry| Nlri::Unicast(v4(entry.prefix)))
        .collect();
    let attributes = read_attributes(&parsed.update.attributes, &mut announced, &mut withdrawn);

    let has_body_nlri = !parsed.update.announced.is_empty();
    let mut disposition = parsed.malformed.iter().map(|m| m.disposition).max();
    if !announced.is_empty() {
        // RFC 7606 §3: missing mandatory attributes and bad next hops.
        if let Err(error) = codec::validate::validate_update_attributes(
            &parsed.update.attributes,
            true,
            has_body_nlri,
            true,
        ) {
            if error.disposition == ErrorDisposition::SessionReset {
                return Err(
                    Notification::new(codes::UPDATE_MESSAGE, error.subcode).with_data(error.data)
                );
            }
            disposition = disposition.max(Some(error.disposition));
        }
    }
    if disposition == Some(ErrorDisposition::TreatAsWithdraw) {
        // RFC 7606 §2: the routes are withdrawn, the session lives on.
        withdrawn.append(&mut announced);
    }
    Ok(Update {
        withdrawn,
        attributes: (!announced.is_empty()).then_some(attributes),
        announced,
    })
}

/// Our attributes from the codec's, adding the routes that MP_REACH and
/// MP_UNREACH carry to `announced` and `withdrawn`.
fn read_attributes(
    list: &[PathAttribute],
    announced: &mut Vec<Nlri>,
    withdrawn: &mut Vec<Nlri>,
) -> Attributes {
    let mut attributes = Attributes {
        origin: Origin::Incomplete,
        as_path: Vec::new(),
        next_hop: None,
        communities: Vec::new(),
        large_communities: Vec::new(),
        flow_actions: Vec::new(),
    };
    for attribute in list {
        match attribute {
            PathAttribute::Origin(origin) => {
                attributes.origin = match origin {
                    codec::Origin::Igp => Origin::Igp,
                    codec::Origin::Egp => Origin::Egp,
                    codec::Origin::Incomplete => Origin::Incomplete,
                };
            }
            PathAttribute::AsPath(path) => {
                attributes.as_path = path
                    .segments
                    .iter()
                    .flat_map(|segment| match segment {
                        codec::AsPathSegment::AsSequence(asns)
                        | codec::AsPathSegment::AsSet(asns) => asns.iter().copied(),
                    })
                    .collect();
            }
            PathAttribute::NextHop(next_hop) => attributes.next_hop = Some(IpAddr::V4(*next_hop)),
            PathAttribute::Communities(values) => {
                attributes.communities = values.iter().map(|&value| community(value)).collect();
            }
            PathAttribute::LargeCommunities(values) => {
                attributes.large_communities = values
                    .iter()
                    .map(|c| LargeCommunity {
                        global: c.global_admin,
                        local1: c.local_data1,
                        local2: c.local_data2,
                    })
                    .collect();
            }
            PathAttribute::ExtendedCommunities(values) => {
                attributes.flow_actions = values
                    .iter()
                    .filter_map(ExtendedCommunity::as_flowspec_action)
                    .filter_map(|action| flow_action(&action))
                    .collect();
            }
            PathAttribute::MpReachNlri(reach) => {
                if reach.safi == Safi::Unicast {
                    attributes.next_hop = Some(reach.next_hop);
                }
                announced.extend(
                    reach
                        .announced
                        .iter()
                        .map(|entry| Nlri::Unicast(net(entry.prefix))),
                );
                announced.extend(
                    reach
                        .flowspec_announced
                        .iter()
                        .filter_map(|rule| flow_match(rule, reach.afi))
                        .map(|m| Nlri::Flow(Box::new(m))),
                );
            }
            PathAttribute::MpUnreachNlri(unreach) => {
                withdrawn.extend(
                    unreach
                        .withdrawn
                        .iter()
                        .map(|entry| Nlri::Unicast(net(entry.prefix))),
                );
                withdrawn.extend(
                    unreach
                        .flowspec_withdrawn
                        .iter()
                        .filter_map(|rule| flow_match(rule, unreach.afi))
                        .map(|m| Nlri::Flow(Box::new(m))),
                );
            }
            _ => {}
        }
    }

    attributes
}

fn community(value: u32) -> Community {
    Community {
        asn: u16::try_from(value >> 16).unwrap_or(u16::MAX),
        value: u16::try_from(value & 0xffff).unwrap_or(u16::MAX),
    }
}

fn v4(prefix: codec::Ipv4Prefix) -> IpNet {
    Ipv4Net::new(prefix.addr, prefix.len).map_or_else(|_| IpNet::V4(Ipv4Net::default()), IpNet::V4)
}

fn net(prefix: codec::Prefix) -> IpNet {
    match prefix {
        codec::Prefix::V4(prefix) => v4(prefix),
        codec::Prefix::V6(prefix) => Ipv6Net::new(prefix.addr, prefix.len)
            .map_or_else(|_| IpNet::V6(Ipv6Net::default()), IpNet::V6),
    }
}

fn flow_action(action: &FlowSpecAction) -> Option<FlowAction> {
    match *action {
        FlowSpecAction::TrafficRateBytes { rate, .. } => Some(FlowAction::RateBytes(rate)),
        FlowSpecAction::TrafficRatePackets { rate, .. } => Some(FlowAction::RatePackets(rate)),
        FlowSpecAction::TrafficAction { sample, terminal } => {
            Some(FlowAction::Action { sample, terminal })
        }
        FlowSpecAction::TrafficMarking { dscp } => Some(FlowAction::Marking(dscp)),
        FlowSpecAction::Redirect2Octet { asn, value } => {
            Some(FlowAction::Redirect2Octet { asn, value })
        }
        FlowSpecAction::Redirect4Octet { asn, value } => {
            Some(FlowAction::Redirect4Octet { asn, value })
        }
        FlowSpecAction::RedirectIpv4 { addr, value } => Some(FlowAction::RedirectIpv4 {
            address: addr,
            value,
        }),
        _ => None,
    }
}

fn numeric_terms(matches: &[NumericMatch]) -> Option<Vec<NumericTerm>> {
    matches
        .iter()
        .map(|m| {
            Some(NumericTerm {
                and: m.and_bit,
                op: NumericOp::from_bits(m.lt, m.gt, m.eq),
                value: u32::try_from(m.value).ok()?,
            })
        })
        .collect()
}

fn bitmask_terms(matches: &[BitmaskMatch]) -> Vec<BitmaskTerm> {
    matches
        .iter()
        .map(|m| BitmaskTerm {
            and: m.and_bit,
            not: m.not_bit,
            match_all: m.match_bit,
            bits: m.value,
        })
        .collect()
}

/// A received rule in our terms; `None` for what ixgate does not model
/// (IPv6 prefix offsets, flow labels, values beyond 32 bits).
fn flow_match(rule: &FlowSpecRule, afi: Afi) -> Option<FlowMatch> {
    let family = match afi {
        Afi::Ipv4 => FlowFamily::Ipv4,
        Afi::Ipv6 => FlowFamily::Ipv6,
        _ => return None,
    };
    let prefix = |prefix: &FlowSpecPrefix| match prefix {
        FlowSpecPrefix::V4(prefix) => Some(v4(*prefix)),
        FlowSpecPrefix::V6(offset) if offset.offset == 0 => {
            Some(net(codec::Prefix::V6(offset.prefix)))
        }
        FlowSpecPrefix::V6(_) => None,
    };
    let mut matches = FlowMatch::new(family);
    for component in &rule.components {
        match component {
            FlowSpecComponent::DestinationPrefix(p) => matches.destination = Some(prefix(p)?),
            FlowSpecComponent::SourcePrefix(p) => matches.source = Some(prefix(p)?),
            FlowSpecComponent::IpProtocol(m) => matches.protocols = numeric_terms(m)?,
            FlowSpecComponent::Port(m) => matches.ports = numeric_terms(m)?,
            FlowSpecComponent::DestinationPort(m) => matches.destination_ports = numeric_terms(m)?,
            FlowSpecComponent::SourcePort(m) => matches.source_ports = numeric_terms(m)?,
            FlowSpecComponent::IcmpType(m) => matches.icmp_types = numeric_terms(m)?,
            FlowSpecComponent::IcmpCode(m) => matches.icmp_codes = numeric_terms(m)?,
            FlowSpecComponent::TcpFlags(m) => matches.tcp_flags = bitmask_terms(m),
            FlowSpecComponent::PacketLength(m) => matches.packet_lengths = numeric_terms(m)?,
            FlowSpecComponent::Dscp(m) => matches.dscp = numeric_terms(m)?,
            FlowSpecComponent::Fragment(m) => matches.fragments = bitmask_terms(m),
            _ => return None,
        }
    }
    Some(matches)
}

// ===== encode =====

/// The bytes of `message`, header included.
pub fn encode(message: &Message, context: Context) -> Result<BytesMut, EncodeError> {
    let message = match message {
        Message::Open(open) => codec::Message::Open(encode_open(open)),
        Message::Update(update) => codec::Message::Update(encode_update(update, context)?),
        Message::Notification(n) => codec::Message::Notification(codec::NotificationMessage::new(
            codec::NotificationCode::from_u8(n.code),
            n.subcode,
            Bytes::from(n.data.clone()),
        )),
        Message::Keepalive => codec::Message::Keepalive,
        Message::RouteRefresh(family) => {
            let (afi, safi) = codec_family(*family);
            codec::Message::RouteRefresh(codec::RouteRefreshMessage::new(afi, safi))
        }
    };
    codec::encode_message(&message).map_err(|error| EncodeError::Codec(error.to_string()))
}

fn codec_family(family: Family) -> (Afi, Safi) {
    match family {
        Family::Ipv4Unicast => (Afi::Ipv4, Safi::Unicast),
        Family::Ipv6Unicast => (Afi::Ipv6, Safi::Unicast),
        Family::Ipv4Flowspec => (Afi::Ipv4, Safi::FlowSpec),
        Family::Ipv6Flowspec => (Afi::Ipv6, Safi::FlowSpec),
    }
}

fn encode_open(open: &Open) -> codec::OpenMessage {
    let mut capabilities: Vec<Capability> = open
        .families
        .iter()
        .map(|&family| {
            let (afi, safi) = codec_family(family);
            Capability::MultiProtocol { afi, safi }
        })
        .collect();
    if open.route_refresh {
        capabilities.push(Capability::RouteRefresh);
    }
    if open.four_octet_as {
        capabilities.push(Capability::FourOctetAs { asn: open.asn });
    }
    codec::OpenMessage {
        version: 4,
        // RFC 6793 §4.1: AS_TRANS stands in for a 4-octet AS number.
        my_as: u16::try_from(open.asn).unwrap_or(codec::constants::AS_TRANS),
        hold_time: open.hold_time,
        bgp_identifier: open.router_id,
        capabilities,
    }
}

/// The family of a route.
pub fn nlri_family(nlri: &Nlri) -> Family {
    match nlri {
        Nlri::Unicast(IpNet::V4(_)) => Family::Ipv4Unicast,
        Nlri::Unicast(IpNet::V6(_)) => Family::Ipv6Unicast,
        Nlri::Flow(m) if m.family == FlowFamily::Ipv4 => Family::Ipv4Flowspec,
        Nlri::Flow(_) => Family::Ipv6Flowspec,
    }
}

fn one_family(nlri: &[Nlri]) -> Result<Option<Family>, EncodeError> {
    let mut families = nlri.iter().map(nlri_family);
    let Some(first) = families.next() else {
        return Ok(None);
    };
    if families.all(|family| family == first) {
        Ok(Some(first))
    } else {
        Err(EncodeError::MixedFamilies)
    }
}

fn codec_v4(net: Ipv4Net) -> codec::Ipv4NlriEntry {
    codec::Ipv4NlriEntry {
        path_id: 0,
        prefix: codec::Ipv4Prefix::new(net.network(), net.prefix_len()),
    }
}

fn codec_entry(net: IpNet) -> codec::NlriEntry {
    codec::NlriEntry {
        path_id: 0,
        prefix: match net {
            IpNet::V4(net) => {
                codec::Prefix::V4(codec::Ipv4Prefix::new(net.network(), net.prefix_len()))
            }
            IpNet::V6(net) => {
                codec::Prefix::V6(codec::Ipv6Prefix::new(net.network(), net.prefix_len()))
            }
        },
    }
}

fn mp_reach(family: Family, next_hop: IpAddr) -> codec::MpReachNlri {
    let (afi, safi) = codec_family(family);
    codec::MpReachNlri {
        afi,
        safi,
        next_hop,
        link_local_next_hop: None,
        announced: Vec::new(),
        flowspec_announced: Vec::new(),
        evpn_announced: Vec::new(),
        bgpls_announced: Vec::new(),
        vpn_announced: Vec::new(),
        labeled_announced: Vec::new(),
        rtc_announced: Vec::new(),
    }
}

fn mp_unreach(family: Family) -> codec::MpUnreachNlri {
    let (afi, safi) = codec_family(family);
    codec::MpUnreachNlri {
        afi,
        safi,
        withdrawn: Vec::new(),
        flowspec_withdrawn: Vec::new(),
        evpn_withdrawn: Vec::new(),
        bgpls_withdrawn: Vec::new(),
        vpn_withdrawn: Vec::new(),
        labeled_withdrawn: Vec::new(),
        rtc_withdrawn: Vec::new(),
    }
}

fn encode_update(update: &Update, context: Context) -> Result<codec::UpdateMessage, EncodeError> {
    let mut attributes = Vec::new();
    let body_withdrawn = withdrawals(&update.withdrawn, &mut attributes)?;
    let body_announced = announcements(update, &mut attributes)?;
    codec::UpdateMessage::try_build(
        &body_announced,
        &body_withdrawn,
        &attributes,
        context.four_octet_as,
        false,
        codec::Ipv4UnicastMode::Body,
    )
    .map_err(|error| EncodeError::Codec(error.to_string()))
}

/// IPv4 unicast withdrawals go in the UPDATE's body; the others in an
/// MP_UNREACH_NLRI (RFC 4760), pushed onto `attributes`.
fn withdrawals(
    withdrawn: &[Nlri],
    attributes: &mut Vec<PathAttribute>,
) -> Result<Vec<codec::Ipv4NlriEntry>, EncodeError> {
    let mut body = Vec::new();
    match one_family(withdrawn)? {
        None => {}
        Some(Family::Ipv4Unicast) => {
            for nlri in withdrawn {
                if let Nlri::Unicast(IpNet::V4(net)) = nlri {
                    body.push(codec_v4(*net));
                }
            }
        }
        Some(family) => {
            let mut unreach = mp_unreach(family);
            for nlri in withdrawn {
                match nlri {
                    Nlri::Unicast(net) => unreach.withdrawn.push(codec_entry(*net)),
                    Nlri::Flow(m) => unreach.flowspec_withdrawn.push(codec_rule(m)?),
                }
            }
            attributes.push(PathAttribute::MpUnreachNlri(Box::new(unreach)));
        }
    }
    Ok(body)
}

/// The path attributes and routes of the announcement; IPv4 unicast
/// routes go in the body, the others in an MP_REACH_NLRI.
fn announcements(
    update: &Update,
    attributes: &mut Vec<PathAttribute>,
) -> Result<Vec<codec::Ipv4NlriEntry>, EncodeError> {
    let mut body = Vec::new();
    let Some(family) = one_family(&update.announced)? else {
        return Ok(body);
    };
    let path = update
        .attributes
        .as_ref()
        .ok_or(EncodeError::NoAttributes)?;
    attributes.push(PathAttribute::Origin(match path.origin {
        Origin::Igp => codec::Origin::Igp,
        Origin::Egp => codec::Origin::Egp,
        Origin::Incomplete => codec::Origin::Incomplete,
    }));
    attributes.push(PathAttribute::AsPath(codec::AsPath {
        segments: if path.as_path.is_empty() {
            Vec::new()
        } else {
            vec![codec::AsPathSegment::AsSequence(path.as_path.clone())]
        },
    }));
    match (family, path.next_hop) {
        (Family::Ipv4Unicast, Some(IpAddr::V4(next_hop))) => {
            attributes.push(PathAttribute::NextHop(next_hop));
            for nlri in &update.announced {
                if let Nlri::Unicast(IpNet::V4(net)) = nlri {
                    body.push(codec_v4(*net));
                }
            }
        }
        (Family::Ipv6Unicast, Some(next_hop @ IpAddr::V6(_))) => {
            let mut reach = mp_reach(family, next_hop);
            reach.announced = update
                .announced
                .iter()
                .filter_map(|nlri| {
                    if let Nlri::Unicast(net) = nlri {
                        Some(codec_entry(*net))
                    } else {
                        None
                    }
                })
                .collect();
            attributes.push(PathAttribute::MpReachNlri(Box::new(reach)));
        }
        (Family::Ipv4Flowspec | Family::Ipv6Flowspec, _) => {
            // RFC 8955 §4: Flowspec routes carry no next hop.
            let mut reach = mp_reach(family, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            for nlri in &update.announced {
                if let Nlri::Flow(m) = nlri {
                    reach.flowspec_announced.push(codec_rule(m)?);
                }
            }
            attributes.push(PathAttribute::MpReachNlri(Box::new(reach)));
        }
        _ => return Err(EncodeError::NoNextHop),
    }
    if !path.communities.is_empty() {
        attributes.push(PathAttribute::Communities(
            path.communities
                .iter()
                .map(|c| (u32::from(c.asn) << 16) | u32::from(c.value))
                .collect(),
        ));
    }
    if !path.flow_actions.is_empty() {
        attributes.push(PathAttribute::ExtendedCommunities(
            path.flow_actions
                .iter()
                .map(|action| ExtendedCommunity::from_flowspec_action(&codec_action(*action)))
                .collect(),
        ));
    }
    if !path.large_communities.is_empty() {
        attributes.push(PathAttribute::LargeCommunities(
            path.large_communities
                .iter()
                .map(|c| codec::LargeCommunity::new(c.global, c.local1, c.local2))
                .collect(),
        ));
    }
    Ok(body)
}

fn codec_action(action: FlowAction) -> FlowSpecAction {
    match action {
        FlowAction::RateBytes(rate) => FlowSpecAction::TrafficRateBytes { asn: 0, rate },
        FlowAction::RatePackets(rate) => FlowSpecAction::TrafficRatePackets { asn: 0, rate },
        FlowAction::Action { sample, terminal } => {
            FlowSpecAction::TrafficAction { sample, terminal }
        }
        FlowAction::Marking(dscp) => FlowSpecAction::TrafficMarking { dscp },
        FlowAction::Redirect2Octet { asn, value } => FlowSpecAction::Redirect2Octet { asn, value },
        FlowAction::Redirect4Octet { asn, value } => FlowSpecAction::Redirect4Octet { asn, value },
        FlowAction::RedirectIpv4 { address, value } => FlowSpecAction::RedirectIpv4 {
            addr: address,
            value,
        },
    }
}

fn codec_numeric(terms: &[NumericTerm]) -> Vec<NumericMatch> {
    terms
        .iter()
        .enumerate()
        .map(|(index, term)| {
            let (lt, gt, eq) = term.op.bits();
            NumericMatch {
                end_of_list: index + 1 == terms.len(),
                and_bit: term.and,
                lt,
                gt,
                eq,
                value: u64::from(term.value),
            }
        })
        .collect()
}

fn codec_bitmask(terms: &[BitmaskTerm]) -> Vec<BitmaskMatch> {
    terms
        .iter()
        .enumerate()
        .map(|(index, term)| BitmaskMatch {
            end_of_list: index + 1 == terms.len(),
            and_bit: term.and,
            not_bit: term.not,
            match_bit: term.match_all,
            value: term.bits,
        })
        .collect()
}

/// Our match as the codec's rule, in ascending component order, checked
/// against its family and our length limit.
pub fn codec_rule(matches: &FlowMatch) -> Result<FlowSpecRule, EncodeError> {
    let text = format!("{matches:?}");
    let invalid = |why: &str| EncodeError::InvalidFlowRule(text.clone(), why.to_owned());
    let prefix = |net: IpNet| -> Result<FlowSpecPrefix, EncodeError> {
        match (net, matches.family) {
            (IpNet::V4(net), FlowFamily::Ipv4) => Ok(FlowSpecPrefix::V4(codec::Ipv4Prefix::new(
                net.network(),
                net.prefix_len(),
            ))),
            (IpNet::V6(net), FlowFamily::Ipv6) => Ok(FlowSpecPrefix::V6(Ipv6PrefixOffset {
                prefix: codec::Ipv6Prefix::new(net.network(), net.prefix_len()),
                offset: 0,
            })),
            _ => Err(invalid("a prefix of the other address family")),
        }
    };
    let mut components = Vec::new();
    if let Some(net) = matches.destination {
        components.push(FlowSpecComponent::DestinationPrefix(prefix(net)?));
    }
    if let Some(net) = matches.source {
        components.push(FlowSpecComponent::SourcePrefix(prefix(net)?));
    }
    let numeric = [
        (
            &matches.protocols,
            FlowSpecComponent::IpProtocol as fn(Vec<NumericMatch>) -> FlowSpecComponent,
        ),
        (&matches.ports, FlowSpecComponent::Port),
        (
            &matches.destination_ports,
            FlowSpecComponent::DestinationPort,
        ),
        (&matches.source_ports, FlowSpecComponent::SourcePort),
        (&matches.icmp_types, FlowSpecComponent::IcmpType),
        (&matches.icmp_codes, FlowSpecComponent::IcmpCode),
    ];
    for (terms, component) in numeric {
        if !terms.is_empty() {
            components.push(component(codec_numeric(terms)));
        }
    }
    if !matches.tcp_flags.is_empty() {
        components.push(FlowSpecComponent::TcpFlags(codec_bitmask(
            &matches.tcp_flags,
        )));
    }
    if !matches.packet_lengths.is_empty() {
        components.push(FlowSpecComponent::PacketLength(codec_numeric(
            &matches.packet_lengths,
        )));
    }
    if !matches.dscp.is_empty() {
        components.push(FlowSpecComponent::Dscp(codec_numeric(&matches.dscp)));
    }
    if !matches.fragments.is_empty() {
        components.push(FlowSpecComponent::Fragment(codec_bitmask(
            &matches.fragments,
        )));
    }
    let rule = FlowSpecRule { components };
    rule.validate()
        .map_err(|error| invalid(&error.to_string()))?;
    let afi = match matches.family {
        FlowFamily::Ipv4 => Afi::Ipv4,
        FlowFamily::Ipv6 => Afi::Ipv6,
    };
    let length = rule.encoded_len(afi);
    if length > MAX_FLOW_RULE_LEN {
        return Err(EncodeError::FlowRuleTooLong(text, length));
    }
    Ok(rule)
}

/// The NLRI bytes of one rule (length prefix included), for golden tests.
pub fn flow_nlri_bytes(matches: &FlowMatch) -> Result<Vec<u8>, EncodeError> {
    let rule = codec_rule(matches)?;
    let afi = match matches.family {
        FlowFamily::Ipv4 => Afi::Ipv4,
        FlowFamily::Ipv6 => Afi::Ipv6,
    };
    let mut bytes = Vec::new();
    codec::flowspec::try_encode_flowspec_nlri(&[rule], &mut bytes, afi)
        .map_err(|error| EncodeError::Codec(error.to_string()))?;
    Ok(bytes)
}

/// Decodes NLRI bytes of `family` back into our matches, for golden tests
/// and fuzzing.
pub fn flow_nlri_decode(bytes: &[u8], family: FlowFamily) -> Option<Vec<FlowMatch>> {
    let afi = match family {
        FlowFamily::Ipv4 => Afi::Ipv4,
        FlowFamily::Ipv6 => Afi::Ipv6,
    };
    let rules = codec::flowspec::decode_flowspec_nlri(bytes, afi).ok()?;
    rules.iter().map(|rule| flow_match(rule, afi)).collect()
}
