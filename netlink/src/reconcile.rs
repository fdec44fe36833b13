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

use std::collections::BTreeSet;

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
    ops.extend(only_in(&desired.links, &actual.links, Op::AddLink));
    ops.extend(only_in(
        &desired.addresses,
        &actual.addresses,
        Op::AddAddress,
    ));
    ops.extend(only_in(&desired.routes, &actual.routes, Op::UpsertRoute));
    ops.extend(only_in(&desired.rules, &actual.rules, Op::AddRule));
    ops.extend(only_in(&actual.rules, &desired.rules, Op::DeleteRule));
    // A stale route whose key a desired route has was replaced in place.
    ops.extend(
        only_in(&actual.routes, &desired.routes, Op::DeleteRoute).filter(|op| {
            !matches!(op, Op::DeleteRoute(stale)
                if desired.routes.iter().any(|want| want.key() == stale.key()))
        }),
    );
    ops.extend(only_in(
        &actual.addresses,
        &desired.addresses,
        Op::DeleteAddress,
    ));
    ops
}

/// `op` of every element of `set` that `other` lacks.
fn only_in<'a, T: Ord + Clone>(
    set: &'a BTreeSet<T>,
    other: &'a BTreeSet<T>,
    op: fn(T) -> Op,
) -> impl Iterator<Item = Op> + 'a {
    set.difference(other).cloned().map(op)
}

#[cfg(test)]
mod tests;
