//! Checks of the [`anapars_hub::ports::store::reports::Reports`] port, and of the report's
//! arithmetic over what it reads: a ticket transferred before anyone answered and reopened after
//! its resolution, another still held, one finished before the range; figures computed by hand.
//!
//! The check writes its tickets in 1972 (`REPORT_EPOCH`), a window no other check uses.

use super::{agent, apply, claim, message, resolve, ticket, user, MINUTE};
use anapars_hub::domain::tickets::reports::{measure, Measured};
use anapars_hub::error::Result;
use anapars_hub::model::ids::{LabelId, TicketId};
use anapars_hub::model::label::Label;
use anapars_hub::model::rating::{Rated, Rating};
use anapars_hub::model::report::Durations;
use anapars_hub::model::ticket::{Author, EventKind, TicketEvent, Transition};
use anapars_hub::model::time::Millis;
use anapars_hub::ports::store::reports::ReportScope;
use anapars_hub::ports::store::Store;
use std::collections::HashMap;
use std::sync::Arc;

/// 1972-01-01.
const REPORT_EPOCH: Millis = 63_072_000_000;

/// The story's events of one ticket, as (seq, kind, author is an agent) for the assertions.
fn shape(events: &[TicketEvent], ticket: TicketId) -> Vec<(u64, EventKind)> {
    events.iter().filter(|e| e.ticket_id == ticket).map(|e| (e.seq, e.kind)).collect()
}

/// Reports read every state change and one first agent message per cycle, without text, and add
/// them up as computed by hand.
pub async fn reports_read_state_changes_and_first_responses_and_add_them_up(store: Arc<dyn Store>) -> Result<()> {
    let e = REPORT_EPOCH;
    let at = |minutes: i64| e + minutes * MINUTE;
    let (u, sara, reza) = (user(&*store).await?, agent(&*store).await?, agent(&*store).await?);
    let say = |t: TicketId, who: Author, minute: i64| {
        let store = Arc::clone(&store);
        async move { store.append_messages(&[message(t, who, at(minute))]).await }
    };
    let user_says = Author::User(u.id);

    // Finished before the range: never a candidate.
    let old = ticket(&*store, u.id, at(-100)).await?;
    apply(&*store, &claim(old.id, sara.id, at(-99))).await?;
    apply(&*store, &resolve(old.id, sara.id, at(-98))).await?;

    // A: opened at 0, Sara claims at 5 and gives it to Reza at 8, who answers at 12 and 13 and
    // resolves at 30 (rated 2); reopened at 100, auto-assigned to Sara at 101, answered at 104,
    // resolved at 110 (rated 5). Labelled.
    let a = ticket(&*store, u.id, at(0)).await?;
    say(a.id, user_says, 1).await?;
    apply(&*store, &claim(a.id, sara.id, at(5))).await?;
    apply(&*store, &Transition::transfer(a.id, sara.id, reza.id, at(8))).await?;
    say(a.id, Author::Agent(reza.id), 12).await?;
    say(a.id, Author::Agent(reza.id), 13).await?;
    say(a.id, user_says, 14).await?;
    apply(&*store, &resolve(a.id, reza.id, at(30))).await?;
    let rating = |seq, score| Rating {
        ticket_id: a.id,
        resolution_seq: seq,
        agent_id: None,
        score,
        comment: None,
        rated_at: at(31),
    };
    assert!(matches!(store.rate(&rating(9, 2)).await?, Rated::Stored(_)));
    say(a.id, user_says, 100).await?;
    apply(&*store, &Transition::claim(a.id, sara.id, Author::System, at(101))).await?;
    say(a.id, Author::Agent(sara.id), 104).await?;
    apply(&*store, &resolve(a.id, sara.id, at(110))).await?;
    assert!(matches!(store.rate(&rating(14, 5)).await?, Rated::Stored(_)));
    let label = Label {
        id: LabelId::generate(),
        name: format!("r {}", uuid::Uuid::new_v4()),
        color: "#123456".into(),
        created_at: e,
    };
    store.create_label(&label, &label.name).await?;
    store.label_ticket(a.id, label.id, true, sara.id, at(111)).await?;

    // B: opened at 50, claimed by Reza at 70, not answered, still his.
    let b = ticket(&*store, u.id, at(50)).await?;
    apply(&*store, &claim(b.id, reza.id, at(70))).await?;

    let events = store.report_events(ReportScope::Since(at(10))).await?;
    use EventKind::*;
    assert_eq!(
        shape(&events, a.id),
        [
            (1, Opened),
            (4, Claimed),
            (5, Transferred),
            (6, Message),
            (9, Resolved),
            (10, Reopened),
            (12, Claimed),
            (13, Message),
            (14, Resolved)
        ],
        "state changes and each cycle's first agent message, once"
    );
    assert_eq!(shape(&events, b.id), [(1, Opened), (3, Claimed)]);
    assert_eq!(shape(&events, old.id), [], "nothing of it since the range's start");
    assert!(events.iter().all(|e| e.body.is_none() && e.client_msg_id.is_none()), "no text");
    let one = store.report_events(ReportScope::Ticket(a.id)).await?;
    assert_eq!(shape(&one, a.id), shape(&events, a.id));
    assert_eq!(one.len(), 9);

    let ours: Vec<TicketEvent> = events.into_iter().filter(|e| e.ticket_id == a.id || e.ticket_id == b.id).collect();
    let labels = HashMap::from([(a.id, vec![label.id])]);
    let scores = HashMap::from([((a.id, 9), 2), ((a.id, 14), 5)]);
    let Measured { overall, agents, labels: by_label } = measure(&ours, at(10), at(200), &labels, &scores);
    let m = MINUTE;
    let d = |count, p50: i64, p90: i64| Durations { count, p50_ms: Some(p50 * m), p90_ms: Some(p90 * m) };
    // In range: B opened (50) and claimed after 20 min (70); A answered by Reza 12 min after its
    // opening, resolved after 30, reopened, claimed after 1, answered after 4, resolved after 10.
    assert_eq!((overall.opened, overall.reopened, overall.claimed, overall.resolved), (1, 1, 2, 2));
    assert_eq!(overall.first_response, d(2, 4, 12));
    assert_eq!(overall.queue_wait, d(2, 1, 20));
    assert_eq!(overall.resolution, d(2, 10, 30));
    assert_eq!(
        (overall.ratings.requested, overall.ratings.rated, overall.ratings.distribution),
        (2, 2, [0, 1, 0, 0, 1])
    );
    assert_eq!((overall.ratings.average, overall.ratings.response_rate), (Some(3.5), Some(1.0)));

    let r = agents[&reza.id];
    assert_eq!((r.reopened, r.claimed, r.resolved), (1, 1, 1), "the reopen is credited to who had resolved");
    assert_eq!((r.first_response, r.queue_wait, r.resolution), (d(1, 12, 12), d(1, 20, 20), d(1, 30, 30)));
    assert_eq!(r.ratings.average, Some(2.0));
    let s = agents[&sara.id];
    assert_eq!((s.reopened, s.claimed, s.resolved), (0, 1, 1), "Sara's claim at 5 is before the range");
    assert_eq!((s.first_response, s.queue_wait, s.resolution), (d(1, 4, 4), d(1, 1, 1), d(1, 10, 10)));
    assert_eq!(s.ratings.average, Some(5.0));
    let l = by_label[&label.id];
    assert_eq!((l.opened, l.reopened, l.claimed, l.resolved, l.first_response.count), (0, 1, 1, 2, 2));
    Ok(())
}
