//! nftables over netlink: the rendered ruleset, atomic apply, counters,
//! NFLOG sampling, and the flood detector.
//!
//! Our own nf_tables client ([`nft`]: tables, chains, sets, counter
//! objects and rules sent as one atomic batch, checked against `nft`;
//! counter reads in one dump); the ruleset, a pure function of policy
//! ([`ruleset`]) installed in place without resetting counters
//! ([`install`]); sampling ([`sample`]: a pure decoder of sampled headers;
//! [`nflog`]: a non-blocking NFLOG listener; [`sampling`]: the pure choice
//! of 1-in-N); the flood detector ([`detector`], pure); and [`watch`],
//! which ties them together for the daemon, one tick at a time.

pub mod detector;
pub mod install;
pub mod nflog;
pub mod nft;
pub mod ruleset;
pub mod sample;
pub mod sampling;
pub mod watch;
