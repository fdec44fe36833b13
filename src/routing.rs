//! Policy routing in `ixgate run`: the monitor of ixgate-netlink keeps the
//! node's addresses, tables and rules; what `ixgate ctl show routing`
//! reads; the anycast link's changes go to the controller.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use ixgate_netlink::kernel::{Kernel, KernelError};
use ixgate_netlink::monitor::{self, LinkEvent, RoutingStatus};
use ixgate_netlink::plan::{self, Learned};
use ixgate_netlink::state::RoutingState;
use ixgate_policy::Config;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

/// The routing task of a running appliance.
pub struct RoutingTask {
    plan: Arc<RoutingPlan>,
    status: Arc<Mutex<RoutingStatus>>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), KernelError>>,
}

impl RoutingTask {
    /// Brings the kernel to the plan of `config` once (before anything is
    /// announced), then keeps it there. What the kernel refuses is shown
    /// by `show routing` and printed; the appliance runs on.
    /// Changes of the anycast link go to `links` (the controller).
    pub async fn start(
        config: &Config,
        links: mpsc::UnboundedSender<LinkEvent>,
    ) -> Result<Self, KernelError> {
        let desired = plan::desired(config);
        let applied = Kernel::connect()?.reconcile(&desired).await?;
        for (op, error) in &applied.failed {
            tracing::warn!(event = "routing_refused", operation = ?op, error = %error);
        }
        let status = Arc::new(Mutex::new(RoutingStatus::default()));
        let (stop, stopped) = oneshot::channel();
        let anycast = config.node.interfaces.anycast.as_str().to_owned();
        let (desired, wanted) = watch::channel(desired);
        let task = tokio::spawn(monitor::maintain(
            wanted,
            anycast,
            status.clone(),
            links,
            stopped,
        ));
        Ok(Self {
            plan: Arc::new(RoutingPlan {
                config: config.clone(),
                desired,
            }),
            status,
            stop,
            task,
        })
    }

    /// Where the routes the telcos announce go.
    pub fn plan(&self) -> Arc<RoutingPlan> {
        self.plan.clone()
    }

    pub fn status(&self) -> Arc<Mutex<RoutingStatus>> {
        self.status.clone()
    }

    /// Removes our addresses, rules and routes (links stay).
    pub async fn stop(self) -> Result<(), KernelError> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(error) => Err(KernelError::Socket(std::io::Error::other(error))),
        }
    }
}

/// The plan of policy routing, following what the telcos announce.
#[derive(Debug)]
pub struct RoutingPlan {
    config: Config,
    desired: watch::Sender<RoutingState>,
}

impl RoutingPlan {
    /// The routes the telcos announce now: replies to their customers go
    /// back through them.
    pub fn learned(&self, learned: &[Learned]) {
        let desired = plan::desired_with(&self.config, learned);
        self.desired.send_if_modified(|current| {
            let changed = *current != desired;
            if changed {
                *current = desired;
            }
            changed
        });
    }
}

/// Every object of desired and actual, side by side, for `show routing`.
pub fn view(status: &RoutingStatus) -> Value {
    let rows = |state: &RoutingState| -> BTreeSet<(&'static str, String)> {
        let links = state
            .links
            .iter()
            .map(|l| ("link", format!("{} ({:?})", l.name, l.kind)));
        let addresses = state.addresses.iter().map(|a| ("address", a.to_string()));
        let routes = state.routes.iter().map(|r| ("route", r.to_string()));
        let rules = state.rules.iter().map(|r| ("rule", r.to_string()));
        links.chain(addresses).chain(routes).chain(rules).collect()
    };
    let desired = rows(&status.desired);
    let actual = rows(&status.actual);
    let objects: Vec<Value> = desired
        .union(&actual)
        .map(|(kind, object)| {
            let key = (*kind, object.clone());
            json!({
                "kind": kind,
                "object": object,
                "desired": desired.contains(&key),
                "actual": actual.contains(&key),
            })
        })
        .collect();
    json!({
        "in_sync": status.in_sync(),
        "reconciles": status.reconciles,
        "writes": status.writes,
        "failures": status.failures,
        "last_unix_ms": status.last_unix_ms,
        "objects": objects,
    })
}
