//! Decoding the headers of a sampled packet, as NFLOG hands it over from
//! the network header on (RFC 791 IPv4, RFC 8200 IPv6 with its extension
//! headers, RFC 9293 TCP, RFC 768 UDP). Pure: bytes in, a
//! [`PacketSample`] or the reason there is none out. A sample is whatever
//! the flood put on the wire, so every field is bounds-checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::detector::PacketSample;

/// Why a sampled packet could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SampleError {
    #[error("shorter than its network header")]
    Truncated,
    #[error("IP version {0} is neither 4 nor 6")]
    Version(u8),
    #[error("IPv4 header length {0} below 20 bytes")]
    HeaderLength(usize),
}

const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const DESTINATION_OPTIONS: u8 = 60;
const TCP: u8 = 6;
const UDP: u8 = 17;

/// Reads the network and transport headers of `packet`. Transport fields
/// are absent when the snapshot ends before them or the packet is a
/// non-first fragment (it carries none).
pub fn decode(packet: &[u8]) -> Result<PacketSample, SampleError> {
    let first = *packet.first().ok_or(SampleError::Truncated)?;
    match first >> 4 {
        4 => decode_ipv4(packet),
        6 => decode_ipv6(packet),
        version => Err(SampleError::Version(version)),
    }
}

fn decode_ipv4(packet: &[u8]) -> Result<PacketSample, SampleError> {
    let header = packet.get(..20).ok_or(SampleError::Truncated)?;
    let header_length = usize::from(header[0] & 0x0f) * 4;
    if header_length < 20 {
        return Err(SampleError::HeaderLength(header_length));
    }
    let flags_and_offset = u16::from_be_bytes([header[6], header[7]]);
    let more_fragments = flags_and_offset & 0x2000 != 0;
    let offset = flags_and_offset & 0x1fff;
    let protocol = header[9];
    let mut sample = PacketSample {
        via: None,
        source: IpAddr::V4(Ipv4Addr::new(
            header[12], header[13], header[14], header[15],
        )),
        destination: IpAddr::V4(Ipv4Addr::new(
            header[16], header[17], header[18], header[19],
        )),
        protocol,
        source_port: None,
        destination_port: None,
        tcp_flags: None,
        length: u16::from_be_bytes([header[2], header[3]]),
        ttl: header[8],
        fragment: more_fragments || offset != 0,
    };
    if offset == 0 {
        read_transport(&mut sample, packet.get(header_length..).unwrap_or_default());
    }
    Ok(sample)
}

fn decode_ipv6(packet: &[u8]) -> Result<PacketSample, SampleError> {
    let header = packet.get(..40).ok_or(SampleError::Truncated)?;
    let address = |at: usize| {
        let mut octets = [0; 16];
        octets.copy_from_slice(&header[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    let mut sample = PacketSample {
        via: None,
        source: address(8),
        destination: address(24),
        protocol: header[6],
        source_port: None,
        destination_port: None,
        tcp_flags: None,
        length: u16::from_be_bytes([header[4], header[5]]).saturating_add(40),
        ttl: header[7],
        fragment: false,
    };
    // Walk the extension headers to the transport header; a chain cut
    // short by the snapshot leaves the transport fields unknown.
    let mut rest = packet.get(40..).unwrap_or_default();
    loop {
        match sample.protocol {
            HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS => {
                let (Some(&next), Some(&units)) = (rest.first(), rest.get(1)) else {
                    return Ok(sample);
                };
                sample.protocol = next;
                rest = rest.get((usize::from(units) + 1) * 8..).unwrap_or_default();
            }
            FRAGMENT => {
                let Some(fragment) = rest.get(..8) else {
                    return Ok(sample);
                };
                sample.protocol = fragment[0];
                sample.fragment = true;
                let offset = u16::from_be_bytes([fragment[2], fragment[3]]) >> 3;
                if offset != 0 {
                    return Ok(sample);
                }
                rest = &rest[8..];
            }
            _ => break,
        }
    }
    read_transport(&mut sample, rest);
    Ok(sample)
}

/// Ports of TCP and UDP, and TCP's flags, when the snapshot holds them.
fn read_transport(sample: &mut PacketSample, transport: &[u8]) {
    if !matches!(sample.protocol, TCP | UDP) {
        return;
    }
    if let Some(ports) = transport.get(..4) {
        sample.source_port = Some(u16::from_be_bytes([ports[0], ports[1]]));
        sample.destination_port = Some(u16::from_be_bytes([ports[2], ports[3]]));
    }
    if sample.protocol == TCP {
        sample.tcp_flags = transport.get(13).copied();
    }
}

#[cfg(test)]
mod tests;
