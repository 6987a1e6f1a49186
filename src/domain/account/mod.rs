//! Users' rights over their account: confirm what is kept (the export, written by the gateway's
//! `http::export`), correct it (the number change is in [`crate::domain::auth`]; name, image,
//! settings and consent have their own requests), and delete it.
//!
//! Deletion takes two steps. The user asks; the hub answers with what will be lost (paid
//! activations and active subscriptions above all: the policy says their fees go with the account) and a confirmation that works for
//! [`CONFIRMATION_TTL`]. Confirming deletes the account and everything kept about it in one
//! transaction (see [`crate::ports::store::account::AccountRecords::delete_account`]), then removes what
//! lives outside the database: the image file, the attachments' objects (the account's uploads and
//! everything on its tickets), the presence entries and rate-limit counters in
//! Redis, and every socket of the user on every node, which gets `session.revoked`
//! (`account_deleted`) and is closed. People watching the user's tickets get `ticket.deleted`.
//! What is kept: a count of deleted accounts, and nothing that names the account.

use crate::domain::auth::Auth;
use crate::domain::presence::Presence;
use crate::domain::profiles::ProfileDesk;
use crate::domain::sessions::SessionDesk;
use crate::domain::tickets::TicketDesk;
use crate::error::{Error, Result};
use crate::model::account::RevokeReason;
use crate::model::attachment::{uploader_prefix, Attachment};
use crate::model::audit::{ActorKind, AuditAction, AuditEntry};
use crate::model::ids::{Principal, UserId};
use crate::model::object::ObjectKey;
use crate::model::purchase::{Purchase, PurchaseKind};
use crate::model::time::{ms, now_ms, Millis};
use crate::ports::objects::Objects;
use crate::ports::quota::Quotas;
use crate::ports::store::account::AccountRecords;
use crate::ports::store::audit::Audit;
use crate::ports::store::purchases::Purchases;
use crate::ports::store::Accounts;
use std::sync::Arc;
use std::time::Duration;

/// How long a deletion confirmation works.
pub const CONFIRMATION_TTL: Duration = Duration::from_secs(10 * 60);

/// Exports an account may ask for per hour (each reads everything the account has).
pub const EXPORTS_PER_HOUR: u64 = 10;

/// What the hub answers a request to delete an account with.
#[derive(Clone, Debug)]
pub struct DeletionNotice {
    /// The confirmation to send back (`POST /v1/me/deletion/confirm`).
    pub confirmation: String,
    /// When the confirmation stops working.
    pub expires_at: Millis,
    /// Tickets that will be deleted with every message in them.
    pub tickets: usize,
    /// Devices that will be signed out and forgotten.
    pub devices: usize,
    /// Subscriptions paid and still running: deleted with the account, with no refund by the hub.
    pub active_subscriptions: Vec<Purchase>,
    /// Paid app activations still in force: deleted with the account too.
    pub activations: Vec<Purchase>,
    /// Every purchase record that will be deleted (also the refunded, cancelled and expired ones).
    pub purchases: usize,
}

/// What a confirmed deletion did.
#[derive(Clone, Copy, Debug)]
pub struct Deleted {
    /// When.
    pub deleted_at: Millis,
    /// Tickets deleted.
    pub tickets: usize,
}

/// The account's own operations over the domain services they touch.
pub struct AccountDesk {
    accounts: Arc<dyn Accounts>,
    records: Arc<dyn AccountRecords>,
    purchases: Arc<dyn Purchases>,
    objects: Arc<dyn Objects>,
    audit: Arc<dyn Audit>,
    sessions: Arc<SessionDesk>,
    quotas: Arc<dyn Quotas>,
    presence: Arc<Presence>,
}

/// Who asked for an export or a deletion: the user in their app, or an operator answering the
/// user's request through the policy's contact links (written so to the audit log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requester {
    /// The user, signed in.
    User,
    /// An operator, with the hub's admin token.
    Operator,
}

impl Requester {
    fn actor(self, user: UserId) -> (ActorKind, Option<uuid::Uuid>) {
        match self {
            Self::User => (ActorKind::User, Some(user.0)),
            Self::Operator => (ActorKind::Operator, None),
        }
    }
}

/// The storage an [`AccountDesk`] works on, one port each.
pub struct AccountPorts {
    /// The user record and devices.
    pub accounts: Arc<dyn Accounts>,
    /// What the export reads and the deletion deletes.
    pub records: Arc<dyn AccountRecords>,
    /// The purchases the deletion warns about.
    pub purchases: Arc<dyn Purchases>,
    /// The object store, which the deletion empties of the account's attachments.
    pub objects: Arc<dyn Objects>,
    /// The audit log: exports and deletions are written to it.
    pub audit: Arc<dyn Audit>,
}

impl AccountDesk {
    /// The desk over these ports and services.
    pub fn new(
        ports: AccountPorts,
        sessions: Arc<SessionDesk>,
        quotas: Arc<dyn Quotas>,
        presence: Arc<Presence>,
    ) -> Self {
        let AccountPorts { accounts, records, purchases, objects, audit } = ports;
        Self { accounts, records, purchases, objects, audit, sessions, quotas, presence }
    }

    /// Deletes the bytes and thumbnails of a deleted account's attachments (an agent's on its
    /// tickets among them), then whatever is left under the account's own prefix. Failures are
    /// logged, not returned: the account is deleted; a new deletion request cannot retry (the
    /// account is gone), so the log is the operator's cue.
    async fn discard_objects(&self, user: UserId, attachments: &[Attachment]) {
        let mut keys: Vec<ObjectKey> = Vec::new();
        for a in attachments {
            keys.push(a.object_key());
            keys.extend(a.content.as_ref().and_then(|c| c.thumbnail_key.clone()));
        }
        match self.objects.list(&uploader_prefix(Principal::User(user))).await {
            Ok(left) => keys.extend(left),
            Err(e) => tracing::warn!(error = %e, user_id = %user, "objects of a deleted account not listed"),
        }
        keys.sort();
        keys.dedup();
        for key in &keys {
            if let Err(e) = self.objects.delete(key).await {
                tracing::warn!(error = %e, user_id = %user, key = %key, "an object of a deleted account was not deleted");
            }
        }
    }

    fn export_quota_key(user: UserId) -> String {
        format!("export:{user}")
    }

    /// Counts an export against the account's hourly allowance; call before the export is written.
    ///
    /// # Errors
    /// `rate_limited` beyond [`EXPORTS_PER_HOUR`], `unavailable`.
    pub async fn admit_export(&self, user: UserId, by: Requester) -> Result<()> {
        let hour = Duration::from_secs(3600);
        crate::ports::quota::check(self.quotas.as_ref(), &Self::export_quota_key(user), hour, EXPORTS_PER_HOUR).await?;
        let (actor, actor_id) = by.actor(user);
        let entry =
            AuditEntry::new(now_ms(), actor, actor_id, AuditAction::AccountExported, Some(user.0)).concerning(user.0);
        crate::domain::audit::record(self.audit.as_ref(), &entry).await;
        Ok(())
    }

    /// The first step of deleting `user`'s account: what would be lost, and the confirmation.
    ///
    /// # Errors
    /// `unauthorized` (no such account any more), `unavailable`.
    pub async fn request_deletion(&self, auth: &Auth, user: UserId) -> Result<DeletionNotice> {
        self.accounts.user(user).await?.ok_or(Error::Unauthorized)?;
        let tickets = self.records.tickets_after(user, None, u32::MAX).await?.len();
        let devices = self.accounts.devices(user).await?.len();
        let now = now_ms();
        let purchases = self.purchases.purchases(user).await?;
        let count = purchases.len();
        let (active_subscriptions, activations) =
            purchases.into_iter().filter(|p| p.is_active(now)).partition(|p| p.kind == PurchaseKind::Subscription);
        let expires_at = now + ms(CONFIRMATION_TTL);
        Ok(DeletionNotice {
            confirmation: auth.deletion_confirmation(user, expires_at),
            expires_at,
            tickets,
            devices,
            active_subscriptions,
            activations,
            purchases: count,
        })
    }

    /// The second step: checks the confirmation and deletes the account and everything of it.
    ///
    /// The sessions are revoked first (and their sockets, on every node, told and closed), so
    /// that nothing new is written for the account while it is deleted; writes already under way
    /// either land before the deletion's transaction (and are deleted with it) or find no account.
    ///
    /// # Errors
    /// `confirmation_invalid`, `unauthorized` (deleted already), `unavailable` (nothing was
    /// deleted, or, if the failure came after the transaction, only clean-up outside the database
    /// is left: the image file and Redis entries, which expire or are retried by a new request).
    pub async fn confirm_deletion(
        &self,
        auth: &Auth,
        support: &TicketDesk,
        profiles: &ProfileDesk,
        user: UserId,
        confirmation: &str,
        by: Requester,
    ) -> Result<Deleted> {
        let now = now_ms();
        auth.check_deletion_confirmation(user, confirmation, now)?;
        let account = self.accounts.user(user).await?.ok_or(Error::Unauthorized)?;
        let who = Principal::User(user);
        self.sessions.revoke_user(user, RevokeReason::AccountDeleted, now).await?;
        let (phone_keys, mut quota_keys) = auth.traces(&account);
        quota_keys.push(Self::export_quota_key(user));
        let deleted = self.records.delete_account(user, &phone_keys).await?.ok_or(Error::Unauthorized)?;
        support.tickets_deleted(&deleted.tickets);
        if let (Some(image), false) = (&deleted.image, deleted.image_still_used) {
            profiles.discard_image(image).await;
        }
        self.discard_objects(user, &deleted.attachments).await;
        if let Err(e) = self.presence.forget(who).await {
            tracing::warn!(error = %e, user_id = %user, "presence of a deleted account not cleared; it expires by itself");
        }
        if let Err(e) = self.quotas.forget(&quota_keys).await {
            tracing::warn!(error = %e, user_id = %user, "rate-limit counters of a deleted account not cleared; they expire by themselves");
        }
        // Nothing of the account stays in the audit log either; the deletion is recorded without
        // naming it.
        if let Err(e) = self.audit.forget_user_audit(user).await {
            tracing::warn!(error = %e, user_id = %user, "audit entries of a deleted account not deleted");
        }
        let (actor, _) = by.actor(user);
        let entry = AuditEntry::new(now, actor, None, AuditAction::AccountDeleted, None)
            .with_detail(serde_json::json!({"tickets": deleted.tickets.len()}));
        crate::domain::audit::record(self.audit.as_ref(), &entry).await;
        metrics::counter!(crate::metrics::ACCOUNTS_DELETED).increment(1);
        tracing::info!(user_id = %user, tickets = deleted.tickets.len(), "account deleted");
        Ok(Deleted { deleted_at: now, tickets: deleted.tickets.len() })
    }
}
