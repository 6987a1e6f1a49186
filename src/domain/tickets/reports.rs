//! Reports for supervisors, and the support-time histograms on `/metrics`.
//!
//! Both read a ticket's life as a series of cycles: an opening or reopening, the claim, the first
//! message of an agent, the resolution. [`cycle_facts`] turns a ticket's events into what each
//! event measured; a report adds up the facts inside its range, and the hub observes the facts of
//! each claim and resolution as it happens.

use super::TicketDesk;
use crate::error::{Error, Result};
use crate::model::ids::{AgentId, LabelId, Principal, TicketId};
use crate::model::rating::SCORES;
use crate::model::report::{AgentFigures, Durations, Figures, LabelFigures, RatingFigures, Report};
use crate::model::ticket::{Author, EventKind, TicketEvent};
use crate::model::time::Millis;
use crate::ports::store::reports::ReportScope;
use std::collections::{BTreeMap, HashMap};

/// The longest range one report covers: a year (and a leap day).
pub const MAX_REPORT_DAYS: i64 = 366;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// What one event of a ticket measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fact {
    /// The ticket was opened.
    Opened { at: Millis },
    /// Its user reopened it; `resolver` had resolved it.
    Reopened { at: Millis, resolver: Option<AgentId> },
    /// `agent` got it from the queue after waiting `waited` ms.
    Claimed { at: Millis, agent: Option<AgentId>, waited: Option<i64> },
    /// `agent` wrote the cycle's first agent message, `took` ms after the (re)opening.
    FirstResponse { at: Millis, agent: AgentId, took: i64 },
    /// `agent` resolved it (the `resolved` event's `seq`), `took` ms after the (re)opening.
    Resolved { at: Millis, seq: u64, agent: Option<AgentId>, took: Option<i64> },
}

impl Fact {
    fn at(self) -> Millis {
        match self {
            Self::Opened { at }
            | Self::Reopened { at, .. }
            | Self::Claimed { at, .. }
            | Self::FirstResponse { at, .. }
            | Self::Resolved { at, .. } => at,
        }
    }
}

/// The facts of one ticket's events (by seq, as [`ReportScope`] reads them: state changes and the
/// first agent message after each opening), in order.
pub(crate) fn cycle_facts(events: &[TicketEvent]) -> Vec<Fact> {
    let (mut began, mut answered, mut resolver) = (None::<Millis>, false, None);
    let mut facts = Vec::with_capacity(events.len());
    for e in events {
        let agent = match e.author {
            Author::Agent(a) => Some(a),
            _ => None,
        };
        let since = |began: Option<Millis>| began.map(|b| e.created_at - b);
        match e.kind {
            EventKind::Opened => {
                (began, answered) = (Some(e.created_at), false);
                facts.push(Fact::Opened { at: e.created_at });
            }
            EventKind::Reopened => {
                (began, answered) = (Some(e.created_at), false);
                facts.push(Fact::Reopened { at: e.created_at, resolver });
            }
            EventKind::Claimed => {
                facts.push(Fact::Claimed { at: e.created_at, agent: e.agent_id, waited: since(began) });
            }
            EventKind::Message => {
                if let (Some(agent), Some(took), false) = (agent, since(began), answered) {
                    answered = true;
                    facts.push(Fact::FirstResponse { at: e.created_at, agent, took });
                }
            }
            EventKind::Transferred => {}
            EventKind::Resolved => {
                resolver = agent;
                facts.push(Fact::Resolved { at: e.created_at, seq: e.seq, agent, took: since(began) });
                began = None;
            }
        }
    }
    facts
}

/// Raw counts and times of one scope, before percentiles.
#[derive(Default)]
struct Tally {
    opened: u64,
    reopened: u64,
    claimed: u64,
    resolved: u64,
    first_response: Vec<i64>,
    queue_wait: Vec<i64>,
    resolution: Vec<i64>,
    scores: Vec<u8>,
}

impl Tally {
    fn add(&mut self, fact: Fact, score: Option<u8>) {
        match fact {
            Fact::Opened { .. } => self.opened += 1,
            Fact::Reopened { .. } => self.reopened += 1,
            Fact::Claimed { waited, .. } => {
                self.claimed += 1;
                self.queue_wait.extend(waited);
            }
            Fact::FirstResponse { took, .. } => self.first_response.push(took),
            Fact::Resolved { took, .. } => {
                self.resolved += 1;
                self.resolution.extend(took);
                self.scores.extend(score);
            }
        }
    }

    fn figures(self) -> Figures {
        let mut distribution = [0u64; 5];
        for s in &self.scores {
            distribution[usize::from(s - SCORES.start())] += 1;
        }
        let rated = self.scores.len() as u64;
        let sum: u64 = self.scores.iter().map(|s| u64::from(*s)).sum();
        Figures {
            opened: self.opened,
            reopened: self.reopened,
            claimed: self.claimed,
            resolved: self.resolved,
            first_response: Durations::of(self.first_response),
            queue_wait: Durations::of(self.queue_wait),
            resolution: Durations::of(self.resolution),
            ratings: RatingFigures {
                requested: self.resolved,
                rated,
                average: (rated > 0).then(|| sum as f64 / rated as f64),
                distribution,
                response_rate: (self.resolved > 0).then(|| rated as f64 / self.resolved as f64),
            },
        }
    }
}

/// The agent a fact is credited to.
fn credited(fact: Fact) -> Option<AgentId> {
    match fact {
        Fact::Opened { .. } => None,
        Fact::Reopened { resolver, .. } => resolver,
        Fact::Claimed { agent, .. } | Fact::Resolved { agent, .. } => agent,
        Fact::FirstResponse { agent, .. } => Some(agent),
    }
}

/// A report's figures before names are put to them.
#[derive(Debug, Default)]
pub struct Measured {
    /// The whole team.
    pub overall: Figures,
    /// Per agent credited with anything.
    pub agents: BTreeMap<AgentId, Figures>,
    /// Per label with anything on its tickets.
    pub labels: HashMap<LabelId, Figures>,
}

/// The figures of `[from, to)` from the events [`ReportScope`] reads (by ticket, then seq), the
/// tickets' labels and the ratings' scores by (ticket, resolution seq).
pub fn measure(
    events: &[TicketEvent],
    from: Millis,
    to: Millis,
    labels: &HashMap<TicketId, Vec<LabelId>>,
    scores: &HashMap<(TicketId, u64), u8>,
) -> Measured {
    let (mut overall, mut agents, mut by_label) = (Tally::default(), BTreeMap::new(), HashMap::new());
    for ticket in events.chunk_by(|a, b| a.ticket_id == b.ticket_id) {
        let id = ticket[0].ticket_id;
        for fact in cycle_facts(ticket).into_iter().filter(|f| (from..to).contains(&f.at())) {
            let score = match fact {
                Fact::Resolved { seq, .. } => scores.get(&(id, seq)).copied(),
                _ => None,
            };
            overall.add(fact, score);
            if let Some(agent) = credited(fact) {
                agents.entry(agent).or_insert_with(Tally::default).add(fact, score);
            }
            for label in labels.get(&id).into_iter().flatten() {
                by_label.entry(*label).or_insert_with(Tally::default).add(fact, score);
            }
        }
    }
    Measured {
        overall: overall.figures(),
        agents: agents.into_iter().map(|(a, t)| (a, t.figures())).collect(),
        labels: by_label.into_iter().map(|(l, t)| (l, t.figures())).collect(),
    }
}

impl TicketDesk {
    /// The team's report over `[from, to)` (at most a year), for supervisors.
    ///
    /// # Errors
    /// `forbidden` (users, agents who are not supervisors), `bad_request` (the range),
    /// `unavailable`.
    pub async fn report(&self, who: Principal, from: Millis, to: Millis) -> Result<Report> {
        crate::domain::agents::require_supervisor(self.agents.as_ref(), who).await?;
        if from < 0 || to <= from || to - from > MAX_REPORT_DAYS * DAY_MS {
            return Err(Error::BadRequest(format!(
                "the range must end after it starts and span at most {MAX_REPORT_DAYS} days"
            )));
        }
        let events = self.reports.report_events(ReportScope::Since(from)).await?;
        let mut tickets: Vec<TicketId> = events.iter().map(|e| e.ticket_id).collect();
        tickets.dedup();
        let labels: HashMap<TicketId, Vec<LabelId>> =
            self.labels.ticket_labels(&tickets).await?.into_iter().map(|t| (t.ticket_id, t.label_ids)).collect();
        let scores: HashMap<(TicketId, u64), u8> = self
            .ratings
            .ratings(&tickets)
            .await?
            .into_iter()
            .map(|r| ((r.ticket_id, r.resolution_seq), r.score))
            .collect();
        let Measured { overall, agents, labels: mut by_label } = measure(&events, from, to, &labels, &scores);
        let names: HashMap<AgentId, String> = self.agents.agents().await?.into_iter().map(|a| (a.id, a.name)).collect();
        let mut agents: Vec<AgentFigures> = agents
            .into_iter()
            .map(|(agent_id, figures)| AgentFigures {
                agent_id,
                name: names.get(&agent_id).cloned().unwrap_or_default(),
                figures,
            })
            .collect();
        agents.sort_by(|a, b| a.name.cmp(&b.name).then(a.agent_id.cmp(&b.agent_id)));
        let labels = self
            .labels
            .labels()
            .await?
            .into_iter()
            .map(|l| LabelFigures {
                figures: by_label.remove(&l.id).unwrap_or_default(),
                label_id: l.id,
                name: l.name,
                color: l.color,
            })
            .collect();
        Ok(Report { from, to, overall, agents, labels })
    }

    /// Observes the support times a claim or resolution of `ticket` completed (the histograms
    /// of `/metrics`), off the request's path.
    pub(super) fn observe_support_times(&self, ticket: TicketId, kind: EventKind) {
        if !matches!(kind, EventKind::Claimed | EventKind::Resolved) {
            return;
        }
        let reports = self.reports.clone();
        tokio::spawn(async move {
            let Ok(events) = reports.report_events(ReportScope::Ticket(ticket)).await else { return };
            let facts = cycle_facts(&events);
            let seconds = |ms: i64| ms as f64 / 1000.0;
            // The newest fact of this kind, not the newest fact: by the time the events are read a
            // reply may follow the claim.
            let newest = facts.iter().rposition(|f| match kind {
                EventKind::Claimed => matches!(f, Fact::Claimed { .. }),
                _ => matches!(f, Fact::Resolved { .. }),
            });
            let Some(at) = newest else { return };
            match &facts[at] {
                Fact::Claimed { waited: Some(w), .. } => {
                    metrics::histogram!(crate::metrics::QUEUE_WAIT).record(seconds(*w));
                }
                Fact::Resolved { took, .. } => {
                    if let Some(t) = took {
                        metrics::histogram!(crate::metrics::RESOLUTION).record(seconds(*t));
                    }
                    let cycle = facts[..at].iter().rev().take_while(|f| !matches!(f, Fact::Resolved { .. }));
                    for f in cycle {
                        if let Fact::FirstResponse { took, .. } = f {
                            metrics::histogram!(crate::metrics::FIRST_RESPONSE).record(seconds(*took));
                        }
                    }
                }
                _ => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::UserId;

    const MIN: i64 = 60_000;

    fn event(seq: u64, kind: EventKind, author: Author, agent_id: Option<AgentId>, at: i64) -> TicketEvent {
        TicketEvent {
            ticket_id: TicketId(uuid::Uuid::from_u128(1)),
            seq,
            kind,
            author,
            body: None,
            client_msg_id: None,
            agent_id,
            attachments: Vec::new(),
            created_at: at,
        }
    }

    /// A ticket opened at 0, claimed by Sara at 5 min, transferred to Reza at 8 (Sara never wrote),
    /// answered by Reza at 12, resolved by him at 30; reopened at 100, claimed by Sara at 101,
    /// answered at 104, resolved at 110.
    fn story() -> (Vec<TicketEvent>, AgentId, AgentId) {
        let (sara, reza) = (AgentId(uuid::Uuid::from_u128(10)), AgentId(uuid::Uuid::from_u128(11)));
        let user = Author::User(UserId(uuid::Uuid::from_u128(20)));
        let events = vec![
            event(1, EventKind::Opened, user, None, 0),
            event(3, EventKind::Claimed, Author::Agent(sara), Some(sara), 5 * MIN),
            event(4, EventKind::Transferred, Author::Agent(sara), Some(reza), 8 * MIN),
            event(6, EventKind::Message, Author::Agent(reza), None, 12 * MIN),
            event(9, EventKind::Resolved, Author::Agent(reza), None, 30 * MIN),
            event(10, EventKind::Reopened, user, None, 100 * MIN),
            event(12, EventKind::Claimed, Author::System, Some(sara), 101 * MIN),
            event(13, EventKind::Message, Author::Agent(sara), None, 104 * MIN),
            event(16, EventKind::Resolved, Author::Agent(sara), None, 110 * MIN),
        ];
        (events, sara, reza)
    }

    #[test]
    fn the_answering_agent_is_credited_after_a_transfer_and_a_reopen_starts_a_new_cycle() {
        let (events, sara, reza) = story();
        assert_eq!(
            cycle_facts(&events),
            [
                Fact::Opened { at: 0 },
                Fact::Claimed { at: 5 * MIN, agent: Some(sara), waited: Some(5 * MIN) },
                Fact::FirstResponse { at: 12 * MIN, agent: reza, took: 12 * MIN },
                Fact::Resolved { at: 30 * MIN, seq: 9, agent: Some(reza), took: Some(30 * MIN) },
                Fact::Reopened { at: 100 * MIN, resolver: Some(reza) },
                Fact::Claimed { at: 101 * MIN, agent: Some(sara), waited: Some(MIN) },
                Fact::FirstResponse { at: 104 * MIN, agent: sara, took: 4 * MIN },
                Fact::Resolved { at: 110 * MIN, seq: 16, agent: Some(sara), took: Some(10 * MIN) },
            ]
        );
    }

    #[test]
    fn a_range_counts_what_happened_inside_it_measured_from_the_cycles_start() {
        let (events, sara, reza) = story();
        let t = events[0].ticket_id;
        let label = LabelId(uuid::Uuid::from_u128(30));
        let labels = HashMap::from([(t, vec![label])]);
        let scores = HashMap::from([((t, 9), 2), ((t, 16), 5)]);

        // From minute 10: Reza's answer and resolution, the reopen, and the second cycle.
        let Measured { overall, agents, labels: by_label } = measure(&events, 10 * MIN, 200 * MIN, &labels, &scores);
        assert_eq!((overall.opened, overall.reopened, overall.claimed, overall.resolved), (0, 1, 1, 2));
        assert_eq!(overall.first_response, Durations { count: 2, p50_ms: Some(4 * MIN), p90_ms: Some(12 * MIN) });
        assert_eq!(overall.queue_wait, Durations { count: 1, p50_ms: Some(MIN), p90_ms: Some(MIN) });
        assert_eq!(overall.resolution, Durations { count: 2, p50_ms: Some(10 * MIN), p90_ms: Some(30 * MIN) });
        assert_eq!(overall.ratings.distribution, [0, 1, 0, 0, 1]);
        assert_eq!((overall.ratings.average, overall.ratings.response_rate), (Some(3.5), Some(1.0)));
        let reza_figures = agents[&reza];
        assert_eq!((reza_figures.reopened, reza_figures.resolved, reza_figures.claimed), (1, 1, 0));
        assert_eq!(reza_figures.first_response.p50_ms, Some(12 * MIN), "credited to who answered, not who claimed");
        assert_eq!(reza_figures.ratings.average, Some(2.0));
        let sara_figures = agents[&sara];
        assert_eq!((sara_figures.claimed, sara_figures.resolved), (1, 1));
        assert_eq!(sara_figures.resolution.p50_ms, Some(10 * MIN), "measured from the reopening");
        assert_eq!(by_label.get(&label).map(|f| f.resolved), Some(2));

        // Before minute 10: the opening and Sara's claim only.
        let Measured { overall, agents, .. } = measure(&events, 0, 10 * MIN, &labels, &HashMap::new());
        assert_eq!((overall.opened, overall.claimed, overall.resolved, overall.first_response.count), (1, 1, 0, 0));
        assert_eq!(overall.ratings.response_rate, None);
        assert_eq!(agents.keys().copied().collect::<Vec<_>>(), [sara]);
    }

    #[test]
    fn a_resolution_without_an_agent_message_has_no_first_response() {
        let sara = AgentId(uuid::Uuid::from_u128(10));
        let user = Author::User(UserId(uuid::Uuid::from_u128(20)));
        let events = vec![
            event(1, EventKind::Opened, user, None, 0),
            event(3, EventKind::Claimed, Author::Agent(sara), Some(sara), MIN),
            event(4, EventKind::Resolved, Author::Agent(sara), None, 2 * MIN),
            event(5, EventKind::Reopened, user, None, 3 * MIN),
            event(7, EventKind::Claimed, Author::Agent(sara), Some(sara), 4 * MIN),
            // The store returns the first agent message after each opening once: this one.
            event(8, EventKind::Message, Author::Agent(sara), None, 6 * MIN),
        ];
        let firsts: Vec<Fact> =
            cycle_facts(&events).into_iter().filter(|f| matches!(f, Fact::FirstResponse { .. })).collect();
        assert_eq!(firsts, [Fact::FirstResponse { at: 6 * MIN, agent: sara, took: 3 * MIN }]);
    }
}
