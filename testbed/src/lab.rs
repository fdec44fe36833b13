//! A running lab: its sandbox, network, routers and run directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use serde::{Deserialize, Serialize};

use crate::flood::{Flood, FloodReport, parse_mac};
use crate::routers::Router;
use crate::sandbox::{Sandbox, SandboxHandle, runs_root, unique_run_name};
use crate::topology::{IxgateRuns, Role, RouterSoftware, Topology};
use crate::wait::{self, NotYet};
use crate::{LabError, net, peering, pki};

/// How long an attacker may take to resolve its gateway's MAC address.
const NEIGHBOUR_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

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
            daemons: Vec::new(),
            sandbox,
            floods: std::sync::atomic::AtomicU32::new(0),
            keep_run_dir: true,
        };
        lab.write_state()?;
        pki::generate(&lab.pki_dir_created()?)?;
        let handle = lab.sandbox_handle();
        net::build(&handle, &lab.topology)?;

        let site = peering::load_site(&lab.topology)?;
        for node in &lab.topology.nodes {
            let (software, setup) = match &node.role {
                Role::Telco { software, telco } => {
                    (*software, peering::telco_setup(node, telco, &site)?)
                }
                Role::Ixgate {
                    runs: IxgateRuns::GobgpStandIn,
                    ..
                } => {
                    let config = site
                        .get(&node.name)
                        .ok_or_else(|| LabError::NoSuchNode(node.name.clone()))?;
                    (
                        RouterSoftware::Gobgp,
                        peering::stand_in_setup(node, config)?,
                    )
                }
                _ => continue,
            };
            let (router, children) =
                Router::start(software, &setup, &handle, &lab.run_dir.join(&node.name))?;
            lab.daemons.extend(children);
            lab.routers.insert(node.name.clone(), router);
        }
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

    /// The lab's test PKI (see [`pki`]).
    pub fn pki_dir(&self) -> PathBuf {
        self.run_dir.join("pki")
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

        let sent_before = self.tx_packets(node, &device)?;
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
        Ok(FloodReport {
            packets_sent: self.tx_packets(node, &device)?.saturating_sub(sent_before),
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

    /// `ip ARGS` in `node`, parsed as JSON.
    fn json(&self, node: &str, args: &[&str]) -> Result<serde_json::Value, LabError> {
        let output = self.exec(node, "ip", args)?;
        serde_json::from_slice(&output.stdout).map_err(|error| LabError::Router {
            router: node.to_owned(),
            message: format!("ip {} printed no JSON: {error}", args.join(" ")),
        })
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
        for daemon in &mut self.daemons {
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
