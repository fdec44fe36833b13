//! Policy routing that keeps anycast and transit apart: a pure planner, an
//! rtnetlink executor and a link monitor.
//!
//! Empty until the policy-routing issue: nothing here pretends to work yet.
