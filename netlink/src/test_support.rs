//! What the namespace tests of this crate share: a throwaway network
//! namespace with node-1's interfaces, and node-1's plan.

use std::path::Path;
use std::process::Command;

use ixgate_policy::Config;

use crate::plan::desired;
use crate::state::RoutingState;

/// Runs `body` on a thread of its own in a new network namespace.
pub(crate) fn in_new_namespace<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare (root needed)");
        body()
    })
    .join()
    .expect("the namespace thread")
}

/// `ip ARGS` in this thread's namespace; its standard output.
pub(crate) fn ip(args: &str) -> String {
    let output = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("ip runs");
    assert!(
        output.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// node-1's anycast and transit interfaces, addressed as in the lab.
pub(crate) fn node_1_interfaces() {
    for (name, v4, v6) in [
        ("ixp0", "198.51.100.11/26", "2001:db8:ff::11/64"),
        ("transit0", "203.0.113.11/26", "2001:db8:200::11/64"),
    ] {
        ip(&format!("link add {name} type veth peer name {name}-peer"));
        std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{name}/keep_addr_on_down"),
            "1",
        )
        .expect("keep IPv6 addresses on down");
        ip(&format!("addr add {v4} dev {name}"));
        ip(&format!("addr add {v6} dev {name} nodad"));
        ip(&format!("link set {name} up"));
        ip(&format!("link set {name}-peer up"));
    }
    ip("link set lo up");
}

/// node-1 of the lab's configuration.
pub(crate) fn node_1_config() -> Config {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lab/node-1");
    ixgate_policy::load(&dir).expect("the lab configuration loads")
}

/// node-1's plan.
pub(crate) fn node_1() -> RoutingState {
    desired(&node_1_config())
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}
