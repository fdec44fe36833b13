//! What the firewall buys and what it costs, in the lab of examples/lab
//! with `ixgate run` in the nodes and a plain TCP/443 service behind
//! node-1's firewall. Prints figures; asserts nothing.
//!
//! 1. Legitimate TCP/443 connections from client-a during a flat-out
//!    spoofed SYN flood from the attacker: success rate and latency with
//!    the ixgate ruleset (client-a unknown, then in the trusted set, as the
//!    proxy will put it after mTLS) and with no ruleset at all (the
//!    kernel's own SYN cookies).
//! 2. Kernel CPU per dropped flood packet: system + irq + softirq time of
//!    the whole machine (/proc/stat) over a flat-out flood, divided by the
//!    packets sent, with the full ruleset and with an empty netdev chain
//!    that drops everything. On veth the generator's send path runs on the
//!    same two cores and is in both figures; the difference is what the
//!    ruleset adds.
//!
//! `make bench` (or `cargo bench --bench firewall` after
//! `cargo build --release --workspace --bins`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ixgate_testbed::Lab;
use ixgate_testbed::flood::{Flood, FloodKind, FloodReport};
use ixgate_testbed::probe::{ProbeReport, Transport};
use ixgate_testbed::{cpu, example};

type Error = Box<dyn std::error::Error>;

const NODE: &str = "node-1";
/// node-1's interface on the exchange (examples/lab/node-1, `[interfaces]`).
const ANYCAST_INTERFACE: &str = "ixp0";
const SERVICE: Ipv4Addr = example::BANK_A;
const CLIENT: &str = "client-a";
const CLIENT_ADDRESS: &str = "198.51.100.66";
const ATTACKER: &str = "attacker";
const ATTACKER_DEVICE: &str = "eth0";

/// Legitimate connections per scenario, one every 100 ms, each given
/// 1.5 s: time for one SYN retransmission (the first comes after 1 s).
const PROBES: u32 = 20;
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
const PROBE_TIMEOUT: Duration = Duration::from_millis(1_500);
/// The flood under the probes: long enough to cover them even when every
/// connection times out (20 × 1.5 s); it runs its whole time.
const PROBE_FLOOD_PACKETS: u64 = 10_000_000;
const PROBE_FLOOD_TIME: Duration = Duration::from_secs(32);
/// The floods whose CPU cost is measured.
const COST_FLOOD_PACKETS: u64 = 2_000_000;
const COST_FLOOD_TIME: Duration = Duration::from_secs(3);
/// The seed's sizing: 30 Mpps per node on 12 cores.
const NODE_MPPS: f64 = 30.0;
const NODE_CORES: f64 = 12.0;

fn service() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(SERVICE), 443)
}

fn syn_flood(packets: u64, time: Duration) -> Flood {
    Flood::new(FloodKind::Syn { port: 443 }, SERVICE, packets, time)
}

fn udp_flood(packets: u64, time: Duration) -> Flood {
    Flood::new(
        FloodKind::Udp {
            port: 53,
            payload: 64,
        },
        SERVICE,
        packets,
        time,
    )
}

fn nft(lab: &Lab, args: &[&str]) -> Result<(), Error> {
    lab.exec(NODE, "nft", args)?;
    Ok(())
}

/// Legitimate connections during a flood.
#[derive(Debug)]
struct Legit {
    probes: ProbeReport,
    flood: FloodReport,
    /// The flood ended before the last connection did: the figures mix
    /// flood and calm.
    outlasted: bool,
}

/// Legitimate connections while a flat-out spoofed SYN flood runs: the
/// probes start once the flood's packets are leaving the attacker.
fn legit_during_flood(lab: &Lab) -> Result<Legit, Error> {
    let sent_before = lab.tx_packets(ATTACKER, ATTACKER_DEVICE)?;
    std::thread::scope(|scope| {
        let flood =
            scope.spawn(|| lab.flood(ATTACKER, &syn_flood(PROBE_FLOOD_PACKETS, PROBE_FLOOD_TIME)));
        lab.wait_for_flood(ATTACKER, ATTACKER_DEVICE, sent_before)?;
        let probes = lab.probe(
            CLIENT,
            Transport::Tcp,
            service(),
            PROBES,
            PROBE_INTERVAL,
            PROBE_TIMEOUT,
        )?;
        let outlasted = flood.is_finished();
        let flood = flood.join().map_err(|_| "the flood thread panicked")??;
        Ok(Legit {
            probes,
            flood,
            outlasted,
        })
    })
}

/// Kernel and user CPU per packet over a flat-out flood, in nanoseconds,
/// and the rate the flood reached.
#[derive(Clone, Copy, Debug)]
struct Cost {
    kernel_ns: f64,
    user_ns: f64,
    mpps: f64,
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn cost(lab: &Lab, flood: &Flood) -> Result<Cost, Error> {
    let before = cpu::machine()?;
    let report = lab.flood(ATTACKER, flood)?;
    let spent = cpu::machine()?.since(before);
    let packets = report.packets_sent.max(1) as f64;
    let ns = |seconds: f64| seconds * 1e9 / packets;
    Ok(Cost {
        kernel_ns: ns(spent.kernel),
        user_ns: ns(spent.user),
        mpps: packets / report.elapsed.as_secs_f64() / 1e6,
    })
}

/// The cost of a spoofed SYN flood to 443 and of a UDP flood to port 53.
fn flood_costs(lab: &Lab) -> Result<[Cost; 2], Error> {
    let syn = cost(lab, &syn_flood(COST_FLOOD_PACKETS, COST_FLOOD_TIME))?;
    let udp = cost(lab, &udp_flood(COST_FLOOD_PACKETS, COST_FLOOD_TIME))?;
    Ok([syn, udp])
}

fn print_legit(label: &str, legit: &Legit) {
    let Legit {
        probes,
        flood,
        outlasted,
    } = legit;
    #[allow(clippy::cast_precision_loss)]
    let flood_kpps = flood.packets_sent as f64 / flood.elapsed.as_secs_f64() / 1e3;
    let ms = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    println!(
        "{label:<44} {:>3}/{:<3} {:>6.1} % {:>8} {:>8}   {flood_kpps:>6.0}{}",
        probes.succeeded,
        probes.attempts,
        probes.success_rate() * 100.0,
        ms(probes.p50_ms),
        ms(probes.p99_ms),
        if *outlasted {
            "  (the flood ended first)"
        } else {
            ""
        },
    );
}

/// Kernel CPU per packet, the full ruleset against the empty drop chain,
/// and what that means for the seed's sizing.
fn print_costs(floods: &[(&str, Cost, Cost)]) {
    println!();
    println!(
        "== Kernel CPU per dropped flood packet (system+irq+softirq, whole machine, incl. the generator's send path)"
    );
    println!(
        "{:<28} {:>14} {:>14} {:>7} {:>12} {:>14} {:>14}",
        "flood", "ixgate ns/pkt", "empty ns/pkt", "ratio", "added ns", "ixgate Mpps", "empty Mpps"
    );
    let mut worst_added: f64 = 0.0;
    for (label, full, empty) in floods {
        let added = full.kernel_ns - empty.kernel_ns;
        worst_added = worst_added.max(added);
        println!(
            "{label:<28} {:>14.0} {:>14.0} {:>7.2} {:>12.0} {:>14.3} {:>14.3}",
            full.kernel_ns,
            empty.kernel_ns,
            full.kernel_ns / empty.kernel_ns,
            added,
            full.mpps,
            empty.mpps,
        );
        println!(
            "{:<28} user CPU per packet (generator, ixgate): {:.0} / {:.0} ns",
            "", full.user_ns, empty.user_ns
        );
    }
    let budget_ns = 1e9 / (NODE_MPPS * 1e6 / NODE_CORES);
    println!();
    println!(
        "Sizing: {NODE_MPPS} Mpps on {NODE_CORES} cores is {:.2} Mpps per core, {budget_ns:.0} ns per packet per core \
         for the driver, the ingress hook and the ruleset together; the ruleset adds {worst_added:.0} ns here.",
        NODE_MPPS / NODE_CORES
    );
}

fn main() -> Result<(), Error> {
    // The firewall alone: a flat-out flood through telco-a would
    // otherwise withdraw node-1 from telco-a and send client-a to node-2.
    let lab = example::serving_client_a_without_flood_withdrawal()?;

    // With the ixgate ruleset: client-a unknown, then trusted.
    let unknown = legit_during_flood(&lab)?;
    nft(
        &lab,
        &[
            "add",
            "element",
            "netdev",
            "ixgate",
            "trusted_v4",
            &format!("{{ {CLIENT_ADDRESS} }}"),
        ],
    )?;
    let trusted = legit_during_flood(&lab)?;
    let [full_syn, full_udp] = flood_costs(&lab)?;

    // Without: ixgate's tables removed under it (its firewall thread then
    // reports the missing counters; BGP carries on).
    nft(&lab, &["delete", "table", "netdev", "ixgate"])?;
    nft(&lab, &["delete", "table", "inet", "ixgate"])?;
    let bare = legit_during_flood(&lab)?;

    // The anchor: an empty ingress chain that drops everything.
    nft(&lab, &["add", "table", "netdev", "bench"])?;
    nft(
        &lab,
        &[
            "add",
            "chain",
            "netdev",
            "bench",
            "drop_all",
            &format!(
                "{{ type filter hook ingress device {ANYCAST_INTERFACE} priority 0; policy drop; }}"
            ),
        ],
    )?;
    let [empty_syn, empty_udp] = flood_costs(&lab)?;
    nft(&lab, &["delete", "table", "netdev", "bench"])?;

    println!();
    println!("== Legitimate TCP/443 connections (client-a) during a flat-out spoofed SYN flood");
    println!(
        "{:<44} {:>7} {:>8} {:>8} {:>8}   {:>6}",
        "", "ok", "rate", "p50 ms", "p99 ms", "flood kpps"
    );
    print_legit("ixgate ruleset, client unknown", &unknown);
    print_legit("ixgate ruleset, client in the trusted set", &trusted);
    print_legit("no ruleset (kernel SYN cookies)", &bare);

    print_costs(&[
        ("spoofed SYN to 443 (limits)", full_syn, empty_syn),
        ("UDP to port 53 (filter)", full_udp, empty_udp),
    ]);
    Ok(())
}
