//! Reconciliation, pure: the operations that take the kernel from what a
//! dump found of ours to the desired state, in an order that never opens
//! a gap.
//!
//! Make before break: the holder, its addresses and every route go in
//! before the rules that send traffic to the routes; stale rules go before
//! the routes they pointed at. A table is never looked up while it is
//! empty, so anycast replies cannot fall through to `main` and leave over
//! transit. Nothing that is not ours is in `actual`, so nothing that is
//! not ours is ever deleted.

use crate::state::{AddressSpec, LinkSpec, RouteSpec, RoutingState, RuleSpec};

/// One change to the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Links are created, never deleted: without a tag of ours on links,
    /// one of the same name may be the operator's.
    AddLink(LinkSpec),
    AddAddress(AddressSpec),
    /// Adds the route, or replaces the one with the same key.
    UpsertRoute(RouteSpec),
    AddRule(RuleSpec),
    DeleteRule(RuleSpec),
    DeleteRoute(RouteSpec),
    DeleteAddress(AddressSpec),
}

/// The operations from `actual` to `desired`; none when they agree.
pub fn reconcile(desired: &RoutingState, actual: &RoutingState) -> Vec<Op> {
    let mut ops = Vec::new();
    ops.extend(
        desired
            .links
            .difference(&actual.links)
            .cloned()
            .map(Op::AddLink),
    );
    ops.extend(
        desired
            .addresses
            .difference(&actual.addresses)
            .cloned()
            .map(Op::AddAddress),
    );
    ops.extend(
        desired
            .routes
            .difference(&actual.routes)
            .cloned()
            .map(Op::UpsertRoute),
    );
    ops.extend(
        desired
            .rules
            .difference(&actual.rules)
            .cloned()
            .map(Op::AddRule),
    );
    ops.extend(
        actual
            .rules
            .difference(&desired.rules)
            .cloned()
            .map(Op::DeleteRule),
    );
    // A stale route whose key a desired route has was replaced in place.
    ops.extend(
        actual
            .routes
            .difference(&desired.routes)
            .filter(|stale| !desired.routes.iter().any(|want| want.key() == stale.key()))
            .cloned()
            .map(Op::DeleteRoute),
    );
    ops.extend(
        actual
            .addresses
            .difference(&desired.addresses)
            .cloned()
            .map(Op::DeleteAddress),
    );
    ops
}

#[cfg(test)]
mod tests;
