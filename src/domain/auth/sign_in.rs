//! Sign-in by code: a code is sent under the number's, the client address's and the hub's limits,
//! and checked with its tries counted and the number locked after too many wrong ones.

use super::{secrets, Auth, CodeSent, DeviceInfo, SignedIn, DAY, HOUR, TEN_MINUTES};
use crate::domain::sessions::Opened;
use crate::error::{Error, Result};
use crate::model::account::{Holder, PhoneKey, SignInCode};
use crate::model::ids::CodeId;
use crate::model::phone::Phone;
use crate::model::sms::SmsPurpose;
use crate::model::time::{ms, now_ms, Millis};
use crate::model::typed;
use crate::ports::quota;
use crate::ports::sms::Sms;
use std::net::IpAddr;
use std::time::Duration;

/// The rate-limit counters of one number (by its keyed hash): the resend cooldown, the 10-minute
/// and the daily caps. Named once, for the checks and for the account deletion that forgets them.
pub(super) fn number_quota_keys(pk: &PhoneKey) -> [String; 3] {
    ["resend", "10min", "day"].map(|window| format!("code:{window}:{}", pk.0))
}

/// A lock-out never lasts longer than this, however often it repeats.
const MAX_LOCKOUT: Duration = DAY;

impl Auth {
    /// Sends a sign-in code to `phone` (`POST /v1/auth/code`).
    ///
    /// # Errors
    /// `invalid_phone`, `country_not_allowed`, `rate_limited` (cooldown, per-number or per-IP caps),
    /// `too_many_attempts` (the number is locked), `sms_budget_exhausted`, `sms_unavailable`,
    /// `unavailable`.
    pub async fn request_code(&self, phone: &str, client_ip: IpAddr) -> Result<CodeSent> {
        let phone = self.phones.parse(phone)?;
        let pk = self.phone_key(&phone);
        self.send_code(&phone, pk, SmsPurpose::SignIn, client_ip).await
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

        let (user, new_user) = self.accounts.register_user(&phone, now).await?;
        let device = self.accounts.upsert_device(user.id, device_id, device.name.trim(), now).await?;
        let Opened { token, session } =
            self.sessions.open(Holder::User { user: user.id, device: device.id }, now).await?;
        self.hand_over(user.id, &session, now).await?;
        metrics::counter!(crate::metrics::SIGN_INS).increment(1);
        tracing::info!(user_id = %user.id, device_id = %device.id, new_user, "signed in");
        Ok(SignedIn { token, session, user, device, new_user })
    }

    /// Sends a new code for `purpose` to `phone`, stored under `code_key`; the number's own rate
    /// limits and the SMS budget apply whatever the code is for.
    pub(super) async fn send_code(
        &self,
        phone: &Phone,
        code_key: PhoneKey,
        purpose: SmsPurpose,
        client_ip: IpAddr,
    ) -> Result<CodeSent> {
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

        let code = secrets::new_code();
        self.codes
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
        let text = self.texts.render(purpose, phone, &code, minutes);
        self.sms.send(&Sms { to: phone.clone(), text }).await?;
        metrics::counter!(crate::metrics::OTP_SENT).increment(1);
        Ok(sent)
    }

    async fn refuse_if_locked(&self, pk: &PhoneKey, now: Millis) -> Result<()> {
        let guard = self.codes.phone_guard(pk).await?;
        match guard.locked_until {
            Some(until) if until > now => {
                Err(Error::TooManyAttempts { retry_after: Some(Duration::from_millis((until - now) as u64)) })
            }
            _ => Ok(()),
        }
    }

    /// Checks `code` against the newest code stored under `code_key` for `phone` (or the test code
    /// of a test number), counting the try and locking the key after too many wrong ones. A right
    /// code is used up and the key's wrong tries are forgotten. The code is read as typed
    /// ([`typed::sign_in_code`]: Persian digits, spaces and invisible characters are fine).
    pub(super) async fn check_code(&self, phone: &Phone, code_key: &PhoneKey, code: &str, now: Millis) -> Result<()> {
        let code = typed::sign_in_code(code)?;
        let code = code.as_str();
        let pk = code_key;
        self.refuse_if_locked(pk, now).await?;
        if self.is_test_number(phone) {
            let expected = self.rules.test_code.as_deref().unwrap_or_default();
            if !secrets::constant_time_eq(code, expected) {
                return Err(self.wrong_code(pk, now, self.rules.code_max_attempts).await);
            }
        } else {
            let Some(current) = self.codes.current_code(pk).await? else {
                return Err(Error::CodeExpired);
            };
            if current.expires_at <= now {
                return Err(Error::CodeExpired);
            }
            // Count the try before comparing, so concurrent guesses cannot exceed the limit.
            let Some(attempts) = self.codes.count_attempt(current.id).await? else {
                return Err(Error::CodeExpired);
            };
            if attempts > self.rules.code_max_attempts {
                return Err(Error::TooManyAttempts { retry_after: None });
            }
            if !self.keyed.code_matches(&pk.0, code, &current.code_hash) {
                let left = self.rules.code_max_attempts - attempts;
                return Err(self.wrong_code(pk, now, left).await);
            }
            if !self.codes.consume_code(current.id).await? {
                return Err(Error::CodeExpired);
            }
        }
        self.codes.clear_guard(pk).await
    }

    /// Counts a wrong code against the number and returns the error to answer with.
    async fn wrong_code(&self, pk: &PhoneKey, now: Millis, attempts_left: u32) -> Error {
        let guard = match self.codes.add_failure(pk, now).await {
            Ok(g) => g,
            Err(e) => return e,
        };
        if guard.failures >= self.rules.lockout_after {
            let factor = 1u32 << guard.lockouts.min(16);
            let lock = self.rules.lockout_base.saturating_mul(factor).min(MAX_LOCKOUT);
            if let Err(e) = self.codes.lock_phone(pk, now + ms(lock)).await {
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
}
