//! The hub's configuration: one serde struct. Defaults, then an optional TOML file (`--config`),
//! then `HUB_*` environment variables (plus `DATABASE_URL` and `REDIS_URL`), then command-line flags.
//! Validation happens once, in [`Config::validate`], before anything starts.
//!
//! One file on purpose: every setting's meaning and default is written once, here, beside its
//! validation (the README's table is checked against it by `tests/readme.rs`).

mod origin;

pub use origin::Origin;

use crate::model::language::Language;
use crate::model::sms::{LanguageChoice, SmsPurpose, SmsTexts};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// A secret value: its `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "Secret(<empty>)" } else { "Secret(<redacted>)" })
    }
}

/// The shortest history retention: a shorter one is more likely a mistake of units than a wish.
const MIN_TICKET_HISTORY_RETENTION_SECS: u64 = 30 * 24 * 3600;

/// `HUB_` variables that are read, but not as settings.
const NOT_SETTINGS: &[&str] = &[
    // The configuration file's path (the `--config` flag).
    "HUB_CONFIG",
];

/// Every setting of the hub. The environment variable is the field name in upper case with `HUB_`
/// in front (`listen` is `HUB_LISTEN`), except `database_url` and `redis_url`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the one listener serving HTTP and the WebSocket. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `postgres://` URL (env `DATABASE_URL`). Unset: the embedded SQLite file at `sqlite_path`.
    pub database_url: Option<Secret>,
    /// The embedded SQLite database, created on first run. Default `./data/hub.sqlite`.
    pub sqlite_path: PathBuf,
    /// Connections in the storage pool. Default 16.
    pub db_pool_size: u32,
    /// How long a storage call may wait for a connection or an answer before the client gets
    /// `unavailable`. Default 5000 ms.
    pub db_timeout_ms: u64,
    /// Redis URL (env `REDIS_URL`): one server, or a Redis Cluster (found out from the server; list
    /// several of its nodes separated by commas so that start-up does not depend on one). Unset:
    /// single node, all shared state in process.
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key the hub writes, so that several deployments (or test runs) can share
    /// one Redis. Default `anapars:`.
    pub redis_prefix: String,
    /// Key for hashing sign-in codes and the phone numbers inside lock-outs and rate-limit keys. Set
    /// the same value on every node. Unset: derived from the current data key (outside the database).
    pub secret: Option<Secret>,
    /// The data keys that seal personal identifiers at rest (mobile numbers): `id:base64` entries
    /// (32 random bytes each) separated by spaces, commas or lines, the current key first (env
    /// `HUB_DATA_KEYS`). Takes precedence over `data_keys_file`.
    pub data_keys: Option<Secret>,
    /// A file holding the data keys as `data_keys` does (one per line, `#` comments). Unset, with
    /// `data_keys` unset too: on SQLite the hub keeps them in `data-keys` beside the database file
    /// (created with one key on first start); on Postgres it refuses to start.
    pub data_keys_file: Option<PathBuf>,
    /// Bearer token of the operator endpoints (`POST /v1/admin/announcements`); at least 32
    /// characters. Unset: those endpoints are off (`403`).
    pub admin_token: Option<Secret>,
    /// SMS sender: `log` (default; the text goes to the log, for development), `file:PATH` (one JSON
    /// line per SMS), or `http:URL` / `https:URL` (POST to the group's SMS gateway).
    pub sms: String,
    /// Timeout of one SMS gateway request. Default 5000 ms.
    pub sms_timeout_ms: u64,
    /// Extra tries after a failed SMS gateway request. Default 2.
    pub sms_retries: u32,
    /// Codes the hub may send per hour, all numbers together; over it, `sms_budget_exhausted`. Default 1000.
    pub sms_budget_per_hour: u64,
    /// Language of the SMS that carries a code: `auto` (default: Persian for numbers of Iran and
    /// Afghanistan, English for the others), `fa` or `en` (always that language).
    pub sms_language: String,
    /// The Persian sign-in SMS. Placeholders: `{code}` (required) and `{minutes}`; `{{` and `}}`
    /// for braces. Unset: the built-in text (protocol/PROTOCOL.md, "SMS text").
    pub sms_template_sign_in_fa: Option<String>,
    /// The English sign-in SMS, as `sms_template_sign_in_fa`.
    pub sms_template_sign_in_en: Option<String>,
    /// The Persian SMS confirming a new number (the number change), as `sms_template_sign_in_fa`.
    pub sms_template_phone_change_fa: Option<String>,
    /// The English SMS confirming a new number, as `sms_template_sign_in_fa`.
    pub sms_template_phone_change_en: Option<String>,
    /// Host name (`app.example.com`) of the web app allowed to read the code by itself: each SMS
    /// then ends with the origin-bound line `@host #code` (WebOTP, iOS autofill). Unset: no line.
    pub sms_origin: Option<String>,
    /// The Android app's 11-character SMS Retriever hash, put on a line of its own so that the
    /// app reads the code without the SMS permission. Unset: no line.
    pub sms_app_hash: Option<String>,
    /// Region codes (ISO 3166) whose numbers may sign in, comma-separated, or `*`. Default `IR`.
    pub phone_countries: String,
    /// Region assumed for numbers typed without a country code. Default `IR`.
    pub phone_default_region: String,
    /// Numbers starting with this E.164 prefix are test numbers: no SMS is sent and `test_code`
    /// signs them in. For load tests only: unsafe in production. Off unless both are set.
    pub test_phone_prefix: Option<String>,
    /// The fixed 6-digit code of test numbers.
    pub test_code: Option<Secret>,
    /// Lifetime of a sign-in code. Default 300 s.
    pub code_ttl_secs: u64,
    /// Wrong tries one code allows. Default 5.
    pub code_max_attempts: u32,
    /// Minimum time between two codes to one number. Default 60 s.
    pub code_resend_secs: u64,
    /// Codes one number may be sent per 10 minutes. Default 3.
    pub codes_per_number_10min: u64,
    /// Codes one number may be sent per day. Default 10.
    pub codes_per_number_day: u64,
    /// Codes one client IP (IPv6: its /64) may request per hour. Default 20.
    pub codes_per_ip_hour: u64,
    /// Wrong codes for one number (across resends) that lock it. Default 10.
    pub lockout_after_failures: u32,
    /// The first lock-out; each further one doubles, up to a day. Default 900 s.
    pub lockout_base_secs: u64,
    /// Lifetime of a session token; refresh over the socket before it ends. Default 30 days.
    pub session_ttl_secs: u64,
    /// Devices that may hold the account at once; signing in on one more signs the least recently
    /// used device out (`session.revoked`, `signed_in_elsewhere`). Default 1: the number moves the
    /// account from the old phone to the new one.
    pub max_devices: u32,
    /// A person is announced offline only after this long without any socket. Default 5000 ms.
    pub presence_grace_ms: u64,
    /// Cluster only: a node whose heartbeat in Redis is this old counts as dead; its people stop
    /// counting as online at once and are announced offline at the next upkeep of another node (a
    /// third of this). Keep it above the time Redis takes to fail over (on a Redis Cluster, its
    /// `cluster-node-timeout` plus the election), or a failover takes people offline for a moment.
    /// Default 10000 ms.
    pub presence_node_ttl_ms: u64,
    /// Cluster only: how often each node reads the tickets changed lately, to deliver events whose
    /// publication over Redis it missed (within about one and a half periods). Default 1000 ms.
    pub cluster_sweep_ms: u64,
    /// Cluster only: how often each node asks storage whether the sessions of its sockets are still
    /// live, in case it missed a revocation published by another node. Default 30 s.
    pub session_recheck_secs: u64,
    /// Folder of stored profile images. Default `./data/media`.
    pub media_dir: PathBuf,
    /// Largest profile image upload. Default 5242880 (5 MiB).
    pub max_image_bytes: usize,
    /// Largest width or height of an uploaded image. Default 4096.
    pub max_image_side: u32,
    /// Folder of stored attachments (their bytes and thumbnails) when `object_store_url` is unset;
    /// created when missing. Default `./data/attachments`.
    pub attachments_dir: PathBuf,
    /// Where attachments are stored instead of `attachments_dir`: `s3://BUCKET` or
    /// `s3://BUCKET/PREFIX`, an S3-compatible bucket that every node of a cluster reaches (the
    /// bucket must exist). Unset: the local folder.
    pub object_store_url: Option<String>,
    /// Endpoint of an S3-compatible service other than AWS (`https://minio.example:9000`); an
    /// `http://` endpoint is allowed as written. Unset: AWS, or the `AWS_ENDPOINT` variable.
    pub s3_endpoint: Option<String>,
    /// Region of the bucket. Unset: the `AWS_REGION` variable, else `us-east-1`.
    pub s3_region: Option<String>,
    /// Access key id for the bucket. Unset: the `AWS_ACCESS_KEY_ID` variable, else the standard
    /// AWS credential sources.
    pub s3_access_key_id: Option<Secret>,
    /// Secret access key for the bucket, with `s3_access_key_id`. Unset: `AWS_SECRET_ACCESS_KEY`.
    pub s3_secret_access_key: Option<Secret>,
    /// How long one object store request may take, retries included, before the client gets
    /// `unavailable`. Default 30000 ms.
    pub object_store_timeout_ms: u64,
    /// Largest attachment, in bytes, as uploaded. Default 10485760 (10 MiB).
    pub attachment_max_bytes: u64,
    /// Most attachments on one message. Default 10.
    pub attachments_per_message: usize,
    /// Bytes one person (user or agent) may upload per UTC day, counting the uploads they started
    /// that day and that still exist. Default 104857600 (100 MiB).
    pub attachment_bytes_per_day: u64,
    /// Uploads one person may have in progress at once. Default 4.
    pub uploads_in_progress: u32,
    /// How long an upload not yet on a message is kept (a half-finished one included), in seconds.
    /// Default 86400 (a day).
    pub upload_expiry_secs: u64,
    /// Largest image attachment, in pixels (width times height), checked from the header before
    /// anything is decoded. Default 40000000.
    pub attachment_max_pixels: u64,
    /// Events of one ticket within this window become one push notification, in ms. Default 3000.
    pub push_collapse_ms: u64,
    /// A push notification not delivered by this age is dropped, in seconds. Default 86400.
    pub push_give_up_secs: u64,
    /// How long one request to a push provider may take. Default 10000 ms.
    pub push_timeout_ms: u64,
    /// An agent's reply unread for this long earns a user without a push target one SMS reminder
    /// (if their `sms_reminders` consent is on), in seconds. Default 0: no SMS reminders.
    pub sms_reminder_after_secs: u64,
    /// How long after a resolution its user may rate it, in seconds. Default 604800 (a week);
    /// 0: ratings are off (no requests, ratings refused).
    pub rating_expiry_secs: u64,
    /// At most one SMS reminder per ticket within this period, in seconds. Default 86400.
    pub sms_reminder_period_secs: u64,
    /// SMS reminders the whole hub sends per hour at most (a budget of their own, apart from
    /// `sms_budget_per_hour`); beyond it, reminders are skipped. Default 100.
    pub sms_reminders_per_hour: u64,
    /// The `sub` claim of the hub's VAPID tokens: a `mailto:` or `https:` contact push services
    /// can reach the operator at. Unset: no contact is sent.
    pub vapid_subject: Option<String>,
    /// The Firebase service account file (JSON, from the Firebase console) the hub sends FCM
    /// messages as. Unset: FCM registrations are refused.
    pub fcm_service_account_file: Option<PathBuf>,
    /// The FCM HTTP v1 API's base URL. Default `https://fcm.googleapis.com`.
    pub fcm_url: String,
    /// Accept `http://` Web Push endpoints (local receivers in development and tests). Default false.
    pub webpush_allow_http: bool,
    /// The APNs signing key Apple issues (`AuthKey_<key id>.p8`: PKCS#8 PEM, P-256), with
    /// `apns_key_id`, `apns_team_id` and `apns_topic` (all four or none). Unset: no APNs, and
    /// `apns` registrations are refused.
    pub apns_key_file: Option<PathBuf>,
    /// The APNs key's id (10 letters and digits, shown beside the key in the developer account).
    pub apns_key_id: Option<String>,
    /// The Apple developer team's id (10 letters and digits).
    pub apns_team_id: Option<String>,
    /// The app's bundle id: the topic of its notifications.
    pub apns_topic: Option<String>,
    /// APNs for the tokens of App Store and TestFlight builds. Default `https://api.push.apple.com`.
    pub apns_url: String,
    /// APNs for the tokens of development builds (`environment: sandbox`). Default
    /// `https://api.sandbox.push.apple.com`.
    pub apns_sandbox_url: String,
    /// A PEM file of root certificates every push provider's client trusts besides the usual
    /// public ones (a self-hosted gateway with a private CA). Unset: the public ones only.
    pub push_ca_file: Option<PathBuf>,
    /// Bytes of upload bodies the node holds in memory at once, all uploads together; a request
    /// whose piece does not fit waits for room. At least `attachment_max_bytes`. Default
    /// 268435456 (256 MiB).
    pub upload_buffer_bytes: u64,
    /// Lifetime of an agent's session token. Default 12 hours.
    pub agent_session_ttl_secs: u64,
    /// Longest message, canned reply or first message, in characters. Default 4000.
    pub max_body_chars: usize,
    /// Hand waiting tickets to available agents automatically. Default false (agents claim).
    pub auto_assign: bool,
    /// Messages waiting for a group-commit batch before senders get `overloaded`. Default 10000.
    pub message_queue: usize,
    /// Most messages stored in one transaction. Default 256.
    pub message_batch: usize,
    /// Message batches in flight at once. Fewer, larger transactions cost the database less CPU per
    /// message; more overlap the commits' waits. SQLite writes one batch at a time, and the others
    /// wait for the disk to confirm theirs. Default 2.
    pub message_writers: usize,
    /// Milliseconds a message batch waits for a busy writer before it takes another of the
    /// `message_writers` (a full batch takes a free writer at once). Waiting lets the batch grow, so
    /// a steady load costs Postgres fewer, larger transactions; the bound keeps the wait short when
    /// a commit is slow. 0 starts every batch as soon as a writer is free. Default 2.
    pub message_spill_ms: u64,
    /// The most milliseconds a message batch waits for company after its first message before it
    /// takes even a free writer. It waits only while messages come fast enough to bring it 4 or more
    /// in that time but fewer than 8 while the last batch was being stored (judged by the last
    /// batches), and stops waiting once it holds 16: the database then gets fewer, larger
    /// transactions (less CPU per message), and each message waits up to this much longer for its
    /// acknowledgement. At a slower pace nothing waits, nor where batches grow that large anyway
    /// (near the database's limit, where waiting would only make each round longer). 0 starts a
    /// batch as soon as a writer is free. Default 2.
    pub message_linger_ms: u64,
    /// Largest frame the hub processes; a larger one (up to `max_frame_hard_bytes`) gets `too_large`.
    /// Default 65536.
    pub max_message_bytes: usize,
    /// Frames larger than this close the socket with 1009. Default 262144.
    pub max_frame_hard_bytes: usize,
    /// Sustained frames per second per socket; over it, `rate_limited`. Default 50.
    pub max_frames_per_sec: u32,
    /// Frames a socket may send in one burst above the sustained rate. Default 100.
    pub frame_burst: u32,
    /// Malformed frames per minute that close the socket with 4010. Default 20.
    pub max_bad_frames_per_min: u32,
    /// Deadline for the HTTP request (headers) of a new connection, including the upgrade. Default 10000 ms.
    pub upgrade_timeout_ms: u64,
    /// Deadline for a successful `auth` frame after the upgrade. Default 10000 ms.
    pub auth_timeout_ms: u64,
    /// Interval of server pings. Default 25000 ms.
    pub ping_interval_ms: u64,
    /// How long after a ping the socket may stay silent before it is closed with 4011. Default 20000 ms.
    pub pong_timeout_ms: u64,
    /// A socket write that takes longer than this drops the connection. Default 10000 ms.
    pub write_timeout_ms: u64,
    /// Read buffer per socket: small, since it is paid for every idle socket (19,500 idle sockets:
    /// 3.1 KiB each with 512, 3.35 with 768, about 3.6 with 1024); a frame larger than it only
    /// takes more reads, and a read of 768 bytes still holds several chat frames. Default 768.
    pub read_buffer_bytes: usize,
    /// Bytes tungstenite buffers before it writes. Only control frames (pings, the automatic pongs,
    /// close) go through it: the session frames data frames itself and writes them from a buffer
    /// that lives for one write (`gateway::session::frame`), because tungstenite's buffer keeps the
    /// capacity a burst grew it to for the life of the socket. Default 4096.
    pub write_buffer_bytes: usize,
    /// Hard cap of a socket's write buffer. Default 1048576.
    pub max_write_buffer_bytes: usize,
    /// Bytes of events queued for one socket before it is closed with 4008 (slow consumer). Default 262144.
    pub outbound_queue_bytes: usize,
    /// Simultaneous connections (HTTP and WebSocket) admitted; further ones wait. Default 20000.
    pub max_connections: usize,
    /// How long shutdown waits for sockets to close and requests to finish, and again for the
    /// writers to store what they accepted and the node's other tasks to end. Default 10000 ms.
    pub shutdown_grace_ms: u64,
    /// How long a node answers `503` on `/readyz` after SIGTERM while still serving everything,
    /// before it closes its sockets: the load balancer's health-check interval times its unhealthy
    /// threshold, so that it stops sending new connections first. Default 0 ms.
    pub shutdown_drain_ms: u64,
    /// Proxies whose `X-Forwarded-For` is believed, comma-separated IPs. Default none.
    pub trusted_proxies: String,
    /// Web origins (`https://console.example.com`, comma-separated) whose pages may open the
    /// WebSocket besides the hub's own (the scheme and `Host` of the upgrade request, `https` when a
    /// trusted proxy says so in `X-Forwarded-Proto`). Connections without an `Origin` header
    /// (native apps) are always allowed; any other origin gets `403` `forbidden`. Default none:
    /// only the console the hub serves itself.
    pub allowed_origins: String,
    /// Log format: `text` (default) or `json`.
    pub log_format: String,
    /// Threads that run the hub's sockets and work. 0 (the default) is one per CPU core. One
    /// thread hands no work between threads, and costs less CPU per message where the hub shares a
    /// small machine with its database, but the hub then uses one core at most.
    pub worker_threads: usize,
    // ---- Telemetry, settings and consent (domain::telemetry) ----
    /// Telemetry writes (device reports, view batches, connection records) waiting to be stored
    /// before apps get `overloaded`. Default 4096.
    pub telemetry_queue: usize,
    /// Most telemetry writes stored in one transaction. Default 256.
    pub telemetry_batch: usize,
    /// View events are deleted this long after they were received. Default 30 days.
    pub view_retention_secs: u64,
    /// Earlier device reports (the history) are deleted this long after they were made; each
    /// device's latest report stays. Default 90 days.
    pub device_history_retention_secs: u64,
    /// Connection records (IP, user agent, times) are deleted this long after the socket opened.
    /// Default 90 days.
    pub connection_retention_secs: u64,
    /// How long audit log entries are kept (an account's own go with it when it is deleted).
    /// Default 31536000 s (a year).
    pub audit_retention_secs: u64,
    /// How long tickets' history (their messages and changes) is kept, on Postgres, where it is
    /// stored by calendar month (UTC): a month goes whole once it ended this long ago, so events
    /// stay at least this long and at most a month longer. The tickets stay, with the history left
    /// (see the README's storage section). 0, the default, keeps it forever; otherwise at least
    /// 2592000 (30 days). SQLite keeps history in one table and refuses a value here.
    pub ticket_history_retention_secs: u64,
    /// How often the retention purge runs. Default 3600000 ms (hourly).
    pub telemetry_purge_interval_ms: u64,
    /// Largest settings document, in bytes of its JSON text. Default 8192.
    pub settings_max_bytes: usize,
    /// Analytics consent of users who never set it. Default true: the privacy policy announces the
    /// collection and lets users turn it off.
    pub consent_analytics_default: bool,
    /// Personalisation consent of users who never set it. Default true: settings are the user's own
    /// and serve only them.
    pub consent_personalisation_default: bool,
    // ---- Purchases and subscriptions (src/billing/) ----
    /// Key the group's billing system signs its purchase reports with (HMAC-SHA256, header
    /// `Anapars-Signature`); at least 32 characters. Unset: `POST /v1/billing/purchases` is off (`403`).
    pub billing_secret: Option<Secret>,
    /// How far a report's signature timestamp may be from the hub's clock, either way, before it
    /// gets `stale_signature`: the window in which a captured request could be replayed at all
    /// (and then only to no effect, see protocol/PROTOCOL.md). Default 300 s.
    pub billing_tolerance_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            sqlite_path: PathBuf::from("./data/hub.sqlite"),
            db_pool_size: 16,
            db_timeout_ms: 5_000,
            redis_url: None,
            redis_prefix: "anapars:".into(),
            secret: None,
            data_keys: None,
            data_keys_file: None,
            admin_token: None,
            sms: "log".into(),
            sms_timeout_ms: 5_000,
            sms_retries: 2,
            sms_budget_per_hour: 1_000,
            sms_language: "auto".into(),
            sms_template_sign_in_fa: None,
            sms_template_sign_in_en: None,
            sms_template_phone_change_fa: None,
            sms_template_phone_change_en: None,
            sms_origin: None,
            sms_app_hash: None,
            phone_countries: "IR".into(),
            phone_default_region: "IR".into(),
            test_phone_prefix: None,
            test_code: None,
            code_ttl_secs: 300,
            code_max_attempts: 5,
            code_resend_secs: 60,
            codes_per_number_10min: 3,
            codes_per_number_day: 10,
            codes_per_ip_hour: 20,
            lockout_after_failures: 10,
            lockout_base_secs: 900,
            session_ttl_secs: 30 * 24 * 3600,
            max_devices: 1,
            presence_grace_ms: 5_000,
            presence_node_ttl_ms: 10_000,
            cluster_sweep_ms: 1_000,
            session_recheck_secs: 30,
            media_dir: PathBuf::from("./data/media"),
            max_image_bytes: 5 << 20,
            attachments_dir: PathBuf::from("./data/attachments"),
            object_store_url: None,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            object_store_timeout_ms: 30_000,
            attachment_max_bytes: 10 << 20,
            attachments_per_message: 10,
            attachment_bytes_per_day: 100 << 20,
            uploads_in_progress: 4,
            upload_expiry_secs: 24 * 3600,
            attachment_max_pixels: 40_000_000,
            upload_buffer_bytes: 256 << 20,
            push_collapse_ms: 3_000,
            push_give_up_secs: 24 * 3600,
            sms_reminder_after_secs: 0,
            sms_reminder_period_secs: 24 * 3600,
            rating_expiry_secs: 7 * 24 * 3600,
            sms_reminders_per_hour: 100,
            push_timeout_ms: 10_000,
            vapid_subject: None,
            fcm_service_account_file: None,
            fcm_url: "https://fcm.googleapis.com".to_owned(),
            webpush_allow_http: false,
            apns_key_file: None,
            apns_key_id: None,
            apns_team_id: None,
            apns_topic: None,
            apns_url: "https://api.push.apple.com".into(),
            apns_sandbox_url: "https://api.sandbox.push.apple.com".into(),
            push_ca_file: None,
            max_image_side: 4096,
            agent_session_ttl_secs: 12 * 3600,
            max_body_chars: 4000,
            auto_assign: false,
            message_queue: 10_000,
            message_batch: 256,
            message_writers: 2,
            message_spill_ms: 2,
            message_linger_ms: 2,
            max_message_bytes: 64 * 1024,
            max_frame_hard_bytes: 256 * 1024,
            max_frames_per_sec: 50,
            frame_burst: 100,
            max_bad_frames_per_min: 20,
            upgrade_timeout_ms: 10_000,
            auth_timeout_ms: 10_000,
            ping_interval_ms: 25_000,
            pong_timeout_ms: 20_000,
            write_timeout_ms: 10_000,
            read_buffer_bytes: 768,
            write_buffer_bytes: 4096,
            max_write_buffer_bytes: 1 << 20,
            outbound_queue_bytes: 256 * 1024,
            max_connections: 20_000,
            shutdown_grace_ms: 10_000,
            shutdown_drain_ms: 0,
            trusted_proxies: String::new(),
            allowed_origins: String::new(),
            log_format: "text".into(),
            worker_threads: 0,
            telemetry_queue: 4096,
            telemetry_batch: 256,
            view_retention_secs: 30 * 24 * 3600,
            device_history_retention_secs: 90 * 24 * 3600,
            connection_retention_secs: 90 * 24 * 3600,
            audit_retention_secs: 365 * 24 * 3600,
            ticket_history_retention_secs: 0,
            telemetry_purge_interval_ms: 3_600_000,
            settings_max_bytes: 8192,
            consent_analytics_default: true,
            consent_personalisation_default: true,
            billing_secret: None,
            billing_tolerance_secs: 300,
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if given), then the environment.
    ///
    /// # Errors
    /// An unreadable file, an unknown key, a value of the wrong type, or a failed [`Config::validate`].
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        // Only HUB_ variables that name a setting are read, so unrelated HUB_* variables in the
        // environment do not trip `deny_unknown_fields` (which still catches typos in the file).
        let known = Self::keys();
        figment = figment
            .merge(Env::prefixed("HUB_").filter(move |k| known.iter().any(|f| k == f.as_str())))
            .merge(Env::raw().only(&["DATABASE_URL", "REDIS_URL"]));
        // figment reads `HUB_TEST_CODE=123456` as a number; these settings are strings whatever
        // they look like, so their variables are taken verbatim.
        for (key, var) in [
            ("test_code", "HUB_TEST_CODE"),
            ("test_phone_prefix", "HUB_TEST_PHONE_PREFIX"),
            ("secret", "HUB_SECRET"),
            ("data_keys", "HUB_DATA_KEYS"),
            ("admin_token", "HUB_ADMIN_TOKEN"),
            ("billing_secret", "HUB_BILLING_SECRET"),
            ("redis_prefix", "HUB_REDIS_PREFIX"),
            ("allowed_origins", "HUB_ALLOWED_ORIGINS"),
            ("sms_template_sign_in_fa", "HUB_SMS_TEMPLATE_SIGN_IN_FA"),
            ("sms_template_sign_in_en", "HUB_SMS_TEMPLATE_SIGN_IN_EN"),
            ("sms_template_phone_change_fa", "HUB_SMS_TEMPLATE_PHONE_CHANGE_FA"),
            ("sms_template_phone_change_en", "HUB_SMS_TEMPLATE_PHONE_CHANGE_EN"),
            ("sms_origin", "HUB_SMS_ORIGIN"),
            ("sms_app_hash", "HUB_SMS_APP_HASH"),
            ("object_store_url", "HUB_OBJECT_STORE_URL"),
            ("s3_endpoint", "HUB_S3_ENDPOINT"),
            ("s3_region", "HUB_S3_REGION"),
            ("s3_access_key_id", "HUB_S3_ACCESS_KEY_ID"),
            ("s3_secret_access_key", "HUB_S3_SECRET_ACCESS_KEY"),
            ("vapid_subject", "HUB_VAPID_SUBJECT"),
            ("apns_key_id", "HUB_APNS_KEY_ID"),
            ("apns_team_id", "HUB_APNS_TEAM_ID"),
            ("apns_topic", "HUB_APNS_TOPIC"),
        ] {
            if let Ok(value) = std::env::var(var) {
                figment = figment.merge(Serialized::default(key, value));
            }
        }
        let config: Config = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    /// `HUB_*` variables of the environment that name no setting, each with the variable of the
    /// closest setting when one is near enough to be a misspelling. The file rejects unknown keys;
    /// the environment is shared with other programs, so the hub warns at start instead.
    #[must_use]
    pub fn unknown_variables() -> Vec<(String, Option<String>)> {
        Self::unknown_among(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()))
    }

    /// Every setting's key, as the struct serialises.
    fn keys() -> Vec<String> {
        serde_json::to_value(Config::default())
            .ok()
            .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
            .unwrap_or_default()
    }

    fn unknown_among(names: impl Iterator<Item = String>) -> Vec<(String, Option<String>)> {
        let known: Vec<String> = Self::keys().iter().map(|k| format!("HUB_{}", k.to_uppercase())).collect();
        let mut unknown: Vec<(String, Option<String>)> = names
            .filter(|n| n.starts_with("HUB_") && !NOT_SETTINGS.contains(&n.as_str()) && !known.contains(n))
            .map(|n| {
                let closest = known
                    .iter()
                    .map(|k| (strsim::damerau_levenshtein(&n, k), k))
                    .min()
                    .filter(|(distance, k)| *distance <= 3 && *distance * 4 <= k.len() - 4)
                    .map(|(_, k)| k.clone());
                (n, closest)
            })
            .collect();
        unknown.sort();
        unknown
    }

    /// Checks every value that can be wrong in a way serde cannot see.
    ///
    /// # Errors
    /// A message naming the setting and what is wrong with it.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::{bail, ensure};
        crate::model::phone::PhonePolicy::new(&self.phone_default_region, &self.phone_countries)
            .map_err(|e| anyhow::anyhow!("phone_countries / phone_default_region: {e}"))?;
        crate::config::SenderSpec::parse(&self.sms).map_err(|e| anyhow::anyhow!("sms: {e}"))?;
        self.sms_texts().map_err(anyhow::Error::msg)?;
        if let Some(url) = &self.database_url {
            ensure!(
                url.0.starts_with("postgres://") || url.0.starts_with("postgresql://"),
                "database_url must be a postgres:// URL (leave it unset for the embedded SQLite database)"
            );
        }
        if let Some(url) = &self.redis_url {
            ensure!(
                url.0.split(',').map(str::trim).all(|u| u.starts_with("redis://") || u.starts_with("rediss://")),
                "redis_url must be a redis:// URL, or several separated by commas (nodes of one Redis Cluster)"
            );
        }
        match (&self.test_phone_prefix, &self.test_code) {
            (None, None) => {}
            (Some(prefix), Some(code)) => {
                ensure!(
                    prefix.starts_with('+') && prefix.len() >= 4 && prefix[1..].bytes().all(|b| b.is_ascii_digit()),
                    "test_phone_prefix must be `+` and at least 3 digits"
                );
                ensure!(code.0.len() == 6 && code.0.bytes().all(|b| b.is_ascii_digit()), "test_code must be 6 digits");
            }
            _ => bail!("test_phone_prefix and test_code go together"),
        }
        if self.ticket_history_retention_secs != 0 {
            ensure!(
                self.database_url.is_some(),
                "ticket_history_retention_secs needs Postgres (database_url): SQLite keeps tickets' history in one table"
            );
            ensure!(
                self.ticket_history_retention_secs >= MIN_TICKET_HISTORY_RETENTION_SECS,
                "ticket_history_retention_secs must be 0 (keep forever) or at least {MIN_TICKET_HISTORY_RETENTION_SECS} (30 days)"
            );
        }
        ensure!(self.code_max_attempts >= 1, "code_max_attempts must be at least 1");
        ensure!(self.code_ttl_secs >= 1, "code_ttl_secs must be at least 1");
        ensure!(self.session_ttl_secs >= 1, "session_ttl_secs must be at least 1");
        ensure!(self.max_message_bytes >= 1024, "max_message_bytes must be at least 1024");
        ensure!(self.agent_session_ttl_secs >= 1, "agent_session_ttl_secs must be at least 1");
        ensure!(self.max_devices >= 1, "max_devices must be at least 1");
        if let Some(token) = &self.admin_token {
            ensure!(token.0.len() >= 32, "admin_token must be at least 32 characters");
        }
        ensure!(self.presence_node_ttl_ms >= 300, "presence_node_ttl_ms must be at least 300");
        ensure!(self.cluster_sweep_ms >= 50, "cluster_sweep_ms must be at least 50");
        ensure!(self.session_recheck_secs >= 1, "session_recheck_secs must be at least 1");
        ensure!((64..=16_384).contains(&self.max_image_side), "max_image_side must be 64 to 16384");
        ensure!(
            (1..=self.max_message_bytes / 4).contains(&self.max_body_chars),
            "max_body_chars must be 1 to max_message_bytes / 4 (a character is up to 4 bytes)"
        );
        ensure!(self.worker_threads <= 1_024, "worker_threads must be at most 1024 (0: one per CPU core)");
        ensure!(
            self.message_queue >= 1
                && self.message_batch >= 1
                && (1..=64).contains(&self.message_writers)
                && self.message_spill_ms <= 1_000
                && self.message_linger_ms <= 1_000,
            "message_queue and message_batch must be at least 1, message_writers 1 to 64, message_spill_ms and \
             message_linger_ms at most 1000"
        );
        ensure!(
            self.max_frame_hard_bytes >= self.max_message_bytes,
            "max_frame_hard_bytes must be at least max_message_bytes"
        );
        ensure!(self.max_frames_per_sec >= 1, "max_frames_per_sec must be at least 1");
        ensure!(self.read_buffer_bytes >= 512, "read_buffer_bytes must be at least 512");
        ensure!(
            self.max_write_buffer_bytes > self.write_buffer_bytes + self.max_frame_hard_bytes,
            "max_write_buffer_bytes must exceed write_buffer_bytes + max_frame_hard_bytes"
        );
        ensure!(self.outbound_queue_bytes >= 4096, "outbound_queue_bytes must be at least 4096");
        ensure!(self.max_connections >= 1, "max_connections must be at least 1");
        ensure!(self.ping_interval_ms >= 1000, "ping_interval_ms must be at least 1000");
        self.trusted_proxy_ips().map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
        self.allowed_origin_list().map_err(|e| anyhow::anyhow!("allowed_origins: {e}"))?;
        ensure!(matches!(self.log_format.as_str(), "text" | "json"), "log_format must be `text` or `json`");
        ensure!(
            self.telemetry_queue >= 1 && self.telemetry_batch >= 1,
            "telemetry_queue and telemetry_batch must be at least 1"
        );
        ensure!(self.telemetry_purge_interval_ms >= 10, "telemetry_purge_interval_ms must be at least 10");
        ensure!(
            (2..=self.max_message_bytes / 2).contains(&self.settings_max_bytes),
            "settings_max_bytes must be 2 to max_message_bytes / 2"
        );
        if let Some(secret) = &self.billing_secret {
            ensure!(secret.0.len() >= 32, "billing_secret must be at least 32 characters");
        }
        ensure!((1..=3600).contains(&self.billing_tolerance_secs), "billing_tolerance_secs must be 1 to 3600");
        self.object_store_spec().map_err(|e| anyhow::anyhow!("object_store_url: {e}"))?;
        if let Some(endpoint) = &self.s3_endpoint {
            ensure!(
                endpoint.starts_with("http://") || endpoint.starts_with("https://"),
                "s3_endpoint must be an http:// or https:// URL"
            );
        }
        ensure!(
            self.s3_access_key_id.is_some() == self.s3_secret_access_key.is_some(),
            "s3_access_key_id and s3_secret_access_key go together"
        );
        ensure!(
            (100..=600_000).contains(&self.object_store_timeout_ms),
            "object_store_timeout_ms must be 100 to 600000"
        );
        ensure!(
            (1..=(1 << 30)).contains(&self.attachment_max_bytes),
            "attachment_max_bytes must be 1 to 1073741824 (1 GiB)"
        );
        ensure!((1..=100).contains(&self.attachments_per_message), "attachments_per_message must be 1 to 100");
        ensure!(
            self.attachment_bytes_per_day >= self.attachment_max_bytes,
            "attachment_bytes_per_day must be at least attachment_max_bytes"
        );
        ensure!((1..=1000).contains(&self.uploads_in_progress), "uploads_in_progress must be 1 to 1000");
        ensure!(self.upload_expiry_secs >= 60, "upload_expiry_secs must be at least 60");
        ensure!(
            (1..=1_000_000_000).contains(&self.attachment_max_pixels),
            "attachment_max_pixels must be 1 to 1000000000"
        );
        ensure!(
            self.upload_buffer_bytes >= self.attachment_max_bytes && self.upload_buffer_bytes <= u64::from(u32::MAX),
            "upload_buffer_bytes must be attachment_max_bytes to 4294967295"
        );
        ensure!(self.push_collapse_ms <= 600_000, "push_collapse_ms must be at most 600000");
        ensure!(self.push_give_up_secs >= 60, "push_give_up_secs must be at least 60");
        ensure!(self.sms_reminder_period_secs >= 60, "sms_reminder_period_secs must be at least 60");
        ensure!((100..=120_000).contains(&self.push_timeout_ms), "push_timeout_ms must be 100 to 120000");
        ensure!(
            self.fcm_url.starts_with("https://") || self.fcm_url.starts_with("http://"),
            "fcm_url must be an http:// or https:// URL"
        );
        if let Some(sub) = &self.vapid_subject {
            ensure!(
                sub.starts_with("mailto:") || sub.starts_with("https://"),
                "vapid_subject must be a mailto: or https:// URL"
            );
        }
        self.validate_apns()?;
        Ok(())
    }

    /// The `apns_*` settings: all four credentials or none, ids of 10 letters and digits, a
    /// bundle id for the topic, `https://` hosts.
    fn validate_apns(&self) -> anyhow::Result<()> {
        use anyhow::ensure;
        let set = [
            self.apns_key_file.is_some(),
            self.apns_key_id.is_some(),
            self.apns_team_id.is_some(),
            self.apns_topic.is_some(),
        ];
        ensure!(
            set.iter().all(|s| *s) || !set.iter().any(|s| *s),
            "apns_key_file, apns_key_id, apns_team_id and apns_topic go together"
        );
        let id = |s: &str| s.len() == 10 && s.bytes().all(|b| b.is_ascii_alphanumeric());
        ensure!(self.apns_key_id.as_deref().is_none_or(id), "apns_key_id must be 10 letters and digits");
        ensure!(self.apns_team_id.as_deref().is_none_or(id), "apns_team_id must be 10 letters and digits");
        let bundle_id =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        ensure!(
            self.apns_topic.as_deref().is_none_or(bundle_id),
            "apns_topic must be the app's bundle id (letters, digits, `.` and `-`)"
        );
        for (name, url) in [("apns_url", &self.apns_url), ("apns_sandbox_url", &self.apns_sandbox_url)] {
            let host = url.strip_prefix("https://").and_then(|rest| rest.split('/').next()).unwrap_or_default();
            ensure!(!host.is_empty() && !host.contains('@'), "{name} must be an https:// URL");
        }
        Ok(())
    }

    /// The SMS texts these settings describe: `sms_language`, the templates over the built-in
    /// ones, and the autofill lines.
    ///
    /// # Errors
    /// A message naming the setting and what is wrong with it: an unknown language, a template
    /// without `{code}` or with an unknown placeholder or a stray brace, a text over
    /// [`crate::model::sms::MAX_PARTS`] SMS parts, a malformed origin host or app hash.
    pub fn sms_texts(&self) -> Result<SmsTexts, String> {
        let choice = LanguageChoice::parse(&self.sms_language).map_err(|e| format!("sms_language: {e}"))?;
        let mut texts = SmsTexts::new(choice);
        for (name, setting, purpose, language) in [
            ("sms_template_sign_in_fa", &self.sms_template_sign_in_fa, SmsPurpose::SignIn, Language::Persian),
            ("sms_template_sign_in_en", &self.sms_template_sign_in_en, SmsPurpose::SignIn, Language::English),
            (
                "sms_template_phone_change_fa",
                &self.sms_template_phone_change_fa,
                SmsPurpose::PhoneChange,
                Language::Persian,
            ),
            (
                "sms_template_phone_change_en",
                &self.sms_template_phone_change_en,
                SmsPurpose::PhoneChange,
                Language::English,
            ),
        ] {
            if let Some(text) = setting {
                texts.set_template(purpose, language, text).map_err(|e| format!("{name}: {e}"))?;
            }
        }
        if let Some(hash) = &self.sms_app_hash {
            texts.set_app_hash(hash.trim()).map_err(|e| format!("sms_app_hash: {e}"))?;
        }
        if let Some(host) = &self.sms_origin {
            texts.set_origin(host.trim()).map_err(|e| format!("sms_origin: {e}"))?;
        }
        Ok(texts)
    }

    /// Where attachments are stored: the parsed `object_store_url`, or `attachments_dir`.
    ///
    /// # Errors
    /// A URL that is not `s3://BUCKET` or `s3://BUCKET/PREFIX` with a valid bucket name and prefix.
    pub fn object_store_spec(&self) -> Result<ObjectStoreSpec, String> {
        match &self.object_store_url {
            None => Ok(ObjectStoreSpec::Folder(self.attachments_dir.clone())),
            Some(url) => ObjectStoreSpec::parse_s3(url.trim()),
        }
    }

    /// The parsed `trusted_proxies`.
    ///
    /// # Errors
    /// An entry that is not an IP address.
    pub fn trusted_proxy_ips(&self) -> Result<Vec<IpAddr>, String> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| format!("`{s}` is not an IP address")))
            .collect()
    }

    /// The parsed `allowed_origins`.
    ///
    /// # Errors
    /// An entry that is not `http://` or `https://` and a host with an optional port.
    pub fn allowed_origin_list(&self) -> Result<Vec<Origin>, String> {
        self.allowed_origins.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Origin::parse).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_safe() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.max_message_bytes <= 64 * 1024);
        assert!(c.read_buffer_bytes <= 8192);
        assert!(c.test_phone_prefix.is_none(), "test numbers must be off by default");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Config { database_url: Some(Secret("postgres://u:pw@h/db".into())), ..Config::default() };
        assert!(!format!("{c:?}").contains("pw@"));
    }

    #[test]
    fn bad_values_are_refused_with_the_setting_named() {
        let c = Config { test_phone_prefix: Some("+98999".into()), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("test_code"));
        let c = Config { sms: "carrier-pigeon".into(), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("sms"));
        let c = Config { trusted_proxies: "10.0.0.1, nope".into(), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("trusted_proxies"));
        let c = Config { allowed_origins: "https://ok.example, https://bad.example/".into(), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("allowed_origins"));
        let c = Config { billing_secret: Some(Secret("too short".into())), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("billing_secret"));
        let c = Config { billing_tolerance_secs: 0, ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("billing_tolerance_secs"));
        let c = Config { sms_template_sign_in_fa: Some("کد: {کد}".into()), ..Config::default() };
        let message = c.validate().unwrap_err().to_string();
        assert!(message.starts_with("sms_template_sign_in_fa: unknown placeholder `{کد}`"), "{message}");
        let c = Config { sms_template_phone_change_en: Some("Your number changes".into()), ..Config::default() };
        assert_eq!(c.validate().unwrap_err().to_string(), "sms_template_phone_change_en: the template has no {code}");
        let c = Config { sms_language: "de".into(), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("sms_language"));
        let c = Config { sms_origin: Some("https://app.example.com".into()), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("sms_origin"));
        let c = Config { sms_app_hash: Some("0123456789".into()), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("sms_app_hash"));
        for url in ["https://bucket", "s3://", "s3://Bucket", "s3://b", "s3://bucket/../x", "s3://bucket//x"] {
            let c = Config { object_store_url: Some(url.into()), ..Config::default() };
            assert!(c.validate().unwrap_err().to_string().starts_with("object_store_url: "), "{url}");
        }
        let c = Config { s3_access_key_id: Some(Secret("AKIA".into())), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("s3_secret_access_key"));
        let c = Config { s3_endpoint: Some("minio:9000".into()), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("s3_endpoint"));
        let apns = Config {
            apns_key_file: Some("AuthKey_ABC123DEFG.p8".into()),
            apns_key_id: Some("ABC123DEFG".into()),
            apns_team_id: Some("DEF123GHIJ".into()),
            apns_topic: Some("ir.anapars.app".into()),
            ..Config::default()
        };
        apns.validate().unwrap();
        let c = Config { apns_topic: None, ..apns.clone() };
        assert!(c.validate().unwrap_err().to_string().contains("go together"));
        let c = Config { apns_key_id: Some("ABC123".into()), ..apns.clone() };
        assert!(c.validate().unwrap_err().to_string().starts_with("apns_key_id"));
        let c = Config { apns_team_id: Some("DEF123GHI!".into()), ..apns.clone() };
        assert!(c.validate().unwrap_err().to_string().starts_with("apns_team_id"));
        let c = Config { apns_topic: Some("ir anapars".into()), ..apns.clone() };
        assert!(c.validate().unwrap_err().to_string().starts_with("apns_topic"));
        let c = Config { apns_sandbox_url: "http://apns.example".into(), ..apns };
        assert!(c.validate().unwrap_err().to_string().starts_with("apns_sandbox_url"));
    }

    #[test]
    fn the_object_store_is_the_folder_unless_a_bucket_is_named() {
        let c = Config::default();
        assert_eq!(c.object_store_spec(), Ok(ObjectStoreSpec::Folder(PathBuf::from("./data/attachments"))));
        let spec = ObjectStoreSpec::parse_s3("s3://hub-files.prod/node-a/").unwrap();
        let prefix = crate::model::object::ObjectKey::parse("node-a").ok();
        assert_eq!(spec, ObjectStoreSpec::S3 { bucket: "hub-files.prod".into(), prefix });
        assert_eq!(
            ObjectStoreSpec::parse_s3("s3://abc"),
            Ok(ObjectStoreSpec::S3 { bucket: "abc".into(), prefix: None })
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's own signature
    fn env_layers_over_file_and_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("hub.toml", "listen = \"127.0.0.1:9000\"\nsms_budget_per_hour = 5\n")?;
            jail.set_env("HUB_SMS_BUDGET_PER_HOUR", "7");
            jail.set_env("DATABASE_URL", "postgres://localhost/x");
            jail.set_env("HUB_TEST_CODE", "123456");
            jail.set_env("HUB_TEST_PHONE_PREFIX", "+9891200");
            jail.set_env("HUB_ALLOWED_ORIGINS", "https://console.example, http://10.0.0.5:8080");
            jail.set_env("HUB_BILLING_SECRET", "12345678901234567890123456789012");
            jail.set_env("HUB_SMS_TEMPLATE_SIGN_IN_EN", "{code} is your code");
            jail.set_env("HUB_SMS_APP_HASH", "12345678901");
            jail.set_env("HUB_S3_ACCESS_KEY_ID", "12345");
            jail.set_env("HUB_S3_SECRET_ACCESS_KEY", "67890");
            let c = Config::load(Some(Path::new("hub.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 9000);
            assert_eq!(c.sms_budget_per_hour, 7);
            assert!(c.database_url.is_some());
            assert_eq!(c.test_code.as_ref().map(|s| s.0.as_str()), Some("123456"), "digits stay a string");
            assert_eq!(c.test_phone_prefix.as_deref(), Some("+9891200"));
            assert_eq!(c.allowed_origin_list().map(|l| l.len()), Ok(2), "a comma-separated list");
            let billing = c.billing_secret.as_ref().map(|s| s.0.as_str());
            assert_eq!(billing, Some("12345678901234567890123456789012"), "a secret of digits stays a string");
            assert_eq!(c.sms_template_sign_in_en.as_deref(), Some("{code} is your code"), "braces stay a string");
            assert_eq!(c.sms_app_hash.as_deref(), Some("12345678901"), "a hash of digits stays a string");
            assert_eq!(
                c.s3_access_key_id.as_ref().map(|s| s.0.as_str()),
                Some("12345"),
                "a key of digits stays a string"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_variables_are_named_with_the_setting_they_misspell() {
        let names =
            ["HUB_LISTN", "HUB_LISTEN", "HUB_CONFIG", "HUB_SHUTDOWN_GRACE", "HUB_ZZZ", "PATH", "HUB_DATABASE_URL"];
        let unknown = Config::unknown_among(names.iter().map(|n| (*n).to_owned()));
        assert_eq!(
            unknown,
            vec![
                ("HUB_LISTN".to_owned(), Some("HUB_LISTEN".to_owned())),
                ("HUB_SHUTDOWN_GRACE".to_owned(), Some("HUB_SHUTDOWN_GRACE_MS".to_owned())),
                ("HUB_ZZZ".to_owned(), None),
            ]
        );
    }
}

/// Where attachments are stored (the parsed `object_store_url`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectStoreSpec {
    /// A local folder (`attachments_dir`).
    Folder(PathBuf),
    /// An S3-compatible bucket, and the key prefix the hub's objects go under.
    S3 {
        /// The bucket's name.
        bucket: String,
        /// Key prefix inside the bucket, without slashes at either end.
        prefix: Option<crate::model::object::ObjectKey>,
    },
}

impl ObjectStoreSpec {
    /// Parses `s3://BUCKET` or `s3://BUCKET/PREFIX`.
    ///
    /// # Errors
    /// Another scheme, a bucket name outside S3's rules (3 to 63 lower-case letters, digits, `-`
    /// and `.`), or a prefix that is not a valid object key.
    pub fn parse_s3(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| format!("`{url}` is not s3://BUCKET[/PREFIX]"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            return Err(format!("`{bucket}` is not a bucket name (3 to 63 of a-z, 0-9, `-`, `.`)"));
        }
        let prefix = prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() {
            None
        } else {
            Some(crate::model::object::ObjectKey::parse(prefix).map_err(|e| format!("the prefix: {e}"))?)
        };
        Ok(Self::S3 { bucket: bucket.to_owned(), prefix })
    }
}

/// The parsed `sms` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SenderSpec {
    /// `log`: write the text to the hub's log (development only).
    Log,
    /// `file:PATH`: append one JSON line per SMS to PATH.
    File(PathBuf),
    /// `http:URL` or `https:URL` (the scheme is kept): POST to the SMS gateway.
    Http(String),
}

impl SenderSpec {
    /// Parses `log`, `file:PATH`, `http://...` or `http:http://...`.
    ///
    /// # Errors
    /// Any other form.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        if spec == "log" {
            return Ok(Self::Log);
        }
        if let Some(path) = spec.strip_prefix("file:") {
            if path.is_empty() {
                return Err("file: needs a path".into());
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        let url = spec.strip_prefix("http:").filter(|u| u.starts_with("http")).unwrap_or(spec);
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(Self::Http(url.to_owned()));
        }
        Err(format!("`{spec}` is not `log`, `file:PATH` or `http:URL`"))
    }
}
