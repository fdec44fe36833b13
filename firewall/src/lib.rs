//! nftables over netlink: the rendered ruleset, atomic apply, counters,
//! NFLOG sampling, and the flood detector.
//!
//! So far: the flood detector ([`detector`]), pure. The ruleset, its
//! netlink builder, counters and sampling come with the rest of the
//! firewall issue.

pub mod detector;
