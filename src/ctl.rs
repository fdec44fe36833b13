//! `ixgate ctl`: ask a running appliance, and print its answer.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::Value;

use crate::table::Table;

pub fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

pub fn peers(data: &Value) -> String {
    let mut table = Table::new(&[
        "TELCO",
        "NEIGHBOUR",
        "AS",
        "STATE",
        "UP (S)",
        "FAMILIES",
        "RECEIVED",
        "ADVERTISED",
        "LAST EVENT",
    ]);
    for peer in data.as_array().into_iter().flatten() {
        table.row(vec![
            text(&peer["telco"]),
            text(&peer["neighbor"]),
            text(&peer["remote_asn"]),
            text(&peer["state"]),
            text(&peer["established_for"]),
            text(&peer["families"]),
            text(&peer["received"]),
            text(&peer["advertised"]),
            text(&peer["last_error"]),
        ]);
    }
    table.render("")
}

pub fn routes(peer: IpAddr, data: &Value) -> String {
    let mut out = String::new();
    for direction in ["advertised", "received"] {
        let _ = writeln!(out, "{direction} to/from {peer}");
        let mut table = Table::new(&[
            "ROUTE",
            "AS PATH",
            "NEXT HOP",
            "COMMUNITIES",
            "LARGE",
            "ACTIONS",
        ]);
        for route in data[direction].as_array().into_iter().flatten() {
            table.row(vec![
                text(&route["route"]),
                text(&route["as_path"]),
                text(&route["next_hop"]),
                text(&route["communities"]),
                text(&route["large_communities"]),
                text(&route["actions"]),
            ]);
        }
        out.push_str(&table.render("  "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_table() {
        let data = serde_json::json!([{
            "telco": "telco-a", "neighbor": "198.51.100.1", "remote_asn": 65010, "state": "Established",
            "established_for": 12, "families": ["Ipv4Unicast", "Ipv4Flowspec"], "received": 0,
            "advertised": 1, "last_error": null
        }]);
        let table = peers(&data);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("TELCO    NEIGHBOUR     AS     STATE"),
            "{table}"
        );
        assert!(
            lines[1].starts_with("telco-a  198.51.100.1  65010  Established  12"),
            "{table}"
        );
        assert!(
            lines[1].contains("Ipv4Unicast Ipv4Flowspec  0         1           -"),
            "{table}"
        );
    }
}
