//! The Grafana dashboard (`deploy/grafana/anapars-hub.json`) and the Prometheus alert rules
//! (`deploy/prometheus/alerts.yml`) name only metrics a running hub exports: a hub serves a short
//! conversation (so that the histograms have observations too), then every metric family either
//! file names must be on its `/metrics`. With `promtool` installed (CI installs Debian's
//! `prometheus`; `REQUIRE_PROMTOOL=1` makes its absence a failure) the rules also pass
//! `promtool check rules`. The support gauges (queue, agents, load) are checked for their values.

mod common;

use anapars_hub::protocol::Encoding;
use common::hub::{hubs, phone};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

fn repo(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

/// Every PromQL expression of the dashboard (any `expr` field, at any depth).
fn dashboard_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// Every `expr:` of the rules file.
fn rule_exprs(yaml: &str) -> Vec<String> {
    yaml.lines().filter_map(|l| l.trim_start().strip_prefix("expr:")).map(|e| e.trim().to_owned()).collect()
}

/// The metric families an expression names: identifiers starting `hub_` or `process_`, with a
/// histogram's `_bucket`, `_sum` and `_count` taken back to the family. (`up` is Prometheus's own.)
fn families(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
            continue;
        }
        if word.starts_with("hub_") || word.starts_with("process_") {
            let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| word.strip_suffix(s)).unwrap_or(&word);
            out.push(family.to_owned());
        }
        word.clear();
    }
    out
}

#[tokio::test]
async fn the_dashboard_and_the_alert_rules_name_only_metrics_the_hub_exports() {
    let dashboard: Value =
        serde_json::from_str(&repo("deploy/grafana/anapars-hub.json")).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    let rules = repo("deploy/prometheus/alerts.yml");
    let rule_exprs = rule_exprs(&rules);
    assert!(exprs.len() >= 20 && rule_exprs.len() >= 15, "{} panel queries, {} rules", exprs.len(), rule_exprs.len());
    let named: BTreeSet<String> = exprs.iter().chain(&rule_exprs).flat_map(|e| families(e)).collect();

    // The last hub has Postgres and Redis when the tests run with them (CI), so its Redis link
    // gauge exists; SQLite alone has none.
    let hub = hubs(|c| c.auto_assign = false).await.pop().expect("a hub");
    let label = hub.label();
    let mut user = hub.connect_as(Encoding::Json, &hub.token(&phone()).await).await;
    let opened = user
        .request(
            json!({"type": "ticket.open", "subject": "پرداخت", "body": "کارتم دو بار کم شد", "client_msg_id": "m-1"}),
        )
        .await;
    let ticket = opened["ticket"]["id"].as_str().expect("a ticket").to_owned();
    let (agent_token, agent_id) = hub.agent("Sara").await;
    let mut agent = hub.connect_agent(Encoding::Json, &agent_token).await;
    let status = agent.request(json!({"type": "agent.status", "status": "available", "capacity": 4})).await;
    assert_eq!(status["type"], "agent.status.ok", "{label} {status}");

    // The support gauges, read by the queue's round (at most every 5 s).
    let gauges = |text: &str, wanted: &[(&str, f64)]| {
        wanted.iter().all(|(series, value)| {
            text.lines().any(|l| l.strip_prefix(series).and_then(|v| v.trim().parse::<f64>().ok()) == Some(*value))
        })
    };
    let waiting = [
        ("hub_queue_tickets ", 1.0),
        ("hub_agents_online{status=\"available\"} ", 1.0),
        ("hub_agents_free_capacity ", 4.0),
    ];
    let mut metrics = String::new();
    for _ in 0..40 {
        metrics = hub.http.get(format!("{}/metrics", hub.base)).send().await.unwrap().text().await.unwrap();
        if gauges(&metrics, &waiting) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(gauges(&metrics, &waiting), "{label}: queue and agent gauges:\n{}", support_lines(&metrics));

    let claimed = agent.request(json!({"type": "ticket.claim", "ticket_id": ticket})).await;
    assert_eq!(claimed["type"], "ticket.update.ok", "{label} {claimed}");
    let sent = agent
        .request(json!({"type": "ticket.send", "ticket_id": ticket, "body": "بررسی می‌کنم", "client_msg_id": "a-1"}))
        .await;
    assert_eq!(sent["type"], "ticket.send.ok", "{label} {sent}");
    let resolved = agent.request(json!({"type": "ticket.resolve", "ticket_id": ticket})).await;
    assert_eq!(resolved["type"], "ticket.update.ok", "{label} {resolved}");
    let load = format!("hub_agent_tickets{{agent_id=\"{agent_id}\"}} ");
    let served = [("hub_queue_tickets ", 0.0), (load.as_str(), 0.0), ("hub_agents_free_capacity ", 4.0)];
    // The support times are observed as the claim and the resolution are handled: read until
    // every family is there (or the wait is over).
    let clustered = hub.redis().is_some();
    let missing_in = |metrics: &str| -> Vec<String> {
        let exported: BTreeSet<&str> = metrics
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        named
            .iter()
            .filter(|f| !exported.contains(f.as_str()))
            .filter(|f| clustered || f.as_str() != "hub_cluster_link_up")
            .cloned()
            .collect()
    };
    for _ in 0..40 {
        metrics = hub.http.get(format!("{}/metrics", hub.base)).send().await.unwrap().text().await.unwrap();
        if gauges(&metrics, &served) && missing_in(&metrics).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(gauges(&metrics, &served), "{label}: after the ticket was served:\n{}", support_lines(&metrics));
    let missing = missing_in(&metrics);
    assert!(missing.is_empty(), "{label}: named by the dashboard or the rules but not on /metrics: {missing:?}");
    drop((user, agent));

    promtool_check(&rules);
}

fn support_lines(metrics: &str) -> String {
    metrics.lines().filter(|l| l.starts_with("hub_queue") || l.starts_with("hub_agent")).collect::<Vec<_>>().join("\n")
}

fn promtool_check(rules: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.yml");
    std::fs::write(&path, rules).unwrap();
    match std::process::Command::new("promtool").args(["check", "rules"]).arg(&path).output() {
        Ok(out) => assert!(
            out.status.success(),
            "promtool check rules: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if std::env::var_os("REQUIRE_PROMTOOL").is_none() => {
            eprintln!("promtool not found ({e}): the rules' syntax was not checked (Debian: apt install prometheus)");
        }
        Err(e) => panic!("REQUIRE_PROMTOOL is set but promtool cannot run: {e}"),
    }
}

#[test]
fn families_are_read_from_expressions() {
    assert_eq!(
        families(
            r#"histogram_quantile(0.9, sum by (le) (rate(hub_first_response_seconds_bucket{type="hub_x"}[1h]))) > up"#
        ),
        ["hub_first_response_seconds"]
    );
    assert_eq!(
        families("max(hub_queue_tickets) > 0 and process_cpu_seconds_total"),
        ["hub_queue_tickets", "process_cpu_seconds_total"]
    );
}
