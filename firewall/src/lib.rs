//! nftables over netlink: the rendered ruleset, atomic apply, counters,
//! NFLOG sampling, and the flood detector.
//!
//! So far: the flood detector ([`detector`], pure) and our own nf_tables
//! client ([`nft`]: tables, chains, sets, counter objects and rules sent
//! as one atomic batch and checked against `nft`; counter reads in one
//! dump), and the decoder of sampled packet headers ([`sample`], pure).
//! The ruleset rendered from policy and the NFLOG listener come with the
//! rest of the firewall issue.

pub mod detector;
pub mod nft;
pub mod sample;
