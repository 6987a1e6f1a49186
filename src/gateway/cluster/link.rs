//! The node's Redis pub/sub link: subscribes to the channels of the topics its sockets need, follows
//! the registry's changes, delivers what arrives, and reconnects (with backoff, re-subscribing to
//! everything) when Redis goes away.

use crate::gateway::cluster::Cluster;
use crate::ports::broker::Topic;
use futures_util::StreamExt;
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
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Cluster {
    /// Runs the link until shutdown.
    pub(super) async fn link(self: Arc<Self>, client: redis::Client, shutdown: CancellationToken) {
        let mut backoff = BACKOFF_MIN;
        let mut ever_up = false;
        // The last envelope number seen per sending node.
        let mut last: HashMap<uuid::Uuid, u64> = HashMap::new();
        loop {
            let down = tokio::select! {
                _ = shutdown.cancelled() => return,
                reason = self.run_link(&client, &mut ever_up, &mut last) => reason,
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
            if last.len() > 1_024 {
                // Ids of nodes long gone; a live node's next envelope starts a new entry.
                last.clear();
            }
        }
    }

    /// One connection's life; returns why it ended.
    async fn run_link(
        &self,
        client: &redis::Client,
        ever_up: &mut bool,
        last: &mut HashMap<uuid::Uuid, u64>,
    ) -> &'static str {
        let pubsub = match tokio::time::timeout(CALL_TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(p)) => p,
            _ => return "cannot connect",
        };
        let (mut sink, mut stream) = pubsub.split();
        // Drain the changes first, then take the full picture: a change after the picture is in
        // the drained set again and is applied below.
        self.registry.take_touched();
        let mut subscribed: HashSet<Topic> = self.registry.topics().into_iter().collect();
        let all: Vec<String> = subscribed.iter().map(|t| self.channel(*t)).collect();
        for chunk in all.chunks(CHUNK) {
            if !matches!(tokio::time::timeout(CALL_TIMEOUT, sink.subscribe(chunk)).await, Ok(Ok(()))) {
                return "subscribe failed";
            }
        }
        self.link_up.store(true, Ordering::Relaxed);
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
                            add.push(self.channel(topic));
                        } else if !wanted && subscribed.remove(&topic) {
                            remove.push(self.channel(topic));
                        }
                    }
                    for chunk in add.chunks(CHUNK) {
                        if !matches!(tokio::time::timeout(CALL_TIMEOUT, sink.subscribe(chunk)).await, Ok(Ok(()))) {
                            return "subscribe failed";
                        }
                    }
                    for chunk in remove.chunks(CHUNK) {
                        if !matches!(tokio::time::timeout(CALL_TIMEOUT, sink.unsubscribe(chunk)).await, Ok(Ok(()))) {
                            return "unsubscribe failed";
                        }
                    }
                }
                message = stream.next() => match message {
                    Some(m) => self.deliver(m.get_payload_bytes(), last),
                    None => return "connection closed",
                },
                _ = ping.tick() => {
                    if !matches!(tokio::time::timeout(CALL_TIMEOUT, sink.ping::<redis::Value>()).await, Ok(Ok(_))) {
                        return "ping failed";
                    }
                }
            }
        }
    }
}
