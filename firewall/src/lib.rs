//! nftables over netlink: the rendered ruleset, atomic apply, counters,
//! NFLOG sampling, and the flood detector.
//!
//! So far: the flood detector ([`detector`], pure) and the core of our own
//! nf_tables message builder ([`nft`]: tables, chains, counter objects and
//! rules sent as one atomic batch, checked against `nft`). The ruleset
//! rendered from policy, the remaining expressions, counter reads and
//! sampling come with the rest of the firewall issue.

pub mod detector;
pub mod nft;
