//! Policy routing that keeps anycast and transit apart.
//!
//! - [`state`]: the kernel objects as plain values, and the numbers that
//!   mark them ours (protocol 250, tables 100 and 101, rules 1000–1099);
//! - [`plan`]: the desired state from the configuration, pure;
//! - [`reconcile`]: the operations from what the kernel holds of ours to
//!   the desired state, pure, make before break;
//! - [`kernel`]: the rtnetlink executor;
//! - [`monitor`]: reconciling again on link, address, route and rule
//!   events, and telling the appliance when the anycast link goes.

pub mod kernel;
pub mod monitor;
pub mod plan;
pub mod reconcile;
pub mod state;

#[cfg(test)]
mod test_support;
