//! A real Redis Cluster on loopback ports: masters with a replica each, from Debian's `redis-server`
//! and `redis-cli --cluster create`, in a temporary directory, without persistence. Dropping it
//! kills every server.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Longest wait for the cluster to form or to fail over.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long a silent master counts as alive (short, so that failovers are quick).
const NODE_TIMEOUT_MS: u32 = 1_000;

/// One `redis-server` of the cluster.
struct Server {
    port: u16,
    child: Option<Child>,
}

/// Masters with one replica each.
pub struct LocalCluster {
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl LocalCluster {
    /// `masters` masters with one replica each, formed and every slot served; None when the
    /// binaries are missing and Redis tests are not asked for (`TEST_REDIS_URL` unset).
    ///
    /// # Panics
    /// Redis tests are asked for and the cluster cannot be started or formed.
    pub async fn start(masters: usize) -> Option<Self> {
        if !binaries_present() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut servers = Vec::new();
        for _ in 0..masters * 2 {
            servers.push(start_server(dir.path()).await);
        }
        let cluster = Self { servers, _dir: dir };
        let addrs: Vec<String> = cluster.servers.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .await
            .expect("redis-cli runs");
        assert!(out.status.success(), "cluster create: {}", String::from_utf8_lossy(&out.stdout));
        cluster.until("every node sees the cluster ok and every master has its replica", || cluster.formed()).await;
        Some(cluster)
    }

    /// One master holding every slot, without a replica: a node that never met another, which does
    /// not know its own address (`CLUSTER NODES` lists it as `:port`). None as for [`Self::start`].
    pub async fn lone() -> Option<Self> {
        if !binaries_present() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let server = start_server(dir.path()).await;
        let port = server.port;
        let cluster = Self { servers: vec![server], _dir: dir };
        let slots = cli(port, &["cluster", "addslotsrange", "0", "16383"]).await.unwrap_or_default();
        assert!(slots.contains("OK"), "addslotsrange: {slots}");
        cluster
            .until("the lone master serves every slot", || async {
                cli(port, &["cluster", "info"]).await.unwrap_or_default().contains("cluster_state:ok")
            })
            .await;
        Some(cluster)
    }

    /// `REDIS_URL` for the hub: every node, comma separated.
    pub fn url(&self) -> String {
        self.servers.iter().map(|s| format!("redis://127.0.0.1:{}", s.port)).collect::<Vec<_>>().join(",")
    }

    /// Ports of the servers still running.
    pub fn ports(&self) -> Vec<u16> {
        self.servers.iter().filter(|s| s.child.is_some()).map(|s| s.port).collect()
    }

    /// Ports of the running masters.
    pub async fn masters(&self) -> Vec<u16> {
        let mut masters = Vec::new();
        for port in self.ports() {
            if cli(port, &["role"]).await.is_some_and(|r| r.starts_with("master")) {
                masters.push(port);
            }
        }
        masters
    }

    /// The port of the master serving `key`'s slot, as a running node sees it.
    pub async fn master_of(&self, key: &str) -> u16 {
        let port = self.ports()[0];
        let slot: u16 = cli(port, &["cluster", "keyslot", key]).await.unwrap().trim().parse().unwrap();
        let nodes = cli(port, &["cluster", "nodes"]).await.unwrap();
        for line in nodes.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            let serves = f[8..].iter().any(|range| match range.split_once('-') {
                Some((a, b)) => (a.parse().unwrap_or(u16::MAX)..=b.parse().unwrap_or(0)).contains(&slot),
                None => range.parse() == Ok(slot),
            });
            if serves {
                let addr = f[1].split('@').next().unwrap();
                return addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        }
        panic!("no master serves slot {slot}: {nodes}");
    }

    /// Kills the master on `port` with SIGKILL and waits until its replica has taken over and
    /// every slot is served again.
    pub async fn kill_and_fail_over(&mut self, port: u16) {
        let server = self.servers.iter_mut().find(|s| s.port == port).expect("a server of this cluster");
        let mut child = server.child.take().expect("running");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let before = Instant::now();
        self.until("the replica takes over and the cluster is ok again", || async {
            let mut all_ok = true;
            for p in self.ports() {
                let info = cli(p, &["cluster", "info"]).await.unwrap_or_default();
                all_ok &= info.contains("cluster_state:ok");
            }
            all_ok && self.masters().await.len() * 2 > self.servers.len() - 1
        })
        .await;
        eprintln!("redis cluster failed over in {:?}", before.elapsed());
    }

    /// Every key on every running master.
    pub async fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for port in self.masters().await {
            let out = cli(port, &["--raw", "keys", "*"]).await.unwrap_or_default();
            keys.extend(out.lines().filter(|l| !l.is_empty()).map(str::to_owned));
        }
        keys
    }

    async fn formed(&self) -> bool {
        let mut masters_with_replica = 0;
        for s in &self.servers {
            let Some(info) = cli(s.port, &["cluster", "info"]).await else { return false };
            if !info.contains("cluster_state:ok") {
                return false;
            }
            let replication = cli(s.port, &["info", "replication"]).await.unwrap_or_default();
            if replication.contains("role:master") && replication.contains("connected_slaves:1") {
                masters_with_replica += 1;
            }
        }
        masters_with_replica * 2 == self.servers.len()
    }

    async fn until<F: std::future::Future<Output = bool>>(&self, what: &str, mut check: impl FnMut() -> F) {
        let deadline = Instant::now() + PATIENCE;
        while !check().await {
            assert!(Instant::now() < deadline, "redis cluster: {what} did not happen within {PATIENCE:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether `redis-server` and `redis-cli` are installed; when Redis tests are asked for
/// (`TEST_REDIS_URL` or `TEST_DATABASE_URL` set), they must be.
fn binaries_present() -> bool {
    let present = std::process::Command::new("redis-server").arg("--version").output().is_ok()
        && std::process::Command::new("redis-cli").arg("--version").output().is_ok();
    if !present {
        assert!(
            std::env::var_os(super::hub::TEST_REDIS_URL).is_none()
                && std::env::var_os(super::TEST_DATABASE_URL).is_none(),
            "redis-server and redis-cli are needed for the Redis Cluster tests"
        );
        eprintln!("redis-server or redis-cli missing: Redis Cluster tests skipped");
    }
    present
}

/// A server on a free port, answering as itself. A port found free can be taken by another test's server
/// before this one binds it (its own or its bus port): the server then exits, and is started again
/// on other ports.
async fn start_server(dir: &Path) -> Server {
    for _ in 0..5 {
        let port = free_port();
        let mut child = spawn(dir, port);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
            // Ours, not another test's server that took the port first.
            let ours = child.id().map(|pid| format!("process_id:{pid}"));
            let info = cli(port, &["info", "server"]).await.unwrap_or_default();
            if ours.is_some_and(|ours| info.lines().any(|l| l.trim() == ours)) {
                return Server { port, child: Some(child) };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    panic!("redis-server did not start on five pairs of free ports");
}

fn spawn(dir: &Path, port: u16) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cluster-port", &free_port().to_string()])
        .args(["--cluster-enabled", "yes", "--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
        .args(["--cluster-config-file", &dir.join(format!("nodes-{port}.conf")).display().to_string()])
        .args(["--cluster-replica-validity-factor", "0"])
        .args(["--dir", &dir.display().to_string(), "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server starts")
}
