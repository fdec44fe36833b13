//! A lab leaves nothing behind when its runner is killed with SIGKILL: no
//! process, no network or mount namespace; `down` then removes the logs.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ixgate_testbed::sandbox::{LAB_TAG, runs_root};
use ixgate_testbed::wait::{self, NotYet};

const NAMESPACE_KINDS: [&str; 3] = ["net", "mnt", "pid"];

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Processes whose environment carries the lab's tag.
fn tagged_processes(lab: &str) -> Vec<u32> {
    let tag = format!("{LAB_TAG}={lab}");
    pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .unwrap_or_default()
                .split(|&byte| byte == 0)
                .any(|entry| entry == tag.as_bytes())
        })
        .collect()
}

/// The namespaces of `pid`, as `net:[4026532241]` links.
fn namespaces_of(pid: &str) -> Vec<String> {
    NAMESPACE_KINDS
        .iter()
        .filter_map(|kind| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok())
        .map(|link| link.to_string_lossy().into_owned())
        .collect()
}

/// Processes living in any of `namespaces`.
fn processes_in(namespaces: &BTreeSet<String>) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|pid| {
            namespaces_of(&pid.to_string())
                .iter()
                .any(|ns| namespaces.contains(ns))
        })
        .collect()
}

#[test]
fn sigkill_of_the_runner_leaves_nothing_behind() {
    let topology = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/lab.toml");
    let mut runner = Command::new(env!("CARGO_BIN_EXE_ixgate-testbed"))
        .arg("up")
        .arg(&topology)
        .stdout(Stdio::piped())
        .spawn()
        .expect("runner starts");
    let stdout = runner.stdout.take().expect("stdout");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // "lab NAME is up; run directory DIR"
    let deadline = Instant::now() + Duration::from_mins(1);
    let name = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = received
            .recv_timeout(left)
            .expect("the lab reports it is up");
        if let Some(name) = line
            .strip_prefix("lab ")
            .and_then(|rest| rest.split(" is up").next())
        {
            break name.to_owned();
        }
    };

    let tagged = tagged_processes(&name);
    let host: BTreeSet<String> = namespaces_of("self").into_iter().collect();
    let lab_namespaces: BTreeSet<String> = tagged
        .iter()
        .flat_map(|pid| namespaces_of(&pid.to_string()))
        .filter(|ns| !host.contains(ns))
        .collect();
    // PID 1, BIRD, zebra, bgpd, two GoBGPs and the nsenters that wait on them.
    assert!(tagged.len() >= 6, "lab processes: {tagged:?}");
    // A PID and a mount namespace, the sandbox's own network namespace, and
    // one per node that runs a daemon (telco-a, telco-b, node-1, node-2).
    assert!(
        lab_namespaces.len() >= 7,
        "lab namespaces: {lab_namespaces:?}"
    );

    runner.kill().expect("SIGKILL");
    runner.wait().expect("reaped");

    wait::until(Duration::from_secs(10), "nothing of the lab to be left", || {
        let processes = tagged_processes(&name);
        let in_namespaces = processes_in(&lab_namespaces);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounted = mounts.lines().filter(|line| line.contains(&name) || line.contains("ixgate-lab")).count();
        if processes.is_empty() && in_namespaces.is_empty() && mounted == 0 {
            Ok(())
        } else {
            Err(NotYet::Pending(format!(
                "tagged processes {processes:?}, processes in the lab's namespaces {in_namespaces:?}, {mounted} mounts"
            )))
        }
    })
    .expect("the kernel ends the lab with its runner");

    // Only the run directory (the logs) is left, and `down` removes it.
    let run_dir = runs_root().join(&name);
    assert!(run_dir.join("lab.json").exists());
    let down = Command::new(env!("CARGO_BIN_EXE_ixgate-testbed"))
        .args(["down", "--lab", &name])
        .output()
        .expect("down runs");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(!run_dir.exists());
}
