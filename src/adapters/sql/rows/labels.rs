//! Rows of `labels` and `ticket_labels`, and the statements both backends run on them (`?N`
//! placeholders; Postgres spells them `$N`).

use crate::model::ids::{LabelId, TicketId};
use crate::model::label::{Label, TicketLabels};
use crate::model::time::Millis;
use uuid::Uuid;

/// Stores a label: `?1` id, `?2` name, `?3` name_key, `?4` color, `?5` created_at.
pub(in crate::adapters::sql) const INSERT: &str =
    "INSERT INTO labels (id, name, name_key, color, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Renames and recolours label `?1`: `?2` name, `?3` name_key, `?4` color.
pub(in crate::adapters::sql) const UPDATE: &str =
    "UPDATE labels SET name = ?2, name_key = ?3, color = ?4 WHERE id = ?1";

/// Deletes label `?1` (its `ticket_labels` go with it).
pub(in crate::adapters::sql) const DELETE: &str = "DELETE FROM labels WHERE id = ?1";

/// Every label, oldest first.
pub(in crate::adapters::sql) const ALL: &str = "SELECT id, name, color, created_at FROM labels ORDER BY created_at, id";

/// Whether ticket `?1` exists (Postgres appends `FOR SHARE`).
pub(in crate::adapters::sql) const TICKET_EXISTS: &str = "SELECT id FROM tickets WHERE id = ?1";

/// Whether label `?1` exists (Postgres appends `FOR SHARE`, so it cannot go meanwhile).
pub(in crate::adapters::sql) const LABEL_EXISTS: &str = "SELECT id FROM labels WHERE id = ?1";

/// Puts label `?2` on ticket `?1`, by agent `?3` at `?4`; nothing when it is there.
pub(in crate::adapters::sql) const PUT_ON: &str =
    "INSERT INTO ticket_labels (ticket_id, label_id, added_by, added_at) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (ticket_id, label_id) DO NOTHING";

/// Takes label `?2` off ticket `?1`.
pub(in crate::adapters::sql) const TAKE_OFF: &str = "DELETE FROM ticket_labels WHERE ticket_id = ?1 AND label_id = ?2";

/// The labels of tickets, in the labels' order; each backend appends the list of tickets and
/// [`OF_TICKETS_ORDER`].
pub(in crate::adapters::sql) const OF_TICKETS: &str =
    "SELECT tl.ticket_id, tl.label_id FROM ticket_labels tl JOIN labels l ON l.id = tl.label_id WHERE tl.ticket_id ";

/// The order of [`OF_TICKETS`].
pub(in crate::adapters::sql) const OF_TICKETS_ORDER: &str = " ORDER BY tl.ticket_id, l.created_at, l.id";

/// `labels`: `id, name, color, created_at`.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct LabelRow {
    id: Uuid,
    name: String,
    color: String,
    created_at: Millis,
}

impl From<LabelRow> for Label {
    fn from(r: LabelRow) -> Self {
        Self { id: LabelId(r.id), name: r.name, color: r.color, created_at: r.created_at }
    }
}

/// (ticket, label) pairs ordered by ticket, as each ticket's labels.
pub(in crate::adapters::sql) fn grouped(pairs: Vec<(Uuid, Uuid)>) -> Vec<TicketLabels> {
    let mut out: Vec<TicketLabels> = Vec::new();
    for (ticket, label) in pairs {
        match out.last_mut() {
            Some(last) if last.ticket_id.0 == ticket => last.label_ids.push(LabelId(label)),
            _ => out.push(TicketLabels { ticket_id: TicketId(ticket), label_ids: vec![LabelId(label)] }),
        }
    }
    out
}
