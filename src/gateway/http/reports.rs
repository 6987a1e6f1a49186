//! Reports for supervisors: `GET /v1/reports?from=&to=[&format=csv]`, the team's figures over a
//! time range as JSON (the report's shape) or as CSV (one row per scope, for spreadsheets).

use super::{csv_download, no_store, require_bearer, ApiResult, Format};
use crate::error::Error;
use crate::gateway::services::Services;
use crate::model::report::{Durations, Figures, Report};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

/// The reports route.
pub(super) fn routes() -> Router<Arc<Services>> {
    Router::new().route("/v1/reports", get(report))
}

/// The query parameters.
#[derive(Deserialize)]
struct Params {
    /// Start of the range, Unix ms (included).
    from: i64,
    /// End of the range, Unix ms (excluded).
    to: i64,
    /// `json` (the default) or `csv`.
    format: Option<Format>,
}

/// `GET /v1/reports`: a supervisor's report.
async fn report(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    params: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Response> {
    let identity = require_bearer(&hub, &headers).await?;
    let Query(p) = params.map_err(|e| Error::BadRequest(e.body_text()))?;
    let report = hub.tickets.report(identity.who, p.from, p.to).await?;
    if p.format != Some(Format::Csv) {
        return Ok(no_store(Json(report).into_response()));
    }
    Ok(csv_download(csv(&report)?, &format!("anapars-report-{}-{}.csv", report.from, report.to)))
}

/// The CSV's columns, after `scope`, `id` and `name`.
const FIGURE_COLUMNS: [&str; 22] = [
    "opened",
    "reopened",
    "claimed",
    "resolved",
    "first_response_count",
    "first_response_p50_ms",
    "first_response_p90_ms",
    "queue_wait_count",
    "queue_wait_p50_ms",
    "queue_wait_p90_ms",
    "resolution_count",
    "resolution_p50_ms",
    "resolution_p90_ms",
    "ratings_requested",
    "ratings_rated",
    "ratings_average",
    "ratings_1",
    "ratings_2",
    "ratings_3",
    "ratings_4",
    "ratings_5",
    "ratings_response_rate",
];

/// The report as CSV (RFC 4180, UTF-8 with a byte order mark so that spreadsheets read Persian
/// names right): a header, the team's row (`overall`), a row per agent, a row per label.
fn csv(report: &Report) -> Result<Vec<u8>, Error> {
    let mut out = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let failed = |e: csv::Error| Error::Internal(format!("report csv: {e}"));
    let header = ["scope", "id", "name"].into_iter().chain(FIGURE_COLUMNS);
    out.write_record(header).map_err(failed)?;
    let mut row = |scope: &str, id: String, name: &str, f: &Figures| {
        let mut record = vec![scope.to_owned(), id, spreadsheet_safe(name)];
        record.extend(figure_cells(f));
        out.write_record(&record)
    };
    row("overall", String::new(), "", &report.overall).map_err(failed)?;
    for a in &report.agents {
        row("agent", a.agent_id.to_string(), &a.name, &a.figures).map_err(failed)?;
    }
    for l in &report.labels {
        row("label", l.label_id.to_string(), &l.name, &l.figures).map_err(failed)?;
    }
    out.into_inner().map_err(|e| Error::Internal(format!("report csv: {e}")))
}

/// The cells of [`FIGURE_COLUMNS`]; a figure without a value is an empty cell.
fn figure_cells(f: &Figures) -> Vec<String> {
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let ratio = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
    let times = |d: &Durations| [d.count.to_string(), opt(d.p50_ms), opt(d.p90_ms)];
    let mut cells = vec![f.opened.to_string(), f.reopened.to_string(), f.claimed.to_string(), f.resolved.to_string()];
    cells.extend(times(&f.first_response));
    cells.extend(times(&f.queue_wait));
    cells.extend(times(&f.resolution));
    cells.extend([f.ratings.requested.to_string(), f.ratings.rated.to_string(), ratio(f.ratings.average)]);
    cells.extend(f.ratings.distribution.iter().map(u64::to_string));
    cells.push(ratio(f.ratings.response_rate));
    cells
}

/// A name as a spreadsheet cell that cannot run as a formula: names that start like one (`=`,
/// `+`, `-`, `@`, tab, carriage return) get a leading apostrophe.
fn spreadsheet_safe(name: &str) -> String {
    if name.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{name}")
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::{AgentId, LabelId};
    use crate::model::report::{AgentFigures, LabelFigures};

    #[test]
    fn csv_has_a_row_per_scope_with_every_column_and_no_formulas() {
        let mut sara = Figures { resolved: 2, ..Figures::default() };
        sara.first_response = Durations { count: 2, p50_ms: Some(4000), p90_ms: Some(12000) };
        sara.ratings.distribution = [0, 1, 0, 0, 1];
        sara.ratings.average = Some(3.5);
        let report = Report {
            from: 0,
            to: 1,
            overall: sara,
            agents: vec![AgentFigures {
                agent_id: AgentId(uuid::Uuid::nil()),
                name: "سارا, \"S\"".into(),
                figures: sara,
            }],
            labels: vec![LabelFigures {
                label_id: LabelId(uuid::Uuid::nil()),
                name: "=HYPERLINK(1)".into(),
                color: "#000000".into(),
                figures: Figures::default(),
            }],
        };
        let text = String::from_utf8(csv(&report).unwrap()).unwrap();
        let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("scope,id,name,opened,reopened,claimed,resolved,first_response_count"));
        assert_eq!(lines[0].split(',').count(), 25);
        assert!(lines[1].starts_with("overall,,,0,0,0,2,2,4000,12000,0,,,0,,,0,0,3.5000,0,1,0,0,1,"), "{}", lines[1]);
        assert!(lines[2].contains("\"سارا, \"\"S\"\"\""), "quoted: {}", lines[2]);
        assert!(lines[3].starts_with("label,00000000-0000-0000-0000-000000000000,'=HYPERLINK(1),"), "{}", lines[3]);
    }
}
