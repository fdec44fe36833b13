//! How long from an announce or withdraw call until the route changes in a
//! BIRD peer's kernel (telco-a), for ixgate's own speaker and, side by
//! side, for BIRD making the same change toward the same peer. Prints
//! figures; asserts nothing.
//!
//! `make bench` (or `cargo bench --bench bgp_propagation` after
//! `cargo build --release --workspace --bins`).

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use ixgate_testbed::routers::Family;
use ixgate_testbed::topology::{IxgateRuns, Role, Topology};
use ixgate_testbed::{Lab, expect};

const TRIALS: usize = 15;
const PREFIX: &str = "192.0.2.0/24";
/// A change not seen in this long counts as a failure of the run.
const CHANGE_DEADLINE: Duration = Duration::from_secs(10);

type Error = Box<dyn std::error::Error>;

/// Route changes in telco-a's kernel, as `ip monitor` prints them, with
/// the instant each line arrived.
fn monitor(lab: &Lab) -> Result<(std::process::Child, Receiver<(Instant, String)>), Error> {
    let mut ip = lab.command("telco-a", "ip")?;
    let mut child = ip
        .args(["-4", "monitor", "route"])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (lines, received) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    Ok((child, received))
}

/// Runs `trigger` and returns the time until a monitor line for which
/// `seen` holds.
fn time_change(
    changes: &Receiver<(Instant, String)>,
    trigger: &mut dyn FnMut() -> Result<(), Error>,
    seen: &dyn Fn(&str) -> bool,
) -> Result<Duration, Error> {
    while changes.try_recv().is_ok() {}
    let start = Instant::now();
    trigger()?;
    loop {
        let (at, line) = changes.recv_timeout(CHANGE_DEADLINE)?;
        if seen(&line) {
            return Ok(at.duration_since(start));
        }
    }
}

fn added_via(next_hop: &'static str) -> impl Fn(&str) -> bool {
    move |line| line.starts_with(PREFIX) && line.contains(&format!("via {next_hop} "))
}

fn deleted(line: &str) -> bool {
    line.starts_with(&format!("Deleted {PREFIX}"))
}

fn run(command: &mut Command) -> Result<(), Error> {
    let output = command.output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{command:?}: {}", String::from_utf8_lossy(&output.stderr)).into())
    }
}

/// Median and 95th percentile, in milliseconds.
fn summary(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |percent: usize| samples[(samples.len() - 1) * percent / 100].as_secs_f64() * 1000.0;
    (at(50), at(95))
}

#[derive(Default)]
struct Times {
    announce: Vec<Duration>,
    withdraw: Vec<Duration>,
}

fn report(ixgate: &mut Times, bird: &mut Times) {
    let (ixgate_announce, ixgate_announce_p95) = summary(&mut ixgate.announce);
    let (ixgate_withdraw, ixgate_withdraw_p95) = summary(&mut ixgate.withdraw);
    let (bird_announce, bird_announce_p95) = summary(&mut bird.announce);
    let (bird_withdraw, bird_withdraw_p95) = summary(&mut bird.withdraw);
    println!(
        "BGP propagation to a BIRD peer (telco-a, route change in its kernel), {TRIALS} trials each"
    );
    println!("from the call (ixgate ctl drain/undrain; birdc disable/enable of a static protocol)");
    println!(
        "{:<14} {:>22} {:>22}",
        "speaker", "announce median/p95", "withdraw median/p95"
    );
    println!(
        "{:<14} {:>14.1} / {:>5.1} ms {:>14.1} / {:>5.1} ms",
        "ixgate", ixgate_announce, ixgate_announce_p95, ixgate_withdraw, ixgate_withdraw_p95
    );
    println!(
        "{:<14} {:>14.1} / {:>5.1} ms {:>14.1} / {:>5.1} ms",
        "BIRD 2.0.12", bird_announce, bird_announce_p95, bird_withdraw, bird_withdraw_p95
    );
    println!(
        "ratio ixgate/BIRD (median): announce {:.2}, withdraw {:.2}",
        ixgate_announce / bird_announce,
        ixgate_withdraw / bird_withdraw
    );
}

fn main() -> Result<(), Error> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/topologies/lab.toml");
    let mut topology = Topology::load(&path)?;
    for node in &mut topology.nodes {
        if let Role::Ixgate { runs, node: name } = &mut node.role {
            *runs = if name == "node-1" {
                IxgateRuns::Appliance
            } else {
                IxgateRuns::BirdStandIn
            };
        }
    }
    let lab = Lab::start(topology)?;
    let bird = lab.router("telco-a")?;
    expect::established(bird, &["198.51.100.11", "198.51.100.12"])?;
    expect::as_paths(
        bird,
        Family::Ipv4,
        PREFIX,
        &[
            ("198.51.100.11", vec![65000]),
            ("198.51.100.12", vec![65000; 3]),
        ],
    )?;
    let (mut monitor_process, changes) = monitor(&lab)?;

    let ixgate = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("ixgate"))
        .ok_or("no target directory")?;
    let ctl = |verb: &str| {
        let mut command = Command::new(&ixgate);
        command
            .arg("ctl")
            .arg("--socket")
            .arg(lab.control_socket("node-1"))
            .arg(verb);
        command
    };
    let birdc = |verb: &str| {
        let mut command = Command::new("birdc");
        command
            .arg("-s")
            .arg(lab.run_dir().join("node-2/bird.ctl"))
            .args([verb, "originate4"]);
        command
    };

    // Only one speaker announces at a time: BIRD's stand-in off first.
    run(&mut birdc("disable"))?;
    expect::gone(bird, Family::Ipv4, PREFIX, "198.51.100.12")?;
    let mut ixgate_times = Times::default();
    for _ in 0..TRIALS {
        ixgate_times.withdraw.push(time_change(
            &changes,
            &mut || run(&mut ctl("drain")),
            &deleted,
        )?);
        ixgate_times.announce.push(time_change(
            &changes,
            &mut || run(&mut ctl("undrain")),
            &added_via("198.51.100.11"),
        )?);
    }
    time_change(&changes, &mut || run(&mut ctl("drain")), &deleted)?;
    let mut bird_times = Times::default();
    for _ in 0..TRIALS {
        bird_times.announce.push(time_change(
            &changes,
            &mut || run(&mut birdc("enable")),
            &added_via("198.51.100.12"),
        )?);
        bird_times.withdraw.push(time_change(
            &changes,
            &mut || run(&mut birdc("disable")),
            &deleted,
        )?);
    }
    let _ = monitor_process.kill();
    let _ = monitor_process.wait();
    report(&mut ixgate_times, &mut bird_times);
    Ok(())
}
