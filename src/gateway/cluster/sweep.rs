//! What makes Redis pub/sub's losses harmless: the storage sweep, which finds ticket events this
//! node never received, and the session re-check, which finds revocations it never received.

use crate::gateway::cluster::Cluster;
use crate::model::account::RevokeReason;
use crate::model::event::Event;
use crate::model::ids::{Principal, SessionId};
use crate::model::ticket::Ticket;
use crate::model::time::{now_ms, Millis};
use crate::ports::broker::{Audience, Broker};
use crate::ports::store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Each sweep looks this far behind the previous one's end as well: node clocks may disagree by up
/// to this much (the `updated_at` of a ticket is its writer's clock).
const OVERLAP: Millis = 5_000;
/// Tickets read per query, and per sweep at most.
const PAGE: u32 = 500;
const MAX_PER_SWEEP: usize = 20_000;
/// How long a delivered seq is remembered after the ticket's last activity.
const REMEMBER: Millis = 10 * 60_000;
/// Sessions checked per query.
const SESSIONS_PER_QUERY: usize = 2_000;
/// A session that merely expired is left to its sockets' own expiry handling (`session.expired`)
/// for this long.
const EXPIRY_SLACK: Millis = 60_000;

/// Every `every`, reads the tickets changed lately and, for each whose last seq is beyond what this
/// node delivered and that concerns a socket here, has the subscribers catch up from storage and
/// tells the owner, agent and queue watchers the ticket's state. Changes younger than half a period
/// are left to the next round, so that a publication still on its way is not mistaken for a lost
/// one. A lost publication is thus delivered within about one and a half periods.
pub(super) async fn sweep(cluster: Arc<Cluster>, every: Duration, shutdown: CancellationToken) {
    let settle = (every / 2).as_millis() as Millis;
    let mut done_until = now_ms() - settle;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let until = now_ms() - settle;
        match sweep_once(&cluster, cluster.store.as_ref(), done_until - OVERLAP, until).await {
            Ok(()) => done_until = until,
            // Storage is down: the next round covers this one's window too.
            Err(e) => tracing::warn!(error = %e, "cluster sweep failed; retrying"),
        }
        cluster.registry.forget_known(now_ms() - REMEMBER);
    }
}

async fn sweep_once(cluster: &Cluster, store: &dyn Store, since: Millis, until: Millis) -> crate::Result<()> {
    let mut from = since;
    let mut read = 0;
    loop {
        let page = store.changed_since(from, PAGE).await?;
        read += page.len();
        for t in page.iter().filter(|t| t.updated_at <= until) {
            recover(cluster, t);
        }
        match page.last() {
            Some(last) if page.len() as u32 == PAGE && last.updated_at <= until && read < MAX_PER_SWEEP => {
                // Tickets sharing the boundary time are read again; recovering is idempotent.
                from = if last.updated_at > from { last.updated_at } else { from + 1 };
            }
            _ => return Ok(()),
        }
    }
}

fn recover(cluster: &Cluster, t: &Ticket) {
    let registry = &cluster.registry;
    if registry.known_seq(t.id).is_some_and(|k| k >= t.last_seq) || !registry.cares_about(t) {
        return;
    }
    metrics::counter!(crate::metrics::CLUSTER_RECOVERED).increment(1);
    tracing::debug!(ticket_id = %t.id, last_seq = t.last_seq, "events found in storage that were never received");
    registry.catch_up(t.id);
    let mut principals = vec![Principal::User(t.user_id)];
    principals.extend(t.agent_id.map(Principal::Agent));
    // Local only: every node recovers for its own sockets. Delivering records the seq as delivered.
    registry.deliver(
        &Audience { tickets: &[t.id], principals: &principals, queue_watchers: true, ..Audience::default() },
        crate::gateway::render::frame(&Event::TicketUpdated(t.clone())),
    );
}

/// Every `every`, and whenever the pub/sub link comes back, asks storage which sessions of this
/// node's sockets are no longer live and closes those sockets (`session.revoked`, reason
/// `signed_out`: the real reason travelled in the lost publication).
pub(super) async fn recheck_sessions(cluster: Arc<Cluster>, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
            _ = cluster.link_back.notified() => {}
        }
        let sessions: HashMap<SessionId, Principal> =
            cluster.registry.sessions().into_iter().map(|(w, s)| (s, w)).collect();
        let ids: Vec<SessionId> = sessions.keys().copied().collect();
        for chunk in ids.chunks(SESSIONS_PER_QUERY) {
            match cluster.store.dead_sessions(chunk, now_ms() - EXPIRY_SLACK).await {
                Ok(dead) => {
                    for s in dead {
                        if let Some(&who) = sessions.get(&s) {
                            tracing::info!(session = %s, "session ended elsewhere: closing its sockets here");
                            cluster.registry.session_revoked(who, s, RevokeReason::SignedOut);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "session re-check failed; retrying next round");
                    break;
                }
            }
        }
    }
}
