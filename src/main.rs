//! `ixgate`: the appliance binary.

mod check;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::check::NodeReport;

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
}

const EXIT_UNREADABLE: u8 = 2;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { config, json } => check(&config, json),
    }
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
