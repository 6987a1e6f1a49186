//! The SMS senders: how sign-in codes reach a phone. The policy says texts go through the group's
//! own services, so production uses `http:` (the group's SMS gateway); `file:` is what tests and load
//! tests read; `log` is for a developer's first run.

use crate::config::SenderSpec;
use crate::error::{Error, Result};
use crate::ports::sms::{Sms, SmsSender};
use async_trait::async_trait;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;

/// Builds the sender the configuration names.
///
/// # Errors
/// An invalid spec, or an HTTP client that cannot be built.
pub(crate) fn build(spec: &str, timeout: Duration, retries: u32) -> anyhow::Result<Arc<dyn SmsSender>> {
    Ok(match SenderSpec::parse(spec).map_err(anyhow::Error::msg)? {
        SenderSpec::Log => {
            tracing::warn!("sms sender is `log`: codes are written to this log; set HUB_SMS for production");
            Arc::new(LogSender)
        }
        SenderSpec::File(path) => Arc::new(FileSender::new(path)),
        SenderSpec::Http(url) => Arc::new(HttpSender::new(url, timeout, retries)?),
    })
}

/// Writes each SMS to the log, number masked, text in full (so a developer can read the code).
pub(crate) struct LogSender;

#[async_trait]
impl SmsSender for LogSender {
    async fn send(&self, sms: &Sms) -> Result<()> {
        tracing::info!(to = %sms.to.masked(), text = %sms.text, "sms (log sender)");
        Ok(())
    }
}

#[derive(Serialize)]
struct SmsLine<'a> {
    to: &'a str,
    text: &'a str,
    at: String,
}

/// Appends each SMS to a file as one JSON line `{"to", "text", "at"}`.
pub(crate) struct FileSender {
    path: PathBuf,
    // Serialises appends so concurrent sends never interleave within a line.
    lock: tokio::sync::Mutex<()>,
}

impl FileSender {
    /// A sender appending to `path` (created on first send).
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path, lock: tokio::sync::Mutex::new(()) }
    }
}

#[async_trait]
impl SmsSender for FileSender {
    async fn send(&self, sms: &Sms) -> Result<()> {
        let line = SmsLine {
            to: sms.to.e164(),
            text: &sms.text,
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|e| Error::Internal(e.to_string()))?;
        bytes.push(b'\n');
        let _guard = self.lock.lock().await;
        let result = async {
            let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(&self.path).await?;
            file.write_all(&bytes).await?;
            file.flush().await
        }
        .await;
        result.map_err(|e| {
            tracing::error!(error = %e, path = %self.path.display(), "sms file sender failed");
            Error::SmsUnavailable
        })
    }
}

#[derive(Serialize)]
struct GatewayRequest<'a> {
    to: &'a str,
    text: &'a str,
}

/// POSTs `{"to", "text"}` as JSON to the group's SMS gateway; any 2xx is success. Timeouts,
/// connection errors and 5xx answers are retried with a doubling backoff; 4xx answers are not.
pub(crate) struct HttpSender {
    url: String,
    client: reqwest::Client,
    retries: u32,
}

impl HttpSender {
    /// A sender for `url` with a per-request `timeout` and `retries` extra tries.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub(crate) fn new(url: String, timeout: Duration, retries: u32) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        Ok(Self { url, client, retries })
    }
}

#[async_trait]
impl SmsSender for HttpSender {
    async fn send(&self, sms: &Sms) -> Result<()> {
        let body = GatewayRequest { to: sms.to.e164(), text: &sms.text };
        let mut backoff = Duration::from_millis(200);
        for attempt in 0..=self.retries {
            match self.client.post(&self.url).json(&body).send().await {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) if resp.status().is_client_error() => {
                    tracing::error!(status = resp.status().as_u16(), "sms gateway refused the message");
                    return Err(Error::SmsUnavailable);
                }
                Ok(resp) => tracing::warn!(status = resp.status().as_u16(), attempt, "sms gateway error"),
                // reqwest's error text names the URL, not the body: safe to log.
                Err(e) => tracing::warn!(error = %e, attempt, "sms gateway unreachable"),
            }
            if attempt < self.retries {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        metrics::counter!(crate::metrics::SMS_FAILURES).increment(1);
        Err(Error::SmsUnavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::phone::Phone;

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(SenderSpec::parse("log").unwrap(), SenderSpec::Log);
        assert_eq!(SenderSpec::parse("file:/tmp/sms.jsonl").unwrap(), SenderSpec::File("/tmp/sms.jsonl".into()));
        assert_eq!(
            SenderSpec::parse("http:https://sms.example/send").unwrap(),
            SenderSpec::Http("https://sms.example/send".into())
        );
        assert_eq!(
            SenderSpec::parse("http://127.0.0.1:9/send").unwrap(),
            SenderSpec::Http("http://127.0.0.1:9/send".into())
        );
        assert!(SenderSpec::parse("file:").is_err());
        assert!(SenderSpec::parse("smtp://x").is_err());
    }

    #[tokio::test]
    async fn file_sender_appends_one_json_line_per_sms() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms.jsonl");
        let sender = FileSender::new(path.clone());
        let to = Phone::from_e164("+989121234567");
        for text in ["one", "two"] {
            sender.send(&Sms { to: to.clone(), text: text.into() }).await.unwrap();
        }
        let content = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = content.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["to"], "+989121234567");
        assert_eq!(lines[1]["text"], "two");
        assert!(lines[1]["at"].as_str().unwrap().ends_with('Z'));
    }
}
