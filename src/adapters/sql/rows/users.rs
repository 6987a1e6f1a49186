//! Rows of `users` as far as their numbers go, and the statements both backends run on them (`?N`
//! placeholders; Postgres spells them `$N`). A number is stored only sealed by the [`Vault`], and
//! found by its lookup hash under each data key.

use crate::adapters::vault::{Purpose, Sealed, Vault, VaultError};
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

/// Gives user `?1` the sealed number `?2` under key `?3` with lookup hash `?4`.
pub(in crate::adapters::sql) const SET_NUMBER: &str =
    "UPDATE users SET phone_sealed = ?2, phone_key_id = ?3, phone_hash = ?4 WHERE id = ?1";

/// Up to `?1` users whose number is still plain (databases made before numbers were sealed).
pub(in crate::adapters::sql) const PLAIN: &str = "SELECT id, phone FROM users WHERE phone IS NOT NULL LIMIT ?1";

/// Seals user `?1`'s plain number: as [`SET_NUMBER`], and the plain one gone.
pub(in crate::adapters::sql) const SEAL_PLAIN: &str =
    "UPDATE users SET phone_sealed = ?2, phone_key_id = ?3, phone_hash = ?4, phone = NULL WHERE id = ?1";

/// How many numbers each data key seals.
pub(in crate::adapters::sql) const COUNTS: &str = "SELECT phone_key_id, COUNT(*) FROM users \
     WHERE phone_key_id IS NOT NULL GROUP BY phone_key_id ORDER BY COUNT(*) DESC, phone_key_id";

/// Up to `?2` users whose number is sealed under another key than `?1`.
pub(in crate::adapters::sql) const NOT_UNDER: &str = "SELECT id, phone_sealed, phone_key_id FROM users \
     WHERE phone_key_id <> ?1 LIMIT ?2";

/// Seals user `?1`'s number again (`?2` to `?4` as in [`SET_NUMBER`]) if it is still the value
/// `?5` under key `?6` that was read.
pub(in crate::adapters::sql) const RESEAL: &str =
    "UPDATE users SET phone_sealed = ?2, phone_key_id = ?3, phone_hash = ?4 \
     WHERE id = ?1 AND phone_sealed = ?5 AND phone_key_id = ?6";

/// A number to seal again: the user, and the number as stored.
pub(in crate::adapters::sql) type OldNumber = (Uuid, Vec<u8>, String);

/// The number of `old` sealed again under the current key.
///
/// # Errors
/// [`Error::Internal`] naming an unknown key id, or a number that does not open.
pub(in crate::adapters::sql) fn resealed(vault: &Vault, old: &OldNumber) -> Result<StoredNumber> {
    let (id, bytes, key_id) = old;
    let phone = open_number(vault, *id, Sealed { key_id: key_id.clone(), bytes: bytes.clone() })?;
    Ok(stored_number(vault, UserId(*id), &phone))
}

/// User `id`'s number as `sealed` holds it.
///
/// # Errors
/// [`Error::Internal`] naming an unknown key id, or a number that does not open.
fn open_number(vault: &Vault, id: Uuid, sealed: Sealed) -> Result<String> {
    let plain = vault.open(Purpose::Phone, id.as_bytes(), &sealed).map_err(vault_error)?;
    String::from_utf8(plain).map_err(|_| Error::Internal("a sealed number is not text".into()))
}

/// Counts per key as read by [`COUNTS`].
pub(in crate::adapters::sql) fn counts(rows: Vec<(String, i64)>) -> Vec<(String, u64)> {
    rows.into_iter().map(|(id, n)| (id, u64::try_from(n).unwrap_or(0))).collect()
}

/// Batch size of sealing plain numbers.
pub(in crate::adapters::sql) const SEAL_BATCH: i64 = 1000;

/// A number as stored: sealed for its user, the key's id, and its lookup hash under that key.
pub(in crate::adapters::sql) struct StoredNumber {
    pub sealed: Vec<u8>,
    pub key_id: String,
    pub hash: Vec<u8>,
}

/// `phone` of `user` as it is stored, under the vault's current key.
pub(in crate::adapters::sql) fn stored_number(vault: &Vault, user: UserId, phone: &str) -> StoredNumber {
    let Sealed { key_id, bytes } = vault.seal(Purpose::Phone, user.0.as_bytes(), phone.as_bytes());
    StoredNumber { sealed: bytes, key_id, hash: vault.lookup(Purpose::Phone, phone.as_bytes()) }
}

/// A statement of either backend, its arguments being bound.
type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>;

/// Binds `?1` to `?4` of [`SET_NUMBER`] and [`SEAL_PLAIN`] (and the first four of [`INSERT`]):
/// the user, the sealed number, its key's id and its lookup hash, on either backend.
pub(in crate::adapters::sql) fn bind_number<'q, DB>(
    query: Query<'q, DB>,
    user: Uuid,
    number: &'q StoredNumber,
) -> Query<'q, DB>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query.bind(user).bind(number.sealed.as_slice()).bind(number.key_id.as_str()).bind(number.hash.as_slice())
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
        let (Some(bytes), Some(key_id)) = (self.phone_sealed, self.phone_key_id) else {
            return Err(Error::Internal("a user's sealed number is missing".into()));
        };
        let phone = open_number(vault, self.id, Sealed { key_id, bytes })?;
        Ok(User { id: UserId(self.id), phone: Phone::from_e164(phone), registered_at: self.registered_at })
    }
}

/// Rows as users, each opened.
pub(in crate::adapters::sql) fn open_all(rows: Vec<UserRow>, vault: &Vault) -> Result<Vec<User>> {
    rows.into_iter().map(|r| r.open(vault)).collect()
}

/// A vault's refusal as the store's error: internal, naming the key id where there is one.
pub(in crate::adapters::sql) fn vault_error(e: VaultError) -> Error {
    Error::Internal(e.to_string())
}
