//! BGP sessions of the appliance: the wire facade, the per-peer FSM, the
//! adj-RIBs, export policy, Flowspec and RTBH origination, TCP-MD5 and GTSM
//! sockets.
//!
//! Empty until the BGP speaker issue: nothing here pretends to work yet.
