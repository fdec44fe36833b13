//! ixgate's configuration language.
//!
//! A node is configured by a directory holding `ixgate.toml` (the node
//! file), which names a directory of telco files, one per telco
//! (`telcos/<name>.toml`). [`load`] reads them all, checks every rule and
//! reports every error with its file, line and column, or returns a
//! [`Config`] that is valid as a whole. [`plan()`] derives what each peer
//! gets from it.

pub mod files;
pub mod node;
pub mod plan;
mod source;
pub mod telco;
pub mod types;
mod validate;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::node::NodeFile;
pub use crate::plan::{Drained, Plan, plan};
use crate::source::SourceFile;
pub use crate::source::{Diagnostic, Key};
use crate::telco::TelcoFile;
pub use crate::validate::{FileRef, Finding};

/// The node file's name inside a node's configuration directory.
pub const NODE_FILE: &str = "ixgate.toml";

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The node file itself could not be read: there is no configuration.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The configuration was read and breaks rules; every one is listed.
    #[error("{} error(s) in the configuration", .0.len())]
    Invalid(Vec<Diagnostic>),
}

/// A configuration that passed every rule. Relative paths in it are
/// resolved against the file that named them.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub node: NodeFile,
    /// Sorted by file name.
    pub telcos: Vec<TelcoFile>,
}

impl Config {
    /// Checks the rules that need no file system and builds the config.
    pub fn new(node: NodeFile, telcos: Vec<TelcoFile>) -> Result<Self, Vec<Finding>> {
        let findings = validate::check_rules(Some(&node), &telcos, true);
        if findings.is_empty() {
            Ok(Self { node, telcos })
        } else {
            Err(findings)
        }
    }

    /// The telco this node is paired with.
    pub fn paired_telco(&self) -> Option<&TelcoFile> {
        self.telcos
            .iter()
            .find(|telco| telco.name == self.node.node.paired_telco)
    }
}

/// Reads and checks the node configuration in `dir`.
pub fn load(dir: &Path) -> Result<Config, LoadError> {
    let node_path = dir.join(NODE_FILE);
    let node_source = SourceFile::read(&node_path).map_err(|source| LoadError::Unreadable {
        path: node_path.clone(),
        source,
    })?;
    let mut diagnostics = Vec::new();
    let mut node: Option<NodeFile> = node_source.deserialize(&mut diagnostics);
    if let Some(node) = &mut node {
        node.resolve_paths(dir);
    }

    let mut telco_sources = Vec::new();
    let mut telcos = Vec::new();
    let mut all_telcos_read = node.is_some();
    if let Some(node) = &node {
        match telco_files(&node.node.telco_dir) {
            Ok(paths) => {
                for path in paths {
                    match SourceFile::read(&path) {
                        Ok(source) => {
                            if let Some(mut telco) =
                                source.deserialize::<TelcoFile>(&mut diagnostics)
                            {
                                telco.resolve_paths(path.parent().unwrap_or(dir));
                                telcos.push(telco);
                                telco_sources.push(source);
                            } else {
                                all_telcos_read = false;
                            }
                        }
                        Err(error) => {
                            all_telcos_read = false;
                            let message = format!("cannot read {}: {error}", path.display());
                            diagnostics.push(
                                node_source
                                    .diagnostic(source::key_path!["node", "telco_dir"], message),
                            );
                        }
                    }
                }
            }
            Err(error) => {
                all_telcos_read = false;
                let message = format!(
                    "cannot read telco directory {}: {error}",
                    node.node.telco_dir.display()
                );
                diagnostics
                    .push(node_source.diagnostic(source::key_path!["node", "telco_dir"], message));
            }
        }
    }

    let findings = validate::check_rules(node.as_ref(), &telcos, all_telcos_read)
        .into_iter()
        .chain(validate::check_files(node.as_ref(), &telcos));
    for finding in findings {
        let source = match finding.file {
            FileRef::Node => Some(&node_source),
            FileRef::Telco(index) => telco_sources.get(index),
        };
        if let Some(source) = source {
            diagnostics.push(source.diagnostic(&finding.path, finding.message));
        }
    }

    match node {
        Some(node) if diagnostics.is_empty() => Ok(Config { node, telcos }),
        _ => {
            sort_by_file_then_position(&mut diagnostics, &node_path);
            Err(LoadError::Invalid(diagnostics))
        }
    }
}

/// The node file first, then the telco files in name order; within a
/// file, top to bottom.
fn sort_by_file_then_position(diagnostics: &mut [Diagnostic], node_path: &Path) {
    diagnostics.sort_by(|a, b| {
        let rank = |d: &Diagnostic| (d.file != node_path, d.file.clone(), d.line, d.column);
        rank(a).cmp(&rank(b))
    });
}

/// The `*.toml` files of a telco directory, sorted by name.
fn telco_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// The node configuration directories under `dir`: `dir` itself when it
/// holds a node file, otherwise each subdirectory that holds one (a site
/// of several nodes sharing telco files and PKI), sorted by name.
pub fn node_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if dir.join(NODE_FILE).exists() {
        return Ok(vec![dir.to_owned()]);
    }
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.join(NODE_FILE).is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

fn resolve(base: &Path, path: &mut PathBuf) {
    *path = base.join(&*path);
}

impl NodeFile {
    fn resolve_paths(&mut self, base: &Path) {
        resolve(base, &mut self.node.telco_dir);
        resolve(base, &mut self.tls.ticket_key_file);
        for service in &mut self.services {
            for path in [
                &mut service.certificate,
                &mut service.private_key,
                &mut service.client_ca,
                &mut service.origin_ca,
            ] {
                resolve(base, path);
            }
            for crl in &mut service.crls {
                resolve(base, crl);
            }
        }
    }
}

impl TelcoFile {
    fn resolve_paths(&mut self, base: &Path) {
        if let Some(path) = &mut self.md5_password_file {
            resolve(base, path);
        }
    }
}
