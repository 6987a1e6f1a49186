//! The hubs under test as one thing: a single node, or the nodes of a cluster (`--spawn-hub --nodes
//! 3` with Redis and Postgres, or `--url` naming several nodes started elsewhere). Sockets are dealt
//! to the nodes round robin; server-side figures (CPU seconds, resident memory) are read per node,
//! from `/metrics` and, where the pid is known, from `/proc`.

use crate::hub::{HubArgs, HubHandle, Metrics, NodeStart};
use anyhow::{bail, ensure};
use serde::Serialize;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;

/// `process_cpu_seconds_total` in the hub's `/metrics` (absent on older hubs).
const CPU_METRIC: &str = "process_cpu_seconds_total";
/// `process_resident_memory_bytes` in the hub's `/metrics` (absent on older hubs).
const RSS_METRIC: &str = "process_resident_memory_bytes";

/// The hub nodes of a run.
pub struct Cluster {
    /// Every node, in `--url` order (or start order).
    pub nodes: Vec<HubHandle>,
    /// The operator token, when known: generated for spawned hubs, else `--admin-token` or the
    /// harness's `HUB_ADMIN_TOKEN`. Never printed.
    pub admin_token: Option<String>,
}

impl Cluster {
    /// Starts the nodes (`--spawn-hub`, `--nodes`) or attaches to every `--url`; waits until each
    /// is ready.
    ///
    /// # Errors
    /// Several nodes without Redis or Postgres, or a node that cannot be started or reached.
    pub async fn open(args: &HubArgs, http: &reqwest::Client) -> anyhow::Result<Self> {
        let mut nodes = Vec::new();
        if args.spawn_hub {
            ensure!(args.nodes >= 1, "--nodes must be at least 1");
            if args.nodes > 1 {
                ensure!(args.redis_url.is_some(), "--nodes {} needs --redis-url", args.nodes);
                ensure!(args.database_url.is_some(), "--nodes {} needs --database-url (Postgres)", args.nodes);
            }
            // The operator's own token when given (run-hub, to drive `burst` from elsewhere).
            let given = args.admin_token.clone().or_else(|| std::env::var("HUB_ADMIN_TOKEN").ok());
            let token = given.unwrap_or_else(random_token);
            ensure!(token.len() >= 32, "the hub's admin token must be at least 32 characters");
            let mut env = vec![("HUB_ADMIN_TOKEN".to_owned(), token.clone())];
            if let Some(redis) = &args.redis_url {
                env.push(("REDIS_URL".into(), redis.clone()));
                // Every run its own keys, so that runs never see each other's state.
                env.push(("HUB_REDIS_PREFIX".into(), format!("anapars-load-{}:", &random_token()[..12])));
            }
            // One by one: the first node runs the migrations.
            for index in 0..args.nodes {
                let node = NodeStart::Spawn { index, env: env.clone() };
                nodes.push(HubHandle::open_node(args, node, http).await?);
            }
            return Ok(Self { nodes, admin_token: Some(token) });
        }
        let urls: Vec<&str> = args.url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        if urls.is_empty() {
            bail!("--url names no hub");
        }
        for (i, url) in urls.iter().enumerate() {
            let node = NodeStart::Attach { url, pid: args.hub_pid.get(i).copied() };
            nodes.push(HubHandle::open_node(args, node, http).await?);
        }
        let token = args.admin_token.clone().or_else(|| std::env::var("HUB_ADMIN_TOKEN").ok());
        Ok(Self { nodes, admin_token: token })
    }

    /// The first node: HTTP sign-ins and `agent add` go there.
    pub fn first(&self) -> &HubHandle {
        &self.nodes[0]
    }

    /// The node socket number `i` connects to (round robin).
    pub fn node_of(&self, i: usize) -> usize {
        i % self.nodes.len()
    }

    /// Every node's socket address, in order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }

    /// `url (backend, pid)` of every node, for the report.
    pub fn describe(&self) -> String {
        let one = |n: &HubHandle| {
            let pid = n.pid.map_or_else(|| "?".into(), |p| p.to_string());
            format!("{} ({}, pid {pid})", n.base, n.backend)
        };
        self.nodes.iter().map(one).collect::<Vec<_>>().join(", ")
    }

    /// Stops every node the harness started.
    pub fn stop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
    }

    /// Reads every node's `/metrics` and `/proc` figures now.
    pub async fn snapshot(&self, http: &reqwest::Client) -> Vec<NodeSnapshot> {
        let mut out = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let metrics = node.metrics(http).await;
            out.push(NodeSnapshot::new(&metrics, node.cpu_secs(), node.rss_kib()));
        }
        out
    }

    /// The per-node figures between two snapshots (taken in the same node order).
    pub fn figures(&self, before: &[NodeSnapshot], after: &[NodeSnapshot]) -> Vec<NodeFigures> {
        self.nodes
            .iter()
            .zip(before.iter().zip(after))
            .map(|(node, (b, a))| NodeFigures::between(&node.base, node.pid, b, a))
            .collect()
    }
}

/// What one node says about itself at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NodeSnapshot {
    /// `process_cpu_seconds_total`, when exported.
    pub metrics_cpu_s: Option<f64>,
    /// `process_resident_memory_bytes`, when exported.
    pub metrics_rss_bytes: Option<f64>,
    /// CPU seconds from `/proc/<pid>/stat`, when the pid is known.
    pub proc_cpu_s: Option<f64>,
    /// VmRSS in KiB from `/proc/<pid>/status`, when the pid is known.
    pub proc_rss_kib: Option<u64>,
}

impl NodeSnapshot {
    /// From a `/metrics` page and the `/proc` readings.
    pub fn new(metrics: &Metrics, proc_cpu_s: Option<f64>, proc_rss_kib: Option<u64>) -> Self {
        let one = |name: &str| metrics.0.iter().any(|s| s.name == name).then(|| metrics.sum(name));
        Self { metrics_cpu_s: one(CPU_METRIC), metrics_rss_bytes: one(RSS_METRIC), proc_cpu_s, proc_rss_kib }
    }
}

/// One node's server-side figures over a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NodeFigures {
    /// The node's base URL.
    pub url: String,
    /// Its pid, when known.
    pub pid: Option<u32>,
    /// CPU seconds in the window: `/proc` when the pid is known, else `/metrics`.
    pub cpu_s: Option<f64>,
    /// Where `cpu_s` comes from: `proc`, `metrics` or absent.
    pub cpu_source: Option<&'static str>,
    /// CPU seconds in the window by the hub's own `process_cpu_seconds_total`.
    pub metrics_cpu_s: Option<f64>,
    /// Resident memory at the start of the window, KiB (`/proc`, else `/metrics`).
    pub rss_before_kib: Option<f64>,
    /// Resident memory at the end of the window, KiB.
    pub rss_after_kib: Option<f64>,
}

impl NodeFigures {
    /// The figures of node `url` from `before` to `after`.
    pub fn between(url: &str, pid: Option<u32>, before: &NodeSnapshot, after: &NodeSnapshot) -> Self {
        let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        let metrics_cpu_s = diff(before.metrics_cpu_s, after.metrics_cpu_s);
        let proc_cpu_s = diff(before.proc_cpu_s, after.proc_cpu_s);
        let (cpu_s, cpu_source) = match (proc_cpu_s, metrics_cpu_s) {
            (Some(p), _) => (Some(p), Some("proc")),
            (None, Some(m)) => (Some(m), Some("metrics")),
            (None, None) => (None, None),
        };
        let rss = |s: &NodeSnapshot| s.proc_rss_kib.map(|k| k as f64).or(s.metrics_rss_bytes.map(|b| b / 1024.0));
        Self {
            url: url.to_owned(),
            pid,
            cpu_s,
            cpu_source,
            metrics_cpu_s,
            rss_before_kib: rss(before),
            rss_after_kib: rss(after),
        }
    }

    /// RSS growth per socket, KiB, over `sockets` sockets held by this node.
    pub fn rss_per_socket_kib(&self, sockets: usize) -> Option<f64> {
        (sockets > 0).then_some(())?;
        Some((self.rss_after_kib? - self.rss_before_kib?) / sockets as f64)
    }
}

/// The CPU seconds of every node together (None when no node's are known).
pub fn total_cpu_s(figures: &[NodeFigures]) -> Option<f64> {
    let known: Vec<f64> = figures.iter().filter_map(|f| f.cpu_s).collect();
    (!known.is_empty()).then(|| known.iter().sum())
}

/// A fresh operator token for spawned hubs: 64 hex characters from the standard library's
/// per-process random hash keys (the hubs live on loopback for one run).
fn random_token() -> String {
    let mut out = String::with_capacity(64);
    let state = std::collections::hash_map::RandomState::new();
    for i in 0..4u64 {
        let mut h = state.build_hasher();
        h.write_u64(i);
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_figures_prefer_proc_and_fall_back_to_metrics() {
        let page = |cpu: f64, rss: f64| {
            Metrics::parse(&format!("process_cpu_seconds_total {cpu}\nprocess_resident_memory_bytes {rss}\n"))
        };
        let b = NodeSnapshot::new(&page(10.0, 1024.0 * 1024.0), None, None);
        let a = NodeSnapshot::new(&page(12.5, 3.0 * 1024.0 * 1024.0), None, None);
        let f = NodeFigures::between("http://127.0.0.1:1", None, &b, &a);
        assert_eq!((f.cpu_s, f.cpu_source), (Some(2.5), Some("metrics")));
        assert_eq!((f.rss_before_kib, f.rss_after_kib), (Some(1024.0), Some(3072.0)));
        assert_eq!(f.rss_per_socket_kib(1024), Some(2.0));
        assert_eq!(f.rss_per_socket_kib(0), None);

        let b = NodeSnapshot { proc_cpu_s: Some(1.0), proc_rss_kib: Some(100), ..b };
        let a = NodeSnapshot { proc_cpu_s: Some(4.0), proc_rss_kib: Some(300), ..a };
        let f = NodeFigures::between("u", Some(7), &b, &a);
        assert_eq!((f.cpu_s, f.cpu_source, f.metrics_cpu_s), (Some(3.0), Some("proc"), Some(2.5)));
        assert_eq!(f.rss_after_kib, Some(300.0));
    }

    #[test]
    fn a_hub_without_process_metrics_reports_nothing_rather_than_zero() {
        let s = NodeSnapshot::new(&Metrics::parse("hub_connections 3\n"), None, None);
        assert_eq!(s, NodeSnapshot::default());
        let f = NodeFigures::between("u", None, &s, &s);
        assert_eq!((f.cpu_s, f.cpu_source, f.rss_before_kib), (None, None, None));
        assert_eq!(total_cpu_s(&[f.clone(), f]), None);
        let known = NodeFigures { cpu_s: Some(1.5), ..Default::default() };
        assert_eq!(total_cpu_s(&[known.clone(), NodeFigures::default(), known]), Some(3.0));
    }

    #[test]
    fn tokens_are_long_enough_for_the_hub() {
        let t = random_token();
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(t, random_token());
    }
}
