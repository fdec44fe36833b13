//! `ixgate run`: the appliance process: the firewall, policy routing, the
//! BGP speaker from the configuration, the mTLS proxy, the controller,
//! the metrics endpoint and the control socket.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ixgate_bgp::export::{Originate, routes_for};
use ixgate_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use ixgate_bgp::wire::{Family, FlowAction, FlowMatch, FlowRule};
use ixgate_policy::types::Name;
use ixgate_policy::{Config, Drained};
use ixgate_proxy::{HTTPS_PORT, Proxy};

use crate::control::{self, Answer, FlowSpec, Request};
use crate::controller::{Command, Controller, Decision, Event, Intent, Settings, ShutdownStep};
use ixgate_firewall::detector::DetectorEvent;
use ixgate_netlink::monitor::LinkEvent;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Speaker(#[from] ixgate_bgp::speaker::SpeakerError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error("cannot set up policy routing: {0}")]
    Routing(#[from] ixgate_netlink::kernel::KernelError),
    #[error("cannot install the firewall: {0}")]
    Firewall(#[from] ixgate_firewall::watch::WatchError),
    #[error("cannot start the proxy: {0}")]
    Proxy(#[from] ixgate_proxy::ProxyError),
    #[error("cannot serve metrics on {address}: {source}")]
    Metrics {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// How long routes carry GRACEFUL_SHUTDOWN (RFC 8326) before they are
/// withdrawn, so the telcos move traffic away first.
const GRACEFUL_SHUTDOWN_WAIT: Duration = Duration::from_secs(2);
/// How long withdrawals get to leave before the sessions close.
const WITHDRAW_WAIT: Duration = Duration::from_secs(2);
/// How long the apps' connections get to finish after the withdrawal.
const DRAIN_WAIT: Duration = Duration::from_secs(5);
/// ConnectRetryTime: short, since a telco router that restarts should see
/// its sessions back quickly.
const CONNECT_RETRY: Duration = Duration::from_secs(5);

/// The running appliance: configuration, speaker and what the operator or
/// the controller asked for.
pub struct Appliance {
    /// Where the configuration is read again on reload.
    dir: PathBuf,
    config: Config,
    speaker: Speaker,
    proxy: Arc<Proxy>,
    firewall: Arc<Mutex<crate::firewall::View>>,
    routing: Arc<Mutex<ixgate_netlink::monitor::RoutingStatus>>,
    /// The firewall's tightening, as the controller decides it.
    tightened: Arc<AtomicBool>,
    /// Every change of what the node announces goes through it.
    controller: Mutex<Controller>,
    state: Mutex<State>,
}

/// What the controller's decisions have made of the node.
#[derive(Default)]
struct State {
    /// The anycast prefixes are withdrawn from every telco.
    withdrawn: bool,
    /// Telcos the prefixes are withdrawn from one by one.
    withdrawn_telcos: BTreeSet<Name>,
    graceful_shutdown: bool,
    flows: Vec<FlowSpec>,
    blackholes: Vec<ipnet::IpNet>,
    source_blackholes: Vec<ipnet::IpNet>,
    /// The controller's last decisions, oldest first.
    decisions: std::collections::VecDeque<serde_json::Value>,
    decisions_total: u64,
}

/// A per-peer metric's value.
type PeerValue = fn(&ixgate_bgp::speaker::PeerStatus) -> u64;

/// Decisions kept for `show mitigations`.
const DECISIONS_KEPT: usize = 200;
/// How often the telcos' routers are looked up among the neighbours.
const NEIGHBOUR_CHECK: Duration = Duration::from_secs(1);
/// How often the controller's timers and the proxy's health are looked at.
const CONTROL_TICK: Duration = Duration::from_millis(100);

impl Appliance {
    /// Recomputes every peer's routes and hands them to the speaker.
    fn export(&self) {
        let Ok(state) = self.state.lock() else { return };
        let drained = if state.withdrawn {
            Drained::All
        } else {
            Drained::Telcos(state.withdrawn_telcos.clone())
        };
        let plan = ixgate_policy::plan(&self.config, &drained);
        let originate = Originate {
            graceful_shutdown: state.graceful_shutdown,
            flows: state.flows.iter().map(flow_rule).collect(),
            blackholes: state.blackholes.clone(),
            source_blackholes: state.source_blackholes.clone(),
        };
        for peer in &plan.peers {
            let _ = self
                .speaker
                .set_routes(peer.neighbor, routes_for(&plan, peer, &originate));
        }
    }

    /// The metrics endpoint's text: the proxy's, then BGP, mitigations,
    /// the controller, the firewall and policy routing.
    pub fn exposition(&self) -> String {
        let mut out = crate::metrics::Exposition::default();
        let peers = self.speaker.status();
        let per_peer: [(&str, &str, &str, PeerValue); 4] = [
            (
                "ixgate_bgp_session_up",
                "gauge",
                "Whether the session with the telco's router is established.",
                |peer| u64::from(peer.established_for.is_some()),
            ),
            (
                "ixgate_bgp_prefixes_received",
                "gauge",
                "Routes held from the peer.",
                |peer| u64::try_from(peer.received).unwrap_or(u64::MAX),
            ),
            (
                "ixgate_bgp_prefixes_advertised",
                "gauge",
                "Routes sent to the peer.",
                |peer| u64::try_from(peer.advertised).unwrap_or(u64::MAX),
            ),
            (
                "ixgate_bgp_established_total",
                "counter",
                "Times the session came up.",
                |peer| peer.established_count,
            ),
        ];
        for (name, kind, help, value) in per_peer {
            out.family(name, kind, help);
            for peer in &peers {
                let neighbor = peer.neighbor.to_string();
                let labels = [
                    ("telco", peer.telco.as_str()),
                    ("neighbor", neighbor.as_str()),
                ];
                out.count(name, &labels, value(peer));
            }
        }
        if let Ok(state) = self.state.lock() {
            out.family(
                "ixgate_mitigations_active",
                "gauge",
                "Mitigations originated toward the telcos.",
            );
            for (kind, count) in [
                ("flowspec", state.flows.len()),
                ("rtbh", state.blackholes.len()),
                ("source_rtbh", state.source_blackholes.len()),
            ] {
                out.count("ixgate_mitigations_active", &[("kind", kind)], count);
            }
            out.family(
                "ixgate_anycast_withdrawn",
                "gauge",
                "The anycast prefixes are withdrawn (operator drain or controller).",
            );
            let withdrawn = state.withdrawn;
            out.count("ixgate_anycast_withdrawn", &[], u8::from(withdrawn));
            out.family(
                "ixgate_controller_decisions_total",
                "counter",
                "Decisions the controller took.",
            );
            out.count(
                "ixgate_controller_decisions_total",
                &[],
                state.decisions_total,
            );
        }
        if let Ok(view) = self.firewall.lock() {
            view.expose(&mut out);
        }
        if let Ok(routing) = self.routing.lock() {
            out.family(
                "ixgate_routing_in_sync",
                "gauge",
                "Policy routing: the kernel holds what the plan wants.",
            );
            out.count("ixgate_routing_in_sync", &[], u8::from(routing.in_sync()));
            out.family(
                "ixgate_routing_writes_total",
                "counter",
                "Addresses, routes and rules written to the kernel.",
            );
            out.count("ixgate_routing_writes_total", &[], routing.writes);
        }
        out.finish(&self.proxy.metrics().encode())
    }

    /// Carries out the controller's decisions, records and prints each
    /// with its reason, and exports the result.
    fn decide(&self, decisions: Vec<Decision>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        for decision in decisions {
            match &decision.intent {
                Intent::AddFlow(flow) => {
                    if !state.flows.contains(flow) {
                        state.flows.push(flow.clone());
                    }
                }
                Intent::RemoveFlow(flow) => state.flows.retain(|f| f != flow),
                Intent::AddSourceBlackhole(prefix) => {
                    if !state.source_blackholes.contains(prefix) {
                        state.source_blackholes.push(*prefix);
                    }
                }
                Intent::RemoveSourceBlackhole(prefix) => {
                    state.source_blackholes.retain(|p| p != prefix);
                }
                Intent::AddBlackhole(prefix) => {
                    if !state.blackholes.contains(prefix) {
                        state.blackholes.push(*prefix);
                    }
                }
                Intent::RemoveBlackhole(prefix) => state.blackholes.retain(|p| p != prefix),
                Intent::WithdrawAll => state.withdrawn = true,
                Intent::AnnounceAll => state.withdrawn = false,
                Intent::GracefulShutdown => state.graceful_shutdown = true,
                Intent::TightenFirewall => self.tightened.store(true, Ordering::Relaxed),
                Intent::RelaxFirewall => self.tightened.store(false, Ordering::Relaxed),
                Intent::StopAccepting => self.proxy.stop_accepting(),
                Intent::WithdrawFrom(telco) => {
                    state.withdrawn_telcos.insert(telco.clone());
                }
                Intent::AnnounceTo(telco) => {
                    state.withdrawn_telcos.remove(telco);
                }
            }
            let record = serde_json::json!({
                "event": "decision",
                "at_unix_ms": crate::firewall::unix_millis(),
                "intent": decision.intent.to_string(),
                "reason": decision.reason,
            });
            tracing::info!(
                event = "decision",
                intent = %decision.intent,
                reason = %decision.reason,
            );
            state.decisions_total += 1;
            if state.decisions.len() == DECISIONS_KEPT {
                state.decisions.pop_front();
            }
            state.decisions.push_back(record);
        }
        drop(state);
        self.export();
    }

    /// Hands `event` to the controller and carries out what it decides.
    fn control(&self, event: &Event) -> Vec<Decision> {
        let decisions = match self.controller.lock() {
            Ok(mut controller) => controller.handle(Instant::now(), event),
            Err(_) => return Vec::new(),
        };
        if !decisions.is_empty() {
            self.decide(decisions.clone());
        }
        decisions
    }

    /// Tells the controller (and the log) of every telco whose sessions
    /// came up or went down since `known`. A telco is up while every
    /// session with it (one per address family) is Established: one
    /// family's session alone down still keeps that family's routes from
    /// it.
    fn peers_changed(&self, known: &mut BTreeMap<String, bool>) {
        let mut now: BTreeMap<String, bool> = BTreeMap::new();
        for peer in self.speaker.status() {
            *now.entry(peer.telco).or_insert(true) &= peer.state == "Established";
        }
        for (telco, up) in now {
            if known.insert(telco.clone(), up) == Some(up) {
                continue;
            }
            tracing::info!(event = "peer_session", telco = %telco, up);
            if let Ok(telco) = self.telco_name(&telco) {
                self.control(&Event::Peer { telco, up });
            }
        }
    }

    /// The controller's timers at `now`.
    fn tick(&self) {
        let decisions = match self.controller.lock() {
            Ok(mut controller) => controller.tick(Instant::now()),
            Err(_) => return,
        };
        if !decisions.is_empty() {
            self.decide(decisions);
        }
    }

    /// An operator's command, through the controller; the answer lists
    /// what it decided.
    fn command(&self, command: Command) -> Answer {
        let decided: Vec<String> = self
            .control(&Event::Operator(command))
            .iter()
            .map(|decision| decision.intent.to_string())
            .collect();
        if decided.is_empty() {
            Answer::data("nothing to change: already so")
        } else {
            Answer::data(decided)
        }
    }

    pub fn handle(&self, request: Request) -> Answer {
        match request {
            Request::ShowPeers => Answer::data(self.speaker.status()),
            Request::ShowRoutes { peer } => match self.speaker.routes(peer) {
                Ok(routes) => Answer::data(routes),
                Err(error) => Answer::error(error.to_string()),
            },
            Request::ShowMitigations => match (self.state.lock(), self.controller.lock()) {
                (Ok(state), Ok(controller)) => Answer::data(serde_json::json!({
                    "drained": controller.operator().drained,
                    "drained_telcos": controller.operator().drained_telcos,
                    "withdrawn_by_controller": state.withdrawn && !controller.operator().drained,
                    "withdrawn_telcos": state
                        .withdrawn_telcos
                        .difference(&controller.operator().drained_telcos)
                        .collect::<Vec<_>>(),
                    "flows": state.flows,
                    "blackholes": state.blackholes,
                    "source_blackholes": state.source_blackholes,
                    "decisions": state.decisions,
                })),
                _ => Answer::error("state lock poisoned".into()),
            },
            Request::ShowCounters => match self.firewall.lock() {
                Ok(view) => Answer::data(view.counters()),
                Err(_) => Answer::error("firewall view lock poisoned".into()),
            },
            Request::ShowRouting => match self.routing.lock() {
                Ok(status) => Answer::data(crate::routing::view(&status)),
                Err(_) => Answer::error("routing status lock poisoned".into()),
            },
            Request::ShowFloods => match self.firewall.lock() {
                Ok(view) => Answer::data(view.floods()),
                Err(_) => Answer::error("firewall view lock poisoned".into()),
            },
            Request::Drain { telco: None } => self.command(Command::Drain { telco: None }),
            Request::Undrain { telco: None } => self.command(Command::Undrain { telco: None }),
            Request::Drain { telco: Some(telco) } => match self.telco_name(&telco) {
                Ok(name) => self.command(Command::Drain { telco: Some(name) }),
                Err(answer) => answer,
            },
            Request::Undrain { telco: Some(telco) } => match self.telco_name(&telco) {
                Ok(name) => self.command(Command::Undrain { telco: Some(name) }),
                Err(answer) => answer,
            },
            Request::FlowAdd(flow) => self.command(Command::AddFlow(flow)),
            Request::FlowRemove(flow) => self.command(Command::RemoveFlow(flow)),
            Request::BlackholeAdd { prefix } => self.command(Command::AddBlackhole(prefix)),
            Request::BlackholeRemove { prefix } => self.command(Command::RemoveBlackhole(prefix)),
            Request::ShowServices => Answer::data(
                self.proxy
                    .services()
                    .into_iter()
                    .map(|service| {
                        serde_json::json!({
                            "name": service.name,
                            "sni": service.sni,
                            "origins": service
                                .origins
                                .iter()
                                .map(|(url, healthy)| serde_json::json!({ "url": url, "healthy": healthy }))
                                .collect::<Vec<_>>(),
                        })
                    })
                    .collect::<Vec<_>>(),
            ),
            Request::Reload => match self.reload() {
                Ok(()) => Answer::data("reloaded"),
                Err(error) => Answer::error(error.to_string()),
            },
        }
    }

    /// Reads the configuration again and hands the proxy its new services
    /// and the controller its timers and the telcos' withdrawal rates. BGP
    /// and the firewall keep the configuration they started with until
    /// the appliance restarts.
    pub fn reload(&self) -> Result<(), RunError> {
        let config = load(&self.dir)?;
        self.proxy.reload(&config)?;
        self.control(&Event::Reload(Settings::of(&config)));
        Ok(())
    }

    /// A configured telco's name, or the answer saying there is none.
    fn telco_name(&self, telco: &str) -> Result<ixgate_policy::types::Name, Answer> {
        self.config
            .telcos
            .iter()
            .map(|t| t.name.clone())
            .find(|name| name.as_str() == telco)
            .ok_or_else(|| Answer::error(format!("no telco {telco}")))
    }

    /// Waits until no established session still advertises anything, or
    /// `wait` has passed.
    async fn withdrawn(&self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let busy = self
                .speaker
                .status()
                .iter()
                .any(|peer| peer.state == "Established" && peer.advertised > 0);
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An operator's or the controller's rule in the speaker's terms.
fn flow_rule(flow: &FlowSpec) -> FlowRule {
    let mut matches = FlowMatch::to(flow.destination);
    if let Some(source) = flow.source {
        matches = matches.from_source(source);
    }
    if let Some(protocol) = flow.protocol {
        matches = matches.protocol(protocol);
    }
    if let Some(port) = flow.destination_port {
        matches = matches.destination_port(port);
    }
    if let Some(bits) = flow.tcp_flags {
        matches = matches.tcp_flags_set(bits);
    }
    if let Some((low, high)) = flow.packet_length {
        matches = matches.packet_length(low, high);
    }
    FlowRule {
        matches,
        actions: vec![FlowAction::RateBytes(flow.rate_bytes)],
    }
}

/// The speaker's view of the plan's sessions.
fn speaker_config(config: &Config) -> Result<SpeakerConfig, RunError> {
    let plan = ixgate_policy::plan(config, &Drained::Nothing);
    let mut peers = Vec::new();
    for peer in &plan.peers {
        let telco = config.telcos.iter().find(|telco| telco.name == peer.telco);
        let password = match telco.and_then(|telco| telco.md5_password_file.as_deref()) {
            Some(path) => {
                let text = std::fs::read(path).map_err(|source| RunError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Some(text.strip_suffix(b"\n").unwrap_or(&text).to_vec())
            }
            None => None,
        };
        let (unicast, flowspec) = if peer.neighbor.is_ipv4() {
            (Family::Ipv4Unicast, Family::Ipv4Flowspec)
        } else {
            (Family::Ipv6Unicast, Family::Ipv6Flowspec)
        };
        let mut families = vec![unicast];
        if peer.accepts.flowspec {
            families.push(flowspec);
        }
        peers.push(PeerConfig {
            telco: peer.telco.to_string(),
            address: peer.neighbor,
            local: peer.local,
            remote_asn: peer.remote_asn.get(),
            hold_time: peer.hold_time.seconds(),
            password,
            gtsm: peer.gtsm,
            import_max_prefixes: peer.import_max_prefixes,
            families,
        });
    }
    Ok(SpeakerConfig {
        local_asn: plan.asn.get(),
        router_id: plan.router_id,
        port: 179,
        connect_retry: CONNECT_RETRY,
        peers,
    })
}

/// Runs the appliance from the configuration in `dir` until SIGTERM or
/// SIGINT, then shuts down in order: GRACEFUL_SHUTDOWN, withdraw, drain
/// the apps' connections, close the sessions, remove routing and tables.
/// The whole configuration in `dir`, or every error in it.
fn load(dir: &Path) -> Result<Config, RunError> {
    ixgate_policy::load(dir).map_err(|error| match error {
        ixgate_policy::LoadError::Invalid(errors) => RunError::Config(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        error @ ixgate_policy::LoadError::Unreadable { .. } => RunError::Config(error.to_string()),
    })
}

/// How often the routes the telcos announce are handed to the routing plan.
const LEARNED_INTERVAL: Duration = Duration::from_secs(1);

/// Hands the routes the telcos announce (their customers' networks) to the
/// routing plan, so that replies go back through the telco they came from.
async fn follow_learned(appliance: Arc<Appliance>, plan: Arc<crate::routing::RoutingPlan>) {
    let mut every = tokio::time::interval(LEARNED_INTERVAL);
    loop {
        every.tick().await;
        let mut learned = Vec::new();
        for peer in appliance.speaker.status() {
            let Ok(routes) = appliance.speaker.routes(peer.neighbor) else {
                continue;
            };
            learned.extend(routes.received.iter().filter_map(|route| {
                Some(ixgate_netlink::plan::Learned {
                    prefix: route.route.parse().ok()?,
                    gateway: route.next_hop?,
                })
            }));
        }
        learned.sort();
        learned.dedup();
        plan.learned(&learned);
    }
}

/// Feeds the controller flood events, anycast link changes, the proxy's
/// health and the time, and carries out what it decides.
async fn control_loop(
    appliance: Arc<Appliance>,
    mut floods: tokio::sync::mpsc::UnboundedReceiver<DetectorEvent>,
    mut links: tokio::sync::mpsc::UnboundedReceiver<LinkEvent>,
) {
    let mut ticker = tokio::time::interval(CONTROL_TICK);
    let mut neighbours = tokio::time::interval(NEIGHBOUR_CHECK);
    let kernel = ixgate_netlink::kernel::Kernel::connect();
    let mut routers = BTreeMap::new();
    let mut healthy = true;
    let mut sessions_up: BTreeMap<String, bool> = BTreeMap::new();
    loop {
        tokio::select! {
            Some(event) = floods.recv() => {
                appliance.control(&Event::Flood(event));
            }
            Some(link) = links.recv() => {
                appliance.control(&Event::AnycastLink { up: link.up });
            }
            _ = neighbours.tick() => {
                let Ok(kernel) = &kernel else { continue };
                let Ok(found) = kernel.neighbours().await else { continue };
                let now = telco_routers(&appliance.config, &found);
                if now != routers {
                    routers = now;
                    appliance.control(&Event::Routers(routers.clone()));
                }
            }
            _ = ticker.tick() => {
                appliance.tick();
                let health = appliance.proxy.healthy();
                if health != healthy {
                    healthy = health;
                    appliance.control(&Event::Health { healthy });
                }
                appliance.peers_changed(&mut sessions_up);
            }
        }
    }
}

/// Each telco's router on the peering LAN by its link-layer address, from
/// the neighbours the kernel resolved (the BGP sessions keep them fresh).
fn telco_routers(
    config: &Config,
    neighbours: &BTreeMap<IpAddr, [u8; 6]>,
) -> BTreeMap<[u8; 6], Name> {
    let mut routers = BTreeMap::new();
    for telco in &config.telcos {
        let addresses = [
            telco.neighbor_v4.map(IpAddr::V4),
            telco.neighbor_v6.map(IpAddr::V6),
        ];
        for address in addresses.into_iter().flatten() {
            if let Some(link) = neighbours.get(&address) {
                routers.insert(*link, telco.name.clone());
            }
        }
    }
    routers
}

/// The proxy's listeners: every service address, port 443.
fn service_addresses(config: &Config) -> Vec<SocketAddr> {
    config
        .node
        .anycast
        .service_ips
        .iter()
        .map(|&ip| SocketAddr::new(ip, HTTPS_PORT))
        .collect()
}

/// Runs only the mTLS proxy of the configuration in `dir` (no BGP, no
/// firewall, no control socket) until SIGTERM or SIGINT; SIGHUP reloads
/// it. For trying a proxy configuration, and for benchmarks.
pub fn proxy_only(dir: &Path) -> Result<(), RunError> {
    let config = load(dir)?;
    let runtime = runtime(&config)?;
    runtime.block_on(async {
        let proxy = Proxy::new(&config, None)?;
        proxy.serve(&service_addresses(&config))?;
        let signal = |kind| tokio::signal::unix::signal(kind).map_err(RunError::Runtime);
        let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut hangup = signal(tokio::signal::unix::SignalKind::hangup())?;
        loop {
            tokio::select! {
                _ = terminate.recv() => return Ok(()),
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = hangup.recv() => {
                    if let Err(error) = load(dir).and_then(|config| Ok(proxy.reload(&config)?)) {
                        tracing::warn!(event = "reload_refused", error = %error, "reload refused, nothing changed");
                    }
                }
            }
        }
    })
}

/// The runtime of the appliance (the proxy is most of its work): as many
/// worker threads as `[proxy] threads` says, else one per core. One
/// thread is a current-thread runtime: no work stealing to pay for
/// (resumed handshakes per CPU-second about 5 % up in the proxy
/// benchmark).
fn runtime(config: &Config) -> Result<tokio::runtime::Runtime, RunError> {
    let mut builder = match config.node.proxy.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(usize::try_from(threads).unwrap_or(1));
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build().map_err(RunError::Runtime)
}

/// Verified sources waiting for the firewall's next tick.
const TRUSTED_FEED: usize = 4096;

/// Runs the appliance from the configuration in `dir` until SIGTERM or
/// SIGINT, then shuts down in order: GRACEFUL_SHUTDOWN, withdraw, drain
/// the apps' connections, close the sessions, remove routing and tables.
pub fn run(dir: &Path, control_socket: Option<PathBuf>) -> Result<(), RunError> {
    let config = load(dir)?;
    let socket = control_socket.unwrap_or_else(|| config.node.management.control_socket.clone());
    let runtime = runtime(&config)?;
    let (trusted, trusted_feed) = tokio::sync::mpsc::channel(TRUSTED_FEED);
    let (flood_events, floods) = tokio::sync::mpsc::unbounded_channel();
    // The firewall goes in before anything is announced.
    let firewall = crate::firewall::FirewallTask::start(&config, trusted_feed, flood_events)?;
    let result = runtime.block_on(async {
        // Addresses, tables and rules before the listeners and BGP.
        let (link_events, links) = tokio::sync::mpsc::unbounded_channel();
        let routing = crate::routing::RoutingTask::start(&config, link_events).await?;
        let proxy = Proxy::new(&config, Some(trusted))?;
        proxy.serve(&service_addresses(&config))?;
        let metrics_address = config.node.management.metrics;
        let metrics = crate::metrics::bind(metrics_address)
            .await
            .map_err(|source| RunError::Metrics {
                address: metrics_address,
                source,
            })?;
        let speaker = Speaker::start(&speaker_config(&config)?)?;
        let appliance = Arc::new(Appliance {
            dir: dir.to_owned(),
            speaker,
            proxy,
            firewall: firewall.view(),
            routing: routing.status(),
            tightened: firewall.tightener(),
            controller: Mutex::new(Controller::new(&config)),
            config,
            state: Mutex::new(State::default()),
        });
        appliance.export();
        tokio::spawn(crate::metrics::serve(metrics, appliance.clone()));
        tokio::spawn(follow_learned(appliance.clone(), routing.plan()));
        tokio::spawn(control_loop(appliance.clone(), floods, links));
        let listener = control::bind(&socket)?;
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(RunError::Runtime)?;
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(RunError::Runtime)?;
        let serve = control::serve(listener, appliance.clone());
        tokio::pin!(serve);
        loop {
            tokio::select! {
                () = &mut serve => break,
                _ = terminate.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
                _ = hangup.recv() => {
                    if let Err(error) = appliance.reload() {
                        tracing::warn!(event = "reload_refused", error = %error, "reload refused, nothing changed");
                    }
                }
            }
        }
        // RFC 8326: tell the telcos to move away, then go.
        appliance.control(&Event::Shutdown(ShutdownStep::Announce));
        tokio::time::sleep(GRACEFUL_SHUTDOWN_WAIT).await;
        appliance.control(&Event::Shutdown(ShutdownStep::Withdraw));
        appliance.withdrawn(WITHDRAW_WAIT).await;
        // Nothing new comes now: the apps' connections finish what they
        // carry and close (HTTP/1.1 after its answer, HTTP/2 by GOAWAY).
        appliance.control(&Event::Shutdown(ShutdownStep::Drain));
        let left = appliance.proxy.drained(DRAIN_WAIT).await;
        tracing::info!(event = "proxy_drained", connections_left = left);
        appliance.speaker.stop();
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Err(error) = routing.stop().await {
            tracing::warn!(event = "routing_not_removed", error = %error);
        }
        let _ = std::fs::remove_file(&socket);
        Ok(())
    });
    // Last: our tables go once nothing is announced any more.
    if let Err(error) = firewall.stop() {
        tracing::warn!(event = "firewall_not_removed", error = %error);
    }
    result
}
