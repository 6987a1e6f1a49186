//! Ticket requests: opening, listing, subscribing (resume), history, sending, the agents' state
//! changes, receipts and typing.

use crate::error::Error;
use crate::gateway::session::commands::Transport;
use crate::gateway::session::{Exit, Socket, MAX_SUBSCRIPTIONS};
use crate::model::ids::{Principal, SessionId, TicketId};
use crate::model::ticket::Page;
use crate::protocol::{event_view, ticket_view};
use crate::protocol::{Request, RequestId, ServerFrame};
use std::time::Duration;
use tokio::time::Instant;

/// Typing is relayed at most once per this interval per socket and ticket.
const TYPING_INTERVAL: Duration = Duration::from_secs(2);

/// Handles the ticket requests (everything [`super::commands::handle`] does not).
pub(super) async fn handle<S: Transport>(
    socket: &mut Socket<S>,
    id: RequestId,
    (who, session): (Principal, SessionId),
    request: Request,
) -> Result<(), Exit> {
    let desk = socket.hub.tickets.clone();
    let reply = match request {
        Request::TicketOpen { subject, body, attachments, client_msg_id } => desk
            .open(who, &subject, &body, &attachments, &client_msg_id)
            .await
            .map(|t| ServerFrame::TicketOpenOk { id, ticket: ticket_view(&t) }),
        Request::TicketList { status, mine, label_id } => {
            desk.list_labelled(who, status, mine, label_id).await.map(|(tickets, labels)| ServerFrame::TicketListOk {
                id,
                tickets: tickets.iter().map(ticket_view).collect(),
                labels: labels.map(|ls| ls.iter().map(crate::protocol::ticket_labels_view).collect()),
            })
        }
        Request::TicketSearch { query, status, agent_id, label_id, from, to, offset, limit } => {
            let request = crate::domain::tickets::search::SearchRequest {
                query,
                filters: crate::model::search::SearchFilters { status, agent: agent_id, label: label_id, from, to },
                offset: offset.unwrap_or(0),
                limit: limit.unwrap_or(20),
            };
            desk.search(who, &request).await.map(|(found, more)| ServerFrame::TicketSearchOk {
                id,
                results: found.into_iter().map(|f| crate::protocol::search_result_view(f.hit, f.snippet)).collect(),
                more,
            })
        }
        Request::LabelList {} => {
            desk.labels(who).await.map(|ls| ServerFrame::LabelListOk { id, labels: crate::protocol::label_views(&ls) })
        }
        Request::LabelCreate { name, color } => desk
            .create_label(who, &name, &color)
            .await
            .map(|ls| ServerFrame::LabelListOk { id, labels: crate::protocol::label_views(&ls) }),
        Request::LabelUpdate { label_id, name, color } => desk
            .update_label(who, label_id, name.as_deref(), color.as_deref())
            .await
            .map(|ls| ServerFrame::LabelListOk { id, labels: crate::protocol::label_views(&ls) }),
        Request::LabelDelete { label_id } => desk
            .delete_label(who, label_id)
            .await
            .map(|ls| ServerFrame::LabelListOk { id, labels: crate::protocol::label_views(&ls) }),
        Request::TicketLabel { ticket_id, label_id, on } => desk
            .label_ticket(who, ticket_id, label_id, on)
            .await
            .map(|l| ServerFrame::TicketLabelOk { id, labels: crate::protocol::ticket_labels_view(&l) }),
        Request::TicketSubscribe { ticket_id, after_seq } => {
            return subscribe(socket, id, (who, session), ticket_id, after_seq).await
        }
        Request::TicketUnsubscribe { ticket_id } => {
            socket.hub.registry.unsubscribe(ticket_id, socket.conn);
            socket.cursors.remove(&ticket_id);
            Ok(ServerFrame::Ok { id })
        }
        Request::TicketHistory { ticket_id, before_seq, after_seq, limit } => {
            let page = match (before_seq, after_seq) {
                (Some(b), _) => Page::Before(b),
                (None, a) => Page::After(a.unwrap_or(0)),
            };
            desk.history(who, ticket_id, page, limit.unwrap_or(50)).await.map(|(events, more)| {
                ServerFrame::TicketHistoryOk { id, ticket_id, events: events.iter().map(event_view).collect(), more }
            })
        }
        // Pipelined by the session (`Socket::pipeline_send`), never handed here.
        Request::TicketSend { .. } => Err(Error::Internal("ticket.send reached the ticket commands".into())),
        Request::TicketClaim { ticket_id } => {
            desk.claim(who, ticket_id).await.map(|t| ServerFrame::TicketUpdateOk { id, ticket: ticket_view(&t) })
        }
        Request::TicketTransfer { ticket_id, agent_id } => desk
            .transfer(who, ticket_id, agent_id)
            .await
            .map(|t| ServerFrame::TicketUpdateOk { id, ticket: ticket_view(&t) }),
        Request::TicketResolve { ticket_id } => {
            desk.resolve(who, ticket_id).await.map(|t| ServerFrame::TicketUpdateOk { id, ticket: ticket_view(&t) })
        }
        Request::TicketDelivered { ticket_id, seq } => {
            desk.mark(who, ticket_id, seq, 0).await.map(|_| ServerFrame::Ok { id })
        }
        Request::TicketRead { ticket_id, seq } => {
            desk.mark(who, ticket_id, seq, seq).await.map(|_| ServerFrame::Ok { id })
        }
        Request::TicketTyping { ticket_id } => {
            let now = Instant::now();
            let typing = socket.typing.get_or_insert_with(Box::default);
            let recent = typing.get(&ticket_id).is_some_and(|at| now.duration_since(*at) < TYPING_INTERVAL);
            if recent {
                Err(Error::RateLimited { retry_after: TYPING_INTERVAL })
            } else {
                if typing.len() >= MAX_SUBSCRIPTIONS {
                    typing.retain(|_, at| now.duration_since(*at) < TYPING_INTERVAL);
                }
                typing.insert(ticket_id, now);
                desk.typing(who, ticket_id).await.map(|()| ServerFrame::Ok { id })
            }
        }
        Request::QueueSubscribe {} => {
            if !matches!(who, Principal::Agent(_)) {
                return socket.reply_error(Some(id), Error::Forbidden).await;
            }
            // Watch first, then read: a change in between arrives as an event rather than being lost.
            socket.hub.registry.watch_queue(socket.connection(who, session));
            desk.queue_snapshot(who)
                .await
                .map(|tickets| ServerFrame::QueueSubscribeOk { id, tickets: tickets.iter().map(ticket_view).collect() })
        }
        other => Err(Error::Internal(format!("request {} reached the ticket handler", other.kind()))),
    };
    socket.answer(id, reply).await
}

/// Subscribes first, then sends what the client missed: an event committed meanwhile arrives both
/// from storage and live, and the socket's cursor drops the second copy.
async fn subscribe<S: Transport>(
    socket: &mut Socket<S>,
    id: RequestId,
    (who, session): (Principal, SessionId),
    ticket_id: TicketId,
    after_seq: u64,
) -> Result<(), Exit> {
    if !socket.cursors.contains_key(&ticket_id) && socket.cursors.len() >= MAX_SUBSCRIPTIONS {
        let e = Error::BadRequest(format!("a socket follows at most {MAX_SUBSCRIPTIONS} tickets"));
        return socket.reply_error(Some(id), e).await;
    }
    let desk = socket.hub.tickets.clone();
    let ticket = match desk.visible_ticket(who, ticket_id).await {
        Ok(t) => t,
        Err(e) => return socket.reply_error(Some(id), e).await,
    };
    if after_seq > ticket.last_seq {
        let e = Error::BadRequest("after_seq is beyond the ticket's last event".into());
        return socket.reply_error(Some(id), e).await;
    }
    socket.hub.registry.subscribe(ticket_id, socket.connection(who, session));
    socket.cursors.insert(ticket_id, after_seq);
    socket.send_events(ticket_id, after_seq, None).await?;
    let sent = socket.cursors.get(&ticket_id).copied().unwrap_or(after_seq);
    let mut view = ticket_view(&ticket);
    view.last_seq = view.last_seq.max(sent);
    let marks = match desk.marks(who, ticket_id).await {
        Ok(m) => m
            .into_iter()
            .map(|(author, m)| crate::protocol::MarkView {
                participant: crate::protocol::participant(author),
                delivered_seq: m.delivered_seq,
                read_seq: m.read_seq,
            })
            .collect(),
        Err(e) => return socket.reply_error(Some(id), e).await,
    };
    socket.send(&ServerFrame::TicketSubscribeOk { id, ticket: view, marks }).await
}
