//! SMS reminders: the fallback for people a push cannot reach. When an agent's reply stays unread
//! for the configured time and its user has no push registration, one short SMS (a fixed text: no
//! message text, name or ticket) tells them support answered; at most one per ticket per period,
//! within an hourly budget of its own, and only with the user's `sms_reminders` consent.
//!
//! The push desk records each agent reply as a reminder due after the wait (one per ticket: later
//! replies keep the first one's time). Every node runs [`SmsReminders::run`], which claims due
//! reminders (a lease, as the push queue does) and decides each when it comes due, so a read, a new
//! registration or a consent change in the meantime is respected.

use crate::model::ids::UserId;
use crate::model::push::{DueReminder, ReminderOutcome};
use crate::model::sms::{reminder_text, SmsTexts};
use crate::model::time::{ms, now_ms, Millis};
use crate::ports::quota::Quotas;
use crate::ports::sms::{Sms, SmsSender};
use crate::ports::store::push::Pushes;
use crate::ports::store::Accounts;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Reminders one node claims at once.
const CLAIM: u32 = 16;
/// How long a claim holds before another node may take the reminder.
const LEASE: Duration = Duration::from_secs(60);
/// How often an idle node looks for due reminders.
const POLL: Duration = Duration::from_secs(1);
/// Sends tried before a reminder is given up.
const ATTEMPTS: u32 = 3;
/// The wait after a failed send, doubled per failure.
const RETRY: Duration = Duration::from_secs(60);
/// The quota counter of the hourly budget.
const BUDGET_KEY: &str = "sms:reminders";
const HOUR: Duration = Duration::from_secs(3600);

/// When reminders go out.
#[derive(Clone, Copy, Debug)]
pub struct ReminderPolicy {
    /// How long a reply stays unread before its reminder.
    pub after: Duration,
    /// At most one reminder per ticket within this period.
    pub period: Duration,
    /// Reminders the hub sends per hour at most.
    pub per_hour: u64,
}

/// What a due reminder needs, judged from what was stored: a verdict, or a send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Judgement {
    /// Settled without sending; `reason` is the metric's outcome label.
    Settle { outcome: ReminderOutcome, reason: Option<&'static str> },
    /// Worth a send, if the app is closed and the budget allows.
    Send,
}

/// The stored facts' verdict at `now`.
fn judge(reminder: &DueReminder, period: Duration, now: Millis) -> Judgement {
    let dropped = |reason| Judgement::Settle { outcome: ReminderOutcome::Dropped, reason: Some(reason) };
    if reminder.read_seq >= reminder.seq {
        return dropped("read");
    }
    if !reminder.consent {
        return dropped("no_consent");
    }
    if reminder.registered {
        return dropped("push_target");
    }
    if let Some(sent_at) = reminder.sent_at.filter(|at| now < at + ms(period)) {
        let outcome = ReminderOutcome::Later { due_at: sent_at + ms(period), failed: false };
        return Judgement::Settle { outcome, reason: None };
    }
    Judgement::Send
}

/// The wait after `failures` failed sends.
fn retry_after(failures: u32) -> Duration {
    RETRY * 2u32.saturating_pow(failures.min(8))
}

/// Sends the reminders that come due.
pub struct SmsReminders {
    store: Arc<dyn Pushes>,
    accounts: Arc<dyn Accounts>,
    presence: Arc<crate::domain::presence::Presence>,
    quotas: Arc<dyn Quotas>,
    sms: Arc<dyn SmsSender>,
    texts: SmsTexts,
    policy: ReminderPolicy,
}

impl SmsReminders {
    /// The reminder sender of a node.
    pub fn new(
        store: Arc<dyn Pushes>,
        accounts: Arc<dyn Accounts>,
        presence: Arc<crate::domain::presence::Presence>,
        quotas: Arc<dyn Quotas>,
        sms: Arc<dyn SmsSender>,
        texts: SmsTexts,
        policy: ReminderPolicy,
    ) -> Arc<Self> {
        Arc::new(Self { store, accounts, presence, quotas, sms, texts, policy })
    }

    /// Sends due reminders until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let claimed = match self.store.claim_reminders(now_ms(), ms(LEASE), CLAIM).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim sms reminders");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(POLL) => continue,
                }
            }
            for reminder in claimed {
                let (outcome, reason) = self.decide(&reminder).await;
                if let Some(reason) = reason {
                    metrics::counter!(crate::metrics::SMS_REMINDERS, "outcome" => reason).increment(1);
                }
                if let Err(e) = self.store.settle_reminder(reminder.ticket_id, reminder.seq, outcome).await {
                    tracing::warn!(error = %e, "could not record an sms reminder (its lease runs out and it is decided again)");
                }
            }
            if stop.is_cancelled() {
                return;
            }
        }
    }

    /// What becomes of a due reminder, and the metric's outcome label.
    async fn decide(&self, reminder: &DueReminder) -> (ReminderOutcome, Option<&'static str>) {
        let now = now_ms();
        if let Judgement::Settle { outcome, reason } = judge(reminder, self.policy.period, now) {
            return (outcome, reason);
        }
        let who = crate::model::ids::Principal::User(reminder.user_id);
        if self.presence.is_online(who).await {
            // The app is open: the reply shows there. Should it stay unread, look again later.
            return (ReminderOutcome::Later { due_at: now + ms(self.policy.after), failed: false }, None);
        }
        match self.quotas.hit(BUDGET_KEY, HOUR).await {
            Ok(window) if window.count > self.policy.per_hour => {
                tracing::warn!(budget = self.policy.per_hour, "hourly sms reminder budget spent: reminder skipped");
                return (ReminderOutcome::Dropped, Some("budget"));
            }
            Ok(_) => {}
            Err(e) => return self.failed(reminder, now, &e.to_string()),
        }
        match self.send(reminder.user_id).await {
            Ok(true) => (ReminderOutcome::Sent(now), Some("sent")),
            Ok(false) => (ReminderOutcome::Dropped, Some("no_account")),
            Err(e) => self.failed(reminder, now, &e.to_string()),
        }
    }

    fn failed(&self, reminder: &DueReminder, now: Millis, error: &str) -> (ReminderOutcome, Option<&'static str>) {
        if reminder.attempts + 1 >= ATTEMPTS {
            tracing::warn!(error, "sms reminder given up after {ATTEMPTS} failed sends");
            return (ReminderOutcome::Dropped, Some("given_up"));
        }
        tracing::warn!(error, "sms reminder not sent: trying again later");
        let due_at = now + ms(retry_after(reminder.attempts));
        (ReminderOutcome::Later { due_at, failed: true }, Some("failed"))
    }

    /// Sends the reminder to the user's number; false when the account is gone.
    async fn send(&self, user: UserId) -> crate::error::Result<bool> {
        let Some(account) = self.accounts.user(user).await? else {
            return Ok(false);
        };
        let text = reminder_text(self.texts.language_for(&account.phone)).to_owned();
        self.sms.send(&Sms { to: account.phone, text }).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::TicketId;

    const DAY: Duration = Duration::from_secs(86_400);

    fn due() -> DueReminder {
        DueReminder {
            ticket_id: TicketId::generate(),
            user_id: UserId::generate(),
            seq: 5,
            read_seq: 3,
            sent_at: None,
            attempts: 0,
            consent: true,
            registered: false,
        }
    }

    fn dropped(reason: &'static str) -> Judgement {
        Judgement::Settle { outcome: ReminderOutcome::Dropped, reason: Some(reason) }
    }

    #[test]
    fn only_an_unread_reply_to_a_consenting_user_without_push_is_sent() {
        assert_eq!(judge(&due(), DAY, 1_000), Judgement::Send);
        assert_eq!(judge(&DueReminder { read_seq: 5, ..due() }, DAY, 1_000), dropped("read"));
        assert_eq!(judge(&DueReminder { consent: false, ..due() }, DAY, 1_000), dropped("no_consent"));
        assert_eq!(judge(&DueReminder { registered: true, ..due() }, DAY, 1_000), dropped("push_target"));
    }

    #[test]
    fn one_reminder_per_ticket_per_period() {
        let sent = DueReminder { sent_at: Some(10_000), ..due() };
        let wait = Judgement::Settle {
            outcome: ReminderOutcome::Later { due_at: 10_000 + ms(DAY), failed: false },
            reason: None,
        };
        assert_eq!(judge(&sent, DAY, 20_000), wait, "within the period: look again when it ends");
        assert_eq!(judge(&sent, DAY, 10_000 + ms(DAY)), Judgement::Send);
    }

    #[test]
    fn failed_sends_wait_longer_each_time() {
        assert_eq!(retry_after(0), Duration::from_secs(60));
        assert_eq!(retry_after(1), Duration::from_secs(120));
        assert_eq!(retry_after(u32::MAX), Duration::from_secs(60 * 256));
    }
}
