//! The audit log: who did what to which object, and when, for the operator, supervisors and the
//! person concerned. An entry holds ids, an action's name and small figures, never personal
//! content: no number, no name, no message text, no email.

use crate::model::time::Millis;
use serde::Serialize;
use uuid::Uuid;

/// Who acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// Someone with shell access running `anapars-hub` commands.
    Operator,
    /// A support agent (their id).
    Agent,
    /// An app's user (their id).
    User,
    /// The billing system, reporting purchases.
    Billing,
    /// The hub itself (auto-assignment).
    System,
}

impl ActorKind {
    /// The stored and exported name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Agent => "agent",
            Self::User => "user",
            Self::Billing => "billing",
            Self::System => "system",
        }
    }

    /// The kind a stored name stands for.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Operator, Self::Agent, Self::User, Self::Billing, Self::System].into_iter().find(|k| k.as_str() == s)
    }
}

/// What was done. The names are stable: dashboards and exports read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    /// An agent account was created.
    AgentAdded,
    /// An agent account was disabled.
    AgentDisabled,
    /// A disabled agent account was enabled.
    AgentEnabled,
    /// An agent was given a new password.
    AgentPasswordReset,
    /// An agent's name or capacity changed (the detail says which, not the name).
    AgentChanged,
    /// An agent was made a supervisor, or no longer one.
    AgentSupervisor,
    /// A ticket was claimed (by an agent, or by auto-assignment).
    TicketClaimed,
    /// A ticket was handed to another agent.
    TicketTransferred,
    /// A ticket was resolved.
    TicketResolved,
    /// A user's data was exported (by the user, or by an operator on their request).
    AccountExported,
    /// A user's account was deleted (the entry names no account: none is left to name).
    AccountDeleted,
    /// Billing reported a new purchase.
    PurchaseRecorded,
    /// Billing reported a change to a purchase (a refund, a cancellation, a renewal).
    PurchaseUpdated,
}

impl AuditAction {
    /// The stored and exported name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgentAdded => "agent.added",
            Self::AgentDisabled => "agent.disabled",
            Self::AgentEnabled => "agent.enabled",
            Self::AgentPasswordReset => "agent.password_reset",
            Self::AgentChanged => "agent.changed",
            Self::AgentSupervisor => "agent.supervisor",
            Self::TicketClaimed => "ticket.claimed",
            Self::TicketTransferred => "ticket.transferred",
            Self::TicketResolved => "ticket.resolved",
            Self::AccountExported => "account.exported",
            Self::AccountDeleted => "account.deleted",
            Self::PurchaseRecorded => "purchase.recorded",
            Self::PurchaseUpdated => "purchase.updated",
        }
    }

    /// The kind of object the action is on: the part of its name before the dot.
    #[must_use]
    pub fn object_kind(self) -> &'static str {
        object_of(self.as_str())
    }
}

/// The object kind of an action's name (`ticket` of `ticket.claimed`).
#[must_use]
pub fn object_of(action: &str) -> &str {
    action.split_once('.').map_or(action, |(object, _)| object)
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Time-ordered id (UUIDv7): entries are read in this order.
    pub id: Uuid,
    /// When.
    pub at: Millis,
    /// Who acted.
    pub actor: ActorKind,
    /// The acting agent's or user's id; none for the operator, billing and the hub.
    pub actor_id: Option<Uuid>,
    /// What, as [`AuditAction::as_str`] names it.
    pub action: String,
    /// On what kind of object (`agent`, `ticket`, `account`).
    pub object: String,
    /// The object's id (none for a deleted account).
    pub object_id: Option<Uuid>,
    /// The user an entry concerns besides its actor (a ticket's user), for their export.
    #[serde(skip)]
    pub user_id: Option<Uuid>,
    /// Small facts about the change: ids and figures only (`{"to": agent id}`, `{"capacity": 5}`).
    pub detail: Option<serde_json::Value>,
}

impl AuditEntry {
    /// A new entry at `at`.
    #[must_use]
    pub fn new(
        at: Millis,
        actor: ActorKind,
        actor_id: Option<Uuid>,
        action: AuditAction,
        object_id: Option<Uuid>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            at,
            actor,
            actor_id,
            action: action.as_str().to_owned(),
            object: action.object_kind().to_owned(),
            object_id,
            user_id: None,
            detail: None,
        }
    }

    /// With the user the entry concerns.
    #[must_use]
    pub fn concerning(mut self, user: Uuid) -> Self {
        self.user_id = Some(user);
        self
    }

    /// With facts about the change.
    #[must_use]
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_names_read_back() {
        for k in [ActorKind::Operator, ActorKind::Agent, ActorKind::User, ActorKind::Billing, ActorKind::System] {
            assert_eq!(ActorKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ActorKind::parse("nobody"), None);
    }
}
