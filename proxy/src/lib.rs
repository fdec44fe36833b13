//! mTLS termination per bank service, the hidden origin over transit,
//! HTTP/1.1, HTTP/2 and HTTP/3, proxy metrics.
//!
//! Empty until the proxy issue: nothing here pretends to work yet.
