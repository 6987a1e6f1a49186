//! The SMS that carries a code, read from the file sink of a real hub: its text per language and
//! purpose, the templates set in the configuration, its length in SMS parts, the autofill lines,
//! the start-up check of the templates, and a log that never shows the number or the code.

mod common;

use anapars_hub::model::sms::{SmsEncoding, SmsLength};
use common::hub::{hubs, phone, TestHub};
use common::test_databases;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The text of the newest SMS to `to`.
fn last_text(hub: &TestHub, to: &str) -> String {
    let sms = hub.sms();
    let last = sms.iter().rev().find(|s| s["to"] == to).unwrap_or_else(|| panic!("{} no sms to {to}", hub.label()));
    last["text"].as_str().unwrap().to_owned()
}

/// The length of `text` in UTF-16 code units, counted here rather than by the hub.
fn utf16_units(text: &str) -> usize {
    text.encode_utf16().count()
}

#[tokio::test]
async fn iranian_numbers_get_one_persian_part_others_english() {
    for hub in hubs(|c| c.phone_countries = "*".into()).await {
        let iranian = phone();
        assert_eq!(hub.post("/v1/auth/code", json!({"phone": iranian})).await.0, 202, "{}", hub.label());
        let code = hub.last_code(&iranian);
        let text = last_text(&hub, &iranian);
        assert_eq!(text, format!("کد ورود آناپارس: {code}\nتا ۵ دقیقه معتبر است. آن را به کسی ندهید."));
        assert!(utf16_units(&text) <= 70, "one UCS-2 part holds 70 units: {} in {text}", utf16_units(&text));
        assert_eq!(
            SmsLength::of(&text),
            SmsLength { encoding: SmsEncoding::Ucs2, units: utf16_units(&text), parts: 1 }
        );

        let british = "+447400123456";
        assert_eq!(hub.post("/v1/auth/code", json!({"phone": "+44 7400 123456"})).await.0, 202);
        let code = hub.last_code(british);
        let text = last_text(&hub, british);
        assert_eq!(text, format!("Anapars code: {code}\nValid for 5 minutes. Never share it with anyone."));
        assert!(text.is_ascii() && text.len() <= 160, "one GSM-7 part: {text}");
        assert_eq!(SmsLength::of(&text), SmsLength { encoding: SmsEncoding::Gsm7, units: text.len(), parts: 1 });
    }
}

#[tokio::test]
async fn the_number_change_has_its_own_text() {
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        let new = phone();
        let (status, body) = hub.post_as(&token, "/v1/me/phone/code", json!({"phone": new})).await;
        assert_eq!(status, 202, "{} {body}", hub.label());
        let code = hub.last_code(&new);
        let text = last_text(&hub, &new);
        assert_eq!(text, format!("کد تغییر شماره آناپارس: {code}\nتا ۵ دقیقه معتبر است. به کسی ندهید."));
        assert!(utf16_units(&text) <= 70, "{text}");
    }
}

#[tokio::test]
async fn templates_and_language_come_from_the_configuration() {
    for hub in hubs(|c| {
        c.code_ttl_secs = 600;
        c.sms_template_sign_in_fa = Some("رمز یکبار مصرف {code} ({minutes} دقیقه) {{انارس}}".into());
        c.sms_template_sign_in_en = Some("{code} is your code for {minutes} min".into());
    })
    .await
    {
        let number = phone();
        assert_eq!(hub.post("/v1/auth/code", json!({"phone": number})).await.0, 202, "{}", hub.label());
        let code = hub.last_code(&number);
        assert_eq!(last_text(&hub, &number), format!("رمز یکبار مصرف {code} (۱۰ دقیقه) {{انارس}}"));
    }
    for hub in hubs(|c| {
        c.sms_language = "en".into();
        c.sms_template_sign_in_en = Some("{code} is your code for {minutes} min".into());
    })
    .await
    {
        let number = phone();
        assert_eq!(hub.post("/v1/auth/code", json!({"phone": number})).await.0, 202, "{}", hub.label());
        let code = hub.last_code(&number);
        assert_eq!(last_text(&hub, &number), format!("{code} is your code for 5 min"), "English for every number");
    }
}

#[tokio::test]
async fn autofill_lines_end_the_text_and_the_code_they_carry_signs_in() {
    for hub in hubs(|c| {
        c.sms_origin = Some("app.anapars.ir".into());
        c.sms_app_hash = Some("FA+9qCX9VSu".into());
    })
    .await
    {
        let number = phone();
        assert_eq!(hub.post("/v1/auth/code", json!({"phone": number})).await.0, 202, "{}", hub.label());
        let text = last_text(&hub, &number);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "the text's two lines, the app hash, the origin line: {text}");
        assert_eq!(lines[2], "FA+9qCX9VSu");
        let code = lines[3].strip_prefix("@app.anapars.ir #").unwrap_or_else(|| panic!("origin line: {text}"));
        assert!(lines[0].ends_with(code), "the same code in the text and the origin line: {text}");
        // The Persian text and the two lines need a second UCS-2 part (67 units per part).
        assert!((71..=134).contains(&utf16_units(&text)), "{text}");
        assert_eq!(SmsLength::of(&text).parts, 2, "{text}");
        let (status, body) = hub
            .post("/v1/auth/verify", json!({"phone": number, "code": code, "device": {"id": "d1", "name": "web"}}))
            .await;
        assert_eq!(status, 200, "{} {body}", hub.label());
    }
}

#[tokio::test]
async fn a_wrong_template_stops_the_start_with_the_setting_named() {
    let db = test_databases().await.remove(0);
    for (tweak, expected) in [
        (
            anapars_hub::Config { sms_template_sign_in_fa: Some("کد شما: {کد}".into()), ..db.config.clone() },
            "sms_template_sign_in_fa: unknown placeholder `{کد}`; use {code} and {minutes}",
        ),
        (
            anapars_hub::Config {
                sms_template_phone_change_en: Some("Confirm your number".into()),
                ..db.config.clone()
            },
            "sms_template_phone_change_en: the template has no {code}",
        ),
    ] {
        let config = anapars_hub::Config { listen: "127.0.0.1:0".parse().unwrap(), ..tweak };
        match anapars_hub::server::start(config).await {
            Ok(_) => panic!("the hub started with a wrong template"),
            Err(e) => assert_eq!(e.to_string(), expected),
        }
    }
}

/// The hub binary's own log, while a number typed in Persian asks for a code, fails once and signs
/// in: neither the number (in any form) nor the code appears in it.
#[tokio::test]
async fn the_log_never_shows_the_number_or_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let sms_file = dir.path().join("sms.jsonl");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_anapars-hub"))
        .env_clear()
        .envs([
            ("HUB_SQLITE_PATH", dir.path().join("hub.sqlite").display().to_string()),
            ("HUB_MEDIA_DIR", dir.path().join("media").display().to_string()),
            ("HUB_ATTACHMENTS_DIR", dir.path().join("attachments").display().to_string()),
            ("HUB_SMS", format!("file:{}", sms_file.display())),
            ("HUB_LOG_FORMAT", "json".into()),
            ("RUST_LOG", "debug".into()),
        ])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the hub binary starts");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut log = Vec::new();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = out.next_line().await.unwrap() {
            let parsed: Option<Value> = serde_json::from_str(&line).ok();
            log.push(line);
            if let Some(entry) = parsed.filter(|l| l["fields"]["message"] == "hub ready") {
                return entry["fields"]["addr"].as_str().unwrap().to_owned();
            }
        }
        panic!("the hub exited before listening: {log:?}")
    })
    .await
    .expect("the hub listens");
    let reader = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = out.next_line().await {
            rest.push(line);
        }
        rest
    });

    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let request = http.post(format!("http://{addr}{path}")).json(&body);
        async move {
            let resp = request.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let number = phone();
    let national = &number[3..];
    let typed: String = format!("۰{national}")
        .chars()
        .map(|c| c.to_digit(10).map_or(c, |d| char::from_u32('۰' as u32 + d).unwrap()))
        .collect();
    assert_eq!(post("/v1/auth/code", json!({"phone": typed})).await.0, 202);
    let sms = std::fs::read_to_string(&sms_file).unwrap();
    let text = serde_json::from_str::<Value>(sms.lines().next().unwrap()).unwrap()["text"].as_str().unwrap().to_owned();
    let code: String = text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned();
    let first = if code.starts_with('0') { '1' } else { '0' };
    let wrong = format!("{first}{}", &code[1..]);
    let device = json!({"id": "d1", "name": "Pixel 8"});
    assert_eq!(post("/v1/auth/verify", json!({"phone": typed, "code": wrong, "device": device})).await.0, 422);
    assert_eq!(post("/v1/auth/verify", json!({"phone": typed, "code": code, "device": device})).await.0, 200);

    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        tokio::io::AsyncReadExt::read_to_string(&mut err, &mut stderr).await.unwrap();
    }
    log.extend(reader.await.unwrap());
    log.push(stderr);
    // Timestamps are digits that could match a code by chance: they are left out.
    let log: Vec<String> = log
        .iter()
        .flat_map(|chunk| chunk.lines())
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(mut entry)) => {
                entry.remove("timestamp");
                Value::Object(entry).to_string()
            }
            _ => line.to_owned(),
        })
        .collect();
    let log = log.join("\n");
    assert!(log.contains("signed in"), "the log was read: {log}");
    for secret in [number.as_str(), national, typed.as_str(), code.as_str(), wrong.as_str()] {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }
}
