//! The executor: what the kernel holds of ours (rtnetlink dumps, routes
//! with strict checking so the filter holds), and each [`Op`] carried out.
//! Everything we add carries protocol [`PROTOCOL`]; deletions name it too,
//! so the kernel itself refuses to delete anything that is not ours.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt as _;
use ipnet::IpNet;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressProtocol,
};
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::{Handle, IpVersion, LinkBridge, LinkDummy, LinkUnspec, RouteMessageBuilder};

use crate::reconcile::{Op, reconcile};
use crate::state::{
    AddressSpec, LinkKind, LinkSpec, PROTOCOL, RouteSpec, RouteTarget, RoutingState, RuleSpec,
};

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("cannot open a netlink socket: {0}")]
    Socket(std::io::Error),
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        source: rtnetlink::Error,
    },
    #[error("no interface {0}")]
    NoInterface(String),
    #[error("{0} cannot be a route")]
    Route(String),
}

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EADDRNOTAVAIL: i32 = 99;

/// The errno of a netlink error, if it is one.
fn errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.code.map(|code| -code.get()),
        _ => None,
    }
}

/// What one reconciliation did.
#[derive(Debug, Default)]
pub struct Applied {
    /// What the kernel held of ours before.
    pub found: RoutingState,
    /// Operations carried out.
    pub done: Vec<Op>,
    /// Operations the kernel refused, with why; the others went ahead.
    pub failed: Vec<(Op, String)>,
}

/// Our side of rtnetlink in the current network namespace.
#[derive(Debug)]
pub struct Kernel {
    handle: Handle,
}

impl Kernel {
    /// Opens the connection; its task runs on the current tokio runtime.
    pub fn connect() -> Result<Self, KernelError> {
        let (connection, handle, _) =
            rtnetlink::new_connection_with_strict_check().map_err(KernelError::Socket)?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    /// The link-layer (Ethernet) address of each neighbour the kernel
    /// has resolved, by its IP address: on the peering LAN, which router
    /// is which telco's.
    pub async fn neighbours(&self) -> Result<BTreeMap<IpAddr, [u8; 6]>, KernelError> {
        use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
        let failed = |source| KernelError::Netlink {
            what: "dump the neighbours".into(),
            source,
        };
        let mut dump = self.handle.neighbours().get().execute();
        let mut found = BTreeMap::new();
        while let Some(message) = dump.try_next().await.map_err(failed)? {
            let mut ip = None;
            let mut link = None;
            for attribute in message.attributes {
                match attribute {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                        ip = Some(IpAddr::V4(v4));
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                        ip = Some(IpAddr::V6(v6));
                    }
                    NeighbourAttribute::LinkLayerAddress(bytes) => {
                        link = <[u8; 6]>::try_from(bytes.as_slice()).ok();
                    }
                    _ => {}
                }
            }
            if let (Some(ip), Some(link)) = (ip, link) {
                found.insert(ip, link);
            }
        }
        Ok(found)
    }

    /// Brings the kernel to `desired`: dumps ours, reconciles, applies.
    /// A second call with nothing changed writes nothing.
    pub async fn reconcile(&self, desired: &RoutingState) -> Result<Applied, KernelError> {
        let found = self.ours(&desired.links).await?;
        let ops = reconcile(desired, &found);
        let mut applied = Applied {
            found,
            ..Applied::default()
        };
        // Interface indexes once, again after a link is made.
        let mut indexes = self.indexes().await?;
        for op in ops {
            let made_link = matches!(op, Op::AddLink(_));
            match self.apply(&op, &indexes).await {
                Ok(()) => applied.done.push(op),
                Err(error) => applied.failed.push((op, error.to_string())),
            }
            if made_link {
                indexes = self.indexes().await?;
            }
        }
        Ok(applied)
    }

    /// What the kernel holds of ours: the links of `links` that exist, and
    /// every address, route and rule tagged with [`PROTOCOL`].
    pub async fn ours(&self, links: &BTreeSet<LinkSpec>) -> Result<RoutingState, KernelError> {
        let names = self.interfaces().await?;
        let name_of = |index: u32| {
            names
                .get(&index)
                .cloned()
                .unwrap_or_else(|| index.to_string())
        };
        let mut state = RoutingState {
            links: links
                .iter()
                .filter(|link| names.values().any(|name| *name == link.name))
                .cloned()
                .collect(),
            ..RoutingState::default()
        };

        let addresses: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(netlink("dump addresses"))?;
        for message in addresses {
            let ours =
                message
                    .attributes
                    .contains(&AddressAttribute::Protocol(AddressProtocol::Other(
                        PROTOCOL,
                    )));
            let address = message.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let (true, Some(address)) = (ours, address)
                && let Ok(address) = IpNet::new(address, message.header.prefix_len)
            {
                state.addresses.insert(AddressSpec {
                    interface: name_of(message.header.index),
                    address,
                });
            }
        }

        for family in [IpVersion::V4, IpVersion::V6] {
            let filter = ours_filter(&family);
            let routes: Vec<RouteMessage> = self
                .handle
                .route()
                .get(filter)
                .execute()
                .try_collect()
                .await
                .map_err(netlink("dump routes"))?;
            state.routes.extend(
                routes
                    .iter()
                    .filter_map(|route| route_spec(route, &name_of)),
            );
            let rules: Vec<RuleMessage> = self
                .handle
                .rule()
                .get(family)
                .execute()
                .try_collect()
                .await
                .map_err(netlink("dump rules"))?;
            state.rules.extend(rules.iter().filter_map(rule_spec));
        }
        Ok(state)
    }

    /// Interface names by index.
    async fn interfaces(&self) -> Result<BTreeMap<u32, String>, KernelError> {
        let links: Vec<_> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(netlink("dump links"))?;
        Ok(links
            .into_iter()
            .filter_map(|link| {
                link.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(name) => Some((link.header.index, name.clone())),
                    _ => None,
                })
            })
            .collect())
    }

    /// Interface indexes by name.
    async fn indexes(&self) -> Result<BTreeMap<String, u32>, KernelError> {
        Ok(self
            .interfaces()
            .await?
            .into_iter()
            .map(|(index, name)| (name, index))
            .collect())
    }

    /// Carries out one operation. Adding what is there or deleting what
    /// is gone is not an error: the kernel ends as asked.
    async fn apply(&self, op: &Op, indexes: &BTreeMap<String, u32>) -> Result<(), KernelError> {
        let what = format!("{op:?}");
        let result = match op {
            Op::AddLink(link) => {
                let message = match link.kind {
                    LinkKind::Dummy => LinkDummy::new(&link.name).up().build(),
                    LinkKind::Bridge => LinkBridge::new(&link.name).up().build(),
                };
                let added = self.handle.link().add(message).execute().await;
                match tolerate(added, EEXIST) {
                    Ok(()) => {
                        let up = LinkUnspec::new_with_name(&link.name).up().build();
                        self.handle.link().set(up).execute().await
                    }
                    Err(error) => Err(error),
                }
            }
            Op::AddAddress(address) => {
                let index = index_of(indexes, &address.interface)?;
                let mut request = self
                    .handle
                    .address()
                    .add(index, address.address.addr(), address.address.prefix_len())
                    .replace();
                let message = request.message_mut();
                message
                    .attributes
                    .push(AddressAttribute::Protocol(AddressProtocol::Other(PROTOCOL)));
                // No duplicate detection: the holder may have no carrier,
                // and an IPv6 address would stay tentative, unusable.
                message.header.flags |= AddressHeaderFlags::Nodad;
                request.execute().await
            }
            Op::DeleteAddress(address) => {
                let index = index_of(indexes, &address.interface)?;
                let mut message = AddressMessage::default();
                message.header.family = family_of(address.address.addr());
                message.header.prefix_len = address.address.prefix_len();
                message.header.index = index;
                message
                    .attributes
                    .push(AddressAttribute::Address(address.address.addr()));
                if address.address.addr().is_ipv4() {
                    message
                        .attributes
                        .push(AddressAttribute::Local(address.address.addr()));
                }
                tolerate(
                    self.handle.address().del(message).execute().await,
                    EADDRNOTAVAIL,
                )
            }
            Op::UpsertRoute(route) => {
                let message = route_message(route, indexes)?;
                self.handle.route().add(message).replace().execute().await
            }
            Op::DeleteRoute(route) => {
                let message = route_key(route)?;
                tolerate(self.handle.route().del(message).execute().await, ESRCH)
            }
            Op::AddRule(rule) => {
                // The kernel ignores NLM_F_REPLACE for rules: a plain add,
                // EEXIST when it is there.
                let mut request = self
                    .handle
                    .rule()
                    .add()
                    .table_id(rule.table)
                    .priority(rule.priority)
                    .action(RuleAction::ToTable);
                request
                    .message_mut()
                    .attributes
                    .push(RuleAttribute::Protocol(RouteProtocol::Other(PROTOCOL)));
                let added = match rule.from {
                    IpNet::V4(from) => {
                        let request = request.v4().source_prefix(from.addr(), from.prefix_len());
                        request.execute().await
                    }
                    IpNet::V6(from) => {
                        let request = request.v6().source_prefix(from.addr(), from.prefix_len());
                        request.execute().await
                    }
                };
                tolerate(added, EEXIST)
            }
            Op::DeleteRule(rule) => tolerate(
                self.handle.rule().del(rule_message(rule)).execute().await,
                ENOENT,
            ),
        };
        result.map_err(|source| KernelError::Netlink { what, source })
    }
}

fn index_of(indexes: &BTreeMap<String, u32>, name: &str) -> Result<u32, KernelError> {
    indexes
        .get(name)
        .copied()
        .ok_or_else(|| KernelError::NoInterface(name.to_owned()))
}

/// What adds `route`: ours, in its table, through its interface.
fn route_message(
    route: &RouteSpec,
    indexes: &BTreeMap<String, u32>,
) -> Result<RouteMessage, KernelError> {
    let invalid = |_| KernelError::Route(route.to_string());
    let builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(route.destination.addr(), route.destination.prefix_len())
        .map_err(invalid)?
        .table_id(route.table)
        .priority(route.metric)
        .protocol(RouteProtocol::Other(PROTOCOL));
    let builder = match &route.target {
        RouteTarget::Via { gateway, interface } => builder
            .gateway(*gateway)
            .map_err(invalid)?
            .output_interface(index_of(indexes, interface)?),
        RouteTarget::Unreachable => builder.kind(RouteType::Unreachable),
        RouteTarget::Unrecognized => return Err(KernelError::Route(route.to_string())),
    };
    Ok(builder.build())
}

/// A strict-check dump filter: routes of `family` with our protocol, in
/// every table. Type and scope must be unspecified or they filter too.
fn ours_filter(family: &IpVersion) -> RouteMessage {
    let mut filter = match family {
        IpVersion::V4 => RouteMessageBuilder::<Ipv4Addr>::new()
            .protocol(RouteProtocol::Other(PROTOCOL))
            .scope(RouteScope::Universe)
            .kind(RouteType::Unspec)
            .build(),
        IpVersion::V6 => RouteMessageBuilder::<Ipv6Addr>::new()
            .protocol(RouteProtocol::Other(PROTOCOL))
            .scope(RouteScope::Universe)
            .kind(RouteType::Unspec)
            .build(),
    };
    filter.header.table = 0;
    filter
}

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// A dumped route of ours as a spec; none if it is not ours.
fn route_spec(route: &RouteMessage, name_of: &impl Fn(u32) -> String) -> Option<RouteSpec> {
    if route.header.protocol != RouteProtocol::Other(PROTOCOL) {
        return None;
    }
    let mut table = u32::from(route.header.table);
    let mut destination = None;
    let mut metric = 0;
    let mut gateway = None;
    let mut interface = None;
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Table(id) => table = *id,
            RouteAttribute::Destination(address) => destination = ip_of(address),
            RouteAttribute::Priority(priority) => metric = *priority,
            RouteAttribute::Gateway(address) => gateway = ip_of(address),
            RouteAttribute::Oif(index) => interface = Some(name_of(*index)),
            _ => {}
        }
    }
    let unspecified = unspecified(route.header.address_family);
    let destination = IpNet::new(
        destination.unwrap_or(unspecified),
        route.header.destination_prefix_length,
    )
    .ok()?;
    let target = match (route.header.kind, gateway, interface) {
        (RouteType::Unreachable, _, _) => RouteTarget::Unreachable,
        (RouteType::Unicast, Some(gateway), Some(interface)) => {
            RouteTarget::Via { gateway, interface }
        }
        _ => RouteTarget::Unrecognized,
    };
    Some(RouteSpec {
        table,
        destination,
        metric,
        target,
    })
}

/// What deletes exactly `route` of ours: its key and our protocol (the
/// kernel matches the protocol when it is given).
fn route_key(route: &RouteSpec) -> Result<RouteMessage, KernelError> {
    let mut message = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(route.destination.addr(), route.destination.prefix_len())
        .map_err(|_| KernelError::Route(route.to_string()))?
        .table_id(route.table)
        .priority(route.metric)
        .protocol(RouteProtocol::Other(PROTOCOL))
        .kind(RouteType::Unspec)
        .build();
    message.header.scope = RouteScope::NoWhere;
    Ok(message)
}

/// A dumped rule of ours as a spec; none if it is not ours.
fn rule_spec(rule: &RuleMessage) -> Option<RuleSpec> {
    let ours = rule
        .attributes
        .contains(&RuleAttribute::Protocol(RouteProtocol::Other(PROTOCOL)));
    if !ours {
        return None;
    }
    let mut table = u32::from(rule.header.table);
    let mut priority = 0;
    let mut source = None;
    for attribute in &rule.attributes {
        match attribute {
            RuleAttribute::Table(id) => table = *id,
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Source(ip) => source = Some(*ip),
            _ => {}
        }
    }
    let unspecified = unspecified(rule.header.family);
    let from = IpNet::new(source.unwrap_or(unspecified), rule.header.src_len).ok()?;
    Some(RuleSpec {
        priority,
        from,
        table,
    })
}

/// What deletes exactly `rule` of ours.
fn rule_message(rule: &RuleSpec) -> RuleMessage {
    let mut message = RuleMessage::default();
    message.header.family = family_of(rule.from.addr());
    message.header.src_len = rule.from.prefix_len();
    message.header.action = RuleAction::ToTable;
    message.attributes.extend([
        RuleAttribute::Priority(rule.priority),
        RuleAttribute::Source(rule.from.addr()),
        RuleAttribute::Table(rule.table),
        RuleAttribute::Protocol(RouteProtocol::Other(PROTOCOL)),
    ]);
    message
}

/// The all-zeros address of `family`: what a message without a prefix
/// attribute means (a default route, a rule from all).
fn unspecified(family: AddressFamily) -> IpAddr {
    if family == AddressFamily::Inet6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

fn family_of(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// `result`, with the error `errno` taken as success.
fn tolerate(result: Result<(), rtnetlink::Error>, ok_errno: i32) -> Result<(), rtnetlink::Error> {
    match result {
        Err(error) if errno(&error) == Some(ok_errno) => Ok(()),
        other => other,
    }
}

fn netlink(what: &'static str) -> impl Fn(rtnetlink::Error) -> KernelError {
    move |source| KernelError::Netlink {
        what: what.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests;
