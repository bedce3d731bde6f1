//! The Prometheus and Grafana files of `deploy/`: `promtool` checks the alerting rules,
//! runs their unit tests (`alerts_test.yml`) and checks the scrape configuration, and
//! every metric the rules and the dashboard query must be one a real node exports, so a
//! renamed metric cannot leave an alert that never fires or a panel that stays empty.
//!
//! promtool comes from Debian's `prometheus` package; without it these tests fail (never
//! skip) and say how to install it. `PROMTOOL=/path/to/promtool` picks another binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use discovery_testkit::{discoveryd, eventually, Cluster, ClusterOptions};
use serde_json::Value as Json;
use tokio::process::Command;

use crate::support::{repo_root, run, DEADLINE};

const SECRET: &str = "prometheus-test-shared-secret-0123456789";
/// The harness's client sends it, so its requests (and the scrape) pass.
const OPERATOR: &str = "prometheus-test-operator-0123456789abcdef";

fn promtool() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMTOOL") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "promtool not found on PATH: `apt-get install -y prometheus` (Debian's package) \
             provides it, or set PROMTOOL=/path/to/promtool"
        )
    })
}

fn prometheus_dir() -> PathBuf {
    repo_root().join("deploy/prometheus")
}

#[tokio::test]
async fn promtool_accepts_the_rules_their_unit_tests_and_the_scrape_config() {
    let promtool = promtool();
    let dir = prometheus_dir();
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
        ["check", "config", "prometheus.yml"],
    ] {
        let ran = run(Command::new(&promtool).args(args).current_dir(&dir))
            .await
            .expect_code(0);
        assert!(
            ran.stdout.contains("SUCCESS") || ran.stderr.contains("SUCCESS"),
            "{ran:?}"
        );
    }
}

/// The names of the series an expression selects. Strings, label matchers, ranges and
/// grouping label lists are removed first; what is left is functions and aggregations
/// (followed by a parenthesis), keywords, numbers and metric names.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut plain = String::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
                plain.push(' ');
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                let mut quote = None;
                while let Some(d) = chars.next() {
                    match (quote, d) {
                        (Some(_), '\\') => {
                            chars.next();
                        }
                        (Some(q), _) if d == q => quote = None,
                        (None, '"' | '\'' | '`') => quote = Some(d),
                        (None, _) if d == close => break,
                        _ => {}
                    }
                }
                plain.push(' ');
            }
            _ => plain.push(c),
        }
    }
    let grouping = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let keywords = ["and", "or", "unless", "bool", "offset", "inf", "nan"];
    let mut names = BTreeSet::new();
    let mut rest = plain.as_str();
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphanumeric() || "_:$.".contains(c)) {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_:$.".contains(c)))
            .unwrap_or(tail.len());
        let word = &tail[..end];
        let after = tail[end..].trim_start();
        rest = &tail[end..];
        if grouping.contains(&word.to_ascii_lowercase().as_str()) {
            // Skip the label list that follows.
            if let Some(list) = after.strip_prefix('(') {
                rest = list.split_once(')').map_or("", |(_, r)| r);
            }
            continue;
        }
        let first = word.chars().next().unwrap_or('0');
        let modifier = after
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        // `sum by (...) (...)`: an aggregation, whose modifier comes before its argument.
        if after.starts_with('(')
            || modifier == "by"
            || modifier == "without"
            || keywords.contains(&word.to_ascii_lowercase().as_str())
            || first.is_ascii_digit()
            || first == '$'
            || first == '.'
        {
            continue;
        }
        names.insert(word.to_owned());
    }
    names
}

#[test]
fn metric_names_are_found_in_expressions() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (route, le) (rate(discovery_http_request_duration_seconds_bucket{job=~"$job",route!="a{b}"}[$__rate_interval]))) > 0.5 unless on (instance) up == 0"#,
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "discovery_http_request_duration_seconds_bucket".to_owned(),
            "up".to_owned()
        ])
    );
    assert_eq!(
        metric_names("abs(discovery_clock_offset_seconds) > 30"),
        BTreeSet::from(["discovery_clock_offset_seconds".to_owned()])
    );
}

/// Every `expr` of the rule file.
fn rule_expressions(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let rules: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let expr = rule["expr"].as_str().expect("every rule has an expr");
            exprs.push(expr.to_owned());
        }
    }
    exprs
}

/// Every `expr` anywhere in the dashboard.
fn dashboard_expressions(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Json::String(expr)) => out.push(expr.clone()),
                    _ => dashboard_expressions(value, out),
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|v| dashboard_expressions(v, out)),
        _ => {}
    }
}

fn dashboard() -> Json {
    let path = repo_root().join("deploy/grafana/discovery.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

#[test]
fn the_dashboard_uses_a_prometheus_datasource_variable_and_core_panels_only() {
    let dashboard = dashboard();
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "no ${{datasource}} variable of type prometheus: {variables:?}"
    );
    let core = [
        "row",
        "timeseries",
        "stat",
        "gauge",
        "table",
        "text",
        "bargauge",
    ];
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        let kind = panel["type"].as_str().expect("panel type");
        assert!(core.contains(&kind), "panel type {kind} needs a plugin");
        if kind == "row" {
            continue;
        }
        panels += 1;
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(
            !targets.is_empty(),
            "panel {} queries nothing",
            panel["title"]
        );
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}");
        }
    }
    assert!(panels >= 10, "{panels} panels");
}

/// Names used by the rules and the dashboard, each exported by a real node: a two-node
/// cluster, so the replication and clock families have series, after some traffic.
#[tokio::test(flavor = "multi_thread")]
async fn every_metric_the_rules_and_the_dashboard_use_is_exported() {
    let mut used: BTreeSet<(String, &str)> = BTreeSet::new();
    for expr in rule_expressions(&prometheus_dir().join("alerts.yml")) {
        used.extend(metric_names(&expr).into_iter().map(|n| (n, "alerts.yml")));
    }
    let mut exprs = Vec::new();
    dashboard_expressions(&dashboard(), &mut exprs);
    assert!(!exprs.is_empty());
    for expr in exprs {
        used.extend(
            metric_names(&expr)
                .into_iter()
                .map(|n| (n, "discovery.json")),
        );
    }
    // Made by Prometheus itself for every target, not by the node.
    let synthetic = ["up"];
    let used: BTreeSet<(String, &str)> = used
        .into_iter()
        .filter(|(name, _)| !synthetic.contains(&name.as_str()))
        .collect();
    assert!(used.len() >= 10, "{used:?}");

    // With a shared secret and an operator token, so a refused request can be made: the
    // authentication family has series only once something was refused.
    let tokens = tempfile::tempdir().unwrap();
    let tokens_file = tokens.path().join("operator-tokens");
    std::fs::write(&tokens_file, format!("{OPERATOR} write\n")).unwrap();
    let c = Cluster::start_with(
        ClusterOptions::new(discoveryd!(), 2)
            .set("internal-communication.shared-secret", SECRET)
            .set(
                "discovery.operator-tokens-file",
                &tokens_file.display().to_string(),
            )
            .client_header("authorization", &format!("Bearer {OPERATOR}")),
    )
    .await;
    let anonymous = discovery_testkit::http::http_client(std::time::Duration::from_secs(5));
    let refused = anonymous.get(c.url(0, "/metrics")).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    // An announcement, so the HTTP and announcement families have samples.
    let body = discovery_testkit::announcements::standard_announcement(
        &discovery_testkit::new_id(),
        "trino",
    );
    c.announce(0, "w1", &body).await.expect("announce");
    eventually(DEADLINE, "every used metric on /metrics", || async {
        let text = c
            .client()
            .get(c.url(0, "/metrics"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let samples = discovery_testkit::metrics::parse(&text)?;
        let exported: BTreeSet<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        let missing: Vec<&(String, &str)> = used
            .iter()
            .filter(|(name, _)| {
                // A histogram's base name stands for its _bucket, _sum and _count series.
                !exported.contains(name.as_str())
                    && !exported.contains(format!("{name}_bucket").as_str())
            })
            .collect();
        match missing.is_empty() {
            true => Ok(()),
            false => Err(format!("not exported: {missing:?}\n{text}")),
        }
    })
    .await;
}
