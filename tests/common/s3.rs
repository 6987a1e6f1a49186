//! A real S3-compatible server for the tests: `moto_server` (PyPI `moto[server]`), started on a free
//! loopback port by the test itself, with a fresh bucket, and stopped when dropped.
//!
//! The server is `$MOTO_SERVER` when set, else `python3 -m moto.server`. When it cannot be started
//! the S3 tests skip with a message, unless `REQUIRE_S3` is set (CI sets it, and installs the
//! server): then they fail, so that a CI run never passes without having tested S3.

use anapars_hub::config::Secret;
use anapars_hub::Config;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable that makes an unavailable S3 server a failure instead of a skip.
pub const REQUIRE_S3: &str = "REQUIRE_S3";

/// How long the server may take to answer after it was started (Python imports are slow on a
/// loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running S3-compatible server with one empty bucket of its own.
pub struct TestS3 {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket created for this server.
    pub bucket: String,
    child: Child,
}

impl TestS3 {
    /// Starts the server and creates a bucket; `None` (after saying why) when the server is not
    /// installed or does not come up, unless `REQUIRE_S3` is set.
    ///
    /// # Panics
    /// The server is unavailable and `REQUIRE_S3` is set.
    pub async fn start() -> Option<Self> {
        match Self::try_start().await {
            Ok(s3) => Some(s3),
            Err(why) if std::env::var_os(REQUIRE_S3).is_some() => {
                panic!("\n\n{REQUIRE_S3} is set, but the S3-compatible test server is unavailable: {why}\n\n")
            }
            Err(why) => {
                eprintln!(
                    "SKIPPED: no S3-compatible test server ({why}); install it with `pip install 'moto[server]'` \
                     (CI does, and sets {REQUIRE_S3})"
                );
                None
            }
        }
    }

    async fn try_start() -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let mut command = match std::env::var("MOTO_SERVER") {
            Ok(program) => Command::new(program),
            Err(_) => {
                let mut c = Command::new("python3");
                c.args(["-m", "moto.server"]);
                c
            }
        };
        let log = tempfile::NamedTempFile::new().map_err(|e| format!("no log file: {e}"))?;
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().map_err(|e| format!("no log file: {e}"))?)
            .spawn()
            .map_err(|e| format!("cannot run the server: {e}"))?;
        let mut s3 = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: format!("hub-test-{}", uuid::Uuid::new_v4().simple()),
            child,
        };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().map_err(|e| e.to_string())?;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = s3.child.try_wait() {
                let output = std::fs::read_to_string(log.path()).unwrap_or_default();
                let last = output.lines().last().unwrap_or("no output").to_owned();
                return Err(format!("the server exited with {status}: {last}"));
            }
            // Creating the bucket is the first request; moto answers it once it serves.
            if let Ok(response) = http.put(format!("{}/{}", s3.endpoint, s3.bucket)).send().await {
                if response.status().is_success() {
                    return Ok(s3);
                }
                return Err(format!("creating the test bucket answered {}", response.status()));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!("the server did not answer within {START_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Points `config` at this server's bucket, under `prefix` when given.
    pub fn configure(&self, config: &mut Config, prefix: Option<&str>) {
        config.object_store_url = Some(match prefix {
            Some(prefix) => format!("s3://{}/{prefix}", self.bucket),
            None => format!("s3://{}", self.bucket),
        });
        config.s3_endpoint = Some(self.endpoint.clone());
        config.s3_region = Some("us-east-1".into());
        // moto accepts any credentials; set, so that nothing looks for an instance role.
        config.s3_access_key_id = Some(Secret("test-key".into()));
        config.s3_secret_access_key = Some(Secret("test-secret".into()));
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
