//! `ixgate-testbed`: lab tooling.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "ixgate-testbed", about = "Network-namespace labs for ixgate")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the test PKI (CAs, good and bad clients, CRLs, server and
    /// origin certificates, ticket keys) into DIR.
    Pki { dir: PathBuf },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Pki { dir } => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            ixgate_testbed::pki::generate(&dir)?;
            println!("test PKI written to {}", dir.display());
        }
    }
    Ok(())
}
