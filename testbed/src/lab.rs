//! A running lab: its sandbox, network, routers and run directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{ClientOutcome, ClientRequest, SessionOutcome, SessionRequest};
use crate::flood::{Flood, FloodReport, parse_mac};
use crate::load::{LoadMode, LoadReport, LoadTarget};
use crate::origin::OriginRequest;
use crate::probe::{ProbeReport, Transport};
use crate::routers::Router;
use crate::sandbox::{Sandbox, SandboxHandle, runs_root, unique_run_name};
use crate::topology::{IxgateRuns, Role, RouterSoftware, Topology};
use crate::wait::{self, NotYet};
use crate::{LabError, net, peering, pki};

/// A router as started: what it runs, with what, and the `nsenter`s that
/// wait on its daemons.
#[derive(Debug)]
struct RouterRun {
    software: RouterSoftware,
    setup: crate::routers::RouterSetup,
    children: Vec<std::process::Child>,
}

/// How long a daemon gets to end after SIGTERM.
const STOP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Ends the daemon an `nsenter` waits on: `nsenter` forks into the lab's
/// PID namespace and `ip netns exec` execs the daemon, so the daemon is
/// the `nsenter`'s only child. Signalled by PID, then the `nsenter` is
/// reaped.
fn stop_daemon(nsenter: &mut std::process::Child) -> Result<(), LabError> {
    let pid = nsenter.id();
    for daemon in daemon_pids(nsenter) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &daemon])
            .status();
    }
    wait::until(
        STOP_DEADLINE,
        &format!("daemon under nsenter {pid} to end"),
        || match nsenter.try_wait() {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(NotYet::Pending("still running".into())),
            Err(error) => Err(NotYet::Failed(error.to_string())),
        },
    )
}

/// The daemon an `nsenter` waits on (its only child), as host PIDs.
fn daemon_pids(nsenter: &std::process::Child) -> Vec<String> {
    let pid = nsenter.id();
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Where an origin logs its requests, in its node's run directory.
const ORIGIN_LOG: &str = "requests.jsonl";

/// The capabilities `ixgate run` gets in a lab, as in production.
const APPLIANCE_CAPABILITIES: &str = "+net_admin,+net_bind_service,+net_raw";

/// How long an origin server may take to bind its listeners.
const ORIGIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// A binary of this workspace: named by the environment variable `env`,
/// or found beside the running program (or one directory up, where cargo
/// puts binaries next to test programs' `deps/`).
pub fn sibling_binary(name: &str, env: &str) -> Result<PathBuf, LabError> {
    if let Some(path) = std::env::var_os(env) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|source| LabError::Io {
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    let here = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    [here.join(name), here.join("..").join(name)]
        .into_iter()
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| LabError::Spawn {
            what: name.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no {name} beside {}; build the workspace's binaries or set {env}",
                    exe.display()
                ),
            ),
        })
}

fn log_file(path: &Path) -> Result<std::fs::File, LabError> {
    std::fs::File::create(path).map_err(|source| LabError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Copies an ixgate configuration (a site directory) without its `pki`,
/// which each lab makes afresh.
pub(crate) fn copy_config(from: &Path, to: &Path) -> Result<(), LabError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| LabError::Io { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(io(&source))?.is_dir() {
            if from.join("pki") != source {
                copy_config(&source, &target)?;
            }
        } else {
            std::fs::copy(&source, &target).map_err(io(&source))?;
        }
    }
    Ok(())
}

/// How long an attacker may take to resolve its gateway's MAC address.
const NEIGHBOUR_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long BGP may take to bring an anycast service within a client's
/// reach.
const ANYCAST_DEADLINE: Duration = Duration::from_secs(30);

/// What `ixgate-testbed status`, `exec` and `down` need to find a lab: kept
/// as `lab.json` in its run directory.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct LabState {
    pub name: String,
    /// The process that owns the lab; the lab dies with it.
    pub runner_pid: u32,
    /// The sandbox's PID 1, as the host numbers it.
    pub sandbox_pid: u32,
    pub nodes: Vec<String>,
}

impl LabState {
    pub const FILE: &'static str = "lab.json";

    /// A handle into the lab's sandbox.
    pub fn sandbox(&self) -> SandboxHandle {
        SandboxHandle::new(&self.name, self.sandbox_pid)
    }
}

/// A lab built from a topology. Dropping it ends every process and
/// namespace it made; its run directory is kept when the thread is
/// panicking, for the logs.
#[derive(Debug)]
pub struct Lab {
    topology: Topology,
    name: String,
    run_dir: PathBuf,
    routers: BTreeMap<String, Router>,
    /// The ixgate configuration of each ixgate node, as the lab runs it.
    site: BTreeMap<String, ixgate_policy::Config>,
    /// The `nsenter`s that wait on each node's `ixgate run`.
    appliances: BTreeMap<String, Child>,
    /// How each router was started, to restart it.
    router_runs: BTreeMap<String, RouterRun>,
    /// The `nsenter` processes waiting on the lab's daemons; reaped on drop.
    daemons: Vec<Child>,
    sandbox: Sandbox,
    /// Floods sent so far, to name their trafgen configurations.
    floods: std::sync::atomic::AtomicU32,
    /// Keep the run directory on drop: set until the lab is fully up, and
    /// whenever the thread panics, so a failure leaves its logs.
    keep_run_dir: bool,
}

impl Lab {
    /// Builds the topology's network and starts what each node runs.
    pub fn start(topology: Topology) -> Result<Self, LabError> {
        let name = unique_run_name(&topology.name);
        let run_dir = runs_root().join(&name);
        std::fs::create_dir_all(&run_dir).map_err(|source| LabError::Io {
            path: run_dir.clone(),
            source,
        })?;
        let sandbox = Sandbox::start(&name, &run_dir)?;
        let mut lab = Self {
            topology,
            name,
            run_dir,
            routers: BTreeMap::new(),
            site: BTreeMap::new(),
            router_runs: BTreeMap::new(),
            appliances: BTreeMap::new(),
            daemons: Vec::new(),
            sandbox,
            floods: std::sync::atomic::AtomicU32::new(0),
            keep_run_dir: true,
        };
        lab.write_state()?;
        // The lab runs a copy of the configuration with a PKI of its own.
        let config = lab.run_dir.join("config");
        copy_config(&lab.topology.config, &config)?;
        lab.topology.config = config;
        pki::generate(&lab.pki_dir_created()?)?;
        let handle = lab.sandbox_handle();
        net::build(&handle, &lab.topology)?;

        let site = peering::load_site(&lab.topology)?;
        lab.start_origins(&site)?;
        for node in &lab.topology.nodes {
            let (software, setup) = match &node.role {
                Role::Telco { software, telco } => {
                    (*software, peering::telco_setup(node, telco, &site)?)
                }
                Role::Ixgate {
                    runs: runs @ (IxgateRuns::GobgpStandIn | IxgateRuns::BirdStandIn),
                    ..
                } => {
                    let config = site
                        .get(&node.name)
                        .ok_or_else(|| LabError::NoSuchNode(node.name.clone()))?;
                    let software = if *runs == IxgateRuns::BirdStandIn {
                        RouterSoftware::Bird
                    } else {
                        RouterSoftware::Gobgp
                    };
                    (software, peering::stand_in_setup(node, config)?)
                }
                _ => continue,
            };
            let (router, children) =
                Router::start(software, &setup, &handle, &lab.run_dir.join(&node.name))?;
            lab.routers.insert(node.name.clone(), router);
            lab.router_runs.insert(
                node.name.clone(),
                RouterRun {
                    software,
                    setup,
                    children,
                },
            );
        }
        let appliances: Vec<(String, PathBuf)> = lab
            .topology
            .nodes
            .iter()
            .filter_map(|node| match &node.role {
                Role::Ixgate {
                    runs: IxgateRuns::Appliance,
                    node: dir,
                } => Some((node.name.clone(), lab.topology.config.join(dir))),
                _ => None,
            })
            .collect();
        for (node, dir) in appliances {
            lab.start_appliance(&node, &dir)?;
        }
        lab.site = site;
        lab.keep_run_dir = false;
        Ok(lab)
    }

    fn pki_dir_created(&self) -> Result<PathBuf, LabError> {
        let dir = self.pki_dir();
        std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    fn write_state(&self) -> Result<(), LabError> {
        let state = LabState {
            name: self.name.clone(),
            runner_pid: std::process::id(),
            sandbox_pid: self.sandbox_handle().pid1(),
            nodes: self
                .topology
                .nodes
                .iter()
                .map(|node| node.name.clone())
                .collect(),
        };
        let path = self.run_dir.join(LabState::FILE);
        let text = serde_json::to_string_pretty(&state).map_err(|error| LabError::Io {
            path: path.clone(),
            source: std::io::Error::other(error),
        })?;
        std::fs::write(&path, text).map_err(|source| LabError::Io { path, source })
    }

    fn sandbox_handle(&self) -> SandboxHandle {
        self.sandbox.handle().clone()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Logs, configurations and sockets of the lab.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The lab's test PKI (see [`pki`]), in its copy of the configuration.
    pub fn pki_dir(&self) -> PathBuf {
        self.topology.config.join("pki")
    }

    /// Starts the origin server of every origin node, on each of the node's
    /// addresses, at the port of its service's origin URL.
    fn start_origins(
        &mut self,
        site: &BTreeMap<String, ixgate_policy::Config>,
    ) -> Result<(), LabError> {
        let origins: Vec<(String, String, Vec<std::net::IpAddr>)> = self
            .topology
            .nodes
            .iter()
            .filter_map(|node| match &node.role {
                Role::Origin { service } => Some((
                    node.name.clone(),
                    service.clone(),
                    node.interfaces
                        .iter()
                        .flat_map(|i| i.addresses.iter().map(ipnet::IpNet::addr))
                        .collect(),
                )),
                _ => None,
            })
            .collect();
        for (node, service, addresses) in origins {
            let port = site
                .values()
                .flat_map(|config| &config.node.services)
                .find(|s| s.name.as_str() == service)
                .and_then(|s| s.origins.first())
                .map(|url| url.port)
                .ok_or_else(|| LabError::Config {
                    dir: self.topology.config.clone(),
                    message: format!("origin node {node}: no service {service} with an origin URL"),
                })?;
            let dir = self.run_dir.join(&node);
            std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
                path: dir.clone(),
                source,
            })?;
            let pki = self.pki_dir();
            let ready = dir.join("ready");
            let mut args = vec![
                "origin".to_owned(),
                "--name".to_owned(),
                service.clone(),
                "--cert".to_owned(),
                pki.join(format!("{service}-origin.pem"))
                    .to_string_lossy()
                    .into_owned(),
                "--key".to_owned(),
                pki.join(format!("{service}-origin.key"))
                    .to_string_lossy()
                    .into_owned(),
                "--client-ca".to_owned(),
                pki.join(format!("{service}-app-ca.pem"))
                    .to_string_lossy()
                    .into_owned(),
                "--log".to_owned(),
                dir.join(ORIGIN_LOG).to_string_lossy().into_owned(),
                "--ready".to_owned(),
                ready.to_string_lossy().into_owned(),
            ];
            for address in addresses {
                args.extend([
                    "--listen".to_owned(),
                    std::net::SocketAddr::new(address, port).to_string(),
                ]);
            }
            self.start_daemon(&node, "origin", &args, &dir, &ready)?;
        }
        Ok(())
    }

    /// Starts `ixgate-testbed ARGS` in `node` as a daemon of the lab, its
    /// output in `dir/WHAT.out` and `.err`, and waits until it writes
    /// `ready` (or fails, saying so on its standard error).
    fn start_daemon(
        &mut self,
        node: &str,
        what: &str,
        args: &[String],
        dir: &Path,
        ready: &Path,
    ) -> Result<(), LabError> {
        let binary = sibling_binary("ixgate-testbed", "IXGATE_TESTBED_BIN")?;
        let errors = dir.join(format!("{what}.err"));
        let mut command = self
            .sandbox_handle()
            .node_command(node, &binary.to_string_lossy());
        command
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(log_file(&dir.join(format!("{what}.out")))?)
            .stderr(log_file(&errors)?);
        let child = command.spawn().map_err(|source| LabError::Spawn {
            what: format!("the {what} in {node}"),
            source,
        })?;
        self.daemons.push(child);
        wait::until(
            ORIGIN_DEADLINE,
            &format!("the {what} in {node} to listen"),
            || {
                if ready.exists() {
                    Ok(())
                } else {
                    let errors = std::fs::read_to_string(&errors).unwrap_or_default();
                    if errors.is_empty() {
                        Err(NotYet::Pending("not ready".into()))
                    } else {
                        Err(NotYet::Failed(errors))
                    }
                }
            },
        )
    }

    /// Starts a plain service (TCP greeting unless `udp_only`, UDP echo)
    /// on `listen` in `node`: something for the firewall to let through or
    /// not.
    pub fn start_service(
        &mut self,
        node: &str,
        listen: SocketAddr,
        udp_only: bool,
    ) -> Result<(), LabError> {
        self.check_node(node)?;
        let dir = self.run_dir.join(node);
        std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
            path: dir.clone(),
            source,
        })?;
        let what = format!("serve-{}", listen.port());
        let ready = dir.join(format!("{what}.ready"));
        let mut args = vec![
            "serve".to_owned(),
            "--listen".to_owned(),
            listen.to_string(),
            "--ready".to_owned(),
            ready.to_string_lossy().into_owned(),
        ];
        if udp_only {
            args.push("--udp-only".to_owned());
        }
        self.start_daemon(node, &what, &args, &dir, &ready)
    }

    /// Probes a service from `node` (see [`crate::probe`]).
    pub fn probe(
        &self,
        node: &str,
        transport: Transport,
        target: SocketAddr,
        count: u32,
        interval: Duration,
        timeout: Duration,
    ) -> Result<ProbeReport, LabError> {
        let binary = sibling_binary("ixgate-testbed", "IXGATE_TESTBED_BIN")?;
        let transport = match transport {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        };
        let output = self.exec(
            node,
            &binary.to_string_lossy(),
            &[
                "probe",
                "--transport",
                transport,
                "--target",
                &target.to_string(),
                "--count",
                &count.to_string(),
                "--interval-ms",
                &interval.as_millis().to_string(),
                "--timeout-ms",
                &timeout.as_millis().to_string(),
            ],
        )?;
        serde_json::from_slice(&output.stdout).map_err(|error| LabError::Router {
            router: node.to_owned(),
            message: format!("the probe printed no report: {error}"),
        })
    }

    /// An anycast service behind `node`'s firewall: `service`'s address on
    /// the node's loopback, and the route back to `customers` via
    /// `gateway` (the node learns no routes; placing addresses and routes
    /// is the policy-routing issue's). TCP and UDP on it are the
    /// appliance's proxy (UDP where the service has HTTP/3). Returns once
    /// `client` gets a TCP answer, that is once the telcos route the
    /// anycast prefix to a node.
    pub fn start_anycast_service(
        &mut self,
        node: &str,
        service: SocketAddr,
        customers: &str,
        gateway: &str,
        client: &str,
    ) -> Result<(), LabError> {
        let address = match service.ip() {
            std::net::IpAddr::V4(v4) => format!("{v4}/32"),
            std::net::IpAddr::V6(v6) => format!("{v6}/128"),
        };
        self.exec(node, "ip", &["addr", "add", &address, "dev", "lo"])?;
        self.exec(node, "ip", &["route", "add", customers, "via", gateway])?;
        wait::until(ANYCAST_DEADLINE, "a first TCP answer", || {
            let report = self
                .probe(
                    client,
                    Transport::Tcp,
                    service,
                    1,
                    Duration::ZERO,
                    Duration::from_millis(500),
                )
                .map_err(|error| NotYet::Failed(error.to_string()))?;
            if report.succeeded == 1 {
                Ok(())
            } else {
                Err(NotYet::Pending(format!("{report:?}")))
            }
        })
    }

    /// Starts `ixgate run` in `node` with the configuration in `dir`.
    fn start_appliance(&mut self, node: &str, dir: &Path) -> Result<(), LabError> {
        let binary = sibling_binary("ixgate", "IXGATE_BIN")?;
        let run_dir = self.run_dir.join(node);
        std::fs::create_dir_all(&run_dir).map_err(|source| LabError::Io {
            path: run_dir.clone(),
            source,
        })?;
        let socket = self.control_socket(node);
        // Root's uid, but only the capabilities the systemd unit grants
        // (packaging/systemd/ixgate.service): whatever needs more fails here.
        let mut command = self.sandbox_handle().node_command(node, "setpriv");
        command
            .arg(format!("--bounding-set=-all,{APPLIANCE_CAPABILITIES}"))
            .arg("--inh-caps=-all")
            .arg("--")
            .arg(&binary)
            .arg("run")
            .arg("--config")
            .arg(dir)
            .arg("--control-socket")
            .arg(&socket)
            .stdin(std::process::Stdio::null())
            .stdout(log_file(&run_dir.join("ixgate.out"))?)
            .stderr(log_file(&run_dir.join("ixgate.err"))?);
        let child = command.spawn().map_err(|source| LabError::Spawn {
            what: format!("ixgate in {node}"),
            source,
        })?;
        self.appliances.insert(node.to_owned(), child);
        wait::until(
            ORIGIN_DEADLINE,
            &format!("ixgate in {node} to answer"),
            || {
                if socket.exists() {
                    Ok(())
                } else {
                    let errors =
                        std::fs::read_to_string(run_dir.join("ixgate.err")).unwrap_or_default();
                    if errors.is_empty() {
                        Err(NotYet::Pending("no control socket yet".into()))
                    } else {
                        Err(NotYet::Failed(errors))
                    }
                }
            },
        )
    }

    /// Sends SIGTERM to the appliance in `node` (by PID) and returns at
    /// once: its graceful shutdown can then be watched from the telcos.
    pub fn terminate_appliance(&self, node: &str) -> Result<(), LabError> {
        let nsenter = self
            .appliances
            .get(node)
            .ok_or_else(|| LabError::NoSuchNode(node.to_owned()))?;
        for pid in daemon_pids(nsenter) {
            let mut kill = std::process::Command::new("kill");
            kill.args(["-TERM", &pid]);
            SandboxHandle::run(kill)?;
        }
        Ok(())
    }

    /// The control socket of the appliance in `node`.
    pub fn control_socket(&self, node: &str) -> PathBuf {
        self.run_dir.join(node).join("ctl.sock")
    }

    /// The process ID of `ixgate run` in `node` (as this host sees it).
    pub fn appliance_pid(&self, node: &str) -> Result<u32, LabError> {
        let socket = self.control_socket(node).to_string_lossy().into_owned();
        let entries = std::fs::read_dir("/proc").map_err(|source| LabError::Io {
            path: "/proc".into(),
            source,
        })?;
        entries
            .flatten()
            .find_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                // Not the `ip netns exec` and `setpriv` that started it.
                let ixgate = !cmdline.starts_with("setpriv") && !cmdline.contains("netns");
                (ixgate && cmdline.contains(" run --config ") && cmdline.contains(&socket))
                    .then_some(pid)
            })
            .ok_or_else(|| LabError::Router {
                router: node.to_owned(),
                message: "no ixgate run process".into(),
            })
    }

    /// Rewrites `node`'s node file (`ixgate.toml` of the lab's copy of the
    /// configuration) with `edit`, then has the appliance reload it.
    pub fn reconfigure(
        &self,
        node: &str,
        edit: impl FnOnce(&str) -> String,
    ) -> Result<serde_json::Value, LabError> {
        let file = self.run_dir.join("config").join(node).join("ixgate.toml");
        let io = |source| LabError::Io {
            path: file.clone(),
            source,
        };
        let text = std::fs::read_to_string(&file).map_err(io)?;
        std::fs::write(&file, edit(&text)).map_err(io)?;
        self.ctl(node, &["reload"])
    }

    /// `ixgate ctl --json ARGS` against the appliance in `node`.
    pub fn ctl(&self, node: &str, args: &[&str]) -> Result<serde_json::Value, LabError> {
        let binary = sibling_binary("ixgate", "IXGATE_BIN")?;
        let mut command = std::process::Command::new(binary);
        command
            .arg("ctl")
            .arg("--socket")
            .arg(self.control_socket(node))
            .arg("--json")
            .args(args);
        let output = SandboxHandle::run(command)?;
        serde_json::from_slice(&output.stdout).map_err(|error| LabError::Router {
            router: node.to_owned(),
            message: format!("ixgate ctl printed no JSON: {error}"),
        })
    }

    /// The metrics of the appliance in `node`, from its management address.
    pub fn metrics(&self, node: &str) -> Result<Metrics, LabError> {
        let address = self
            .site
            .get(node)
            .map(|config| config.node.management.metrics)
            .ok_or_else(|| LabError::NoSuchNode(node.to_owned()))?;
        let url = format!("http://{address}/metrics");
        let output = self.exec(node, "curl", &["--silent", "--show-error", &url])?;
        Ok(Metrics(
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ))
    }

    /// Every request the origin in `node` has received, oldest first.
    pub fn origin_requests(&self, node: &str) -> Result<Vec<OriginRequest>, LabError> {
        self.check_node(node)?;
        let path = self.run_dir.join(node).join(ORIGIN_LOG);
        let text = std::fs::read_to_string(&path).map_err(|source| LabError::Io {
            path: path.clone(),
            source,
        })?;
        text.lines()
            .map(|line| {
                serde_json::from_str(line).map_err(|error| LabError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(error),
                })
            })
            .collect()
    }

    /// Makes `request` from `node` with curl, or over HTTP/3 with the
    /// testbed's own client (curl here has none).
    pub fn request(&self, node: &str, request: &ClientRequest) -> Result<ClientOutcome, LabError> {
        if request.http == crate::client::HttpVersion::Http3 {
            let run = crate::h3::H3Run {
                request: request.clone(),
                count: 1,
                move_to: None,
                stall: None,
            };
            return Ok(self.h3(node, &run)?.first_outcome());
        }
        let mut curl = self.command(node, "curl")?;
        curl.args(request.curl_args());
        let output = curl.output().map_err(|source| LabError::Spawn {
            what: "curl".into(),
            source,
        })?;
        Ok(crate::client::outcome(
            output.status.code(),
            &String::from_utf8_lossy(&output.stdout),
            &String::from_utf8_lossy(&output.stderr),
        ))
    }

    /// `ixgate-testbed h3` in `node`, for a caller that runs it alongside
    /// something else; its standard output is the report.
    pub fn h3_command(&self, node: &str, run: &crate::h3::H3Run) -> Result<Command, LabError> {
        let binary = sibling_binary("ixgate-testbed", "IXGATE_TESTBED_BIN")?;
        let mut command = self.command(node, &binary.to_string_lossy())?;
        let run = serde_json::to_string(run).map_err(|error| LabError::Router {
            router: node.to_owned(),
            message: error.to_string(),
        })?;
        command.args(["h3", "--run", &run]);
        Ok(command)
    }

    /// HTTP/3 requests from `node` on one QUIC connection (see
    /// [`crate::h3`]).
    pub fn h3(&self, node: &str, run: &crate::h3::H3Run) -> Result<crate::h3::H3Report, LabError> {
        let mut command = self.h3_command(node, run)?;
        let output = command.output().map_err(|source| LabError::Spawn {
            what: "ixgate-testbed h3".into(),
            source,
        })?;
        serde_json::from_slice(&output.stdout).map_err(|error| LabError::Router {
            router: node.to_owned(),
            message: format!(
                "ixgate-testbed h3 printed no report ({error}): {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }

    /// `ixgate-testbed load` from `node`: app clients with a certificate
    /// loading `target` (see [`crate::load`]).
    pub fn load_command(
        &self,
        node: &str,
        target: &LoadTarget,
        mode: LoadMode,
    ) -> Result<Command, LabError> {
        let binary = sibling_binary("ixgate-testbed", "IXGATE_TESTBED_BIN")?;
        let mut command = self.command(node, &binary.to_string_lossy())?;
        command.args(target.args(mode));
        Ok(command)
    }

    /// Runs `mode` against `target` from `node` and reports what it got.
    pub fn load(
        &self,
        node: &str,
        target: &LoadTarget,
        mode: LoadMode,
    ) -> Result<LoadReport, LabError> {
        let output = SandboxHandle::run(self.load_command(node, target, mode)?)?;
        serde_json::from_slice(&output.stdout).map_err(|error| LabError::Router {
            router: node.to_owned(),
            message: format!("the load generator printed no report: {error}"),
        })
    }

    /// Makes `session` from `node` with `openssl s_client`, saving the TLS
    /// session it gets and offering the one it was given.
    pub fn session_request(
        &self,
        node: &str,
        session: &SessionRequest,
    ) -> Result<SessionOutcome, LabError> {
        self.open_session(node, session)?.finish()
    }

    /// Starts `session` from `node` and returns once its handshake is over
    /// (done or refused), before the request is sent: a connection that is
    /// established while the test changes something.
    pub fn open_session(
        &self,
        node: &str,
        session: &SessionRequest,
    ) -> Result<OpenSession, LabError> {
        use std::io::BufRead as _;
        // s_client waits for the server to close: bound it.
        let spawn_error = |source| LabError::Spawn {
            what: "openssl s_client".into(),
            source,
        };
        // Standard output and error on one pipe: what a failed handshake
        // says comes in the transcript.
        let (reader, writer) = std::io::pipe().map_err(spawn_error)?;
        let mut s_client = self.command(node, "timeout")?;
        s_client
            .args(["--kill-after=2", "30", "openssl"])
            .args(session.s_client_args())
            .stdin(std::process::Stdio::piped())
            .stdout(writer.try_clone().map_err(spawn_error)?)
            .stderr(writer);
        let child = s_client.spawn().map_err(spawn_error)?;
        // The pipe ends at the child's exit only once ours are closed.
        drop(s_client);
        let mut stdout = std::io::BufReader::new(reader);
        let mut seen = String::new();
        loop {
            let before = seen.len();
            match stdout.read_line(&mut seen) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = &seen[before..];
                    if line.starts_with("New,") || line.starts_with("Reused,") {
                        break;
                    }
                }
            }
        }
        Ok(OpenSession {
            child,
            stdout,
            seen,
            request: session.http_request(),
        })
    }

    fn check_node(&self, node: &str) -> Result<(), LabError> {
        if self.topology.node(node).is_some() {
            Ok(())
        } else {
            Err(LabError::NoSuchNode(node.to_owned()))
        }
    }

    /// A command that will run `program` in `node`'s namespace.
    pub fn command(&self, node: &str, program: &str) -> Result<Command, LabError> {
        self.check_node(node)?;
        Ok(self.sandbox_handle().node_command(node, program))
    }

    /// Runs `program ARGS` in `node` to completion; a failing exit status
    /// is an error carrying its standard error.
    pub fn exec(&self, node: &str, program: &str, args: &[&str]) -> Result<Output, LabError> {
        let mut command = self.command(node, program)?;
        command.args(args);
        SandboxHandle::run(command)
    }

    /// Sends `flood` from attacker node `node` and reports what left its
    /// interface. Returns when the packet count or the duration is reached.
    pub fn flood(&self, node: &str, flood: &Flood) -> Result<FloodReport, LabError> {
        match self.topology.node(node).map(|n| &n.role) {
            Some(Role::Attacker) => {}
            Some(_) => return Err(LabError::NotAnAttacker(node.to_owned())),
            None => return Err(LabError::NoSuchNode(node.to_owned())),
        }
        let target = flood.target.to_string();
        let route = self.json(node, &["-j", "route", "get", &target])?;
        let device = route[0]["dev"].as_str().unwrap_or_default().to_owned();
        let gateway = route[0]["gateway"].as_str().unwrap_or(&target).to_owned();
        // Resolve the gateway's MAC: trafgen writes whole Ethernet frames.
        let gateway_mac = wait::until(
            NEIGHBOUR_DEADLINE,
            &format!("{node} to resolve {gateway}"),
            || {
                let _ = self.exec(node, "ping", &["-n", "-q", "-c", "1", "-W", "1", &gateway]);
                let neighbour = self
                    .json(
                        node,
                        &["-j", "neigh", "show", "to", &gateway, "dev", &device],
                    )
                    .map_err(|error| NotYet::Failed(error.to_string()))?;
                neighbour[0]["lladdr"]
                    .as_str()
                    .and_then(parse_mac)
                    .ok_or_else(|| NotYet::Pending(neighbour.to_string()))
            },
        )?;
        let link = self.json(node, &["-j", "link", "show", "dev", &device])?;
        let own_mac = link[0]["address"]
            .as_str()
            .and_then(parse_mac)
            .ok_or_else(|| LabError::Router {
                router: node.to_owned(),
                message: format!("no MAC address on {device}: {link}"),
            })?;

        let number = self
            .floods
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let config = self.run_dir.join(node).join(format!("flood-{number}.cfg"));
        if let Some(dir) = config.parent() {
            std::fs::create_dir_all(dir).map_err(|source| LabError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        std::fs::write(&config, flood.trafgen_config(own_mac, gateway_mac)).map_err(|source| {
            LabError::Io {
                path: config.clone(),
                source,
            }
        })?;

        let started_at = std::time::SystemTime::now();
        let started = std::time::Instant::now();
        let mut trafgen = self.command(node, "timeout")?;
        trafgen
            .args(["--signal=INT", "--kill-after=2"])
            .arg(format!("{:.3}s", flood.max_duration.as_secs_f64()))
            .args(["trafgen", "--dev", &device, "--conf"])
            .arg(&config)
            .args(flood.trafgen_args());
        let output = trafgen.output().map_err(|source| LabError::Spawn {
            what: "trafgen".into(),
            source,
        })?;
        // 124: `timeout` ended it at the duration bound, as asked.
        if !output.status.success() && output.status.code() != Some(124) {
            return Err(LabError::CommandFailed {
                command: format!("{trafgen:?}"),
                status: output.status.code(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        let elapsed = started.elapsed();
        // trafgen's own count, not the interface's: the attacker's kernel
        // also sends (RSTs to SYN-ACKs for the sources it owns).
        let stdout = String::from_utf8_lossy(&output.stdout);
        let packets_sent =
            crate::flood::packets_outgoing(&stdout).ok_or_else(|| LabError::CommandFailed {
                command: format!("{trafgen:?}"),
                status: output.status.code(),
                stderr: format!("no \"packets outgoing\" in its output: {}", stdout.trim()),
            })?;
        Ok(FloodReport {
            packets_sent,
            started: started_at,
            elapsed,
        })
    }

    /// Packets sent so far on `device` of `node`.
    pub fn tx_packets(&self, node: &str, device: &str) -> Result<u64, LabError> {
        let link = self.json(node, &["-j", "-s", "link", "show", "dev", device])?;
        link[0]["stats64"]["tx"]["packets"]
            .as_u64()
            .ok_or_else(|| LabError::Router {
                router: node.to_owned(),
                message: format!("no TX counter on {device}: {link}"),
            })
    }

    /// Waits until `device` of `node` has sent 10 000 packets more than
    /// `sent_before`: a flood started in another thread is under way.
    pub fn wait_for_flood(
        &self,
        node: &str,
        device: &str,
        sent_before: u64,
    ) -> Result<(), LabError> {
        wait::until(Duration::from_secs(10), "the flood to start", || {
            let sent = self
                .tx_packets(node, device)
                .map_err(|error| NotYet::Failed(error.to_string()))?;
            if sent >= sent_before + 10_000 {
                Ok(())
            } else {
                Err(NotYet::Pending(format!("{} sent", sent - sent_before)))
            }
        })
    }

    /// `ip ARGS` in `node`, parsed as JSON.
    fn json(&self, node: &str, args: &[&str]) -> Result<serde_json::Value, LabError> {
        let output = self.exec(node, "ip", args)?;
        serde_json::from_slice(&output.stdout).map_err(|error| LabError::Router {
            router: node.to_owned(),
            message: format!("ip {} printed no JSON: {error}", args.join(" ")),
        })
    }

    /// Stops the router in `node` (SIGTERM to its daemons, by PID) and
    /// starts it again with the same configuration: a telco's reboot.
    pub fn restart_router(&mut self, node: &str) -> Result<(), LabError> {
        let handle = self.sandbox_handle();
        let run_dir = self.run_dir.join(node);
        let run = self
            .router_runs
            .get_mut(node)
            .ok_or_else(|| LabError::NoSuchNode(node.to_owned()))?;
        for child in &mut run.children {
            stop_daemon(child)?;
        }
        let (router, children) = Router::start(run.software, &run.setup, &handle, &run_dir)?;
        run.children = children;
        self.routers.insert(node.to_owned(), router);
        Ok(())
    }

    /// The ixgate configuration of each ixgate node, by node.
    pub fn site(&self) -> &BTreeMap<String, ixgate_policy::Config> {
        &self.site
    }

    /// The router running in `node` (a telco, or an ixgate stand-in).
    pub fn router(&self, node: &str) -> Result<&Router, LabError> {
        self.routers
            .get(node)
            .ok_or_else(|| LabError::NoSuchNode(node.to_owned()))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Ending the sandbox ends every lab process; then reap the
        // `nsenter`s that waited on them.
        self.sandbox.end();
        let routers = self
            .router_runs
            .values_mut()
            .flat_map(|run| run.children.iter_mut());
        for daemon in self
            .daemons
            .iter_mut()
            .chain(routers)
            .chain(self.appliances.values_mut())
        {
            let _ = daemon.wait();
        }
        if self.keep_run_dir || std::thread::panicking() {
            eprintln!(
                "lab {} failed; its logs are in {}",
                self.name,
                self.run_dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}

/// A Prometheus text exposition, as an appliance serves it.
#[derive(Clone, Debug)]
pub struct Metrics(pub String);

impl Metrics {
    /// The value of the sample `name{labels}` (exactly as exposed), if any.
    pub fn value(&self, name_and_labels: &str) -> Option<f64> {
        self.0.lines().find_map(|line| {
            line.strip_prefix(name_and_labels)
                .filter(|rest| rest.starts_with(' '))
                .and_then(|rest| rest.trim().parse().ok())
        })
    }
}

impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `openssl s_client` connection whose handshake is over and whose
/// request is not sent yet (see [`Lab::open_session`]).
#[derive(Debug)]
pub struct OpenSession {
    child: std::process::Child,
    stdout: std::io::BufReader<std::io::PipeReader>,
    seen: String,
    request: String,
}

impl OpenSession {
    /// Writes `bytes` to the server; `false` once the connection is gone
    /// (s_client ended when the server closed it).
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        use std::io::Write as _;
        self.child
            .stdin
            .as_mut()
            .is_some_and(|stdin| stdin.write_all(bytes).and_then(|()| stdin.flush()).is_ok())
    }

    /// Waits, sending nothing more, until the server closes the connection
    /// (or s_client's own 30 s bound ends it); returns what it printed,
    /// the server's bytes included (binary frames kept where they are
    /// valid UTF-8, as frame headers are).
    pub fn closed(mut self) -> Result<String, LabError> {
        use std::io::Read as _;
        let mut rest = Vec::new();
        let _ = self.stdout.read_to_end(&mut rest);
        self.seen.push_str(&String::from_utf8_lossy(&rest));
        self.child.wait().map_err(|source| LabError::Spawn {
            what: "openssl s_client".into(),
            source,
        })?;
        Ok(self.seen)
    }

    /// Sends the request, reads the answer to the close.
    pub fn finish(mut self) -> Result<SessionOutcome, LabError> {
        use std::io::{Read as _, Write as _};
        if let Some(mut stdin) = self.child.stdin.take() {
            // A refused handshake has closed the pipe: nothing to send.
            let _ = stdin.write_all(self.request.as_bytes());
        }
        let _ = self.stdout.read_to_string(&mut self.seen);
        self.child.wait().map_err(|source| LabError::Spawn {
            what: "openssl s_client".into(),
            source,
        })?;
        Ok(crate::client::session_outcome(&self.seen))
    }
}
