//! `ixgate check` on the shipped examples: the lab is valid and shows its
//! plan; every broken example is refused with its exact messages and
//! positions (golden files; `UPDATE_EXPECTED=1` rewrites them).

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::path::Path;
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ixgate"))
        .arg("check")
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("ixgate runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// One test per broken example, named after the rule it breaks.
macro_rules! invalid_examples {
    ($($test:ident => $dir:literal),* $(,)?) => {
        $(#[test] fn $test() { assert_refused($dir); })*
        const INVALID_EXAMPLES: &[&str] = &[$($dir),*];
    };
}

invalid_examples! {
    unknown_key => "unknown-key",
    wrong_type => "wrong-type",
    duplicate_telco_name => "duplicate-telco-name",
    duplicate_telco_asn => "duplicate-telco-asn",
    duplicate_neighbor => "duplicate-neighbor",
    paired_telco_undefined => "paired-telco-undefined",
    service_ip_outside_anycast => "service-ip-outside-anycast",
    prefix_too_long_v4 => "prefix-too-long-v4",
    prefix_too_long_v6 => "prefix-too-long-v6",
    unreadable_ca => "unreadable-ca",
    unreadable_crl => "unreadable-crl",
    unreadable_key => "unreadable-key",
    ca_without_ca_cert => "ca-without-ca-cert",
    crl_wrong_signer => "crl-wrong-signer",
    exit_not_below_enter => "exit-not-below-enter",
    hold_time_1 => "hold-time-1",
    hold_time_2 => "hold-time-2",
    asn_zero => "asn-zero",
    asn_23456 => "asn-23456",
    several_errors_in_one_run => "several-errors",
}

fn assert_refused(name: &str) {
    let dir = format!("examples/invalid/{name}");
    let output = check(&["--config", &dir]);
    let printed = stdout(&output);
    let expected_path = Path::new(ROOT).join(&dir).join("expected.txt");
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(&expected_path, &printed).expect("golden file written");
    }
    let expected = std::fs::read_to_string(&expected_path).expect("golden file exists");
    assert_eq!(printed, expected, "{dir}: output differs from expected.txt");
    assert_eq!(output.status.code(), Some(1), "{dir}: exit status");
}

#[test]
fn every_invalid_example_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("examples/invalid"))
        .expect("examples/invalid exists")
        .map(|entry| {
            entry
                .expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut tested: Vec<&str> = INVALID_EXAMPLES.to_vec();
    tested.sort_unstable();
    assert_eq!(on_disk, tested);
}

#[test]
fn every_error_message_has_a_position_and_a_sentence() {
    for name in INVALID_EXAMPLES {
        let printed = stdout(&check(&["--config", &format!("examples/invalid/{name}")]));
        let lines: Vec<&str> = printed.lines().collect();
        let (summary, errors) = lines.split_last().expect("output has lines");
        assert!(
            summary.ends_with("error(s); nothing was applied"),
            "{name}: {summary}"
        );
        assert!(!errors.is_empty(), "{name}: no error printed");
        for line in errors {
            // FILE.toml:LINE:COLUMN: Message
            let (place, message) = line.split_once(".toml:").expect("a .toml file is named");
            let mut parts = message.splitn(3, ':');
            let line_number: usize = parts.next().and_then(|l| l.parse().ok()).expect("line");
            let column: usize = parts.next().and_then(|c| c.parse().ok()).expect("column");
            let text = parts.next().expect("message").trim();
            assert!(line_number >= 1 && column >= 1, "{name}: {line}");
            assert!(place.starts_with("examples/invalid/"), "{name}: {line}");
            assert!(
                text.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit()),
                "{name}: {line}"
            );
        }
    }
}

#[test]
fn the_lab_is_valid_and_shows_the_plan() {
    let output = check(&["--config", "examples/lab"]);
    let printed = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(
        printed
            .contains("node-1 (AS65000, router id 198.51.100.11) from examples/lab/node-1: valid")
    );
    assert!(
        printed
            .contains("node-2 (AS65000, router id 198.51.100.12) from examples/lab/node-2: valid")
    );
    // node-1 is paired with telco-a: no prepends there, 3 toward telco-b.
    let node_1 = printed.split("node-2 (").next().expect("node-1 section");
    let row = |telco: &str, neighbour: &str| {
        node_1
            .lines()
            .find(|line| {
                line.trim_start()
                    .starts_with(&format!("{telco}  {neighbour} "))
            })
            .unwrap_or_else(|| panic!("no row for {telco} {neighbour} in:\n{node_1}"))
            .to_owned()
    };
    assert!(row("telco-a", "198.51.100.1").contains("  yes     0         65000  "));
    assert!(
        row("telco-b", "198.51.100.2").contains("  no      3         65000 65000 65000 65000  ")
    );
    assert!(node_1.contains("bank-a   api.bank-a.example  https://203.0.113.65:8443"));
}

#[test]
fn json_report_of_a_valid_site() {
    let output = check(&["--config", "examples/lab", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let nodes = report["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[1]["status"], "valid");
    let peers = nodes[1]["plan"]["peers"].as_array().expect("peers");
    let prepends = |telco: &str| -> Vec<u64> {
        peers
            .iter()
            .filter(|peer| peer["telco"] == telco)
            .map(|peer| peer["prepends"].as_u64().expect("count"))
            .collect()
    };
    // node-2 is paired with telco-b.
    assert_eq!(prepends("telco-b"), [0, 0]);
    assert_eq!(prepends("telco-a"), [2, 2]);
}

#[test]
fn json_report_of_errors() {
    let output = check(&["--config", "examples/invalid/several-errors", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let errors = report["nodes"][0]["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 6);
    assert_eq!(errors[0]["line"], 5);
    assert_eq!(errors[0]["column"], 1);
    assert!(
        errors[0]["message"]
            .as_str()
            .expect("message")
            .starts_with("Unknown field `colour`")
    );
}

#[test]
fn a_missing_configuration_is_unreadable() {
    let output = check(&["--config", "examples/no-such-dir"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).starts_with("cannot read examples/no-such-dir/ixgate.toml"));
}
