//! A real Redis Cluster on loopback ports, from Debian's `redis-server` and `redis-cli`, in a
//! temporary directory and without persistence: what the hub's tests run their cluster scenarios
//! and failovers on, and what the load harness spreads the fan-out over (`--spawn-redis-cluster`).
//! Dropping it kills every server.
//!
//! The masters split the slots evenly between them and meet; with [`Options::replicas`] each gets
//! a replica, which takes over when its master dies. One master is a cluster too (every slot on
//! it), so runs with one, two and three masters differ only in their number; such a node never met
//! another and does not know its own address (`CLUSTER NODES` lists it as `:port`).
//!
//! With [`Options::cpu_share`] each master runs in a CPU cgroup of its own, held to that share of
//! one core: a machine of its own, scaled down. On one small machine the hubs, Postgres and the
//! harness take the cores before the shards do, so without a budget the shards are never the bound
//! and more of them cannot show what they add.

use anyhow::{bail, ensure, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Slots of a Redis Cluster.
const SLOTS: usize = 16_384;
/// Longest wait for the cluster to form or to fail over.
const PATIENCE: Duration = Duration::from_secs(30);
/// Shortest period of a CPU budget. The kernel's default, 100 ms, lets a server held to 5% run
/// 5 ms and then stand still for 95: a stall no machine of that speed has. Shorter periods spread
/// the budget more evenly.
const MIN_PERIOD_US: u64 = 10_000;
/// Smallest quota the kernel takes per period.
const MIN_QUOTA_US: u64 = 1_000;

/// What to start.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Masters, 1 to 16.
    pub masters: usize,
    /// One replica per master.
    pub replicas: bool,
    /// How long a silent node counts as alive (`cluster-node-timeout`; Redis' default when None).
    /// Short ones make failovers quick.
    pub node_timeout_ms: Option<u32>,
    /// Holds each master to this share of one core (needs root: a CPU cgroup per master).
    pub cpu_share: Option<f64>,
}

/// One `redis-server` of the cluster.
struct Server {
    port: u16,
    child: Option<Child>,
}

/// The servers of a started cluster.
pub struct LocalCluster {
    servers: Vec<Server>,
    /// The CPU cgroups the masters run in ([`Options::cpu_share`]), removed after they stop.
    cgroups: Vec<PathBuf>,
    dir: tempfile::TempDir,
}

/// Whether `redis-server` and `redis-cli` are installed.
pub fn binaries_present() -> bool {
    std::process::Command::new("redis-server").arg("--version").output().is_ok()
        && std::process::Command::new("redis-cli").arg("--version").output().is_ok()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `redis-cli` against the server on `port`: its output, or None when it failed.
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
    /// Starts the servers, gives each master its share of the slots, introduces them, pairs each
    /// replica with its master and waits until every server reports the cluster ok.
    ///
    /// # Errors
    /// Options out of range, `redis-server` missing or not starting, a CPU budget that cannot be
    /// set, or a cluster that does not form within 30 s.
    pub async fn start(options: Options) -> anyhow::Result<Self> {
        let Options { masters, replicas, node_timeout_ms, cpu_share } = options;
        ensure!((1..=16).contains(&masters), "a cluster of 1 to 16 masters");
        if let Some(share) = cpu_share {
            ensure!(share > 0.0 && share <= 1.0, "a share of one core, above 0 and at most 1");
        }
        let mut cluster = Self { servers: Vec::new(), cgroups: Vec::new(), dir: tempfile::tempdir()? };
        let total = if replicas { masters * 2 } else { masters };
        let mut buses = Vec::new();
        for i in 0..total {
            let (server, bus) = start_server(cluster.dir.path(), node_timeout_ms).await?;
            // The masters start first: only they get a budget.
            if let Some(share) = cpu_share.filter(|_| i < masters) {
                let pid = server.child.as_ref().and_then(Child::id).context("redis-server has a pid")?;
                let name = format!("anapars-redis-{}-{}", std::process::id(), server.port);
                cluster.cgroups.push(limit_cpu(&name, pid, share)?);
            }
            cluster.servers.push(server);
            buses.push(bus);
        }
        let ports: Vec<u16> = cluster.servers.iter().map(|s| s.port).collect();
        for (i, &port) in ports[..masters].iter().enumerate() {
            let (first, last) = (i * SLOTS / masters, (i + 1) * SLOTS / masters - 1);
            let ok = cli(port, &["cluster", "addslotsrange", &first.to_string(), &last.to_string()]).await;
            ensure!(ok.is_some_and(|r| r.contains("OK")), "giving slots {first} to {last} to port {port}");
        }
        for (&port, bus) in ports.iter().zip(&buses).skip(1) {
            cli(ports[0], &["cluster", "meet", "127.0.0.1", &port.to_string(), &bus.to_string()])
                .await
                .with_context(|| format!("introducing port {port}"))?;
        }
        let known = format!("cluster_known_nodes:{total}");
        cluster.until("every server knows every other", || cluster.every_info(|i| i.contains(&known))).await?;
        if replicas {
            for (&master, &replica) in ports[..masters].iter().zip(&ports[masters..]) {
                let id = cli(master, &["cluster", "myid"]).await.context("a master's id")?;
                let paired = cli(replica, &["cluster", "replicate", id.trim()]).await;
                ensure!(paired.is_some_and(|r| r.contains("OK")), "pairing port {replica} with {master}");
            }
        }
        cluster
            .until("every server sees the cluster ok and every master has its replica", || cluster.formed(replicas))
            .await?;
        Ok(cluster)
    }

    /// `REDIS_URL` for the hubs: every server, comma separated.
    pub fn url(&self) -> String {
        self.servers.iter().map(|s| format!("redis://127.0.0.1:{}", s.port)).collect::<Vec<_>>().join(",")
    }

    /// Ports of the servers still running.
    pub fn ports(&self) -> Vec<u16> {
        self.servers.iter().filter(|s| s.child.is_some()).map(|s| s.port).collect()
    }

    /// Process ids of the servers, in start order (masters first); None for one that was killed.
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.servers.iter().map(|s| s.child.as_ref().and_then(Child::id)).collect()
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

    /// The port of the master serving `key`'s slot, as a running server sees it.
    ///
    /// # Errors
    /// No server answers, or none of the masters it lists serves the slot.
    pub async fn master_of(&self, key: &str) -> anyhow::Result<u16> {
        let port = *self.ports().first().context("no server running")?;
        let slot: u16 = cli(port, &["cluster", "keyslot", key]).await.context("keyslot")?.trim().parse()?;
        let nodes = cli(port, &["cluster", "nodes"]).await.context("cluster nodes")?;
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
                let addr = f[1].split('@').next().unwrap_or_default();
                return Ok(addr.rsplit(':').next().unwrap_or_default().parse()?);
            }
        }
        bail!("no master serves slot {slot}: {nodes}")
    }

    /// Kills the master on `port` with SIGKILL and waits until its replica has taken over and
    /// every slot is served again: how long that took.
    ///
    /// # Errors
    /// `port` is not a running server of this cluster, or the cluster is not whole again in 30 s.
    pub async fn kill_and_fail_over(&mut self, port: u16) -> anyhow::Result<Duration> {
        let server = self.servers.iter_mut().find(|s| s.port == port).context("a server of this cluster")?;
        let mut child = server.child.take().context("a running server")?;
        child.start_kill()?;
        child.wait().await?;
        let before = Instant::now();
        let running = self.servers.iter().filter(|s| s.child.is_some()).count();
        self.until("the replica takes over and the cluster is ok again", || async {
            self.every_info(|i| i.contains("cluster_state:ok")).await && self.masters().await.len() * 2 > running
        })
        .await?;
        Ok(before.elapsed())
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

    /// Whether `CLUSTER INFO` of every running server passes `check`.
    async fn every_info(&self, check: impl Fn(&str) -> bool) -> bool {
        for port in self.ports() {
            if !cli(port, &["cluster", "info"]).await.is_some_and(|info| check(&info)) {
                return false;
            }
        }
        true
    }

    async fn formed(&self, replicas: bool) -> bool {
        if !self.every_info(|i| i.contains("cluster_state:ok")).await {
            return false;
        }
        if !replicas {
            return true;
        }
        let mut masters_with_replica = 0;
        for port in self.ports() {
            let replication = cli(port, &["info", "replication"]).await.unwrap_or_default();
            if replication.contains("role:master") && replication.contains("connected_slaves:1") {
                masters_with_replica += 1;
            }
        }
        masters_with_replica * 2 == self.servers.len()
    }

    async fn until<F: std::future::Future<Output = bool>>(
        &self,
        what: &str,
        mut check: impl FnMut() -> F,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        while !check().await {
            ensure!(Instant::now() < deadline, "redis cluster: {what} did not happen within {PATIENCE:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for server in &mut self.servers {
            if let Some(child) = server.child.as_mut() {
                let _ = child.start_kill();
            }
        }
        // A cgroup can be removed once its server has exited: give them a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        for dir in &self.cgroups {
            while std::fs::remove_dir(dir).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// A server on a free port, answering as itself, and its cluster bus port. A port found free can
/// be taken by another test's server before this one binds it (its own or its bus port): the
/// server then exits, and is started again on other ports.
async fn start_server(dir: &Path, node_timeout_ms: Option<u32>) -> anyhow::Result<(Server, u16)> {
    for _ in 0..5 {
        let (port, bus) = (free_port()?, free_port()?);
        let mut child = spawn(dir, port, bus, node_timeout_ms)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
            // Ours, not another test's server that took the port first.
            let ours = child.id().map(|pid| format!("process_id:{pid}"));
            let info = cli(port, &["info", "server"]).await.unwrap_or_default();
            if ours.is_some_and(|ours| info.lines().any(|l| l.trim() == ours)) {
                return Ok((Server { port, child: Some(child) }, bus));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    bail!("redis-server did not start on five pairs of free ports")
}

fn spawn(dir: &Path, port: u16, bus: u16, node_timeout_ms: Option<u32>) -> anyhow::Result<Child> {
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--cluster-port", &bus.to_string(), "--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes", "--cluster-replica-validity-factor", "0"])
        .args(["--cluster-config-file", &dir.join(format!("nodes-{port}.conf")).display().to_string()])
        .args(["--dir", &dir.display().to_string(), "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true);
    if let Some(ms) = node_timeout_ms {
        cmd.args(["--cluster-node-timeout", &ms.to_string()]);
    }
    cmd.spawn().context("starting redis-server (Debian's redis-server package)")
}

/// Where CPU cgroups are made: the v2 hierarchy when it has the `cpu` controller, else the v1
/// `cpu` hierarchy.
fn cgroup_root() -> anyhow::Result<(PathBuf, bool)> {
    let v2 = Path::new("/sys/fs/cgroup");
    if std::fs::read_to_string(v2.join("cgroup.controllers")).is_ok_and(|c| c.split_whitespace().any(|c| c == "cpu")) {
        return Ok((v2.into(), true));
    }
    let v1 = v2.join("cpu");
    ensure!(v1.join("cpu.cfs_quota_us").exists(), "a CPU budget needs a cgroup cpu controller (/sys/fs/cgroup)");
    Ok((v1, false))
}

/// Puts `pid` in a new CPU cgroup `name` held to `share` of one core; returns its directory.
fn limit_cpu(name: &str, pid: u32, share: f64) -> anyhow::Result<PathBuf> {
    let (root, v2) = cgroup_root()?;
    let dir = root.join(name);
    std::fs::create_dir(&dir).with_context(|| format!("making the cgroup {} (needs root)", dir.display()))?;
    let (quota, period) = budget(share);
    let written = if v2 {
        std::fs::write(dir.join("cpu.max"), format!("{quota} {period}"))
    } else {
        std::fs::write(dir.join("cpu.cfs_period_us"), period.to_string())
            .and_then(|()| std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string()))
    };
    written.and_then(|()| std::fs::write(dir.join("cgroup.procs"), pid.to_string())).map_err(|e| {
        let _ = std::fs::remove_dir(&dir);
        anyhow::anyhow!("limiting redis-server {pid} to {share} of a core: {e}")
    })?;
    Ok(dir)
}

/// The quota and period, in µs, that hold a process to `share` of one core: the shortest period
/// whose quota is at least the kernel's smallest.
fn budget(share: f64) -> (u64, u64) {
    let period = ((MIN_QUOTA_US as f64 / share).ceil() as u64).max(MIN_PERIOD_US);
    (((share * period as f64).round() as u64).max(MIN_QUOTA_US), period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_of_a_core_is_a_quota_per_short_period() {
        assert_eq!(budget(0.15), (1_500, 10_000));
        assert_eq!(budget(1.0), (10_000, 10_000));
        assert_eq!(budget(0.05), (1_000, 20_000));
        assert_eq!(budget(0.01), (1_000, 100_000));
    }
}
