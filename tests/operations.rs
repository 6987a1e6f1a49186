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

#[tokio::test]
async fn a_connection_that_never_finishes_its_request_is_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for hub in hubs(|c| c.upgrade_timeout_ms = 300).await {
        let addr = hub.base.trim_start_matches("http://").to_owned();
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(b"GET /v1/ws HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf)).await;
        let elapsed = started.elapsed();
        assert!(read.is_ok(), "{} the hub must end a stalled request", hub.label());
        assert!(elapsed < std::time::Duration::from_secs(2), "{} took {elapsed:?}", hub.label());
    }
}
