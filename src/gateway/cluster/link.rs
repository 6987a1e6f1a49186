//! The node's Redis pub/sub link: subscribes to the channels of the topics its sockets need, follows
//! the registry's changes, delivers what arrives, and reconnects (with backoff, re-subscribing to
//! everything) when Redis goes away, or on a cluster when any shard's connection is lost (a
//! failover included).

use crate::adapters::redis::{Links, Subscriber};
use crate::gateway::cluster::{seen::Seen, Cluster};
use crate::ports::broker::Topic;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest wait for a connection, a (un)subscription or a ping.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the link pings Redis to notice a dead connection that sends no error.
const PING_EVERY: Duration = Duration::from_secs(3);
/// Channels per SUBSCRIBE command.
const CHUNK: usize = 1_000;
/// Reconnection backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Cluster {
    /// Runs the link until shutdown.
    pub(super) async fn link(self: Arc<Self>, links: Links, shutdown: CancellationToken) {
        let mut backoff = BACKOFF_MIN;
        let mut ever_up = false;
        // The envelope numbers seen per sending node.
        let mut seen: HashMap<uuid::Uuid, Seen> = HashMap::new();
        loop {
            let down = tokio::select! {
                _ = shutdown.cancelled() => return,
                reason = self.run_link(&links, &mut ever_up, &mut seen) => reason,
            };
            if self.link_up.swap(false, Ordering::Relaxed) {
                metrics::gauge!(crate::metrics::CLUSTER_LINK_UP).set(0.0);
                tracing::warn!(reason = down, "redis pub/sub link lost: local sockets keep working, other nodes' ticket events arrive through the storage sweep until it is back");
                backoff = BACKOFF_MIN;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            if seen.len() > 1_024 {
                // Ids of nodes long gone; a live node's next envelope starts a new entry.
                seen.clear();
            }
        }
    }

    /// One connection's life; returns why it ended.
    async fn run_link(&self, links: &Links, ever_up: &mut bool, seen: &mut HashMap<uuid::Uuid, Seen>) -> &'static str {
        let mut sub = match tokio::time::timeout(CALL_TIMEOUT, Subscriber::open(links)).await {
            Ok(Ok(s)) => s,
            _ => return "cannot connect",
        };
        // Drain the changes first, then take the full picture: a change after the picture is in
        // the drained set again and is applied below.
        self.registry.take_touched();
        let mut subscribed: HashSet<Topic> = self.registry.topics().into_iter().collect();
        let all: Vec<String> = subscribed.iter().flat_map(|t| self.channels(*t)).collect();
        for chunk in all.chunks(CHUNK) {
            if !matches!(tokio::time::timeout(CALL_TIMEOUT, sub.subscribe(chunk)).await, Ok(Ok(()))) {
                return "subscribe failed";
            }
        }
        self.link_up.store(true, Ordering::Relaxed);
        self.link_was_up.store(true, Ordering::Relaxed);
        metrics::gauge!(crate::metrics::CLUSTER_LINK_UP).set(1.0);
        if *ever_up {
            tracing::info!(channels = subscribed.len(), "redis pub/sub link is back");
            // Revocations published while the link was down were lost: check the sessions now.
            self.link_back.notify_one();
        } else {
            tracing::info!(node = %self.node, channels = subscribed.len(), "cluster link up");
        }
        *ever_up = true;
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = self.registry.touched() => {
                    let (mut add, mut remove) = (Vec::new(), Vec::new());
                    for topic in self.registry.take_touched() {
                        let wanted = self.registry.follows(topic);
                        if wanted && subscribed.insert(topic) {
                            add.extend(self.channels(topic));
                        } else if !wanted && subscribed.remove(&topic) {
                            remove.extend(self.channels(topic));
                        }
                    }
                    for chunk in add.chunks(CHUNK) {
                        if !matches!(tokio::time::timeout(CALL_TIMEOUT, sub.subscribe(chunk)).await, Ok(Ok(()))) {
                            return "subscribe failed";
                        }
                    }
                    for chunk in remove.chunks(CHUNK) {
                        if !matches!(tokio::time::timeout(CALL_TIMEOUT, sub.unsubscribe(chunk)).await, Ok(Ok(()))) {
                            return "unsubscribe failed";
                        }
                    }
                }
                message = sub.next() => match message {
                    Some(publication) => self.deliver(publication.bytes(), seen),
                    None => return "connection closed",
                },
                _ = ping.tick() => {
                    if !matches!(tokio::time::timeout(CALL_TIMEOUT, sub.ping()).await, Ok(Ok(_))) {
                        return "ping failed";
                    }
                }
            }
        }
    }
}
