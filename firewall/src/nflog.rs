//! The NFLOG group listener: the packets the ruleset's `log group N`
//! rules sample, read from nfnetlink without blocking and decoded by
//! [`crate::sample::decode`].

use std::io;

use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};

use crate::detector::{LinkAddress, PacketSample};
use crate::nft::{
    Attributes, NLM_F_ACK, NftError, attributes, await_acknowledgements, messages, request,
};
use crate::sample::decode;

/// nfnetlink subsystem of NFLOG (NFNL_SUBSYS_ULOG).
const NFNL_SUBSYS_ULOG: u16 = 4;
const NFULNL_MSG_PACKET: u16 = 0;
const NFULNL_MSG_CONFIG: u16 = 1;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_COPY_PACKET: u8 = 2;
const NFULA_PAYLOAD: u16 = 9;
/// struct nfulnl_msg_packet_hw: be16 length, 2 bytes of padding, 8 of
/// address (the link-layer source of an Ethernet frame).
const NFULA_HWADDR: u16 = 8;

/// An Ethernet source from NFULA_HWADDR; other lengths are no Ethernet.
fn link_address(value: &[u8]) -> Option<LinkAddress> {
    let length = u16::from_be_bytes([*value.first()?, *value.get(1)?]);
    if length != 6 {
        return None;
    }
    value.get(4..10)?.try_into().ok()
}
/// Linux's errno when a netlink socket's receive buffer overflowed.
const ENOBUFS: i32 = 105;

/// The listener of one NFLOG group: the sampled packets the ruleset's
/// `log group N` rules send, decoded. Reading never blocks; a burst that
/// overflows the socket's buffer is counted, not fatal.
#[derive(Debug)]
pub struct NflogListener {
    socket: Socket,
    buffer: Vec<u8>,
    /// Samples whose headers could not be read.
    pub undecodable: u64,
    /// Times the kernel dropped samples because we read too slowly.
    pub overruns: u64,
}

impl NflogListener {
    /// Binds to `group`, asking for the first `snapshot` bytes of each
    /// packet (the rule's own snap length caps it too).
    pub fn open(group: u16, snapshot: u32) -> Result<Self, NftError> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        let config = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
        let mut bind = Attributes::default();
        bind.put(1, &[NFULNL_CFG_CMD_BIND]);
        // struct nfulnl_msg_config_mode: copy range (be32), mode, padding.
        let mut mode_value = snapshot.to_be_bytes().to_vec();
        mode_value.extend([NFULNL_COPY_PACKET, 0]);
        let mut mode = Attributes::default();
        mode.put(2, &mode_value);
        let mut messages_out = request(config, NLM_F_ACK, 1, 0, group, &bind.bytes);
        messages_out.extend(request(config, NLM_F_ACK, 2, 0, group, &mode.bytes));
        socket.send(&messages_out, 0)?;
        await_acknowledgements(&socket, 2)?;
        socket.set_non_blocking(true)?;
        Ok(Self {
            socket,
            buffer: Vec::with_capacity(1 << 16),
            undecodable: 0,
            overruns: 0,
        })
    }

    /// Appends every sample waiting on the socket to `into`.
    pub fn receive(&mut self, into: &mut Vec<PacketSample>) -> Result<(), NftError> {
        loop {
            self.buffer.clear();
            match self.socket.recv(&mut self.buffer, 0) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.raw_os_error() == Some(ENOBUFS) => {
                    self.overruns += 1;
                    continue;
                }
                Err(error) => return Err(error.into()),
            }
            for message in messages(&self.buffer) {
                if message.kind != (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET {
                    continue;
                }
                let mut payload = None;
                let mut via = None;
                for (kind, value) in message.payload.get(4..).into_iter().flat_map(attributes) {
                    match kind {
                        NFULA_PAYLOAD => payload = Some(value),
                        NFULA_HWADDR => via = link_address(value),
                        _ => {}
                    }
                }
                match payload.map(decode) {
                    Some(Ok(sample)) => into.push(PacketSample { via, ..sample }),
                    _ => self.undecodable += 1,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    /// The listener against the kernel: a `log group` rule on lo's ingress
    /// in a namespace of the test's own samples three datagrams.
    #[test]
    fn the_listener_decodes_what_a_log_rule_samples() {
        use crate::nft::tests::{bring_lo_up, in_new_namespace, ingress_on_lo, to_127_0_0_2};
        use crate::nft::{Batch, Expression, Family};

        let (samples, local_port, undecodable) = in_new_namespace(|| {
            bring_lo_up();
            let mut listener = NflogListener::open(7, 128).expect("bound to group 7");
            let mut batch = Batch::default();
            batch
                .add_table(Family::Netdev, "ixgate")
                .add_chain(Family::Netdev, "ixgate", &ingress_on_lo())
                .add_rule(
                    Family::Netdev,
                    "ixgate",
                    "ingress",
                    &[
                        to_127_0_0_2(),
                        vec![Expression::Log {
                            group: 7,
                            snaplen: 64,
                        }],
                    ]
                    .concat(),
                );
            batch.apply().expect("the kernel takes the batch");
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bound");
            let local_port = socket.local_addr().expect("an address").port();
            for _ in 0..3 {
                socket.send_to(&[0; 100], "127.0.0.2:9").expect("sent");
            }
            let mut samples = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while samples.len() < 3 && std::time::Instant::now() < deadline {
                listener.receive(&mut samples).expect("read");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            (samples, local_port, listener.undecodable)
        });
        assert_eq!(samples.len(), 3, "{samples:?}");
        assert_eq!(undecodable, 0);
        for sample in samples {
            assert_eq!(sample.source, IpAddr::from([127, 0, 0, 1]));
            assert_eq!(sample.destination, IpAddr::from([127, 0, 0, 2]));
            assert_eq!(sample.protocol, 17);
            assert_eq!(sample.source_port, Some(local_port));
            assert_eq!(sample.destination_port, Some(9));
            // The header's length, not the snapshot's: 20 + 8 + 100.
            assert_eq!(sample.length, 128);
            assert_eq!(sample.ttl, 64);
        }
    }
}
