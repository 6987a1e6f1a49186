//! The socket's identity: authenticating it registers it in the registry and with presence; a
//! user's socket learns its device and writes its connection record; the session's expiry is
//! watched (warned of, then re-checked against storage before the socket is closed).

use super::commands::Transport;
use super::{Exit, Socket};
use crate::error::Error;
use crate::gateway::registry::Connection;
use crate::gateway::render;
use crate::model::account::Identity;
use crate::model::ids::{DeviceId, Principal, SessionId};
use crate::model::time::{now_ms, Millis};
use crate::protocol::CloseCode;
use crate::protocol::ServerFrame;
use std::time::Duration;

/// Failed `auth` frames a socket may send before it is closed with 4002.
pub(super) const MAX_FAILED_AUTHS: u32 = 3;
/// `session.expiring` is sent this long before the token expires.
pub(super) const EXPIRY_WARNING: Duration = Duration::from_secs(300);

/// The authenticated identity of a socket.
pub(super) struct Authed {
    pub(super) who: Principal,
    pub(super) session: SessionId,
    pub(super) expires_at: Millis,
    pub(super) warned: bool,
}

impl<S: Transport> Socket<S> {
    /// The socket's principal and session, once authenticated.
    pub(super) fn identity(&self) -> Option<(Principal, SessionId)> {
        self.authed.as_ref().map(|a| (a.who, a.session))
    }

    /// This socket's entry for the registry.
    pub(super) fn connection(&self, who: Principal, session: SessionId) -> Connection {
        Connection { conn: self.conn, who, session, outbox: self.outbox.clone() }
    }

    /// Registers the socket as authenticated.
    pub(super) fn register(&mut self, identity: Identity) {
        self.hub.registry.insert(identity.who, self.connection(identity.who, identity.session));
        self.authed = Some(Authed {
            who: identity.who,
            session: identity.session,
            expires_at: identity.expires_at,
            warned: false,
        });
        self.hub.presence.connected(identity.who);
        match identity.who {
            // An agent coming online may take waiting tickets.
            Principal::Agent(_) => self.hub.tickets.queue_changed(),
            // A user whose tickets wait hears their places now, after the socket's `auth.ok`
            // (queued frames follow the reply), not only when they next move.
            Principal::User(user) => {
                let outbox = &self.outbox;
                self.hub.tickets.queue_places(user, |place| _ = outbox.push_frame(&render::frame(&place)));
            }
        }
        tracing::debug!(conn = %self.conn, who = ?identity.who, "socket authenticated");
    }

    /// Notes the device of a user's socket and writes its connection record (once).
    pub(super) fn user_device(&mut self, device: DeviceId) {
        self.device = Some(device);
        if let (Some(client), Some(Authed { who: Principal::User(user), .. })) = (self.client.take(), &self.authed) {
            self.connection = Some(self.hub.telemetry.connected(*user, device, &client, self.connected_at));
        }
    }

    /// The device of this user socket's session, learnt with its identity at authentication.
    pub(super) fn device(&self) -> crate::Result<DeviceId> {
        self.device.ok_or(Error::Unauthenticated)
    }

    /// Warns the client before its session expires; at expiry, closes the socket unless storage
    /// says the session was refreshed meanwhile.
    pub(super) async fn check_expiry(&mut self) -> Result<(), Exit> {
        let Some(a) = &self.authed else { return Ok(()) };
        let now = now_ms();
        if now >= a.expires_at {
            // Another socket of this session may have refreshed it: ask storage before closing.
            match self.hub.sessions.live(a.session).await.map(|live| live.map(|s| s.expires_at)) {
                Ok(Some(expires_at)) => {
                    if let Some(a) = &mut self.authed {
                        a.expires_at = expires_at;
                        a.warned = false;
                    }
                    return Ok(());
                }
                Ok(None) => {
                    self.send(&ServerFrame::SessionExpired {}).await?;
                    return Err(Exit::Close(CloseCode::SessionExpired));
                }
                // Storage is down: keep the socket, look again in a few seconds.
                Err(_) => {
                    if let Some(a) = &mut self.authed {
                        a.expires_at = now + 5_000;
                    }
                    return Ok(());
                }
            }
        }
        if !a.warned && now >= a.expires_at - crate::model::time::ms(EXPIRY_WARNING) {
            let expires_at = a.expires_at;
            if let Some(a) = &mut self.authed {
                a.warned = true;
            }
            self.send(&ServerFrame::SessionExpiring { expires_at }).await?;
        }
        Ok(())
    }
}
