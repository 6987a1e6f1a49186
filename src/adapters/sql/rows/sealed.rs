//! The columns that hold values sealed by the [`Vault`] (mobile numbers, push addresses, IP
//! addresses), described once so that counting them per key, sealing them again under the current
//! key and sealing the plain values of databases made before sealing work the same for each, on
//! both backends (`?N` placeholders; Postgres spells them `$N`).
//!
//! Each value is sealed for its row's id (the owner bound into the associated data), so a sealed
//! value copied to another row does not open.

use crate::adapters::vault::{Purpose, Sealed, Vault, VaultError};
use crate::error::{Error, Result};
use crate::ports::store::SealedCount;
use uuid::Uuid;

/// One column of sealed values and the plain columns it replaced.
pub(in crate::adapters::sql) struct SealedColumn {
    /// What the values are, as an operator reads it.
    pub what: &'static str,
    table: &'static str,
    /// The row's id: the owner each value is sealed for.
    owner: &'static str,
    sealed: &'static str,
    key_id: &'static str,
    purpose: Purpose,
    /// The unique lookup hash beside the value, for values found by their content.
    hash: Option<&'static str>,
    /// The plain columns of databases made before sealing, the first always set on a plain row.
    plain: &'static [&'static str],
    /// SQLite's index on the plain columns, which SQLite will not drop with them (Postgres drops
    /// a column's indexes with the column, and has none of this name).
    sqlite_plain_index: Option<&'static str>,
    /// Up to `?1` rows still plain, as [`PlainRow`].
    plain_rows: &'static str,
}

/// Every sealed column.
pub(in crate::adapters::sql) const COLUMNS: [&SealedColumn; 3] = [&NUMBERS, &PUSH_ADDRESSES, &IP_ADDRESSES];

/// The users' mobile numbers, found by their lookup hash.
pub(in crate::adapters::sql) const NUMBERS: SealedColumn = SealedColumn {
    what: "mobile numbers",
    table: "users",
    owner: "id",
    sealed: "phone_sealed",
    key_id: "phone_key_id",
    purpose: Purpose::Phone,
    hash: Some("phone_hash"),
    plain: &["phone"],
    sqlite_plain_index: Some("users_phone_idx"),
    plain_rows: "SELECT id AS owner, phone AS text FROM users WHERE phone IS NOT NULL LIMIT ?1",
};

/// Where each device session's notifications go: the FCM or APNs token, or the Web Push
/// subscription ([`super::push::address_bytes`]).
pub(in crate::adapters::sql) const PUSH_ADDRESSES: SealedColumn = SealedColumn {
    what: "push addresses",
    table: "push_registrations",
    owner: "session_id",
    sealed: "address_sealed",
    key_id: "address_key_id",
    purpose: Purpose::PushAddress,
    hash: None,
    plain: &["token", "endpoint", "p256dh", "auth"],
    sqlite_plain_index: None,
    plain_rows: "SELECT session_id AS owner, token AS text, endpoint, p256dh, auth FROM push_registrations \
         WHERE address_sealed IS NULL LIMIT ?1",
};

/// The IP address each recorded user socket came from.
pub(in crate::adapters::sql) const IP_ADDRESSES: SealedColumn = SealedColumn {
    what: "IP addresses",
    table: "connections",
    owner: "id",
    sealed: "ip_sealed",
    key_id: "ip_key_id",
    purpose: Purpose::IpAddress,
    hash: None,
    plain: &["ip"],
    sqlite_plain_index: None,
    plain_rows: "SELECT id AS owner, ip AS text FROM connections WHERE ip IS NOT NULL LIMIT ?1",
};

/// Rows sealed per batch: each batch is one transaction.
pub(in crate::adapters::sql) const SEAL_BATCH: i64 = 1000;

/// A value as stored: sealed for its owner, the key's id, and its lookup hash under that key where
/// the column has one.
pub(in crate::adapters::sql) struct StoredValue {
    pub sealed: Vec<u8>,
    pub key_id: String,
    pub hash: Option<Vec<u8>>,
}

/// A value to seal again: the owner, and the value as stored (sealed bytes, key id).
pub(in crate::adapters::sql) type OldValue = (Uuid, Vec<u8>, String);

/// A row still plain, as [`SealedColumn::plain_rows`] reads it: `text` the number, token or IP
/// address; a Web Push subscription in the other three.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct PlainRow {
    pub owner: Uuid,
    #[sqlx(default)]
    text: Option<String>,
    #[sqlx(default)]
    endpoint: Option<String>,
    #[sqlx(default)]
    p256dh: Option<Vec<u8>>,
    #[sqlx(default)]
    auth: Option<Vec<u8>>,
}

impl PlainRow {
    /// The value to seal: the text, or the subscription in [`super::push::address_bytes`]' form.
    ///
    /// # Errors
    /// [`Error::Internal`] for a row with neither.
    pub(in crate::adapters::sql) fn value(&self) -> Result<Vec<u8>> {
        match (&self.text, &self.endpoint, &self.p256dh, &self.auth) {
            (Some(text), ..) => Ok(text.as_bytes().to_vec()),
            (None, Some(endpoint), Some(p256dh), Some(auth)) => {
                Ok(super::push::subscription_bytes(endpoint, p256dh, auth))
            }
            _ => Err(Error::Internal(format!("a plain row {} holds no value", self.owner))),
        }
    }
}

impl SealedColumn {
    /// The table.
    pub(in crate::adapters::sql) fn table(&self) -> &'static str {
        self.table
    }

    /// The first plain column, present until every row is sealed and the plain columns dropped.
    pub(in crate::adapters::sql) fn plain_marker(&self) -> &'static str {
        self.plain[0]
    }

    /// The statements that drop the plain columns once every row is sealed; on SQLite their index
    /// first.
    pub(in crate::adapters::sql) fn drop_plain(&self, sqlite: bool) -> Vec<String> {
        let index = self.sqlite_plain_index.filter(|_| sqlite).map(|i| format!("DROP INDEX IF EXISTS {i}"));
        let columns = self.plain.iter().map(|c| format!("ALTER TABLE {} DROP COLUMN {c}", self.table));
        index.into_iter().chain(columns).collect()
    }

    /// Up to `?1` rows still plain, as [`PlainRow`].
    pub(in crate::adapters::sql) fn plain_rows(&self) -> &'static str {
        self.plain_rows
    }

    /// Seals row `?1`'s plain value: `?2` sealed, `?3` key id (`?4` the lookup hash where the
    /// column has one), the plain columns emptied.
    pub(in crate::adapters::sql) fn seal_plain(&self) -> String {
        let emptied: String = self.plain.iter().map(|c| format!(", {c} = NULL")).collect();
        format!(
            "UPDATE {t} SET {s} = ?2, {k} = ?3{emptied}{h} WHERE {o} = ?1",
            t = self.table,
            s = self.sealed,
            k = self.key_id,
            h = self.hash.map(|h| format!(", {h} = ?4")).unwrap_or_default(),
            o = self.owner,
        )
    }

    /// How many values each key seals: `(key id, count)`.
    pub(in crate::adapters::sql) fn counts(&self) -> String {
        format!(
            "SELECT {k}, COUNT(*) FROM {t} WHERE {k} IS NOT NULL GROUP BY {k} ORDER BY COUNT(*) DESC, {k}",
            t = self.table,
            k = self.key_id,
        )
    }

    /// Up to `?2` values sealed under another key than `?1` in rows whose id is after `?3`, in the
    /// order of the ids (the primary key's: each batch goes on where the last stopped), as
    /// [`OldValue`].
    pub(in crate::adapters::sql) fn not_under(&self) -> String {
        format!(
            "SELECT {o}, {s}, {k} FROM {t} WHERE {k} <> ?1 AND {o} > ?3 ORDER BY {o} LIMIT ?2",
            t = self.table,
            o = self.owner,
            s = self.sealed,
            k = self.key_id,
        )
    }

    /// Seals row `?1`'s value again (`?2` sealed, `?3` key id, `?6` the lookup hash where the
    /// column has one) if it is still the value `?4` under key `?5` that was read: a value changed
    /// meanwhile (a number moved, a token replaced) stays as it was set.
    pub(in crate::adapters::sql) fn reseal(&self) -> String {
        format!(
            "UPDATE {t} SET {s} = ?2, {k} = ?3{h} WHERE {o} = ?1 AND {s} = ?4 AND {k} = ?5",
            t = self.table,
            s = self.sealed,
            k = self.key_id,
            h = self.hash.map(|h| format!(", {h} = ?6")).unwrap_or_default(),
            o = self.owner,
        )
    }

    /// [`Self::reseal`] for a whole batch in one Postgres statement: the arrays `$1` owners, `$2`
    /// sealed values, `$3` key ids, `$4` and `$5` the values as read, `$6` lookup hashes (where the
    /// column has them), one element per row.
    pub(in crate::adapters::sql) fn reseal_batch_postgres(&self) -> String {
        let (hash_set, hash_array, hash_name) = match self.hash {
            Some(h) => (format!(", {h} = v.hash"), ", $6::bytea[]", ", hash"),
            None => (String::new(), "", ""),
        };
        format!(
            "UPDATE {t} AS r SET {s} = v.sealed, {k} = v.key_id{hash_set} \
             FROM UNNEST($1::uuid[], $2::bytea[], $3::text[], $4::bytea[], $5::text[]{hash_array}) \
             AS v(owner, sealed, key_id, old_sealed, old_key_id{hash_name}) \
             WHERE r.{o} = v.owner AND r.{s} = v.old_sealed AND r.{k} = v.old_key_id",
            t = self.table,
            s = self.sealed,
            k = self.key_id,
            o = self.owner,
        )
    }

    /// `value` of `owner` as it is stored, under the vault's current key.
    pub(in crate::adapters::sql) fn stored(&self, vault: &Vault, owner: Uuid, value: &[u8]) -> StoredValue {
        let Sealed { key_id, bytes } = vault.seal(self.purpose, owner.as_bytes(), value);
        StoredValue { sealed: bytes, key_id, hash: self.hash.map(|_| vault.lookup(self.purpose, value)) }
    }

    /// The value `owner`'s row holds.
    ///
    /// # Errors
    /// [`Error::Internal`] naming an unknown key id, or a value that does not open.
    pub(in crate::adapters::sql) fn open(&self, vault: &Vault, owner: Uuid, sealed: Sealed) -> Result<Vec<u8>> {
        vault.open(self.purpose, owner.as_bytes(), &sealed).map_err(|e| vault_error(self.what, e))
    }

    /// The value of a row whose columns may be empty (a row of a database being sealed).
    ///
    /// # Errors
    /// As [`Self::open`], and for a row without a sealed value.
    pub(in crate::adapters::sql) fn open_row(
        &self,
        vault: &Vault,
        owner: Uuid,
        bytes: Option<Vec<u8>>,
        key_id: Option<String>,
    ) -> Result<Vec<u8>> {
        let (Some(bytes), Some(key_id)) = (bytes, key_id) else {
            return Err(Error::Internal(format!("a row's sealed {} is missing", self.what)));
        };
        self.open(vault, owner, Sealed { key_id, bytes })
    }

    /// The value of `old` sealed again under the current key.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub(in crate::adapters::sql) fn resealed(&self, vault: &Vault, old: &OldValue) -> Result<StoredValue> {
        let (owner, bytes, key_id) = old;
        let value = self.open(vault, *owner, Sealed { key_id: key_id.clone(), bytes: bytes.clone() })?;
        Ok(self.stored(vault, *owner, &value))
    }
}

/// A statement of either backend, its arguments being bound.
type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>;

/// Binds `?1` to `?3` (the owner, the sealed value, its key's id) of the statements above, and of
/// the writes of each table that store a sealed value in that order.
pub(in crate::adapters::sql) fn bind_value<'q, DB>(
    query: Query<'q, DB>,
    owner: Uuid,
    value: &'q StoredValue,
) -> Query<'q, DB>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query.bind(owner).bind(value.sealed.as_slice()).bind(value.key_id.as_str())
}

/// Binds `?1` to `?3` as [`bind_value`] does and, where the column has a lookup hash, `?4`: the
/// arguments of [`SealedColumn::seal_plain`], and of the writes that store a number.
pub(in crate::adapters::sql) fn bind_stored<'q, DB>(
    query: Query<'q, DB>,
    owner: Uuid,
    value: &'q StoredValue,
) -> Query<'q, DB>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let query = bind_value(query, owner, value);
    match &value.hash {
        Some(hash) => query.bind(hash.as_slice()),
        None => query,
    }
}

/// Binds [`SealedColumn::reseal`]'s arguments: the new value for `old`'s owner, then `old`.
pub(in crate::adapters::sql) fn bind_reseal<'q, DB>(
    query: Query<'q, DB>,
    old: &'q OldValue,
    value: &'q StoredValue,
) -> Query<'q, DB>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let query = bind_value(query, old.0, value).bind(old.1.as_slice()).bind(old.2.as_str());
    match &value.hash {
        Some(hash) => query.bind(hash.as_slice()),
        None => query,
    }
}

/// Counts per key of `column` as read by [`SealedColumn::counts`].
pub(in crate::adapters::sql) fn counts(column: &SealedColumn, rows: Vec<(String, i64)>) -> Vec<SealedCount> {
    rows.into_iter()
        .map(|(key_id, n)| SealedCount { what: column.what, key_id, values: u64::try_from(n).unwrap_or(0) })
        .collect()
}

/// A vault's refusal as the store's error: internal, naming what did not open and the key id
/// where there is one.
fn vault_error(what: &str, e: VaultError) -> Error {
    Error::Internal(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statements_name_each_columns_placeholders_in_order() {
        assert_eq!(
            NUMBERS.seal_plain(),
            "UPDATE users SET phone_sealed = ?2, phone_key_id = ?3, phone = NULL, phone_hash = ?4 WHERE id = ?1"
        );
        assert_eq!(
            PUSH_ADDRESSES.reseal(),
            "UPDATE push_registrations SET address_sealed = ?2, address_key_id = ?3 \
             WHERE session_id = ?1 AND address_sealed = ?4 AND address_key_id = ?5"
        );
        assert!(NUMBERS.reseal().contains("phone_hash = ?6"));
    }

    #[test]
    fn a_value_opens_only_for_its_owner_and_column() {
        let vault = Vault::parse(&Vault::generate_entry("k1")).expect("vault");
        let (owner, other) = (Uuid::new_v4(), Uuid::new_v4());
        let stored = IP_ADDRESSES.stored(&vault, owner, b"203.0.113.9");
        let sealed = || Sealed { key_id: stored.key_id.clone(), bytes: stored.sealed.clone() };
        assert_eq!(IP_ADDRESSES.open(&vault, owner, sealed()).ok().as_deref(), Some(&b"203.0.113.9"[..]));
        assert!(IP_ADDRESSES.open(&vault, other, sealed()).is_err());
        assert!(PUSH_ADDRESSES.open(&vault, owner, sealed()).is_err());
        assert!(stored.hash.is_none());
        assert!(NUMBERS.stored(&vault, owner, b"+989121234567").hash.is_some());
    }

    #[test]
    fn an_unknown_key_is_named_in_the_error() {
        let vault = Vault::parse(&Vault::generate_entry("k1")).expect("vault");
        let e = IP_ADDRESSES.open(&vault, Uuid::new_v4(), Sealed { key_id: "gone".into(), bytes: vec![0; 40] });
        let Err(Error::Internal(text)) = e else { panic!("not an internal error: {e:?}") };
        assert!(text.contains("\"gone\"") && text.contains("IP addresses"), "{text}");
    }
}
