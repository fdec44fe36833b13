//! Network-namespace labs for ixgate.
//!
//! A topology file ([`topology`]) says which nodes a lab has and how they
//! are wired; [`Lab::start`] builds it inside a sandbox that dies with the
//! process that started it ([`sandbox`]), starts the telco routers from the
//! telco policy files ([`routers`]) and writes the test PKI ([`pki`]).
//! Tests drive the lab through [`Lab`] and wait with [`wait::until`].

pub mod client;
pub mod cpu;
pub mod example;
pub mod expect;
pub mod flood;
pub mod h3;
mod lab;
pub mod load;
mod net;
pub mod origin;
mod peering;
pub mod pki;
pub mod probe;
pub mod routers;
pub mod sandbox;
pub mod topology;
pub mod wait;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::lab::{Lab, LabState, Metrics, sibling_binary};

/// Why a lab could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("{command} failed (exit status {status:?}): {stderr}")]
    CommandFailed {
        command: String,
        status: Option<i32>,
        stderr: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("gave up waiting for {what} after {timeout:?}; last seen: {seen}")]
    Timeout {
        what: String,
        timeout: Duration,
        seen: String,
    },
    #[error("waiting for {what} failed: {reason}")]
    WaitFailed { what: String, reason: String },
    #[error("router {router}: {message}")]
    Router { router: String, message: String },
    #[error(transparent)]
    Topology(#[from] topology::TopologyError),
    #[error("ixgate configuration {dir}: {message}")]
    Config { dir: PathBuf, message: String },
    #[error("the lab has no node {0}")]
    NoSuchNode(String),
    #[error("{0} is not an attacker node; floods come from attacker nodes only")]
    NotAnAttacker(String),
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
}
