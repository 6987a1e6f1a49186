//! Phone sign-in: one-time codes by SMS, session tokens, their refresh and revocation.
//!
//! The rules (protocol/PROTOCOL.md, "Sign-in"): 6-digit codes from a CSPRNG, stored only as a keyed
//! hash, valid for `code_ttl_secs`, single use, `code_max_attempts` tries each; wrong tries also add
//! up per number across resends and lock it for a doubling time; resend cooldown and caps per number,
//! per client IP and for the whole hub (the SMS budget). The answer to "send a code" never depends on
//! whether the number is registered: registration happens at the first successful verification.
//!
//! `Auth` is built here from the configuration; its work is split by what it serves:
//! - `sign_in.rs`: codes sent by SMS under their rate limits, checked with their lock-outs, and
//!   the sign-in they allow.
//! - `sessions.rs`: the user's devices and their sessions, and the hand-over to a new device (the
//!   tokens themselves, their refresh and sign-out are `domain::sessions`, shared with agents).
//! - `account.rs`: the user record, the move to a new number, and what deleting the account needs
//!   from sign-in.
//! - `secrets.rs`: sign-in codes and keyed hashes.

mod account;
pub mod secrets;
mod sessions;
mod sign_in;

use crate::config::Config;
use crate::domain::sessions::SessionDesk;
use crate::model::account::{Device, PhoneKey, Session, User};
use crate::model::language::Language;
use crate::model::phone::{Phone, PhonePolicy};
use crate::model::sms::{SmsLength, SmsPurpose, SmsTexts};
use crate::ports::quota::Quotas;
use crate::ports::sms::SmsSender;
use crate::ports::store::{Accounts, SignInCodes};
use secrets::Keyed;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

pub use account::PHONE_CHANGES_PER_DAY;

/// The device a sign-in is for, as the app describes it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DeviceInfo {
    /// The app's stable id for this installation (1 to 64 characters).
    pub id: String,
    /// A human name ("Pixel 8"), at most 64 characters.
    #[serde(default)]
    pub name: String,
}

/// A code was sent (or, for a test number, would have been).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeSent {
    /// How long the code works.
    pub expires_in: Duration,
    /// When the next code to this number may be asked for.
    pub resend_after: Duration,
}

/// A successful sign-in.
#[derive(Clone, Debug)]
pub struct SignedIn {
    /// The session token: shown once, to its holder.
    pub token: String,
    /// The new session.
    pub session: Session,
    /// The user (registered now if `new_user`).
    pub user: User,
    /// The device record.
    pub device: Device,
    /// Whether this sign-in registered the number.
    pub new_user: bool,
}

/// The sign-in rules, from the configuration.
#[derive(Clone, Debug)]
struct Rules {
    code_ttl: Duration,
    code_max_attempts: u32,
    resend: Duration,
    per_number_10min: u64,
    per_number_day: u64,
    per_ip_hour: u64,
    sms_budget_per_hour: u64,
    lockout_after: u32,
    lockout_base: Duration,
    max_devices: usize,
    test_prefix: Option<String>,
    test_code: Option<String>,
}

const TEN_MINUTES: Duration = Duration::from_secs(600);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// Phone sign-in and sessions.
pub struct Auth {
    accounts: Arc<dyn Accounts>,
    codes: Arc<dyn SignInCodes>,
    sessions: Arc<SessionDesk>,
    quotas: Arc<dyn Quotas>,
    sms: Arc<dyn SmsSender>,
    phones: PhonePolicy,
    texts: SmsTexts,
    keyed: Keyed,
    rules: Rules,
}

impl Auth {
    /// The account registered with a number as a person typed it (Persian or Arabic-Indic digits,
    /// spaces, a leading 0), for an operator answering a request about it.
    ///
    /// # Errors
    /// `invalid_phone`, `country_not_allowed`, `not_found` (no account), `unavailable`.
    pub async fn account_of(&self, typed: &str) -> crate::Result<crate::model::account::User> {
        let phone = self.phones.parse(typed)?;
        self.accounts.user_by_phone(&phone).await?.ok_or(crate::Error::NotFound("account"))
    }

    /// Sign-in over the given ports, with rules from `config` and the hub's hashing `key`.
    ///
    /// # Errors
    /// An invalid phone policy or SMS text in `config` (normally caught by [`Config::validate`]).
    pub fn new(
        config: &Config,
        key: Vec<u8>,
        accounts: Arc<dyn Accounts>,
        codes: Arc<dyn SignInCodes>,
        sessions: Arc<SessionDesk>,
        quotas: Arc<dyn Quotas>,
        sms: Arc<dyn SmsSender>,
    ) -> anyhow::Result<Self> {
        let phones =
            PhonePolicy::new(&config.phone_default_region, &config.phone_countries).map_err(anyhow::Error::msg)?;
        let rules = Rules {
            code_ttl: Duration::from_secs(config.code_ttl_secs),
            code_max_attempts: config.code_max_attempts,
            resend: Duration::from_secs(config.code_resend_secs),
            per_number_10min: config.codes_per_number_10min,
            per_number_day: config.codes_per_number_day,
            per_ip_hour: config.codes_per_ip_hour,
            sms_budget_per_hour: config.sms_budget_per_hour,
            lockout_after: config.lockout_after_failures.max(1),
            lockout_base: Duration::from_secs(config.lockout_base_secs),
            max_devices: config.max_devices.max(1) as usize,
            test_prefix: config.test_phone_prefix.clone(),
            test_code: config.test_code.as_ref().map(|s| s.0.clone()),
        };
        if rules.test_prefix.is_some() {
            tracing::warn!("test numbers are enabled: never do this in production");
        }
        let texts = config.sms_texts().map_err(anyhow::Error::msg)?;
        let minutes = rules.code_ttl.as_secs().div_ceil(60);
        for purpose in [SmsPurpose::SignIn, SmsPurpose::PhoneChange] {
            for language in [Language::Persian, Language::English] {
                let length = SmsLength::of(&texts.render_in(purpose, language, "000000", minutes));
                if length.parts > 1 {
                    tracing::warn!(%purpose, %language, parts = length.parts, "the sms text takes more than one part");
                }
            }
        }
        Ok(Self { accounts, codes, sessions, quotas, sms, phones, texts, keyed: Keyed::new(key), rules })
    }

    fn phone_key(&self, phone: &Phone) -> PhoneKey {
        PhoneKey(self.keyed.key_for("phone", phone.e164()))
    }

    fn is_test_number(&self, phone: &Phone) -> bool {
        self.rules.test_prefix.as_deref().is_some_and(|p| phone.e164().starts_with(p))
    }
}
