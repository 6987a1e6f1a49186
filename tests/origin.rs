//! Cross-site WebSocket hijacking protection: the `Origin` of a `/v1/ws` upgrade is checked
//! against the hub's own origin and `allowed_origins`; no `Origin` (a native app) is fine.

mod common;

use anapars_hub::protocol::Encoding;
use common::hub::{hubs, phone, TestHub};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Opens a socket with these extra headers; Ok when it was upgraded, else the status and body.
async fn upgrade(hub: &TestHub, headers: &[(&str, &str)]) -> Result<(), (u16, Value)> {
    let mut req = hub.ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", Encoding::Json.protocol().parse().unwrap());
    for (name, value) in headers {
        let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        req.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_deref().map(|b| serde_json::from_slice(b).unwrap()).unwrap_or(Value::Null);
            Err((resp.status().as_u16(), body))
        }
        Err(e) => panic!("{} unexpected upgrade failure: {e}", hub.label()),
    }
}

fn own_origin(hub: &TestHub) -> String {
    hub.base.clone() // http://127.0.0.1:<port>, which is also the Host the client sends
}

#[tokio::test]
async fn absent_own_and_listed_origins_are_allowed() {
    for hub in hubs(|c| c.allowed_origins = "https://console.example, http://10.0.0.7:8080".into()).await {
        let label = hub.label();
        assert_eq!(upgrade(&hub, &[]).await, Ok(()), "{label} no Origin (a native app)");
        let own = own_origin(&hub);
        assert_eq!(upgrade(&hub, &[("Origin", &own)]).await, Ok(()), "{label} the hub's own origin");
        assert_eq!(upgrade(&hub, &[("Origin", &own.to_uppercase())]).await, Ok(()), "{label} case does not matter");
        assert_eq!(upgrade(&hub, &[("Origin", "https://console.example")]).await, Ok(()), "{label} listed");
        assert_eq!(upgrade(&hub, &[("Origin", "https://console.example:443")]).await, Ok(()), "{label} default port");
        assert_eq!(upgrade(&hub, &[("Origin", "http://10.0.0.7:8080")]).await, Ok(()), "{label} listed with a port");

        // An allowed socket works as usual.
        let token = hub.token(&phone()).await;
        let mut c = hub.connect_as(Encoding::Json, &token).await;
        assert_eq!(c.request(json!({"type": "ping"})).await["type"], "ping.ok");
    }
}

#[tokio::test]
async fn other_origins_are_refused_with_403_forbidden() {
    for hub in hubs(|c| c.allowed_origins = "https://console.example".into()).await {
        let label = hub.label();
        let port = hub.base.rsplit(':').next().unwrap().to_owned();
        let token = hub.token(&phone()).await;
        let bearer = format!("Bearer {token}");
        for origin in [
            "https://evil.example".to_owned(),
            "null".to_owned(),
            "https://console.example.evil.example".to_owned(),
            "http://console.example".to_owned(), // listed with https only
            format!("https://127.0.0.1:{port}"), // the hub's host, another scheme
            format!("http://localhost:{port}"),  // the same machine, but not the Host the client used
            "not an origin".to_owned(),
        ] {
            let refused = upgrade(&hub, &[("Origin", &origin)]).await;
            let Err((status, body)) = refused else { panic!("{label} {origin} was allowed") };
            assert_eq!(status, 403, "{label} {origin}: {body}");
            assert_eq!(body["error"]["code"], "forbidden", "{label} {origin}: {body}");
            // Refused before the token is even looked at: a valid one does not help.
            let refused = upgrade(&hub, &[("Origin", &origin), ("Authorization", &bearer)]).await;
            assert_eq!(refused.map_err(|(s, _)| s), Err(403), "{label} {origin} with a token");
        }
    }
}

#[tokio::test]
async fn behind_a_trusted_tls_proxy_the_hubs_own_origin_is_https() {
    for hub in hubs(|c| c.trusted_proxies = "127.0.0.1".into()).await {
        let label = hub.label();
        let https_own = own_origin(&hub).replace("http://", "https://");
        let proxied = [("Origin", https_own.as_str()), ("X-Forwarded-Proto", "https")];
        assert_eq!(upgrade(&hub, &proxied).await, Ok(()), "{label} https through the proxy");
        let plain = upgrade(&hub, &[("Origin", &https_own)]).await;
        assert_eq!(plain.map_err(|(s, _)| s), Err(403), "{label} https without the proxy's word for it");
    }
    // From a peer that is not a trusted proxy, X-Forwarded-Proto is not believed.
    for hub in hubs(|_| {}).await {
        let https_own = own_origin(&hub).replace("http://", "https://");
        let forged = upgrade(&hub, &[("Origin", &https_own), ("X-Forwarded-Proto", "https")]).await;
        assert_eq!(forged.map_err(|(s, _)| s), Err(403), "{} forged X-Forwarded-Proto", hub.label());
    }
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        for path in ["/console", "/console/", "/console/app.js", "/console/console.css"] {
            let resp = hub.http.get(format!("{}{path}", hub.base)).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{label} {path}");
            let h = resp.headers();
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{label} {csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{label} {csp}");
            assert_eq!(h["cache-control"], "no-cache", "{label} {path}");
            assert_eq!(h["x-content-type-options"], "nosniff");
            let ct = h["content-type"].to_str().unwrap().to_owned();
            let expected = match path {
                p if p.ends_with(".js") => "text/javascript",
                p if p.ends_with(".css") => "text/css",
                _ => "text/html",
            };
            assert!(ct.starts_with(expected), "{label} {path}: {ct}");
            // Revalidation: the same ETag answers 304 without a body.
            let etag = h["etag"].to_str().unwrap().to_owned();
            let again =
                hub.http.get(format!("{}{path}", hub.base)).header("If-None-Match", &etag).send().await.unwrap();
            assert_eq!(again.status(), 304, "{label} {path}");
        }
        let (status, body) = hub.get("/console/nope.js", None).await;
        assert_eq!(status, 404, "{label}");
        assert_eq!(body["error"]["code"], "not_found");
        let page = hub.http.get(format!("{}/console", hub.base)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("/console/app.js"), "{label} the page loads its script");
    }
}
