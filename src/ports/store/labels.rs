//! The storage port for labels: the team's list, and which tickets carry which.

use crate::error::Result;
use crate::model::ids::{AgentId, LabelId, TicketId};
use crate::model::label::{Label, LabelWrite, TicketLabelled, TicketLabels};
use crate::model::time::Millis;
use async_trait::async_trait;

/// Labels and the tickets they are on.
#[async_trait]
pub trait Labels: Send + Sync {
    /// Stores a new label; `name_key` is its name folded (unique).
    async fn create_label(&self, label: &Label, name_key: &str) -> Result<LabelWrite>;

    /// Renames or recolours a label (`name_key`: the new name folded).
    async fn update_label(&self, label: &Label, name_key: &str) -> Result<LabelWrite>;

    /// Deletes a label, taking it off every ticket. False when there was no such label.
    async fn delete_label(&self, id: LabelId) -> Result<bool>;

    /// Every label, oldest first.
    async fn labels(&self) -> Result<Vec<Label>>;

    /// Puts the label on the ticket (`on`) or takes it off, by `agent` at `at`.
    async fn label_ticket(
        &self,
        ticket: TicketId,
        label: LabelId,
        on: bool,
        agent: AgentId,
        at: Millis,
    ) -> Result<TicketLabelled>;

    /// The labels of each ticket in `tickets` that has any.
    async fn ticket_labels(&self, tickets: &[TicketId]) -> Result<Vec<TicketLabels>>;
}
