//! nftables over netlink: the rendered ruleset, atomic apply, counters,
//! NFLOG sampling, and the flood detector.
//!
//! So far: the flood detector ([`detector`], pure); our own nf_tables
//! client ([`nft`]: tables, chains, sets, counter objects and rules sent
//! as one atomic batch and checked against `nft`; counter reads in one
//! dump); sampling ([`sample`]: a pure decoder of sampled headers;
//! [`nflog`]: a non-blocking NFLOG group listener). The ruleset rendered
//! from policy, its lifecycle and the adaptive sampling rate come with the
//! rest of the firewall issue.

pub mod detector;
pub mod install;
pub mod nflog;
pub mod nft;
pub mod ruleset;
pub mod sample;
