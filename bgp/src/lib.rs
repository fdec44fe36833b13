//! BGP for the appliance: the wire format ([`wire`]), the per-peer session
//! state machine ([`fsm`], sans-IO), and what is sent and received.

pub mod export;
pub mod fsm;
pub mod rib;
pub mod socket;
pub mod speaker;
pub mod wire;
