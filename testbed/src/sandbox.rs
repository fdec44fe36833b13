//! The sandbox every lab lives in: new PID, mount and network namespaces
//! that die with the process that started them.
//!
//! ```text
//! runner ─ setpriv --pdeathsig KILL ─ unshare --pid --fork --kill-child --mount --net
//!                                        └─ PID 1 (sleep) ── every lab process
//! ```
//! The runner's death kills `unshare` (parent-death signal); `unshare`'s
//! death kills PID 1 (`--kill-child`); PID 1's death makes the kernel kill
//! every process in the PID namespace. Named network namespaces live on a
//! tmpfs at `/run/netns` inside the private mount namespace, so they are
//! never visible to the host and vanish with it. Nothing needs a cleanup
//! handler to run, which is what makes SIGKILL safe.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::LabError;
use crate::wait::{self, NotYet};

/// The environment variable that tags every process of a lab with its
/// run name, so leftovers can be told from anything else.
pub const LAB_TAG: &str = "IXGATE_LAB";

/// How to reach into a running sandbox: the host PID of its PID 1.
#[derive(Clone, Debug)]
pub struct SandboxHandle {
    lab: String,
    pid1: u32,
}

impl SandboxHandle {
    /// A handle to the sandbox of lab `lab`, whose PID 1 has host PID `pid1`.
    pub fn new(lab: &str, pid1: u32) -> Self {
        Self {
            lab: lab.to_owned(),
            pid1,
        }
    }

    /// A command that runs inside the sandbox (its mount, PID and network
    /// namespaces), outside any node.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg("--target")
            .arg(self.pid1.to_string())
            .args(["--mount", "--pid", "--net", "--"])
            .arg(program)
            .env(LAB_TAG, &self.lab);
        command
    }

    /// A command that runs in node `node`'s network namespace.
    pub fn node_command(&self, node: &str, program: &str) -> Command {
        let mut command = self.command("ip");
        command.args(["netns", "exec", node, program]);
        command
    }

    /// Runs `command` to completion; an exit status other than 0 is an error
    /// that carries what the command printed.
    pub fn run(mut command: Command) -> Result<Output, LabError> {
        let output = command
            .stdin(Stdio::null())
            .output()
            .map_err(|source| LabError::Spawn {
                what: format!("{command:?}"),
                source,
            })?;
        if output.status.success() {
            Ok(output)
        } else {
            // Some tools (gobgp) say why on standard output.
            let said = if output.stderr.is_empty() {
                &output.stdout
            } else {
                &output.stderr
            };
            Err(LabError::CommandFailed {
                command: format!("{command:?}"),
                status: output.status.code(),
                stderr: String::from_utf8_lossy(said).trim().to_owned(),
            })
        }
    }

    /// Runs `ip ARGS` inside the sandbox.
    pub fn ip(&self, args: &[&str]) -> Result<Output, LabError> {
        let mut command = self.command("ip");
        command.args(args);
        Self::run(command)
    }

    pub fn pid1(&self) -> u32 {
        self.pid1
    }
}

/// Owns a sandbox: dropping it kills everything in it.
#[derive(Debug)]
pub struct Sandbox {
    unshare: Child,
    handle: SandboxHandle,
}

/// How long the sandbox may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(10);

impl Sandbox {
    /// Starts a sandbox tagged `lab`, writing its PID file into `run_dir`.
    pub fn start(lab: &str, run_dir: &Path) -> Result<Self, LabError> {
        let pid_file = run_dir.join("sandbox.pid");
        // PID 1 reports its host PID (the 4th field of /proc/self/stat of a
        // child is its parent, PID 1, as the host's procfs numbers it), then
        // becomes a sleeper that holds the namespaces.
        let script = r#"mkdir -p /run/netns && mount -t tmpfs -o size=1m,mode=755 ixgate-lab /run/netns && cut -d" " -f4 /proc/self/stat > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep infinity"#;
        let unshare = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--"])
            .args([
                "unshare",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount",
                "--net",
            ])
            .args([
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                script,
                "ixgate-sandbox",
            ])
            .arg(&pid_file)
            .env(LAB_TAG, lab)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|source| LabError::Spawn {
                what: "setpriv unshare (util-linux)".into(),
                source,
            })?;
        let mut sandbox = Self {
            unshare,
            handle: SandboxHandle::new(lab, 0),
        };
        let pid1 = wait::until(START_TIMEOUT, "the sandbox's PID 1 to report", || {
            if let Ok(Some(status)) = sandbox.unshare.try_wait() {
                return Err(NotYet::Failed(format!("unshare exited with {status}")));
            }
            std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok())
                .ok_or_else(|| NotYet::Pending(format!("no PID in {}", pid_file.display())))
        })?;
        sandbox.handle.pid1 = pid1;
        Ok(sandbox)
    }

    pub fn handle(&self) -> &SandboxHandle {
        &self.handle
    }

    /// Ends the sandbox and everything in it; calling it again does nothing.
    pub fn end(&mut self) {
        // Killing unshare kills PID 1, and with it the whole lab.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.end();
    }
}

/// A run directory name unique on this host: `<lab>-<pid>-<n>`.
pub fn unique_run_name(lab: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{lab}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Where labs keep their run directories (logs, configs, sockets, PKI).
pub fn runs_root() -> PathBuf {
    std::env::temp_dir().join("ixgate-lab")
}
