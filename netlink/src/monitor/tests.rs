use std::time::Instant;

use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::packet_route::route::RouteMessage;

use super::*;
use crate::test_support::{in_new_namespace, ip, node_1, node_1_interfaces, runtime};

#[test]
fn what_events_mean() {
    let mut link = LinkMessage::default();
    link.header.flags = LinkFlags::Up;
    link.attributes.push(LinkAttribute::IfName("ixp0".into()));
    let message = NetlinkMessage::from(RouteNetlinkMessage::NewLink(link));
    assert_eq!(
        classify(&message),
        Seen::Link {
            name: "ixp0".into(),
            up: true,
            running: false
        }
    );
    let deleted = NetlinkMessage::from(RouteNetlinkMessage::DelRoute(RouteMessage::default()));
    assert_eq!(classify(&deleted), Seen::Changed);
    let overrun = NetlinkMessage::<RouteNetlinkMessage>::new(
        rtnetlink::packet_core::NetlinkHeader::default(),
        NetlinkPayload::Overrun(vec![]),
    );
    assert_eq!(classify(&overrun), Seen::Overrun);
}

/// Polls `status` until `done` holds, for at most `within`; how long it took.
async fn until(
    status: &Mutex<RoutingStatus>,
    within: Duration,
    done: impl Fn(&RoutingStatus) -> bool,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if status.lock().is_ok_and(|status| done(&status)) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[test]
fn an_admin_down_flush_is_repaired_within_a_second_and_stop_removes_ours() {
    let (synced, repaired, link_events, removed) = in_new_namespace(|| {
        node_1_interfaces();
        let want = node_1();
        runtime().block_on(async move {
            let status = Arc::new(Mutex::new(RoutingStatus::default()));
            let (links, mut link_events) = mpsc::unbounded_channel();
            let (stop, stopped) = oneshot::channel();
            let (_desired, wanted) = watch::channel(want.clone());
            let task = tokio::spawn(maintain(
                wanted,
                "ixp0".into(),
                status.clone(),
                links,
                stopped,
            ));
            let in_sync = RoutingStatus::in_sync;
            let synced = until(&status, Duration::from_secs(5), in_sync).await;
            let writes = status.lock().map_or(0, |status| status.writes);
            ip("link set ixp0 down");
            ip("link set ixp0 up");
            let repaired = until(&status, Duration::from_secs(1), |status| {
                status.writes > writes && in_sync(status)
            })
            .await;
            let mut seen = Vec::new();
            while let Ok(event) = link_events.try_recv() {
                seen.push(event.up);
            }
            let _ = stop.send(());
            let _ = task.await;
            let removed = status
                .lock()
                .map(|status| status.actual.clone())
                .unwrap_or_default();
            (synced, repaired, seen, removed)
        })
    });
    assert!(synced.is_some(), "in sync after the start");
    assert!(repaired.is_some(), "repaired within 1 s of the flush");
    assert!(
        link_events.contains(&false),
        "the anycast link's loss told: {link_events:?}"
    );
    assert_eq!(
        removed.routes.len() + removed.rules.len() + removed.addresses.len(),
        0,
        "{removed:#?}"
    );
}
