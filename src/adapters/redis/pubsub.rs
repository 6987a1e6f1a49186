//! Pub/sub on one server (`PUBLISH`/`SUBSCRIBE`) or on a Redis Cluster (`SPUBLISH`/`SSUBSCRIBE`:
//! each channel lives on the shard owning its slot, so a publication costs one shard, not all).
//!
//! Pub/sub is at most once on both: what a subscriber misses while its connection is down is gone.
//! A [`Subscriber`] therefore ends at the first sign of a lost connection (to any shard), and its
//! owner opens a new one and subscribes to everything again, filling the gap from storage.

use super::{cluster_client, Connection, Links, TIMEOUT};
use futures_util::future::try_join_all;
use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, RedisResult, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Commands a cluster subscriber or publisher keeps in flight (one per channel: channels of
/// different slots cannot share a command).
const IN_FLIGHT: usize = 256;
/// Publications received and not yet taken; past this the subscriber counts as lost (its owner
/// resubscribes and the storage sweep delivers what was dropped).
const RECEIVED: usize = 65_536;

/// Publishes each `(channel, payload)`: in one pipeline on one server, as concurrent `SPUBLISH`es
/// on a cluster.
///
/// # Errors
/// Redis is unreachable (some publications may have gone out).
pub async fn publish(conn: &mut Connection, items: &[(&str, &[u8])]) -> RedisResult<()> {
    match conn {
        Connection::Single(c) => {
            let mut pipe = redis::pipe();
            for (channel, payload) in items {
                pipe.cmd("PUBLISH").arg(*channel).arg(*payload).ignore();
            }
            pipe.query_async::<()>(c).await
        }
        Connection::Cluster(c) => {
            for some in items.chunks(IN_FLIGHT) {
                try_join_all(some.iter().map(|&(channel, payload)| spublish(c.clone(), channel, payload))).await?;
            }
            Ok(())
        }
    }
}

/// A publication's payload, as the connection delivered it (no copy).
pub enum Publication {
    /// From one server.
    Single(redis::Msg),
    /// From a cluster shard, taken out of its RESP3 push.
    Cluster(Vec<u8>),
}

impl Publication {
    /// The payload's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Single(m) => m.get_payload_bytes(),
            Self::Cluster(b) => b,
        }
    }
}

/// One pub/sub connection's life: subscribe, unsubscribe, ping, and the publications of the
/// subscribed channels until the connection is lost.
pub struct Subscriber(Inner);

enum Inner {
    /// On one server.
    Single { sink: PubSubSink, stream: PubSubStream },
    /// On a Redis Cluster, over RESP3 pushes.
    Cluster {
        conn: ClusterConnection,
        pushes: mpsc::Receiver<PushInfo>,
        /// Cancelled when a shard's connection closed or the pushes overflowed.
        lost: CancellationToken,
    },
}

impl Subscriber {
    /// Opens a connection (to every shard on a cluster).
    ///
    /// # Errors
    /// Redis is unreachable.
    pub async fn open(links: &Links) -> RedisResult<Self> {
        match links {
            Links::Single(client) => {
                let pubsub = client.get_async_pubsub().await?;
                let (sink, stream) = pubsub.split();
                Ok(Self(Inner::Single { sink, stream }))
            }
            Links::Cluster(seeds) => {
                let (tx, pushes) = mpsc::channel(RECEIVED);
                let lost = CancellationToken::new();
                let on_push = {
                    let lost = lost.clone();
                    move |push: PushInfo| {
                        if push.kind == PushKind::Disconnection || tx.try_send(push).is_err() {
                            lost.cancel();
                        }
                        Ok::<(), ()>(())
                    }
                };
                let conn = cluster_client(seeds, Some(Box::new(on_push)))?.get_async_connection().await?;
                Ok(Self(Inner::Cluster { conn, pushes, lost }))
            }
        }
    }

    /// Subscribes to `channels`.
    ///
    /// # Errors
    /// Redis is unreachable or refused.
    pub async fn subscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        match &mut self.0 {
            Inner::Single { sink, .. } => sink.subscribe(channels).await,
            Inner::Cluster { conn, .. } => for_each_channel(conn, channels, Sharded::Subscribe).await,
        }
    }

    /// Unsubscribes from `channels`.
    ///
    /// # Errors
    /// Redis is unreachable or refused.
    pub async fn unsubscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        match &mut self.0 {
            Inner::Single { sink, .. } => sink.unsubscribe(channels).await,
            Inner::Cluster { conn, .. } => for_each_channel(conn, channels, Sharded::Unsubscribe).await,
        }
    }

    /// Pings the server (every master on a cluster): a connection that died silently fails here.
    ///
    /// # Errors
    /// Redis is unreachable.
    pub async fn ping(&mut self) -> RedisResult<()> {
        match &mut self.0 {
            Inner::Single { sink, .. } => sink.ping::<Value>().await.map(drop),
            Inner::Cluster { conn, .. } => redis::cmd("PING").query_async::<Value>(conn).await.map(drop),
        }
    }

    /// The next publication's payload, or `None` once the connection is lost.
    pub async fn next(&mut self) -> Option<Publication> {
        match &mut self.0 {
            Inner::Single { stream, .. } => stream.next().await.map(Publication::Single),
            Inner::Cluster { pushes, lost, .. } => loop {
                let push = tokio::select! {
                    biased;
                    push = pushes.recv() => push?,
                    () = lost.cancelled() => return None,
                };
                if matches!(push.kind, PushKind::SMessage | PushKind::Message) {
                    if let Some(Value::BulkString(payload)) = push.data.into_iter().nth(1) {
                        return Some(Publication::Cluster(payload));
                    }
                }
            },
        }
    }
}

#[derive(Clone, Copy)]
enum Sharded {
    Subscribe,
    Unsubscribe,
}

/// (Un)subscribes channel by channel, some at a time: channels of different slots cannot share a
/// command on a cluster.
async fn for_each_channel(conn: &ClusterConnection, channels: &[String], what: Sharded) -> RedisResult<()> {
    for some in channels.chunks(IN_FLIGHT) {
        try_join_all(some.iter().map(|channel| sharded(conn.clone(), channel, what))).await?;
    }
    Ok(())
}

async fn sharded(mut conn: ClusterConnection, channel: &str, what: Sharded) -> RedisResult<()> {
    let call = async {
        match what {
            Sharded::Subscribe => conn.ssubscribe(channel).await,
            Sharded::Unsubscribe => conn.sunsubscribe(channel).await,
        }
    };
    tokio::time::timeout(TIMEOUT, call).await.map_err(|_| super::timed_out("a sharded subscription"))?
}

async fn spublish(mut conn: ClusterConnection, channel: &str, payload: &[u8]) -> RedisResult<()> {
    redis::cmd("SPUBLISH").arg(channel).arg(payload).query_async(&mut conn).await
}
