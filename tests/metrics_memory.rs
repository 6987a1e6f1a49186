//! The hub's metrics hold bounded memory when nobody reads `/metrics`: the Prometheus exporter keeps
//! every histogram sample until it folds them into buckets, and a node that is never scraped must
//! still fold them. A binary of its own, so that the allocator's figures count only this test.

use std::time::{Duration, Instant};

/// The hub's own allocator, whose statistics count the bytes in live allocations.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Bytes in live allocations now.
fn live() -> isize {
    tikv_jemalloc_ctl::epoch::advance().expect("jemalloc epoch");
    tikv_jemalloc_ctl::stats::allocated::read().expect("jemalloc stats.allocated") as isize
}

/// Records `per_step` samples every 20 ms until `until`; how many it recorded.
fn record_until(histogram: &metrics::Histogram, until: Instant, per_step: u64) -> u64 {
    let mut recorded = 0;
    while Instant::now() < until {
        for i in 0..per_step {
            histogram.record(i as f64 * 1e-6);
        }
        recorded += per_step;
        std::thread::sleep(Duration::from_millis(20));
    }
    recorded
}

#[test]
fn histogram_samples_recorded_without_a_scrape_do_not_accumulate() {
    anapars_hub::metrics::prometheus();
    let histogram = metrics::histogram!(anapars_hub::metrics::WS_LATENCY, "type" => "ticket.send");
    let every = anapars_hub::metrics::HISTOGRAM_UPKEEP;
    // A steady load for three folds, then the live bytes; the same load for six more, then again.
    let start = Instant::now();
    record_until(&histogram, start + every * 3, 20_000);
    let before = live();
    let recorded = record_until(&histogram, start + every * 9, 20_000);
    let grown = live() - before;
    // Kept, the samples of the second stretch would hold at least 8 bytes each (about 20 with
    // their blocks); folded, what is live stays near one fold's worth, wherever the two measures
    // fall between folds.
    let kept = 8 * recorded as isize;
    assert!(recorded >= 1_000_000, "the load recorded only {recorded} samples: too few to tell");
    assert!(
        grown < kept / 2,
        "{grown} bytes more live after {recorded} samples ({kept} bytes if every sample were kept)"
    );
}
