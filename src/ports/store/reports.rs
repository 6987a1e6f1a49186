//! The storage port for reports: the events that measure support work.

use crate::error::Result;
use crate::model::ids::TicketId;
use crate::model::ticket::TicketEvent;
use crate::model::time::Millis;
use async_trait::async_trait;

/// Which tickets' events to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportScope {
    /// Every ticket that changed state at or after this time, or is assigned now: every ticket in
    /// which something a report counts may have happened since then (an agent writes only to a
    /// ticket they hold, so a first response falls between a claim and a resolution).
    Since(Millis),
    /// One ticket.
    Ticket(TicketId),
}

/// What reports read.
#[async_trait]
pub trait Reports: Send + Sync {
    /// The scope's tickets' events that change their state (`opened`, `claimed`, `transferred`,
    /// `resolved`, `reopened`) and, after each opening or reopening, the first message of an
    /// agent, each once, without text, by ticket and seq.
    async fn report_events(&self, scope: ReportScope) -> Result<Vec<TicketEvent>>;
}
