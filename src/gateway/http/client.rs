//! What the hub learns of a client from its upgrade request: IP (behind trusted proxies, from
//! `X-Forwarded-For`), user agent, and the app's or browser's version.

use crate::model::telemetry::{ClientInfo, MAX_USER_AGENT_BYTES};
use axum::http::HeaderMap;
use std::net::IpAddr;

/// Longest app version taken from `X-App-Version`.
const MAX_VERSION_CHARS: usize = 32;

impl ClientInfo {
    /// Reads the headers of an upgrade request from `ip`.
    pub fn from_headers(ip: IpAddr, headers: &HeaderMap) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let user_agent = header("user-agent").filter(|s| !s.is_empty()).map(|ua| {
            let mut cut = ua.len().min(MAX_USER_AGENT_BYTES);
            while !ua.is_char_boundary(cut) {
                cut -= 1;
            }
            Box::from(&ua[..cut])
        });
        let app = header("x-app-version").filter(|v| {
            !v.is_empty()
                && v.chars().count() <= MAX_VERSION_CHARS
                && v.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        });
        let client_version =
            app.map(Box::from).or_else(|| user_agent.as_deref().and_then(browser_version).map(Box::from));
        Self { ip, user_agent, client_version }
    }
}

/// The browser and its version in a user agent (`Edg/126.0`, `Firefox/128.0`, `Chrome/126.0`,
/// `Safari/17.5`), most specific first, since most browsers also claim to be the others.
pub(super) fn browser_version(ua: &str) -> Option<String> {
    let token = |name: &str| {
        ua.split_whitespace().find_map(|t| t.strip_prefix(name)?.strip_prefix('/')).map(|v| {
            v.chars().take_while(|c| c.is_ascii_digit() || *c == '.').take(MAX_VERSION_CHARS).collect::<String>()
        })
    };
    for name in ["Edg", "OPR", "Firefox", "Chrome"] {
        if let Some(v) = token(name).filter(|v| !v.is_empty()) {
            return Some(format!("{name}/{v}"));
        }
    }
    // Safari puts its version in `Version/x`; `Safari/605` is the engine build.
    if token("Safari").is_some() {
        if let Some(v) = token("Version").filter(|v| !v.is_empty()) {
            return Some(format!("Safari/{v}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_told_apart() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.126 Safari/537.36";
        assert_eq!(browser_version(chrome).as_deref(), Some("Chrome/126.0.6478.126"));
        let edge = format!("{chrome} Edg/126.0.2592.87");
        assert_eq!(browser_version(&edge).as_deref(), Some("Edg/126.0.2592.87"));
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(browser_version(firefox).as_deref(), Some("Firefox/128.0"));
        let safari = "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";
        assert_eq!(browser_version(safari).as_deref(), Some("Safari/17.5"));
        assert_eq!(browser_version("curl/8.5.0"), None);
    }

    #[test]
    fn the_app_header_wins_and_long_agents_are_cut() {
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", "x".repeat(1000).parse().unwrap());
        headers.insert("x-app-version", "3.2.1 (android)".parse().unwrap());
        let info = ClientInfo::from_headers([10, 0, 0, 1].into(), &headers);
        assert_eq!(info.user_agent.as_deref().map(str::len), Some(MAX_USER_AGENT_BYTES));
        assert_eq!(info.client_version.as_deref(), Some("3.2.1 (android)"));
    }
}
