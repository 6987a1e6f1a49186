//! The hubs under test as one thing: a single node, or the nodes of a cluster (`--spawn-hub --nodes
//! 3` with Redis and Postgres, or `--url` naming several nodes started elsewhere). Sockets are dealt
//! to the nodes round robin; server-side figures (CPU seconds, resident memory) are read per node,
//! from `/metrics` and, where the pid is known, from `/proc`.

use crate::hub::{HubArgs, HubHandle, NodeStart};
use crate::metrics::{Metrics, NodeSnapshot};
use crate::report::{HubInfo, NodeFigures};
use anapars_redis_cluster::{LocalCluster, Options};
use anyhow::{bail, ensure, Context};
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

/// The hub nodes of a run.
pub struct Cluster {
    /// Every node, in `--url` order (or start order).
    pub nodes: Vec<HubHandle>,
    /// The operator token, when known: generated for spawned hubs, else `--admin-token` or the
    /// harness's `HUB_ADMIN_TOKEN`. Never printed.
    pub admin_token: Option<String>,
    /// The Redis Cluster started for the run (`--spawn-redis-cluster`), stopped with it.
    redis: Option<LocalCluster>,
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
            ensure!(
                args.redis_shard_cpu.is_none() || args.spawn_redis_cluster.is_some(),
                "--redis-shard-cpu needs --spawn-redis-cluster"
            );
            let redis = match args.spawn_redis_cluster {
                Some(masters) => {
                    let options =
                        Options { masters, replicas: false, node_timeout_ms: None, cpu_share: args.redis_shard_cpu };
                    Some(LocalCluster::start(options).await.context("--spawn-redis-cluster")?)
                }
                None => None,
            };
            let redis_url = redis.as_ref().map(LocalCluster::url).or_else(|| args.redis_url.clone());
            if args.nodes > 1 {
                ensure!(redis_url.is_some(), "--nodes {} needs --redis-url or --spawn-redis-cluster", args.nodes);
                ensure!(args.database_url.is_some(), "--nodes {} needs --database-url (Postgres)", args.nodes);
            }
            // The operator's own token when given (run-hub, to drive `burst` from elsewhere).
            let given = args.admin_token.clone().or_else(|| std::env::var("HUB_ADMIN_TOKEN").ok());
            let token = given.unwrap_or_else(random_token);
            ensure!(token.len() >= 32, "the hub's admin token must be at least 32 characters");
            let mut env = vec![("HUB_ADMIN_TOKEN".to_owned(), token.clone())];
            if let Some(redis) = &redis_url {
                env.push(("REDIS_URL".into(), redis.clone()));
                // Every run its own keys, so that runs never see each other's state.
                env.push(("HUB_REDIS_PREFIX".into(), format!("anapars-load-{}:", &random_token()[..12])));
            }
            // One by one: the first node runs the migrations.
            for index in 0..args.nodes {
                let node = NodeStart::Spawn { index, env: env.clone() };
                nodes.push(HubHandle::open_node(args, node, http).await?);
            }
            return Ok(Self { nodes, admin_token: Some(token), redis });
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
        Ok(Self { nodes, admin_token: token, redis: None })
    }

    /// The first node's URL, backend and pid, and the node count, for the report.
    pub fn info(&self) -> HubInfo {
        let first = self.first();
        HubInfo { url: first.base.clone(), backend: first.backend.into(), pid: first.pid, nodes: self.nodes.len() }
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

    /// CPU seconds each master of the spawned Redis Cluster has used so far, in slot order (empty
    /// without one).
    pub fn redis_shard_cpu_secs(&self) -> Vec<Option<f64>> {
        let pids = self.redis.as_ref().map(LocalCluster::pids).unwrap_or_default();
        pids.into_iter().map(|pid| crate::hub::proc_cpu_secs(&format!("/proc/{}/stat", pid?))).collect()
    }

    /// Stops every node the harness started.
    pub fn stop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
    }

    /// Every node's `/metrics` now, in node order.
    pub async fn metrics(&self, http: &reqwest::Client) -> Vec<Metrics> {
        let mut pages = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            pages.push(node.metrics(http).await);
        }
        pages
    }

    /// Reads every node's `/metrics` and `/proc` figures now.
    pub async fn snapshot(&self, http: &reqwest::Client) -> Vec<NodeSnapshot> {
        let pages = self.metrics(http).await;
        self.nodes.iter().zip(&pages).map(|(node, m)| NodeSnapshot::new(m, node.cpu_secs(), node.rss_kib())).collect()
    }

    /// Waits `duration`, reading every node's resident memory from `/proc` once a second; returns
    /// each node's highest reading in KiB (None where the pid is unknown).
    pub async fn watch_rss(&self, duration: Duration) -> Vec<Option<u64>> {
        let end = tokio::time::Instant::now() + duration;
        let mut peaks: Vec<Option<u64>> = self.nodes.iter().map(HubHandle::rss_kib).collect();
        loop {
            let now = tokio::time::Instant::now();
            if now >= end {
                return peaks;
            }
            tokio::time::sleep((end - now).min(Duration::from_secs(1))).await;
            for (peak, node) in peaks.iter_mut().zip(&self.nodes) {
                *peak = (*peak).max(node.rss_kib());
            }
        }
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
    fn tokens_are_long_enough_for_the_hub() {
        let t = random_token();
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(t, random_token());
    }
}
