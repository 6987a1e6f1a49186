//! Numbers and codes as people type them, over HTTP against a real hub on every backend: Persian,
//! Arabic-Indic and full-width digits, spaces of every width, dashes, dots, brackets, and the
//! invisible characters keyboards and chat apps insert all sign in to the same account, in the
//! sign-in and in the number change; wrong input gets a message naming what is wrong.

mod common;

use common::hub::{hubs, phone, TestHub};
use serde_json::{json, Value};
use std::time::Duration;

/// `ascii` with its digits in the script whose zero is `zero`.
fn in_script(ascii: &str, zero: char) -> String {
    ascii
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(zero as u32 + d).unwrap(),
            None => c,
        })
        .collect()
}

fn persian(ascii: &str) -> String {
    in_script(ascii, '۰')
}

fn arabic_indic(ascii: &str) -> String {
    in_script(ascii, '٠')
}

/// The ways people type the Iranian mobile number whose national digits (without the trunk `0`)
/// are `n` (`9121234567`).
fn renderings(n: &str) -> Vec<(&'static str, String)> {
    let (a, b, c) = (&n[..3], &n[3..6], &n[6..]);
    vec![
        ("national", format!("0{n}")),
        ("national without 0", n.to_owned()),
        ("international with 00", format!("0098{n}")),
        ("international spaced", format!("+98 {a} {b} {c}")),
        ("bracketed", format!("(0{a}) {b}-{c}")),
        ("Persian digits", persian(&format!("0{n}"))),
        ("Arabic-Indic digits", arabic_indic(&format!("0{n}"))),
        ("full-width digits", in_script(&format!("0{n}"), '０')),
        ("Persian, international", persian(&format!("+98 {a} {b} {c}"))),
        ("zero-width non-joiners", persian(&format!("0{a}\u{200C}{b}\u{200C}{c}"))),
        ("direction marks", format!("\u{200E}+98\u{200E} {a} {b} {c}\u{200F}")),
        ("no-break and thin spaces", format!("0{a}\u{00A0}{b}\u{2009}{c}")),
        ("byte-order mark and isolate", format!("\u{FEFF}\u{2066}0{a}-{b}-{c}\u{2069}")),
        ("dots and a dash", format!("0{a}.{b}–{c}")),
    ]
}

/// The ways people type a code.
fn typed_codes(code: &str) -> Vec<String> {
    vec![
        code.to_owned(),
        persian(code),
        arabic_indic(code),
        format!("{} {}", persian(&code[..3]), persian(&code[3..])),
        format!("\u{200F}{}\u{200C}{}\u{200F}", &code[..3], &code[3..]),
        in_script(code, '０'),
    ]
}

async fn verify(hub: &TestHub, phone: &str, code: &str) -> (u16, Value) {
    hub.post("/v1/auth/verify", json!({"phone": phone, "code": code, "device": {"id": "d1", "name": "Pixel 8"}})).await
}

#[tokio::test]
async fn every_format_signs_in_to_the_same_account() {
    for hub in hubs(|c| {
        c.code_resend_secs = 1;
        c.codes_per_number_10min = 100;
        c.codes_per_number_day = 100;
    })
    .await
    {
        let e164 = phone();
        let forms = renderings(&e164[3..]);
        let codes = typed_codes("000000").len();
        let mut accounts = Vec::new();
        // Each round asks for the code in one form and signs in with the next, the code typed in
        // another script each time.
        for (round, pair) in forms.chunks(2).enumerate() {
            let (asked_as, signed_in_as) = (&pair[0], pair.get(1).unwrap_or(&pair[0]));
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(1100)).await;
            }
            let (status, body) = hub.post("/v1/auth/code", json!({"phone": asked_as.1})).await;
            assert_eq!(status, 202, "{} code asked as {}: {body}", hub.label(), asked_as.0);
            let code = hub.last_code(&e164);
            let typed = &typed_codes(&code)[round % codes];
            let (status, body) = verify(&hub, &signed_in_as.1, typed).await;
            assert_eq!(status, 200, "{} signed in as {} with code {typed:?}: {body}", hub.label(), signed_in_as.0);
            assert_eq!(body["new_user"], round == 0, "{} only the first sign-in registers", hub.label());
            accounts.push(body["user_id"].clone());
        }
        assert!(accounts.iter().all(|a| *a == accounts[0]), "{} one account: {accounts:?}", hub.label());
        let sms = hub.sms();
        assert_eq!(sms.len(), forms.len().div_ceil(2));
        assert!(sms.iter().all(|s| s["to"] == e164.as_str()), "{} every code went to the E.164 number", hub.label());
    }
}

#[tokio::test]
async fn the_number_change_reads_typed_numbers_and_codes() {
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        let new = phone();
        let national = &new[3..];
        let typed_new =
            persian(&format!("\u{200F}0{}\u{200C}{}\u{200C}{}", &national[..3], &national[3..6], &national[6..]));
        let (status, body) = hub.post_as(&token, "/v1/me/phone/code", json!({"phone": typed_new})).await;
        assert_eq!(status, 202, "{} {body}", hub.label());
        let code = hub.last_code(&new);
        let typed_again = arabic_indic(&format!("(0{}) {}", &national[..3], &national[3..]));
        let (status, body) =
            hub.post_as(&token, "/v1/me/phone/verify", json!({"phone": typed_again, "code": persian(&code)})).await;
        assert_eq!((status, body["phone"].as_str()), (200, Some(new.as_str())), "{} {body}", hub.label());
    }
}

#[tokio::test]
async fn a_wrong_number_or_code_is_named() {
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        let sent = hub.sms().len();
        for (input, message) in [
            ("", "phone number is empty"),
            ("\u{200C}\u{200F} ", "phone number is empty"),
            ("۰۹۱۲abc۴۵۶۷", "phone number has letters in it: type digits only"),
            ("شماره من", "phone number has letters in it: type digits only"),
            ("0912*123*4567", "phone number has characters other than digits"),
            ("0912+1234567", "phone number has a + that is not at its start"),
            ("۰۹۱۲۱۲۳۴۵۶", "phone number has too few digits"),
            ("+98912", "phone number has too few digits"),
            ("۰۹۱۲۱۲۳۴۵۶۷۸", "phone number has too many digits"),
            ("+999 123 456 789", "phone number starts with a country code that does not exist"),
            ("۰۲۱ ۸۸۸۸ ۸۸۸۸", "phone number is not a mobile number"),
            ("+98 21 8888 8888", "phone number is not a mobile number"),
        ] {
            let expected = json!({"error": {"code": "invalid_phone", "message": message}});
            let (status, body) = hub.post("/v1/auth/code", json!({"phone": input})).await;
            assert_eq!((status, &body), (400, &expected), "{} sign-in code for {input:?}", hub.label());
            let (status, body) = verify(&hub, input, "123456").await;
            assert_eq!((status, &body), (400, &expected), "{} verify {input:?}", hub.label());
            let (status, body) = hub.post_as(&token, "/v1/me/phone/code", json!({"phone": input})).await;
            assert_eq!((status, &body), (400, &expected), "{} number change to {input:?}", hub.label());
        }
        let number = phone();
        for (code, message) in [
            ("", "code is empty: type the 6 digits from the SMS"),
            ("۱۲۳ab۶", "code has letters in it: type the 6 digits from the SMS"),
            ("۱۲۳*۵۶", "code has characters other than digits: type the 6 digits from the SMS"),
            ("۱۲۳۴۵", "code has too few digits: type all 6 digits from the SMS"),
            ("1234567", "code has too many digits: type only the 6 digits from the SMS"),
        ] {
            let expected = json!({"error": {"code": "bad_request", "message": message}});
            let (status, body) = verify(&hub, &number, code).await;
            assert_eq!((status, &body), (400, &expected), "{} code {code:?}", hub.label());
            let (status, body) =
                hub.post_as(&token, "/v1/me/phone/verify", json!({"phone": number, "code": code})).await;
            assert_eq!((status, &body), (400, &expected), "{} number change code {code:?}", hub.label());
        }
        assert_eq!(hub.sms().len(), sent, "{} nothing was sent for wrong input", hub.label());
    }
}
