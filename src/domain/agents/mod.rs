//! Support agents: staff accounts created by an operator, signing in with email and password
//! (argon2id) to a session like a user's (its token is `agt_` + 256 random bits), with status,
//! capacity and canned replies. An agent never sees a user's mobile number.

use crate::domain::sessions::{Opened, SessionDesk};
use crate::error::{Error, Result};
use crate::model::account::{Holder, Session};
use crate::model::agent::{Agent, AgentChange, AgentStatus, CannedReply, NewAgent};
use crate::model::audit::{ActorKind, AuditAction, AuditEntry};
use crate::model::ids::{AgentId, CannedReplyId, Principal};
use crate::model::time::now_ms;
use crate::ports::quota::{self, Quotas};
use crate::ports::store::agents::Agents;
use crate::ports::store::audit::Audit;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Length of generated passwords (alphanumeric: about 119 bits).
const PASSWORD_LEN: usize = 20;
/// Sign-in attempts per email per 15 minutes, and per client IP per hour.
const LOGINS_PER_EMAIL: u64 = 10;
const LOGINS_PER_IP: u64 = 60;
/// Longest canned-reply title.
const MAX_TITLE_CHARS: usize = 100;

/// Agent accounts and sessions.
pub struct AgentDesk {
    store: Arc<dyn Agents>,
    audit: Arc<dyn Audit>,
    sessions: Arc<SessionDesk>,
    quotas: Arc<dyn Quotas>,
    max_body_chars: usize,
    /// A real hash of a random password: unknown emails are verified against it, so a login takes
    /// the same time whether or not the email exists.
    decoy_hash: String,
}

/// A successful agent sign-in.
#[derive(Clone, Debug)]
pub struct AgentSignedIn {
    /// The token: shown once.
    pub token: String,
    /// The session.
    pub session: Session,
    /// The agent.
    pub agent: Agent,
}

fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("argon2: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Argon2 takes tens of milliseconds of CPU on purpose: keep it off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Internal(format!("blocking task: {e}")))
}

/// Errors with `forbidden` unless `who` is an enabled supervisor: the one check of every
/// supervisors' route (labels, reports, the audit log).
///
/// # Errors
/// `forbidden`, `unavailable`.
pub async fn require_supervisor(agents: &dyn Agents, who: Principal) -> Result<()> {
    let Principal::Agent(id) = who else { return Err(Error::Forbidden) };
    match agents.agent(id).await? {
        Some(a) if a.supervisor && a.disabled_at.is_none() => Ok(()),
        _ => Err(Error::Forbidden),
    }
}

fn normalise_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(char::is_whitespace);
    if !valid {
        return Err(Error::BadRequest("email is not a valid address".into()));
    }
    Ok(email)
}

impl AgentDesk {
    /// Agents over these ports.
    ///
    /// # Errors
    /// The decoy hash cannot be computed (argon2 failure).
    pub fn new(
        store: Arc<dyn Agents>,
        audit: Arc<dyn Audit>,
        sessions: Arc<SessionDesk>,
        quotas: Arc<dyn Quotas>,
        max_body_chars: usize,
    ) -> Result<Self> {
        let decoy_hash = hash_password(&generate_password())?;
        Ok(Self { store, audit, sessions, quotas, max_body_chars, decoy_hash })
    }

    /// Writes an operator's action on `agent` to the audit log.
    async fn audited(&self, action: AuditAction, agent: &Agent, detail: Option<serde_json::Value>) {
        let entry = AuditEntry::new(now_ms(), ActorKind::Operator, None, action, Some(agent.id.0));
        let entry = match detail {
            Some(d) => entry.with_detail(d),
            None => entry,
        };
        crate::domain::audit::record(self.audit.as_ref(), &entry).await;
    }

    /// Creates an agent with a generated password, returned once (`anapars-hub agent add`).
    ///
    /// # Errors
    /// `bad_request` for an invalid email or name, `conflict` if the email is taken, `unavailable`.
    pub async fn add(&self, email: &str, name: &str) -> Result<(Agent, String)> {
        let email = normalise_email(email)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Error::BadRequest("name must be 1 to 64 characters".into()));
        }
        let password = generate_password();
        let pw = password.clone();
        let password_hash = blocking(move || hash_password(&pw)).await??;
        let new =
            NewAgent { id: AgentId::generate(), email, name: name.to_owned(), password_hash, created_at: now_ms() };
        let agent = self.store.create_agent(&new).await?.ok_or(Error::Conflict("an agent with this email exists"))?;
        self.audited(AuditAction::AgentAdded, &agent, None).await;
        Ok((agent, password))
    }

    /// Every agent (`anapars-hub agent list`).
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn list(&self) -> Result<Vec<Agent>> {
        self.store.agents().await
    }

    /// Disables an agent and revokes their sessions (`anapars-hub agent disable`). Running hubs close
    /// the agent's sockets within [`crate::app::AGENT_WATCH_INTERVAL`].
    ///
    /// # Errors
    /// `not_found`, `unavailable`.
    pub async fn disable(&self, email: &str) -> Result<Agent> {
        let agent = self.named(email).await?;
        self.store.disable_agent(agent.id, now_ms()).await?;
        self.audited(AuditAction::AgentDisabled, &agent, None).await;
        self.store.agent(agent.id).await?.ok_or(Error::NotFound("agent"))
    }

    /// Enables a disabled agent (`anapars-hub agent enable`): they sign in again with their
    /// password; the sessions the disabling revoked stay revoked.
    ///
    /// # Errors
    /// `not_found`, `unavailable`.
    pub async fn enable(&self, email: &str) -> Result<Agent> {
        let agent = self.change(email, AgentChange { enable: true, ..AgentChange::default() }).await?;
        self.audited(AuditAction::AgentEnabled, &agent, None).await;
        Ok(agent)
    }

    /// Gives an agent a new generated password, returned once (`anapars-hub agent reset-password`),
    /// and signs them out everywhere.
    ///
    /// # Errors
    /// `not_found`, `unavailable`.
    pub async fn reset_password(&self, email: &str) -> Result<(Agent, String)> {
        let password = generate_password();
        let pw = password.clone();
        let hash = blocking(move || hash_password(&pw)).await??;
        let agent = self.change(email, AgentChange { password_hash: Some(hash), ..AgentChange::default() }).await?;
        self.audited(AuditAction::AgentPasswordReset, &agent, None).await;
        Ok((agent, password))
    }

    /// Renames an agent (`anapars-hub agent set --name`) and/or sets their capacity
    /// (`--capacity`): the tickets they may hold at once, which auto-assignment respects.
    ///
    /// # Errors
    /// `bad_request` for an empty or over-long name or a capacity outside 1..=100, `not_found`,
    /// `unavailable`.
    pub async fn update(&self, email: &str, name: Option<&str>, capacity: Option<u32>) -> Result<Agent> {
        let name = name.map(str::trim).map(str::to_owned);
        if name.as_deref().is_some_and(|n| n.is_empty() || n.chars().count() > 64) {
            return Err(Error::BadRequest("name must be 1 to 64 characters".into()));
        }
        if capacity.is_some_and(|c| !(1..=100).contains(&c)) {
            return Err(Error::BadRequest("capacity must be 1 to 100".into()));
        }
        let renamed = name.is_some();
        let agent = self.change(email, AgentChange { name, capacity, ..AgentChange::default() }).await?;
        // The name is personal: the entry says that it changed, not what to.
        let detail = serde_json::json!({"name_changed": renamed, "capacity": capacity});
        self.audited(AuditAction::AgentChanged, &agent, Some(detail)).await;
        Ok(agent)
    }

    /// The agent an operator names by email.
    async fn named(&self, email: &str) -> Result<Agent> {
        let email = normalise_email(email)?;
        self.store.agent_by_email(&email).await?.ok_or(Error::NotFound("agent"))
    }

    async fn change(&self, email: &str, change: AgentChange) -> Result<Agent> {
        let agent = self.named(email).await?;
        if !self.store.change_agent(agent.id, &change, now_ms()).await? {
            return Err(Error::NotFound("agent"));
        }
        self.store.agent(agent.id).await?.ok_or(Error::NotFound("agent"))
    }

    /// Makes an agent a supervisor or not (`anapars-hub agent supervisor`).
    ///
    /// # Errors
    /// `not_found`, `unavailable`.
    pub async fn set_supervisor(&self, email: &str, supervisor: bool) -> Result<Agent> {
        let agent = self.named(email).await?;
        self.store.set_supervisor(agent.id, supervisor).await?;
        self.audited(AuditAction::AgentSupervisor, &agent, Some(serde_json::json!({"supervisor": supervisor}))).await;
        self.store.agent(agent.id).await?.ok_or(Error::NotFound("agent"))
    }

    /// Signs an agent in (`POST /v1/agent/login`).
    ///
    /// # Errors
    /// `unauthorized` ([`Error::WrongCredentials`]) for a wrong email or password or a disabled
    /// agent (one answer for all, so the endpoint does not reveal which emails exist),
    /// `rate_limited`, `unavailable`. Each refusal is logged with the email masked and hashed
    /// (never the password, nor the client's address, which the hub keeps only sealed), in the
    /// request's span (its id), so that an operator sees guessing without the log holding
    /// addresses.
    pub async fn login(&self, email: &str, password: &str, client_ip: IpAddr) -> Result<AgentSignedIn> {
        let Ok(email) = normalise_email(email) else {
            tracing::warn!(email = %masked_email(email), reason = "not an email", "agent sign-in refused");
            return Err(Error::WrongCredentials);
        };
        if password.len() > 1024 {
            tracing::warn!(email = %masked_email(&email), reason = "password over 1024 bytes", "agent sign-in refused");
            return Err(Error::WrongCredentials);
        }
        let q = self.quotas.as_ref();
        quota::check(q, &format!("agent-login:ip:{client_ip}"), Duration::from_secs(3600), LOGINS_PER_IP).await?;
        quota::check(q, &format!("agent-login:email:{email}"), Duration::from_secs(900), LOGINS_PER_EMAIL).await?;
        let agent = self.store.agent_by_email(&email).await?;
        let hash = agent.as_ref().map_or_else(|| self.decoy_hash.clone(), |a| a.password_hash.clone());
        let pw = password.to_owned();
        let matches = blocking(move || verify_password(&pw, &hash)).await?;
        let agent = match agent {
            Some(a) if matches && a.disabled_at.is_none() => a,
            found => {
                let reason = match found {
                    None => "no such agent",
                    Some(a) if a.disabled_at.is_some() && matches => "agent disabled",
                    Some(_) => "wrong password",
                };
                tracing::warn!(email = %masked_email(&email), reason, "agent sign-in refused");
                return Err(Error::WrongCredentials);
            }
        };
        // A disabling that commits meanwhile makes this `forbidden`: no session is stored.
        let Opened { token, session } = self.sessions.open(Holder::Agent(agent.id), now_ms()).await?;
        tracing::info!(agent_id = %agent.id, "agent signed in");
        Ok(AgentSignedIn { token, session, agent })
    }

    /// The agent with this id.
    ///
    /// # Errors
    /// `not_found`, `unavailable`.
    pub async fn agent(&self, id: AgentId) -> Result<Agent> {
        self.store.agent(id).await?.ok_or(Error::NotFound("agent"))
    }

    /// Sets status and (optionally) capacity.
    ///
    /// # Errors
    /// `bad_request` for a capacity outside 1..=100, `not_found`, `unavailable`.
    pub async fn set_status(&self, id: AgentId, status: AgentStatus, capacity: Option<u32>) -> Result<Agent> {
        let current = self.agent(id).await?;
        let capacity = capacity.unwrap_or(current.capacity);
        if !(1..=100).contains(&capacity) {
            return Err(Error::BadRequest("capacity must be 1 to 100".into()));
        }
        self.store.set_agent_status(id, status, capacity).await?;
        self.agent(id).await
    }

    /// The agent's canned replies.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn canned_replies(&self, agent: AgentId) -> Result<Vec<CannedReply>> {
        self.store.canned_replies(agent).await
    }

    /// Adds a canned reply and returns the full list.
    ///
    /// # Errors
    /// `bad_request` for an empty or long title or body, `unavailable`.
    pub async fn add_canned_reply(&self, agent: AgentId, title: &str, body: &str) -> Result<Vec<CannedReply>> {
        let title = title.trim();
        if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
            return Err(Error::BadRequest(format!("title must be 1 to {MAX_TITLE_CHARS} characters")));
        }
        crate::model::text::refuse_nul("title", title)?;
        crate::model::text::check_body(body, self.max_body_chars)?;
        let reply = CannedReply {
            id: CannedReplyId::generate(),
            agent_id: agent,
            title: title.to_owned(),
            body: body.to_owned(),
            created_at: now_ms(),
        };
        self.store.add_canned_reply(&reply).await?;
        self.canned_replies(agent).await
    }

    /// Deletes one of the agent's canned replies.
    ///
    /// # Errors
    /// `not_found` when it is not theirs, `unavailable`.
    pub async fn delete_canned_reply(&self, agent: AgentId, id: CannedReplyId) -> Result<()> {
        if self.store.delete_canned_reply(agent, id).await? {
            Ok(())
        } else {
            Err(Error::NotFound("canned reply"))
        }
    }
}

fn generate_password() -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..PASSWORD_LEN).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// An email as the log shows it: the first letter of the local part, the domain, and the first 8
/// hex digits of the address's SHA-256, so that repeated tries at one address can be told apart and
/// matched against a known address without the log holding it.
fn masked_email(email: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    match email.trim().split_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            let first: String = local.chars().take(1).collect();
            let domain: String = domain.chars().take(64).collect();
            format!("{first}***@{domain} #{hash}")
        }
        _ => format!("(not an email) #{hash}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let pw = generate_password();
        assert_eq!(pw.len(), PASSWORD_LEN);
        let hash = hash_password(&pw).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&pw, &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password(&pw, "not a phc string"));
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalise_email("  Sara@Anapars.IR ").unwrap(), "sara@anapars.ir");
        for bad in ["", "sara", "@x.ir", "sara@localhost", "sa ra@x.ir"] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_masked_email_keeps_no_address_but_tells_tries_apart() {
        let m = masked_email("Sara.Karimi@example.com");
        assert!(m.starts_with("S***@example.com #"), "{m}");
        assert!(!m.contains("Karimi"));
        assert_eq!(m.rsplit('#').next().map(str::len), Some(8));
        assert_eq!(
            masked_email(" sara.karimi@EXAMPLE.com").rsplit('#').next(),
            m.rsplit('#').next(),
            "one address, one hash"
        );
        assert_ne!(masked_email("other@example.com").rsplit('#').next(), m.rsplit('#').next());
        assert!(masked_email("no-at-sign").starts_with("(not an email) #"));
    }
}
