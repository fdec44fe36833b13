//! A node file for tests built in memory: every rule that needs no file
//! system passes, and `PAIRED` stands for the paired telco's name.

#![allow(dead_code)] // each test binary uses its own part

pub const NODE: &str = r#"
[node]
name = "node-1"
asn = 65000
router_id = "198.51.100.11"
paired_telco = "PAIRED"

[interfaces]
anycast = "ixp0"
transit = "transit0"
anycast_holder = "lo"

[bgp]
local_v4 = "198.51.100.11"
local_v6 = "2001:db8:ff::11"

[anycast]
prefixes = ["192.0.2.0/24", "2001:db8:100::/48", "2001:db8:200::/48"]
service_ips = ["192.0.2.10"]

[transit]
sources = ["203.0.113.11"]
gateways = ["203.0.113.1"]

[management]
metrics = "127.0.0.1:9180"
control_socket = "/run/ixgate.sock"

[tls]
ticket_key_file = "t"

[[services]]
name = "bank-a"
sni = ["api.bank-a.example"]
certificate = "c"
private_key = "k"
client_ca = "ca"
origins = ["https://203.0.113.65"]
origin_ca = "oca"
origin_sni = "origin.bank-a.example"
"#;

/// The template with the paired telco filled in and `edit` applied.
pub fn node_with(paired: &str, edit: impl Fn(String) -> String) -> String {
    edit(NODE.replace("PAIRED", paired))
}

/// Two valid telco files, `telco-a` and `telco-b`.
pub const TELCO_A: &str = "name = \"telco-a\"\nasn = 65010\nneighbor_v4 = \"198.51.100.1\"\nneighbor_v6 = \"2001:db8:ff::1\"\n";
pub const TELCO_B: &str = "name = \"telco-b\"\nasn = 65020\nneighbor_v4 = \"198.51.100.2\"\n";
