//! Rows read only by the users'-rights port.

use crate::adapters::sql::rows::ViewRow;
use crate::model::telemetry::StoredView;

/// `view_events` with the storage id, the export's cursor: `id, ` then [`super::VIEW_COLUMNS`].
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct PagedViewRow {
    id: i64,
    #[sqlx(flatten)]
    view: ViewRow,
}

impl From<PagedViewRow> for (i64, StoredView) {
    fn from(r: PagedViewRow) -> Self {
        (r.id, StoredView::from(r.view))
    }
}
