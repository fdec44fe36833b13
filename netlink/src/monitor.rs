//! Keeping the kernel at the desired state while the appliance runs.
//!
//! Link and address changes are reasons to reconcile again: an IPv4
//! admin-down flushes the routes through that link without a
//! RTM_DELROUTE, and they do not come back on up. Route and rule events
//! cover someone deleting ours; an overrun of the event socket means
//! events were lost, and a full reconcile is the answer to that too.
//! Every reconcile dumps first, so one after our own writes writes
//! nothing. A safety scan runs now and then whatever happens.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use rtnetlink::MulticastGroup;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use tokio::sync::{mpsc, oneshot, watch};

use crate::kernel::{Kernel, KernelError};
use crate::state::RoutingState;

/// Events arriving within this of each other are one reason to reconcile.
const SETTLE: Duration = Duration::from_millis(50);
/// A reconcile at least this often, events or not.
const SAFETY_SCAN: Duration = Duration::from_secs(30);

const GROUPS: [MulticastGroup; 7] = [
    MulticastGroup::Link,
    MulticastGroup::Ipv4Ifaddr,
    MulticastGroup::Ipv6Ifaddr,
    MulticastGroup::Ipv4Route,
    MulticastGroup::Ipv6Route,
    MulticastGroup::Ipv4Rule,
    MulticastGroup::Ipv6Rule,
];

/// What one event from the kernel means to us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// An address, route or rule changed: reconcile.
    Changed,
    /// Events were lost: reconcile everything.
    Overrun,
    /// A link changed (reconcile too): its name, and whether it is up
    /// (administratively) and running (has carrier).
    Link {
        name: String,
        up: bool,
        running: bool,
    },
    Nothing,
}

/// The meaning of one message of the event socket.
pub fn classify(message: &NetlinkMessage<RouteNetlinkMessage>) -> Seen {
    match &message.payload {
        NetlinkPayload::Overrun(_) => Seen::Overrun,
        NetlinkPayload::InnerMessage(
            RouteNetlinkMessage::NewLink(link) | RouteNetlinkMessage::DelLink(link),
        ) => {
            let name = link
                .attributes
                .iter()
                .find_map(|attribute| match attribute {
                    LinkAttribute::IfName(name) => Some(name.clone()),
                    _ => None,
                });
            Seen::Link {
                name: name.unwrap_or_default(),
                up: link.header.flags.contains(LinkFlags::Up),
                running: link.header.flags.contains(LinkFlags::Running),
            }
        }
        NetlinkPayload::InnerMessage(
            RouteNetlinkMessage::NewAddress(_)
            | RouteNetlinkMessage::DelAddress(_)
            | RouteNetlinkMessage::NewRoute(_)
            | RouteNetlinkMessage::DelRoute(_)
            | RouteNetlinkMessage::NewRule(_)
            | RouteNetlinkMessage::DelRule(_),
        ) => Seen::Changed,
        _ => Seen::Nothing,
    }
}

/// The anycast interface went down or came back: the controller's
/// business (a withdrawal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkEvent {
    pub interface: String,
    pub up: bool,
}

/// What `ixgate ctl show routing` shows.
#[derive(Clone, Debug, Default)]
pub struct RoutingStatus {
    pub desired: RoutingState,
    /// What the last reconcile found of ours, before it changed anything.
    pub found: RoutingState,
    /// What the kernel holds of ours after the last reconcile.
    pub actual: RoutingState,
    pub reconciles: u64,
    /// Operations carried out since the start.
    pub writes: u64,
    /// What the kernel refused the last time, or why reconciling failed.
    pub failures: Vec<String>,
    pub last_unix_ms: u64,
}

impl RoutingStatus {
    /// Reconciled at least once, and the kernel holds what is wanted.
    pub fn in_sync(&self) -> bool {
        self.reconciles > 0 && self.actual == self.desired
    }
}

/// Keeps the kernel at the state `desired` holds (and follows its
/// changes) until `stop` fires, then removes ours (links stay). Reports
/// into `status`; changes of `anycast` go to `links`.
pub async fn maintain(
    mut desired: watch::Receiver<RoutingState>,
    anycast: String,
    status: Arc<Mutex<RoutingStatus>>,
    links: mpsc::UnboundedSender<LinkEvent>,
    mut stop: oneshot::Receiver<()>,
) -> Result<(), KernelError> {
    // Subscribe before the first dump, so no change falls between them.
    let (connection, _, mut events) =
        rtnetlink::new_multicast_connection(&GROUPS).map_err(KernelError::Socket)?;
    tokio::spawn(connection);
    let kernel = Kernel::connect()?;
    let mut anycast = AnycastLink {
        name: anycast,
        usable: None,
        links,
    };
    let mut scan = tokio::time::interval(SAFETY_SCAN);
    loop {
        let wanted = desired.borrow_and_update().clone();
        reconcile_into(&kernel, &wanted, &status).await;
        let mut changed = false;
        while !changed {
            tokio::select! {
                _ = &mut stop => {
                    let nothing = RoutingState {
                        links: wanted.links.clone(),
                        ..RoutingState::default()
                    };
                    reconcile_into(&kernel, &nothing, &status).await;
                    return Ok(());
                }
                _ = scan.tick() => changed = true,
                Ok(()) = desired.changed() => changed = true,
                event = events.next() => {
                    let Some((message, _)) = event else {
                        return Err(KernelError::Socket(std::io::Error::other(
                            "the netlink event socket closed",
                        )));
                    };
                    changed = anycast.note(&classify(&message));
                }
            }
        }
        // Let a burst of events settle into one reconcile.
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                () = &mut settle => break,
                event = events.next() => match event {
                    Some((message, _)) => {
                        anycast.note(&classify(&message));
                    }
                    None => break,
                },
            }
        }
    }
}

/// The anycast link's state as last told.
struct AnycastLink {
    name: String,
    usable: Option<bool>,
    links: mpsc::UnboundedSender<LinkEvent>,
}

impl AnycastLink {
    /// Tells a change of the anycast link; whether `seen` calls for a
    /// reconcile.
    fn note(&mut self, seen: &Seen) -> bool {
        match seen {
            Seen::Nothing => false,
            Seen::Changed | Seen::Overrun => true,
            Seen::Link { name, up, running } => {
                let usable = *up && *running;
                if *name == self.name && self.usable != Some(usable) {
                    self.usable = Some(usable);
                    let _ = self.links.send(LinkEvent {
                        interface: name.clone(),
                        up: usable,
                    });
                }
                true
            }
        }
    }
}

async fn reconcile_into(kernel: &Kernel, desired: &RoutingState, status: &Mutex<RoutingStatus>) {
    let applied = kernel.reconcile(desired).await;
    let actual = kernel.ours(&desired.links).await;
    let Ok(mut status) = status.lock() else {
        return;
    };
    status.desired = desired.clone();
    status.reconciles += 1;
    status.last_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    status.failures.clear();
    match applied {
        Ok(applied) => {
            status.found = applied.found;
            status.writes += applied.done.len() as u64;
            status.failures.extend(
                applied
                    .failed
                    .into_iter()
                    .map(|(op, error)| format!("{op:?}: {error}")),
            );
        }
        Err(error) => status.failures.push(error.to_string()),
    }
    match actual {
        Ok(actual) => status.actual = actual,
        Err(error) => status.failures.push(error.to_string()),
    }
}

#[cfg(test)]
mod tests;
