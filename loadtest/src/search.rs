//! `search`: agents' search over a large history. The harness fills the hub's Postgres database
//! with `--messages` stored messages (in `--tickets` resolved tickets of `--customers` named
//! customers, opened evenly over the last `--days` days, their months in their partitions, each text
//! twelve words of a support vocabulary, Persian and Latin, and an order number of its own), then
//! `--concurrency` agent sockets send `ticket.search` back to back, `--queries` in all, and the
//! report gives the query latency from send to reply, by kind of query:
//!
//! - `common`: one word of the vocabulary (each is in about one text in eight);
//! - `two words`: two words of the vocabulary (both required);
//! - `rare`: one order number (one text);
//! - `surname`: with more than one customer, every fifth query: a customer's surname (one in eight).
//!
//! The texts are stored already folded (the vocabulary is in Persian letter forms and lower case),
//! with `search_text` and `search_vector` as the hub writes them (words of letters and digits between
//! spaces, which Postgres' parser splits as the hub does), so the index is the one the hub keeps.

use crate::cluster::Cluster;
use crate::hub::{CpuSnapshot, HubArgs};
use crate::signin;
use crate::stats::{Latency, LatencySummary};
use crate::wire::{Body, Conn, Frame};
use crate::ClientArgs;
use anyhow::{bail, Context};
use serde::Serialize;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The vocabulary of the generated texts.
const WORDS: &[&str] = &[
    "سلام",
    "کارت",
    "بانکی",
    "پرداخت",
    "بازپرداخت",
    "سفارش",
    "ارسال",
    "تحویل",
    "پیگیری",
    "شماره",
    "حساب",
    "رمز",
    "ورود",
    "برنامه",
    "نصب",
    "خطا",
    "پیام",
    "پشتیبانی",
    "اشتراک",
    "تمدید",
    "لغو",
    "هزینه",
    "تخفیف",
    "کد",
    "فعال",
    "غیرفعال",
    "مشکل",
    "درخواست",
    "تراکنش",
    "موفق",
    "ناموفق",
    "کیف",
    "پول",
    "شارژ",
    "اینترنت",
    "بسته",
    "هدیه",
    "امتیاز",
    "باشگاه",
    "مشتریان",
    "تماس",
    "ایمیل",
    "گوشی",
    "تبلت",
    "نسخه",
    "بروزرسانی",
    "صفحه",
    "سیاه",
    "کند",
    "قطع",
    "وصل",
    "سرور",
    "زمان",
    "امروز",
    "دیروز",
    "فردا",
    "لطفا",
    "ممنون",
    "منتظر",
    "پاسخ",
    "سوال",
    "راهنما",
    "تنظیمات",
    "زبان",
    "فارسی",
    "انگلیسی",
    "دانلود",
    "آپلود",
    "عکس",
    "فایل",
    "payment",
    "refund",
    "order",
    "delivery",
    "tracking",
    "account",
    "password",
    "login",
    "app",
    "error",
    "message",
    "support",
    "subscription",
    "renewal",
    "cancel",
    "discount",
    "code",
    "active",
    "problem",
    "request",
    "transaction",
    "failed",
    "wallet",
    "charge",
    "internet",
    "package",
    "gift",
    "points",
    "email",
    "phone",
    "version",
    "update",
    "screen",
    "slow",
    "server",
    "today",
    "please",
    "thanks",
    "answer",
    "question",
    "settings",
    "download",
    "photo",
    "file",
    "invoice",
    "receipt",
    "bank",
    "card",
    "shipping",
];
/// Customers' first names and surnames (folded, as the hub stores names for search): customer `c`
/// is `FIRST_NAMES[c % 8] SURNAMES[(c / 8) % 8]`, so each surname is one customer's in eight.
const FIRST_NAMES: [&str; 8] = ["علی", "محمد", "زهرا", "فاطمه", "حسین", "رضا", "مریم", "سارا"];
const SURNAMES: [&str; 8] = ["احمدی", "محمدی", "حسینی", "رضایی", "کریمی", "موسوی", "جعفری", "نوری"];

/// Words per text, besides its order number.
const WORDS_PER_TEXT: usize = 12;

/// `search` options.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct SearchArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub hub: HubArgs,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Messages to store before searching (Postgres only: `--database-url`).
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Tickets the messages are spread over.
    #[arg(long, default_value_t = 20_000)]
    pub tickets: u64,
    /// Customers the tickets belong to, in turn, each named by a first name and a surname (eight
    /// of each); with more than one, every fifth query is a surname, as an agent types a
    /// customer's name (every first page looks for customers by name as well).
    #[arg(long, default_value_t = 1)]
    pub customers: u64,
    /// Days the tickets are spread over, ending a day ago, each month in its partition.
    #[arg(long, default_value_t = 365)]
    pub days: i64,
    /// Searches in all.
    #[arg(long, default_value_t = 3_000)]
    pub queries: u64,
    /// Agent sockets searching at once, each one query after another.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Matches per page.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

/// What `search` measured.
#[derive(Debug, Serialize)]
pub struct SearchReport {
    pub messages: u64,
    pub tickets: u64,
    pub customers: u64,
    pub fill_secs: f64,
    pub queries: u64,
    pub errors: u64,
    pub elapsed_secs: f64,
    pub all: LatencySummary,
    pub common: LatencySummary,
    pub two_words: LatencySummary,
    pub rare: LatencySummary,
    pub surname: LatencySummary,
    pub hub_cpu_ms_per_query: Option<f64>,
    pub postgres_cpu_ms_per_query: Option<f64>,
}

impl SearchReport {
    /// The human-readable report.
    pub fn table(&self) -> String {
        let row = |name: &str, s: &LatencySummary| {
            format!(
                "{name:<22}p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2} ms  (n={})\n",
                s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.count
            )
        };
        let per_query = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2} ms"));
        let surname = if self.surname.count > 0 { row("  one surname", &self.surname) } else { String::new() };
        format!(
            "search\n------\nstored                {} messages in {} tickets of {} customers (filled in {:.1} s)\n\
             queries               {} ({} errors) in {:.1} s: {:.0}/s\n{}{}{}{}{}\
             cpu per query         hub {}  postgres {}\n",
            self.messages,
            self.tickets,
            self.customers,
            self.fill_secs,
            self.queries,
            self.errors,
            self.elapsed_secs,
            self.queries as f64 / self.elapsed_secs.max(1e-9),
            row("latency (all)", &self.all),
            row("  one common word", &self.common),
            row("  two common words", &self.two_words),
            row("  one order number", &self.rare),
            surname,
            per_query(self.hub_cpu_ms_per_query),
            per_query(self.postgres_cpu_ms_per_query),
        )
    }
}

/// A day in milliseconds.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The SQL that makes the monthly partitions of `ticket_events` from `start` to `end` (ms), as a hub
/// running all along would have made them: a history filled without them lands in the table's
/// default partition, which no deployment has.
pub(crate) fn months_sql(start: i64, end: i64) -> String {
    format!("SELECT ticket_events_add_months({start}, {});", (end - start) / (28 * DAY_MS) + 1)
}

/// The SQL that stores the history: `customers` named customers, `tickets` tickets theirs in turn,
/// opened evenly from `start` to `end` (ms), their messages a minute apart. Then a vacuum, which empties the text indexes' lists of
/// entries not yet merged, as autovacuum does for the months a running hub filled over time: each
/// search reads those lists whole, and a history stored at once leaves up to 4 MB in each month's.
fn fill_sql(messages: u64, tickets: u64, customers: u64, start: i64, end: i64) -> String {
    let customers = customers.max(1);
    let quoted = |names: &[&str]| names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
    let customer = |n: &str| format!("md5('load-customer-' || ({n}) % {customers})::uuid");
    let spacing = (end - start) / tickets.max(1) as i64;
    let per_ticket = messages.div_ceil(tickets.max(1)).max(1);
    let vocabulary: Vec<String> = WORDS.iter().map(|w| format!("'{w}'")).collect();
    let words: Vec<String> = (0..WORDS_PER_TEXT)
        .map(|k| format!("w[1 + ((hashint8(t::bigint * 1000003 + s * 101 + {k}) & 2147483647) % {})]", WORDS.len()))
        .collect();
    let text = format!("{} || ' tx' || (t * {per_ticket} + s)", words.join(" || ' ' || "));
    format!(
        "{months}
         BEGIN;
         INSERT INTO users (id, registered_at, name, search_name)
             SELECT {by_c}, 0, x.name, x.name
             FROM generate_series(0, {last}) AS c,
                  LATERAL (SELECT (ARRAY[{first}])[1 + c % 8] || ' ' || (ARRAY[{surnames}])[1 + (c / 8) % 8] AS name) AS x
             ON CONFLICT DO NOTHING;
         INSERT INTO tickets (id, user_id, subject, status, agent_id, open_client_msg_id, created_at, updated_at,
                              queued_at, last_seq, resolved_at)
             SELECT md5('load-ticket-' || t)::uuid, {by_t}, 'ticket ' || t, 'resolved',
                    NULL, 'load-' || t, {start} + t::bigint * {spacing}, {start} + t::bigint * {spacing} + {per_ticket} * 60000, NULL,
                    {per_ticket}, {start} + t::bigint * {spacing} + {per_ticket} * 60000
             FROM generate_series(1, {tickets}) AS t;
         INSERT INTO ticket_events (ticket_id, seq, kind, author_kind, author_id, body, created_at, search_text,
                                    search_vector)
             SELECT md5('load-ticket-' || t)::uuid, s, 'message', 'user', {by_t},
                    x.text, {start} + t::bigint * {spacing} + s * 60000, x.text, to_tsvector('simple', x.text)
             FROM generate_series(1, {tickets}) AS t, generate_series(1, {per_ticket}) AS s,
                  (SELECT ARRAY[{vocabulary}] AS w) AS v,
                  LATERAL (SELECT {text} AS text) AS x;
         COMMIT;
         VACUUM (ANALYZE) ticket_events;",
        vocabulary = vocabulary.join(", "),
        months = months_sql(start, end),
        by_c = customer("c"),
        by_t = customer("t"),
        last = customers - 1,
        first = quoted(&FIRST_NAMES),
        surnames = quoted(&SURNAMES),
    )
}

/// Runs `psql` on the hub's database with `sql`.
pub(crate) async fn psql(database_url: &str, sql: String) -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new("psql")
        .args([database_url, "-v", "ON_ERROR_STOP=1", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running psql (Debian's postgresql-client)")?;
    let mut stdin = child.stdin.take().context("psql stdin")?;
    tokio::io::AsyncWriteExt::write_all(&mut stdin, sql.as_bytes()).await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        bail!("psql failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

/// The `i`-th query and its kind (0 common, 1 two words, 2 rare, 3 a customer's surname, every
/// fifth when there are several customers).
fn query(i: u64, messages: u64, customers: u64) -> (usize, String) {
    let pick = |k: u64| WORDS[(k.wrapping_mul(2_654_435_761) % WORDS.len() as u64) as usize];
    if customers > 1 && i % 5 == 4 {
        return (3, SURNAMES[(i / 5 % 8) as usize].to_owned());
    }
    match i % 4 {
        0 | 1 => (0, pick(i).to_owned()),
        2 => (1, format!("{} {}", pick(i), pick(i / 7 + 3))),
        _ => (2, format!("TX{}", 1 + i.wrapping_mul(7_919) % messages.max(1))),
    }
}

/// The hubs of a scenario that fills their Postgres database itself: its URL, an HTTP client and
/// the hubs started (or named) by `hub`.
///
/// # Errors
/// No `--database-url`, or the hubs do not start.
pub(crate) async fn postgres_hubs(hub: &HubArgs, scenario: &str) -> anyhow::Result<(String, reqwest::Client, Cluster)> {
    let Some(database_url) = hub.database_url.clone() else {
        bail!("{scenario} fills a Postgres database: pass --database-url");
    };
    let http = reqwest::Client::builder().build()?;
    let hubs = Cluster::open(hub, &http).await?;
    Ok((database_url, http, hubs))
}

/// Fills the database, then searches.
pub async fn run(args: SearchArgs) -> anyhow::Result<SearchReport> {
    anyhow::ensure!(
        args.tickets >= 1 && args.queries >= 1 && args.concurrency >= 1 && args.days >= 2,
        "counts must be positive, days at least 2"
    );
    let (database_url, http, mut hubs) = postgres_hubs(&args.hub, "search").await?;
    let result = run_on(&args, &database_url, &http, &hubs).await;
    hubs.stop();
    result
}

async fn run_on(
    args: &SearchArgs,
    database_url: &str,
    http: &reqwest::Client,
    hubs: &Cluster,
) -> anyhow::Result<SearchReport> {
    let hub = hubs.first();
    eprintln!("search: storing {} messages in {} tickets of {} customers", args.messages, args.tickets, args.customers);
    let started = Instant::now();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    let (start, end) = (now - args.days * DAY_MS, now - DAY_MS);
    psql(database_url, fill_sql(args.messages, args.tickets, args.customers, start, end)).await?;
    let fill_secs = started.elapsed().as_secs_f64();
    eprintln!("search: stored in {fill_secs:.1} s; searching");
    let agents = signin::agents(None, &args.hub.hub_bin, hub, 1).await?;
    let token = signin::agent_login(http, &hub.base, &agents[0]).await.map_err(anyhow::Error::msg)?;
    let sources = crate::wire::source_ips(args.client.source_ips);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latencies =
        Arc::new(Mutex::new((Latency::default(), std::array::from_fn::<Latency, 4, _>(|_| Latency::default()))));
    let before = CpuSnapshot::take(&hubs.nodes);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.concurrency {
        let encoding = args.client.encoding.for_socket(c);
        let mut conn = Conn::open(hubs.addrs()[0], sources[c % sources.len()], encoding, &token, true)
            .await
            .map_err(|e| anyhow::anyhow!("agent socket: {e:?}"))?;
        let (next, errors, latencies) = (next.clone(), errors.clone(), latencies.clone());
        let (queries, messages, customers, limit) = (args.queries, args.messages, args.customers, args.limit);
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= queries {
                    return;
                }
                let (kind, text) = query(i, messages, customers);
                let sent = Instant::now();
                let reply =
                    conn.request("ticket.search", Body::Search { query: &text, limit }, &mut |_f: Frame| {}).await;
                let us = sent.elapsed().as_micros() as u64;
                match reply {
                    Ok(f) if f.kind == "ticket.search.ok" => {
                        let mut l = latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        l.0.record(us);
                        l.1[kind].record(us);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed_secs = started.elapsed().as_secs_f64();
    let cpu = before.until(&CpuSnapshot::take(&hubs.nodes));
    let l = latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let queries = args.queries;
    let per_query = |secs: Option<f64>| secs.map(|s| s * 1000.0 / queries as f64);
    Ok(SearchReport {
        messages: args.messages.div_ceil(args.tickets) * args.tickets,
        tickets: args.tickets,
        customers: args.customers.max(1),
        fill_secs,
        queries,
        errors: errors.load(Ordering::Relaxed),
        elapsed_secs,
        all: l.0.summary(),
        common: l.1[0].summary(),
        two_words: l.1[1].summary(),
        rare: l.1[2].summary(),
        surname: l.1[3].summary(),
        hub_cpu_ms_per_query: per_query(cpu.hub_s),
        postgres_cpu_ms_per_query: per_query(cpu.postgres_s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_mix_common_words_pairs_and_order_numbers() {
        let kinds: Vec<usize> = (0..8).map(|i| query(i, 1000, 1).0).collect();
        assert_eq!(kinds, [0, 0, 1, 2, 0, 0, 1, 2]);
        let kinds: Vec<usize> = (0..10).map(|i| query(i, 1000, 500).0).collect();
        assert_eq!(kinds, [0, 0, 1, 2, 3, 0, 1, 2, 0, 3], "with customers, every fifth is a surname");
        let (_, rare) = query(3, 1000, 1);
        let n: u64 = rare.trim_start_matches("TX").parse().unwrap();
        assert!((1..=1000).contains(&n));
    }

    #[test]
    fn the_fill_writes_every_message_once() {
        let sql = fill_sql(1_000, 300, 40, 0, 300 * 60 * DAY_MS);
        assert!(sql.contains("generate_series(1, 300) AS t, generate_series(1, 4) AS s"), "{sql}");
        assert!(sql.contains("generate_series(0, 39) AS c"), "forty customers: {sql}");
        assert_eq!(
            sql.matches("md5('load-customer-' || (t) % 40)::uuid").count(),
            2,
            "the tickets and their messages: {sql}"
        );
        assert!(sql.starts_with("SELECT ticket_events_add_months(0, 643);"), "a month for each 28 days: {sql}");
        assert!(sql.contains("0 + t::bigint * 5184000000 + s * 60000"), "tickets 60 days apart: {sql}");
        assert_eq!(sql.matches("hashint8").count(), WORDS_PER_TEXT);
    }
}
