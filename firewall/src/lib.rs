//! nftables over netlink: the rendered ruleset, atomic apply, counters,
//! NFLOG sampling and the flood detector.
//!
//! Empty until the firewall issue: nothing here pretends to work yet.
