//! The executor against the real kernel, in a throwaway network namespace
//! with node-1's interfaces (veth pairs with nothing behind them).

use super::*;
use crate::state::ANYCAST_TABLE;
use crate::test_support::{in_new_namespace, ip, node_1, node_1_interfaces, runtime};

#[test]
fn reconciled_once_a_second_run_writes_nothing_and_foreign_routes_stay() {
    let (first, second, found, rules, route_get, foreign) = in_new_namespace(|| {
        node_1_interfaces();
        // Not through ixp0: an admin-down would flush it with ours.
        ip("route add unreachable 10.0.0.0/8 table 100 proto static");
        runtime().block_on(async {
            let kernel = Kernel::connect().expect("netlink");
            let want = node_1();
            let first = kernel.reconcile(&want).await.expect("first");
            let second = kernel.reconcile(&want).await.expect("second");
            let found = kernel.ours(&want.links).await.expect("dump");
            (
                first,
                second,
                found == want,
                ip("rule show"),
                ip("route get 203.0.113.65 from 192.0.2.10"),
                ip("route show table 100 proto static"),
            )
        })
    });
    assert!(first.failed.is_empty(), "{:#?}", first.failed);
    assert!(!first.done.is_empty());
    assert!(
        second.done.is_empty() && second.failed.is_empty(),
        "{second:#?}"
    );
    assert!(found, "the dump of ours is the desired state");
    assert!(
        rules.contains("1000:\tfrom 192.0.2.0/24 lookup 100 proto 250"),
        "{rules}"
    );
    assert!(
        route_get.contains("via 198.51.100.1 dev ixp0 table 100"),
        "anycast replies leave through the anycast interface: {route_get}"
    );
    assert!(
        foreign.contains("10.0.0.0/8"),
        "foreign route kept: {foreign}"
    );
}

#[test]
fn admin_down_and_up_is_repaired_and_nothing_wanted_removes_only_ours() {
    let (repair, after_repair, emptied, leftover, foreign) = in_new_namespace(|| {
        node_1_interfaces();
        // Not through ixp0: an admin-down would flush it with ours.
        ip("route add unreachable 10.0.0.0/8 table 100 proto static");
        runtime().block_on(async {
            let kernel = Kernel::connect().expect("netlink");
            let want = node_1();
            kernel.reconcile(&want).await.expect("first");
            // IPv4 routes through a device that goes admin-down vanish
            // without a word (no RTM_DELROUTE).
            ip("link set ixp0 down");
            ip("link set ixp0 up");
            let repair = kernel.reconcile(&want).await.expect("repair");
            let after_repair = kernel.reconcile(&want).await.expect("again");
            let emptied = kernel
                .reconcile(&RoutingState {
                    links: want.links.clone(),
                    ..RoutingState::default()
                })
                .await
                .expect("empty");
            let leftover = kernel.ours(&want.links).await.expect("dump");
            (
                repair,
                after_repair,
                emptied,
                leftover,
                ip("route show table 100 proto static"),
            )
        })
    });
    assert!(repair.failed.is_empty(), "{:#?}", repair.failed);
    assert!(
        repair.done.iter().any(|op| matches!(op,
            Op::UpsertRoute(route) if route.table == ANYCAST_TABLE
                && route.destination.addr().is_ipv4()
                && route.target != RouteTarget::Unreachable)),
        "the flushed anycast default is back: {repair:#?}"
    );
    assert!(after_repair.done.is_empty(), "{after_repair:#?}");
    assert!(emptied.failed.is_empty(), "{:#?}", emptied.failed);
    assert_eq!(
        leftover,
        RoutingState {
            links: leftover.links.clone(),
            ..RoutingState::default()
        },
        "nothing of ours is left but the holder"
    );
    assert!(
        foreign.contains("10.0.0.0/8"),
        "foreign route kept: {foreign}"
    );
}

#[test]
fn the_neighbours_are_read_with_their_link_layer_addresses() {
    let found = in_new_namespace(|| {
        node_1_interfaces();
        // The telcos' routers on the peering LAN, as ARP and ND leave them.
        ip("neigh add 198.51.100.1 lladdr 02:00:00:00:00:0a dev ixp0 nud permanent");
        ip("neigh add 2001:db8:ff::2 lladdr 02:00:00:00:00:0b dev ixp0 nud permanent");
        runtime().block_on(async {
            Kernel::connect()
                .expect("netlink")
                .neighbours()
                .await
                .expect("dump")
        })
    });
    let telco_a: IpAddr = "198.51.100.1".parse().expect("address");
    let telco_b: IpAddr = "2001:db8:ff::2".parse().expect("address");
    assert_eq!(
        found.get(&telco_a),
        Some(&[0x02, 0, 0, 0, 0, 0x0a]),
        "{found:?}"
    );
    assert_eq!(
        found.get(&telco_b),
        Some(&[0x02, 0, 0, 0, 0, 0x0b]),
        "{found:?}"
    );
}
