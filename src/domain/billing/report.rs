//! The body of `POST /v1/billing/purchases`: its types (serde, with the failing field's path in the
//! error) and then its limits, into a [`PurchaseReport`]. Unknown fields are ignored, so billing can
//! send more than the hub reads.

use crate::error::{Error, Result};
use crate::model::ids::UserId;
use crate::model::purchase::{PurchaseKind, PurchaseReport, PurchaseStatus};
use crate::model::time::Millis;
use serde::Deserialize;

/// Longest `reference`, in characters (printable ASCII: one byte each).
pub(crate) const MAX_REFERENCE_CHARS: usize = 128;
/// Longest `product`, in characters.
pub(crate) const MAX_PRODUCT_CHARS: usize = 100;

/// The body as billing sends it.
#[derive(Deserialize)]
struct Body {
    reference: String,
    user_id: UserId,
    product: String,
    kind: PurchaseKind,
    amount_minor: i64,
    currency: String,
    purchased_at: Millis,
    #[serde(default)]
    expires_at: Option<Millis>,
    #[serde(default = "paid")]
    status: PurchaseStatus,
}

fn paid() -> PurchaseStatus {
    PurchaseStatus::Paid
}

fn bad(message: &str) -> Error {
    Error::BadRequest(format!("invalid purchase report: {message}"))
}

/// Reads a report from the raw body (only ever called once its signature was checked).
///
/// # Errors
/// `bad_request` naming the field: not JSON, a missing or mistyped field, or a value out of its limits.
pub(crate) fn parse(body: &[u8]) -> Result<PurchaseReport> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let b: Body = serde_path_to_error::deserialize(&mut de).map_err(|e| bad(&e.to_string()))?;
    de.end().map_err(|e| bad(&e.to_string()))?;
    let printable = |s: &str| s.bytes().all(|c| (b' '..=b'~').contains(&c));
    if b.reference.is_empty() || b.reference.len() > MAX_REFERENCE_CHARS || !printable(&b.reference) {
        return Err(bad("reference must be 1 to 128 printable ascii characters"));
    }
    let product_chars = b.product.chars().count();
    if !(1..=MAX_PRODUCT_CHARS).contains(&product_chars) || b.product.chars().any(char::is_control) {
        return Err(bad("product must be 1 to 100 characters without control characters"));
    }
    if b.amount_minor < 0 {
        return Err(bad("amount_minor must be at least 0"));
    }
    if b.currency.len() != 3 || !b.currency.bytes().all(|c| c.is_ascii_uppercase()) {
        return Err(bad("currency must be 3 upper-case letters (iso 4217)"));
    }
    if b.purchased_at < 0 {
        return Err(bad("purchased_at must be a time (ms since the epoch)"));
    }
    match (b.kind, b.expires_at) {
        (PurchaseKind::Subscription, None) => return Err(bad("expires_at is required for a subscription")),
        (_, Some(end)) if end <= b.purchased_at => return Err(bad("expires_at must be after purchased_at")),
        _ => {}
    }
    Ok(PurchaseReport {
        reference: b.reference,
        user_id: b.user_id,
        product: b.product,
        kind: b.kind,
        amount_minor: b.amount_minor,
        currency: b.currency,
        purchased_at: b.purchased_at,
        expires_at: b.expires_at,
        status: b.status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn good() -> Value {
        json!({"reference": "inv-2026-0001", "user_id": "0194f1a2-3b4c-7d5e-8f60-7182a3b4c5d6",
               "product": "anapars-pro", "kind": "subscription", "amount_minor": 4900000, "currency": "IRR",
               "purchased_at": 1_767_225_600_000_i64, "expires_at": 1_769_904_000_000_i64,
               "billing_note": "unknown fields are ignored"})
    }

    fn with(field: &str, value: Value) -> Vec<u8> {
        let mut body = good();
        body[field] = value;
        body.to_string().into_bytes()
    }

    fn refused(body: &[u8]) -> String {
        match parse(body) {
            Err(Error::BadRequest(message)) => message,
            other => panic!("expected bad_request, got {other:?}"),
        }
    }

    #[test]
    fn a_good_report_reads_with_status_paid_by_default() {
        let r = parse(good().to_string().as_bytes()).expect("valid");
        assert_eq!((r.kind, r.status, r.amount_minor), (PurchaseKind::Subscription, PurchaseStatus::Paid, 4_900_000));
        assert_eq!(r.expires_at, Some(1_769_904_000_000));
        let refund = parse(&with("status", json!("refunded"))).expect("valid");
        assert_eq!(refund.status, PurchaseStatus::Refunded);
        let mut activation = good();
        activation["kind"] = json!("activation");
        activation.as_object_mut().map(|o| o.remove("expires_at"));
        assert_eq!(parse(activation.to_string().as_bytes()).expect("valid").expires_at, None, "permanent");
    }

    #[test]
    fn every_refusal_names_its_field() {
        let cases = [
            (with("reference", json!("")), "reference"),
            (with("reference", json!("r".repeat(129))), "reference"),
            (with("reference", json!("inv\n1")), "reference"),
            (with("reference", json!("فاکتور")), "reference"),
            (with("user_id", json!("not-a-uuid")), "user_id"),
            (with("product", json!("")), "product"),
            (with("product", json!("p".repeat(101))), "product"),
            (with("kind", json!("gift")), "kind"),
            (with("amount_minor", json!(-1)), "amount_minor"),
            (with("amount_minor", json!(1.5)), "amount_minor"),
            (with("amount_minor", json!("100")), "amount_minor"),
            (with("currency", json!("irr")), "currency"),
            (with("currency", json!("IRRR")), "currency"),
            (with("purchased_at", json!(-5)), "purchased_at"),
            (with("expires_at", json!(null)), "expires_at"),
            (with("expires_at", json!(1_767_225_600_000_i64)), "expires_at"),
            (with("status", json!("pending")), "status"),
            (b"[]".to_vec(), "invalid purchase report"),
            (b"{\"reference\": ".to_vec(), "invalid purchase report"),
        ];
        for (body, field) in cases {
            let message = refused(&body);
            assert!(message.contains(field), "{message:?} does not name {field}");
        }
        let mut missing = good();
        missing.as_object_mut().map(|o| o.remove("currency"));
        assert!(refused(missing.to_string().as_bytes()).contains("currency"));
    }

    #[test]
    fn the_limits_are_inclusive() {
        assert!(parse(&with("reference", json!("r".repeat(128)))).is_ok());
        assert!(parse(&with("reference", json!("inv 1 ~"))).is_ok(), "space and tilde are printable");
        assert!(parse(&with("product", json!("پ".repeat(100)))).is_ok(), "characters, not bytes");
        assert!(parse(&with("amount_minor", json!(0))).is_ok(), "free purchases are purchases");
    }
}
