//! `ixgate`: the appliance binary.

mod check;
mod control;
mod controller;
mod ctl;
mod firewall;
mod metrics;
mod routing;
mod run;
mod table;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use ipnet::IpNet;

use crate::check::NodeReport;
use crate::control::{FlowSpec, Request};

#[derive(Debug, Parser)]
#[command(
    name = "ixgate",
    version,
    about = "BGP-anycast mTLS API gateway for Internet Exchange Points"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration and print what it means: peers, prepends,
    /// services and mitigation rights, or every error with its position.
    ///
    /// DIR holds a node file (ixgate.toml), or subdirectories that do (a
    /// site of several nodes). Exit status: 0 valid, 1 invalid, 2 unreadable.
    Check {
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Run the appliance: BGP sessions with the telcos, announcing the
    /// anycast prefixes, until SIGTERM (then graceful shutdown, RFC 8326).
    Run {
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
        /// Override the configuration's control socket.
        #[arg(long, value_name = "PATH")]
        control_socket: Option<PathBuf>,
    },
    /// Run only the mTLS proxy of the configuration: no BGP, no firewall,
    /// no control socket. For trying a proxy configuration and for
    /// benchmarks; SIGHUP reloads it.
    Proxy {
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
    },
    /// Ask a running appliance.
    Ctl {
        /// The control socket (default: the one in --config's node file).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        #[arg(long, value_name = "DIR")]
        config: Option<PathBuf>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: CtlCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    Show {
        #[command(subcommand)]
        what: Show,
    },
    /// Withdraw the anycast prefixes from every telco, or from one.
    Drain {
        #[arg(long)]
        telco: Option<String>,
    },
    /// Announce them again, to every telco or to one.
    Undrain {
        #[arg(long)]
        telco: Option<String>,
    },
    /// Originate or take back a Flowspec rule or an RTBH route.
    Mitigate {
        #[command(subcommand)]
        action: MitigateAction,
    },
    /// Read the configuration again (as SIGHUP does): certificates, CAs,
    /// CRLs, ticket keys and services change without dropping
    /// connections; a bad configuration is refused whole.
    Reload,
}

#[derive(Debug, Subcommand)]
enum Show {
    /// Every BGP session.
    Peers,
    /// What one session sends and receives.
    Routes { peer: IpAddr },
    /// Drain state, Flowspec rules and blackholes in force.
    Mitigations,
    /// The firewall's counters per service address and class, with rates.
    Counters,
    /// Floods going on, and the last ones that ended.
    Floods,
    /// Policy routing: the desired and the actual addresses, routes and
    /// rules side by side.
    Routing,
    /// The bank services: names, origins and their health.
    Services,
}

#[derive(Debug, Subcommand)]
enum MitigateAction {
    Add {
        #[command(subcommand)]
        what: Mitigation,
    },
    Remove {
        #[command(subcommand)]
        what: Mitigation,
    },
}

#[derive(Debug, Clone, Subcommand)]
enum Mitigation {
    /// A Flowspec rule to the telcos that accept it.
    Flowspec {
        #[arg(long)]
        dst: IpNet,
        #[arg(long)]
        src: Option<IpNet>,
        #[arg(long)]
        proto: Option<u8>,
        #[arg(long)]
        dport: Option<u16>,
        /// Bytes per second let through; 0 (the default) discards.
        #[arg(long, default_value_t = 0.0)]
        rate: f32,
    },
    /// A destination to blackhole (RTBH) at the telcos that accept it.
    Blackhole { prefix: IpNet },
}

const EXIT_UNREADABLE: u8 = 2;

/// The appliance's events, decisions and warnings: one JSON object a line
/// on standard output (journald keeps them; fields at the top level).
fn json_logs() {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stdout)
        .init();
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Check { config, json } => return check(&config, json),
        Command::Run {
            config,
            control_socket,
        } => {
            json_logs();
            run::run(&config, control_socket).map_err(anyhow::Error::from)
        }
        Command::Proxy { config } => {
            json_logs();
            run::proxy_only(&config).map_err(anyhow::Error::from)
        }
        Command::Ctl {
            socket,
            config,
            json,
            command,
        } => ctl(socket, config.as_deref(), json, command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ixgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn ctl(
    socket: Option<PathBuf>,
    config: Option<&Path>,
    json: bool,
    command: CtlCommand,
) -> anyhow::Result<()> {
    let socket = match (socket, config) {
        (Some(socket), _) => socket,
        (None, Some(dir)) => {
            ixgate_policy::load(dir)
                .map_err(|error| anyhow::anyhow!("{error}"))
                .context("reading the configuration for its control socket")?
                .node
                .management
                .control_socket
        }
        (None, None) => bail!("give --socket PATH or --config DIR"),
    };
    let mitigation = |what: Mitigation, add: bool| match (what, add) {
        (
            Mitigation::Flowspec {
                dst,
                src,
                proto,
                dport,
                rate,
            },
            add,
        ) => {
            let flow = FlowSpec {
                destination: dst,
                source: src,
                protocol: proto,
                destination_port: dport,
                tcp_flags: None,
                packet_length: None,
                rate_bytes: rate,
            };
            if add {
                Request::FlowAdd(flow)
            } else {
                Request::FlowRemove(flow)
            }
        }
        (Mitigation::Blackhole { prefix }, true) => Request::BlackholeAdd { prefix },
        (Mitigation::Blackhole { prefix }, false) => Request::BlackholeRemove { prefix },
    };
    let request = match command {
        CtlCommand::Show { what: Show::Peers } => Request::ShowPeers,
        CtlCommand::Show {
            what: Show::Routes { peer },
        } => Request::ShowRoutes { peer },
        CtlCommand::Show {
            what: Show::Mitigations,
        } => Request::ShowMitigations,
        CtlCommand::Show {
            what: Show::Counters,
        } => Request::ShowCounters,
        CtlCommand::Show { what: Show::Floods } => Request::ShowFloods,
        CtlCommand::Show {
            what: Show::Routing,
        } => Request::ShowRouting,
        CtlCommand::Show {
            what: Show::Services,
        } => Request::ShowServices,
        CtlCommand::Reload => Request::Reload,
        CtlCommand::Drain { telco } => Request::Drain { telco },
        CtlCommand::Undrain { telco } => Request::Undrain { telco },
        CtlCommand::Mitigate {
            action: MitigateAction::Add { what },
        } => mitigation(what, true),
        CtlCommand::Mitigate {
            action: MitigateAction::Remove { what },
        } => mitigation(what, false),
    };
    let answer = control::ask(&socket, &request)?;
    if !answer.ok {
        bail!("{}", answer.error.unwrap_or_default());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&answer.data)?);
        return Ok(());
    }
    match request {
        Request::ShowPeers => print!("{}", ctl::peers(&answer.data)),
        Request::ShowRoutes { peer } => print!("{}", ctl::routes(peer, &answer.data)),
        Request::ShowMitigations => print!("{}", ctl::mitigations(&answer.data)),
        Request::ShowCounters => print!("{}", ctl::counters(&answer.data)),
        Request::ShowFloods => print!("{}", ctl::floods(&answer.data)),
        Request::ShowRouting => print!("{}", ctl::routing(&answer.data)),
        Request::ShowServices => print!("{}", ctl::services(&answer.data)),
        _ => println!("{}", ctl::text(&answer.data)),
    }
    Ok(())
}

fn check(dir: &std::path::Path, json: bool) -> ExitCode {
    let reports: Vec<NodeReport> = match ixgate_policy::node_dirs(dir) {
        Ok(dirs) if !dirs.is_empty() => dirs.iter().map(|dir| NodeReport::check(dir)).collect(),
        // No node file anywhere: let the loader say what it could not read.
        Ok(_) | Err(_) => vec![NodeReport::check(dir)],
    };
    if json {
        match serde_json::to_string_pretty(&serde_json::json!({ "nodes": reports })) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("ixgate: cannot encode the report: {error}");
                return ExitCode::from(EXIT_UNREADABLE);
            }
        }
    } else {
        let text: Vec<String> = reports.iter().map(NodeReport::render).collect();
        print!("{}", text.join("\n"));
    }
    ExitCode::from(
        reports
            .iter()
            .map(NodeReport::exit_code)
            .max()
            .unwrap_or(EXIT_UNREADABLE),
    )
}
