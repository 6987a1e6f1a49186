//! Rows of `users` as far as their numbers go, and the statements both backends run on them (`?N`
//! placeholders; Postgres spells them `$N`). A number is stored only sealed by the [`Vault`], and
//! found by its lookup hash under each data key.

use crate::adapters::sql::rows::sealed::{StoredValue, NUMBERS};
use crate::adapters::vault::{Purpose, Vault};
use crate::error::{Error, Result};
use crate::model::account::User;
use crate::model::ids::UserId;
use crate::model::phone::Phone;
use crate::model::time::Millis;
use uuid::Uuid;

/// User `?1`.
pub(in crate::adapters::sql) const BY_ID: &str =
    "SELECT id, phone_sealed, phone_key_id, registered_at FROM users WHERE id = ?1";

/// Users whose lookup hash is one of a list the backend appends.
pub(in crate::adapters::sql) const BY_HASH: &str =
    "SELECT id, phone_sealed, phone_key_id, registered_at FROM users WHERE phone_hash ";

/// Registers user `?1` with sealed number `?2` under key `?3`, lookup hash `?4`, at `?5`; nothing
/// when the hash is taken.
pub(in crate::adapters::sql) const INSERT: &str =
    "INSERT INTO users (id, phone_sealed, phone_key_id, phone_hash, registered_at) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (phone_hash) DO NOTHING RETURNING id, phone_sealed, phone_key_id, registered_at";

/// Gives user `?1` the sealed number `?2` under key `?3` with lookup hash `?4` (bound by
/// [`super::sealed::bind_stored`], as are the first four of [`INSERT`]).
pub(in crate::adapters::sql) const SET_NUMBER: &str =
    "UPDATE users SET phone_sealed = ?2, phone_key_id = ?3, phone_hash = ?4 WHERE id = ?1";

/// `phone` of `user` as it is stored, under the vault's current key, with its lookup hash.
pub(in crate::adapters::sql) fn stored_number(vault: &Vault, user: UserId, phone: &str) -> StoredValue {
    NUMBERS.stored(vault, user.0, phone.as_bytes())
}

/// The lookup hashes `phone` may be stored under, one per data key.
pub(in crate::adapters::sql) fn lookups(vault: &Vault, phone: &Phone) -> Vec<Vec<u8>> {
    vault.lookups(Purpose::Phone, phone.e164().as_bytes())
}

/// `users`: `id, phone_sealed, phone_key_id, registered_at`.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct UserRow {
    id: Uuid,
    phone_sealed: Option<Vec<u8>>,
    phone_key_id: Option<String>,
    registered_at: Millis,
}

impl UserRow {
    /// The user's id.
    pub(in crate::adapters::sql) fn id(&self) -> Uuid {
        self.id
    }

    /// The user, their number opened.
    ///
    /// # Errors
    /// [`Error::Internal`] naming an unknown key id, or a number that does not open.
    pub(in crate::adapters::sql) fn open(self, vault: &Vault) -> Result<User> {
        let phone = NUMBERS.open_row(vault, self.id, self.phone_sealed, self.phone_key_id)?;
        let phone = String::from_utf8(phone).map_err(|_| Error::Internal("a sealed number is not text".into()))?;
        Ok(User { id: UserId(self.id), phone: Phone::from_e164(phone), registered_at: self.registered_at })
    }
}

/// Rows as users, each opened.
pub(in crate::adapters::sql) fn open_all(rows: Vec<UserRow>, vault: &Vault) -> Result<Vec<User>> {
    rows.into_iter().map(|r| r.open(vault)).collect()
}
