//! Requests applied to the domain: each request type, what it may do in the socket's state, the
//! domain call, and the reply. The session loop stays about transport; these files about meaning.
//! Ticket requests are in `ticket_commands.rs`.

use crate::error::Error;
use crate::gateway::session::auth::MAX_FAILED_AUTHS;
use crate::gateway::session::{ticket_commands, Exit, Socket};
use crate::model::agent::{Agent, CannedReply};
use crate::model::ids::Principal;
use crate::model::time::now_ms;
use crate::protocol::CloseCode;
use crate::protocol::{AgentView, CannedReplyView, DeviceView, Request, RequestFrame, RequestId, ServerFrame};
use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// A WebSocket the session can run on: messages in and out, and the byte stream under it.
///
/// Data frames are framed by the session itself and written straight to the byte stream
/// ([`super::frame`]), because tungstenite's write buffer keeps whatever capacity a burst grew it to
/// for the life of the socket: after a burst of announcements that was most of what an idle
/// socket cost. Control frames (ping, close, the automatic pong) still go through tungstenite, whose
/// buffer is flushed before every direct write so that frames never interleave.
pub trait Transport: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin {
    /// The connection under the WebSocket.
    type Raw: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin;
    /// The connection, for whole frames only, and only with tungstenite's buffer flushed; or, once
    /// the close frame is sent, to end the connection (see `Socket::close`).
    fn raw(&mut self) -> &mut Self::Raw;
}

impl<T> Transport for tokio_tungstenite::WebSocketStream<T>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    type Raw = T;
    fn raw(&mut self) -> &mut T {
        self.get_mut()
    }
}

/// An agent as other agents see them.
pub(super) fn agent_view(agent: &Agent, online: bool) -> AgentView {
    AgentView {
        id: agent.id,
        name: agent.name.clone(),
        status: agent.status,
        capacity: agent.capacity,
        online,
        supervisor: agent.supervisor,
    }
}

fn canned_views(replies: Vec<CannedReply>) -> Vec<CannedReplyView> {
    replies.into_iter().map(|r| CannedReplyView { id: r.id, title: r.title, body: r.body }).collect()
}

/// Handles one decoded request: exactly one reply, then possibly a close.
pub(super) async fn handle<S: Transport>(socket: &mut Socket<S>, frame: RequestFrame) -> Result<(), Exit> {
    let id = frame.id;
    let hub = socket.hub.clone();
    match frame.request {
        Request::Ping {} => socket.send(&ServerFrame::PingOk { id, server_time: now_ms() }).await,
        Request::Auth { token } => authenticate(socket, id, &token).await,
        request => {
            let Some((who, session)) = socket.identity() else {
                return socket.reply_error(Some(id), Error::Unauthenticated).await;
            };
            match request {
                Request::SessionRefresh {} => {
                    let reply = hub.sessions.refresh(who, session).await.map(|(token, expires_at)| {
                        if let Some(a) = &mut socket.authed {
                            a.expires_at = expires_at;
                            a.warned = false;
                        }
                        ServerFrame::SessionRefreshOk { id, token, expires_at }
                    });
                    socket.answer(id, reply).await
                }
                Request::SessionSignOut {} => match hub.sessions.sign_out(who, session).await {
                    Ok(()) => {
                        socket.send(&ServerFrame::SessionSignOutOk { id }).await?;
                        Err(Exit::Close(CloseCode::Normal))
                    }
                    Err(e) => socket.reply_error(Some(id), e).await,
                },
                Request::Me {} => {
                    let Principal::User(user) = who else {
                        return socket.reply_error(Some(id), Error::Forbidden).await;
                    };
                    let reply = hub.auth.user(user).await.map(|u| ServerFrame::MeOk {
                        id,
                        user_id: u.id,
                        phone: u.phone.e164().to_owned(),
                        registered_at: u.registered_at,
                    });
                    socket.answer(id, reply).await
                }
                Request::AgentStatus { status, capacity } => {
                    let Principal::Agent(agent) = who else {
                        return socket.reply_error(Some(id), Error::Forbidden).await;
                    };
                    let reply = hub.agents.set_status(agent, status, capacity).await.map(|a| {
                        hub.tickets.queue_changed();
                        ServerFrame::AgentStatusOk { id, agent: agent_view(&a, true) }
                    });
                    socket.answer(id, reply).await
                }
                Request::AgentList {} => {
                    if !matches!(who, Principal::Agent(_)) {
                        return socket.reply_error(Some(id), Error::Forbidden).await;
                    }
                    let online = hub.presence.online_agents().await;
                    let reply = hub.agents.list().await.map(|agents| {
                        let agents = agents
                            .iter()
                            .filter(|a| a.disabled_at.is_none())
                            .map(|a| agent_view(a, online.contains(&a.id)))
                            .collect();
                        ServerFrame::AgentListOk { id, agents }
                    });
                    socket.answer(id, reply).await
                }
                Request::CannedList {} | Request::CannedAdd { .. } | Request::CannedDelete { .. } => {
                    let Principal::Agent(agent) = who else {
                        return socket.reply_error(Some(id), Error::Forbidden).await;
                    };
                    let result = match request {
                        Request::CannedAdd { title, body } => hub.agents.add_canned_reply(agent, &title, &body).await,
                        Request::CannedDelete { reply_id } => {
                            match hub.agents.delete_canned_reply(agent, reply_id).await {
                                Ok(()) => return socket.send(&ServerFrame::Ok { id }).await,
                                Err(e) => Err(e),
                            }
                        }
                        _ => hub.agents.canned_replies(agent).await,
                    };
                    let reply = result.map(|r| ServerFrame::CannedListOk { id, replies: canned_views(r) });
                    socket.answer(id, reply).await
                }
                Request::NoteAdd { ticket_id, client_msg_id, body, mentions } => {
                    let reply = hub
                        .tickets
                        .add_note(who, ticket_id, &client_msg_id, &body, &mentions)
                        .await
                        .map(|n| ServerFrame::NoteAddOk { id, note: crate::protocol::note_view(&n) });
                    socket.answer(id, reply).await
                }
                Request::NoteList { ticket_id, before_id, limit } => {
                    let reply =
                        hub.tickets.notes(who, ticket_id, before_id, limit.unwrap_or(50)).await.map(|(notes, more)| {
                            ServerFrame::NoteListOk {
                                id,
                                ticket_id,
                                notes: notes.iter().map(crate::protocol::note_view).collect(),
                                more,
                            }
                        });
                    socket.answer(id, reply).await
                }
                Request::RatingSubmit { ticket_id, resolution_seq, score, comment } => {
                    let reply = hub
                        .tickets
                        .rate(who, ticket_id, resolution_seq, score, comment.as_deref())
                        .await
                        .map(|r| ServerFrame::RatingSubmitOk { id, rating: crate::protocol::rating_view(&r) });
                    socket.answer(id, reply).await
                }
                Request::RatingPending {} => {
                    let reply = hub.tickets.rating_requests(who).await.map(|requests| ServerFrame::RatingPendingOk {
                        id,
                        requests: requests.iter().map(crate::protocol::rating_request_view).collect(),
                    });
                    socket.answer(id, reply).await
                }
                Request::RatingList { ticket_id } => {
                    let reply =
                        hub.tickets.ticket_ratings(who, ticket_id).await.map(|ratings| ServerFrame::RatingListOk {
                            id,
                            ticket_id,
                            ratings: ratings.iter().map(crate::protocol::rating_view).collect(),
                        });
                    socket.answer(id, reply).await
                }
                Request::ProfileGet { user_id } => {
                    let reply = hub
                        .profiles
                        .get(who, user_id)
                        .await
                        .map(|p| ServerFrame::ProfileOk { id, profile: crate::protocol::profile_view(&p) });
                    socket.answer(id, reply).await
                }
                Request::CustomerGet { user_id } => {
                    let reply = hub.profiles.customer(who, user_id).await.map(|c| ServerFrame::CustomerGetOk {
                        id,
                        customer: Box::new(crate::protocol::customer_view(&c)),
                    });
                    socket.answer(id, reply).await
                }
                Request::ProfileUpdate { name, hide_last_seen } => {
                    let reply = hub
                        .profiles
                        .update(who, name, hide_last_seen)
                        .await
                        .map(|p| ServerFrame::ProfileOk { id, profile: crate::protocol::profile_view(&p) });
                    socket.answer(id, reply).await
                }
                Request::AgentGet { agent_id } => {
                    let reply = match hub.agents.agent(agent_id).await {
                        Ok(a) if a.disabled_at.is_none() => {
                            let online = hub.presence.is_online(Principal::Agent(a.id)).await;
                            Ok(ServerFrame::AgentGetOk { id, agent: agent_view(&a, online) })
                        }
                        Ok(_) => Err(Error::NotFound("agent")),
                        Err(e) => Err(e),
                    };
                    socket.answer(id, reply).await
                }
                Request::DeviceList {} | Request::DeviceSignOut { .. } => {
                    let Principal::User(user) = who else {
                        return socket.reply_error(Some(id), Error::Forbidden).await;
                    };
                    let reply = match request {
                        Request::DeviceSignOut { device_id } => {
                            hub.auth.sign_out_device(user, device_id).await.map(|()| ServerFrame::Ok { id })
                        }
                        _ => device_list(&hub, id, user, socket.device).await,
                    };
                    socket.answer(id, reply).await
                }
                Request::TelemetryDevice { .. }
                | Request::TelemetryViews { .. }
                | Request::SettingsGet {}
                | Request::SettingsPut { .. }
                | Request::ConsentGet {}
                | Request::ConsentSet { .. } => {
                    let Principal::User(user) = who else {
                        return socket.reply_error(Some(id), Error::Forbidden).await;
                    };
                    let reply = usage_request(socket, id, user, request).await;
                    socket.answer(id, reply).await
                }
                Request::PurchaseList {} => {
                    let Principal::User(user) = who else {
                        return socket.reply_error(Some(id), Error::Forbidden).await;
                    };
                    let reply = hub.billing.purchases(user).await.map(|purchases| {
                        let now = crate::model::time::now_ms();
                        let purchases = purchases.iter().map(|p| crate::protocol::purchase_view(p, now)).collect();
                        ServerFrame::PurchaseListOk { id, purchases }
                    });
                    socket.answer(id, reply).await
                }
                Request::PushRegister { registration } => {
                    let reply = match registration.into_model() {
                        Ok(request) => {
                            hub.push.register(who, session, request).await.map(|r| ServerFrame::PushRegisterOk {
                                id,
                                registration: crate::protocol::views::push_registration_view(&r),
                            })
                        }
                        Err(e) => Err(e),
                    };
                    socket.answer(id, reply).await
                }
                Request::PushUnregister {} => {
                    let reply = hub.push.unregister(session).await.map(|_| ServerFrame::Ok { id });
                    socket.answer(id, reply).await
                }
                Request::TicketSend { ticket_id, client_msg_id, body, attachments } => {
                    socket.pipeline_send(id, who, ticket_id, client_msg_id, body, attachments).await
                }
                ticket_request => ticket_commands::handle(socket, id, (who, session), ticket_request).await,
            }
        }
    }
}

/// Telemetry, settings and consent requests of a user.
async fn usage_request<S: Transport>(
    socket: &mut Socket<S>,
    id: RequestId,
    user: crate::model::ids::UserId,
    request: Request,
) -> crate::Result<ServerFrame> {
    let hub = socket.hub.clone();
    let telemetry = &hub.telemetry;
    match request {
        Request::TelemetryDevice { device } => {
            let device_id = socket.device()?;
            telemetry.report_device(user, device_id, device).await.map(|()| ServerFrame::Ok { id })
        }
        Request::TelemetryViews { events } => {
            let device_id = socket.device()?;
            telemetry.record_views(user, device_id, events).await.map(|()| ServerFrame::Ok { id })
        }
        Request::SettingsGet {} => telemetry
            .settings(user)
            .await
            .map(|(settings, updated_at)| ServerFrame::SettingsOk { id, settings, updated_at }),
        Request::SettingsPut { settings } => telemetry
            .put_settings(user, settings)
            .await
            .map(|(settings, at)| ServerFrame::SettingsOk { id, settings, updated_at: Some(at) }),
        Request::ConsentGet {} => telemetry
            .consent(user)
            .await
            .map(|c| ServerFrame::ConsentOk { id, consent: crate::protocol::consent_view(&c) }),
        Request::ConsentSet { analytics, personalisation, sms_reminders } => telemetry
            .set_consent(user, crate::model::telemetry::ConsentChange { analytics, personalisation, sms_reminders })
            .await
            .map(|c| ServerFrame::ConsentOk { id, consent: crate::protocol::consent_view(&c) }),
        _ => Err(Error::Internal("not a telemetry request".into())),
    }
}

async fn device_list(
    hub: &crate::gateway::services::Services,
    id: RequestId,
    user: crate::model::ids::UserId,
    current: Option<crate::model::ids::DeviceId>,
) -> crate::Result<ServerFrame> {
    let devices = hub
        .auth
        .devices(user)
        .await?
        .into_iter()
        .map(|(d, live)| DeviceView {
            current: Some(d.id) == current,
            id: d.id,
            name: d.name,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
            live_sessions: live,
        })
        .collect();
    Ok(ServerFrame::DeviceListOk { id, devices })
}

async fn authenticate<S: Transport>(socket: &mut Socket<S>, id: RequestId, token: &str) -> Result<(), Exit> {
    if socket.authed.is_some() {
        return socket.reply_error(Some(id), Error::AlreadyAuthenticated).await;
    }
    let hub = socket.hub.clone();
    match hub.sessions.authenticate(token).await {
        Ok(identity) => {
            // The socket is registered only once the reply is an `auth.ok`: a failure below (the
            // agent's record unavailable) leaves it unauthenticated, free to send `auth` again.
            let reply = match (identity.who, identity.device) {
                (Principal::User(user), Some(device)) => ServerFrame::AuthOk {
                    id,
                    user_id: user,
                    device_id: device,
                    session_expires_at: identity.expires_at,
                },
                (Principal::User(_), None) => return socket.reply_error(Some(id), Error::Unauthorized).await,
                (Principal::Agent(agent), _) => match hub.agents.agent(agent).await {
                    Ok(a) => ServerFrame::AuthAgentOk {
                        id,
                        agent: agent_view(&a, true),
                        session_expires_at: identity.expires_at,
                    },
                    Err(e) => return socket.reply_error(Some(id), e).await,
                },
            };
            socket.register(identity);
            if let (Principal::User(_), Some(device)) = (identity.who, identity.device) {
                socket.user_device(device);
            }
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
