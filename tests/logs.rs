//! The hub binary's own log, as an operator reads it from a file or a collector: "hub ready" only
//! once the port accepts connections (and never when it cannot be bound), no terminal colour codes
//! when the output is not a terminal, one warning per `HUB_*` variable that names no setting (with
//! the setting it misspells), and every refused agent sign-in, without the password or the email.

use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

fn hub(dir: &Path, listen: &str, extra: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_anapars-hub"))
        .env_clear()
        .envs([
            ("HUB_SQLITE_PATH", dir.join("hub.sqlite").display().to_string()),
            ("HUB_MEDIA_DIR", dir.join("media").display().to_string()),
            ("HUB_ATTACHMENTS_DIR", dir.join("attachments").display().to_string()),
            ("HUB_SMS", format!("file:{}", dir.join("sms.jsonl").display())),
            ("HUB_LOG_FORMAT", "text".into()),
            ("HUB_SHUTDOWN_GRACE_MS", "500".into()),
            ("RUST_LOG", "info".into()),
        ])
        .envs(extra.iter().copied())
        .args(["serve", "--listen", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the hub binary starts")
}

/// Reads log lines until one contains `until` (returned with every line before it).
async fn read_until(out: &mut Lines<BufReader<ChildStdout>>, until: &str) -> Vec<String> {
    let mut log = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = out.next_line().await.unwrap() {
            let done = line.contains(until);
            log.push(line);
            if done {
                return;
            }
        }
        panic!("the hub's output ended before {until:?}: {log:#?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {until:?} within 30 s: {log:#?}"));
    log
}

#[tokio::test]
async fn the_log_tells_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let mut child =
        hub(dir.path(), "127.0.0.1:0", &[("HUB_LISTN", "127.0.0.1:9"), ("HUB_NOT_A_THING", "1"), ("HUB_CONFIG_X", "")]);
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let log = read_until(&mut out, "hub ready").await;
    let all = log.join("\n");
    assert!(!all.contains('\u{1b}'), "colour codes in a log that is not a terminal:\n{all}");
    assert!(
        log.iter()
            .any(|l| l.contains("WARN")
                && l.contains("HUB_LISTN is not a setting and is ignored: did you mean HUB_LISTEN?")),
        "{all}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("HUB_NOT_A_THING is not a setting and is ignored") && !l.contains("did you mean")),
        "{all}"
    );
    assert_eq!(
        log.iter().filter(|l| l.contains("is not a setting")).count(),
        3,
        "one line per unknown variable:\n{all}"
    );

    // Ready means listening: a connection right after the line is accepted.
    let ready = log.last().unwrap();
    let addr =
        ready.split("addr=").nth(1).and_then(|rest| rest.split_whitespace().next()).expect("the address in the line");
    tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr} right after {ready:?}: {e}"));
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("http://{addr}/readyz")).send().await.unwrap().status(), 200);

    // Every counter and gauge of src/metrics.rs is on /metrics from the start, with help text
    // (histograms appear with their first observation).
    let metrics = http.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    for (name, kind) in metric_names() {
        // A single node has no Redis link to report; per-agent gauges come with the first agent.
        if kind == "Histogram"
            || ["hub_cluster_link_up", "hub_agent_tickets", "hub_agent_capacity"].contains(&name.as_str())
        {
            continue;
        }
        assert!(metrics.contains(&format!("# HELP {name} ")), "{name} has no help text on /metrics at start");
        assert!(
            metrics.lines().any(|l| l.starts_with(&name) && !l.starts_with('#')),
            "{name} has no value on /metrics at start"
        );
    }

    // A second hub on the same port fails to bind and never says it is ready.
    let mut second = hub(dir.path(), addr, &[]);
    let status =
        tokio::time::timeout(Duration::from_secs(30), second.wait()).await.expect("the second hub exits").unwrap();
    assert!(!status.success());
    let mut second_out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut second.stdout.take().unwrap(), &mut second_out).await.unwrap();
    let mut second_err = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut second.stderr.take().unwrap(), &mut second_err).await.unwrap();
    assert!(!second_out.contains("hub ready"), "{second_out}");
    assert!(second_err.contains("binding") && second_err.contains(addr), "{second_err}");

    // A refused agent sign-in: a clear answer, and a log line with neither the password nor the
    // email (its first letter, its domain and a hash of it).
    let refused = http
        .post(format!("http://{addr}/v1/agent/login"))
        .header("x-request-id", "support-ticket-4711")
        .json(&serde_json::json!({"email": "sara.karimi@example.com", "password": "hunter2-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["x-request-id"], "support-ticket-4711", "the client's request id is answered");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(body["error"]["message"], "wrong email or password");
    let log = read_until(&mut out, "agent sign-in refused").await;
    let line = log.last().unwrap();
    assert!(line.contains("WARN") && line.contains("s***@example.com #") && line.contains("no such agent"), "{line}");
    assert!(line.contains("request_id=support-ticket-4711") && line.contains("/v1/agent/login"), "{line}");
    // Without an id of the client's (or with one that is not a short token), the hub makes one.
    let answered =
        http.get(format!("http://{addr}/healthz")).header("x-request-id", "has spaces").send().await.unwrap();
    let made = answered.headers()["x-request-id"].to_str().unwrap();
    assert!(made.len() == 36 && made != "has spaces", "{made}");
    let all = log.join("\n");
    assert!(!all.contains("sara.karimi") && !all.contains("hunter2"), "{all}");
    child.kill().await.unwrap();
}

/// Every metric `src/metrics.rs` names, with its kind: the first word of its doc comment
/// (`Counter`, `Gauge` or `Histogram`).
fn metric_names() -> Vec<(String, String)> {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/metrics.rs")).unwrap();
    let mut names = Vec::new();
    let mut kind = String::new();
    for line in source.lines() {
        if let Some(doc) = line.strip_prefix("/// ") {
            if kind.is_empty() {
                kind = doc.split([':', ' ']).next().unwrap_or_default().to_owned();
            }
        } else if let Some(rest) = line.strip_prefix("pub const ") {
            if let Some(name) = rest.split('"').nth(1).filter(|n| n.starts_with("hub_")) {
                assert!(
                    ["Counter", "Gauge", "Histogram"].contains(&kind.as_str()),
                    "src/metrics.rs: say what {name} is"
                );
                names.push((name.to_owned(), kind.clone()));
            }
            kind.clear();
        } else {
            kind.clear();
        }
    }
    assert!(names.len() > 40, "{names:?}");
    names
}

/// The runtime runs as many worker threads as `worker_threads` asks for, where the default is one
/// per core; the ready line says how many.
#[tokio::test]
async fn the_hub_runs_the_worker_threads_it_is_configured_for() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    for (setting, threads) in [(None, cores), (Some(1), 1), (Some(cores + 1), cores + 1)] {
        let dir = tempfile::tempdir().unwrap();
        let value = setting.map(|n: usize| n.to_string());
        let extra: Vec<(&str, &str)> = value.iter().map(|v| ("HUB_WORKER_THREADS", v.as_str())).collect();
        let mut child = hub(dir.path(), "127.0.0.1:0", &extra);
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let log = read_until(&mut out, "hub ready").await;
        let ready = log.last().unwrap();
        assert!(ready.contains(&format!("workers={threads}")), "HUB_WORKER_THREADS={value:?}: {ready}");
        child.kill().await.unwrap();
    }
}
