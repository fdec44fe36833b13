use super::*;
use crate::state::{ANYCAST_TABLE, RouteTarget};
use crate::test_support::node_1;

/// Where the first operation of each kind is, to check the order.
fn first(ops: &[Op], kind: fn(&Op) -> bool) -> usize {
    ops.iter().position(kind).unwrap_or(usize::MAX)
}

fn last(ops: &[Op], kind: fn(&Op) -> bool) -> usize {
    ops.iter().rposition(kind).unwrap_or(0)
}

#[test]
fn from_nothing_routes_come_before_the_rules_that_use_them() {
    let want = node_1();
    let ops = reconcile(&want, &RoutingState::default());
    assert_eq!(
        ops.len(),
        want.links.len() + want.addresses.len() + want.routes.len() + want.rules.len()
    );
    let is_route = |op: &Op| matches!(op, Op::UpsertRoute(_));
    let is_rule = |op: &Op| matches!(op, Op::AddRule(_));
    let is_address = |op: &Op| matches!(op, Op::AddAddress(_));
    assert!(last(&ops, is_route) < first(&ops, is_rule), "{ops:#?}");
    assert!(last(&ops, is_address) < first(&ops, is_route), "{ops:#?}");
    assert!(matches!(ops.first(), Some(Op::AddLink(_))), "{ops:#?}");
}

#[test]
fn the_second_run_changes_nothing() {
    let want = node_1();
    assert_eq!(reconcile(&want, &want), []);
}

#[test]
fn a_new_gateway_replaces_the_route_in_place() {
    let before = node_1();
    let mut after = before.clone();
    let old = after
        .routes
        .iter()
        .find(|route| route.table == ANYCAST_TABLE && route.target != RouteTarget::Unreachable)
        .cloned()
        .expect("the anycast default");
    after.routes.remove(&old);
    let mut new = old.clone();
    new.target = RouteTarget::Via {
        gateway: "198.51.100.2".parse().expect("address"),
        interface: "ixp0".into(),
    };
    after.routes.insert(new.clone());
    assert_eq!(reconcile(&after, &before), [Op::UpsertRoute(new)]);
}

#[test]
fn a_moved_rule_is_added_before_the_old_one_goes() {
    let before = node_1();
    let mut after = before.clone();
    let old = after.rules.pop_first().expect("a rule");
    let mut moved = old.clone();
    moved.priority += 10;
    after.rules.insert(moved.clone());
    assert_eq!(
        reconcile(&after, &before),
        [Op::AddRule(moved), Op::DeleteRule(old)]
    );
}

#[test]
fn nothing_wanted_removes_rules_then_routes_then_addresses() {
    let before = node_1();
    let ops = reconcile(&RoutingState::default(), &before);
    assert_eq!(
        ops.len(),
        before.addresses.len() + before.routes.len() + before.rules.len(),
        "links stay"
    );
    let is_rule = |op: &Op| matches!(op, Op::DeleteRule(_));
    let is_route = |op: &Op| matches!(op, Op::DeleteRoute(_));
    let is_address = |op: &Op| matches!(op, Op::DeleteAddress(_));
    assert!(last(&ops, is_rule) < first(&ops, is_route), "{ops:#?}");
    assert!(last(&ops, is_route) < first(&ops, is_address), "{ops:#?}");
}
