//! A Redis Cluster the harness starts for one run (`--spawn-redis-cluster N`): N masters without
//! replicas on loopback ports, the slots split evenly between them, in a temporary directory and
//! without persistence. Dropping it kills the servers. One master is a cluster too (all slots on
//! it), so runs with 1, 2 and 3 shards differ only in the number of shards.

use anyhow::{bail, ensure, Context};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Slots of a Redis Cluster.
const SLOTS: usize = 16_384;
/// Longest wait for the cluster to form.
const PATIENCE: Duration = Duration::from_secs(30);

/// The servers of a spawned cluster.
pub struct RedisCluster {
    servers: Vec<(u16, Child)>,
    _dir: tempfile::TempDir,
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
    /// # Errors
    /// `redis-server` or `redis-cli` is missing, or the cluster does not form in time.
    pub fn start(shards: usize) -> anyhow::Result<Self> {
        ensure!((1..=16).contains(&shards), "--spawn-redis-cluster takes 1 to 16 shards");
        let dir = tempfile::tempdir()?;
        let mut cluster = Self { servers: Vec::new(), _dir: dir };
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
            cluster.servers.push((port, child));
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
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.servers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
