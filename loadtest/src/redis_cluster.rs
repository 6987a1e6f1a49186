//! A Redis Cluster the harness starts for one run (`--spawn-redis-cluster N`): N masters without
//! replicas on loopback ports, the slots split evenly between them, in a temporary directory and
//! without persistence. Dropping it kills the servers. One master is a cluster too (all slots on
//! it), so runs with 1, 2 and 3 shards differ only in the number of shards.
//!
//! With `--redis-shard-cpu SHARE` each master runs in a CPU cgroup of its own, held to that share
//! of one core: a machine of its own, scaled down. On one small machine the hubs, Postgres and the
//! harness take the cores before the shards do, so without a budget the shards are never the bound
//! and more of them cannot show what they add; with one, the fan-out's throughput is bounded by
//! the shards, as in a deployment where each shard is a machine and the hubs are many.

use anyhow::{bail, ensure, Context};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Slots of a Redis Cluster.
const SLOTS: usize = 16_384;
/// Longest wait for the cluster to form.
const PATIENCE: Duration = Duration::from_secs(30);

/// Shortest period of a CPU budget. The kernel's default, 100 ms, lets a server held to 5% run
/// 5 ms and then stand still for 95: a stall no machine of that speed has. Shorter periods spread
/// the budget more evenly.
const MIN_PERIOD_US: u64 = 10_000;
/// Smallest quota the kernel takes per period.
const MIN_QUOTA_US: u64 = 1_000;

/// The servers of a spawned cluster.
pub struct RedisCluster {
    servers: Vec<(u16, Child)>,
    /// The CPU cgroups the servers run in (`--redis-shard-cpu`), removed after the servers stop.
    cgroups: Vec<std::path::PathBuf>,
    _dir: tempfile::TempDir,
}

/// Where CPU cgroups are made: the v2 hierarchy when it has the `cpu` controller, else the v1
/// `cpu` hierarchy.
fn cgroup_root() -> anyhow::Result<(std::path::PathBuf, bool)> {
    let v2 = std::path::Path::new("/sys/fs/cgroup");
    if std::fs::read_to_string(v2.join("cgroup.controllers")).is_ok_and(|c| c.split_whitespace().any(|c| c == "cpu")) {
        return Ok((v2.into(), true));
    }
    let v1 = v2.join("cpu");
    ensure!(v1.join("cpu.cfs_quota_us").exists(), "--redis-shard-cpu needs a cgroup cpu controller (/sys/fs/cgroup)");
    Ok((v1, false))
}

/// Puts `pid` in a new CPU cgroup `name` held to `share` of one core; returns its directory.
fn limit_cpu(name: &str, pid: u32, share: f64) -> anyhow::Result<std::path::PathBuf> {
    let (root, v2) = cgroup_root()?;
    let dir = root.join(name);
    std::fs::create_dir(&dir)
        .with_context(|| format!("making the cgroup {} (--redis-shard-cpu needs root)", dir.display()))?;
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

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn cli(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running redis-cli")?;
    ensure!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl RedisCluster {
    /// Starts `shards` masters, gives each an even share of the slots, introduces them to each
    /// other and waits until every one reports the cluster ok.
    ///
    /// With `cpu_share`, each master is held to that share of one core (see the module's doc).
    ///
    /// # Errors
    /// `redis-server` or `redis-cli` is missing, a CPU budget cannot be set, or the cluster does
    /// not form in time.
    pub fn start(shards: usize, cpu_share: Option<f64>) -> anyhow::Result<Self> {
        ensure!((1..=16).contains(&shards), "--spawn-redis-cluster takes 1 to 16 shards");
        if let Some(share) = cpu_share {
            ensure!(share > 0.0 && share <= 1.0, "--redis-shard-cpu takes a share of one core, above 0 and at most 1");
        }
        let dir = tempfile::tempdir()?;
        let mut cluster = Self { servers: Vec::new(), cgroups: Vec::new(), _dir: dir };
        let mut bus_ports = Vec::new();
        for _ in 0..shards {
            let (port, bus) = (free_port()?, free_port()?);
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--cluster-port", &bus.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--save", "", "--appendonly", "no"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .arg("--dir")
                .arg(cluster._dir.path())
                .stdout(Stdio::null())
                .spawn()
                .context("starting redis-server (Debian's redis-server package)")?;
            let pid = child.id();
            cluster.servers.push((port, child));
            if let Some(share) = cpu_share {
                let name = format!("anapars-loadtest-{}-{port}", std::process::id());
                cluster.cgroups.push(limit_cpu(&name, pid, share)?);
            }
            bus_ports.push(bus);
        }
        let deadline = Instant::now() + PATIENCE;
        for &(port, _) in &cluster.servers {
            while cli(port, &["ping"]).map_or(true, |r| !r.contains("PONG")) {
                ensure!(Instant::now() < deadline, "redis-server on port {port} did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for (i, &(port, _)) in cluster.servers.iter().enumerate() {
            let (first, last) = (i * SLOTS / shards, (i + 1) * SLOTS / shards - 1);
            cli(port, &["cluster", "addslotsrange", &first.to_string(), &last.to_string()])?;
        }
        let first = cluster.servers[0].0;
        for (&(port, _), bus) in cluster.servers.iter().zip(&bus_ports).skip(1) {
            cli(first, &["cluster", "meet", "127.0.0.1", &port.to_string(), &bus.to_string()])?;
        }
        for &(port, _) in &cluster.servers {
            loop {
                let info = cli(port, &["cluster", "info"])?;
                if info.contains("cluster_state:ok") && info.contains(&format!("cluster_known_nodes:{shards}")) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the Redis Cluster did not form within {PATIENCE:?}: {info}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(cluster)
    }

    /// `REDIS_URL` for the hubs: every master, comma separated.
    pub fn url(&self) -> String {
        self.servers.iter().map(|(port, _)| format!("redis://127.0.0.1:{port}")).collect::<Vec<_>>().join(",")
    }

    /// CPU seconds each master has used so far, in slot order (None where `/proc` cannot tell).
    pub fn cpu_secs(&self) -> Vec<Option<f64>> {
        self.servers.iter().map(|(_, child)| crate::hub::proc_cpu_secs(&format!("/proc/{}/stat", child.id()))).collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.servers {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Empty once their server has exited.
        for dir in &self.cgroups {
            let _ = std::fs::remove_dir(dir);
        }
    }
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
