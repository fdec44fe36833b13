//! Whatever bytes a peer sends, decoding ends in messages or a
//! NOTIFICATION, never a panic, a hang or an unbounded allocation.

#![no_main]

use bytes::BytesMut;
use ixgate_bgp::wire::{Context, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for four_octet_as in [true, false] {
        let mut buffer = BytesMut::from(data);
        // At most as many messages as 19-byte headers fit in the input.
        for _ in 0..=data.len() / 19 {
            match decode(&mut buffer, Context { four_octet_as }) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
});
