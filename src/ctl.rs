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

pub fn routing(data: &Value) -> String {
    let yes_no = |value: &Value| {
        if value == &Value::Bool(true) {
            "yes"
        } else {
            "no"
        }
    };
    let mut table = Table::new(&["KIND", "OBJECT", "DESIRED", "ACTUAL"]);
    for object in data["objects"].as_array().into_iter().flatten() {
        table.row(vec![
            text(&object["kind"]),
            text(&object["object"]),
            yes_no(&object["desired"]).to_owned(),
            yes_no(&object["actual"]).to_owned(),
        ]);
    }
    let mut out = table.render("");
    let _ = writeln!(
        out,
        "in sync: {}; reconciles {}, writes {}",
        yes_no(&data["in_sync"]),
        text(&data["reconciles"]),
        text(&data["writes"])
    );
    for failure in data["failures"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "refused: {}", text(failure));
    }
    out
}

pub fn services(data: &Value) -> String {
    let mut table = Table::new(&["SERVICE", "SNI", "ORIGIN", "HEALTHY"]);
    for service in data.as_array().into_iter().flatten() {
        for origin in service["origins"].as_array().into_iter().flatten() {
            table.row(vec![
                text(&service["name"]),
                text(&service["sni"]),
                text(&origin["url"]),
                if origin["healthy"] == Value::Bool(true) {
                    "yes"
                } else {
                    "no"
                }
                .to_owned(),
            ]);
        }
    }
    table.render("")
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

pub fn counters(data: &Value) -> String {
    let mut table = Table::new(&["TARGET", "COUNTED", "PACKETS", "BYTES", "PPS", "BIT/S"]);
    for counter in data["counters"].as_array().into_iter().flatten() {
        table.row(vec![
            if counter["target"].is_null() {
                "rest of anycast".to_owned()
            } else {
                text(&counter["target"])
            },
            text(&counter["counted"]),
            text(&counter["packets"]),
            text(&counter["bytes"]),
            text(&counter["pps"]),
            text(&counter["bps"]),
        ]);
    }
    let mut out = table.render("");
    let _ = writeln!(
        out,
        "sampling 1 in {}; limits {}; samples undecodable {}, lost to overruns {}",
        text(&data["sample_one_in"]),
        if data["tightened"] == Value::Bool(true) {
            "tightened (flood)"
        } else {
            "as configured"
        },
        text(&data["samples_undecodable"]),
        text(&data["sample_overruns"]),
    );
    if !data["error"].is_null() {
        let _ = writeln!(out, "last read failed: {}", text(&data["error"]));
    }
    out
}

/// Decisions shown by `show mitigations`, newest last.
const DECISIONS_SHOWN: usize = 20;

pub fn mitigations(data: &Value) -> String {
    let mut out = String::new();
    let withdrawn = data["drained"] == true || data["withdrawn_by_controller"] == true;
    let _ = writeln!(
        out,
        "anycast prefixes: {}{}",
        if withdrawn { "withdrawn" } else { "announced" },
        match data["drained_telcos"].as_array() {
            Some(telcos) if !telcos.is_empty() =>
                format!(" (drained toward {})", text(&data["drained_telcos"])),
            _ => String::new(),
        }
    );
    if let Some(telcos) = data["withdrawn_telcos"].as_array()
        && !telcos.is_empty()
    {
        let _ = writeln!(
            out,
            "withdrawn from {} by the controller (a flood spent its link's share)",
            text(&data["withdrawn_telcos"])
        );
    }
    let mut rules = Table::new(&["KIND", "RULE"]);
    let mut active = 0;
    for flow in data["flows"].as_array().into_iter().flatten() {
        active += 1;
        let rule = serde_json::from_value::<crate::control::FlowSpec>(flow.clone())
            .map_or_else(|_| flow.to_string(), |flow| flow.to_string());
        rules.row(vec!["flowspec".to_owned(), rule]);
    }
    for (key, kind) in [("blackholes", "rtbh"), ("source_blackholes", "source-rtbh")] {
        for prefix in data[key].as_array().into_iter().flatten() {
            active += 1;
            rules.row(vec![kind.to_owned(), text(prefix)]);
        }
    }
    if active == 0 {
        out.push_str("no mitigation active\n");
    } else {
        out.push_str(&rules.render(""));
    }
    let decisions = data["decisions"].as_array().cloned().unwrap_or_default();
    let mut table = Table::new(&["AT (UNIX MS)", "DECISION", "REASON"]);
    for decision in decisions
        .iter()
        .skip(decisions.len().saturating_sub(DECISIONS_SHOWN))
    {
        table.row(vec![
            text(&decision["at_unix_ms"]),
            text(&decision["intent"]),
            text(&decision["reason"]),
        ]);
    }
    out.push('\n');
    if decisions.is_empty() {
        out.push_str("no decision yet\n");
    } else {
        out.push_str(&table.render(""));
    }
    out
}

pub fn floods(data: &Value) -> String {
    let mut table = Table::new(&["TARGET", "CLASS", "STATE", "PPS", "SIGNATURE"]);
    for flood in data.as_array().into_iter().flatten() {
        let signature = &flood["signature"];
        let mut parts = Vec::new();
        for (key, name) in [
            ("protocol", "proto"),
            ("destination_port", "dport"),
            ("tcp_flags", "flags"),
            ("length", "length"),
            ("source_prefixes", "from"),
        ] {
            let value = &signature[key];
            if !value.is_null() && value.as_array().is_none_or(|items| !items.is_empty()) {
                parts.push(format!("{name} {}", text(value)));
            }
        }
        table.row(vec![
            text(&flood["target"]),
            text(&flood["class"]),
            if flood["ended_unix_ms"].is_null() {
                "ongoing".to_owned()
            } else {
                "ended".to_owned()
            },
            text(&flood["pps"]),
            parts.join(", "),
        ]);
    }
    table.render("")
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

    #[test]
    fn mitigations_table() {
        let data = serde_json::json!({
            "drained": false, "drained_telcos": [], "withdrawn_by_controller": false,
            "flows": [{
                "destination": "192.0.2.10/32", "source": null, "protocol": 6,
                "destination_port": 443, "tcp_flags": 2, "packet_length": [40, 40],
                "rate_bytes": 0.0
            }],
            "blackholes": [], "source_blackholes": ["198.51.100.80/28"],
            "decisions": [{"at_unix_ms": 1, "intent": "add Flowspec dst 192.0.2.10/32", "reason": "Syn flood"}]
        });
        let text = mitigations(&data);
        assert!(text.starts_with("anycast prefixes: announced\n"), "{text}");
        assert!(
            text.contains(
                "flowspec     dst 192.0.2.10/32 proto 6 dport 443 flags 0x02 length 40 → discard"
            ),
            "{text}"
        );
        assert!(text.contains("source-rtbh  198.51.100.80/28"), "{text}");
        assert!(text.contains("Syn flood"), "{text}");
        let quiet = mitigations(&serde_json::json!({"flows": [], "decisions": []}));
        assert!(quiet.contains("no mitigation active"), "{quiet}");
        assert!(quiet.contains("no decision yet"), "{quiet}");
    }
}
