//! Requests applied to the domain: each request type, what it may do in the socket's state, the
//! domain call, and the reply. The session loop stays about transport; this file about meaning.

use super::{Exit, Socket, MAX_FAILED_AUTHS};
use crate::codec::{Request, RequestFrame, ServerFrame};
use crate::error::{CloseCode, Error};
use crate::time::now_ms;
use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Handles one decoded request: exactly one reply, then possibly a close.
pub(super) async fn handle<S>(socket: &mut Socket<S>, frame: RequestFrame) -> Result<(), Exit>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let id = frame.id;
    let hub = socket.hub.clone();
    match frame.request {
        Request::Ping {} => socket.send(&ServerFrame::PingOk { id, server_time: now_ms() }).await,
        Request::Auth { token } => {
            if socket.authed.is_some() {
                return socket.reply_error(Some(id), Error::AlreadyAuthenticated).await;
            }
            match hub.auth.authenticate(&token).await {
                Ok((session, user)) => {
                    socket.register(&session, &user);
                    let reply = ServerFrame::AuthOk {
                        id,
                        user_id: user.id,
                        device_id: session.device_id,
                        session_expires_at: session.expires_at,
                    };
                    socket.send(&reply).await
                }
                Err(Error::Unauthorized) => {
                    socket.failed_auths += 1;
                    socket.reply_error(Some(id), Error::Unauthorized).await?;
                    if socket.failed_auths >= MAX_FAILED_AUTHS {
                        return Err(Exit::Close(CloseCode::AuthFailed));
                    }
                    Ok(())
                }
                Err(other) => socket.reply_error(Some(id), other).await,
            }
        }
        Request::SessionRefresh {} => {
            let Some((_, session)) = socket.identity() else { return unauthenticated(socket, id).await };
            match hub.auth.refresh(session).await {
                Ok((token, expires_at)) => {
                    if let Some(a) = &mut socket.authed {
                        a.expires_at = expires_at;
                        a.warned = false;
                    }
                    socket.send(&ServerFrame::SessionRefreshOk { id, token, expires_at }).await
                }
                Err(e) => socket.reply_error(Some(id), e).await,
            }
        }
        Request::SessionSignOut {} => {
            let Some((user, session)) = socket.identity() else { return unauthenticated(socket, id).await };
            match hub.auth.sign_out(user, session).await {
                Ok(()) => {
                    socket.send(&ServerFrame::SessionSignOutOk { id }).await?;
                    Err(Exit::Close(CloseCode::Normal))
                }
                Err(e) => socket.reply_error(Some(id), e).await,
            }
        }
        Request::Me {} => {
            let Some((user, _)) = socket.identity() else { return unauthenticated(socket, id).await };
            match hub.auth.user(user).await {
                Ok(u) => {
                    let reply = ServerFrame::MeOk {
                        id,
                        user_id: u.id,
                        phone: u.phone.e164().to_owned(),
                        registered_at: u.registered_at,
                    };
                    socket.send(&reply).await
                }
                Err(e) => socket.reply_error(Some(id), e).await,
            }
        }
    }
}

async fn unauthenticated<S>(socket: &mut Socket<S>, id: crate::codec::RequestId) -> Result<(), Exit>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    socket.reply_error(Some(id), Error::Unauthenticated).await
}
