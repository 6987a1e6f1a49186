//! Checks of the [`anapars_hub::ports::store::notes::Notes`] port: notes are a stream of their own
//! per ticket, idempotent per (ticket, agent, client_msg_id), paged newest first, gone with the
//! account, and never in the ticket's events.

use super::{agent, race, ticket, user};
use anapars_hub::error::Result;
use anapars_hub::model::ids::{NoteId, TicketId};
use anapars_hub::model::note::{Note, NoteAdded};
use anapars_hub::model::ticket::Page;
use anapars_hub::model::time::now_ms;
use anapars_hub::ports::store::Store;
use std::sync::Arc;

fn note(ticket: TicketId, agent: anapars_hub::model::ids::AgentId, cmid: &str, body: &str) -> Note {
    Note {
        id: NoteId::generate(),
        ticket_id: ticket,
        agent_id: agent,
        body: body.to_owned(),
        mentions: Vec::new(),
        client_msg_id: cmid.to_owned(),
        created_at: now_ms(),
    }
}

/// A note is stored once per (ticket, agent, client_msg_id) (also when resent concurrently), is
/// listed oldest first in pages from the newest, stays out of the ticket's events, needs its ticket,
/// and goes with the customer's account.
pub async fn notes_are_a_stream_of_their_own_per_ticket(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let (sara, reza) = (agent(&*store).await?, agent(&*store).await?);
    let t = ticket(&*store, u.id, now_ms()).await?;
    let first = Note {
        mentions: vec![reza.id],
        ..note(t.id, sara.id, "n-1", "مشتری دو بار پرداخت کرده؛ بازپرداخت با @Reza")
    };
    assert_eq!(store.add_note(&first).await?, NoteAdded::Stored(first.clone()));
    let resent = note(t.id, sara.id, "n-1", "another text");
    assert_eq!(store.add_note(&resent).await?, NoteAdded::Duplicate(first.clone()), "a resend answers the first");
    let by_reza = note(t.id, reza.id, "n-1", "the same client id from another agent is another note");
    assert_eq!(store.add_note(&by_reza).await?, NoteAdded::Stored(by_reza.clone()));
    let racers = race(|i| {
        let store = Arc::clone(&store);
        let n = note(t.id, sara.id, "n-2", &format!("racer {i}"));
        async move { store.add_note(&n).await }
    })
    .await?;
    let stored = racers.iter().filter(|r| matches!(r, NoteAdded::Stored(_))).count();
    assert_eq!(stored, 1, "concurrent resends store one note: {racers:?}");
    assert_eq!(
        store.add_note(&note(TicketId::generate(), sara.id, "n-3", "x")).await?,
        NoteAdded::NoTicket,
        "a note needs its ticket"
    );

    let all = store.notes(t.id, None, 10).await?;
    assert_eq!(all.len(), 3);
    assert_eq!((&all[0], &all[1]), (&first, &by_reza), "oldest first");
    let newest = store.notes(t.id, None, 2).await?;
    assert_eq!(newest, all[1..].to_vec(), "a page is the newest, oldest first");
    assert_eq!(store.notes(t.id, Some(newest[0].id), 10).await?, all[..1].to_vec(), "then those before");
    let events = store.events(t.id, Page::After(0), 100).await?;
    assert!(events.iter().all(|e| e.body.as_deref() != Some(first.body.as_str())), "a note among the events");
    assert_eq!(events.len() as u64, store.ticket(t.id).await?.expect("ticket").last_seq, "no gap, no note");

    store.delete_account(u.id, &[]).await?.expect("deleted");
    assert!(store.notes(t.id, None, 10).await?.is_empty(), "notes outlived the account");
    Ok(())
}
