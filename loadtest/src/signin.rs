//! Who the simulated clients are. Users sign in over HTTP with the hub's test numbers
//! (`HUB_TEST_PHONE_PREFIX` + `HUB_TEST_CODE`: no SMS is ever sent). Agents come from an agents
//! file (`email password` per line) or are created by running `anapars-hub agent add` against the
//! hub's database, and sign in with `POST /v1/agent/login`.

use crate::hub::{HubArgs, HubHandle};
use crate::stats::Live;
use crate::ClientArgs;
use anyhow::{bail, Context};
use futures_util::{stream, StreamExt};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Total length of an Iranian mobile number in E.164 (`+98` and 10 digits).
const E164_LEN: usize = 13;

/// The `index`-th test number under `prefix`: the prefix followed by the index, zero-padded to a
/// full number. `None` when the index does not fit.
pub fn phone_number(prefix: &str, index: usize) -> Option<String> {
    let digits = E164_LEN.checked_sub(prefix.len())?;
    let n = index.to_string();
    if n.len() > digits {
        return None;
    }
    Some(format!("{prefix}{index:0digits$}"))
}

/// The answer of a failed HTTP call, as an error key: `http:<status>:<code>`.
pub fn http_error(status: u16, body: &Value) -> String {
    let code = body["error"]["code"].as_str().unwrap_or("none");
    format!("http:{status}:{code}")
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> Result<(u16, Value), String> {
    let response =
        http.post(url).json(&body).timeout(Duration::from_secs(30)).send().await.map_err(|e| classify(&e))?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// A failed HTTP call that got no answer, as an error key: `http:timeout`, `http:connect`, `http:other`.
pub fn classify(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "http:timeout".into()
    } else if e.is_connect() {
        "http:connect".into()
    } else {
        "http:other".into()
    }
}

/// Signs test number `phone` in on device `device`; returns the session token.
///
/// # Errors
/// The error key (`http:<status>:<code>`, `http:timeout`, ...).
pub async fn sign_in_user(
    http: &reqwest::Client,
    base: &str,
    phone: &str,
    code: &str,
    device: &str,
) -> Result<String, String> {
    let (status, body) = post(http, &format!("{base}/v1/auth/code"), json!({"phone": phone})).await?;
    if status != 202 {
        return Err(http_error(status, &body));
    }
    let verify = json!({"phone": phone, "code": code, "device": {"id": device, "name": "load test"}});
    let (status, body) = post(http, &format!("{base}/v1/auth/verify"), verify).await?;
    match body["token"].as_str() {
        Some(token) if status == 200 => Ok(token.to_owned()),
        _ => Err(http_error(status, &body)),
    }
}

/// Signs in `count` test numbers from `--phone-offset` on, `--signin-concurrency` at a time.
/// Failures are counted in `live` and leave `None` in their place.
///
/// # Errors
/// The numbers do not fit under the prefix.
pub async fn sign_in_users(
    http: &reqwest::Client,
    hub: &HubHandle,
    hub_args: &HubArgs,
    client: &ClientArgs,
    count: usize,
    live: &Live,
) -> anyhow::Result<Vec<Option<String>>> {
    let (prefix, code) = (hub_args.phone_prefix.as_str(), hub_args.test_code.as_str());
    let (offset, concurrency) = (client.phone_offset, client.signin_concurrency);
    if phone_number(prefix, offset + count.saturating_sub(1)).is_none() {
        bail!("{count} numbers from {offset} do not fit under --phone-prefix {prefix}: use a shorter prefix");
    }
    let base = hub.base.as_str();
    let tokens = stream::iter(0..count)
        .map(|i| async move {
            let phone = phone_number(prefix, offset + i).unwrap_or_default();
            (i, sign_in_user(http, base, &phone, code, &format!("load-{}", offset + i)).await)
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut out = vec![None; count];
    for (i, result) in tokens {
        match result {
            Ok(token) => out[i] = Some(token),
            Err(key) => live.error(format!("signin:{key}")),
        }
    }
    Ok(out)
}

/// An agent's sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentCredential {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Parses an agents file: `email password` per line; blank lines and `#` comments are skipped.
///
/// # Errors
/// A line without both fields.
pub fn parse_agents_file(text: &str) -> anyhow::Result<Vec<AgentCredential>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some(email), Some(password)) => {
                out.push(AgentCredential { email: email.to_owned(), password: password.to_owned() })
            }
            _ => bail!("agents file line {}: expected `email password`", n + 1),
        }
    }
    Ok(out)
}

/// The password that `anapars-hub agent add` printed.
pub fn parse_agent_add_output(stdout: &str) -> Option<String> {
    let line = stdout.lines().find(|l| l.starts_with("password"))?;
    let password = line.rsplit(": ").next()?.trim();
    (!password.is_empty()).then(|| password.to_owned())
}

/// Creates `count` agents with `hub_bin agent add`, pointed at the hub's database by `db_env`.
///
/// # Errors
/// The command fails or prints no password.
pub async fn create_agents(
    hub_bin: &Path,
    db_env: &[(String, String)],
    tag: &str,
    count: usize,
) -> anyhow::Result<Vec<AgentCredential>> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let email = format!("load-{tag}-{i}@anapars.test");
        let bin = hub_bin.to_path_buf();
        let env = db_env.to_vec();
        let email2 = email.clone();
        let output = tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(&bin);
            cmd.args(["agent", "add", "--email", &email2, "--name", &format!("Load agent {i}")]);
            cmd.env_remove("DATABASE_URL").envs(env).env("RUST_LOG", "warn");
            cmd.output()
        })
        .await?
        .with_context(|| format!("running {} agent add", hub_bin.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!("{} agent add failed: {}", hub_bin.display(), String::from_utf8_lossy(&output.stderr).trim());
        }
        let password = parse_agent_add_output(&stdout).context("`agent add` printed no password")?;
        out.push(AgentCredential { email, password });
    }
    Ok(out)
}

/// Reads `count` agents from `file` if it exists; otherwise creates them (and writes `file`, when
/// given, so a later run can reuse them).
///
/// # Errors
/// The file has too few agents, or creating them fails.
pub async fn agents(
    file: Option<&PathBuf>,
    hub_bin: &Path,
    hub: &HubHandle,
    count: usize,
) -> anyhow::Result<Vec<AgentCredential>> {
    if let Some(path) = file.filter(|p| p.exists()) {
        let all = parse_agents_file(&std::fs::read_to_string(path)?)?;
        if all.len() < count {
            bail!("{} has {} agents, {count} needed", path.display(), all.len());
        }
        return Ok(all.into_iter().take(count).collect());
    }
    if hub.is_peer() {
        return Ok(peer_agents(count));
    }
    if !hub_bin.exists() {
        bail!("{} not found: pass --hub-bin, or --agents-file with existing agents", hub_bin.display());
    }
    let tag = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    let created = create_agents(hub_bin, &hub.db_env, &tag.to_string(), count).await?;
    if let Some(path) = file {
        let text: String = created.iter().map(|a| format!("{} {}\n", a.email, a.password)).collect();
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(created)
}

/// Agents for a peer of loadtest/peers/: made-up credentials, which a peer accepts unconditionally.
pub fn peer_agents(count: usize) -> Vec<AgentCredential> {
    (0..count)
        .map(|i| AgentCredential { email: format!("peer-agent-{i}@anapars.test"), password: "any".into() })
        .collect()
}

/// Signs an agent in; returns the session token.
///
/// # Errors
/// The error key, as for users.
pub async fn agent_login(http: &reqwest::Client, base: &str, agent: &AgentCredential) -> Result<String, String> {
    let body = json!({"email": agent.email, "password": agent.password});
    let (status, body) = post(http, &format!("{base}/v1/agent/login"), body).await?;
    match body["token"].as_str() {
        Some(token) if status == 200 => Ok(token.to_owned()),
        _ => Err(http_error(status, &body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_numbers_fill_the_prefix_to_a_full_number() {
        assert_eq!(phone_number("+9891200", 0).as_deref(), Some("+989120000000"));
        assert_eq!(phone_number("+9891200", 19_499).as_deref(), Some("+989120019499"));
        assert_eq!(phone_number("+9891200", 99_999).as_deref(), Some("+989120099999"));
        assert_eq!(phone_number("+9891200", 100_000), None);
        assert_eq!(phone_number("+98912345678901", 0), None);
    }

    #[test]
    fn agent_credentials_are_read_from_a_file_and_from_agent_add() {
        let file = "# load agents\nsara@x.test pw1\n\n reza@x.test  pw2 \n";
        let agents = parse_agents_file(file).unwrap();
        assert_eq!(agents.len(), 2);
        assert_eq!(agents[1], AgentCredential { email: "reza@x.test".into(), password: "pw2".into() });
        assert!(parse_agents_file("lonely@x.test\n").is_err());
        let out = "agent added: Load agent 0 <a@x.test> id 0194...\npassword (shown once, store it now): Zx9-abc\n";
        assert_eq!(parse_agent_add_output(out).as_deref(), Some("Zx9-abc"));
        assert_eq!(parse_agent_add_output("agent added\n"), None);
    }

    #[test]
    fn a_peer_gets_made_up_agents() {
        let agents = peer_agents(3);
        assert_eq!(agents.len(), 3);
        assert_ne!(agents[0].email, agents[2].email);
    }

    #[test]
    fn http_errors_become_keys() {
        let body = json!({"error": {"code": "rate_limited", "message": "m"}});
        assert_eq!(http_error(429, &body), "http:429:rate_limited");
        assert_eq!(http_error(502, &Value::Null), "http:502:none");
    }
}
