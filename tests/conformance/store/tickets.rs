//! Checks of [`Tickets`](anapars_hub::ports::store::tickets::Tickets): opening, the gapless event streams,
//! idempotent messages, guarded transitions, pages, marks and the ticket lists.

use super::{
    agent, apply, claim, message, new_ticket, race, resolve, ticket, user, FAR_FUTURE, MINUTE, QUEUE_EPOCH, RACERS,
};
use anapars_hub::error::Result;
use anapars_hub::model::account::User;
use anapars_hub::model::agent::Agent;
use anapars_hub::model::ids::{AgentId, TicketId};
use anapars_hub::model::ticket::{
    Appended, Author, EventKind, NewMessage, NewTicket, Page, ReadMarks, Ticket, TicketEvent, TicketStatus, Transition,
};
use anapars_hub::model::time::now_ms;
use anapars_hub::ports::store::Store;
use std::collections::HashSet;
use std::sync::Arc;

/// Calls made by each task of the concurrent-append checks.
const CALLS_PER_RACER: usize = 6;

/// The events of one stored message, or a panic naming what came back instead.
fn stored(outcome: &Appended) -> (&[TicketEvent], &Ticket) {
    match outcome {
        Appended::Stored { events, ticket } => (events, ticket),
        other => panic!("expected the message to be stored, got {other:?}"),
    }
}

/// The message event of a stored message (its last event).
fn stored_message(outcome: &Appended) -> &TicketEvent {
    match stored(outcome).0.last() {
        Some(event) => event,
        None => panic!("a stored message came back without events"),
    }
}

/// Every event of the ticket, oldest first.
async fn all_events(store: &dyn Store, ticket: TicketId) -> Result<Vec<TicketEvent>> {
    store.events(ticket, Page::After(0), 100_000).await
}

/// A user's new ticket that an agent claimed (seq 3): the user, the agent and the ticket.
async fn held_ticket(store: &dyn Store) -> Result<(User, Agent, TicketId)> {
    let owner = user(store).await?;
    let helper = agent(store).await?;
    let id = ticket(store, owner.id, now_ms()).await?.id;
    apply(store, &claim(id, helper.id, now_ms())).await?;
    Ok((owner, helper, id))
}

fn seqs(events: &[TicketEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Opening stores the ticket (open, queued at its creation, nobody holding it, last seq 2) with
/// `opened` (the subject) and the first message. Repeating the request, with another ticket id or
/// the same one, returns them unchanged and creates nothing; another user's same client id opens
/// another ticket.
pub async fn open_ticket_stores_the_ticket_and_its_first_two_events(store: Arc<dyn Store>) -> Result<()> {
    let (owner, stranger) = (user(&*store).await?, user(&*store).await?);
    let now = now_ms();
    let new = NewTicket {
        subject: "سفارش ۴۲ نرسیده 📦".into(),
        body: "Bonjour, où est mon colis ?".into(),
        attachments: Vec::new(),
        ..new_ticket(owner.id, now)
    };
    let opened = store.open_ticket(&new).await?;
    let expected = Ticket {
        id: new.id,
        user_id: owner.id,
        subject: new.subject.clone(),
        status: TicketStatus::Open,
        agent_id: None,
        created_at: now,
        updated_at: now,
        queued_at: Some(now),
        last_seq: 2,
    };
    let first = TicketEvent {
        ticket_id: new.id,
        seq: 1,
        kind: EventKind::Opened,
        author: Author::User(owner.id),
        body: Some(new.subject.clone()),
        client_msg_id: None,
        agent_id: None,
        attachments: Vec::new(),
        created_at: now,
    };
    let second = TicketEvent {
        seq: 2,
        kind: EventKind::Message,
        body: Some(new.body.clone()),
        client_msg_id: Some(new.client_msg_id.clone()),
        ..first.clone()
    };
    let events = vec![first, second];
    assert!(opened.created, "the first opening must report that it created the ticket");
    assert_eq!((&opened.ticket, &opened.events), (&expected, &events));
    assert_eq!(store.ticket(new.id).await?, Some(expected.clone()));
    assert_eq!(all_events(&*store, new.id).await?, events);

    let repeat = NewTicket {
        id: TicketId::generate(),
        subject: "another subject".into(),
        body: "another body".into(),
        attachments: Vec::new(),
        created_at: now + MINUTE,
        ..new.clone()
    };
    for again in [&repeat, &new] {
        let reopened = store.open_ticket(again).await?;
        assert!(!reopened.created, "a repeated opening must not report creating a ticket");
        assert_eq!((&reopened.ticket, &reopened.events), (&expected, &events));
    }
    assert_eq!(store.ticket(repeat.id).await?, None, "a repeated opening stored a second ticket");
    assert_eq!(all_events(&*store, new.id).await?, events);
    assert_eq!(store.user_tickets(owner.id, 10).await?, vec![expected]);

    let theirs = NewTicket { id: TicketId::generate(), user_id: stranger.id, ..new.clone() };
    assert!(store.open_ticket(&theirs).await?.created, "another user's ticket was taken for a repeat");
    assert_eq!(store.ticket(TicketId::generate()).await?, None);
    Ok(())
}

/// Concurrent openings with one client_msg_id (each with its own ticket id, as retries across
/// connections would have) create exactly one ticket, and every caller gets it.
pub async fn open_ticket_races_create_one_ticket(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let new = new_ticket(owner.id, now_ms());
    let opened = race(|_| {
        let (store, new) = (Arc::clone(&store), NewTicket { id: TicketId::generate(), ..new.clone() });
        async move { store.open_ticket(&new).await }
    })
    .await?;
    assert_eq!(opened.iter().filter(|o| o.created).count(), 1, "exactly one racer may create the ticket");
    let winner = &opened[0].ticket;
    assert!(opened.iter().all(|o| o.ticket == *winner && o.events.len() == 2), "every racer must get the ticket");
    assert_eq!(store.user_tickets(owner.id, 100).await?, vec![winner.clone()]);
    assert_eq!(seqs(&all_events(&*store, winner.id).await?), [1, 2]);
    Ok(())
}

/// Many tasks appending to one ticket, each call its own transaction, end with seqs exactly
/// 1..=N: no gap, no seq twice, every message stored once under the seq its sender was told, and
/// each sender's messages in the order it sent them.
pub async fn append_messages_numbers_concurrent_appends_without_gaps(store: Arc<dyn Store>) -> Result<()> {
    // The agent holds it (agents write only to tickets they hold): the claim is seq 3.
    let (owner, helper, id) = held_ticket(&*store).await?;
    let told = race(|i| {
        let store = Arc::clone(&store);
        let author = if i % 2 == 0 { Author::User(owner.id) } else { Author::Agent(helper.id) };
        async move {
            let mut told = Vec::new();
            for call in 0..CALLS_PER_RACER {
                // Batches of one and of two messages.
                let batch: Vec<NewMessage> = (0..1 + call % 2).map(|_| message(id, author, now_ms())).collect();
                let outcomes = store.append_messages(&batch).await?;
                assert_eq!(outcomes.len(), batch.len());
                for (sent, outcome) in batch.iter().zip(&outcomes) {
                    told.push((sent.client_msg_id.clone(), stored_message(outcome).seq));
                }
            }
            Ok(told)
        }
    })
    .await?;
    let sent: usize = told.iter().map(Vec::len).sum();
    let events = all_events(&*store, id).await?;
    let expected: Vec<u64> = (1..=3 + sent as u64).collect();
    assert_eq!(seqs(&events), expected, "the stream must be numbered 1..=N without gaps");
    for (client_msg_id, seq) in told.iter().flatten() {
        let matching: Vec<&TicketEvent> =
            events.iter().filter(|e| e.client_msg_id.as_deref() == Some(client_msg_id)).collect();
        assert_eq!(matching.len(), 1, "message {client_msg_id} must be stored exactly once");
        assert_eq!(matching[0].seq, *seq, "message {client_msg_id} is not where its sender was told");
    }
    for mine in &told {
        assert!(mine.windows(2).all(|w| w[0].1 < w[1].1), "one sender's messages came out of order: {mine:?}");
    }
    assert_eq!(store.ticket(id).await?.map(|t| t.last_seq), Some(3 + sent as u64));
    Ok(())
}

/// Concurrent batches sharing tickets, listing them in opposite orders, neither deadlock nor leave
/// gaps in any ticket's stream.
pub async fn append_batches_over_shared_tickets_do_not_deadlock(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let now = now_ms();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(ticket(&*store, owner.id, now).await?.id);
    }
    race(|i| {
        let store = Arc::clone(&store);
        let mut order = ids.clone();
        if i % 2 == 1 {
            order.reverse();
        }
        async move {
            for _ in 0..CALLS_PER_RACER {
                let batch: Vec<NewMessage> = order.iter().map(|t| message(*t, Author::User(owner.id), now)).collect();
                for outcome in store.append_messages(&batch).await? {
                    stored(&outcome);
                }
            }
            Ok(())
        }
    })
    .await?;
    let expected: Vec<u64> = (1..=2 + (RACERS * CALLS_PER_RACER) as u64).collect();
    for id in ids {
        assert_eq!(seqs(&all_events(&*store, id).await?), expected, "ticket {id} has a gap or a repeat");
    }
    Ok(())
}

/// A batch over several tickets answers in the batch's order; each ticket's messages take its next
/// seqs in that order, and each answer carries the ticket as it was right after that message. A
/// missing ticket gets `NoTicket` and stores nothing. An empty batch does nothing.
pub async fn append_messages_answers_in_batch_order(store: Arc<dyn Store>) -> Result<()> {
    let (alice, bob) = (user(&*store).await?, user(&*store).await?);
    let now = now_ms();
    let (a, b) = (ticket(&*store, alice.id, now).await?, ticket(&*store, bob.id, now).await?);
    let missing = TicketId::generate();
    let batch = [
        message(b.id, Author::User(bob.id), now + 1),
        message(a.id, Author::User(alice.id), now + 2),
        message(missing, Author::User(alice.id), now + 3),
        message(a.id, Author::User(alice.id), now + 4),
        message(b.id, Author::User(bob.id), now + 5),
    ];
    let outcomes = store.append_messages(&batch).await?;
    assert_eq!(outcomes.len(), batch.len());
    assert_eq!(outcomes[2], Appended::NoTicket);
    for (i, (ticket, seq)) in [(0, (b.id, 3)), (1, (a.id, 3)), (3, (a.id, 4)), (4, (b.id, 4))] {
        let (events, after) = stored(&outcomes[i]);
        let expected = TicketEvent {
            ticket_id: ticket,
            seq,
            kind: EventKind::Message,
            author: batch[i].author,
            body: Some(batch[i].body.clone()),
            client_msg_id: Some(batch[i].client_msg_id.clone()),
            agent_id: None,
            attachments: Vec::new(),
            created_at: batch[i].created_at,
        };
        assert_eq!(events, [expected]);
        assert_eq!((after.id, after.last_seq, after.updated_at), (ticket, seq, batch[i].created_at));
    }
    assert_eq!(store.ticket(a.id).await?, Some(Ticket { last_seq: 4, updated_at: now + 4, ..a.clone() }));
    assert_eq!(store.ticket(b.id).await?, Some(Ticket { last_seq: 4, updated_at: now + 5, ..b }));
    assert_eq!(all_events(&*store, missing).await?, vec![]);
    assert_eq!(store.append_messages(&[]).await?, vec![]);
    assert_eq!(store.ticket(a.id).await?.map(|t| t.last_seq), Some(4));
    Ok(())
}

/// A client_msg_id repeated within one batch, or resent after the commit, is stored once: the repeat
/// gets the original event (its seq and its body), even after later messages. The opening's message
/// counts as sent. Another author's same client_msg_id is another message.
pub async fn append_messages_store_a_client_msg_id_once(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let helper = agent(&*store).await?;
    let now = now_ms();
    let new = new_ticket(owner.id, now);
    let opened = store.open_ticket(&new).await?;
    let id = new.id;
    let first = message(id, Author::User(owner.id), now + 1);
    let resent = NewMessage {
        body: "edited before the resend".into(),
        attachments: Vec::new(),
        created_at: now + 2,
        ..first.clone()
    };

    let outcomes = store.append_messages(&[first.clone(), resent.clone()]).await?;
    let original = stored_message(&outcomes[0]).clone();
    assert_eq!((original.seq, original.body.as_deref()), (3, Some(first.body.as_str())));
    assert_eq!(outcomes[1], Appended::Duplicate(original.clone()), "a repeat within the batch was not a duplicate");
    assert_eq!(seqs(&all_events(&*store, id).await?), [1, 2, 3]);

    let later = store.append_messages(&[message(id, Author::User(owner.id), now + 3)]).await?;
    assert_eq!(stored_message(&later[0]).seq, 4);
    assert_eq!(store.append_messages(&[resent]).await?, vec![Appended::Duplicate(original)]);
    let open_resend = NewMessage {
        ticket_id: id,
        author: Author::User(owner.id),
        client_msg_id: new.client_msg_id.clone(),
        body: new.body.clone(),
        attachments: Vec::new(),
        created_at: now + 4,
    };
    assert_eq!(store.append_messages(&[open_resend]).await?, vec![Appended::Duplicate(opened.events[1].clone())]);

    apply(&*store, &claim(id, helper.id, now + 4)).await?;
    let agents_own = NewMessage { author: Author::Agent(helper.id), ..first };
    let outcomes = store.append_messages(&[agents_own]).await?;
    assert_eq!(stored_message(&outcomes[0]).seq, 6, "another author's client_msg_id is another message");
    assert_eq!(seqs(&all_events(&*store, id).await?), [1, 2, 3, 4, 5, 6]);
    assert_eq!(store.ticket(id).await?.map(|t| t.last_seq), Some(6));
    Ok(())
}

/// One batch over several tickets mixing new messages with resends (of a stored message, of one
/// earlier in the batch, of the opening message), refusals (a stranger, an agent not holding the
/// ticket, an upload that does not exist, a missing ticket), the hub's own message and a message
/// reopening a resolved ticket: each new message is stored once with the next seq of its ticket,
/// each resend gets the original event, each refusal its own answer, and nothing else is written.
/// The search index holds every stored text. Sending the same batch again stores nothing.
pub async fn a_mixed_batch_stores_each_new_message_once_and_refuses_only_the_refused(
    store: Arc<dyn Store>,
) -> Result<()> {
    let (alice, bob, stranger) = (user(&*store).await?, user(&*store).await?, user(&*store).await?);
    let (holder, other) = (agent(&*store).await?, agent(&*store).await?);
    let now = now_ms();
    let new = new_ticket(alice.id, now);
    let opened = store.open_ticket(&new).await?;
    let a = opened.ticket.id;
    let b = ticket(&*store, bob.id, now).await?.id;
    let c = ticket(&*store, bob.id, now).await?.id;
    apply(&*store, &claim(b, holder.id, now + 1)).await?;
    apply(&*store, &claim(c, holder.id, now + 1)).await?;
    apply(&*store, &resolve(c, holder.id, now + 2)).await?;
    let earlier = message(a, Author::User(alice.id), now + 3);
    let earlier_event = stored_message(&store.append_messages(std::slice::from_ref(&earlier)).await?[0]).clone();
    // A word of this run only, so that other checks' messages never match the search below.
    let tag = format!("z{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let tagged = |m: NewMessage| NewMessage { body: format!("{} {tag}", m.body), ..m };

    // Text that JSON escapes: quotes, a backslash, control characters, and beyond the BMP.
    let first = tagged(NewMessage {
        body: "\"quoted\" \\ tab\t line\n bell\u{7} \u{1F600} سلام".into(),
        ..message(a, Author::User(alice.id), now + 4)
    });
    let opening_resend =
        NewMessage { client_msg_id: new.client_msg_id.clone(), ..message(a, Author::User(alice.id), now + 4) };
    let batch = [
        NewMessage { body: "edited".into(), ..earlier.clone() },
        first.clone(),
        message(b, Author::Agent(other.id), now + 5),
        tagged(message(b, Author::Agent(holder.id), now + 5)),
        message(a, Author::User(stranger.id), now + 6),
        NewMessage { body: "again".into(), created_at: now + 7, ..first.clone() },
        NewMessage {
            attachments: vec![anapars_hub::model::ids::AttachmentId::generate()],
            ..message(b, Author::Agent(holder.id), now + 7)
        },
        message(TicketId::generate(), Author::User(alice.id), now + 7),
        tagged(message(c, Author::User(bob.id), now + 8)),
        tagged(message(a, Author::System, now + 8)),
        opening_resend,
        tagged(message(b, Author::Agent(holder.id), now + 9)),
    ];
    let outcomes = store.append_messages(&batch).await?;
    assert_eq!(outcomes.len(), batch.len());
    assert_eq!(outcomes[0], Appended::Duplicate(earlier_event.clone()), "a resend of a stored message");
    let first_event = stored_message(&outcomes[1]).clone();
    assert_eq!((first_event.seq, first_event.body.as_deref()), (4, Some(first.body.as_str())));
    assert_eq!(outcomes[2], Appended::NotAllowed, "an agent not holding the ticket");
    assert_eq!(stored_message(&outcomes[3]).seq, 4);
    assert_eq!(outcomes[4], Appended::NotAllowed, "another user's ticket");
    assert_eq!(outcomes[5], Appended::Duplicate(first_event), "a resend within the batch");
    assert_eq!(
        outcomes[6],
        Appended::AttachmentRefused(anapars_hub::model::attachment::AttachmentRefusal::Unknown),
        "an upload that does not exist"
    );
    assert_eq!(outcomes[7], Appended::NoTicket);
    let (reopening, reopened) = stored(&outcomes[8]);
    assert_eq!(
        reopening.iter().map(|e| (e.seq, e.kind)).collect::<Vec<_>>(),
        [(5, EventKind::Reopened), (6, EventKind::Message)]
    );
    assert_eq!((reopened.status, reopened.agent_id, reopened.queued_at), (TicketStatus::Open, None, Some(now + 8)));
    let system = stored_message(&outcomes[9]).clone();
    assert_eq!((system.seq, system.author), (5, Author::System));
    assert_eq!(outcomes[10], Appended::Duplicate(opened.events[1].clone()), "a resend of the opening message");
    let (last, b_after) = stored(&outcomes[11]);
    assert_eq!(last.iter().map(|e| e.seq).collect::<Vec<_>>(), [5]);

    let a_events = all_events(&*store, a).await?;
    assert_eq!(seqs(&a_events), [1, 2, 3, 4, 5]);
    assert_eq!(a_events[3].body.as_deref(), Some(first.body.as_str()), "the text is stored as sent");
    assert_eq!(seqs(&all_events(&*store, b).await?), [1, 2, 3, 4, 5]);
    assert_eq!(seqs(&all_events(&*store, c).await?), [1, 2, 3, 4, 5, 6]);
    // Each stored ticket is as the last answer about it says.
    assert_eq!(store.ticket(b).await?.as_ref(), Some(b_after));
    assert_eq!(store.ticket(c).await?.as_ref(), Some(reopened));
    assert_eq!(store.ticket(a).await?.map(|t| (t.last_seq, t.updated_at)), Some((5, now + 8)));
    let hits = store
        .search(&anapars_hub::model::search::SearchQuery {
            words: anapars_hub::domain::tickets::search::query_words(&tag),
            limit: 50,
            ..Default::default()
        })
        .await?;
    let mut found: Vec<(TicketId, u64)> = hits.iter().map(|h| (h.ticket.id, h.seq)).collect();
    found.sort();
    let mut expected = vec![(a, 4), (a, 5), (b, 4), (b, 5), (c, 6)];
    expected.sort();
    assert_eq!(found, expected, "the search index holds each stored text once");

    let again = store.append_messages(&batch).await?;
    for (i, (before, after)) in outcomes.iter().zip(&again).enumerate() {
        match before {
            Appended::Stored { events, .. } => {
                let original = events.last().cloned();
                assert_eq!(Some(after), original.map(Appended::Duplicate).as_ref(), "message {i} sent again");
            }
            refused => assert_eq!(after, refused, "message {i} sent again"),
        }
    }
    assert_eq!(store.ticket(a).await?.map(|t| t.last_seq), Some(5), "sending again stored nothing");
    assert_eq!(seqs(&all_events(&*store, c).await?), [1, 2, 3, 4, 5, 6]);
    Ok(())
}

/// Agents write only to the tickets they hold, users only to their own: the others are refused
/// against the locked row and nothing is stored.
pub async fn messages_from_who_may_not_write_are_refused(store: Arc<dyn Store>) -> Result<()> {
    let (owner, stranger) = (user(&*store).await?, user(&*store).await?);
    let (holder, other) = (agent(&*store).await?, agent(&*store).await?);
    let now = now_ms();
    let open = ticket(&*store, owner.id, now).await?.id;
    let held = ticket(&*store, owner.id, now).await?.id;
    apply(&*store, &claim(held, holder.id, now + 1)).await?;
    let batch = [
        message(open, Author::Agent(holder.id), now + 2),
        message(held, Author::Agent(other.id), now + 3),
        message(held, Author::User(stranger.id), now + 4),
        message(held, Author::Agent(holder.id), now + 5),
    ];
    let outcomes = store.append_messages(&batch).await?;
    assert_eq!(&outcomes[..3], &[Appended::NotClaimed, Appended::NotAllowed, Appended::NotAllowed]);
    assert_eq!(stored_message(&outcomes[3]).seq, 4, "the holder's message is stored");
    assert_eq!(seqs(&all_events(&*store, open).await?), [1, 2]);
    assert_eq!(seqs(&all_events(&*store, held).await?), [1, 2, 3, 4]);
    Ok(())
}

/// Resends of one message racing each other in separate calls store it once; every caller gets the
/// same event.
pub async fn append_messages_races_on_one_client_msg_id_store_it_once(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let id = ticket(&*store, owner.id, now_ms()).await?.id;
    let sent = message(id, Author::User(owner.id), now_ms());
    let outcomes = race(|_| {
        let (store, sent) = (Arc::clone(&store), sent.clone());
        async move { store.append_messages(&[sent]).await }
    })
    .await?;
    let outcomes: Vec<Appended> = outcomes.into_iter().flatten().collect();
    let winners: Vec<&Appended> = outcomes.iter().filter(|o| matches!(o, Appended::Stored { .. })).collect();
    assert_eq!(winners.len(), 1, "exactly one resend may store the message");
    let original = stored_message(winners[0]).clone();
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Appended::Stored { .. }) || *outcome == Appended::Duplicate(original.clone()),
            "{outcome:?}"
        );
    }
    assert_eq!(seqs(&all_events(&*store, id).await?), [1, 2, 3]);
    Ok(())
}

/// Messages racing the ticket's transitions (its agent resolving it, and claiming it again once a
/// user's message reopened it) are decided against the ticket as it is when they are stored: the
/// stream stays numbered 1..=N, every message is either stored once or refused, and replaying the
/// stream shows the agent writing only while holding the ticket and `reopened` only after `resolved`.
pub async fn messages_racing_transitions_are_decided_against_the_stored_ticket(store: Arc<dyn Store>) -> Result<()> {
    let (owner, helper, id) = held_ticket(&*store).await?;
    let told = race(|i| {
        let store = Arc::clone(&store);
        async move {
            let mut stored_ids = Vec::new();
            for _ in 0..CALLS_PER_RACER {
                if i == 0 {
                    // The agent's own transitions: resolve while holding it, claim it once reopened.
                    for t in [resolve(id, helper.id, now_ms()), claim(id, helper.id, now_ms())] {
                        store.transition(&t).await?;
                    }
                    continue;
                }
                let author = if i % 2 == 0 { Author::User(owner.id) } else { Author::Agent(helper.id) };
                let batch = [message(id, author, now_ms())];
                match store.append_messages(&batch).await?.remove(0) {
                    Appended::Stored { events, .. } => stored_ids.push(events[events.len() - 1].seq),
                    Appended::Resolved | Appended::NotClaimed if matches!(author, Author::Agent(_)) => {}
                    other => panic!("{author:?} got {other:?}"),
                }
            }
            Ok(stored_ids)
        }
    })
    .await?;
    let events = all_events(&*store, id).await?;
    let last = store.ticket(id).await?.map(|t| t.last_seq).unwrap_or(0);
    assert_eq!(seqs(&events), (1..=last).collect::<Vec<u64>>(), "the stream must be numbered 1..=N without gaps");
    let told: HashSet<u64> = told.into_iter().flatten().collect();
    let messages: HashSet<u64> =
        events.iter().filter(|e| e.kind == EventKind::Message && e.seq > 2).map(|e| e.seq).collect();
    assert_eq!(told, messages, "the stored messages are exactly those whose senders were told so");
    let mut status = TicketStatus::Open;
    for event in &events {
        match event.kind {
            EventKind::Claimed => status = TicketStatus::Assigned,
            EventKind::Resolved => status = TicketStatus::Resolved,
            EventKind::Reopened => {
                assert_eq!(status, TicketStatus::Resolved, "seq {} reopened a ticket that was not resolved", event.seq);
                status = TicketStatus::Open;
            }
            EventKind::Message if matches!(event.author, Author::Agent(_)) => {
                assert_eq!(status, TicketStatus::Assigned, "seq {}: the agent wrote without holding it", event.seq);
            }
            EventKind::Message if event.seq > 2 => {
                assert_ne!(status, TicketStatus::Resolved, "seq {}: a message left the ticket resolved", event.seq);
            }
            _ => {}
        }
    }
    Ok(())
}

/// A message from the ticket's user to their resolved ticket reopens it first: `reopened` by the
/// user, then the message; the ticket is back in the queue, held by nobody.
pub async fn a_user_message_reopens_a_resolved_ticket(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let helper = agent(&*store).await?;
    let now = now_ms();
    let id = ticket(&*store, owner.id, now).await?.id;
    apply(&*store, &claim(id, helper.id, now + 1)).await?;
    let resolved = apply(&*store, &resolve(id, helper.id, now + 2)).await?;
    assert_eq!((resolved.status, resolved.agent_id, resolved.last_seq), (TicketStatus::Resolved, Some(helper.id), 4));

    let sent = message(id, Author::User(owner.id), now + 3);
    let outcomes = store.append_messages(std::slice::from_ref(&sent)).await?;
    let (events, after) = stored(&outcomes[0]);
    let reopened = TicketEvent {
        ticket_id: id,
        seq: 5,
        kind: EventKind::Reopened,
        author: Author::User(owner.id),
        body: None,
        client_msg_id: None,
        agent_id: None,
        attachments: Vec::new(),
        created_at: now + 3,
    };
    let text = TicketEvent {
        seq: 6,
        kind: EventKind::Message,
        body: Some(sent.body.clone()),
        client_msg_id: Some(sent.client_msg_id.clone()),
        ..reopened.clone()
    };
    assert_eq!(events, [reopened, text]);
    let expected = Ticket {
        status: TicketStatus::Open,
        agent_id: None,
        queued_at: Some(now + 3),
        updated_at: now + 3,
        last_seq: 6,
        ..resolved
    };
    assert_eq!(after, &expected);
    assert_eq!(store.ticket(id).await?, Some(expected));
    assert!(store.tickets_with_status(TicketStatus::Open, 100_000).await?.iter().any(|t| t.id == id));
    assert!(store.agent_tickets(helper.id).await?.is_empty());
    // Open again, so a second message just appends.
    let next = store.append_messages(&[message(id, Author::User(owner.id), now + 4)]).await?;
    assert_eq!(stored(&next[0]).0.len(), 1);
    Ok(())
}

/// Nobody but its user writes to a resolved ticket: an agent (even the one who resolved it) and the
/// hub are refused as writing to a resolved ticket, another user as not allowed at all, and nothing
/// is stored.
pub async fn messages_to_a_resolved_ticket_from_anyone_but_its_user_are_refused(store: Arc<dyn Store>) -> Result<()> {
    let (owner, stranger) = (user(&*store).await?, user(&*store).await?);
    let helper = agent(&*store).await?;
    let now = now_ms();
    let id = ticket(&*store, owner.id, now).await?.id;
    apply(&*store, &claim(id, helper.id, now + 1)).await?;
    let resolved = apply(&*store, &resolve(id, helper.id, now + 2)).await?;
    let before = all_events(&*store, id).await?;
    let batch = [
        message(id, Author::Agent(helper.id), now + 3),
        message(id, Author::User(stranger.id), now + 4),
        message(id, Author::System, now + 5),
    ];
    let outcomes = store.append_messages(&batch).await?;
    assert_eq!(outcomes, vec![Appended::Resolved, Appended::NotAllowed, Appended::Resolved]);
    assert_eq!(store.ticket(id).await?, Some(resolved), "a refused message changed the ticket");
    assert_eq!(all_events(&*store, id).await?, before, "a refused message was stored");
    Ok(())
}

/// A transition applies only when the ticket's status and holder match its guard, and appends its
/// event with the next seq: a claim needs an open ticket nobody holds, a transfer or resolution the
/// current holder. Resolving keeps the agent; moving back to open re-queues. A missing ticket
/// matches nothing.
pub async fn transition_applies_only_when_the_guard_matches(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let (first, second) = (agent(&*store).await?, agent(&*store).await?);
    let now = now_ms();
    let opened = ticket(&*store, owner.id, now).await?;
    let id = opened.id;

    let Some((claimed, event)) = store.transition(&claim(id, first.id, now + 1)).await? else {
        panic!("claiming an open ticket nobody holds did not apply");
    };
    let expected = Ticket {
        status: TicketStatus::Assigned,
        agent_id: Some(first.id),
        queued_at: None,
        updated_at: now + 1,
        last_seq: 3,
        ..opened.clone()
    };
    assert_eq!(claimed, expected);
    let claimed_event = TicketEvent {
        ticket_id: id,
        seq: 3,
        kind: EventKind::Claimed,
        author: Author::Agent(first.id),
        body: None,
        client_msg_id: None,
        agent_id: Some(first.id),
        attachments: Vec::new(),
        created_at: now + 1,
    };
    assert_eq!(event, claimed_event);
    assert_eq!(store.ticket(id).await?, Some(expected.clone()));

    assert!(store.transition(&claim(id, second.id, now + 2)).await?.is_none(), "a held ticket was claimed again");
    let transfer = |holder: AgentId, to: AgentId, at| Transition {
        ticket_id: id,
        from: vec![TicketStatus::Assigned],
        holder: Some(Some(holder)),
        to: TicketStatus::Assigned,
        agent_id: Some(to),
        kind: EventKind::Transferred,
        actor: Author::Agent(holder),
        now: at,
    };
    assert!(store.transition(&transfer(second.id, second.id, now + 3)).await?.is_none(), "a non-holder transferred");
    assert!(store.transition(&resolve(id, second.id, now + 3)).await?.is_none(), "a non-holder resolved");
    assert_eq!(store.ticket(id).await?, Some(expected), "a refused transition changed the ticket");

    let Some((moved, event)) = store.transition(&transfer(first.id, second.id, now + 4)).await? else {
        panic!("the holder's transfer did not apply");
    };
    assert_eq!((moved.agent_id, moved.last_seq, event.seq, event.agent_id), (Some(second.id), 4, 4, Some(second.id)));
    assert_eq!((event.kind, event.author), (EventKind::Transferred, Author::Agent(first.id)));

    let Some((done, event)) = store.transition(&resolve(id, second.id, now + 5)).await? else {
        panic!("the holder's resolution did not apply");
    };
    assert_eq!((done.status, done.agent_id, done.queued_at), (TicketStatus::Resolved, Some(second.id), None));
    assert_eq!((event.seq, event.kind, event.agent_id), (5, EventKind::Resolved, None));
    assert!(store.transition(&claim(id, first.id, now + 6)).await?.is_none(), "a resolved ticket was claimed");

    // No holder guard: whoever holds it (here the hub puts it back in the queue).
    let requeue = Transition {
        ticket_id: id,
        from: vec![TicketStatus::Assigned, TicketStatus::Resolved],
        holder: None,
        to: TicketStatus::Open,
        agent_id: None,
        kind: EventKind::Reopened,
        actor: Author::System,
        now: now + 7,
    };
    let Some((queued, event)) = store.transition(&requeue).await? else {
        panic!("an unguarded transition from a listed status did not apply");
    };
    assert_eq!((queued.status, queued.agent_id, queued.queued_at), (TicketStatus::Open, None, Some(now + 7)));
    assert_eq!((event.seq, event.author), (6, Author::System));
    assert!(store.transition(&Transition { from: vec![], ..requeue.clone() }).await?.is_none());
    assert!(store.transition(&Transition { ticket_id: TicketId::generate(), ..requeue }).await?.is_none());
    assert_eq!(seqs(&all_events(&*store, id).await?), [1, 2, 3, 4, 5, 6]);
    Ok(())
}

/// Agents racing to claim one ticket: exactly one wins, the ticket is theirs, and one event records it.
pub async fn concurrent_claims_have_one_winner(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let now = now_ms();
    let id = ticket(&*store, owner.id, now).await?.id;
    let mut agents = Vec::new();
    for _ in 0..RACERS {
        agents.push(agent(&*store).await?.id);
    }
    let claims = race(|i| {
        let (store, agent) = (Arc::clone(&store), agents[i]);
        async move { store.transition(&claim(id, agent, now + 1)).await }
    })
    .await?;
    let winners: Vec<(usize, &Ticket)> =
        claims.iter().enumerate().filter_map(|(i, c)| c.as_ref().map(|(t, _)| (i, t))).collect();
    assert_eq!(winners.len(), 1, "exactly one claim may win");
    let (i, won) = winners[0];
    assert_eq!(won.agent_id, Some(agents[i]));
    assert_eq!(store.ticket(id).await?.as_ref(), Some(won));
    let events = all_events(&*store, id).await?;
    assert_eq!(seqs(&events), [1, 2, 3]);
    assert_eq!(events[2].agent_id, Some(agents[i]));
    Ok(())
}

/// `After(s)` reads forward from seq s, `Before(s)` the newest events below s; both oldest first,
/// at most `limit`, and only the ticket's own events.
pub async fn events_page_forward_and_backward(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let now = now_ms();
    let (id, other) = (ticket(&*store, owner.id, now).await?.id, ticket(&*store, owner.id, now).await?.id);
    let batch: Vec<NewMessage> = (0..8).map(|i| message(id, Author::User(owner.id), now + i)).collect();
    store.append_messages(&batch).await?;
    store.append_messages(&[message(other, Author::User(owner.id), now)]).await?;

    let page = async |page, limit| -> Result<Vec<u64>> { Ok(seqs(&store.events(id, page, limit).await?)) };
    assert_eq!(page(Page::After(0), 3).await?, [1, 2, 3]);
    assert_eq!(page(Page::After(3), 3).await?, [4, 5, 6]);
    assert_eq!(page(Page::After(8), 5).await?, [9, 10]);
    assert_eq!(page(Page::After(10), 5).await?, Vec::<u64>::new());
    assert_eq!(page(Page::After(0), 0).await?, Vec::<u64>::new());
    assert_eq!(page(Page::Before(11), 3).await?, [8, 9, 10]);
    assert_eq!(page(Page::Before(8), 3).await?, [5, 6, 7]);
    assert_eq!(page(Page::Before(3), 5).await?, [1, 2]);
    assert_eq!(page(Page::Before(1), 5).await?, Vec::<u64>::new());
    assert_eq!(page(Page::Before(u64::MAX), 2).await?, [9, 10]);
    assert_eq!(page(Page::After(u64::MAX), 2).await?, Vec::<u64>::new());
    let all = store.events(id, Page::After(0), 100).await?;
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(|e| e.ticket_id == id), "another ticket's event was listed");
    assert_eq!(all[4].body.as_ref(), Some(&batch[2].body));
    assert!(store.events(TicketId::generate(), Page::After(0), 10).await?.is_empty());
    Ok(())
}

/// Marks only go up, per field and per participant, and every participant of the ticket is listed.
pub async fn marks_never_go_down(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let helper = agent(&*store).await?;
    let now = now_ms();
    let (id, other) = (ticket(&*store, owner.id, now).await?.id, ticket(&*store, owner.id, now).await?.id);
    let (me, them) = (Author::User(owner.id), Author::Agent(helper.id));
    let marks = |delivered_seq, read_seq| ReadMarks { delivered_seq, read_seq };
    assert!(store.marks(id).await?.is_empty());
    assert_eq!(store.mark(id, me, 5, 3).await?, marks(5, 3));
    assert_eq!(store.mark(id, me, 4, 4).await?, marks(5, 4), "each field must keep its own maximum");
    assert_eq!(store.mark(id, me, 0, 0).await?, marks(5, 4));
    assert_eq!(store.mark(id, them, 2, 1).await?, marks(2, 1));
    assert_eq!(store.mark(other, me, 1, 1).await?, marks(1, 1));
    let listed = store.marks(id).await?;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&(me, marks(5, 4))) && listed.contains(&(them, marks(2, 1))), "{listed:?}");
    assert_eq!(store.marks(other).await?, vec![(me, marks(1, 1))]);
    Ok(())
}

/// Concurrent marks by one participant end at the highest of each field.
pub async fn concurrent_marks_keep_the_highest(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let id = ticket(&*store, owner.id, now_ms()).await?.id;
    let me = Author::User(owner.id);
    race(|i| {
        let store = Arc::clone(&store);
        async move { store.mark(id, me, i as u64, (RACERS - i) as u64).await }
    })
    .await?;
    let highest = ReadMarks { delivered_seq: RACERS as u64 - 1, read_seq: RACERS as u64 };
    assert_eq!(store.marks(id).await?, vec![(me, highest)]);
    Ok(())
}

/// The queue lists open tickets oldest queued first; assigned and resolved tickets list most recently
/// updated first; a user's tickets too. (Global lists: see the suite's doc for the times used.)
pub async fn ticket_lists_follow_queue_and_update_order(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let helper = agent(&*store).await?;
    let (t3, t1, t2) = (
        ticket(&*store, owner.id, QUEUE_EPOCH + 3).await?,
        ticket(&*store, owner.id, QUEUE_EPOCH + 1).await?,
        ticket(&*store, owner.id, QUEUE_EPOCH + 2).await?,
    );
    let ids = |tickets: Vec<Ticket>| tickets.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(store.tickets_with_status(TicketStatus::Open, 3).await?), [t1.id, t2.id, t3.id]);
    assert_eq!(ids(store.tickets_with_status(TicketStatus::Open, 2).await?), [t1.id, t2.id]);

    apply(&*store, &claim(t2.id, helper.id, FAR_FUTURE + 2)).await?;
    apply(&*store, &claim(t1.id, helper.id, FAR_FUTURE + 1)).await?;
    assert_eq!(ids(store.tickets_with_status(TicketStatus::Open, 1).await?), [t3.id], "claimed tickets left the queue");
    assert_eq!(ids(store.tickets_with_status(TicketStatus::Assigned, 2).await?), [t2.id, t1.id]);

    apply(&*store, &resolve(t1.id, helper.id, FAR_FUTURE + 4)).await?;
    apply(&*store, &resolve(t2.id, helper.id, FAR_FUTURE + 3)).await?;
    assert_eq!(ids(store.tickets_with_status(TicketStatus::Resolved, 2).await?), [t1.id, t2.id]);
    assert!(store.tickets_with_status(TicketStatus::Assigned, 100_000).await?.iter().all(|t| t.id != t1.id));
    assert_eq!(ids(store.user_tickets(owner.id, 10).await?), [t1.id, t2.id, t3.id]);
    assert_eq!(ids(store.user_tickets(owner.id, 1).await?), [t1.id]);
    Ok(())
}

/// An agent's assigned tickets list oldest first; the counts give each agent's assigned tickets and
/// leave out agents who hold none.
pub async fn assigned_tickets_are_listed_and_counted_per_agent(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let (a, b, idle) = (agent(&*store).await?.id, agent(&*store).await?.id, agent(&*store).await?.id);
    let now = now_ms();
    let (t1, t2, t3) = (
        ticket(&*store, owner.id, now).await?.id,
        ticket(&*store, owner.id, now + 1).await?.id,
        ticket(&*store, owner.id, now + 2).await?.id,
    );
    apply(&*store, &claim(t2, a, now + 3)).await?;
    apply(&*store, &claim(t1, a, now + 4)).await?;
    apply(&*store, &claim(t3, b, now + 5)).await?;
    let held = async |agent| -> Result<Vec<TicketId>> {
        Ok(store.agent_tickets(agent).await?.into_iter().map(|t| t.id).collect())
    };
    assert_eq!(held(a).await?, [t1, t2]);
    assert_eq!(held(b).await?, [t3]);
    assert_eq!(held(idle).await?, Vec::<TicketId>::new());
    let count = async |agent| -> Result<Option<u32>> {
        let counts = store.assigned_counts().await?;
        let ours: HashSet<_> = counts.iter().map(|(id, _)| *id).collect();
        assert_eq!(ours.len(), counts.len(), "an agent is counted twice: {counts:?}");
        Ok(counts.into_iter().find(|(id, _)| *id == agent).map(|(_, n)| n))
    };
    assert_eq!((count(a).await?, count(b).await?, count(idle).await?), (Some(2), Some(1), None));

    apply(&*store, &resolve(t1, a, now + 6)).await?;
    assert_eq!(held(a).await?, [t2]);
    assert_eq!(count(a).await?, Some(1));
    Ok(())
}

/// The changed tickets come least recently updated first, from `since` on, with their last seq;
/// a ticket changes with every event. (Works in 2500, where no other check writes.)
pub async fn changed_since_lists_tickets_by_their_last_change(store: Arc<dyn Store>) -> Result<()> {
    const EPOCH: anapars_hub::model::time::Millis = 16_725_225_600_000; // 2500-01-01
    let owner = user(&*store).await?;
    let (early, late) = (ticket(&*store, owner.id, EPOCH + 1).await?, ticket(&*store, owner.id, EPOCH + 2).await?);
    let ids = |tickets: &[Ticket]| tickets.iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(&store.changed_since(EPOCH, 2).await?), [early.id, late.id]);
    assert_eq!(ids(&store.changed_since(EPOCH + 2, 1).await?), [late.id]);

    store.append_messages(&[message(early.id, Author::User(owner.id), EPOCH + 3)]).await?;
    let changed = store.changed_since(EPOCH + 2, 2).await?;
    assert_eq!(ids(&changed), [late.id, early.id], "a new event moves the ticket to the end");
    assert_eq!((changed[1].last_seq, changed[1].updated_at), (3, EPOCH + 3));
    Ok(())
}
