//! Rows read only by the users'-rights port.

use super::ViewRow;
use crate::storage::usage::StoredView;

/// `view_events` with the storage id, the export's cursor: `id, ` then [`super::VIEW_COLUMNS`].
#[derive(sqlx::FromRow)]
pub(in crate::storage) struct PagedViewRow {
    id: i64,
    #[sqlx(flatten)]
    view: ViewRow,
}

impl From<PagedViewRow> for (i64, StoredView) {
    fn from(r: PagedViewRow) -> Self {
        (r.id, StoredView::from(r.view))
    }
}
