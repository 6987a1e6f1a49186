//! Search over tickets, for agents: what is asked and what is found.

use crate::model::ids::{AgentId, LabelId, TicketId};
use crate::model::ticket::{Ticket, TicketStatus};
use crate::model::time::Millis;
use serde::{Deserialize, Serialize};

/// The most matches a search ranks: the most recently written ones. A word in one message of eight
/// matches tens of thousands over a year of history, and ranking them all costs the database
/// reading every one, in every month, for a list an agent reads the first page of; the newest
/// ones are read month by month, newest first, until there are this many. A query with fewer
/// matches has them all ranked.
pub const RANKED_MATCHES: u32 = 1000;

/// A search as storage runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    /// Words, folded ([`crate::model::text::fold`]); a match has every one of them, each as a
    /// word or the beginning of one.
    pub words: Vec<String>,
    /// Only this ticket's subject (its opening event, `seq` 1): the query was the ticket's id and
    /// the words are its subject's.
    pub ticket: Option<TicketId>,
    /// What the matches must be.
    pub filters: SearchFilters,
    /// Matches to skip (paging).
    pub offset: u32,
    /// Matches to return at most.
    pub limit: u32,
    /// The most recently written matches that are ranked (and paged through), at most
    /// ([`RANKED_MATCHES`] by default); older ones are not found.
    pub ranked: u32,
}

impl Default for SearchQuery {
    fn default() -> Self {
        Self {
            words: Vec::new(),
            ticket: None,
            filters: SearchFilters::default(),
            offset: 0,
            limit: 0,
            ranked: RANKED_MATCHES,
        }
    }
}

/// What the matches of a search must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchFilters {
    /// Only tickets in this status.
    pub status: Option<TicketStatus>,
    /// Only tickets this agent holds (or held last).
    pub agent: Option<AgentId>,
    /// Only tickets with this label.
    pub label: Option<LabelId>,
    /// Only messages written at or after this time.
    pub from: Option<Millis>,
    /// Only messages written before this time.
    pub to: Option<Millis>,
}

/// What a match matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Matched {
    /// A message or the subject.
    Text,
    /// The name of the ticket's customer.
    CustomerName,
}

/// A message (or a subject, or the customer's name) that matched, best first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchHit {
    /// Its ticket, as it is now.
    pub ticket: Ticket,
    /// The event that matched (1: the subject; also 1 for the customer's name).
    pub seq: u64,
    /// Its text (the customer's name for a name).
    pub body: String,
    /// When it was written (for a name: the ticket's last activity).
    pub at: Millis,
    /// What matched.
    pub matched: Matched,
}

/// A piece of a match's text, for showing it with the matching words marked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnippetPart {
    /// The text, as written.
    pub text: String,
    /// Whether it is a matching word.
    #[serde(rename = "match")]
    pub matched: bool,
}
