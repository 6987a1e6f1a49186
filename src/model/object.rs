//! The name of a stored object (an attachment's bytes, its thumbnail): a path of plain segments, so
//! that the same key means the same object in a local folder and in an S3 bucket, and no key can
//! climb out of the store's root.

use std::fmt;

/// Longest key, in bytes (S3 allows 1024; the hub's keys are far shorter).
pub const MAX_KEY_BYTES: usize = 512;

/// A validated object key: segments of ASCII letters, digits, `-`, `_` and `.`, joined by `/`;
/// no empty segment, no segment that starts with a dot (so no `.` or `..`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Checks `key` and wraps it.
    ///
    /// # Errors
    /// A message saying what is wrong, for a key that is empty, too long, has an empty segment,
    /// a segment starting with a dot, or a character outside the allowed set.
    pub fn parse(key: &str) -> Result<Self, String> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(format!("an object key is 1 to {MAX_KEY_BYTES} bytes"));
        }
        for segment in key.split('/') {
            if segment.is_empty() {
                return Err("an object key has no empty segment".into());
            }
            if segment.starts_with('.') {
                return Err("no segment of an object key starts with a dot".into());
            }
            if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
                return Err("an object key holds only ASCII letters, digits, `-`, `_`, `.` and `/`".into());
            }
        }
        Ok(Self(key.to_owned()))
    }

    /// The key `self/segment`.
    ///
    /// # Errors
    /// As [`ObjectKey::parse`] for the joined key.
    pub fn join(&self, segment: &str) -> Result<Self, String> {
        Self::parse(&format!("{}/{segment}", self.0))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this key lies below `prefix` by whole segments (`a/b/c` is under `a/b`; `a/bc` and
    /// `a/b` are not).
    pub fn is_under(&self, prefix: &ObjectKey) -> bool {
        self.0.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.starts_with('/'))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_keys() {
        let key = ObjectKey::parse("attachments/0194f1a2-7c3e/original").unwrap();
        assert_eq!(key.as_str(), "attachments/0194f1a2-7c3e/original");
        assert_eq!(key.join("thumb.jpg").unwrap().as_str(), "attachments/0194f1a2-7c3e/original/thumb.jpg");
        assert!(ObjectKey::parse("a.b_c-D9").is_ok());
    }

    #[test]
    fn keys_that_could_escape_or_confuse_a_store_are_refused() {
        for bad in
            ["", "/a", "a/", "a//b", "..", "a/../b", "./a", "a/.hidden", "a b", "a\\b", "ä", "a?b", "a%2Fb", "a:b"]
        {
            assert!(ObjectKey::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(ObjectKey::parse(&"a".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(ObjectKey::parse(&"a".repeat(MAX_KEY_BYTES + 1)).is_err());
    }

    #[test]
    fn under_means_by_whole_segments() {
        let prefix = ObjectKey::parse("users/ab").unwrap();
        assert!(!ObjectKey::parse("users/ab").unwrap().is_under(&prefix));
        assert!(ObjectKey::parse("users/ab/x").unwrap().is_under(&prefix));
        assert!(!ObjectKey::parse("users/abc/x").unwrap().is_under(&prefix));
        assert!(!ObjectKey::parse("users").unwrap().is_under(&prefix));
    }
}
