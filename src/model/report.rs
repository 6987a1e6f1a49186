//! Reports for supervisors: what the team did in a time range, overall, per agent and per label.
//!
//! Each figure counts what happened inside the range, whenever the ticket was opened: a claim in
//! the range gives a queue wait, an agent's first message of a cycle a first response, a
//! resolution a resolution time (each measured from the opening or reopening that began the
//! cycle, which may lie before the range).

use crate::model::ids::{AgentId, LabelId};
use crate::model::time::Millis;
use serde::{Deserialize, Serialize};

/// How many times were measured, and their median and 90th percentile (nearest rank: the
/// smallest measured time that at least that share of the times do not exceed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durations {
    /// Times measured.
    pub count: u64,
    /// Median, in ms; `None` without any.
    pub p50_ms: Option<i64>,
    /// 90th percentile, in ms; `None` without any.
    pub p90_ms: Option<i64>,
}

impl Durations {
    /// The figures of these times (in any order).
    pub fn of(mut times: Vec<i64>) -> Self {
        times.sort_unstable();
        let rank = |p: usize| {
            // Nearest rank: ceil(p% of n), 1-based.
            let k = (p * times.len()).div_ceil(100).max(1);
            times.get(k - 1).copied()
        };
        Self { count: times.len() as u64, p50_ms: rank(50), p90_ms: rank(90) }
    }
}

/// The ratings of the resolutions in a range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RatingFigures {
    /// Resolutions in the range (each asked its user for a rating when ratings are on).
    pub requested: u64,
    /// Those of them rated.
    pub rated: u64,
    /// The mean score; `None` without ratings.
    pub average: Option<f64>,
    /// How many gave 1, 2, 3, 4 and 5.
    pub distribution: [u64; 5],
    /// `rated / requested`; `None` without resolutions.
    pub response_rate: Option<f64>,
}

/// What a report counts for one scope (the whole team, an agent, a label).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Tickets opened.
    pub opened: u64,
    /// Tickets reopened by their users (per agent: credited to the agent who had resolved them).
    pub reopened: u64,
    /// Tickets claimed from the queue (by an agent, or given to one by auto-assignment).
    pub claimed: u64,
    /// Resolutions.
    pub resolved: u64,
    /// From (re)opening to an agent's first message, credited to the agent who wrote it.
    pub first_response: Durations,
    /// From (re)opening to the claim, credited to the agent who got the ticket.
    pub queue_wait: Durations,
    /// From (re)opening to the resolution, credited to the agent who resolved it.
    pub resolution: Durations,
    /// Ratings of the resolutions, credited to the agent who resolved.
    pub ratings: RatingFigures,
}

/// One agent's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentFigures {
    /// The agent.
    pub agent_id: AgentId,
    /// Their name.
    pub name: String,
    /// What they did.
    pub figures: Figures,
}

/// One label's figures: of the tickets that carry it now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelFigures {
    /// The label.
    pub label_id: LabelId,
    /// Its name.
    pub name: String,
    /// Its colour.
    pub color: String,
    /// What happened to its tickets.
    pub figures: Figures,
}

/// A report over `[from, to)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Start of the range (included).
    pub from: Millis,
    /// End of the range (excluded).
    pub to: Millis,
    /// The whole team.
    pub overall: Figures,
    /// Every agent with anything counted, by name.
    pub agents: Vec<AgentFigures>,
    /// Every label of the team, in the team's order.
    pub labels: Vec<LabelFigures>,
}

#[cfg(test)]
mod tests {
    use super::Durations;

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(Durations::of(vec![]), Durations { count: 0, p50_ms: None, p90_ms: None });
        assert_eq!(Durations::of(vec![7]), Durations { count: 1, p50_ms: Some(7), p90_ms: Some(7) });
        let ten: Vec<i64> = (1..=10).rev().map(|s| s * 1000).collect();
        assert_eq!(Durations::of(ten), Durations { count: 10, p50_ms: Some(5000), p90_ms: Some(9000) });
        assert_eq!(Durations::of(vec![1, 2, 3]), Durations { count: 3, p50_ms: Some(2), p90_ms: Some(3) });
    }
}
