//! Phone sign-in: one-time codes by SMS, session tokens, their refresh and revocation.
//!
//! The rules (protocol/PROTOCOL.md, "Sign-in"): 6-digit codes from a CSPRNG, stored only as a keyed
//! hash, valid for `code_ttl_secs`, single use, `code_max_attempts` tries each; wrong tries also add
//! up per number across resends and lock it for a doubling time; resend cooldown and caps per number,
//! per client IP and for the whole hub (the SMS budget). The answer to "send a code" never depends on
//! whether the number is registered: registration happens at the first successful verification.

pub mod tokens;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::account::RevokeReason;
use crate::model::account::{Device, NewSession, PhoneKey, Session, SignInCode, User};
use crate::model::ids::{CodeId, Principal, SessionId, UserId};
use crate::model::phone::{Phone, PhonePolicy};
use crate::model::time::{ms, now_ms, Millis};
use crate::ports::broker::Broker;
use crate::ports::quota::{self, Quotas};
use crate::ports::sms::{Sms, SmsSender};
use crate::ports::store::Store;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokens::Keyed;

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
    /// The session token: shown once, to its owner.
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
    session_ttl: Duration,
    max_devices: usize,
    test_prefix: Option<String>,
    test_code: Option<String>,
}

const TEN_MINUTES: Duration = Duration::from_secs(600);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
/// The rate-limit counters of one number (by its keyed hash): the resend cooldown, the 10-minute
/// and the daily caps. Named once, for the checks and for the account deletion that forgets them.
fn number_quota_keys(pk: &PhoneKey) -> [String; 3] {
    ["resend", "10min", "day"].map(|window| format!("code:{window}:{}", pk.0))
}

/// Number changes an account may ask for per day (each sends an SMS).
pub const PHONE_CHANGES_PER_DAY: u64 = 5;
/// A lock-out never lasts longer than this, however often it repeats.
const MAX_LOCKOUT: Duration = DAY;

/// Phone sign-in and sessions.
pub struct Auth {
    store: Arc<dyn Store>,
    quotas: Arc<dyn Quotas>,
    sms: Arc<dyn SmsSender>,
    events: Arc<dyn Broker>,
    phones: PhonePolicy,
    keyed: Keyed,
    rules: Rules,
}

impl Auth {
    /// Sign-in over the given ports, with rules from `config` and the hub's hashing `key`.
    ///
    /// # Errors
    /// An invalid phone policy in `config` (normally caught by [`Config::validate`]).
    pub fn new(
        config: &Config,
        key: Vec<u8>,
        store: Arc<dyn Store>,
        quotas: Arc<dyn Quotas>,
        sms: Arc<dyn SmsSender>,
        events: Arc<dyn Broker>,
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
            session_ttl: Duration::from_secs(config.session_ttl_secs),
            max_devices: config.max_devices.max(1) as usize,
            test_prefix: config.test_phone_prefix.clone(),
            test_code: config.test_code.as_ref().map(|s| s.0.clone()),
        };
        if rules.test_prefix.is_some() {
            tracing::warn!("test numbers are enabled: never do this in production");
        }
        Ok(Self { store, quotas, sms, events, phones, keyed: Keyed::new(key), rules })
    }

    fn phone_key(&self, phone: &Phone) -> PhoneKey {
        PhoneKey(self.keyed.key_for("phone", phone.e164()))
    }

    fn is_test_number(&self, phone: &Phone) -> bool {
        self.rules.test_prefix.as_deref().is_some_and(|p| phone.e164().starts_with(p))
    }

    /// The rate-limit key of a client address: IPv6 clients are counted per /64, since one
    /// subscriber usually holds a whole /64.
    fn ip_key(&self, ip: IpAddr) -> String {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut seg = v6.segments();
                    seg[4..].fill(0);
                    IpAddr::V6(seg.into())
                }
            },
            v4 => v4,
        };
        self.keyed.key_for("ip", &ip.to_string())
    }

    /// Sends a sign-in code to `phone` (`POST /v1/auth/code`).
    ///
    /// # Errors
    /// `invalid_phone`, `country_not_allowed`, `rate_limited` (cooldown, per-number or per-IP caps),
    /// `too_many_attempts` (the number is locked), `sms_budget_exhausted`, `sms_unavailable`,
    /// `unavailable`.
    pub async fn request_code(&self, phone: &str, client_ip: IpAddr) -> Result<CodeSent> {
        let phone = self.phones.parse(phone)?;
        let pk = self.phone_key(&phone);
        self.send_code(&phone, pk, client_ip).await
    }

    /// The key a number-change code is stored and locked under: bound to the account as well as
    /// the number, so that it cannot sign anyone in, nor serve another account's change.
    fn change_key(&self, user: UserId, phone: &Phone) -> PhoneKey {
        PhoneKey(self.keyed.key_for("phone-change", &format!("{user}:{}", phone.e164())))
    }

    /// The per-account counter of number changes asked for.
    fn change_quota_key(user: UserId) -> String {
        format!("phone-change:{user}")
    }

    /// Sends a code to a new number for the signed-in `user` (`POST /v1/me/phone/code`). Whether
    /// the number belongs to another account is not checked here, so that this cannot be used to
    /// learn which numbers are registered; [`Auth::change_phone`] says so once the code proved the
    /// number is the user's.
    ///
    /// # Errors
    /// `bad_request` (it is the account's number already), `rate_limited` (also at most
    /// [`PHONE_CHANGES_PER_DAY`] per account), and those of [`Auth::request_code`].
    pub async fn request_phone_change(&self, user: UserId, phone: &str, client_ip: IpAddr) -> Result<CodeSent> {
        let phone = self.phones.parse(phone)?;
        if self.store.user(user).await?.ok_or(Error::Unauthorized)?.phone == phone {
            return Err(Error::BadRequest("this is the account's number already".into()));
        }
        quota::check(self.quotas.as_ref(), &Self::change_quota_key(user), DAY, PHONE_CHANGES_PER_DAY).await?;
        self.send_code(&phone, self.change_key(user, &phone), client_ip).await
    }

    /// Checks the code sent to the new number and moves the account to it
    /// (`POST /v1/me/phone/verify`): the old number no longer signs in to this account. The
    /// account's sessions stay signed in.
    ///
    /// # Errors
    /// `phone_taken` (another account has the number), and those of [`Auth::verify_code`].
    pub async fn change_phone(&self, user: UserId, phone: &str, code: &str) -> Result<User> {
        let phone = self.phones.parse(phone)?;
        let key = self.change_key(user, &phone);
        self.check_code(&phone, &key, code, now_ms()).await?;
        match self.store.change_phone(user, &phone).await {
            Ok(true) => {}
            Ok(false) => return Err(Error::Unauthorized),
            Err(Error::Conflict(_)) => return Err(Error::PhoneTaken),
            Err(e) => return Err(e),
        }
        metrics::counter!(crate::metrics::PHONE_CHANGES).increment(1);
        tracing::info!(user_id = %user, phone = %phone.masked(), "mobile number changed");
        self.user(user).await
    }

    /// The sign-in data kept about the account's number outside the account: its codes and
    /// lock-outs (by keyed hash), and its rate-limit counters. Deleted with the account.
    pub fn traces(&self, user: &User) -> (Vec<PhoneKey>, Vec<String>) {
        let pk = self.phone_key(&user.phone);
        let [resend, ten_minutes, day] = number_quota_keys(&pk);
        (vec![pk], vec![resend, ten_minutes, day, Self::change_quota_key(user.id)])
    }

    /// A confirmation for deleting `user`'s account that works until `expires_at`: the account and
    /// the expiry, signed with the hub's key (any node can check it; nothing is stored).
    pub fn deletion_confirmation(&self, user: UserId, expires_at: Millis) -> String {
        let claim = format!("{}.{expires_at}", user.0.simple());
        let mac = self.keyed.key_for("account-deletion", &claim);
        format!("{claim}.{mac}")
    }

    /// Whether `confirmation` is one [`Auth::deletion_confirmation`] made for `user` that has not
    /// expired at `now`.
    ///
    /// # Errors
    /// `confirmation_invalid`.
    pub fn check_deletion_confirmation(&self, user: UserId, confirmation: &str, now: Millis) -> Result<()> {
        let mut parts = confirmation.splitn(3, '.');
        let (Some(who), Some(expires), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::ConfirmationInvalid);
        };
        let expires_at: Millis = expires.parse().map_err(|_| Error::ConfirmationInvalid)?;
        let expected = self.keyed.key_for("account-deletion", &format!("{who}.{expires_at}"));
        if !tokens::constant_time_eq(mac, &expected) || who != user.0.simple().to_string() || expires_at <= now {
            return Err(Error::ConfirmationInvalid);
        }
        Ok(())
    }

    /// Sends a new code for `phone`, stored under `code_key`; the number's own rate limits and the
    /// SMS budget apply whatever the code is for.
    async fn send_code(&self, phone: &Phone, code_key: PhoneKey, client_ip: IpAddr) -> Result<CodeSent> {
        let sent = CodeSent { expires_in: self.rules.code_ttl, resend_after: self.rules.resend };
        if self.is_test_number(phone) {
            return Ok(sent);
        }
        let pk = self.phone_key(phone);
        let now = now_ms();
        self.refuse_if_locked(&pk, now).await?;
        if code_key != pk {
            self.refuse_if_locked(&code_key, now).await?;
        }
        let q = self.quotas.as_ref();
        quota::check(q, &format!("code:ip:{}", self.ip_key(client_ip)), HOUR, self.rules.per_ip_hour).await?;
        let [resend, ten_minutes, day] = number_quota_keys(&pk);
        quota::check(q, &resend, self.rules.resend, 1).await?;
        quota::check(q, &ten_minutes, TEN_MINUTES, self.rules.per_number_10min).await?;
        quota::check(q, &day, DAY, self.rules.per_number_day).await?;
        let budget = self.quotas.hit("sms:budget", HOUR).await?;
        if budget.count > self.rules.sms_budget_per_hour {
            metrics::counter!(crate::metrics::SMS_BUDGET_TRIPS).increment(1);
            tracing::error!(
                budget = self.rules.sms_budget_per_hour,
                resets_in_s = budget.resets_in.as_secs(),
                "hourly sms budget exhausted: refusing codes (possible sms pumping)"
            );
            return Err(Error::SmsBudgetExhausted { retry_after: budget.resets_in });
        }

        let code = tokens::new_code();
        self.store
            .put_code(&SignInCode {
                id: CodeId::generate(),
                code_hash: self.keyed.code_hash(&code_key.0, &code),
                phone_key: code_key,
                created_at: now,
                expires_at: now + ms(self.rules.code_ttl),
                attempts: 0,
            })
            .await?;
        let minutes = self.rules.code_ttl.as_secs().div_ceil(60);
        let text = format!("Anapars code: {code}\nValid for {minutes} minutes. Never share it with anyone.");
        self.sms.send(&Sms { to: phone.clone(), text }).await?;
        metrics::counter!(crate::metrics::OTP_SENT).increment(1);
        Ok(sent)
    }

    async fn refuse_if_locked(&self, pk: &PhoneKey, now: Millis) -> Result<()> {
        let guard = self.store.phone_guard(pk).await?;
        match guard.locked_until {
            Some(until) if until > now => {
                Err(Error::TooManyAttempts { retry_after: Some(Duration::from_millis((until - now) as u64)) })
            }
            _ => Ok(()),
        }
    }

    /// Checks `code` for `phone` and signs the device in (`POST /v1/auth/verify`), registering the
    /// number on its first successful sign-in.
    ///
    /// # Errors
    /// `bad_request` (malformed code or device), `invalid_phone`, `country_not_allowed`,
    /// `code_expired`, `code_invalid`, `too_many_attempts`, `unavailable`.
    pub async fn verify_code(&self, phone: &str, code: &str, device: &DeviceInfo) -> Result<SignedIn> {
        let phone = self.phones.parse(phone)?;
        let device_id = device.id.trim();
        if device_id.is_empty() || device_id.chars().count() > 64 || device.name.chars().count() > 64 {
            return Err(Error::BadRequest("device.id must be 1 to 64 characters, device.name at most 64".into()));
        }
        let now = now_ms();
        self.check_code(&phone, &self.phone_key(&phone), code, now).await?;

        let (user, new_user) = self.store.register_user(&phone, now).await?;
        let device = self.store.upsert_device(user.id, device_id, device.name.trim(), now).await?;
        let (token, token_hash) = tokens::new_token();
        let session = self
            .store
            .create_session(&NewSession {
                id: SessionId::generate(),
                user_id: user.id,
                device_id: device.id,
                token_hash,
                created_at: now,
                expires_at: now + ms(self.rules.session_ttl),
            })
            .await?;
        self.hand_over(user.id, &session, now).await?;
        metrics::counter!(crate::metrics::SIGN_INS).increment(1);
        tracing::info!(user_id = %user.id, device_id = %device.id, new_user, "signed in");
        Ok(SignedIn { token, session, user, device, new_user })
    }

    /// Checks `code` against the newest code stored under `code_key` for `phone` (or the test code
    /// of a test number), counting the try and locking the key after too many wrong ones. A right
    /// code is used up and the key's wrong tries are forgotten.
    async fn check_code(&self, phone: &Phone, code_key: &PhoneKey, code: &str, now: Millis) -> Result<()> {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::BadRequest("code must be 6 digits".into()));
        }
        let pk = code_key;
        self.refuse_if_locked(pk, now).await?;
        if self.is_test_number(phone) {
            let expected = self.rules.test_code.as_deref().unwrap_or_default();
            if !tokens::constant_time_eq(code, expected) {
                return Err(self.wrong_code(pk, now, self.rules.code_max_attempts).await);
            }
        } else {
            let Some(current) = self.store.current_code(pk).await? else {
                return Err(Error::CodeExpired);
            };
            if current.expires_at <= now {
                return Err(Error::CodeExpired);
            }
            // Count the try before comparing, so concurrent guesses cannot exceed the limit.
            let Some(attempts) = self.store.count_attempt(current.id).await? else {
                return Err(Error::CodeExpired);
            };
            if attempts > self.rules.code_max_attempts {
                return Err(Error::TooManyAttempts { retry_after: None });
            }
            if !self.keyed.code_matches(&pk.0, code, &current.code_hash) {
                let left = self.rules.code_max_attempts - attempts;
                return Err(self.wrong_code(pk, now, left).await);
            }
            if !self.store.consume_code(current.id).await? {
                return Err(Error::CodeExpired);
            }
        }
        self.store.clear_guard(pk).await
    }

    /// Moves the account to the device that just signed in: older sessions of the same device end
    /// (`replaced`), and devices beyond `max_devices` (least recently signed in first) are signed
    /// out (`signed_in_elsewhere`). Their live sockets are told and closed at once.
    async fn hand_over(&self, user: UserId, new: &Session, now: Millis) -> Result<()> {
        let mut kept = vec![new.device_id];
        for s in self.store.live_sessions(user, now).await? {
            let reason = if s.id == new.id {
                continue;
            } else if s.device_id == new.device_id {
                RevokeReason::Replaced
            } else if kept.contains(&s.device_id) {
                continue;
            } else if kept.len() < self.rules.max_devices {
                kept.push(s.device_id);
                continue;
            } else {
                RevokeReason::SignedInElsewhere
            };
            if self.store.revoke_session(s.id, now).await? {
                self.events.session_revoked(Principal::User(user), s.id, reason);
            }
        }
        Ok(())
    }

    /// The user's devices, most recently used first, with their live session counts.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn devices(&self, user: UserId) -> Result<Vec<(crate::model::account::Device, u32)>> {
        let live = self.store.live_sessions(user, now_ms()).await?;
        let mut devices = self.store.devices(user).await?;
        devices.sort_by_key(|d| std::cmp::Reverse(d.last_seen_at));
        Ok(devices
            .into_iter()
            .map(|d| {
                let n = live.iter().filter(|s| s.device_id == d.id).count() as u32;
                (d, n)
            })
            .collect())
    }

    /// Signs one of the user's devices out.
    ///
    /// # Errors
    /// `not_found` for a device that is not the user's, `unavailable`.
    pub async fn sign_out_device(&self, user: UserId, device: crate::model::ids::DeviceId) -> Result<()> {
        if !self.store.devices(user).await?.iter().any(|d| d.id == device) {
            return Err(Error::NotFound("device"));
        }
        for s in self.store.revoke_device_sessions(user, device, now_ms()).await? {
            self.events.session_revoked(Principal::User(user), s, RevokeReason::SignedOut);
        }
        Ok(())
    }

    /// Counts a wrong code against the number and returns the error to answer with.
    async fn wrong_code(&self, pk: &PhoneKey, now: Millis, attempts_left: u32) -> Error {
        let guard = match self.store.add_failure(pk, now).await {
            Ok(g) => g,
            Err(e) => return e,
        };
        if guard.failures >= self.rules.lockout_after {
            let factor = 1u32 << guard.lockouts.min(16);
            let lock = self.rules.lockout_base.saturating_mul(factor).min(MAX_LOCKOUT);
            if let Err(e) = self.store.lock_phone(pk, now + ms(lock)).await {
                return e;
            }
            tracing::warn!(lockouts = guard.lockouts + 1, lock_s = lock.as_secs(), "number locked after wrong codes");
            return Error::TooManyAttempts { retry_after: Some(lock) };
        }
        if attempts_left == 0 {
            return Error::TooManyAttempts { retry_after: None };
        }
        Error::CodeInvalid { attempts_left }
    }

    /// The live session and user behind a token.
    ///
    /// # Errors
    /// `unauthorized` for an unknown, expired or revoked token; `unavailable`.
    pub async fn authenticate(&self, token: &str) -> Result<(Session, User)> {
        if !tokens::looks_like_token(token) {
            return Err(Error::Unauthorized);
        }
        let session = self.store.session_by_token(&tokens::hash_token(token)).await?.ok_or(Error::Unauthorized)?;
        if !session.is_live(now_ms()) {
            return Err(Error::Unauthorized);
        }
        let user = self.store.user(session.user_id).await?.ok_or(Error::Unauthorized)?;
        Ok((session, user))
    }

    /// The session by id, if it is still live (to re-check a socket's session at its expiry).
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn live_session(&self, id: SessionId) -> Result<Option<Session>> {
        let now = now_ms();
        Ok(self.store.session(id).await?.filter(|s| s.is_live(now)))
    }

    /// Gives the session a new token and a fresh expiry; the old token stops working.
    ///
    /// # Errors
    /// `unauthorized` if the session is no longer live; `unavailable`.
    pub async fn refresh(&self, session: SessionId) -> Result<(String, Millis)> {
        let now = now_ms();
        let (token, hash) = tokens::new_token();
        let expires_at = now + ms(self.rules.session_ttl);
        if !self.store.rotate_session(session, &hash, expires_at, now).await? {
            return Err(Error::Unauthorized);
        }
        Ok((token, expires_at))
    }

    /// Signs the session out: its token stops working and its live sockets are told and closed.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn sign_out(&self, user: UserId, session: SessionId) -> Result<()> {
        self.store.revoke_session(session, now_ms()).await?;
        self.events.session_revoked(Principal::User(user), session, RevokeReason::SignedOut);
        Ok(())
    }

    /// The user with this id.
    ///
    /// # Errors
    /// `not_found`, `unavailable`.
    pub async fn user(&self, id: UserId) -> Result<User> {
        self.store.user(id).await?.ok_or(Error::NotFound("user"))
    }
}
