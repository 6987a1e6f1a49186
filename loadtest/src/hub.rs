//! The hub under test: either one already running (`--url`, `--hub-pid`) or one the harness starts
//! from the release binary (`--spawn-hub`) with load-test settings. Also reads what the hub
//! exposes about itself: `/metrics`, and `/proc/<pid>` for memory and CPU time.

use crate::metrics::Metrics;
use crate::peers::{PeerArgs, Target};
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the hub is and how to start it.
#[derive(Clone, Debug, clap::Args)]
pub struct HubArgs {
    /// Base URL of a running hub (HTTP and `/v1/ws` on the same address; loopback only), or several
    /// comma-separated URLs of the nodes of one cluster: the harness's sockets go round robin.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// With --spawn-hub: hub processes to start (more than 1 needs --redis-url and --database-url),
    /// each on its own port, sharing the database and Redis.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// Redis URL for spawned hubs (a cluster); each run uses its own key prefix.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// With --spawn-hub: start a Redis Cluster of this many masters (no replicas) on loopback
    /// ports for the run, and give it to the hubs instead of --redis-url.
    #[arg(long, value_name = "SHARDS")]
    pub spawn_redis_cluster: Option<usize>,
    /// With --spawn-redis-cluster: hold each master to this share of one core (0.15 is 15%), in a
    /// CPU cgroup of its own (needs root), so that the shards, not the machine, bound the fan-out.
    #[arg(long, value_name = "SHARE")]
    pub redis_shard_cpu: Option<f64>,
    /// The hubs' operator token (for `burst`; at least 32 characters); else the harness's own
    /// `HUB_ADMIN_TOKEN`; else spawned hubs get a fresh random one. Never printed.
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Start the hub binary with load-test settings (test numbers on, high per-socket frame limits,
    /// SQLite in a fresh temporary directory unless --database-url), and stop it at the end.
    #[arg(long)]
    pub spawn_hub: bool,
    /// The hub binary, to start it and to create agents (`anapars-hub agent add`).
    #[arg(long, default_value = "target/release/anapars-hub")]
    pub hub_bin: PathBuf,
    /// Postgres URL for the spawned hub (and for `agent add`); unset: SQLite in a temporary directory.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Extra environment for the spawned hub (or peer), e.g. `--hub-env HUB_MESSAGE_BATCH=512`
    /// (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub hub_env: Vec<String>,
    /// Pid of an already running hub, to read its memory and CPU time from /proc (several,
    /// comma-separated, in the order of --url).
    #[arg(long, value_delimiter = ',')]
    pub hub_pid: Vec<u32>,
    /// E.164 prefix of the hub's test numbers (HUB_TEST_PHONE_PREFIX).
    #[arg(long, default_value = "+9891200")]
    pub phone_prefix: String,
    /// The hub's fixed code for test numbers (HUB_TEST_CODE).
    #[arg(long, default_value = "123456")]
    pub test_code: String,
    #[command(flatten)]
    pub peer: PeerArgs,
}

/// How to reach one node: start it, or attach to one running at `url`.
pub enum NodeStart<'a> {
    /// Start the hub binary (node `index`) with extra environment (Redis, admin token).
    Spawn {
        /// Node number, for its temporary directory.
        index: usize,
        /// Environment on top of the load-test settings.
        env: Vec<(String, String)>,
    },
    /// A hub started elsewhere.
    Attach {
        /// Its base URL.
        url: &'a str,
        /// Its pid, when known.
        pid: Option<u32>,
    },
}

/// A hub the harness talks to, possibly one it started.
pub struct HubHandle {
    /// `http://host:port`.
    pub base: String,
    /// The socket address of HTTP and the WebSocket.
    pub addr: SocketAddr,
    /// The hub's pid, when known.
    pub pid: Option<u32>,
    /// `sqlite`, `postgres`, or `unknown` for a hub the harness did not start.
    pub backend: &'static str,
    /// Environment that points `anapars-hub agent add` at the hub's database.
    pub db_env: Vec<(String, String)>,
    child: Option<Child>,
    dir: Option<PathBuf>,
    /// The spawned hub's log file.
    pub log: Option<PathBuf>,
}

impl HubHandle {
    /// Starts one node (`--spawn-hub`) or attaches to one at a URL; waits until `/readyz` answers
    /// 200.
    ///
    /// # Errors
    /// The binary cannot be started, the URL is not loopback, or the hub is not ready in 60 s.
    pub async fn open_node(args: &HubArgs, node: NodeStart<'_>, http: &reqwest::Client) -> anyhow::Result<Self> {
        let mut handle = match node {
            NodeStart::Spawn { index, env } => Self::spawn(args, index, &env)?,
            NodeStart::Attach { url, pid } => Self::attach(args, url, pid)?,
        };
        if let Err(e) = handle.wait_ready(http).await {
            // Keep the log for the operator.
            handle.dir = None;
            return Err(e);
        }
        Ok(handle)
    }

    fn attach(args: &HubArgs, url: &str, pid: Option<u32>) -> anyhow::Result<Self> {
        let base = url.trim().trim_end_matches('/').to_owned();
        let addr = loopback_addr(&base)?;
        let mut db_env = Vec::new();
        for key in ["DATABASE_URL", "HUB_SQLITE_PATH"] {
            if let Ok(v) = std::env::var(key) {
                db_env.push((key.to_owned(), v));
            }
        }
        let backend = if args.peer.target.is_peer() { args.peer.target.name() } else { "unknown" };
        Ok(Self { base, addr, pid, backend, db_env, child: None, dir: None, log: None })
    }

    fn spawn(args: &HubArgs, index: usize, cluster_env: &[(String, String)]) -> anyhow::Result<Self> {
        if args.peer.target.is_peer() {
            return Self::spawn_peer(args);
        }
        if !args.hub_bin.exists() {
            bail!(
                "{} not found: build it with `cargo build --release -p anapars-hub` or pass --hub-bin",
                args.hub_bin.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let dir = std::env::temp_dir().join(format!("anapars-loadtest-{}-{stamp}-{index}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut env = spawn_env(args, addr, &dir);
        env.extend(cluster_env.iter().cloned());
        for (k, v) in extra_env(args)? {
            env.retain(|(key, _)| *key != k);
            env.push((k.to_owned(), v.to_owned()));
        }
        // The two test-number settings go in a TOML file as quoted strings, which every hub reads
        // as strings; the harness does not link the hub, and a hub that parsed its environment
        // values would read `HUB_TEST_CODE=123456` as a number and refuse it.
        let config = dir.join("hub.toml");
        std::fs::write(&config, test_numbers_toml(&args.phone_prefix, &args.test_code))?;
        let log = dir.join("hub.log");
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(&args.hub_bin);
        cmd.arg("--config").arg(&config).arg("serve");
        cmd.env_remove("DATABASE_URL").env_remove("REDIS_URL").envs(env.iter().cloned());
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", args.hub_bin.display()))?;
        let db_env: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| ["DATABASE_URL", "HUB_SQLITE_PATH", "HUB_DATA_KEYS"].contains(&k.as_str()))
            .cloned()
            .collect();
        Ok(Self {
            base: format!("http://{addr}"),
            addr,
            pid: Some(child.id()),
            backend: if args.database_url.is_some() { "postgres" } else { "sqlite" },
            db_env,
            child: Some(child),
            dir: Some(dir),
            log: Some(log),
        })
    }

    /// Starts the peer of `args.peer.target` on a free loopback port, its output in a fresh temporary
    /// directory, as `--spawn-hub` starts the hub.
    ///
    /// # Errors
    /// The peer's program is missing or cannot be started.
    fn spawn_peer(args: &HubArgs) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut cmd = crate::peers::command(&args.peer, addr)?;
        cmd.envs(extra_env(args)?);
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let dir = std::env::temp_dir().join(format!("anapars-loadtest-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = dir.join("peer.log");
        let out = std::fs::File::create(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting the {}", args.peer.target.name()))?;
        Ok(Self {
            base: format!("http://{addr}"),
            addr,
            pid: Some(child.id()),
            backend: args.peer.target.name(),
            db_env: Vec::new(),
            child: Some(child),
            dir: Some(dir),
            log: Some(log),
        })
    }

    async fn wait_ready(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/readyz", self.base);
        loop {
            if let Ok(r) = http.get(&url).timeout(Duration::from_secs(2)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if let Some(pid) = self.pid {
                if self.child.is_some() && !Path::new(&format!("/proc/{pid}")).exists() {
                    bail!("the hub exited at start; see {}", self.log_hint());
                }
            }
            if Instant::now() > deadline {
                bail!("the hub at {} was not ready within 60 s; {}", self.base, self.log_hint());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_hint(&self) -> String {
        match &self.log {
            Some(log) => format!("log: {}", log.display()),
            None => "is it running?".into(),
        }
    }

    /// Stops a hub the harness started (SIGTERM, then SIGKILL after 15 s) and removes its
    /// temporary directory. Does nothing for a hub it attached to.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.dir.take() {
            if std::env::var_os("LOADTEST_KEEP_DIR").is_none() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// Whether this is one of the peers of loadtest/peers/ rather than a hub (its backend is a
    /// peer's name).
    pub fn is_peer(&self) -> bool {
        [Target::NodePeer, Target::RustPeer].iter().any(|t| t.name() == self.backend)
    }

    /// The hub's `/metrics`, parsed (empty when it cannot be read).
    pub async fn metrics(&self, http: &reqwest::Client) -> Metrics {
        let url = format!("{}/metrics", self.base);
        match http.get(url).timeout(Duration::from_secs(5)).send().await {
            Ok(r) => Metrics::parse(&r.text().await.unwrap_or_default()),
            Err(_) => Metrics::default(),
        }
    }

    /// The hub's resident memory, in KiB, when its pid is known.
    pub fn rss_kib(&self) -> Option<u64> {
        self.pid.and_then(|pid| proc_rss_kib(&format!("/proc/{pid}/status")))
    }

    /// The hub's CPU time (user + system), in seconds, when its pid is known.
    pub fn cpu_secs(&self) -> Option<f64> {
        self.pid.and_then(|pid| proc_cpu_secs(&format!("/proc/{pid}/stat")))
    }
}

impl Drop for HubHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The spawned hub's environment.
fn spawn_env(args: &HubArgs, addr: SocketAddr, dir: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("HUB_LISTEN", addr.to_string()),
        // Per-socket frame limits are an abuse guard: the harness paces itself, and an agent
        // console answering hundreds of tickets legitimately exceeds 50 frames a second.
        ("HUB_MAX_FRAMES_PER_SEC", "100000".to_owned()),
        ("HUB_FRAME_BURST", "100000".to_owned()),
        // Every simulated client comes from 127.0.0.x: lift the per-IP caps.
        ("HUB_CODES_PER_IP_HOUR", "10000000".to_owned()),
        ("HUB_SHUTDOWN_GRACE_MS", "3000".to_owned()),
        ("HUB_LOG_FORMAT", "text".to_owned()),
        ("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    match &args.database_url {
        Some(url) => {
            env.push(("DATABASE_URL".into(), url.clone()));
            // Every node (and `agent add`) seals numbers with the same data keys: the operator's,
            // else the harness's own.
            let keys = std::env::var("HUB_DATA_KEYS").unwrap_or_else(|_| LOAD_DATA_KEYS.to_owned());
            env.push(("HUB_DATA_KEYS".into(), keys));
        }
        None => env.push(("HUB_SQLITE_PATH".into(), dir.join("hub.sqlite").display().to_string())),
    }
    // Attachments go with the run's other files, not into the working directory.
    env.push(("HUB_ATTACHMENTS_DIR".into(), dir.join("attachments").display().to_string()));
    env
}

/// The data keys of hubs the harness starts on Postgres when `HUB_DATA_KEYS` is not set.
const LOAD_DATA_KEYS: &str = "load:bG9hZCB0ZXN0IGRhdGEga2V5IC0gbm90IGZvciB1c2U=";

/// The spawned hub's configuration file: the test-number settings, as TOML strings.
fn test_numbers_toml(prefix: &str, code: &str) -> String {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    format!("test_phone_prefix = {}\ntest_code = {}\n", quote(prefix), quote(code))
}

/// The socket address of a `http://127.x.x.x:port` URL.
///
/// # Errors
/// Not `http://`, no port, or not a loopback address: the harness never sends load elsewhere.
pub fn loopback_addr(base: &str) -> anyhow::Result<SocketAddr> {
    let rest = base.strip_prefix("http://").context("--url must start with http://")?;
    let host = rest.split('/').next().unwrap_or(rest);
    let host = if host == "localhost" || host.starts_with("localhost:") {
        host.replacen("localhost", "127.0.0.1", 1)
    } else {
        host.to_owned()
    };
    let addr: SocketAddr = host.parse().with_context(|| format!("--url: `{host}` is not IP:port"))?;
    if !addr.ip().is_loopback() {
        bail!("--url must be a loopback address (127.0.0.0/8): load is never sent elsewhere");
    }
    Ok(addr)
}

/// VmRSS in KiB from a `/proc/<pid>/status` file.
pub fn proc_rss_kib(path: &str) -> Option<u64> {
    parse_vm_rss(&std::fs::read_to_string(path).ok()?)
}

/// VmRSS in KiB from the text of `/proc/<pid>/status`.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Clock ticks per second of /proc CPU times (USER_HZ: 100 on every mainstream Linux build).
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds from a `/proc/<pid>/stat` file.
pub fn proc_cpu_secs(path: &str) -> Option<f64> {
    parse_cpu_ticks(&std::fs::read_to_string(path).ok()?).map(|t| t as f64 / USER_HZ)
}

/// utime + stime (ticks) from the text of `/proc/<pid>/stat`. The command name may contain spaces
/// and parentheses, so fields are counted after the last `)`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is the state (field 3 of the man page); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds of every live process whose command name is `comm` (e.g. every Postgres backend).
/// Backends that exit between two readings take their time with them, so this is a lower bound.
pub fn processes_cpu_secs(comm: &str) -> Option<f64> {
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        if stat_comm(&stat) == Some(comm) {
            ticks += parse_cpu_ticks(&stat).unwrap_or(0);
        }
    }
    Some(ticks as f64 / USER_HZ)
}

/// The command name in the text of `/proc/<pid>/stat` (between the first `(` and the last `)`).
fn stat_comm(stat: &str) -> Option<&str> {
    Some(&stat[stat.find('(')? + 1..stat.rfind(')')?])
}

/// Busy and total jiffies of the whole machine, from `/proc/stat`.
pub fn machine_jiffies() -> Option<(u64, u64)> {
    parse_machine_jiffies(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Busy and total jiffies from the text of `/proc/stat` (idle and iowait are not busy).
pub fn parse_machine_jiffies(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// CPU counters at one moment: the hub's, the harness's, Postgres's and the machine's.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSnapshot {
    hub: Option<f64>,
    harness: Option<f64>,
    postgres: Option<f64>,
    redis: Option<f64>,
    machine: Option<(u64, u64)>,
}

impl CpuSnapshot {
    /// Reads the counters now; the hub's is the sum over `nodes` whose pids are known.
    pub fn take(nodes: &[HubHandle]) -> Self {
        let known: Vec<f64> = nodes.iter().filter_map(HubHandle::cpu_secs).collect();
        Self {
            hub: (!known.is_empty()).then(|| known.iter().sum()),
            harness: proc_cpu_secs("/proc/self/stat"),
            postgres: processes_cpu_secs("postgres"),
            redis: processes_cpu_secs("redis-server"),
            machine: machine_jiffies(),
        }
    }

    /// CPU used from `self` to `later`.
    pub fn until(&self, later: &CpuSnapshot) -> crate::report::CpuUse {
        let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        let (machine_pct, busy_s) = match (self.machine, later.machine) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                (Some(100.0 * (b1 - b0) as f64 / (t1 - t0) as f64), Some((b1 - b0) as f64 / USER_HZ))
            }
            _ => (None, None),
        };
        let hub_s = diff(self.hub, later.hub);
        let harness_s = diff(self.harness, later.harness);
        let postgres_s = diff(self.postgres, later.postgres).filter(|s| *s > 0.0);
        let redis_s = diff(self.redis, later.redis).filter(|s| *s > 0.0);
        let known =
            hub_s.unwrap_or(0.0) + harness_s.unwrap_or(0.0) + postgres_s.unwrap_or(0.0) + redis_s.unwrap_or(0.0);
        let others_s = busy_s.map(|b| (b - known).max(0.0));
        crate::report::CpuUse { hub_s, harness_s, postgres_s, redis_s, machine_busy_pct: machine_pct, others_s }
    }
}

/// The `--hub-env` pairs, for a spawned hub or peer.
///
/// # Errors
/// One that is not `KEY=VALUE`.
fn extra_env(args: &HubArgs) -> anyhow::Result<Vec<(&str, &str)>> {
    args.hub_env
        .iter()
        .map(|extra| extra.split_once('=').with_context(|| format!("--hub-env {extra}: expected KEY=VALUE")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read() {
        assert_eq!(parse_vm_rss("Name:\thub\nVmRSS:\t   20480 kB\nVmSwap: 0 kB\n"), Some(20480));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        let stat = "4242 (anapars hub) (x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(stat_comm(stat), Some("anapars hub) (x"));
        assert!(processes_cpu_secs("no-such-command-here").is_some_and(|s| s == 0.0));
        let (busy, total) = parse_machine_jiffies("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n").unwrap();
        assert_eq!((busy, total), (150, 1000));
    }

    #[test]
    fn test_number_settings_are_toml_strings() {
        assert_eq!(
            test_numbers_toml("+9891200", "123456"),
            "test_phone_prefix = \"+9891200\"\ntest_code = \"123456\"\n"
        );
    }

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert_eq!(loopback_addr("http://127.0.0.1:8080").unwrap().port(), 8080);
        assert!(loopback_addr("http://localhost:9000/").is_ok());
        assert!(loopback_addr("http://10.0.0.1:8080").is_err());
        assert!(loopback_addr("https://127.0.0.1:8080").is_err());
        assert!(loopback_addr("http://127.0.0.1").is_err());
    }
}
