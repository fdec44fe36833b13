//! The BGP wire format: our message types, and the only place that talks to
//! the codec crate (`rustbgpd-wire`), so that it can be replaced without
//! touching the rest.

pub mod codec;
pub mod flow;
pub mod message;
pub mod update;

pub use codec::{Context, EncodeError, decode, encode};
pub use flow::{FlowAction, FlowFamily, FlowMatch, FlowRule};
pub use message::{Family, Message, Notification, Open, codes};
pub use update::{Attributes, Nlri, Origin, Update};
