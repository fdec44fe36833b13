//! The speaker: the tokio shell around the sans-IO session FSM.
//!
//! ```text
//!   listener (one per local address) ──inbound TcpStream──▶ peer task ◀── commands (routes, stop)
//!                                                           │  Session (fsm), AdjRibIn/Out (rib)
//!                                     socket ◀── bytes ─────┘  status ──▶ shared, for `show`
//! ```
//! One task per peer: a peer's failure never touches another's.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

use crate::fsm::{
    Action, DownReason, Event, Session, SessionConfig, State, Survivor, resolve_collision,
};
use crate::rib::{AdjRibIn, AdjRibOut};
use crate::socket::{set_md5, set_min_ttl};
use crate::wire::codec::nlri_family;
use crate::wire::{
    Attributes, Context, Family, Message, Nlri, Notification, Update, codes, decode, encode,
};

/// One BGP neighbour.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub telco: String,
    pub address: IpAddr,
    pub local: IpAddr,
    pub remote_asn: u32,
    pub hold_time: u16,
    pub password: Option<Vec<u8>>,
    /// GTSM (RFC 5082).
    pub gtsm: bool,
    pub import_max_prefixes: u32,
    pub families: Vec<Family>,
}

#[derive(Clone, Debug)]
pub struct SpeakerConfig {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    /// 179, unless a test says otherwise.
    pub port: u16,
    pub connect_retry: Duration,
    pub peers: Vec<PeerConfig>,
}

/// What `show peers` shows of one session.
#[derive(Clone, Debug, Serialize)]
pub struct PeerStatus {
    pub telco: String,
    pub neighbor: IpAddr,
    pub remote_asn: u32,
    pub state: String,
    /// Seconds since the session came up, while it is up.
    pub established_for: Option<u64>,
    /// How many times the session has come up: a flap shows here.
    pub established_count: u64,
    /// ROUTE-REFRESH requests answered (RFC 2918).
    pub refreshes_answered: u64,
    pub families: Vec<String>,
    pub received: usize,
    pub advertised: usize,
    /// Routes refused because their AS path held our AS.
    pub looped: u64,
    pub last_error: Option<String>,
}

/// A route as `show routes` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RouteView {
    pub route: String,
    pub as_path: Vec<u32>,
    pub next_hop: Option<IpAddr>,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
    pub actions: Vec<String>,
}

impl RouteView {
    fn of((nlri, attributes): &(Nlri, Attributes)) -> Self {
        Self {
            route: match nlri {
                Nlri::Unicast(net) => net.to_string(),
                Nlri::Flow(matches) => format!("flow {}", flow_text(matches)),
            },
            as_path: attributes.as_path.clone(),
            next_hop: attributes.next_hop,
            communities: attributes
                .communities
                .iter()
                .map(ToString::to_string)
                .collect(),
            large_communities: attributes
                .large_communities
                .iter()
                .map(ToString::to_string)
                .collect(),
            actions: attributes
                .flow_actions
                .iter()
                .map(|a| format!("{a:?}"))
                .collect(),
        }
    }
}

fn flow_text(matches: &crate::wire::FlowMatch) -> String {
    let mut parts = Vec::new();
    if let Some(net) = matches.destination {
        parts.push(format!("dst {net}"));
    }
    if let Some(net) = matches.source {
        parts.push(format!("src {net}"));
    }
    for (name, terms) in [
        ("proto", &matches.protocols),
        ("dport", &matches.destination_ports),
        ("sport", &matches.source_ports),
    ] {
        if !terms.is_empty() {
            let values: Vec<String> = terms
                .iter()
                .map(|t| format!("{:?} {}", t.op, t.value))
                .collect();
            parts.push(format!("{name} {}", values.join(" ")));
        }
    }
    parts.join("; ")
}

/// The routes of one peer, both ways.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PeerRoutes {
    pub received: Vec<RouteView>,
    pub advertised: Vec<RouteView>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: io::Error,
    },
    #[error("no peer {0}")]
    NoSuchPeer(IpAddr),
}

enum Command {
    SetRoutes(Vec<(Nlri, Attributes)>),
    Inbound(TcpStream),
    Stop,
}

struct Shared {
    status: PeerStatus,
    routes: PeerRoutes,
}

struct PeerHandle {
    address: IpAddr,
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Mutex<Shared>>,
}

/// A running speaker. Dropping it ends every session (their tasks end when
/// their command channels close).
pub struct Speaker {
    peers: Vec<PeerHandle>,
    listeners: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker")
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        for listener in &self.listeners {
            listener.abort();
        }
    }
}

impl Speaker {
    /// Binds the listeners and starts every session. Must run inside a
    /// tokio runtime.
    pub fn start(config: &SpeakerConfig) -> Result<Self, SpeakerError> {
        let mut peers = Vec::new();
        let mut inbound: BTreeMap<IpAddr, mpsc::UnboundedSender<Command>> = BTreeMap::new();
        for peer in &config.peers {
            let (commands, receiver) = mpsc::unbounded_channel();
            let shared = Arc::new(Mutex::new(Shared {
                status: PeerStatus {
                    telco: peer.telco.clone(),
                    neighbor: peer.address,
                    remote_asn: peer.remote_asn,
                    state: format!("{:?}", State::Idle),
                    established_for: None,
                    established_count: 0,
                    refreshes_answered: 0,
                    families: Vec::new(),
                    received: 0,
                    advertised: 0,
                    looped: 0,
                    last_error: None,
                },
                routes: PeerRoutes::default(),
            }));
            inbound.insert(peer.address, commands.clone());
            let task = PeerTask::new(config, peer.clone(), shared.clone());
            tokio::spawn(task.run(receiver));
            peers.push(PeerHandle {
                address: peer.address,
                commands,
                shared,
            });
        }

        let mut listeners = Vec::new();
        let mut locals: Vec<IpAddr> = config.peers.iter().map(|peer| peer.local).collect();
        locals.sort();
        locals.dedup();
        for local in locals {
            let address = SocketAddr::new(local, config.port);
            let on_this = config.peers.iter().filter(|peer| peer.local == local);
            let listener = listen(address, on_this)
                .map_err(|source| SpeakerError::Listen { address, source })?;
            listeners.push(tokio::spawn(accept_loop(listener, inbound.clone())));
        }
        Ok(Self { peers, listeners })
    }

    fn peer(&self, address: IpAddr) -> Result<&PeerHandle, SpeakerError> {
        self.peers
            .iter()
            .find(|p| p.address == address)
            .ok_or(SpeakerError::NoSuchPeer(address))
    }

    /// Sets what peer `address` is sent; the difference goes out at once
    /// when the session is up.
    pub fn set_routes(
        &self,
        address: IpAddr,
        routes: Vec<(Nlri, Attributes)>,
    ) -> Result<(), SpeakerError> {
        let _ = self
            .peer(address)?
            .commands
            .send(Command::SetRoutes(routes));
        Ok(())
    }

    /// Ends every session with Cease / Administrative Shutdown.
    pub fn stop(&self) {
        for peer in &self.peers {
            let _ = peer.commands.send(Command::Stop);
        }
    }

    pub fn status(&self) -> Vec<PeerStatus> {
        self.peers
            .iter()
            .filter_map(|peer| peer.shared.lock().ok().map(|shared| shared.status.clone()))
            .collect()
    }

    pub fn routes(&self, address: IpAddr) -> Result<PeerRoutes, SpeakerError> {
        let peer = self.peer(address)?;
        Ok(peer
            .shared
            .lock()
            .map(|shared| shared.routes.clone())
            .unwrap_or_default())
    }
}

/// A listening socket that takes TCP-MD5 signed SYNs from the peers that
/// have a password.
fn listen<'a>(
    address: SocketAddr,
    peers: impl Iterator<Item = &'a PeerConfig>,
) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    for peer in peers {
        if let Some(key) = &peer.password {
            set_md5(socket.as_fd(), peer.address, key)?;
        }
    }
    socket.listen(16)
}

async fn accept_loop(
    listener: TcpListener,
    peers: BTreeMap<IpAddr, mpsc::UnboundedSender<Command>>,
) {
    loop {
        let Ok((stream, remote)) = listener.accept().await else {
            continue;
        };
        // A connection from anyone who is not a configured peer is closed
        // unread (dropping it closes it).
        if let Some(peer) = peers.get(&remote.ip()) {
            let _ = peer.send(Command::Inbound(stream));
        }
    }
}

/// TTL 255 on what we send (GTSM, RFC 5082; harmless to peers that do not
/// check it).
fn send_ttl_255(socket: &impl AsFd, peer: IpAddr) -> io::Result<()> {
    let handle = socket2::SockRef::from(socket);
    if peer.is_ipv4() {
        handle.set_ttl_v4(255)
    } else {
        handle.set_unicast_hops_v6(255)
    }
}

/// Sets up an established connection: TTL 255 out and, for a GTSM peer, a
/// minimum of 254 in. Not before connecting: the kernel answers a SYN with
/// its default TTL, whatever the listener's, so a minimum set on the
/// connecting socket would drop the peer's SYN-ACK.
fn prepare(stream: &TcpStream, peer: &PeerConfig) -> io::Result<()> {
    send_ttl_255(stream, peer.address)?;
    if peer.gtsm {
        set_min_ttl(stream.as_fd(), peer.address)?;
    }
    Ok(())
}

async fn connect(peer: PeerConfig, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let socket = if peer.address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(peer.local, 0))?;
    if let Some(key) = &peer.password {
        set_md5(socket.as_fd(), peer.address, key)?;
    }
    send_ttl_255(&socket, peer.address)?;
    let stream = tokio::time::timeout(timeout, socket.connect(SocketAddr::new(peer.address, port)))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    prepare(&stream, &peer)?;
    Ok(stream)
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

async fn connected(connecting: &mut Option<Connecting>) -> io::Result<TcpStream> {
    match connecting {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// One TCP connection to the peer and its reading state.
struct Link {
    stream: TcpStream,
    /// Whether we opened it.
    ours: bool,
    buffer: BytesMut,
    context: Context,
}

impl Link {
    fn new(stream: TcpStream, ours: bool) -> Self {
        Self {
            stream,
            ours,
            buffer: BytesMut::with_capacity(4096),
            context: Context::INITIAL,
        }
    }

    async fn write(&mut self, message: &Message) -> Result<(), String> {
        let bytes =
            encode(message, self.context).map_err(|error| format!("cannot encode: {error}"))?;
        self.stream
            .write_all(&bytes)
            .await
            .map_err(|error| format!("write failed: {error}"))
    }

    /// Every whole message read so far, as events; a malformed one ends
    /// the batch with the NOTIFICATION it calls for.
    fn events(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            match decode(&mut self.buffer, self.context) {
                Ok(Some(message)) => events.push(Event::Received(message)),
                Ok(None) => break,
                Err(notification) => {
                    events.push(Event::Malformed(notification));
                    break;
                }
            }
        }
        events
    }
}

async fn read_contender(contender: &mut Option<Contender>) -> io::Result<usize> {
    match contender {
        Some(contender) => read_link(&mut contender.link).await,
        None => std::future::pending().await,
    }
}

async fn read_link(link: &mut Option<Link>) -> io::Result<usize> {
    match link {
        Some(link) => link.stream.read_buf(&mut link.buffer).await,
        None => std::future::pending().await,
    }
}

/// A connection the peer opened while ours was opening: it runs its own
/// OPEN exchange until the peer's BGP Identifier decides which connection
/// lives (RFC 4271 §6.8).
struct Contender {
    session: Session,
    link: Option<Link>,
}

struct PeerTask {
    peer: PeerConfig,
    port: u16,
    connect_retry: Duration,
    local_id: Ipv4Addr,
    session: Session,
    link: Option<Link>,
    contender: Option<Contender>,
    connecting: Option<Connecting>,
    rib_in: AdjRibIn,
    rib_out: AdjRibOut,
    established_at: Option<Instant>,
    shared: Arc<Mutex<Shared>>,
}

impl PeerTask {
    fn new(config: &SpeakerConfig, peer: PeerConfig, shared: Arc<Mutex<Shared>>) -> Self {
        let session = Session::new(SessionConfig {
            local_asn: config.local_asn,
            remote_asn: peer.remote_asn,
            router_id: config.router_id,
            hold_time: peer.hold_time,
            families: peer.families.clone(),
            connect_retry: config.connect_retry,
        });
        Self {
            rib_in: AdjRibIn::new(config.local_asn, peer.import_max_prefixes),
            peer,
            port: config.port,
            connect_retry: config.connect_retry,
            local_id: config.router_id,
            session,
            link: None,
            contender: None,
            connecting: None,
            rib_out: AdjRibOut::default(),
            established_at: None,
            shared,
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut events = vec![Event::Start];
        loop {
            while !events.is_empty() {
                for event in std::mem::take(&mut events) {
                    let actions = self.session.handle(event, Instant::now());
                    self.execute(actions, &mut events).await;
                }
                self.resolve_collision().await;
            }
            self.publish();
            let contender_deadline = self
                .contender
                .as_ref()
                .and_then(|c| c.session.poll_timeout());
            tokio::select! {
                command = commands.recv() => match command {
                    None => break,
                    Some(Command::Stop) => events.push(Event::Stop),
                    Some(Command::SetRoutes(routes)) => {
                        let updates = self.rib_out.replace(routes);
                        self.send_updates(updates).await;
                    }
                    Some(Command::Inbound(stream)) => self.inbound(stream, &mut events).await,
                },
                read = read_link(&mut self.link) => match read {
                    Ok(0) | Err(_) => events.push(Event::ConnectionFailed),
                    Ok(_) => {
                        if let Some(link) = &mut self.link {
                            events.extend(link.events());
                        }
                    }
                },
                read = read_contender(&mut self.contender) => {
                    let events = match read {
                        Ok(0) | Err(_) => vec![Event::ConnectionFailed],
                        Ok(_) => self.contender.as_mut().and_then(|c| c.link.as_mut()).map(Link::events).unwrap_or_default(),
                    };
                    self.drive_contender(events, None).await;
                },
                result = connected(&mut self.connecting) => {
                    self.connecting = None;
                    match result {
                        Ok(stream) => {
                            self.link = Some(Link::new(stream, true));
                            events.push(Event::Connected);
                        }
                        Err(error) => {
                            self.note(format!("connect: {error}"));
                            events.push(Event::ConnectionFailed);
                        }
                    }
                },
                () = sleep_until(self.session.poll_timeout()) => {
                    let actions = self.session.handle_timeout(Instant::now());
                    self.execute(actions, &mut events).await;
                },
                () = sleep_until(contender_deadline) => self.drive_contender(Vec::new(), Some(Instant::now())).await,
            }
        }
    }

    async fn inbound(&mut self, stream: TcpStream, events: &mut Vec<Event>) {
        if prepare(&stream, &self.peer).is_err() {
            return;
        }
        match self.session.state() {
            State::Connect | State::Active if self.link.is_none() => {
                self.connecting = None;
                self.link = Some(Link::new(stream, false));
                events.push(Event::Connected);
            }
            State::OpenSent | State::OpenConfirm if self.contender.is_none() => {
                let mut session = Session::new(self.session.config().clone());
                let now = Instant::now();
                // Its own Connect action is not wanted: the connection exists.
                session.handle(Event::Start, now);
                self.contender = Some(Contender {
                    session,
                    link: Some(Link::new(stream, false)),
                });
                self.drive_contender(vec![Event::Connected], None).await;
            }
            // Established, Idle (holding off), or a third connection: the
            // new one is refused (dropping it closes it).
            _ => {}
        }
    }

    /// Feeds the contender's session `events` (or its timers at `now`) and
    /// carries out what it says; it only ever sends or gives up.
    async fn drive_contender(&mut self, events: Vec<Event>, now: Option<Instant>) {
        let Some(contender) = &mut self.contender else {
            return;
        };
        let mut actions = Vec::new();
        for event in events {
            actions.extend(contender.session.handle(event, Instant::now()));
        }
        if let Some(now) = now {
            actions.extend(contender.session.handle_timeout(now));
        }
        for action in actions {
            match action {
                Action::Send(message) => {
                    if let Some(link) = &mut contender.link
                        && link.write(&message).await.is_err()
                    {
                        contender.link = None;
                    }
                }
                Action::Disconnect => contender.link = None,
                _ => {}
            }
        }
        if contender.link.is_none() || contender.session.state() == State::Idle {
            self.contender = None;
        }
        self.resolve_collision().await;
    }

    /// Once either connection knows the peer's BGP Identifier, keep the one
    /// opened by the side with the higher identifier and close the other
    /// with Cease / Connection Collision Resolution (RFC 4486).
    async fn resolve_collision(&mut self) {
        let Some(contender) = &self.contender else {
            return;
        };
        let remote_id = [&self.session, &contender.session]
            .into_iter()
            .filter(|session| session.state() == State::OpenConfirm)
            .find_map(|session| session.negotiated().map(|n| n.remote_router_id));
        let Some(remote_id) = remote_id else { return };
        let main_is_ours = self.link.as_ref().is_some_and(|link| link.ours);
        let keep_main = match resolve_collision(self.local_id, remote_id) {
            Survivor::Ours => main_is_ours,
            Survivor::Theirs => !main_is_ours,
        };
        let cease =
            Message::Notification(Notification::new(codes::CEASE, codes::CONNECTION_COLLISION));
        let Some(mut contender) = self.contender.take() else {
            return;
        };
        if keep_main {
            if let Some(link) = &mut contender.link {
                let _ = link.write(&cease).await;
            }
        } else {
            if let Some(link) = &mut self.link {
                let _ = link.write(&cease).await;
            }
            self.note("connection collision: kept the peer's connection".into());
            self.session = contender.session;
            self.link = contender.link;
        }
    }

    fn negotiated_families(&self) -> Vec<Family> {
        self.session
            .negotiated()
            .map(|n| n.families.clone())
            .unwrap_or_default()
    }

    async fn write(&mut self, message: &Message) {
        let Some(link) = &mut self.link else { return };
        if let Err(error) = link.write(message).await {
            self.note(error);
        }
    }

    /// Sends `updates` of the families the session carries.
    async fn send_updates(&mut self, updates: Vec<Update>) {
        let families = self.negotiated_families();
        for update in updates {
            let family = update
                .announced
                .first()
                .or(update.withdrawn.first())
                .map(nlri_family);
            if family.is_some_and(|family| !families.contains(&family)) {
                continue;
            }
            if let Some(Action::Send(message)) = self.session.send_update(update, Instant::now()) {
                self.write(&message).await;
            }
        }
    }

    async fn execute(&mut self, actions: Vec<Action>, events: &mut Vec<Event>) {
        for action in actions {
            match action {
                Action::Connect => {
                    if self.link.is_none() && self.connecting.is_none() {
                        self.connecting = Some(Box::pin(connect(
                            self.peer.clone(),
                            self.port,
                            self.connect_retry,
                        )));
                    }
                }
                Action::Send(message) => {
                    if let Message::Notification(n) = &message {
                        self.note(format!("sent NOTIFICATION {}/{}", n.code, n.subcode));
                    }
                    self.write(&message).await;
                }
                Action::Disconnect => {
                    self.link = None;
                    self.connecting = None;
                    // The peer's contending connection gets its turn.
                    if let Some(contender) = self.contender.take() {
                        self.session = contender.session;
                        self.link = contender.link;
                    }
                }
                Action::Established(negotiated) => {
                    if let Some(link) = &mut self.link {
                        link.context.four_octet_as = negotiated.four_octet_as;
                    }
                    self.established_at = Some(Instant::now());
                    if let Ok(mut shared) = self.shared.lock() {
                        shared.status.established_count += 1;
                    }
                    let full = self.rib_out.full();
                    self.send_updates(full).await;
                }
                Action::Down(reason) => {
                    self.established_at = None;
                    self.rib_in.clear();
                    self.note(match reason {
                        DownReason::Stopped => "stopped".to_owned(),
                        DownReason::Sent(n) => {
                            format!("sent NOTIFICATION {}/{}", n.code, n.subcode)
                        }
                        DownReason::Received(n) => {
                            format!("received NOTIFICATION {}/{}", n.code, n.subcode)
                        }
                        DownReason::ConnectionLost => "connection lost".to_owned(),
                    });
                }
                Action::Received(update) => {
                    if let Err(error) = self.rib_in.apply(&update) {
                        self.note(error.to_string());
                        events.push(Event::Terminate(Notification::new(
                            codes::CEASE,
                            codes::MAX_PREFIXES,
                        )));
                    }
                }
                Action::RouteRefresh(family) => {
                    if let Ok(mut shared) = self.shared.lock() {
                        shared.status.refreshes_answered += 1;
                    }
                    let full: Vec<Update> = self
                        .rib_out
                        .full()
                        .into_iter()
                        .filter(|update| update.announced.first().map(nlri_family) == Some(family))
                        .collect();
                    self.send_updates(full).await;
                }
            }
        }
    }

    fn note(&self, error: String) {
        if let Ok(mut shared) = self.shared.lock() {
            shared.status.last_error = Some(error);
        }
    }

    fn publish(&self) {
        if let Ok(mut shared) = self.shared.lock() {
            let status = &mut shared.status;
            status.state = format!("{:?}", self.session.state());
            status.established_for = self.established_at.map(|at| at.elapsed().as_secs());
            status.families = self
                .negotiated_families()
                .iter()
                .map(|f| format!("{f:?}"))
                .collect();
            status.received = self.rib_in.routes().len();
            status.advertised = self.rib_out.routes().len();
            status.looped = self.rib_in.looped();
            shared.routes = PeerRoutes {
                received: self.rib_in.routes().iter().map(RouteView::of).collect(),
                advertised: self.rib_out.routes().iter().map(RouteView::of).collect(),
            };
        }
    }
}
