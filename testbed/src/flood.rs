//! Floods from an attacker node, with trafgen (netsniff-ng): SYN, UDP or
//! ICMP echo toward one target, from spoofed random sources or a fixed
//! set, at a target rate or flat out. Every flood is bounded by a packet
//! count and a duration, both required by [`Flood::new`].

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

/// What is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloodKind {
    /// TCP SYNs to a port.
    Syn { port: u16 },
    /// UDP datagrams of `payload` bytes to a port.
    Udp { port: u16, payload: u16 },
    /// ICMP echo requests with `payload` bytes.
    Icmp { payload: u16 },
}

/// Where the packets claim to come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sources {
    /// A random unicast source address per packet: the first octet from
    /// 1 to 223 except 127 (trafgen sends one template per octet in turn),
    /// the other three random. Fully random sources would include martians
    /// (0/8, 127/8, multicast) that routers drop before they are counted.
    Spoofed,
    /// These sources, in turn.
    Fixed(Vec<Ipv4Addr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloodRate {
    /// At most this rate, evenly spaced: one packet per 1/pps gap. The
    /// sleep between packets costs some tens of µs, so the rate reached is
    /// lower (measured on veth: 400 µs → 2 150 pps, 50 µs → 12 500 pps);
    /// `FloodReport` tells what was sent. trafgen's own `--rate` is no use
    /// here: it sends each second's packets in one burst (measured: 2 500
    /// packets in one 100 ms window, then nothing for 0.9 s), which is a
    /// flood to a 10 Hz detector whatever the average.
    PacketsPerSecond(u64),
    FlatOut,
}

/// A flood, bounded in packets and in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flood {
    pub kind: FloodKind,
    pub target: Ipv4Addr,
    pub sources: Sources,
    pub rate: FloodRate,
    pub max_packets: u64,
    pub max_duration: Duration,
}

/// What a flood did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FloodReport {
    /// Packets trafgen sent (its own count).
    pub packets_sent: u64,
    /// When trafgen was started: the first packet leaves within a few ms.
    pub started: std::time::SystemTime,
    pub elapsed: Duration,
}

impl Flood {
    /// A flood of at most `max_packets` packets and `max_duration`, from
    /// spoofed sources, flat out; narrow it with the builder methods.
    pub fn new(
        kind: FloodKind,
        target: Ipv4Addr,
        max_packets: u64,
        max_duration: Duration,
    ) -> Self {
        Self {
            kind,
            target,
            sources: Sources::Spoofed,
            rate: FloodRate::FlatOut,
            max_packets,
            max_duration,
        }
    }

    #[must_use]
    pub fn sources(mut self, sources: Sources) -> Self {
        self.sources = sources;
        self
    }

    #[must_use]
    pub fn rate(mut self, rate: FloodRate) -> Self {
        self.rate = rate;
        self
    }

    /// The trafgen packet configuration: one packet per source (trafgen
    /// sends them in turn), Ethernet from `source_mac` to `gateway_mac`.
    pub fn trafgen_config(&self, source_mac: [u8; 6], gateway_mac: [u8; 6]) -> String {
        let sources: Vec<SourceField> = match &self.sources {
            Sources::Spoofed => (1..=223_u8)
                .filter(|&octet| octet != 127)
                .map(SourceField::RandomIn)
                .collect(),
            Sources::Fixed(list) => list.iter().copied().map(SourceField::Fixed).collect(),
        };
        let mut config = String::from("/* Written by ixgate-testbed. */\n");
        for source in sources {
            config.push_str(&self.packet(source, source_mac, gateway_mac));
        }
        config
    }

    fn packet(&self, source: SourceField, source_mac: [u8; 6], gateway_mac: [u8; 6]) -> String {
        let bytes = |octets: &[u8]| {
            octets
                .iter()
                .map(|b| format!("{b:#04x}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (protocol, transport_len, transport) = match self.kind {
            // Source port and sequence number random; SYN; window 64240.
            FloodKind::Syn { port } => (
                6,
                20,
                format!(
                    "drnd(2), const16({port}), drnd(4), const32(0), 0x50, 0x02, const16(64240), csumtcp(14, 34), const16(0)"
                ),
            ),
            FloodKind::Udp { port, payload } => (
                17,
                8 + u32::from(payload),
                format!(
                    "drnd(2), const16({port}), const16({len}), csumudp(14, 34){fill}",
                    len = 8 + u32::from(payload),
                    fill = fill(payload)
                ),
            ),
            // The ICMP checksum is the Internet checksum of the message.
            FloodKind::Icmp { payload } => (
                1,
                8 + u32::from(payload),
                format!(
                    "0x08, 0x00, csumip(34, {end}), drnd(2), drnd(2){fill}",
                    end = 34 + 8 + u32::from(payload) - 1,
                    fill = fill(payload)
                ),
            ),
        };
        let source = match source {
            SourceField::Fixed(ip) => bytes(&ip.octets()),
            SourceField::RandomIn(first_octet) => format!("{first_octet}, drnd(3)"),
        };
        let mut packet = String::from("{\n");
        let _ = writeln!(
            packet,
            "  {}, {}, const16(0x0800),",
            bytes(&gateway_mac),
            bytes(&source_mac)
        );
        let _ = writeln!(
            packet,
            "  0x45, 0x00, const16({total}), drnd(2), 0x40, 0x00, 64, {protocol}, csumip(14, 33), {source}, {target},",
            total = 20 + transport_len,
            target = bytes(&self.target.octets()),
        );
        let _ = writeln!(packet, "  {transport}\n}}");
        packet
    }

    /// trafgen's arguments besides device and configuration.
    pub fn trafgen_args(&self) -> Vec<String> {
        let mut args = vec![
            "--num".to_owned(),
            self.max_packets.to_string(),
            "--cpus".to_owned(),
            "1".to_owned(),
        ];
        if let FloodRate::PacketsPerSecond(pps) = self.rate {
            let gap_ns = 1_000_000_000 / pps.max(1);
            args.extend(["--gap".to_owned(), format!("{gap_ns}ns")]);
        }
        args
    }
}

/// The source address field of one packet template.
#[derive(Clone, Copy)]
enum SourceField {
    Fixed(Ipv4Addr),
    /// This first octet, the rest random per packet.
    RandomIn(u8),
}

fn fill(payload: u16) -> String {
    if payload == 0 {
        String::new()
    } else {
        format!(", fill(0x41, {payload})")
    }
}

/// The packet count in trafgen's summary (`      100 packets outgoing`),
/// which it prints on exit, also when interrupted at the time bound.
pub fn packets_outgoing(summary: &str) -> Option<u64> {
    summary
        .lines()
        .find_map(|line| line.trim().strip_suffix("packets outgoing"))
        .and_then(|count| count.trim().parse().ok())
}

/// Parses a MAC address as `ip -j` prints it.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0_u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syn_flood_packet() {
        let flood = Flood::new(
            FloodKind::Syn { port: 443 },
            Ipv4Addr::new(192, 0, 2, 10),
            1000,
            Duration::from_secs(2),
        );
        let config = flood.trafgen_config([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        assert!(config.contains("0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, const16(0x0800)"));
        assert!(config.contains("const16(40), drnd(2), 0x40, 0x00, 64, 6, csumip(14, 33), 1, drnd(3), 0xc0, 0x00, 0x02, 0x0a"));
        // One template per unicast first octet: 1..=223 without 127.
        assert_eq!(config.matches('{').count(), 222);
        assert!(!config.contains("127, drnd(3)"));
        assert!(config.contains("const16(443)"));
        assert_eq!(flood.trafgen_args(), ["--num", "1000", "--cpus", "1"]);
    }

    #[test]
    fn fixed_sources_make_one_packet_each() {
        let flood = Flood::new(
            FloodKind::Udp {
                port: 53,
                payload: 100,
            },
            Ipv4Addr::new(192, 0, 2, 10),
            10,
            Duration::from_secs(1),
        )
        .sources(Sources::Fixed(vec![
            Ipv4Addr::new(198, 51, 100, 82),
            Ipv4Addr::new(198, 51, 100, 83),
        ]))
        .rate(FloodRate::PacketsPerSecond(500));
        let config = flood.trafgen_config([0; 6], [0; 6]);
        assert_eq!(config.matches('{').count(), 2);
        assert!(
            config.contains("const16(128)"),
            "IPv4 total length 20 + 8 + 100"
        );
        assert!(config.contains("fill(0x41, 100)"));
        assert!(
            flood
                .trafgen_args()
                .ends_with(&["--gap".to_owned(), "2000000ns".to_owned()])
        );
    }

    #[test]
    fn trafgen_summary() {
        let summary = "\r         100 packets outgoing\n\r        5400 bytes outgoing\n";
        assert_eq!(packets_outgoing(summary), Some(100));
        assert_eq!(packets_outgoing("Cannot set system socket memory\n"), None);
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02"),
            Some([2, 0x42, 0xac, 0x11, 0, 2])
        );
        assert_eq!(parse_mac("02:42"), None);
    }
}
