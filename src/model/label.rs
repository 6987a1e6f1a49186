//! Labels on tickets: a team-wide list that supervisors keep (names like «بازپرداخت» or
//! "payment"), which agents put on tickets to sort, filter, search and report by. Users never see
//! them.

use crate::model::ids::{LabelId, TicketId};
use crate::model::time::Millis;
use serde::{Deserialize, Serialize};

/// Longest label name, in characters.
pub const MAX_LABEL_CHARS: usize = 40;
/// Most labels a hub keeps.
pub const MAX_LABELS: usize = 200;

/// A label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Id.
    pub id: LabelId,
    /// The name as the supervisor wrote it (trimmed).
    pub name: String,
    /// Its colour in the console, `#rrggbb`.
    pub color: String,
    /// When it was created.
    pub created_at: Millis,
}

/// The outcome of writing a label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelWrite {
    /// Stored.
    Stored(Label),
    /// Another label has the same name (folded).
    NameTaken,
    /// No such label (a change of one).
    NotFound,
}

/// The outcome of putting a label on a ticket or taking it off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketLabelled {
    /// The ticket's labels after the change (the same when nothing changed).
    Labels(Vec<LabelId>),
    /// No such ticket.
    NoTicket,
    /// No such label.
    NoLabel,
}

/// A ticket's labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLabels {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Its labels' ids, in the order of the labels' creation.
    pub label_ids: Vec<LabelId>,
}

/// Whether `color` is `#rrggbb`.
pub fn is_color(color: &str) -> bool {
    color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit())
}
