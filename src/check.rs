//! `ixgate check`: validate a configuration and show what it means.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ixgate_policy::plan::{PeerPlan, Plan};
use ixgate_policy::{Diagnostic, Drained, LoadError};
use serde::Serialize;

use crate::table::Table;

/// The result of checking one node's configuration directory.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum NodeReport {
    Valid {
        dir: PathBuf,
        plan: Box<Plan>,
    },
    Invalid {
        dir: PathBuf,
        errors: Vec<Diagnostic>,
    },
    Unreadable {
        dir: PathBuf,
        error: String,
    },
}

impl NodeReport {
    pub fn check(dir: &Path) -> Self {
        match ixgate_policy::load(dir) {
            Ok(config) => Self::Valid {
                dir: dir.to_owned(),
                plan: Box::new(ixgate_policy::plan(&config, &Drained::Nothing)),
            },
            Err(LoadError::Invalid(errors)) => Self::Invalid {
                dir: dir.to_owned(),
                errors,
            },
            Err(error @ LoadError::Unreadable { .. }) => Self::Unreadable {
                dir: dir.to_owned(),
                error: error.to_string(),
            },
        }
    }

    /// 0 valid, 1 invalid, 2 unreadable.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Valid { .. } => 0,
            Self::Invalid { .. } => 1,
            Self::Unreadable { .. } => 2,
        }
    }

    pub fn render(&self) -> String {
        match self {
            Self::Valid { dir, plan } => render_plan(dir, plan),
            Self::Invalid { errors, .. } => {
                let mut out = String::new();
                for error in errors {
                    let _ = writeln!(out, "{error}");
                }
                let _ = writeln!(out, "{} error(s); nothing was applied", errors.len());
                out
            }
            Self::Unreadable { error, .. } => format!("{error}\n"),
        }
    }
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

fn join<T: ToString>(items: &[T], empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn session(peer: &PeerPlan) -> String {
    let mut parts = vec![format!("hold {}s", peer.hold_time.seconds())];
    if peer.md5 {
        parts.push("tcp-md5".into());
    }
    if peer.gtsm {
        parts.push("gtsm".into());
    }
    parts.push(format!("max {} prefixes in", peer.import_max_prefixes));
    parts.join(", ")
}

fn render_plan(dir: &Path, plan: &Plan) -> String {
    let mut out = format!(
        "{} ({}, router id {}) from {}: valid\n  paired with {}\n\n  peers\n",
        plan.node,
        plan.asn,
        plan.router_id,
        dir.display(),
        plan.paired_telco
    );
    let mut peers = Table::new(&[
        "TELCO",
        "NEIGHBOUR",
        "AS",
        "PAIRED",
        "PREPENDS",
        "AS PATH",
        "ANNOUNCES",
        "COMMUNITIES",
        "SESSION",
    ]);
    for peer in &plan.peers {
        let communities: Vec<String> = peer
            .communities
            .iter()
            .map(ToString::to_string)
            .chain(peer.large_communities.iter().map(ToString::to_string))
            .collect();
        peers.row(vec![
            peer.telco.to_string(),
            peer.neighbor.to_string(),
            peer.remote_asn.to_string(),
            yes_no(peer.paired),
            peer.prepends.to_string(),
            join(
                &peer.as_path.iter().map(|asn| asn.get()).collect::<Vec<_>>(),
                "-",
            ),
            join(&peer.announce, "(drained)"),
            join(&communities, "-"),
            session(peer),
        ]);
    }
    out.push_str(&peers.render("    "));

    out.push_str("\n  mitigation rights\n");
    let mut rights = Table::new(&[
        "TELCO",
        "NEIGHBOUR",
        "FLOWSPEC",
        "RTBH",
        "SOURCE-RTBH",
        "WITHDRAW",
        "MAX RULES",
        "SYN ENTER/EXIT PPS",
        "UDP ENTER/EXIT PPS",
    ]);
    for peer in &plan.peers {
        let accepts = &peer.accepts;
        let thresholds = accepts.thresholds;
        rights.row(vec![
            peer.telco.to_string(),
            peer.neighbor.to_string(),
            yes_no(accepts.flowspec),
            accepts
                .rtbh
                .as_deref()
                .map_or_else(|| "no".to_owned(), |communities| join(communities, "-")),
            yes_no(accepts.source_rtbh),
            yes_no(accepts.withdraw),
            accepts.max_active_rules.to_string(),
            format!("{}/{}", thresholds.syn.enter_pps, thresholds.syn.exit_pps),
            format!("{}/{}", thresholds.udp.enter_pps, thresholds.udp.exit_pps),
        ]);
    }
    out.push_str(&rights.render("    "));

    out.push_str("\n  services\n");
    let mut services = Table::new(&[
        "SERVICE",
        "SNI",
        "ORIGINS",
        "ORIGIN NAME",
        "CRLS",
        "HTTP/3 ON",
    ]);
    for service in &plan.services {
        services.row(vec![
            service.name.to_string(),
            join(&service.sni, "-"),
            join(&service.origins, "-"),
            service.origin_sni.to_string(),
            service.crls.to_string(),
            join(&service.http3, "-"),
        ]);
    }
    out.push_str(&services.render("    "));
    out
}
