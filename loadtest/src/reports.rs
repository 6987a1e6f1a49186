//! `reports`: supervisors' reports over a long history. The harness fills the hub's Postgres
//! database with `--tickets` resolved tickets spread over the last `--days` days (each opened by its
//! user, claimed after a wait, answered, `--messages` messages in all, resolved; one in ten
//! reopened, claimed by another agent, answered and resolved again; a third rated, a fifth
//! labelled), then asks `GET /v1/reports` for the last day, week, 30 days and `--days` days (at
//! most the year the hub reports on), `--queries` times each one after another, and reports the
//! latency from request to the whole answer per range, with the hub's and Postgres's CPU per report.

use crate::cluster::Cluster;
use crate::hub::{CpuSnapshot, HubArgs};
use crate::search::DAY_MS;
use crate::signin;
use crate::stats::{Latency, LatencySummary};
use crate::ClientArgs;
use anyhow::Context;
use serde::Serialize;
use std::time::Instant;

/// Agents the history is spread over.
const AGENTS: usize = 20;
/// Labels on the tickets.
const LABELS: usize = 5;
/// The longest range the hub reports on (a year and a leap day): a longer history is asked for
/// that much of it.
const LONGEST_REPORT_DAYS: i64 = 366;

/// `reports` options.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct ReportsArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub hub: HubArgs,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Messages to store (Postgres only: `--database-url`).
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Tickets the messages are spread over.
    #[arg(long, default_value_t = 20_000)]
    pub tickets: u64,
    /// Days the tickets are spread over, ending a day ago; the longest report asked for covers them
    /// all, or the last 366 (the most one report covers).
    #[arg(long, default_value_t = 90)]
    pub days: i64,
    /// Reports asked per range.
    #[arg(long, default_value_t = 20)]
    pub queries: u64,
}

/// One range's measurements.
#[derive(Debug, Serialize)]
pub struct RangeReport {
    pub days: i64,
    pub latency: LatencySummary,
    pub resolved: u64,
    pub agents: usize,
}

/// What `reports` measured.
#[derive(Debug, Serialize)]
pub struct ReportsReport {
    pub messages: u64,
    pub tickets: u64,
    pub events: u64,
    pub fill_secs: f64,
    pub errors: u64,
    pub ranges: Vec<RangeReport>,
    pub hub_cpu_ms_per_report: Option<f64>,
    pub postgres_cpu_ms_per_report: Option<f64>,
}

impl ReportsReport {
    /// The human-readable report.
    pub fn table(&self) -> String {
        let mut out = format!(
            "reports\n-------\nstored                {} messages in {} tickets, {} events (filled in {:.1} s)\n",
            self.messages, self.tickets, self.events, self.fill_secs
        );
        for r in &self.ranges {
            out.push_str(&format!(
                "last {:>3} days         p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1} ms  (n={}, {} resolutions, {} agents)\n",
                r.days, r.latency.p50_ms, r.latency.p90_ms, r.latency.p99_ms, r.latency.max_ms, r.latency.count, r.resolved, r.agents
            ));
        }
        let per = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} ms"));
        out.push_str(&format!(
            "errors                {}\ncpu per report        hub {}  postgres {}\n",
            self.errors,
            per(self.hub_cpu_ms_per_report),
            per(self.postgres_cpu_ms_per_report)
        ));
        out
    }
}

/// The SQL that stores the history: `tickets` tickets of one customer from `start` to `end`,
/// `per_ticket` messages each, over the agents whose emails start with `agent_prefix`. The months
/// of the history get their partitions first, as a hub running all along would have made them.
fn fill_sql(tickets: u64, per_ticket: u64, start: i64, end: i64, agent_prefix: &str) -> String {
    let spacing = (end - start) / tickets.max(1) as i64;
    let m = per_ticket as i64;
    format!(
        "{months}
         BEGIN;
         CREATE TEMP TABLE load_agents AS
             SELECT array_agg(id ORDER BY email) AS a FROM agents WHERE email LIKE '{agent_prefix}%';
         INSERT INTO users (id, registered_at) VALUES ('00000000-0000-7000-8000-00000000cafe', 0)
             ON CONFLICT DO NOTHING;
         CREATE TEMP TABLE load_tickets AS
             SELECT t, md5('report-ticket-' || t)::uuid AS id,
                    {start} + t::bigint * {spacing} AS opened_at,
                    10000 + (hashint8(t) & 2147483647) % 600000 AS wait,
                    (t % 10 = 0) AS reopens,
                    1 + t % {AGENTS} AS first_agent,
                    1 + (t + 1) % {AGENTS} AS second_agent
             FROM generate_series(1, {tickets}) AS t;
         ALTER TABLE load_tickets ADD COLUMN resolved_at BIGINT;
         UPDATE load_tickets SET resolved_at = opened_at + wait + {m1} * 60000;
         INSERT INTO tickets (id, user_id, subject, status, agent_id, open_client_msg_id, created_at, updated_at,
                              queued_at, last_seq, resolved_at)
             SELECT id, '00000000-0000-7000-8000-00000000cafe', 'ticket ' || t, 'resolved',
                    a[CASE WHEN reopens THEN second_agent ELSE first_agent END], 'report-' || t, opened_at,
                    CASE WHEN reopens THEN resolved_at + 3780000 ELSE resolved_at END, NULL,
                    CASE WHEN reopens THEN {m} + 9 ELSE {m} + 4 END,
                    CASE WHEN reopens THEN resolved_at + 3780000 ELSE resolved_at END
             FROM load_tickets, load_agents;
         INSERT INTO ticket_events (ticket_id, seq, kind, author_kind, author_id, body, agent_id, created_at, search_text)
             SELECT id, 1, 'opened', 'user', '00000000-0000-7000-8000-00000000cafe'::uuid, 'ticket ' || t, NULL::uuid,
                    opened_at, 'ticket ' || t
             FROM load_tickets
             UNION ALL
             SELECT id, 2, 'message', 'user', '00000000-0000-7000-8000-00000000cafe'::uuid, 'سلام', NULL::uuid, opened_at, 'سلام'
             FROM load_tickets
             UNION ALL
             SELECT id, 3, 'claimed', 'agent', a[first_agent], NULL, a[first_agent], opened_at + wait, NULL
             FROM load_tickets, load_agents
             UNION ALL
             SELECT id, 3 + s, 'message', CASE WHEN s % 2 = 1 THEN 'agent' ELSE 'user' END,
                    CASE WHEN s % 2 = 1 THEN a[first_agent] ELSE '00000000-0000-7000-8000-00000000cafe'::uuid END,
                    'پاسخ ' || s, NULL, opened_at + wait + s * 60000, 'پاسخ ' || s
             FROM load_tickets, load_agents, generate_series(1, {m}) AS s
             UNION ALL
             SELECT id, {m} + 4, 'resolved', 'agent', a[first_agent], NULL, NULL, resolved_at, NULL
             FROM load_tickets, load_agents
             UNION ALL
             SELECT id, {m} + 4 + k, (ARRAY['reopened', 'message', 'claimed', 'message', 'resolved'])[k],
                    (ARRAY['user', 'user', 'agent', 'agent', 'agent'])[k],
                    CASE WHEN k <= 2 THEN '00000000-0000-7000-8000-00000000cafe'::uuid ELSE a[second_agent] END,
                    CASE WHEN k IN (2, 4) THEN 'دوباره' END, CASE WHEN k = 3 THEN a[second_agent] END,
                    resolved_at + 3600000 + (ARRAY[0, 0, 120000, 180000, 180000])[k],
                    CASE WHEN k IN (2, 4) THEN 'دوباره' END
             FROM load_tickets, load_agents, generate_series(1, 5) AS k WHERE reopens;
         INSERT INTO ticket_ratings (ticket_id, resolution_seq, agent_id, score, comment, rated_at)
             SELECT id, CASE WHEN reopens THEN {m} + 9 ELSE {m} + 4 END,
                    a[CASE WHEN reopens THEN second_agent ELSE first_agent END], 1 + t % 5, NULL, resolved_at + 3800000
             FROM load_tickets, load_agents WHERE t % 3 = 0;
         INSERT INTO labels (id, name, name_key, color, created_at)
             SELECT md5('report-label-' || l)::uuid, 'load label ' || l, 'load label ' || l, '#336699', 0
             FROM generate_series(1, {LABELS}) AS l ON CONFLICT DO NOTHING;
         INSERT INTO ticket_labels (ticket_id, label_id, added_by, added_at)
             SELECT id, md5('report-label-' || (1 + (t / 5) % {LABELS}))::uuid, a[first_agent], opened_at
             FROM load_tickets, load_agents WHERE t % 5 = 0;
         UPDATE agents SET supervisor = true WHERE email = (SELECT min(email) FROM agents WHERE email LIKE '{agent_prefix}%');
         COMMIT;
         ANALYZE;",
        m1 = m + 1,
        months = crate::search::months_sql(start, end),
    )
}

/// Fills the database, then asks for reports.
pub async fn run(args: ReportsArgs) -> anyhow::Result<ReportsReport> {
    anyhow::ensure!(
        args.tickets >= 1 && args.queries >= 1 && args.days >= 2,
        "counts must be positive, days at least 2"
    );
    let (database_url, http, mut hubs) = crate::search::postgres_hubs(&args.hub, "reports").await?;
    let result = run_on(&args, &database_url, &http, &hubs).await;
    hubs.stop();
    result
}

async fn run_on(
    args: &ReportsArgs,
    database_url: &str,
    http: &reqwest::Client,
    hubs: &Cluster,
) -> anyhow::Result<ReportsReport> {
    let hub = hubs.first();
    let tag = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    let agents = signin::create_agents(&args.hub.hub_bin, &hub.db_env, &tag.to_string(), AGENTS).await?;
    let per_ticket = (args.messages / args.tickets).max(2) & !1;
    let now = tag as i64;
    let (start, end) = (now - args.days * DAY_MS, now - DAY_MS);
    eprintln!("reports: storing {} tickets with {per_ticket} messages each", args.tickets);
    let started = Instant::now();
    crate::search::psql(database_url, fill_sql(args.tickets, per_ticket, start, end, &format!("load-{tag}-"))).await?;
    let fill_secs = started.elapsed().as_secs_f64();
    eprintln!("reports: stored in {fill_secs:.1} s; asking for reports");
    // The supervisor: the first of the agents by email.
    let mut by_email = agents.clone();
    by_email.sort_by(|a, b| a.email.cmp(&b.email));
    let token = signin::agent_login(http, &hub.base, &by_email[0]).await.map_err(anyhow::Error::msg)?;

    let before = CpuSnapshot::take(&hubs.nodes);
    let mut ranges = Vec::new();
    let mut errors = 0;
    for days in [1, 7, 30, args.days.min(LONGEST_REPORT_DAYS)] {
        let mut latency = Latency::default();
        let (mut resolved, mut agents_seen) = (0, 0);
        for _ in 0..args.queries {
            let url = format!("{}/v1/reports?from={}&to={now}", hub.base, now - days * DAY_MS);
            let sent = Instant::now();
            let reply = http.get(&url).bearer_auth(&token).send().await.context("GET /v1/reports")?;
            let ok = reply.status().is_success();
            let body: serde_json::Value = reply.json().await.unwrap_or_default();
            latency.record(sent.elapsed().as_micros() as u64);
            if !ok {
                errors += 1;
                continue;
            }
            resolved = body["overall"]["resolved"].as_u64().unwrap_or(0);
            agents_seen = body["agents"].as_array().map_or(0, Vec::len);
        }
        ranges.push(RangeReport { days, latency: latency.summary(), resolved, agents: agents_seen });
    }
    let cpu = before.until(&CpuSnapshot::take(&hubs.nodes));
    let reports = (args.queries * 4) as f64;
    let per = |secs: Option<f64>| secs.map(|s| s * 1000.0 / reports);
    let reopened = args.tickets / 10;
    Ok(ReportsReport {
        messages: args.tickets * per_ticket + 2 * reopened + args.tickets,
        tickets: args.tickets,
        events: args.tickets * (per_ticket + 4) + 5 * reopened,
        fill_secs,
        errors,
        ranges,
        hub_cpu_ms_per_report: per(cpu.hub_s),
        postgres_cpu_ms_per_report: per(cpu.postgres_s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fill_spreads_tickets_over_the_range() {
        let sql = fill_sql(1_000, 50, 0, 1_000_000, "load-1-");
        assert!(sql.contains("0 + t::bigint * 1000 AS opened_at"), "{sql}");
        assert!(sql.contains("generate_series(1, 50) AS s"));
        assert!(sql.contains("WHERE email LIKE 'load-1-%'"));
    }
}
