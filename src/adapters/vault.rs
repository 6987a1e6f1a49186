//! The vault: personal identifiers sealed at rest.
//!
//! A value that names a person outside the hub (a mobile number) is stored sealed with
//! XChaCha20-Poly1305 under the current data key: a fresh random 24-byte nonce per value, and the
//! value's purpose and owner as associated data, so that a sealed value cannot be moved to another
//! row or column and still open. The key's id is stored beside it. Lookups go by a keyed hash
//! (HMAC-SHA-256) under a second key derived from the same data key. The data keys come from
//! settings (a key file or the environment), never the database: a copied database alone reveals no
//! number and signs nobody in.
//!
//! Several keys may be configured: the first is current (new values are sealed and hashed under
//! it); the others still open and find the values sealed under them, until every row has been
//! sealed again under the current key (`anapars-hub keys rotate`).

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;
use std::fmt;

/// Bytes of a data key.
pub const KEY_BYTES: usize = 32;
/// Bytes of a nonce, stored in front of each sealed value.
const NONCE_BYTES: usize = 24;
/// Longest key id.
const MAX_ID_CHARS: usize = 32;

/// What a sealed value is: part of its associated data, and of its lookup hash's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A user's mobile number (E.164).
    Phone,
    /// Where a device's push notifications go: an FCM or APNs token, or a Web Push subscription.
    PushAddress,
    /// The IP address a socket came from.
    IpAddress,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Phone => b"phone",
            Self::PushAddress => b"push address",
            Self::IpAddress => b"ip address",
        }
    }
}

/// Why a sealed value did not open, or keys could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum VaultError {
    /// The value names a key the hub was not given.
    UnknownKey(String),
    /// The value does not open under its key: altered, or moved from another row.
    Corrupt,
    /// The configured keys are not usable.
    BadKeys(String),
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey(id) => {
                write!(f, "a stored value is sealed under data key {id:?}, which is not configured")
            }
            Self::Corrupt => f.write_str("a stored value does not open under its data key"),
            Self::BadKeys(why) => write!(f, "data keys: {why}"),
        }
    }
}

impl std::error::Error for VaultError {}

/// One data key, with what is derived from it.
struct DataKey {
    id: String,
    seal: XChaCha20Poly1305,
    lookup: [u8; 32],
    hub_secret: [u8; 32],
}

impl DataKey {
    fn new(id: &str, secret: &[u8; KEY_BYTES]) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"anapars-hub data key"), secret);
        let (mut seal, mut lookup, mut hub_secret) = ([0u8; 32], [0u8; 32], [0u8; 32]);
        // 32 bytes are far below HKDF-SHA-256's limit: expanding cannot fail.
        let _ = hk.expand(b"seal", &mut seal);
        let _ = hk.expand(b"lookup", &mut lookup);
        let _ = hk.expand(b"hub secret", &mut hub_secret);
        Self { id: id.to_owned(), seal: XChaCha20Poly1305::new(&seal.into()), lookup, hub_secret }
    }
}

/// A sealed value as stored: the key's id, and nonce followed by ciphertext and tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// The id of the data key it is sealed under.
    pub key_id: String,
    /// Nonce, ciphertext and tag.
    pub bytes: Vec<u8>,
}

/// The hub's data keys.
pub struct Vault {
    /// The current key first.
    keys: Vec<DataKey>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault").field("keys", &self.key_ids()).finish()
    }
}

impl Vault {
    /// Reads keys written as `id:base64` entries separated by whitespace or commas (a key file's
    /// lines, `#` starting a comment, or `HUB_DATA_KEYS`); the first is current. Ids are 1 to 32 letters, digits, `-` or
    /// `_`, each once; keys are 32 bytes of standard base64.
    ///
    /// # Errors
    /// [`VaultError::BadKeys`] naming the entry (never the key).
    pub fn parse(text: &str) -> Result<Self, VaultError> {
        let mut keys: Vec<DataKey> = Vec::new();
        let entries = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default())
            .flat_map(|line| line.split(|c: char| c.is_whitespace() || c == ','))
            .filter(|e| !e.is_empty());
        for entry in entries {
            let (id, key) =
                entry.split_once(':').ok_or_else(|| VaultError::BadKeys("each key is written id:base64".into()))?;
            let good_id = (1..=MAX_ID_CHARS).contains(&id.chars().count())
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !good_id {
                return Err(VaultError::BadKeys(format!(
                    "a key id is 1 to {MAX_ID_CHARS} letters, digits, - or _ (got {id:?})"
                )));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(VaultError::BadKeys(format!("key id {id:?} is given twice")));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key)
                .ok()
                .and_then(|b| <[u8; KEY_BYTES]>::try_from(b).ok())
                .ok_or_else(|| VaultError::BadKeys(format!("key {id:?} is not {KEY_BYTES} bytes of base64")))?;
            keys.push(DataKey::new(id, &bytes));
        }
        if keys.is_empty() {
            return Err(VaultError::BadKeys("no key is given".into()));
        }
        Ok(Self { keys })
    }

    /// A new key entry (`id:base64`) of fresh random bytes.
    pub fn generate_entry(id: &str) -> String {
        let mut key = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut key);
        format!("{id}:{}", base64::engine::general_purpose::STANDARD.encode(key))
    }

    /// The ids of the keys, the current one first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// The current key's id.
    pub fn current(&self) -> &str {
        &self.keys[0].id
    }

    /// The hub's secret for hashing sign-in codes and the numbers in lock-outs and rate limits
    /// when the `secret` setting is unset: derived from the current key, so it is outside the
    /// database too (a copy of the database cannot test numbers against those hashes). A new
    /// current key makes codes in flight invalid and starts lock-out counts afresh.
    pub fn hub_secret(&self) -> [u8; 32] {
        self.keys[0].hub_secret
    }

    /// `value` of `owner` sealed under the current key.
    pub fn seal(&self, purpose: Purpose, owner: &[u8], value: &[u8]) -> Sealed {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated(purpose, owner);
        // Sealing fails only for inputs beyond 256 GiB.
        let sealed =
            key.seal.encrypt(XNonce::from_slice(&nonce), Payload { msg: value, aad: &aad }).unwrap_or_default();
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Sealed { key_id: key.id.clone(), bytes }
    }

    /// The value `sealed` holds for `owner`.
    ///
    /// # Errors
    /// [`VaultError::UnknownKey`] naming the key id, [`VaultError::Corrupt`].
    pub fn open(&self, purpose: Purpose, owner: &[u8], sealed: &Sealed) -> Result<Vec<u8>, VaultError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| VaultError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.bytes.len() < NONCE_BYTES {
            return Err(VaultError::Corrupt);
        }
        let (nonce, body) = sealed.bytes.split_at(NONCE_BYTES);
        let aad = associated(purpose, owner);
        key.seal.decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: &aad }).map_err(|_| VaultError::Corrupt)
    }

    /// The lookup hash of `value` under the current key: what a unique index holds.
    pub fn lookup(&self, purpose: Purpose, value: &[u8]) -> Vec<u8> {
        lookup_hash(&self.keys[0], purpose, value)
    }

    /// The lookup hashes of `value` under every key, the current one first: a row written before
    /// the last rotation finished holds one of the others.
    pub fn lookups(&self, purpose: Purpose, value: &[u8]) -> Vec<Vec<u8>> {
        self.keys.iter().map(|k| lookup_hash(k, purpose, value)).collect()
    }
}

/// The vault of `config`'s data keys: `data_keys`, else `data_keys_file`; else, for the SQLite
/// database at `sqlite`, the file beside it (`<file>.keys`), created with one fresh key on first
/// start.
///
/// # Errors
/// Keys that do not parse (the message names the setting, never a key), a key file that cannot be
/// read or created, or Postgres (`sqlite` is `None`) without keys.
pub fn load(config: &crate::config::Config, sqlite: Option<&std::path::Path>) -> anyhow::Result<Vault> {
    use anyhow::Context as _;
    if let Some(keys) = &config.data_keys {
        return Vault::parse(&keys.0).context("data_keys (HUB_DATA_KEYS)");
    }
    if let Some(path) = &config.data_keys_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read data_keys_file {}", path.display()))?;
        return Vault::parse(&text).with_context(|| format!("data_keys_file {}", path.display()));
    }
    let Some(database) = sqlite else {
        anyhow::bail!(
            "set data_keys_file or HUB_DATA_KEYS: on Postgres every node must seal and open personal data with the \
             same keys, kept outside the database (a new key: `anapars-hub keys new`)"
        );
    };
    let mut path = database.to_path_buf().into_os_string();
    path.push(".keys");
    let path = std::path::PathBuf::from(path);
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
    }
    let text = format!(
        "# Anapars Hub data keys: they seal the users' mobile numbers in {}.\n\
         # Back this file up apart from the database: the database cannot be read without it.\n{}\n",
        database.display(),
        Vault::generate_entry("k1")
    );
    match create_private(&path, &text) {
        Ok(()) => {
            tracing::warn!(path = %path.display(), "created the data keys file: back it up apart from the database")
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create the data keys file {}", path.display())),
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Vault::parse(&text).with_context(|| format!("data keys file {}", path.display()))
}

/// Writes a new file only its owner may read; `AlreadyExists` if there is one.
fn create_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn associated(purpose: Purpose, owner: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(purpose.label().len() + 1 + owner.len());
    aad.extend_from_slice(purpose.label());
    aad.push(0);
    aad.extend_from_slice(owner);
    aad
}

fn lookup_hash(key: &DataKey, purpose: Purpose, value: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.lookup).expect("HMAC accepts any key length");
    mac.update(purpose.label());
    mac.update(&[0]);
    mac.update(value);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(entries: &[&str]) -> Vault {
        Vault::parse(&entries.join("\n")).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_owner_and_purpose_and_never_shows_the_value() {
        let v = vault(&[&Vault::generate_entry("k1")]);
        let sealed = v.seal(Purpose::Phone, b"user-1", b"+989121234567");
        assert_eq!(sealed.key_id, "k1");
        assert!(!sealed.bytes.windows(4).any(|w| w == b"9121"), "no digits of the number in the sealed bytes");
        assert_eq!(v.open(Purpose::Phone, b"user-1", &sealed).unwrap(), b"+989121234567");
        assert_eq!(v.open(Purpose::Phone, b"user-2", &sealed), Err(VaultError::Corrupt), "moved to another row");
        let again = v.seal(Purpose::Phone, b"user-1", b"+989121234567");
        assert_ne!(again.bytes, sealed.bytes, "a fresh nonce each time");
        let mut altered = sealed.clone();
        altered.bytes[30] ^= 1;
        assert_eq!(v.open(Purpose::Phone, b"user-1", &altered), Err(VaultError::Corrupt));
    }

    #[test]
    fn older_keys_open_and_find_until_rotated_and_unknown_keys_are_named() {
        let (old, new) = (Vault::generate_entry("2025"), Vault::generate_entry("2026"));
        let before = vault(&[&old]);
        let sealed = before.seal(Purpose::Phone, b"u", b"+989121234567");
        let after = vault(&[&new, &old]);
        assert_eq!(after.current(), "2026");
        assert_eq!(after.open(Purpose::Phone, b"u", &sealed).unwrap(), b"+989121234567");
        let hashes = after.lookups(Purpose::Phone, b"+989121234567");
        assert_eq!(hashes[1], before.lookup(Purpose::Phone, b"+989121234567"), "the old row is still found");
        assert_ne!(hashes[0], hashes[1]);
        let retired = vault(&[&new]);
        let err = retired.open(Purpose::Phone, b"u", &sealed).unwrap_err();
        assert_eq!(err.to_string(), "a stored value is sealed under data key \"2025\", which is not configured");
    }

    #[test]
    fn bad_key_lists_are_refused_without_showing_keys() {
        for (text, says) in
            [("", "no key"), ("k1", "id:base64"), ("k1:c2hvcnQ=", "not 32 bytes"), ("bad!:AAAA", "letters, digits")]
        {
            let err = Vault::parse(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text:?}: {err}");
        }
        let entry = Vault::generate_entry("a");
        assert!(Vault::parse(&format!("{entry},{entry}")).unwrap_err().to_string().contains("twice"));
        let parsed = Vault::parse(&format!("# keys\n{}\n{entry}", Vault::generate_entry("b"))).unwrap();
        assert_eq!(parsed.key_ids(), ["b", "a"]);
    }
}
