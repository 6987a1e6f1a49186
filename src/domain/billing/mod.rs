//! Purchases and subscriptions: what each account paid for, as the group's billing system reports
//! it, server to server.
//!
//! - Billing POSTs each purchase, refund, cancellation and renewal, signed with `billing_secret`
//!   ([`signature`]); the signature is checked before the body is read ([`report`]).
//! - A replayed request does nothing: its timestamp must be within `billing_tolerance_secs`, and
//!   within that window storage applies reports idempotently on their `reference`, as a monotone
//!   state machine (`crate::ports::store::purchases`), so the same or an older report cannot undo a newer one.
//! - A new or changed purchase reaches every socket of its buyer at once (`purchase.updated`), so an
//!   app unlocks without polling; users list theirs with `purchase.list` or `GET /v1/me/purchases`.
//! - Purchases are deleted with the account (the policy of issue 8): the table cascades on the user.

pub(crate) mod report;
pub(crate) mod rules;
pub(crate) mod signature;

use crate::config::{Config, Secret};
use crate::error::{Error, Result};
use crate::model::event::Event;
use crate::model::ids::{Principal, UserId};
use crate::model::purchase::{Purchase, Recorded};
use crate::model::time::now_ms;
use crate::ports::broker::{Audience, Broker};
use crate::ports::store::purchases::Purchases;
use std::sync::Arc;

/// The purchases service.
pub struct BillingDesk {
    store: Arc<dyn Purchases>,
    audit: Arc<dyn crate::ports::store::audit::Audit>,
    broker: Arc<dyn Broker>,
    /// `None`: billing reports are refused with `forbidden`.
    secret: Option<Secret>,
    tolerance_secs: u64,
}

impl BillingDesk {
    /// The service over `store`, telling sockets through `broker`.
    pub fn new(
        store: Arc<dyn Purchases>,
        audit: Arc<dyn crate::ports::store::audit::Audit>,
        broker: Arc<dyn Broker>,
        config: &Config,
    ) -> Self {
        Self {
            store,
            audit,
            broker,
            secret: config.billing_secret.clone(),
            tolerance_secs: config.billing_tolerance_secs,
        }
    }

    /// Takes one report from billing: `signature` is the `Anapars-Signature` header, `body` the raw
    /// request body (or why it could not be read).
    ///
    /// # Errors
    /// `forbidden` (no `billing_secret`), `too_large` (from `body`), `bad_signature`,
    /// `stale_signature`, `bad_request`, `not_found` ("user"), `conflict`, `unavailable`.
    pub async fn receive(&self, signature: Option<&[u8]>, body: Result<bytes::Bytes>) -> Result<Recorded> {
        let secret = self.secret.as_ref().ok_or(Error::Forbidden)?;
        let body = body?;
        let now = now_ms();
        let checked = signature::verify(secret.0.as_bytes(), signature, &body, now / 1000, self.tolerance_secs);
        if let Err(e) = &checked {
            // Neither the header nor the body: an attacker's input, and a signature is a credential.
            tracing::warn!(error = %e, "billing report refused");
        }
        checked?;
        let report = report::parse(&body)?;
        let recorded = self.store.record_purchase(&report, now).await;
        match &recorded {
            Ok(r) => {
                tracing::info!(reference = %report.reference, user_id = %report.user_id, outcome = r.outcome(), "purchase report recorded")
            }
            Err(e) => {
                tracing::warn!(reference = %report.reference, user_id = %report.user_id, error = %e, "purchase report refused")
            }
        }
        let recorded = recorded?;
        if let Recorded::Created(p) | Recorded::Updated(p) = &recorded {
            use crate::model::audit::{ActorKind, AuditAction, AuditEntry};
            let action = if matches!(recorded, Recorded::Created(_)) {
                AuditAction::PurchaseRecorded
            } else {
                AuditAction::PurchaseUpdated
            };
            let entry = AuditEntry::new(now, ActorKind::Billing, None, action, Some(p.id.0)).concerning(p.user_id.0);
            crate::domain::audit::record(self.audit.as_ref(), &entry).await;
            let principals = [Principal::User(p.user_id)];
            let event = Event::PurchaseUpdated { purchase: p.clone(), at: now_ms() };
            self.broker.publish(&Audience { principals: &principals, ..Default::default() }, event);
        }
        Ok(recorded)
    }

    /// The user's purchases, newest first.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn purchases(&self, user: UserId) -> Result<Vec<Purchase>> {
        self.store.purchases(user).await
    }
}
