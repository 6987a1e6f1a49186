//! The account's side of sign-in: its user record, the move to a new number, and what deleting
//! the account needs from sign-in (the number's traces, a signed confirmation).

use super::sign_in::number_quota_keys;
use super::{secrets, Auth, CodeSent, DAY};
use crate::error::{Error, Result};
use crate::model::account::{PhoneKey, User};
use crate::model::ids::UserId;
use crate::model::phone::Phone;
use crate::model::sms::SmsPurpose;
use crate::model::time::{now_ms, Millis};
use crate::ports::quota;
use std::net::IpAddr;

/// Number changes an account may ask for per day (each sends an SMS).
pub const PHONE_CHANGES_PER_DAY: u64 = 5;

impl Auth {
    /// The user with this id.
    ///
    /// # Errors
    /// `not_found`, `unavailable`.
    pub async fn user(&self, id: UserId) -> Result<User> {
        self.accounts.user(id).await?.ok_or(Error::NotFound("user"))
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
        if self.accounts.user(user).await?.ok_or(Error::Unauthorized)?.phone == phone {
            return Err(Error::BadRequest("this is the account's number already".into()));
        }
        quota::check(self.quotas.as_ref(), &Self::change_quota_key(user), DAY, PHONE_CHANGES_PER_DAY).await?;
        self.send_code(&phone, self.change_key(user, &phone), SmsPurpose::PhoneChange, client_ip).await
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
        match self.accounts.change_phone(user, &phone).await {
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
        if !secrets::constant_time_eq(mac, &expected) || who != user.0.simple().to_string() || expires_at <= now {
            return Err(Error::ConfirmationInvalid);
        }
        Ok(())
    }
}
