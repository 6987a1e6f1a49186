//! Hosts of their own for cluster tests: a network namespace per host, each with an address on a
//! "back" network (where the test's Redis and its relay to Postgres listen) and one on a "front"
//! network (where the test's clients reach the hubs). Both networks are bridges in the test's own
//! namespace, which holds the gateway address of each. A host has no route from one network to
//! the other, so cutting its back link ([`Network::cut`]) leaves its clients' sockets up.
//!
//! Needs root and `ip` (iproute2). Every name carries the test process's id, so parallel runs do
//! not collide, and the leftovers of a run that was killed (its process is gone) are removed by the
//! next run: its namespaces with the processes still in them, and its bridges.

use super::cluster::Place;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The start of every name this module gives.
const PREFIX: &str = "hubt";
/// A name's tag: the prefix, the process id in 6 hex digits, and a digit counting networks.
const TAG_LEN: usize = PREFIX.len() + 7;
/// Host `i` is `.HOST_BASE + i` on both networks; the gateways are `.1`, Redis is `.REDIS_HOST`.
const HOST_BASE: u8 = 10;
const REDIS_HOST: u8 = 2;

/// The `ip` binary, if there is one.
pub fn ip_binary() -> Option<&'static Path> {
    static IP: OnceLock<Option<PathBuf>> = OnceLock::new();
    IP.get_or_init(|| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
            .map(|dir| dir.join("ip"))
            .find(|p| p.is_file())
    })
    .as_deref()
}

/// Runs `ip args`; its stdout, or what went wrong.
fn ip(args: &[&str]) -> Result<String, String> {
    let bin = ip_binary().ok_or("no ip binary")?;
    let out = Command::new(bin).args(args).output().map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("building the test network failed: {e}");
    }
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().next()) == Some("0")
}

/// One host: its namespace and its addresses.
pub struct Host {
    pub netns: String,
    pub back: Ipv4Addr,
    pub front: Ipv4Addr,
}

impl Host {
    /// Where a hub on this host runs: in its namespace, listening on its front address.
    pub fn place(&self) -> Place {
        Place { netns: Some(self.netns.clone()), ip: IpAddr::V4(self.front) }
    }
}

/// The hosts and the two networks; dropping it removes them.
pub struct Network {
    tag: String,
    pub hosts: Vec<Host>,
    /// Where the test's Redis runs: a namespace of its own on the back network (so that the
    /// leftovers of a killed run take it with them).
    pub redis: Place,
    /// The test's own address on the back network.
    pub back_gateway: Ipv4Addr,
    /// The test's own address on the front network.
    pub front_gateway: Ipv4Addr,
}

impl Network {
    /// `count` hosts; None (with the reason printed) when the test cannot build them here: not root,
    /// or no `ip`.
    ///
    /// # Panics
    /// Root with `ip`, but building the network fails.
    pub fn create(count: usize) -> Option<Self> {
        if !is_root() {
            eprintln!("not root: network namespaces cannot be made here");
            return None;
        }
        if ip_binary().is_none() {
            eprintln!("no `ip` binary (iproute2): network namespaces cannot be made here");
            return None;
        }
        assert!(count < 100, "at most 99 hosts");
        remove_where(|pid, _| !Path::new(&format!("/proc/{pid}")).exists());
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed) % 10;
        let tag = format!("{PREFIX}{:06x}{run}", std::process::id() & 0xff_ffff);
        let (back, front) = free_subnets(std::process::id() as usize * 10 + run);
        let net = Self {
            hosts: (0..count)
                .map(|i| Host {
                    netns: format!("{tag}-{i}"),
                    back: host_address(back, HOST_BASE + i as u8),
                    front: host_address(front, HOST_BASE + i as u8),
                })
                .collect(),
            redis: Place { netns: Some(format!("{tag}-r")), ip: IpAddr::V4(host_address(back, REDIS_HOST)) },
            back_gateway: host_address(back, 1),
            front_gateway: host_address(front, 1),
            tag,
        };
        // From here on, a failure panics and the drop removes whatever was made.
        for (side, gateway) in [("B", net.back_gateway), ("F", net.front_gateway)] {
            let bridge = format!("{}{side}", net.tag);
            must(&["link", "add", &bridge, "type", "bridge"]);
            must(&["addr", "add", &format!("{gateway}/24"), "dev", &bridge]);
            must(&["link", "set", &bridge, "up"]);
        }
        let redis_ns = net.redis.netns.as_deref().unwrap_or_default();
        let redis_link = [("back", "r".to_owned(), "B", host_address(back, REDIS_HOST))];
        net.join(redis_ns, &redis_link);
        for (i, host) in net.hosts.iter().enumerate() {
            net.join(
                &host.netns,
                &[("back", format!("b{i}"), "B", host.back), ("front", format!("f{i}"), "F", host.front)],
            );
        }
        Some(net)
    }

    /// Makes the namespace `ns` with a link to each network of `links`: (the link's name inside,
    /// the suffix of its other end's name, the bridge's suffix, its address).
    fn join(&self, ns: &str, links: &[(&str, String, &str, Ipv4Addr)]) {
        must(&["netns", "add", ns]);
        must(&["-n", ns, "link", "set", "lo", "up"]);
        for (inside, outside, bridge, addr) in links {
            let (outside, bridge) = (format!("{}{outside}", self.tag), format!("{}{bridge}", self.tag));
            must(&["link", "add", &outside, "type", "veth", "peer", "name", inside, "netns", ns]);
            must(&["link", "set", &outside, "master", &bridge, "up"]);
            must(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", inside]);
            must(&["-n", ns, "link", "set", inside, "up"]);
        }
    }

    /// Cuts host `i` off the back network (Redis and Postgres), as a partition does: the other end
    /// of its back link goes down, so whatever the host sends there is dropped without an error, a
    /// reset or a refusal (its own end, its address and its routes stay as they were). Its front
    /// link stays up.
    pub fn cut(&self, i: usize) {
        must(&["link", "set", &format!("{}b{i}", self.tag), "down"]);
    }

    /// Brings host `i`'s back link up again.
    pub fn restore(&self, i: usize) {
        must(&["link", "set", &format!("{}b{i}", self.tag), "up"]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let tag = self.tag.clone();
        remove_where(|_, t| t == tag);
    }
}

/// `10.a.b.host` of the /24 `(a, b)`.
fn host_address((a, b): (u8, u8), host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, a, b, host)
}

/// Two /24s in 10.200.0.0 to 10.249.255.255 that no address or route of this namespace is in,
/// starting from a place `seed` picks.
fn free_subnets(seed: usize) -> ((u8, u8), (u8, u8)) {
    let taken = format!(
        "{}{}",
        ip(&["-4", "-o", "addr", "show"]).unwrap_or_default(),
        ip(&["-4", "route", "show", "table", "all"]).unwrap_or_default()
    );
    let used = |(a, b): (u8, u8)| taken.contains(&format!("10.{a}.{b}."));
    (0..50 * 128)
        .map(|k| (seed + k) % (50 * 128))
        .map(|k| ((200 + k / 128) as u8, ((k % 128) * 2) as u8))
        .map(|(a, b)| ((a, b), (a, b + 1)))
        .find(|&(back, front)| !used(back) && !used(front))
        .expect("a free pair of subnets in 10.200.0.0/13")
}

/// Removes the namespaces (and the processes in them) and links whose name's tag passes `pred`
/// (given the process id in the tag, and the tag).
fn remove_where(pred: impl Fn(u32, &str) -> bool) {
    let tagged = |name: &str| -> Option<(u32, String)> {
        let tag = name.get(..TAG_LEN)?;
        let pid = u32::from_str_radix(tag.get(PREFIX.len()..PREFIX.len() + 6)?, 16).ok()?;
        let run_digit = tag.as_bytes()[TAG_LEN - 1].is_ascii_digit();
        (tag.starts_with(PREFIX) && run_digit && pred(pid, tag)).then(|| (pid, tag.to_owned()))
    };
    let namespaces = ip(&["netns", "list"]).unwrap_or_default();
    for ns in namespaces.lines().filter_map(|l| l.split_whitespace().next()) {
        if tagged(ns).is_none() {
            continue;
        }
        // The hubs of a killed run would otherwise live on in a namespace nobody can reach.
        for pid in ip(&["netns", "pids", ns]).unwrap_or_default().split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        let _ = ip(&["netns", "delete", ns]);
    }
    // Deleting a namespace deletes its veths and their peers; the bridges remain.
    let links = ip(&["-o", "link", "show"]).unwrap_or_default();
    for link in links.lines().filter_map(|l| l.split(": ").nth(1)).map(|n| n.split('@').next().unwrap_or(n)) {
        if tagged(link).is_some() {
            let _ = ip(&["link", "delete", link]);
        }
    }
}
