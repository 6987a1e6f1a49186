//! Push notifications to iPhones, end to end against a stand-in for APNs started by the test: an
//! HTTP/2-only server over TLS (ALPN `h2`) with a certificate of a CA the test makes, which the hub
//! trusts through `push_ca_file`, one listener as the production host and one as the sandbox
//! host. The hub signs with a `.p8` key the test makes in the layout Apple issues; the stand-in
//! checks the provider token with the key's public half. On every hub set-up (SQLite in-process;
//! Postgres with Redis when the TEST_ URLs are set).

mod common;

use anapars_hub::Config;
use axum::http::{HeaderMap, Method, Version};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::hub::hubs;
use common::push::{arrivals, quick, registered, reply, scene, user_of};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ring::signature;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "DEF123GHIJ";
const TOPIC: &str = "ir.anapars.support";

/// One request the stand-in took.
#[derive(Clone, Debug)]
struct Request {
    at: Instant,
    /// `production` or `sandbox`: which listener took it.
    host: &'static str,
    version: Version,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn bearer(&self) -> String {
        let value = self.headers["authorization"].to_str().unwrap();
        value.strip_prefix("bearer ").expect("authorization: bearer <token>").to_owned()
    }
}

/// An answer: status, `Retry-After`, and the `reason` of the JSON body.
type Answer = (u16, Option<&'static str>, Option<&'static str>);

/// The stand-in's record, per device token, and what it answers each token (200 once its
/// script is done).
#[derive(Clone, Default)]
struct StandIn {
    requests: Arc<Mutex<Vec<Request>>>,
    scripts: Arc<Mutex<HashMap<String, VecDeque<Answer>>>>,
    production: String,
    sandbox: String,
}

impl StandIn {
    /// Both hosts on 127.0.0.1, serving the certificate of `tls`.
    async fn start(tls: &Tls) -> Self {
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(tls.chain.clone(), tls.key.clone_key())
                .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let production = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sandbox = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stand_in = Self {
            production: format!("https://127.0.0.1:{}", production.local_addr().unwrap().port()),
            sandbox: format!("https://127.0.0.1:{}", sandbox.local_addr().unwrap().port()),
            ..Self::default()
        };
        tokio::spawn(stand_in.clone().serve(production, acceptor.clone(), "production"));
        tokio::spawn(stand_in.clone().serve(sandbox, acceptor, "sandbox"));
        stand_in
    }

    /// Takes connections on `listener`: TLS, then HTTP/2 only (an HTTP/1.1 client gets nothing).
    async fn serve(self, listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor, host: &'static str) {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let (acceptor, stand_in) = (acceptor.clone(), self.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |request| stand_in.clone().take(request, host));
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    }

    async fn take(
        self,
        request: hyper::Request<hyper::body::Incoming>,
        host: &'static str,
    ) -> Result<hyper::Response<axum::body::Body>, Infallible> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(axum::body::Body::new(body), 1 << 20).await.unwrap_or_default();
        let path = parts.uri.path().to_owned();
        let token = path.rsplit('/').next().unwrap_or_default().to_owned();
        self.requests.lock().unwrap().push(Request {
            at: Instant::now(),
            host,
            version: parts.version,
            method: parts.method,
            path,
            headers: parts.headers,
            body: body.to_vec(),
        });
        let answer = self.scripts.lock().unwrap().get_mut(&token).and_then(VecDeque::pop_front);
        let (status, retry_after, reason) = answer.unwrap_or((200, None, None));
        let mut response =
            hyper::Response::builder().status(status).header("apns-id", uuid::Uuid::new_v4().to_string());
        if let Some(after) = retry_after {
            response = response.header("retry-after", after);
        }
        let body =
            reason.map_or_else(axum::body::Body::empty, |r| axum::body::Body::from(json!({"reason": r}).to_string()));
        Ok(response.body(body).unwrap())
    }

    /// A new device token (64 hex digits) whose requests get `script` first.
    fn device(&self, script: &[Answer]) -> String {
        let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        self.scripts.lock().unwrap().insert(token.clone(), script.iter().copied().collect());
        token
    }

    fn received(&self, token: &str) -> Vec<Request> {
        self.requests.lock().unwrap().iter().filter(|r| r.path.ends_with(token)).cloned().collect()
    }

    /// Waits until `token` got `n` requests (then a little longer, to catch more).
    async fn wait_for(&self, token: &str, n: usize) -> Vec<Request> {
        arrivals(n, || self.received(token)).await
    }
}

/// The test's files: a CA (the hub's `push_ca_file`), the stand-in's certificate from it, and the
/// `.p8` key with its public half.
struct Tls {
    dir: tempfile::TempDir,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    apns_public: Vec<u8>,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Tls {
    fn make() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            d,
            &[
                &["req", "-x509"],
                &p256[..],
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Stand-in CA"],
            ]
            .concat(),
        );
        openssl(
            d,
            &[&["req"], &p256[..], &["-keyout", "host.key", "-out", "host.csr", "-subj", "/CN=127.0.0.1"]].concat(),
        );
        std::fs::write(
            d.join("host.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "host.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "host.ext",
                "-out",
                "host.pem",
            ],
        );
        let chain = CertificateDer::pem_file_iter(d.join("host.pem")).unwrap().map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_file(d.join("host.key")).unwrap();
        openssl(d, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "openssl.p8"]);
        let apns_public = apple_p8(&d.join("openssl.p8"), &d.join("AuthKey.p8"));
        Self { dir, chain, key, apns_public }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Rewrites OpenSSL's PKCS#8 P-256 key in the layout of the `.p8` files Apple issues (the curve
/// repeated inside the EC key, RFC 5915 `parameters`, as OpenSSL leaves out), and returns the
/// public key (65 bytes).
fn apple_p8(openssl: &Path, apple: &Path) -> Vec<u8> {
    let pem = std::fs::read_to_string(openssl).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(b64).unwrap();
    // SEQUENCE { 0, AlgorithmIdentifier(ecPublicKey, P-256), OCTET STRING { SEQUENCE { 1,
    // OCTET STRING private, [1] BIT STRING public } } }
    let prefix: &[u8] = &[
        0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
        0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02, 0x01, 0x01, 0x04, 0x20,
    ];
    assert_eq!(&der[..prefix.len()], prefix, "OpenSSL's PKCS#8 layout");
    let private = &der[prefix.len()..prefix.len() + 32];
    let public = &der[der.len() - 65..];
    let p256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let mut ec_key = vec![0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
    ec_key.extend_from_slice(private);
    ec_key.extend_from_slice(&[0xa0, 0x0a]);
    ec_key.extend_from_slice(p256);
    ec_key.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00]);
    ec_key.extend_from_slice(public);
    let mut out =
        vec![0x30, 0x81, 0x93, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    out.extend_from_slice(p256);
    out.extend_from_slice(&[0x04, 0x79]);
    out.extend_from_slice(&ec_key);
    let body = STANDARD.encode(&out);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    std::fs::write(apple, format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----", lines.join("\n")))
        .unwrap();
    public.to_vec()
}

fn config(tls: &Tls, stand_in: &StandIn) -> impl Fn(&mut Config) {
    let (key, ca) = (tls.path("AuthKey.p8"), tls.path("ca.pem"));
    let (production, sandbox) = (stand_in.production.clone(), stand_in.sandbox.clone());
    move |c| {
        quick(c);
        c.apns_key_file = Some(key.clone());
        c.apns_key_id = Some(KEY_ID.into());
        c.apns_team_id = Some(TEAM_ID.into());
        c.apns_topic = Some(TOPIC.into());
        c.apns_url = production.clone();
        c.apns_sandbox_url = sandbox.clone();
        c.push_ca_file = Some(ca.clone());
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The provider token: an ES256 JWT of the team, naming the key, signed by the `.p8` key.
fn check_provider_token(jwt: &str, public: &[u8]) {
    let (signed, sig) = jwt.rsplit_once('.').expect("header.claims.signature");
    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public)
        .verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
        .expect("the provider token verifies with the .p8 key's public half");
    let part = |i: usize| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signed.split('.').nth(i).unwrap()).unwrap()).unwrap()
    };
    assert_eq!(part(0), json!({"alg": "ES256", "kid": KEY_ID}));
    let claims = part(1);
    assert_eq!(claims["iss"], TEAM_ID);
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat.abs_diff(unix_now()) < 120, "iat {iat}");
}

fn register(token: &str, environment: Option<&str>) -> Value {
    let mut body = json!({"provider": "apns", "token": token});
    if let Some(environment) = environment {
        body["environment"] = json!(environment);
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_iphone_gets_the_fixed_line_over_http2_with_the_teams_token() {
    let tls = Tls::make();
    let stand_in = StandIn::start(&tls).await;
    for hub in hubs(config(&tls, &stand_in)).await {
        let label = hub.label();
        let mut s = scene(&hub).await;
        let device = stand_in.device(&[]);
        let (status, body) = hub.http_put_json("/v1/push", &s.user_token, &register(&device, None)).await;
        assert_eq!(status, 200, "{label} {body}");
        assert_eq!(body["registration"]["provider"], "apns");

        let secret = "شماره کارت ۶۰۳۷ ۹۹۷۵ و مبلغ ۲۵۰٬۰۰۰ تومان";
        reply(&mut s.agent, &s.ticket, secret, "a-1").await;
        reply(&mut s.agent, &s.ticket, "لطفاً رسید را بفرستید", "a-2").await;
        let got = stand_in.wait_for(&device, 1).await;
        assert_eq!(got.len(), 1, "{label} a burst within the collapse window is one notification");
        let r = &got[0];
        assert_eq!((r.version, r.host, &r.method), (Version::HTTP_2, "production", &Method::POST), "{label}");
        assert_eq!(r.path, format!("/3/device/{device}"));
        let h = &r.headers;
        assert_eq!(h["apns-topic"], TOPIC);
        assert_eq!(h["apns-push-type"], "alert");
        assert_eq!(h["apns-priority"], "10");
        let ticket_hex = uuid::Uuid::parse_str(&s.ticket).unwrap().simple().to_string();
        assert_eq!(h["apns-collapse-id"].to_str().unwrap(), ticket_hex);
        let expiration: u64 = h["apns-expiration"].to_str().unwrap().parse().unwrap();
        assert!(expiration.abs_diff(unix_now() + 86_400) < 120, "{label} expires in a day: {expiration}");
        check_provider_token(&r.bearer(), &tls.apns_public);
        let body = r.json();
        assert_eq!(
            body,
            json!({
                "aps": {
                    "alert": {"title": "پشتیبانی آناپارس", "body": "پاسخ تازه از پشتیبانی"},
                    "badge": 1,
                    "sound": "default",
                    "thread-id": s.ticket,
                },
                "ticket_id": s.ticket,
                "kind": "message",
            }),
            "{label}"
        );
        for secret_part in [secret, "۶۰۳۷", "Sara", &s.phone, &s.phone[3..]] {
            assert!(!r.body.windows(secret_part.len()).any(|w| w == secret_part.as_bytes()), "{label} {secret_part}");
        }

        // The next notification carries the same provider token: one per process, not per send.
        reply(&mut s.agent, &s.ticket, "هنوز هستید؟", "a-3").await;
        let got = stand_in.wait_for(&device, 2).await;
        assert_eq!(got.len(), 2, "{label}");
        assert_eq!(got[1].bearer(), got[0].bearer(), "{label} the provider token is reused");

        // A development build's token goes to the sandbox host.
        let sandbox_device = stand_in.device(&[]);
        let (status, _) =
            hub.http_put_json("/v1/push", &s.user_token, &register(&sandbox_device, Some("sandbox"))).await;
        assert_eq!(status, 200);
        reply(&mut s.agent, &s.ticket, "و حالا؟", "a-4").await;
        let got = stand_in.wait_for(&sandbox_device, 1).await;
        assert_eq!((got.len(), got[0].host, got[0].version), (1, "sandbox", Version::HTTP_2), "{label}");
        assert_eq!(stand_in.received(&device).len(), 2, "{label} the replaced registration got nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apns_answers_retry_renew_the_token_or_end_the_registration() {
    let tls = Tls::make();
    let stand_in = StandIn::start(&tls).await;
    for hub in hubs(config(&tls, &stand_in)).await {
        let label = hub.label();

        // 503 with Retry-After: 1, then taken: the retry waits the second.
        let mut s = scene(&hub).await;
        let device = stand_in.device(&[(503, Some("1"), Some("ServiceUnavailable"))]);
        assert_eq!(hub.http_put_json("/v1/push", &s.user_token, &register(&device, None)).await.0, 200);
        reply(&mut s.agent, &s.ticket, "x", "a-1").await;
        let got = stand_in.wait_for(&device, 2).await;
        assert_eq!(got.len(), 2, "{label} the refusal and the delivery, nothing more");
        let gap = got[1].at - got[0].at;
        assert!(gap >= Duration::from_secs(1), "{label} retried after {gap:?}, before Retry-After");
        assert!(gap < Duration::from_secs(2), "{label} retried after {gap:?}: the hub's own backoff, not Retry-After");

        // 403 ExpiredProviderToken: tried again with a new provider token, which is then shared.
        let mut s = scene(&hub).await;
        let device = stand_in.device(&[(403, None, Some("ExpiredProviderToken"))]);
        assert_eq!(hub.http_put_json("/v1/push", &s.user_token, &register(&device, None)).await.0, 200);
        reply(&mut s.agent, &s.ticket, "x", "a-1").await;
        let got = stand_in.wait_for(&device, 2).await;
        assert_eq!(got.len(), 2, "{label}");
        assert_ne!(got[1].bearer(), got[0].bearer(), "{label} the refused token was replaced");
        check_provider_token(&got[1].bearer(), &tls.apns_public);
        reply(&mut s.agent, &s.ticket, "y", "a-2").await;
        let got = stand_in.wait_for(&device, 3).await;
        assert_eq!(got[2].bearer(), got[1].bearer(), "{label} the new token is kept");

        // 410 Unregistered: the registration is removed, and nothing more is sent to it.
        let mut s = scene(&hub).await;
        let device = stand_in.device(&[(410, None, Some("Unregistered"))]);
        assert_eq!(hub.http_put_json("/v1/push", &s.user_token, &register(&device, None)).await.0, 200);
        let user = user_of(&hub, &s.user_token).await;
        reply(&mut s.agent, &s.ticket, "x", "a-1").await;
        stand_in.wait_for(&device, 1).await;
        assert!(!registered(&hub, user).await, "{label} a gone device stays registered");
        reply(&mut s.agent, &s.ticket, "y", "a-2").await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(stand_in.received(&device).len(), 1, "{label} pushed to a gone device again");
    }
}

#[tokio::test]
async fn a_wrong_key_or_ca_file_stops_the_hub_naming_the_setting() {
    let tls = Tls::make();
    let stand_in = StandIn::start(&tls).await;
    std::fs::write(tls.path("not-a-key.p8"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    // The setting, and the file it names: not a key, no file, a PEM block that is no certificate.
    for (setting, file) in
        [("apns_key_file", "not-a-key.p8"), ("apns_key_file", "missing.p8"), ("push_ca_file", "host.csr")]
    {
        let db = common::TestDatabase::sqlite();
        let mut c = Config { listen: "127.0.0.1:0".parse().unwrap(), ..db.config.clone() };
        c.media_dir = tls.path("media");
        c.attachments_dir = tls.path("attachments");
        config(&tls, &stand_in)(&mut c);
        match setting {
            "push_ca_file" => c.push_ca_file = Some(tls.path(file)),
            _ => c.apns_key_file = Some(tls.path(file)),
        }
        let Err(e) = anapars_hub::server::start(c).await else { panic!("the hub started with a wrong {setting}") };
        assert!(format!("{e:#}").starts_with(setting), "{setting}: {e:#}");
    }
}
