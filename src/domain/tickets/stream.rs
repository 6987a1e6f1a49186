//! The events each write appends to a ticket's stream, decided once for both backends: the opening
//! of a ticket, a transition's event, and what a batch of messages does.
//!
//! For a batch, a backend locks the batch's tickets, reads them and the events the batch would
//! duplicate, and hands both to [`plan`]; it then stores the planned events and ticket states in the
//! same transaction. The decisions (duplicates, reopening, refusals, seq numbers) are made here, in
//! memory, so that SQLite and Postgres cannot disagree about them and so that Postgres can store a
//! whole batch in a few statements.

use crate::model::attachment::{Attachment, AttachmentRefusal, AttachmentState, MessageAttachment};
use crate::model::ids::{AttachmentId, Principal, TicketId};
use crate::model::ticket::{
    Appended, Author, EventKind, NewMessage, NewTicket, Ticket, TicketEvent, TicketStatus, Transition,
};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The uploads that a write's messages name, as the backend read them (locked) before planning.
pub(crate) type Uploads = HashMap<AttachmentId, Attachment>;

/// An upload a planned message carries: the backend marks it attached to `ticket` in the write's
/// transaction (guarded by its uploader and state, which the plan checked against the locked rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    /// The upload.
    pub id: AttachmentId,
    /// The ticket whose message carries it.
    pub ticket: TicketId,
    /// Its uploader, the message's author.
    pub uploader: Principal,
}

/// Every upload the messages name, each once, in id order (the order backends lock them in).
pub(crate) fn upload_ids<'a>(names: impl IntoIterator<Item = &'a AttachmentId>) -> Vec<AttachmentId> {
    let mut ids: Vec<AttachmentId> = names.into_iter().copied().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Whose uploads `author` may attach: their own; the hub itself has none.
fn uploader(author: Author) -> Option<Principal> {
    match author {
        Author::User(u) => Some(Principal::User(u)),
        Author::Agent(a) => Some(Principal::Agent(a)),
        Author::System => None,
    }
}

/// The uploads `ids` as a message by `author` carries them, or why they cannot go on it: each must
/// exist, be the author's, be stored (checked) and on no message yet, `taken` ones included (placed
/// earlier in the same batch). Unknown and another person's uploads look the same.
fn carried(
    ids: &[AttachmentId],
    author: Author,
    uploads: &Uploads,
    taken: &HashSet<AttachmentId>,
) -> Result<Vec<MessageAttachment>, AttachmentRefusal> {
    ids.iter()
        .map(|id| {
            let upload =
                uploads.get(id).filter(|u| Some(u.uploader) == uploader(author)).ok_or(AttachmentRefusal::Unknown)?;
            match upload.state {
                AttachmentState::Uploading => Err(AttachmentRefusal::Uploading),
                AttachmentState::Attached => Err(AttachmentRefusal::Attached),
                AttachmentState::Stored if taken.contains(id) => Err(AttachmentRefusal::Attached),
                AttachmentState::Stored => upload.on_message().ok_or(AttachmentRefusal::Uploading),
            }
        })
        .collect()
}

/// The placements of the uploads `ids` on `ticket`, by `author` (whom [`carried`] checked).
fn placements(ids: &[AttachmentId], ticket: TicketId, author: Author) -> impl Iterator<Item = Placement> + '_ {
    uploader(author).into_iter().flat_map(move |uploader| ids.iter().map(move |&id| Placement { id, ticket, uploader }))
}

/// The first two events of a ticket being opened, `opened` (seq 1, the subject) and the first
/// `message` (seq 2, with its attachments), both by its user, and the uploads to place; or why
/// the first message's attachments cannot go on it.
pub(crate) fn opening_events(
    new: &NewTicket,
    uploads: &Uploads,
) -> Result<(Vec<TicketEvent>, Vec<Placement>), AttachmentRefusal> {
    let author = Author::User(new.user_id);
    let attachments = carried(&new.attachments, author, uploads, &HashSet::new())?;
    let event = |seq, kind, body: &str, client_msg_id: Option<&str>| TicketEvent {
        ticket_id: new.id,
        seq,
        kind,
        author,
        body: Some(body.to_owned()),
        client_msg_id: client_msg_id.map(str::to_owned),
        agent_id: None,
        attachments: Vec::new(),
        created_at: new.created_at,
    };
    let message = TicketEvent { attachments, ..event(2, EventKind::Message, &new.body, Some(&new.client_msg_id)) };
    let placed = placements(&new.attachments, new.id, author).collect();
    Ok((vec![event(1, EventKind::Opened, &new.subject, None), message], placed))
}

/// The event recording a transition that took `seq`. It names the new holder only for the events
/// about who holds the ticket (`claimed`, `transferred`).
pub(crate) fn transition_event(t: &Transition, seq: u64) -> TicketEvent {
    let names_holder = matches!(t.kind, EventKind::Claimed | EventKind::Transferred);
    TicketEvent {
        ticket_id: t.ticket_id,
        seq,
        kind: t.kind,
        author: t.actor,
        body: None,
        client_msg_id: None,
        agent_id: t.agent_id.filter(|_| names_holder),
        attachments: Vec::new(),
        created_at: t.now,
    }
}

/// What makes a message a resend: the same client id from the same author on the same ticket.
pub(crate) type MessageKey = (TicketId, Author, String);

/// The key of a message of the batch.
pub(crate) fn key(message: &NewMessage) -> MessageKey {
    (message.ticket_id, message.author, message.client_msg_id.clone())
}

/// The batch's messages, the first of each key: those whose earlier copies a store looks up.
pub(crate) fn first_of_each_key(batch: &[NewMessage]) -> Vec<&NewMessage> {
    let mut seen = HashSet::with_capacity(batch.len());
    batch.iter().filter(|m| seen.insert(key(m))).collect()
}

/// The batch's tickets, each once, in the order every backend locks them (by id), so that two
/// batches locking overlapping tickets cannot deadlock.
pub(crate) fn ticket_ids(batch: &[NewMessage]) -> Vec<TicketId> {
    let mut ids: Vec<TicketId> = batch.iter().map(|m| m.ticket_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// What to store for a batch, and what to answer.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// One outcome per message, in the batch's order.
    pub results: Vec<Appended>,
    /// The events to insert, in seq order per ticket.
    pub events: Vec<TicketEvent>,
    /// The new state of every ticket that got an event, by id.
    pub tickets: Vec<Ticket>,
    /// The uploads the stored messages carry.
    pub placements: Vec<Placement>,
}

/// Decides the batch against the locked `tickets` (those of the batch that exist) and the events
/// already `stored` under one of the batch's keys (see [`key`]), with the `uploads` the batch names.
///
/// Per message, in order: no ticket, [`Appended::NoTicket`]; a key stored before or earlier in the
/// batch, [`Appended::Duplicate`] of that event; a resolved ticket, [`Appended::Resolved`] unless
/// the author is its user; attachments it cannot carry, [`Appended::AttachmentRefused`]; then the
/// message with the ticket's next seq (after a `reopened` event for a resolved ticket).
pub(crate) fn plan(
    batch: &[NewMessage],
    mut tickets: HashMap<TicketId, Ticket>,
    mut stored: HashMap<MessageKey, TicketEvent>,
    uploads: &Uploads,
) -> Plan {
    let mut out = Plan { results: Vec::with_capacity(batch.len()), ..Plan::default() };
    let mut changed = BTreeSet::new();
    let mut taken = HashSet::new();
    for message in batch {
        let Some(ticket) = tickets.get_mut(&message.ticket_id) else {
            out.results.push(Appended::NoTicket);
            continue;
        };
        // Who may write is decided here, against the locked row, rather than by a read before the
        // batch: one query less per message, and no window between the check and the write.
        if let Some(refused) = refusal(ticket, message.author) {
            out.results.push(refused);
            continue;
        }
        let key = key(message);
        if let Some(original) = stored.get(&key) {
            out.results.push(Appended::Duplicate(original.clone()));
            continue;
        }
        if ticket.status == TicketStatus::Resolved && message.author != Author::User(ticket.user_id) {
            out.results.push(Appended::Resolved);
            continue;
        }
        let attachments = match carried(&message.attachments, message.author, uploads, &taken) {
            Ok(attachments) => attachments,
            Err(refusal) => {
                out.results.push(Appended::AttachmentRefused(refusal));
                continue;
            }
        };
        taken.extend(message.attachments.iter().copied());
        out.placements.extend(placements(&message.attachments, ticket.id, message.author));
        let mut events = Vec::with_capacity(2);
        if ticket.status == TicketStatus::Resolved {
            ticket.status = TicketStatus::Open;
            ticket.agent_id = None;
            ticket.queued_at = Some(message.created_at);
            events.push(next_event(ticket, EventKind::Reopened, message, None, None));
        }
        let text = Some(message.body.clone());
        let mut event = next_event(ticket, EventKind::Message, message, text, Some(message.client_msg_id.clone()));
        event.attachments = attachments;
        stored.insert(key, event.clone());
        events.push(event);
        ticket.updated_at = message.created_at;
        changed.insert(ticket.id);
        out.events.extend(events.iter().cloned());
        out.results.push(Appended::Stored { events, ticket: ticket.clone() });
    }
    out.tickets = changed.into_iter().filter_map(|id| tickets.remove(&id)).collect();
    out
}

/// Why `author` may not write to `ticket` now, if they may not: a user writes only to their own
/// tickets (resolved ones too: that reopens them); an agent only to a ticket they hold, so not to an
/// open one (claim it first) nor a resolved one. The hub itself (`system`) writes anywhere.
fn refusal(ticket: &Ticket, author: Author) -> Option<Appended> {
    match author {
        Author::User(user) if user != ticket.user_id => Some(Appended::NotAllowed),
        Author::Agent(agent) => match (ticket.status, ticket.agent_id) {
            (TicketStatus::Open, _) => Some(Appended::NotClaimed),
            (TicketStatus::Resolved, _) => Some(Appended::Resolved),
            (TicketStatus::Assigned, holder) if holder != Some(agent) => Some(Appended::NotAllowed),
            (TicketStatus::Assigned, _) => None,
        },
        _ => None,
    }
}

/// The ticket's next event, by the message's author at its time; counts it in `last_seq`.
fn next_event(
    ticket: &mut Ticket,
    kind: EventKind,
    message: &NewMessage,
    body: Option<String>,
    client_msg_id: Option<String>,
) -> TicketEvent {
    ticket.last_seq += 1;
    TicketEvent {
        ticket_id: ticket.id,
        seq: ticket.last_seq,
        kind,
        author: message.author,
        body,
        client_msg_id,
        agent_id: None,
        attachments: Vec::new(),
        created_at: message.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::{AgentId, UserId};

    fn ticket(status: TicketStatus) -> Ticket {
        let agent = (status != TicketStatus::Open).then(AgentId::generate);
        Ticket {
            id: TicketId::generate(),
            user_id: UserId::generate(),
            subject: "s".into(),
            status,
            agent_id: agent,
            created_at: 1,
            updated_at: 1,
            queued_at: (status == TicketStatus::Open).then_some(1),
            last_seq: 2,
        }
    }

    fn message(ticket: &Ticket, author: Author, client_msg_id: &str, at: i64) -> NewMessage {
        NewMessage {
            ticket_id: ticket.id,
            author,
            client_msg_id: client_msg_id.into(),
            body: format!("body of {client_msg_id}"),
            attachments: Vec::new(),
            created_at: at,
        }
    }

    fn by_id(tickets: &[&Ticket]) -> HashMap<TicketId, Ticket> {
        tickets.iter().map(|t| (t.id, (*t).clone())).collect()
    }

    #[test]
    fn the_first_of_each_key_keeps_the_batch_order_and_drops_resends() {
        let (t, u) = (ticket(TicketStatus::Assigned), ticket(TicketStatus::Open));
        let user = Author::User(t.user_id);
        let batch = [
            message(&t, user, "a", 1),
            message(&u, user, "a", 2),
            message(&t, user, "a", 3),
            message(&t, Author::User(u.user_id), "a", 4),
            message(&t, user, "b", 5),
        ];
        let firsts: Vec<i64> = first_of_each_key(&batch).iter().map(|m| m.created_at).collect();
        assert_eq!(firsts, [1, 2, 4, 5]);
    }

    fn stored_seqs(result: &Appended) -> Vec<(u64, EventKind)> {
        match result {
            Appended::Stored { events, .. } => events.iter().map(|e| (e.seq, e.kind)).collect(),
            other => panic!("expected stored, got {other:?}"),
        }
    }

    #[test]
    fn messages_take_consecutive_seqs_per_ticket_in_batch_order() {
        let (a, b) = (ticket(TicketStatus::Open), ticket(TicketStatus::Assigned));
        let (ua, ub) = (Author::User(a.user_id), Author::User(b.user_id));
        let batch = [message(&a, ua, "1", 10), message(&b, ub, "1", 11), message(&a, ua, "2", 12)];
        let plan = plan(&batch, by_id(&[&a, &b]), HashMap::new(), &Uploads::new());
        let seqs: Vec<_> = plan.results.iter().map(stored_seqs).collect();
        assert_eq!(seqs, [vec![(3, EventKind::Message)], vec![(3, EventKind::Message)], vec![(4, EventKind::Message)]]);
        assert_eq!(plan.events.len(), 3);
        let a_after = plan.tickets.iter().find(|t| t.id == a.id).expect("a changed");
        assert_eq!((a_after.last_seq, a_after.updated_at), (4, 12));
        // Each result carries the ticket as it was right after its own message.
        assert!(matches!(&plan.results[0], Appended::Stored { ticket, .. } if ticket.last_seq == 3));
    }

    #[test]
    fn a_key_repeated_in_the_batch_or_stored_before_is_a_duplicate() {
        let t = ticket(TicketStatus::Assigned);
        let user = Author::User(t.user_id);
        let agent = Author::Agent(t.agent_id.expect("assigned tickets have their agent"));
        let original = TicketEvent {
            ticket_id: t.id,
            seq: 2,
            kind: EventKind::Message,
            author: user,
            body: Some("first".into()),
            client_msg_id: Some("old".into()),
            agent_id: None,
            attachments: Vec::new(),
            created_at: 1,
        };
        let stored = HashMap::from([((t.id, user, "old".to_owned()), original.clone())]);
        let batch = [
            message(&t, user, "old", 5),
            message(&t, user, "new", 6),
            message(&t, user, "new", 7),
            message(&t, agent, "new", 8),
        ];
        let plan = plan(&batch, by_id(&[&t]), stored, &Uploads::new());
        assert_eq!(plan.results[0], Appended::Duplicate(original));
        let Appended::Stored { events, .. } = &plan.results[1] else { panic!("{:?}", plan.results[1]) };
        assert_eq!(plan.results[2], Appended::Duplicate(events[0].clone()));
        assert_eq!(stored_seqs(&plan.results[3]), [(4, EventKind::Message)], "another author's key is another message");
        assert_eq!(plan.events.len(), 2);
    }

    #[test]
    fn only_the_owner_reopens_a_resolved_ticket_and_only_holders_write() {
        let t = ticket(TicketStatus::Resolved);
        let agent = Author::Agent(t.agent_id.expect("resolved tickets keep their agent"));
        let batch = [
            message(&t, agent, "a", 5),
            message(&t, Author::User(UserId::generate()), "b", 6),
            message(&t, Author::System, "c", 7),
            message(&t, Author::User(t.user_id), "d", 8),
            message(&t, agent, "e", 9),
        ];
        let plan = plan(&batch, by_id(&[&t]), HashMap::new(), &Uploads::new());
        assert_eq!(&plan.results[..3], &[Appended::Resolved, Appended::NotAllowed, Appended::Resolved]);
        assert_eq!(stored_seqs(&plan.results[3]), [(3, EventKind::Reopened), (4, EventKind::Message)]);
        assert_eq!(plan.results[4], Appended::NotClaimed, "reopened earlier in the batch: back in the queue");
        let after = &plan.tickets[0];
        assert_eq!((after.status, after.agent_id, after.queued_at), (TicketStatus::Open, None, Some(8)));
    }

    #[test]
    fn agents_write_only_to_tickets_they_hold() {
        let assigned = ticket(TicketStatus::Assigned);
        let holder = Author::Agent(assigned.agent_id.expect("assigned"));
        let open = ticket(TicketStatus::Open);
        let batch = [
            message(&assigned, Author::Agent(AgentId::generate()), "x", 5),
            message(&open, holder, "y", 6),
            message(&assigned, holder, "z", 7),
            message(&open, Author::User(open.user_id), "w", 8),
        ];
        let plan = plan(&batch, by_id(&[&assigned, &open]), HashMap::new(), &Uploads::new());
        assert_eq!(&plan.results[..2], &[Appended::NotAllowed, Appended::NotClaimed]);
        assert_eq!(stored_seqs(&plan.results[2]), [(3, EventKind::Message)]);
        assert_eq!(stored_seqs(&plan.results[3]), [(3, EventKind::Message)], "users write to their open tickets");
    }

    fn upload(uploader: Principal, state: AttachmentState) -> Attachment {
        use crate::model::attachment::{MediaType, StoredContent};
        Attachment {
            id: AttachmentId::generate(),
            uploader,
            ticket_id: None,
            state,
            name: "receipt.png".into(),
            length: 10,
            received: if state == AttachmentState::Uploading { 3 } else { 10 },
            content: (state != AttachmentState::Uploading).then_some(StoredContent {
                media_type: MediaType::Png,
                size: 9,
                dimensions: None,
                thumbnail_key: None,
            }),
            created_at: 1,
            expires_at: Some(100),
        }
    }

    #[test]
    fn messages_carry_only_their_authors_stored_uploads_and_each_only_once() {
        let t = ticket(TicketStatus::Open);
        let (user, stranger) = (Principal::User(t.user_id), Principal::User(UserId::generate()));
        let mine = upload(user, AttachmentState::Stored);
        let uploading = upload(user, AttachmentState::Uploading);
        let attached = upload(user, AttachmentState::Attached);
        let theirs = upload(stranger, AttachmentState::Stored);
        let uploads: Uploads = [&mine, &uploading, &attached, &theirs].into_iter().map(|u| (u.id, u.clone())).collect();
        let with = |cmid: &str, ids: &[AttachmentId]| NewMessage {
            attachments: ids.to_vec(),
            body: String::new(),
            ..message(&t, Author::User(t.user_id), cmid, 5)
        };
        let batch = [
            with("a", &[theirs.id]),
            with("b", &[AttachmentId::generate()]),
            with("c", &[uploading.id]),
            with("d", &[attached.id]),
            with("e", &[mine.id]),
            with("f", &[mine.id]),
        ];
        let plan = plan(&batch, by_id(&[&t]), HashMap::new(), &uploads);
        let refused = |r: AttachmentRefusal| Appended::AttachmentRefused(r);
        assert_eq!(
            &plan.results[..4],
            &[
                refused(AttachmentRefusal::Unknown),
                refused(AttachmentRefusal::Unknown),
                refused(AttachmentRefusal::Uploading),
                refused(AttachmentRefusal::Attached)
            ]
        );
        let Appended::Stored { events, .. } = &plan.results[4] else { panic!("{:?}", plan.results[4]) };
        assert_eq!(events[0].attachments, [mine.on_message().unwrap()]);
        assert_eq!(plan.results[5], refused(AttachmentRefusal::Attached), "placed earlier in the same batch");
        assert_eq!(plan.placements, [Placement { id: mine.id, ticket: t.id, uploader: user }]);
        assert_eq!(plan.events.len(), 1, "refused messages store nothing");
    }

    #[test]
    fn a_missing_ticket_stores_nothing() {
        let t = ticket(TicketStatus::Open);
        let plan =
            plan(&[message(&t, Author::User(t.user_id), "x", 1)], HashMap::new(), HashMap::new(), &Uploads::new());
        assert_eq!(plan.results, [Appended::NoTicket]);
        assert!(plan.events.is_empty() && plan.tickets.is_empty());
    }

    #[test]
    fn tickets_are_locked_once_each_in_id_order() {
        let (a, b) = (ticket(TicketStatus::Open), ticket(TicketStatus::Open));
        let user = Author::User(a.user_id);
        let ids = ticket_ids(&[message(&b, user, "1", 1), message(&a, user, "2", 1), message(&b, user, "3", 1)]);
        let mut expected = vec![a.id, b.id];
        expected.sort();
        assert_eq!(ids, expected);
    }
}
