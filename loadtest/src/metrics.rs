//! What a hub says about itself: its `/metrics` page (the Prometheus text format) parsed, the
//! group-commit batch sizes between two readings, and one node's CPU and memory at one moment
//! (from `/metrics` and, where the pid is known, `/proc`).

use std::collections::BTreeMap;

/// `process_cpu_seconds_total` in the hub's `/metrics` (absent on older hubs).
const CPU_METRIC: &str = "process_cpu_seconds_total";
/// `process_resident_memory_bytes` in the hub's `/metrics` (absent on older hubs).
const RSS_METRIC: &str = "process_resident_memory_bytes";

/// One sample of the Prometheus text format.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels in order.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

/// A parsed `/metrics` page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics(pub Vec<Sample>);

impl Metrics {
    /// Parses the Prometheus text format (comments and malformed lines are skipped).
    pub fn parse(text: &str) -> Self {
        Self(text.lines().filter_map(parse_sample).collect())
    }

    /// The sum of every sample of `name` (all label sets).
    pub fn sum(&self, name: &str) -> f64 {
        self.0.iter().filter(|s| s.name == name).map(|s| s.value).sum()
    }

    /// Samples of `name` by the value of `label`, summed over other labels.
    pub fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.0.iter().filter(|s| s.name == name) {
            if let Some((_, v)) = s.labels.iter().find(|(k, _)| k == label) {
                *out.entry(v.clone()).or_default() += s.value;
            }
        }
        out
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (head, value) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            let labels = parse_labels(&line[open + 1..close])?;
            let value = line[close + 1..].split_whitespace().next()?;
            ((line[..open].to_owned(), labels), value)
        }
        None => {
            let mut parts = line.split_whitespace();
            let name = parts.next()?;
            ((name.to_owned(), Vec::new()), parts.next()?)
        }
    };
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample { name: head.0, labels: head.1, value })
}

fn parse_labels(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key, value));
        rest = after[end? + 1..].trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

/// The group-commit batch sizes between two `/metrics` readings.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct BatchSizes {
    /// Batches committed.
    pub batches: f64,
    /// Messages in them.
    pub messages: f64,
    /// Mean messages per batch.
    pub mean: f64,
    /// Batches per bucket of the hub's histogram (each bucket alone, not cumulative).
    pub buckets: Vec<Bucket>,
    /// Messages planned again because their ticket changed under their batch (Postgres), and of
    /// those, the ones then stored under row locks (`hub_message_replans_total`).
    pub replanned: f64,
    /// See `replanned`.
    pub locked: f64,
}

/// One histogram bucket.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Bucket {
    /// Upper bound as the hub wrote it (`+Inf` for the last).
    pub le: String,
    /// Batches with a size above the previous bound and up to this one.
    pub batches: f64,
}

/// The `hub_message_batch_size` histogram's growth from `before` to `after`.
pub fn batch_sizes(before: &Metrics, after: &Metrics) -> BatchSizes {
    const NAME: &str = "hub_message_batch_size";
    let delta = |suffix: &str| after.sum(&format!("{NAME}{suffix}")) - before.sum(&format!("{NAME}{suffix}"));
    let batches = delta("_count");
    let messages = delta("_sum");
    let cumulative = |m: &Metrics| -> BTreeMap<String, f64> { m.by_label(&format!("{NAME}_bucket"), "le") };
    let (b, a) = (cumulative(before), cumulative(after));
    let mut bounds: Vec<(f64, &String, f64)> = a
        .iter()
        .filter_map(|(le, v)| {
            let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((bound, le, v - b.get(le).copied().unwrap_or(0.0)))
        })
        .collect();
    bounds.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut previous = 0.0;
    let buckets = bounds
        .into_iter()
        .map(|(_, le, c)| {
            let own = c - previous;
            previous = c;
            Bucket { le: le.clone(), batches: own }
        })
        .filter(|b| b.batches > 0.0)
        .collect();
    let replans = |way: &str| {
        let count = |m: &Metrics| m.by_label("hub_message_replans_total", "way").get(way).copied().unwrap_or(0.0);
        count(after) - count(before)
    };
    BatchSizes {
        batches,
        messages,
        mean: if batches > 0.0 { messages / batches } else { 0.0 },
        buckets,
        replanned: replans("checked"),
        locked: replans("locked"),
    }
}

/// The hubs' push figures at one moment: queue depth (the highest any node reports: every node
/// reads the shared queue, each at its own time) and pushes sent (all nodes).
pub fn push_gauges(pages: &[Metrics]) -> (Option<f64>, Option<f64>) {
    let has = |m: &Metrics, name: &str| m.0.iter().any(|s| s.name == name);
    let depth =
        pages.iter().filter(|m| has(m, "hub_push_queue_depth")).map(|m| m.sum("hub_push_queue_depth")).reduce(f64::max);
    let sent = pages
        .iter()
        .any(|m| has(m, "hub_push_sent_total"))
        .then(|| pages.iter().map(|m| m.sum("hub_push_sent_total")).sum());
    (depth, sent)
}

/// `hub_push_failed_total` by reason, summed over the nodes.
pub fn push_failures(pages: &[Metrics]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for page in pages {
        for (reason, v) in page.by_label("hub_push_failed_total", "reason") {
            *out.entry(reason).or_default() += v;
        }
    }
    out
}

/// What one node says about itself at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NodeSnapshot {
    /// `process_cpu_seconds_total`, when exported.
    pub metrics_cpu_s: Option<f64>,
    /// `process_resident_memory_bytes`, when exported.
    pub metrics_rss_bytes: Option<f64>,
    /// CPU seconds from `/proc/<pid>/stat`, when the pid is known.
    pub proc_cpu_s: Option<f64>,
    /// VmRSS in KiB from `/proc/<pid>/status`, when the pid is known.
    pub proc_rss_kib: Option<u64>,
}

impl NodeSnapshot {
    /// From a `/metrics` page and the `/proc` readings.
    pub fn new(metrics: &Metrics, proc_cpu_s: Option<f64>, proc_rss_kib: Option<u64>) -> Self {
        let one = |name: &str| metrics.0.iter().any(|s| s.name == name).then(|| metrics.sum(name));
        Self { metrics_cpu_s: one(CPU_METRIC), metrics_rss_bytes: one(RSS_METRIC), proc_cpu_s, proc_rss_kib }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP hub_connections open WebSocket connections
# TYPE hub_connections gauge
hub_connections 5000
hub_errors_total{code="overloaded"} 3
hub_errors_total{code="rate_limited"} 2
hub_message_batch_size_bucket{le="1"} 10
hub_message_batch_size_bucket{le="2.5"} 15
hub_message_batch_size_bucket{le="10"} 40
hub_message_batch_size_bucket{le="+Inf"} 50
hub_message_batch_size_sum 900
hub_message_batch_size_count 50
odd{a="x, \"y\"",b="z"} 1.5
"#;

    #[test]
    fn prometheus_text_is_parsed() {
        let m = Metrics::parse(PAGE);
        assert_eq!(m.sum("hub_connections"), 5000.0);
        assert_eq!(m.sum("hub_errors_total"), 5.0);
        assert_eq!(m.by_label("hub_errors_total", "code").get("overloaded"), Some(&3.0));
        let odd = m.0.iter().find(|s| s.name == "odd").unwrap();
        assert_eq!(odd.labels, vec![("a".into(), "x, \"y\"".into()), ("b".into(), "z".into())]);
        assert_eq!(Metrics::parse("garbage line here\n{}").0.len(), 0);
    }

    #[test]
    fn batch_sizes_are_the_growth_between_two_readings() {
        let before: String = ["1", "2.5", "10", "+Inf"]
            .iter()
            .map(|le| format!("hub_message_batch_size_bucket{{le=\"{le}\"}} 4\n"))
            .chain(["hub_message_batch_size_sum 4\nhub_message_batch_size_count 4\n".to_owned()])
            .collect();
        let before = Metrics::parse(&before);
        let after = Metrics::parse(PAGE);
        let b = batch_sizes(&before, &after);
        assert_eq!((b.batches, b.messages), (46.0, 896.0));
        assert!((b.mean - 896.0 / 46.0).abs() < 1e-9);
        let own: Vec<(&str, f64)> = b.buckets.iter().map(|b| (b.le.as_str(), b.batches)).collect();
        assert_eq!(own, vec![("1", 6.0), ("2.5", 5.0), ("10", 25.0), ("+Inf", 10.0)]);
        assert_eq!(batch_sizes(&Metrics::default(), &Metrics::default()).mean, 0.0);
    }

    #[test]
    fn push_gauges_read_every_node() {
        let a = Metrics::parse("hub_push_queue_depth 12\nhub_push_sent_total{provider=\"webpush\"} 100\n");
        let b = Metrics::parse("hub_push_queue_depth 15\nhub_push_sent_total{provider=\"webpush\"} 40\nhub_push_sent_total{provider=\"fcm\"} 2\n");
        assert_eq!(push_gauges(&[a.clone(), b.clone()]), (Some(15.0), Some(142.0)));
        assert_eq!(push_gauges(&[Metrics::default()]), (None, None), "a hub without push metrics says nothing");
        let failed = Metrics::parse(
            "hub_push_failed_total{provider=\"webpush\",reason=\"status_503\"} 3\nhub_push_failed_total{provider=\"any\",reason=\"trigger_full\"} 2\n",
        );
        let by_reason = push_failures(&[failed.clone(), failed]);
        assert_eq!(by_reason.get("status_503"), Some(&6.0));
        assert_eq!(by_reason.get("trigger_full"), Some(&4.0));
    }
}
