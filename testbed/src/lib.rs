//! Network-namespace labs for ixgate.
//!
//! So far: the test PKI. The labs themselves (topology, namespaces, telco
//! routers, origin, clients, attacker) come with the testbed issue.

pub mod pki;
