//! The tests' Redis Clusters (see the `anapars-redis-cluster` crate): masters with a replica each,
//! whose failovers are quick, or one master alone; skipped where `redis-server` is not installed and
//! Redis tests are not asked for.

pub use anapars_redis_cluster::LocalCluster;
use anapars_redis_cluster::Options;

/// How long a silent master counts as alive (short, so that failovers are quick).
const NODE_TIMEOUT_MS: u32 = 1_000;

/// `masters` masters with one replica each, formed and every slot served; None when the binaries
/// are missing and Redis tests are not asked for.
///
/// # Panics
/// Redis tests are asked for and the cluster cannot be started or formed.
pub async fn start(masters: usize) -> Option<LocalCluster> {
    started(Options { masters, replicas: true, node_timeout_ms: Some(NODE_TIMEOUT_MS), cpu_share: None }).await
}

/// One master holding every slot, without a replica. None as for [`start`].
pub async fn lone() -> Option<LocalCluster> {
    started(Options { masters: 1, replicas: false, node_timeout_ms: Some(NODE_TIMEOUT_MS), cpu_share: None }).await
}

async fn started(options: Options) -> Option<LocalCluster> {
    if !binaries_present() {
        return None;
    }
    Some(LocalCluster::start(options).await.unwrap_or_else(|e| panic!("redis cluster {options:?}: {e:#}")))
}

/// Whether `redis-server` and `redis-cli` are installed; when Redis tests are asked for
/// (`TEST_REDIS_URL` or `TEST_DATABASE_URL` set), they must be.
fn binaries_present() -> bool {
    let present = anapars_redis_cluster::binaries_present();
    if !present {
        assert!(
            std::env::var_os(super::hub::TEST_REDIS_URL).is_none()
                && std::env::var_os(super::TEST_DATABASE_URL).is_none(),
            "redis-server and redis-cli are needed for the Redis Cluster tests"
        );
        eprintln!("redis-server or redis-cli missing: Redis Cluster tests skipped");
    }
    present
}
