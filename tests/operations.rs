//! What an operator relies on: health, readiness, metrics, and clean errors for unknown routes.

mod common;

use anapars_hub::codec::Encoding;
use common::hub::{hubs, phone};
use serde_json::json;

#[tokio::test]
async fn health_and_readiness() {
    for hub in hubs(|_| {}).await {
        assert_eq!(hub.get("/healthz", None).await, (200, json!({"status": "ok"})), "{}", hub.label());
        assert_eq!(hub.get("/readyz", None).await, (200, json!({"status": "ready"})), "{}", hub.label());
        let (status, body) = hub.get("/no/such/route", None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    }
}

#[tokio::test]
async fn metrics_count_connections_frames_errors_and_codes() {
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        let mut c = hub.connect_as(Encoding::Json, &token).await;
        c.request(json!({"type": "ping"})).await;
        c.request(json!({"type": "no.such.type"})).await;
        let text = hub.http.get(format!("{}/metrics", hub.base)).send().await.unwrap().text().await.unwrap();
        for needle in [
            "hub_connections ",
            "hub_connections_total",
            "hub_frames_in_total{type=\"ping\"}",
            "hub_frames_out_total{type=\"ping.ok\"}",
            "hub_errors_total{code=\"unknown_type\"}",
            "hub_otp_sent_total",
            "hub_sign_ins_total",
            "hub_http_request_duration_seconds_bucket",
            "hub_ws_request_duration_seconds_bucket",
        ] {
            assert!(text.contains(needle), "{} /metrics lacks {needle}", hub.label());
        }
    }
}
