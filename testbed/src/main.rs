//! `ixgate-testbed`: bring labs up and down, run commands in their nodes,
//! tell the demo story, and write the test PKI.

mod demo;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use std::time::Duration;

use ixgate_testbed::sandbox::runs_root;
use ixgate_testbed::topology::Topology;
use ixgate_testbed::wait::{self, NotYet};
use ixgate_testbed::{Lab, LabState};

#[derive(Debug, Parser)]
#[command(name = "ixgate-testbed", about = "Network-namespace labs for ixgate")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the lab of TOPOLOGY and keep it until interrupted (Ctrl-C);
    /// the lab dies with this process, however it ends.
    Up { topology: PathBuf },
    /// Tell the demo story in the lab of TOPOLOGY, then tear it down.
    Demo { topology: PathBuf },
    /// Stop every lab on this host (or --lab NAME) and remove its run
    /// directory.
    Down {
        #[arg(long)]
        lab: Option<String>,
    },
    /// Run CMD in NODE of the running lab (or of --lab NAME).
    Exec {
        #[arg(long)]
        lab: Option<String>,
        node: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// List the labs on this host.
    Status,
    /// Serve as a bank's origin (run by labs inside origin nodes): HTTPS
    /// on every --listen address, each request logged as a JSON line.
    Origin {
        #[arg(long)]
        name: String,
        #[arg(long, required = true)]
        listen: Vec<std::net::SocketAddr>,
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        client_ca: Option<PathBuf>,
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        ready: PathBuf,
    },
    /// Answer TCP connections with a line and echo UDP datagrams on
    /// --listen (run by labs inside nodes, for the firewall's tests).
    Serve {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        ready: PathBuf,
        /// Echo UDP only: TCP on that address is someone else's (the
        /// appliance's proxy).
        #[arg(long)]
        udp_only: bool,
    },
    /// Probe a `serve` COUNT times and print what was answered, as JSON.
    Probe {
        #[arg(long, value_enum)]
        transport: ProbeTransport,
        #[arg(long)]
        target: std::net::SocketAddr,
        #[arg(long, default_value_t = 10)]
        count: u32,
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
    },
    /// HTTP/3 requests on one QUIC connection (RUN: an `h3::H3Run` as
    /// JSON); prints what they got, as JSON.
    H3 {
        #[arg(long)]
        run: String,
    },
    /// Write the test PKI (CAs, good and bad clients, CRLs, server and
    /// origin certificates, ticket keys) into DIR.
    Pki { dir: PathBuf },
    /// Load a proxy as app clients with a certificate (the proxy
    /// benchmark's generator) and print what they got, as JSON.
    Load(LoadArgs),
}

#[derive(Debug, clap::Args)]
struct LoadArgs {
    #[arg(long, value_enum)]
    mode: LoadKind,
    #[arg(long)]
    connect: std::net::SocketAddr,
    #[arg(long)]
    server_name: String,
    #[arg(long)]
    ca: PathBuf,
    #[arg(long)]
    cert: PathBuf,
    #[arg(long)]
    key: PathBuf,
    /// Handshakes to make, or connections to open.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Connections at a time (handshakes, requests).
    #[arg(long, default_value_t = 1)]
    concurrency: u64,
    /// How long requests are sent.
    #[arg(long, default_value_t = 1000)]
    duration_ms: u64,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LoadKind {
    /// Full handshakes, one request each.
    Full,
    /// Resumed handshakes, one request each.
    Resumed,
    /// Keep-alive requests on `concurrency` connections.
    Requests,
    /// `count` idle connections held until standard input closes.
    Idle,
    /// `count` requests on one connection, each after a line on standard
    /// input; `answered STATUS` printed after each.
    Paced,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ProbeTransport {
    Tcp,
    Udp,
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Up { topology } => up(&topology),
        Command::Down { lab } => down(lab.as_deref()),
        Command::Demo { topology } => {
            demo::run(Topology::load(&topology)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec { lab, node, command } => exec(lab.as_deref(), &node, &command),
        Command::Status => status(),
        Command::Origin {
            name,
            listen,
            cert,
            key,
            client_ca,
            log,
            ready,
        } => {
            ixgate_testbed::origin::run(&ixgate_testbed::origin::OriginConfig {
                name,
                listen,
                certificate: cert,
                private_key: key,
                client_ca,
                log,
                ready,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            listen,
            ready,
            udp_only,
        } => {
            ixgate_testbed::probe::serve(listen, &ready, !udp_only)
                .with_context(|| format!("cannot serve on {listen}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Load(args) => load(args),
        Command::H3 { run } => {
            let run: ixgate_testbed::h3::H3Run = serde_json::from_str(&run).context("the run")?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("tokio runtime")?;
            let report = runtime.block_on(ixgate_testbed::h3::run(&run));
            println!("{}", serde_json::to_string(&report).context("the report")?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Probe {
            transport,
            target,
            count,
            interval_ms,
            timeout_ms,
        } => {
            let transport = match transport {
                ProbeTransport::Tcp => ixgate_testbed::probe::Transport::Tcp,
                ProbeTransport::Udp => ixgate_testbed::probe::Transport::Udp,
            };
            let report = ixgate_testbed::probe::probe(
                transport,
                target,
                count,
                Duration::from_millis(interval_ms),
                Duration::from_millis(timeout_ms),
            );
            println!("{}", serde_json::to_string(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Pki { dir } => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            ixgate_testbed::pki::generate(&dir)?;
            println!("test PKI written to {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn up(topology: &Path) -> anyhow::Result<ExitCode> {
    let lab = Lab::start(Topology::load(topology)?)?;
    println!(
        "lab {} is up; run directory {}",
        lab.name(),
        lab.run_dir().display()
    );
    for node in &lab.topology().nodes {
        let addresses: Vec<String> = node
            .interfaces
            .iter()
            .flat_map(|interface| {
                interface
                    .addresses
                    .iter()
                    .map(move |a| format!("{}={a}", interface.name))
            })
            .collect();
        println!(
            "  {:<9} {:<9} {}",
            node.name,
            role_name(&node.role),
            addresses.join(" ")
        );
    }
    println!("Ctrl-C ends it; `ixgate-testbed exec NODE -- CMD` runs a command in a node.");
    loop {
        std::thread::park();
    }
}

fn role_name(role: &ixgate_testbed::topology::Role) -> String {
    use ixgate_testbed::topology::Role;
    match role {
        Role::Telco { software, .. } => format!("telco/{software}"),
        Role::Ixgate { .. } => "ixgate".into(),
        Role::Transit => "transit".into(),
        Role::Origin { .. } => "origin".into(),
        Role::Client => "client".into(),
        Role::Attacker => "attacker".into(),
    }
}

/// Every lab run directory on this host, with its state if it has one.
fn labs() -> anyhow::Result<Vec<(PathBuf, Option<LabState>)>> {
    let root = runs_root();
    let mut labs = Vec::new();
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(labs);
    };
    for entry in entries {
        let dir = entry?.path();
        let state = std::fs::read_to_string(dir.join(LabState::FILE))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        labs.push((dir, state));
    }
    labs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(labs)
}

/// Whether `pid` is alive and is still the process `state` names: a
/// recycled PID must never be signalled.
fn runner_alive(state: &LabState) -> bool {
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", state.runner_pid)).unwrap_or_default();
    let environ = std::fs::read(format!("/proc/{}/environ", state.sandbox_pid)).unwrap_or_default();
    !cmdline.is_empty()
        && environ
            .windows(state.name.len())
            .any(|window| window == state.name.as_bytes())
}

fn status() -> anyhow::Result<ExitCode> {
    let labs = labs()?;
    if labs.is_empty() {
        println!("no labs");
    }
    for (dir, state) in labs {
        match state {
            Some(state) if runner_alive(&state) => println!(
                "{}: up (runner {}, sandbox {}); nodes: {}",
                state.name,
                state.runner_pid,
                state.sandbox_pid,
                state.nodes.join(" ")
            ),
            Some(state) => println!("{}: ended; logs in {}", state.name, dir.display()),
            None => println!("{}: no state; logs only", dir.display()),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How long a lab's runner gets to end after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

fn down(only: Option<&str>) -> anyhow::Result<ExitCode> {
    for (dir, state) in labs()? {
        let name = state
            .as_ref()
            .map_or_else(|| dir.to_string_lossy().into_owned(), |s| s.name.clone());
        if only.is_some_and(|only| only != name) {
            continue;
        }
        if let Some(state) = state.as_ref().filter(|state| runner_alive(state)) {
            // The runner owns the lab: ending it ends everything in it.
            signal("TERM", state.runner_pid)?;
            let ended = wait::until(STOP_GRACE, "the lab's runner to end", || {
                if runner_alive(state) {
                    Err(NotYet::Pending(format!(
                        "runner {} still alive",
                        state.runner_pid
                    )))
                } else {
                    Ok(())
                }
            });
            if ended.is_err() {
                signal("KILL", state.runner_pid)?;
            }
            println!("{name}: stopped runner {}", state.runner_pid);
        }
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
        println!("removed {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn signal(name: &str, pid: u32) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()?;
    if !status.success() {
        bail!("kill -{name} {pid}: {status}");
    }
    Ok(())
}

fn exec(lab: Option<&str>, node: &str, command: &[String]) -> anyhow::Result<ExitCode> {
    let running: Vec<LabState> = labs()?
        .into_iter()
        .filter_map(|(_, state)| state)
        .filter(|state| runner_alive(state) && lab.is_none_or(|name| name == state.name))
        .collect();
    let state = match running.as_slice() {
        [one] => one,
        [] => bail!(
            "no running lab{}",
            lab.map(|n| format!(" named {n}")).unwrap_or_default()
        ),
        _ => bail!("several labs are running; name one with --lab"),
    };
    if !state.nodes.iter().any(|name| name == node) {
        bail!(
            "lab {} has no node {node}; its nodes: {}",
            state.name,
            state.nodes.join(" ")
        );
    }
    let (program, args) = command.split_first().context("no command")?;
    let status = state
        .sandbox()
        .node_command(node, program)
        .args(args)
        .status()?;
    Ok(ExitCode::from(
        u8::try_from(status.code().unwrap_or(1)).unwrap_or(1),
    ))
}

/// Runs the load of `args` and prints its report.
fn load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    use ixgate_testbed::load::{LoadMode, LoadTarget};
    let LoadArgs {
        mode,
        connect,
        server_name,
        ca,
        cert,
        key,
        count,
        concurrency,
        duration_ms,
    } = args;
    let mode = match mode {
        LoadKind::Full | LoadKind::Resumed => LoadMode::Handshakes {
            count,
            concurrency,
            resume: matches!(mode, LoadKind::Resumed),
        },
        LoadKind::Requests => LoadMode::Requests {
            connections: concurrency,
            duration: Duration::from_millis(duration_ms),
        },
        LoadKind::Idle => LoadMode::Idle { connections: count },
        LoadKind::Paced => LoadMode::Paced { requests: count },
    };
    let target = LoadTarget {
        address: connect,
        server_name,
        ca,
        certificate: cert,
        key,
    };
    let report = ixgate_testbed::load::run(target, mode)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}
