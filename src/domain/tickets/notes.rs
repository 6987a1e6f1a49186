//! Agents' private notes on tickets. A note is information about the customer that only agents
//! see: it goes to every agent's console and never to the customer's apps, history, unread counts
//! or notifications; the customer's export includes it. Notes are a stream of their own, not
//! ticket events, so the events' gapless numbering that the customer's apps follow never skips one.

use super::{check_client_msg_id, TicketDesk};
use crate::error::{Error, Result};
use crate::model::event::Event;
use crate::model::ids::{AgentId, NoteId, Principal, TicketId};
use crate::model::note::{Note, NoteAdded, MAX_MENTIONS};
use crate::model::time::now_ms;
use crate::ports::broker::Audience;

/// Most notes in one page.
pub const MAX_NOTES_PAGE: u32 = 100;

impl TicketDesk {
    /// Stores an agent's note on a ticket (any ticket, whoever holds it) and tells every agent's
    /// console; the agents in `mentions` are named in it. A resend with the same `client_msg_id`
    /// answers the stored note and tells nobody again.
    ///
    /// # Errors
    /// `forbidden` for users, `bad_request` (client id, mentions), `empty_body`, `too_large`,
    /// `not_found` (ticket), `unavailable`.
    pub async fn add_note(
        &self,
        who: Principal,
        ticket: TicketId,
        client_msg_id: &str,
        body: &str,
        mentions: &[AgentId],
    ) -> Result<Note> {
        let Principal::Agent(agent) = who else { return Err(Error::Forbidden) };
        check_client_msg_id(client_msg_id)?;
        self.check_body(body)?;
        let mut named: Vec<AgentId> = Vec::with_capacity(mentions.len());
        for id in mentions {
            if !named.contains(id) {
                named.push(*id);
            }
        }
        if named.len() > MAX_MENTIONS {
            return Err(Error::BadRequest(format!("a note names at most {MAX_MENTIONS} agents")));
        }
        for id in &named {
            match self.agents.agent(*id).await? {
                Some(a) if a.disabled_at.is_none() => {}
                _ => return Err(Error::BadRequest(format!("mentions: no agent {id}"))),
            }
        }
        let note = Note {
            id: NoteId::generate(),
            ticket_id: ticket,
            agent_id: agent,
            body: body.to_owned(),
            mentions: named,
            client_msg_id: client_msg_id.to_owned(),
            created_at: now_ms(),
        };
        match self.notes.add_note(&note).await? {
            NoteAdded::Stored(note) => {
                self.broker.publish(&Audience::AGENTS, Event::TicketNote(note.clone()));
                metrics::counter!(crate::metrics::NOTES_STORED).increment(1);
                Ok(note)
            }
            NoteAdded::Duplicate(note) => Ok(note),
            NoteAdded::NoTicket => Err(Error::NotFound("ticket")),
        }
    }

    /// A page of a ticket's notes, oldest first, and whether older ones remain: the newest `limit`
    /// (1 to [`MAX_NOTES_PAGE`]), or those before `before`.
    ///
    /// # Errors
    /// `forbidden` for users, `bad_request` (limit), `not_found` (ticket), `unavailable`.
    pub async fn notes(
        &self,
        who: Principal,
        ticket: TicketId,
        before: Option<NoteId>,
        limit: u32,
    ) -> Result<(Vec<Note>, bool)> {
        if !matches!(who, Principal::Agent(_)) {
            return Err(Error::Forbidden);
        }
        if limit == 0 || limit > MAX_NOTES_PAGE {
            return Err(Error::BadRequest(format!("limit must be 1 to {MAX_NOTES_PAGE}")));
        }
        self.visible_ticket(who, ticket).await?;
        let mut notes = self.notes.notes(ticket, before, limit + 1).await?;
        let more = notes.len() > limit as usize;
        if more {
            notes.remove(0);
        }
        Ok((notes, more))
    }
}
