//! Sessions: what a token stands for, its refresh and sign-out, the account's devices, and the
//! hand-over that signs older sessions out when a device signs in.

use super::{tokens, Auth};
use crate::error::{Error, Result};
use crate::model::account::RevokeReason;
use crate::model::account::{Session, User};
use crate::model::ids::{DeviceId, Principal, SessionId, UserId};
use crate::model::time::{ms, now_ms, Millis};

impl Auth {
    /// The device a user session belongs to; `None` for a session the hub does not know.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn device_of(&self, session: SessionId) -> Result<Option<DeviceId>> {
        Ok(self.store.session(session).await?.map(|s| s.device_id))
    }

    /// The live session and user behind a token.
    ///
    /// # Errors
    /// `unauthorized` for an unknown, expired or revoked token; `unavailable`.
    pub async fn authenticate(&self, token: &str) -> Result<(Session, User)> {
        if !tokens::looks_like_token(token) {
            return Err(Error::Unauthorized);
        }
        let session = self.store.session_by_token(&tokens::hash_token(token)).await?.ok_or(Error::Unauthorized)?;
        if !session.is_live(now_ms()) {
            return Err(Error::Unauthorized);
        }
        let user = self.store.user(session.user_id).await?.ok_or(Error::Unauthorized)?;
        Ok((session, user))
    }

    /// The session by id, if it is still live (to re-check a socket's session at its expiry).
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn live_session(&self, id: SessionId) -> Result<Option<Session>> {
        let now = now_ms();
        Ok(self.store.session(id).await?.filter(|s| s.is_live(now)))
    }

    /// Gives the session a new token and a fresh expiry; the old token stops working.
    ///
    /// # Errors
    /// `unauthorized` if the session is no longer live; `unavailable`.
    pub async fn refresh(&self, session: SessionId) -> Result<(String, Millis)> {
        let now = now_ms();
        let (token, hash) = tokens::new_token();
        let expires_at = now + ms(self.rules.session_ttl);
        if !self.store.rotate_session(session, &hash, expires_at, now).await? {
            return Err(Error::Unauthorized);
        }
        Ok((token, expires_at))
    }

    /// Signs the session out: its token stops working and its live sockets are told and closed.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn sign_out(&self, user: UserId, session: SessionId) -> Result<()> {
        self.store.revoke_session(session, now_ms()).await?;
        self.events.session_revoked(Principal::User(user), session, RevokeReason::SignedOut);
        Ok(())
    }

    /// The user's devices, most recently used first, with their live session counts.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn devices(&self, user: UserId) -> Result<Vec<(crate::model::account::Device, u32)>> {
        let live = self.store.live_sessions(user, now_ms()).await?;
        let mut devices = self.store.devices(user).await?;
        devices.sort_by_key(|d| std::cmp::Reverse(d.last_seen_at));
        Ok(devices
            .into_iter()
            .map(|d| {
                let n = live.iter().filter(|s| s.device_id == d.id).count() as u32;
                (d, n)
            })
            .collect())
    }

    /// Signs one of the user's devices out.
    ///
    /// # Errors
    /// `not_found` for a device that is not the user's, `unavailable`.
    pub async fn sign_out_device(&self, user: UserId, device: crate::model::ids::DeviceId) -> Result<()> {
        if !self.store.devices(user).await?.iter().any(|d| d.id == device) {
            return Err(Error::NotFound("device"));
        }
        for s in self.store.revoke_device_sessions(user, device, now_ms()).await? {
            self.events.session_revoked(Principal::User(user), s, RevokeReason::SignedOut);
        }
        Ok(())
    }

    /// Moves the account to the device that just signed in: older sessions of the same device end
    /// (`replaced`), and devices beyond `max_devices` (least recently signed in first) are signed
    /// out (`signed_in_elsewhere`). Their live sockets are told and closed at once.
    pub(super) async fn hand_over(&self, user: UserId, new: &Session, now: Millis) -> Result<()> {
        let mut kept = vec![new.device_id];
        for s in self.store.live_sessions(user, now).await? {
            let reason = if s.id == new.id {
                continue;
            } else if s.device_id == new.device_id {
                RevokeReason::Replaced
            } else if kept.contains(&s.device_id) {
                continue;
            } else if kept.len() < self.rules.max_devices {
                kept.push(s.device_id);
                continue;
            } else {
                RevokeReason::SignedInElsewhere
            };
            if self.store.revoke_session(s.id, now).await? {
                self.events.session_revoked(Principal::User(user), s.id, reason);
            }
        }
        Ok(())
    }
}
