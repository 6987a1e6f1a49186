//! Sessions of users and agents: the token that stands for a person, its refresh, its sign-out and
//! the checks a socket makes while it lives. Users and agents share one lifecycle and one table;
//! only what opens a session differs (a phone code for a user, a password for an agent, in `auth`
//! and `agents`).
//!
//! A token is checked with one lookup by its hash. That is enough: the store revokes an agent's
//! sessions in the transaction that disables the agent, and deletes a user's with the account, so a
//! live session always has a holder that may use it.

pub mod token;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::account::{Holder, Identity, NewSession, RevokeReason, Session};
use crate::model::ids::{DeviceId, Principal, SessionId, UserId};
use crate::model::time::{ms, now_ms, Millis};
use crate::ports::broker::Broker;
use crate::ports::store::Sessions;
use std::sync::Arc;
use std::time::Duration;
use token::TokenKind;

/// How long each kind of session's token works before it must be refreshed.
#[derive(Clone, Copy, Debug)]
pub struct SessionTtls {
    /// An app user's (`session_ttl_secs`).
    pub user: Duration,
    /// An agent's (`agent_session_ttl_secs`).
    pub agent: Duration,
}

impl From<&Config> for SessionTtls {
    fn from(config: &Config) -> Self {
        Self {
            user: Duration::from_secs(config.session_ttl_secs),
            agent: Duration::from_secs(config.agent_session_ttl_secs),
        }
    }
}

/// Issues, checks, refreshes and ends sessions.
pub struct SessionDesk {
    store: Arc<dyn Sessions>,
    events: Arc<dyn Broker>,
    ttls: SessionTtls,
}

/// A session just opened, with its token (shown once, to its holder).
#[derive(Clone, Debug)]
pub struct Opened {
    /// The token.
    pub token: String,
    /// The stored session.
    pub session: Session,
}

fn kind(who: Principal) -> TokenKind {
    match who {
        Principal::User(_) => TokenKind::User,
        Principal::Agent(_) => TokenKind::Agent,
    }
}

impl SessionDesk {
    /// Sessions over this store, telling sockets of revocations through `events`.
    pub fn new(store: Arc<dyn Sessions>, events: Arc<dyn Broker>, ttls: SessionTtls) -> Self {
        Self { store, events, ttls }
    }

    fn ttl(&self, who: Principal) -> Duration {
        match who {
            Principal::User(_) => self.ttls.user,
            Principal::Agent(_) => self.ttls.agent,
        }
    }

    /// Opens a session for `holder` at `now`.
    ///
    /// # Errors
    /// `forbidden` for a disabled or unknown agent; `unavailable`.
    pub async fn open(&self, holder: Holder, now: Millis) -> Result<Opened> {
        let who = holder.principal();
        let (token, token_hash) = token::new_token(kind(who));
        let new = NewSession {
            id: SessionId::generate(),
            holder,
            token_hash,
            created_at: now,
            expires_at: now + ms(self.ttl(who)),
        };
        let session = self.store.create_session(&new).await?;
        Ok(Opened { token, session })
    }

    /// Who a token stands for, if its session is live (with the user's device, so a socket learns
    /// both in one lookup).
    ///
    /// # Errors
    /// `unauthorized` for a token of the wrong shape, unknown, expired or revoked; `unavailable`.
    pub async fn authenticate(&self, token: &str) -> Result<Identity> {
        let kind = token::kind_of(token).ok_or(Error::Unauthorized)?;
        let session = self.store.session_by_token(&token::hash_token(token)).await?.ok_or(Error::Unauthorized)?;
        let matches = self::kind(session.holder.principal()) == kind;
        if !matches || !session.is_live(now_ms()) {
            return Err(Error::Unauthorized);
        }
        Ok(session.identity())
    }

    /// The session by id, if it is still live (to re-check a socket's session at its expiry).
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn live(&self, id: SessionId) -> Result<Option<Session>> {
        let now = now_ms();
        Ok(self.store.session(id).await?.filter(|s| s.is_live(now)))
    }

    /// Gives the session of `who` a new token and a fresh expiry; the old token stops working.
    ///
    /// # Errors
    /// `unauthorized` if the session is no longer live; `unavailable`.
    pub async fn refresh(&self, who: Principal, id: SessionId) -> Result<(String, Millis)> {
        let now = now_ms();
        let (token, hash) = token::new_token(kind(who));
        let expires_at = now + ms(self.ttl(who));
        if !self.store.rotate_session(id, &hash, expires_at, now).await? {
            return Err(Error::Unauthorized);
        }
        Ok((token, expires_at))
    }

    /// Ends the session at `now` for `reason`; its token stops working and its live sockets, on
    /// every node, are told and closed. False if it had ended already.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn revoke(&self, who: Principal, id: SessionId, reason: RevokeReason, now: Millis) -> Result<bool> {
        let revoked = self.store.revoke_session(id, now).await?;
        if revoked {
            self.events.session_revoked(who, id, reason);
        }
        Ok(revoked)
    }

    /// The user's sessions that are live at `now`, newest first.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn live_of_user(&self, user: UserId, now: Millis) -> Result<Vec<Session>> {
        self.store.live_sessions(user, now).await
    }

    /// Ends every live session of one of the user's devices, telling their sockets why.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn revoke_device(&self, user: UserId, device: DeviceId, reason: RevokeReason, now: Millis) -> Result<()> {
        for id in self.store.revoke_device_sessions(user, device, now).await? {
            self.events.session_revoked(Principal::User(user), id, reason);
        }
        Ok(())
    }

    /// Ends every live session of the user, telling their sockets why.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn revoke_user(&self, user: UserId, reason: RevokeReason, now: Millis) -> Result<()> {
        for id in self.store.revoke_user_sessions(user, None, now).await? {
            self.events.session_revoked(Principal::User(user), id, reason);
        }
        Ok(())
    }

    /// Signs the session out (from one of its sockets or over HTTP). Its sockets are told even if
    /// the session had ended already, so a sign-out always closes them.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn sign_out(&self, who: Principal, id: SessionId) -> Result<()> {
        self.store.revoke_session(id, now_ms()).await?;
        self.events.session_revoked(who, id, RevokeReason::SignedOut);
        Ok(())
    }
}
