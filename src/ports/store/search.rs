//! The storage port for agents' search over tickets.

use crate::error::Result;
use crate::model::search::{SearchHit, SearchQuery};
use async_trait::async_trait;

/// The search index over the tickets' texts.
#[async_trait]
pub trait Search: Send + Sync {
    /// Messages and subjects matching `query`, best first (ties: newest first), from `offset`, at
    /// most `limit`.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>>;

    /// Tickets whose customer's folded name has every word of `query` (each as a word or the
    /// beginning of one), most recently active first, at most `query.limit`; each hit's body is
    /// the name.
    async fn search_customers(&self, query: &SearchQuery) -> Result<Vec<SearchHit>>;

    /// Indexes up to `limit` texts stored before the index existed, and folds up to `limit`
    /// customers' names set before names were searchable; how many it did (0: none left).
    async fn index_unsearched(&self, limit: u32) -> Result<u64>;
}
