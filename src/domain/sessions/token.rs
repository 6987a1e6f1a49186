//! The session tokens the hub hands out: 256 random bits in unpadded base64url, with `agt_` in front
//! for an agent's, so the kind of a token is visible without a lookup (and an agent token pasted
//! into an app, or the other way round, is refused before the database is asked).

use crate::model::account::TokenHash;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Length of the random part of a token as text: 32 bytes in unpadded base64url.
pub const TOKEN_LEN: usize = 43;

/// Prefix of agent tokens.
pub const AGENT_TOKEN_PREFIX: &str = "agt_";

/// Whose a token is, as its shape says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// An app user's token (no prefix).
    User,
    /// An agent's token (`agt_` prefix).
    Agent,
}

/// A new token of `kind` (256 bits from the thread's CSPRNG, ChaCha12 seeded by the OS) and its
/// hash. Only the hash is stored; the token is shown once, to its owner.
pub fn new_token(kind: TokenKind) -> (String, TokenHash) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let random = URL_SAFE_NO_PAD.encode(bytes);
    let token = match kind {
        TokenKind::User => random,
        TokenKind::Agent => format!("{AGENT_TOKEN_PREFIX}{random}"),
    };
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token (prefix included). A plain SHA-256 is enough: tokens carry 256 bits
/// of entropy, so there is nothing to brute-force, and lookups stay one indexed equality.
pub fn hash_token(token: &str) -> TokenHash {
    TokenHash(Sha256::digest(token.as_bytes()).into())
}

/// The kind of a token of the hub's shape; `None` for anything else (a cheap check before a
/// database lookup).
pub fn kind_of(token: &str) -> Option<TokenKind> {
    let (kind, random) = match token.strip_prefix(AGENT_TOKEN_PREFIX) {
        Some(random) => (TokenKind::Agent, random),
        None => (TokenKind::User, token),
    };
    let shaped =
        random.len() == TOKEN_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    shaped.then_some(kind)
}

/// Whether `token` has the shape of a user's token.
pub fn looks_like_token(token: &str) -> bool {
    kind_of(token) == Some(TokenKind::User)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_well_formed_and_hash_stably() {
        let (a, ha) = new_token(TokenKind::User);
        let (b, hb) = new_token(TokenKind::User);
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert!(looks_like_token(&a), "{a}");
        assert_eq!(hash_token(&a), ha);
        assert!(!looks_like_token("short"));
        assert!(!looks_like_token(&format!("{}!", &a[..42])));
    }

    #[test]
    fn agent_tokens_carry_their_prefix_and_its_hash() {
        let (token, hash) = new_token(TokenKind::Agent);
        assert!(token.starts_with(AGENT_TOKEN_PREFIX));
        assert_eq!(hash_token(&token), hash);
        assert_eq!(kind_of(&token), Some(TokenKind::Agent));
        assert!(!looks_like_token(&token));
        assert_eq!(kind_of(&token[AGENT_TOKEN_PREFIX.len()..]), Some(TokenKind::User));
        assert_eq!(kind_of("agt_short"), None);
        assert_eq!(kind_of(&format!("agt_{}", &token)), None);
    }
}
