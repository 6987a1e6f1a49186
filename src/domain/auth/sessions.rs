//! A user's sessions on their devices: the device list, signing a device out, and the hand-over
//! that signs older sessions out when a device signs in (the tokens themselves are the sessions
//! desk's, shared with agents).

use super::Auth;
use crate::error::{Error, Result};
use crate::model::account::{RevokeReason, Session};
use crate::model::ids::{Principal, UserId};
use crate::model::time::{now_ms, Millis};

impl Auth {
    /// The user's devices, most recently used first, with their live session counts.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn devices(&self, user: UserId) -> Result<Vec<(crate::model::account::Device, u32)>> {
        let live = self.sessions.live_of_user(user, now_ms()).await?;
        let mut devices = self.accounts.devices(user).await?;
        devices.sort_by_key(|d| std::cmp::Reverse(d.last_seen_at));
        Ok(devices
            .into_iter()
            .map(|d| {
                let n = live.iter().filter(|s| s.holder.device() == Some(d.id)).count() as u32;
                (d, n)
            })
            .collect())
    }

    /// Signs one of the user's devices out.
    ///
    /// # Errors
    /// `not_found` for a device that is not the user's, `unavailable`.
    pub async fn sign_out_device(&self, user: UserId, device: crate::model::ids::DeviceId) -> Result<()> {
        if !self.accounts.devices(user).await?.iter().any(|d| d.id == device) {
            return Err(Error::NotFound("device"));
        }
        self.sessions.revoke_device(user, device, RevokeReason::SignedOut, now_ms()).await
    }

    /// Moves the account to the device that just signed in: older sessions of the same device end
    /// (`replaced`), and devices beyond `max_devices` (least recently signed in first) are signed
    /// out (`signed_in_elsewhere`). Their live sockets are told and closed at once.
    pub(super) async fn hand_over(&self, user: UserId, new: &Session, now: Millis) -> Result<()> {
        let mut kept = vec![new.holder.device()];
        for s in self.sessions.live_of_user(user, now).await? {
            let device = s.holder.device();
            let reason = if s.id == new.id {
                continue;
            } else if device == new.holder.device() {
                RevokeReason::Replaced
            } else if kept.contains(&device) {
                continue;
            } else if kept.len() < self.rules.max_devices {
                kept.push(device);
                continue;
            } else {
                RevokeReason::SignedInElsewhere
            };
            self.sessions.revoke(Principal::User(user), s.id, reason, now).await?;
        }
        Ok(())
    }
}
