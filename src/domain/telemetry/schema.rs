//! The schema of telemetry and settings frames beyond their types (which serde checks): lengths,
//! ranges and character sets, so that nothing malformed reaches storage. Every limit here is listed
//! in protocol/PROTOCOL.md ("Telemetry").

use crate::error::{Error, Result, SizeUnit};
use crate::model::telemetry::SettingsDocument;
use crate::model::telemetry::{DeviceInfo, ViewEvent};
use crate::model::telemetry::{DeviceReport, ViewEventReport};
use crate::model::time::Millis;

/// Most events in one `telemetry.views` frame.
pub const MAX_VIEWS_PER_BATCH: usize = 100;
/// Longest `os`, `os_version` and `app_version`, in characters.
pub const MAX_SHORT_CHARS: usize = 32;
/// Longest `model`, `manufacturer`, `screen` and `target`, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest `locale`, in characters.
pub const MAX_LOCALE_CHARS: usize = 35;
/// Largest `memory_mb` (16 TiB).
pub const MAX_MEMORY_MB: u64 = 16 * 1024 * 1024;
/// Largest screen side, in pixels.
pub const MAX_SCREEN_SIDE: u32 = 100_000;
/// Longest `duration_ms` (a day).
pub const MAX_DURATION_MS: u64 = 86_400_000;
/// How far a view event's `at` may lie ahead of the hub's clock.
pub const MAX_FUTURE_MS: Millis = 86_400_000;
/// How far a view event's `at` may lie behind the hub's clock (apps batch while offline).
pub const MAX_PAST_MS: Millis = 30 * 86_400_000;

/// A text field: trimmed, without control characters, at most `max` characters. `None` when absent
/// or empty.
fn text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > max {
        return Err(Error::BadRequest(format!("{field} must be at most {max} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::BadRequest(format!("{field} must not contain control characters")));
    }
    Ok(Some(trimmed.to_owned()))
}

/// A required text field.
fn required(field: &str, value: String, max: usize) -> Result<String> {
    text(field, Some(value), max)?.ok_or_else(|| Error::BadRequest(format!("{field} must be 1 to {max} characters")))
}

/// Checks a `telemetry.device` report.
///
/// # Errors
/// `bad_request` naming the first field out of its limits.
pub fn device(report: DeviceReport) -> Result<DeviceInfo> {
    let side = |field: &str, v: Option<u32>| match v {
        Some(v) if v == 0 || v > MAX_SCREEN_SIDE => {
            Err(Error::BadRequest(format!("device.{field} must be 1 to {MAX_SCREEN_SIDE}")))
        }
        v => Ok(v.map(i64::from)),
    };
    let locale = text("device.locale", report.locale, MAX_LOCALE_CHARS)?;
    if locale.as_deref().is_some_and(|l| !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
        return Err(Error::BadRequest("device.locale must be a BCP 47 tag (letters, digits, `-`)".into()));
    }
    let memory_mb = match report.memory_mb {
        Some(m) if m > MAX_MEMORY_MB => {
            return Err(Error::BadRequest(format!("device.memory_mb must be at most {MAX_MEMORY_MB}")))
        }
        m => m.map(|m| m as i64),
    };
    Ok(DeviceInfo {
        os: required("device.os", report.os, MAX_SHORT_CHARS)?,
        os_version: text("device.os_version", report.os_version, MAX_SHORT_CHARS)?,
        model: text("device.model", report.model, MAX_NAME_CHARS)?,
        manufacturer: text("device.manufacturer", report.manufacturer, MAX_NAME_CHARS)?,
        memory_mb,
        screen_width: side("screen_width", report.screen_width)?,
        screen_height: side("screen_height", report.screen_height)?,
        app_version: text("device.app_version", report.app_version, MAX_SHORT_CHARS)?,
        locale,
    })
}

/// Checks a `telemetry.views` batch against the hub's clock `now`.
///
/// # Errors
/// `bad_request` naming the first event and field out of its limits (`events[3].screen ...`).
pub fn views(events: Vec<ViewEventReport>, now: Millis) -> Result<Vec<ViewEvent>> {
    if events.is_empty() || events.len() > MAX_VIEWS_PER_BATCH {
        return Err(Error::BadRequest(format!("events must hold 1 to {MAX_VIEWS_PER_BATCH} events")));
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            if e.at < now - MAX_PAST_MS || e.at > now + MAX_FUTURE_MS {
                return Err(Error::BadRequest(format!(
                    "events[{i}].at must be within 30 days before and 1 day after the hub's clock"
                )));
            }
            let duration_ms = match e.duration_ms {
                Some(d) if d > MAX_DURATION_MS => {
                    return Err(Error::BadRequest(format!("events[{i}].duration_ms must be at most {MAX_DURATION_MS}")))
                }
                d => d.map(|d| d as i64),
            };
            Ok(ViewEvent {
                kind: e.kind.as_str().to_owned(),
                screen: required(&format!("events[{i}].screen"), e.screen, MAX_NAME_CHARS)?,
                target: text(&format!("events[{i}].target"), e.target, MAX_NAME_CHARS)?,
                at: e.at,
                duration_ms,
            })
        })
        .collect()
}

/// The stored form of a settings document (its JSON text), if it is at most `max_bytes`.
///
/// # Errors
/// `too_large` over the limit.
pub fn settings(document: &SettingsDocument, max_bytes: usize) -> Result<String> {
    let text = serde_json::to_string(document).map_err(|e| Error::Internal(format!("settings encode: {e}")))?;
    if text.len() > max_bytes {
        return Err(Error::TooLarge {
            what: "settings document",
            size: Some(text.len()),
            limit: max_bytes,
            unit: SizeUnit::Bytes,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::telemetry::ViewKind;

    fn view(at: Millis) -> ViewEventReport {
        ViewEventReport {
            kind: ViewKind::Screen,
            screen: " home ".into(),
            target: Some("  ".into()),
            at,
            duration_ms: None,
        }
    }

    #[test]
    fn text_is_trimmed_and_blank_is_absent() {
        let v = views(vec![view(1_000)], 1_000).unwrap();
        assert_eq!(v[0].screen, "home");
        assert_eq!(v[0].target, None);
    }

    #[test]
    fn limits_name_the_field() {
        let mut long = view(1_000);
        long.screen = "x".repeat(65);
        let e = views(vec![view(1_000), long], 1_000).unwrap_err();
        assert!(e.to_string().starts_with("events[1].screen"), "{e}");
        assert!(views(vec![], 0).is_err());
        assert!(views(vec![view(1_000); 101], 1_000).is_err());
        assert!(views(vec![view(MAX_FUTURE_MS + 2)], 1).is_err());
        let bad = DeviceReport { os: "android".into(), locale: Some("fa IR".into()), ..Default::default() };
        assert!(device(bad).unwrap_err().to_string().contains("locale"));
        let bad = DeviceReport { os: "android".into(), screen_width: Some(0), ..Default::default() };
        assert!(device(bad).is_err());
        assert!(device(DeviceReport::default()).unwrap_err().to_string().contains("device.os"));
        let control = DeviceReport { os: "an\u{0}droid".into(), ..Default::default() };
        assert!(device(control).is_err());
    }

    #[test]
    fn settings_over_the_limit_are_too_large() {
        let mut doc = SettingsDocument::new();
        doc.insert("theme".into(), "dark".into());
        assert_eq!(settings(&doc, 100).unwrap(), r#"{"theme":"dark"}"#);
        assert!(matches!(settings(&doc, 10), Err(Error::TooLarge { .. })));
    }
}
