//! Labels on tickets. Supervisors keep the team's list; every agent puts labels on tickets and
//! takes them off, lists the queue by one, and the console shows them. Users never see labels:
//! every change goes only to agents' sockets.

use super::TicketDesk;
use crate::error::{Error, Result};
use crate::model::event::Event;
use crate::model::ids::{LabelId, Principal, TicketId};
use crate::model::label::{is_color, Label, LabelWrite, TicketLabelled, TicketLabels, MAX_LABELS, MAX_LABEL_CHARS};
use crate::model::text::fold;
use crate::model::ticket::{Ticket, TicketStatus};
use crate::model::time::now_ms;
use crate::ports::broker::Audience;

/// A label's name as given: trimmed, 1 to [`MAX_LABEL_CHARS`] characters.
fn label_name(name: &str) -> Result<String> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_LABEL_CHARS {
        return Err(Error::BadRequest(format!("name must be 1 to {MAX_LABEL_CHARS} characters")));
    }
    Ok(name.to_owned())
}

fn label_color(color: &str) -> Result<String> {
    if !is_color(color) {
        return Err(Error::BadRequest("color must be #rrggbb".into()));
    }
    Ok(color.to_ascii_lowercase())
}

impl TicketDesk {
    /// The team's labels, oldest first (agents only).
    ///
    /// # Errors
    /// `forbidden` for users, `unavailable`.
    pub async fn labels(&self, who: Principal) -> Result<Vec<Label>> {
        if !matches!(who, Principal::Agent(_)) {
            return Err(Error::Forbidden);
        }
        self.labels.labels().await
    }

    /// Errors unless `who` is a supervisor.
    async fn supervisor(&self, who: Principal) -> Result<()> {
        crate::domain::agents::require_supervisor(self.agents.as_ref(), who).await
    }

    /// Adds a label to the team's list (supervisors) and returns the list; every agent hears of it.
    ///
    /// # Errors
    /// `forbidden` (not a supervisor), `bad_request` (name, colour, too many labels), `conflict` (a
    /// label of that name, also in another spelling of the same letters), `unavailable`.
    pub async fn create_label(&self, who: Principal, name: &str, color: &str) -> Result<Vec<Label>> {
        self.supervisor(who).await?;
        let label = Label {
            id: LabelId::generate(),
            name: label_name(name)?,
            color: label_color(color)?,
            created_at: now_ms(),
        };
        if self.labels.labels().await?.len() >= MAX_LABELS {
            return Err(Error::BadRequest(format!("a hub keeps at most {MAX_LABELS} labels")));
        }
        self.written(self.labels.create_label(&label, &fold(&label.name)).await?).await
    }

    /// Renames or recolours a label (supervisors); absent fields stay.
    ///
    /// # Errors
    /// As [`TicketDesk::create_label`], and `not_found`.
    pub async fn update_label(
        &self,
        who: Principal,
        id: LabelId,
        name: Option<&str>,
        color: Option<&str>,
    ) -> Result<Vec<Label>> {
        self.supervisor(who).await?;
        let current = self.labels.labels().await?.into_iter().find(|l| l.id == id).ok_or(Error::NotFound("label"))?;
        let label = Label {
            name: name.map(label_name).transpose()?.unwrap_or(current.name),
            color: color.map(label_color).transpose()?.unwrap_or(current.color),
            ..current
        };
        self.written(self.labels.update_label(&label, &fold(&label.name)).await?).await
    }

    /// Deletes a label (supervisors): it leaves every ticket.
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `unavailable`.
    pub async fn delete_label(&self, who: Principal, id: LabelId) -> Result<Vec<Label>> {
        self.supervisor(who).await?;
        if !self.labels.delete_label(id).await? {
            return Err(Error::NotFound("label"));
        }
        self.announce_labels().await
    }

    async fn written(&self, write: LabelWrite) -> Result<Vec<Label>> {
        match write {
            LabelWrite::Stored(_) => self.announce_labels().await,
            LabelWrite::NameTaken => Err(Error::Conflict("a label of that name exists")),
            LabelWrite::NotFound => Err(Error::NotFound("label")),
        }
    }

    /// The list after a change, told to every agent.
    async fn announce_labels(&self) -> Result<Vec<Label>> {
        let labels = self.labels.labels().await?;
        self.broker.publish(&Audience::AGENTS, Event::LabelsUpdated(labels.clone()));
        Ok(labels)
    }

    /// Puts a label on a ticket or takes it off (any agent, any ticket) and returns the ticket's
    /// labels; every agent hears of the change.
    ///
    /// # Errors
    /// `forbidden` for users, `not_found` (ticket, label), `unavailable`.
    pub async fn label_ticket(
        &self,
        who: Principal,
        ticket: TicketId,
        label: LabelId,
        on: bool,
    ) -> Result<TicketLabels> {
        let Principal::Agent(agent) = who else { return Err(Error::Forbidden) };
        match self.labels.label_ticket(ticket, label, on, agent, now_ms()).await? {
            TicketLabelled::Labels(label_ids) => {
                let labelled = TicketLabels { ticket_id: ticket, label_ids };
                self.broker.publish(&Audience::AGENTS, Event::TicketLabels(labelled.clone()));
                Ok(labelled)
            }
            TicketLabelled::NoTicket => Err(Error::NotFound("ticket")),
            TicketLabelled::NoLabel => Err(Error::NotFound("label")),
        }
    }

    /// A ticket list as [`TicketDesk::list`] gives it, with, for agents, the labels of the listed
    /// tickets, and only those with `label` when given.
    ///
    /// # Errors
    /// As [`TicketDesk::list`]; `forbidden` for a user who names a label.
    pub async fn list_labelled(
        &self,
        who: Principal,
        status: Option<TicketStatus>,
        mine: bool,
        label: Option<LabelId>,
    ) -> Result<(Vec<Ticket>, Option<Vec<TicketLabels>>)> {
        if matches!(who, Principal::User(_)) {
            if label.is_some() {
                return Err(Error::Forbidden);
            }
            return Ok((self.list(who, status, mine).await?, None));
        }
        let mut tickets = self.list(who, status, mine).await?;
        let ids: Vec<TicketId> = tickets.iter().map(|t| t.id).collect();
        let mut labels = self.labels.ticket_labels(&ids).await?;
        if let Some(label) = label {
            labels.retain(|t| t.label_ids.contains(&label));
            tickets.retain(|t| labels.iter().any(|l| l.ticket_id == t.id));
        }
        Ok((tickets, Some(labels)))
    }
}
