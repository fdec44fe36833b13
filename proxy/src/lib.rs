//! mTLS termination per bank service and the hidden origin over transit.
//!
//! - [`tls`]: each service's rustls configuration (its bank's CAs and
//!   CRLs, client certificate required) and why handshakes are refused;
//! - [`revocation`]: app certificates against the bank's CRLs, their
//!   signatures verified once;
//! - [`tickets`]: session tickets any node of the site can open;
//! - [`identity`]: the client certificate told to the origin in headers;
//! - [`limits`]: per-certificate request rate, per-source connections;
//! - [`upstream`]: pooled TLS to the origins over transit;
//! - [`server`]: listeners, the handshake with the service chosen by SNI,
//!   reload, health checks;
//! - `app_socket`: the app's TCP socket, which holds the TLS 1.3 session
//!   ticket until the first answer;
//! - `exchange`: HTTP/1.1 and HTTP/2 forwarding of one verified
//!   connection, parked between HTTP/1.1 requests;
//! - `quic`: HTTP/3 over QUIC, the service chosen by address;
//! - [`metrics`]: what the proxy counts.

mod app_socket;
mod exchange;
pub mod identity;
pub mod limits;
pub mod metrics;
mod quic;
pub mod revocation;
pub mod server;
pub mod tickets;
pub mod tls;
pub mod upstream;
mod watch;

pub use server::{HEALTH_USER_AGENT, HTTPS_PORT, Proxy, ProxyError, ServiceStatus};
