//! What makes Redis pub/sub's losses harmless: the storage sweep, which finds ticket events this
//! node never received, and the session re-check, which finds revocations it never received.

use crate::gateway::cluster::Cluster;
use crate::model::account::RevokeReason;
use crate::model::event::Event;
use crate::model::ids::{Principal, SessionId};
use crate::model::ticket::Ticket;
use crate::model::time::{now_ms, Millis};
use crate::ports::broker::{Audience, Broker};
use crate::Result;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Each sweep looks this far behind the previous one's end as well: node clocks may disagree by up
/// to this much (the `updated_at` of a ticket is its writer's clock).
const OVERLAP: Millis = 5_000;
/// Tickets read per query, and per sweep at most.
const PAGE: u32 = 2_000;
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
    // Where a sweep that reached its limit stopped: the next one goes on from there.
    let mut stopped_at = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let until = now_ms() - settle;
        let since = stopped_at.unwrap_or(done_until - OVERLAP);
        let store = cluster.store.as_ref();
        match sweep_once(|from| store.changed_since(from, PAGE), |t| recover(&cluster, t), since, until).await {
            Ok(None) => (done_until, stopped_at) = (until, None),
            Ok(Some(at)) => stopped_at = Some(at),
            // Storage is down: the next round covers this one's window too.
            Err(e) => tracing::warn!(error = %e, "cluster sweep failed; retrying"),
        }
        cluster.registry.forget_known(now_ms() - REMEMBER);
    }
}

/// Reads the tickets changed from `since` to `until` a page at a time (`read` gives those changed
/// at or after its argument, oldest first, [`PAGE`] at most) and recovers each. It stops once it
/// has read [`MAX_PER_SWEEP`] tickets, returning where: the next sweep goes on from there (not a
/// window back, which a backlog that large would fill again) rather than leaving the rest unread.
async fn sweep_once<F, Fut>(
    mut read: F,
    mut recover: impl FnMut(&Ticket),
    since: Millis,
    until: Millis,
) -> Result<Option<Millis>>
where
    F: FnMut(Millis) -> Fut,
    Fut: Future<Output = Result<Vec<Ticket>>>,
{
    let mut from = since;
    let mut read_so_far = 0;
    loop {
        let page = read(from).await?;
        read_so_far += page.len();
        for t in page.iter().filter(|t| t.updated_at <= until) {
            recover(t);
        }
        match page.last() {
            Some(last) if page.len() as u32 == PAGE && last.updated_at <= until => {
                // Tickets sharing the boundary time are read again; recovering is idempotent.
                from = if last.updated_at > from { last.updated_at } else { from + 1 };
                if read_so_far >= MAX_PER_SWEEP {
                    tracing::warn!(read = read_so_far, "cluster sweep stopped at its limit; the next one goes on");
                    return Ok(Some(from));
                }
            }
            _ => return Ok(None),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::{TicketId, UserId};
    use crate::model::ticket::TicketStatus;
    use std::collections::HashSet;

    /// Tickets changed one per millisecond from 1 to `n`, oldest first.
    fn changed(n: i64) -> Vec<Ticket> {
        (1..=n)
            .map(|at| Ticket {
                id: TicketId::generate(),
                user_id: UserId::generate(),
                subject: "s".into(),
                status: TicketStatus::Open,
                agent_id: None,
                created_at: at,
                updated_at: at,
                queued_at: Some(at),
                last_seq: 2,
            })
            .collect()
    }

    /// One sweep over `tickets` as storage would page them, from `since` to `until`.
    async fn sweep(tickets: &[Ticket], since: Millis, until: Millis, seen: &mut HashSet<TicketId>) -> Option<Millis> {
        let read = |from: Millis| {
            let page: Vec<Ticket> =
                tickets.iter().filter(|t| t.updated_at >= from).take(PAGE as usize).cloned().collect();
            async move { Ok(page) }
        };
        sweep_once(read, |t| _ = seen.insert(t.id), since, until).await.expect("a sweep")
    }

    #[tokio::test]
    async fn a_sweep_that_reaches_its_limit_leaves_the_rest_to_the_next_not_unread() {
        let backlog = MAX_PER_SWEEP as i64 + 5_000;
        let tickets = changed(backlog);
        let mut seen = HashSet::new();
        let stopped = sweep(&tickets, 0, backlog + 1_000, &mut seen).await.expect("stopped at the limit");
        assert!(seen.len() >= MAX_PER_SWEEP - PAGE as usize && seen.len() <= MAX_PER_SWEEP, "{} read", seen.len());
        assert!(stopped <= backlog, "stopped at {stopped}, past the backlog");
        assert_eq!(sweep(&tickets, stopped, backlog + 1_000, &mut seen).await, None, "the rest fits one sweep");
        assert_eq!(seen.len(), tickets.len(), "every changed ticket recovered once the two sweeps are done");
    }

    #[tokio::test]
    async fn a_sweep_reads_up_to_its_window_and_no_further() {
        let tickets = changed(1_200);
        let mut seen = HashSet::new();
        assert_eq!(sweep(&tickets, 100, 900, &mut seen).await, None);
        let times: HashSet<Millis> = tickets.iter().filter(|t| seen.contains(&t.id)).map(|t| t.updated_at).collect();
        assert_eq!(times, (100..=900).collect(), "the window's changes, and none after it");
    }
}
