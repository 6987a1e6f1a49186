//! The billing system's signature on a report, checked before a byte of the body is parsed.
//!
//! `Anapars-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(billing_secret, "<t>." ++ body)>`.
//! The timestamp is inside what is signed, so it cannot be moved without the secret; several `v1`
//! entries let billing sign with an old and a new secret while the hub's `billing_secret` is
//! changed. Every comparison goes through `hmac`'s `verify_slice`, which takes the same time
//! however much of a signature is right.

use crate::error::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub(crate) const HEADER: &str = "anapars-signature";

/// Most `v1` entries one header may carry: enough for any rotation, and a bound on the work an
/// unauthenticated caller can ask for.
pub(crate) const MAX_SIGNATURES: usize = 8;

type HmacSha256 = Hmac<Sha256>;

/// A well-formed header: the timestamp as written (it is signed as written) and its value, and
/// the signatures.
#[derive(Debug, PartialEq, Eq)]
struct Signed<'a> {
    timestamp_text: &'a str,
    timestamp: i64,
    signatures: Vec<[u8; 32]>,
}

/// Reads the header. Exactly one `t` (decimal digits), 1 to [`MAX_SIGNATURES`] `v1` (64 hex
/// digits each); entries of other schemes are ignored, so that billing can add one before the hub
/// knows it.
///
/// # Errors
/// [`Error::BadSignature`] for anything else.
fn parse(header: &[u8]) -> Result<Signed<'_>> {
    let header = std::str::from_utf8(header).map_err(|_| Error::BadSignature)?;
    let (mut timestamp, mut signatures) = (None, Vec::new());
    for entry in header.split(',') {
        let (key, value) = entry.trim().split_once('=').ok_or(Error::BadSignature)?;
        match key {
            "t" if timestamp.is_none() && !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                timestamp = Some((value, value.parse::<i64>().map_err(|_| Error::BadSignature)?));
            }
            "t" => return Err(Error::BadSignature),
            "v1" if signatures.len() < MAX_SIGNATURES => signatures.push(hex32(value).ok_or(Error::BadSignature)?),
            "v1" => return Err(Error::BadSignature),
            _ => {}
        }
    }
    let (timestamp_text, timestamp) = timestamp.ok_or(Error::BadSignature)?;
    if signatures.is_empty() {
        return Err(Error::BadSignature);
    }
    Ok(Signed { timestamp_text, timestamp, signatures })
}

/// 64 hex digits (either case) as 32 bytes.
fn hex32(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = (high * 16 + low) as u8;
    }
    Some(out)
}

/// Checks that `header` signs `body` under `secret`, at `now_secs` (Unix seconds) within
/// `tolerance_secs` either way. The signature is checked before the time, so that only a holder of
/// the secret learns that a timestamp was stale.
///
/// # Errors
/// [`Error::BadSignature`] (no header, a malformed one, no matching signature),
/// [`Error::StaleSignature`] (signed, but outside the window).
pub(crate) fn verify(
    secret: &[u8],
    header: Option<&[u8]>,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: u64,
) -> Result<()> {
    let signed = parse(header.ok_or(Error::BadSignature)?)?;
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|e| Error::Internal(format!("hmac key: {e}")))?;
    mac.update(signed.timestamp_text.as_bytes());
    mac.update(b".");
    mac.update(body);
    if !signed.signatures.iter().any(|s| mac.clone().verify_slice(s).is_ok()) {
        return Err(Error::BadSignature);
    }
    if now_secs.abs_diff(signed.timestamp) > tolerance_secs {
        return Err(Error::StaleSignature);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"billing-secret-of-at-least-32-chars!";
    const NOW: i64 = 1_767_225_600;
    const BODY: &[u8] = br#"{"reference":"inv-1"}"#;

    /// The header billing would send for `body` at `timestamp` under `secret`.
    fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret).expect("hmac takes a key of any length");
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("t={timestamp},v1={hex}")
    }

    fn check(header: &str, body: &[u8], now: i64) -> Result<()> {
        verify(SECRET, Some(header.as_bytes()), body, now, 300)
    }

    #[test]
    fn a_signed_body_passes_within_the_window_either_way() {
        let header = sign(SECRET, NOW, BODY);
        for now in [NOW, NOW - 300, NOW + 300] {
            assert!(check(&header, BODY, now).is_ok(), "at {now}");
        }
    }

    #[test]
    fn the_signature_is_what_openssl_computes() {
        // printf '%s' '1767225600.{"reference":"inv-1"}' |
        //   openssl dgst -sha256 -hmac 'billing-secret-of-at-least-32-chars!'
        let openssl = "65ba0157d9d3d33b5193700116bde6ff032193bfd0fd32b54cbcd6632d4c9f16";
        assert_eq!(sign(SECRET, NOW, BODY), format!("t={NOW},v1={openssl}"));
    }

    #[test]
    fn the_worked_example_of_protocol_md_verifies() {
        let body = br#"{"reference":"inv-2025-12-000123","user_id":"0194f1a2-3b4c-7d5e-8f60-7182a3b4c5d6","product":"anapars-pro","kind":"subscription","amount_minor":4900000,"currency":"IRR","purchased_at":1764547200000,"expires_at":1769731200000}"#;
        let header = "t=1767225600,v1=29c0affe90ddba2b9a25fda6c909beca10c5b68b93e26218d57cac608226fc60";
        assert!(verify(SECRET, Some(header.as_bytes()), body, NOW, 300).is_ok());
        let doc = include_str!("../../../protocol/PROTOCOL.md");
        assert!(doc.contains(header) && doc.contains(std::str::from_utf8(body).unwrap()), "PROTOCOL.md shows it");
    }

    #[test]
    fn any_matching_v1_passes_and_other_schemes_are_ignored() {
        let good = sign(SECRET, NOW, BODY);
        let old = sign(b"the-previous-secret-of-32-characters", NOW, BODY);
        let both = format!("{old}, v0=whatever, {}", &good[good.find("v1=").unwrap()..]);
        assert!(check(&both, BODY, NOW).is_ok(), "{both}");
        let upper = good.to_uppercase().replace("T=", "t=").replace("V1=", "v1=");
        assert!(check(&upper, BODY, NOW).is_ok(), "hex in either case");
    }

    #[test]
    fn wrong_secret_tampered_body_or_moved_timestamp_are_bad() {
        let other = sign(b"another-secret-of-at-least-32-chars", NOW, BODY);
        assert!(matches!(check(&other, BODY, NOW), Err(Error::BadSignature)));
        let good = sign(SECRET, NOW, BODY);
        assert!(matches!(check(&good, br#"{"reference":"inv-2"}"#, NOW), Err(Error::BadSignature)));
        let moved = good.replacen(&NOW.to_string(), &(NOW + 1).to_string(), 1);
        assert!(matches!(check(&moved, BODY, NOW), Err(Error::BadSignature)), "the timestamp is signed");
        let padded = good.replacen("t=", "t=0", 1);
        assert!(matches!(check(&padded, BODY, NOW), Err(Error::BadSignature)), "signed as written");
    }

    #[test]
    fn missing_and_malformed_headers_are_bad() {
        assert!(matches!(verify(SECRET, None, BODY, NOW, 300), Err(Error::BadSignature)));
        let good = sign(SECRET, NOW, BODY);
        let hex = &good[good.find("v1=").unwrap() + 3..];
        let malformed = [
            String::new(),
            "garbage".into(),
            format!("v1={hex}"),
            format!("t={NOW}"),
            format!("t={NOW},t={NOW},v1={hex}"),
            format!("t=-{NOW},v1={hex}"),
            format!("t=1e9,v1={hex}"),
            format!("t=99999999999999999999,v1={hex}"),
            format!("t={NOW},v1={}", &hex[..62]),
            format!("t={NOW},v1={}zz", &hex[..62]),
            format!("t={NOW},v1={hex}00"),
            format!("t={NOW},v1"),
            format!("t={NOW}{}", format!(",v1={hex}").repeat(MAX_SIGNATURES + 1)),
        ];
        for header in malformed {
            assert!(matches!(check(&header, BODY, NOW), Err(Error::BadSignature)), "{header:?}");
        }
        let not_utf8 = [b't', b'=', 0xff];
        assert!(matches!(verify(SECRET, Some(&not_utf8), BODY, NOW, 300), Err(Error::BadSignature)));
    }

    #[test]
    fn a_signature_outside_the_window_is_stale_but_only_once_it_matches() {
        let header = sign(SECRET, NOW, BODY);
        assert!(matches!(check(&header, BODY, NOW + 301), Err(Error::StaleSignature)), "replayed later");
        assert!(matches!(check(&header, BODY, NOW - 301), Err(Error::StaleSignature)), "from the future");
        let other = sign(b"another-secret-of-at-least-32-chars", NOW - 10_000, BODY);
        assert!(matches!(check(&other, BODY, NOW), Err(Error::BadSignature)), "an unsigned old request learns nothing");
    }
}
