//! The agent console (`GET /console`): a few static files from `console/` at the repository root,
//! embedded in the binary at compile time, so that a hub serves its console with no web server, no
//! CDN and no Node toolchain. The page talks to the hub only through the documented protocol.
//!
//! Every answer carries a strict `Content-Security-Policy` (the hub's own origin only, no inline
//! script or style, no framing), `Cache-Control: no-cache` with an `ETag` (the files change with
//! the binary, so browsers revalidate, and a `304` answers an unchanged file), and `nosniff`.

use crate::error::Error;
use crate::gateway::http::ApiError;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The page's policy: everything from the hub itself (`'self'` covers `ws:`/`wss:` to the same
/// host in current browsers), nothing inline, no plugins, no framing, and forms go nowhere (the
/// sign-in form is sent by script; without script it must not put a password in a URL). Images
/// may also be `blob:`: attachments are read with the agent's token in a header, which an
/// `<img src>` cannot send, so the page fetches them and shows the bytes it holds.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    /// The name under `/console/`.
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $name)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("hub-client.js", "text/javascript; charset=utf-8"),
    asset!("session.js", "text/javascript; charset=utf-8"),
    asset!("thread.js", "text/javascript; charset=utf-8"),
    asset!("i18n.js", "text/javascript; charset=utf-8"),
    asset!("lang-fa.js", "text/javascript; charset=utf-8"),
    asset!("lang-en.js", "text/javascript; charset=utf-8"),
    asset!("canned.js", "text/javascript; charset=utf-8"),
    asset!("notes.js", "text/javascript; charset=utf-8"),
    asset!("mentions.js", "text/javascript; charset=utf-8"),
    asset!("picker.js", "text/javascript; charset=utf-8"),
    asset!("customer.js", "text/javascript; charset=utf-8"),
    asset!("alerts.js", "text/javascript; charset=utf-8"),
    asset!("uploads.js", "text/javascript; charset=utf-8"),
    asset!("attachments.js", "text/javascript; charset=utf-8"),
    asset!("labels.js", "text/javascript; charset=utf-8"),
    asset!("search.js", "text/javascript; charset=utf-8"),
    asset!("ratings.js", "text/javascript; charset=utf-8"),
    asset!("reports.js", "text/javascript; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// Each asset's `ETag`: a strong validator from its content, computed once.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = Sha256::digest(a.bytes);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header value")
        })
        .collect()
});

/// The console's routes: the page at `/console` (and `/console/`), its files under `/console/`.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/console", get(index)).route("/console/", get(index)).route("/console/{file}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers).unwrap_or_else(|e| e.into_response())
}

async fn file(axum::extract::Path(name): axum::extract::Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers).unwrap_or_else(|e| e.into_response())
}

fn serve(name: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let i = ASSETS.iter().position(|a| a.name == name).ok_or(ApiError(Error::NotFound("route")))?;
    let asset = &ASSETS[i];
    let etag = &ETAGS[i];
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag.to_str().unwrap_or_default() || tag.trim() == "*");
    let mut response = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.bytes.into_response() };
    let h = response.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    }
    h.insert(header::ETAG, etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_embedded() {
        let page = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        let mut named = Vec::new();
        for attr in ["src=\"/console/", "href=\"/console/"] {
            for piece in page.split(attr).skip(1) {
                named.push(piece.split('"').next().unwrap().to_owned());
            }
        }
        // And the modules the scripts import.
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(a.bytes).unwrap();
            for piece in text.split("from './").skip(1) {
                named.push(piece.split('\'').next().unwrap().to_owned());
            }
        }
        assert!(named.len() >= 5, "found {named:?}");
        for name in named {
            assert!(ASSETS.iter().any(|a| a.name == name), "{name} is used but not embedded");
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        assert!(!page.contains("<script>") && !page.contains("style=") && !page.contains("<style"));
        // Inline handlers (` onclick=`, ` onload=`, ...) would be blocked by the policy.
        let handler = page.split(" on").skip(1).find(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(handler.is_none(), "inline handler: on{}", handler.unwrap_or_default());
    }
}
