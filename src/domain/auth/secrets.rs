//! The secrets of phone sign-in: one-time codes and keyed hashes (session tokens are the sessions
//! desk's, in `domain::sessions::token`).

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A new 6-digit sign-in code, uniform over 000000..=999999.
pub fn new_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// Keyed hashes with the hub's secret key.
#[derive(Clone)]
pub struct Keyed {
    key: Vec<u8>,
}

impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyed(<redacted>)")
    }
}

impl Keyed {
    /// Hashes with `key`.
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn mac(&self, domain: &str, parts: &[&[u8]]) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("hmac takes any key length");
        mac.update(domain.as_bytes());
        for part in parts {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// Hex HMAC of `value` in `domain` (phone numbers, IPs): a stable key that does not reveal the value.
    pub fn key_for(&self, domain: &str, value: &str) -> String {
        let bytes = self.mac(domain, &[value.as_bytes()]).finalize().into_bytes();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The stored hash of a sign-in code, bound to the number it was sent to.
    pub fn code_hash(&self, phone_key: &str, code: &str) -> Vec<u8> {
        self.mac("code", &[phone_key.as_bytes(), code.as_bytes()]).finalize().into_bytes().to_vec()
    }

    /// Compares a typed code with a stored hash in constant time.
    pub fn code_matches(&self, phone_key: &str, code: &str, stored: &[u8]) -> bool {
        self.mac("code", &[phone_key.as_bytes(), code.as_bytes()]).verify_slice(stored).is_ok()
    }
}

/// Constant-time equality of two short strings (the fixed test code).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..200).map(|_| new_code()).collect();
        assert!(codes.iter().all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
        assert!(codes.len() > 190, "200 draws from a million should barely collide");
    }

    #[test]
    fn code_hashes_bind_the_number_and_the_key() {
        let k = Keyed::new(b"k1".to_vec());
        let h = k.code_hash("p1", "123456");
        assert!(k.code_matches("p1", "123456", &h));
        assert!(!k.code_matches("p1", "123457", &h));
        assert!(!k.code_matches("p2", "123456", &h));
        assert!(!Keyed::new(b"k2".to_vec()).code_matches("p1", "123456", &h));
        assert_ne!(k.key_for("phone", "+98912"), k.key_for("ip", "+98912"));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq("123456", "123456"));
        assert!(!constant_time_eq("123456", "123457"));
        assert!(!constant_time_eq("123456", "12345"));
    }
}
