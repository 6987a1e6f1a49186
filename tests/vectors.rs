//! The protocol's test vectors (`protocol/vectors.json`): every request type and every server frame
//! type in JSON and MessagePack, exactly as the hub's own encoders write them.
//!
//! Each vector must decode from both of its forms to one value and re-encode to the same JSON value
//! and the same MessagePack bytes; every type the frame enums know must have a vector (the list of
//! types is read from serde itself, so it cannot lag behind the enums); and PROTOCOL.md must name every
//! type, revoke reason, close code, error code (with the HTTP status the hub gives it), setting (with
//! its current default) and the fixed limits clients depend on.
//!
//! After a deliberate protocol change, add or change the samples in [`client_samples`] and
//! [`server_samples`] and regenerate the file:
//!
//! ```sh
//! UPDATE_VECTORS=1 cargo test --test vectors
//! ```

use anapars_hub::domain::sessions::token::looks_like_token;
use anapars_hub::domain::sessions::token::AGENT_TOKEN_PREFIX;
use anapars_hub::error::SizeUnit;
use anapars_hub::model::agent::AgentStatus;
use anapars_hub::model::attachment::{Dimensions, MediaType, MessageAttachment};
use anapars_hub::model::ids::{
    AgentId, AttachmentId, CannedReplyId, DeviceId, LabelId, NoteId, PurchaseId, TicketId, UserId,
};
use anapars_hub::model::purchase::{PurchaseKind, PurchaseStatus};
use anapars_hub::model::search::{Matched, SnippetPart};
use anapars_hub::model::ticket::{EventKind, TicketStatus};
use anapars_hub::protocol::errors::{ErrorCode, WireError};
use anapars_hub::protocol::views::{PushRegistrationRequest, PushRegistrationView, WebPushKeys};
use anapars_hub::protocol::CloseCode;
use anapars_hub::protocol::{
    self, AgentView, CannedReplyView, ConsentView, CustomerDeviceView, CustomerView, DeviceReport, DeviceView, Encoded,
    Encoding, EventView, LabelView, MarkView, NoteView, Participant, ProfileView, PurchaseView, RatingRequestView,
    RatingView, Request, RequestFrame, RevokeReason, SearchResultView, ServerFrame, TicketLabelsView, TicketView,
    ViewEventReport, ViewKind,
};
use anapars_hub::{Config, Error};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use uuid::Uuid;

/// The command that rewrites `protocol/vectors.json` from the samples below.
const REGENERATE: &str = "UPDATE_VECTORS=1 cargo test --test vectors";

// Fixed values, so that the file only changes when the protocol does.
const USER: Uuid = Uuid::from_u128(0x0194_f1a2_3b4c_7d5e_8f60_7182_a3b4_c5d6);
const DEVICE: Uuid = Uuid::from_u128(0x0194_f1a2_3b4c_7d5e_8f60_7182_a3b4_c5d7);
const OTHER_DEVICE: Uuid = Uuid::from_u128(0x0194_f1a2_3b4c_7d5e_8f60_7182_a3b4_c5db);
const AGENT: Uuid = Uuid::from_u128(0x0194_f1a2_3b4c_7d5e_8f60_7182_a3b4_c5d8);
const OTHER_AGENT: Uuid = Uuid::from_u128(0x0194_f1a2_3b4c_7d5e_8f60_7182_a3b4_c5d9);
const TICKET: Uuid = Uuid::from_u128(0x019b_76da_a800_7a1b_9c2d_3e4f_5a6b_7c8d);
const OLD_TICKET: Uuid = Uuid::from_u128(0x019a_d735_8400_7a1b_9c2d_3e4f_5a6b_7c8e);
const REPLY: Uuid = Uuid::from_u128(0x0194_f1a2_3b4c_7d5e_8f60_7182_a3b4_c5da);
const ATTACHMENT: Uuid = Uuid::from_u128(0x019b_76da_a800_7a1b_9c2d_3e4f_5a6b_7c92);
const OTHER_ATTACHMENT: Uuid = Uuid::from_u128(0x019b_76da_a800_7a1b_9c2d_3e4f_5a6b_7c93);
const LABEL: Uuid = Uuid::from_u128(0x019b_76da_a800_7a1b_9c2d_3e4f_5a6b_7c95);
const OTHER_LABEL: Uuid = Uuid::from_u128(0x019b_76da_a800_7a1b_9c2d_3e4f_5a6b_7c96);
const NOTE: Uuid = Uuid::from_u128(0x019b_76da_a800_7a1b_9c2d_3e4f_5a6b_7c94);
const PURCHASE: Uuid = Uuid::from_u128(0x019a_d735_8400_7a1b_9c2d_3e4f_5a6b_7c90);
const OTHER_PURCHASE: Uuid = Uuid::from_u128(0x019a_d735_8400_7a1b_9c2d_3e4f_5a6b_7c91);
/// 2026-01-01T00:00:00Z.
const NOW: i64 = 1_767_225_600_000;
/// 2025-12-01T00:00:00Z.
const REGISTERED: i64 = 1_764_547_200_000;
/// NOW + 30 days (the default session lifetime).
const EXPIRES: i64 = NOW + 30 * 86_400_000;
/// NOW + 12 hours (the default agent session lifetime).
const AGENT_EXPIRES: i64 = NOW + 12 * 3_600_000;
const TOKEN: &str = "Zk3nQ1v8x2LrT0aBcDeFgHiJkLmNoPqRsTuVwXyZ012";
const NEW_TOKEN: &str = "pW9-_r4sT6uV8wX0yZ2aB4cD6eF8gH0iJ2kL4mN6oP8";
const AGENT_TOKEN: &str = "agt_Qm7xR2kT9vB4nL6pW1cZ8yH3jF5dS0aE-gU_iO7tKe4";
/// The largest id a JavaScript client can hold exactly (2^53 - 1).
const MAX_SAFE_ID: u64 = (1 << 53) - 1;

/// One request of every type. The ids exercise every MessagePack integer width (fixint, uint8, uint16,
/// uint32, uint64); `request.ping` is the one PROTOCOL.md shows byte by byte.
fn client_samples() -> Vec<(&'static str, RequestFrame)> {
    let frame = |id, request| RequestFrame { id, request };
    let ticket_id = TicketId(TICKET);
    vec![
        ("request.auth", frame(1_000, Request::Auth { token: TOKEN.into() })),
        ("request.auth.agent", frame(1, Request::Auth { token: AGENT_TOKEN.into() })),
        ("request.me", frame(200, Request::Me {})),
        ("request.ping", frame(3, Request::Ping {})),
        ("request.session.refresh", frame(70_000, Request::SessionRefresh {})),
        ("request.session.sign_out", frame(MAX_SAFE_ID, Request::SessionSignOut {})),
        (
            "request.ticket.open",
            frame(
                10,
                Request::TicketOpen {
                    subject: "Payment failed".into(),
                    body: "My card was charged twice".into(),
                    attachments: Vec::new(),
                    client_msg_id: "7f3c2a10-open".into(),
                },
            ),
        ),
        ("request.ticket.list", frame(11, Request::TicketList { status: None, mine: false, label_id: None })),
        (
            "request.ticket.list.mine",
            frame(12, Request::TicketList { status: Some(TicketStatus::Assigned), mine: true, label_id: Some(LabelId(LABEL)) }),
        ),
        ("request.ticket.subscribe", frame(13, Request::TicketSubscribe { ticket_id, after_seq: 4 })),
        ("request.ticket.unsubscribe", frame(14, Request::TicketUnsubscribe { ticket_id })),
        (
            "request.ticket.history",
            frame(15, Request::TicketHistory { ticket_id, before_seq: Some(40), after_seq: None, limit: Some(20) }),
        ),
        (
            "request.ticket.send",
            frame(
                16,
                Request::TicketSend {
                    ticket_id,
                    client_msg_id: "7f3c2a10-0003".into(),
                    body: "It happened again today".into(),
                    attachments: Vec::new(),
                },
            ),
        ),
        (
            "request.ticket.send.attachments",
            frame(
                16,
                Request::TicketSend {
                    ticket_id,
                    client_msg_id: "7f3c2a10-0004".into(),
                    body: String::new(),
                    attachments: vec![AttachmentId(ATTACHMENT)],
                },
            ),
        ),
        ("request.ticket.claim", frame(17, Request::TicketClaim { ticket_id })),
        ("request.ticket.transfer", frame(18, Request::TicketTransfer { ticket_id, agent_id: AgentId(OTHER_AGENT) })),
        ("request.ticket.resolve", frame(19, Request::TicketResolve { ticket_id })),
        ("request.ticket.delivered", frame(20, Request::TicketDelivered { ticket_id, seq: 5 })),
        ("request.ticket.read", frame(21, Request::TicketRead { ticket_id, seq: 5 })),
        ("request.ticket.typing", frame(22, Request::TicketTyping { ticket_id })),
        ("request.queue.subscribe", frame(23, Request::QueueSubscribe {})),
        ("request.agent.status", frame(24, Request::AgentStatus { status: AgentStatus::Available, capacity: Some(5) })),
        ("request.agent.list", frame(25, Request::AgentList {})),
        ("request.canned.list", frame(26, Request::CannedList {})),
        (
            "request.canned.add",
            frame(27, Request::CannedAdd { title: "Refund".into(), body: "Your refund is on its way.".into() }),
        ),
        ("request.canned.delete", frame(28, Request::CannedDelete { reply_id: CannedReplyId(REPLY) })),
        (
            "request.note.add",
            frame(
                50,
                Request::NoteAdd {
                    ticket_id: TicketId(TICKET),
                    client_msg_id: "n-1".into(),
                    body: "Card blocked by the bank; @Reza please check the refund".into(),
                    mentions: vec![AgentId(OTHER_AGENT)],
                },
            ),
        ),
        (
            "request.note.list",
            frame(51, Request::NoteList { ticket_id: TicketId(TICKET), before_id: None, limit: Some(20) }),
        ),
        (
            "request.rating.submit",
            frame(
                60,
                Request::RatingSubmit {
                    ticket_id: TicketId(TICKET),
                    resolution_seq: 9,
                    score: 5,
                    comment: Some("خیلی سریع درست شد، ممنون".into()),
                },
            ),
        ),
        ("request.rating.pending", frame(61, Request::RatingPending {})),
        ("request.rating.list", frame(62, Request::RatingList { ticket_id: TicketId(TICKET) })),
        (
            "request.ticket.search",
            frame(
                57,
                Request::TicketSearch {
                    query: "كارت بانکی".into(),
                    status: None,
                    agent_id: None,
                    label_id: Some(LabelId(LABEL)),
                    from: Some(REGISTERED),
                    to: None,
                    offset: Some(0),
                    limit: Some(20),
                },
            ),
        ),
        ("request.label.list", frame(52, Request::LabelList {})),
        ("request.label.create", frame(53, Request::LabelCreate { name: "بازپرداخت".into(), color: "#1f7a8c".into() })),
        (
            "request.label.update",
            frame(54, Request::LabelUpdate { label_id: LabelId(LABEL), name: None, color: Some("#aa3300".into()) }),
        ),
        ("request.label.delete", frame(55, Request::LabelDelete { label_id: LabelId(OTHER_LABEL) })),
        (
            "request.ticket.label",
            frame(56, Request::TicketLabel { ticket_id: TicketId(TICKET), label_id: LabelId(LABEL), on: true }),
        ),
        ("request.profile.get", frame(30, Request::ProfileGet { user_id: UserId(USER) })),
        ("request.customer.get", frame(36, Request::CustomerGet { user_id: UserId(USER) })),
        (
            "request.profile.update",
            frame(31, Request::ProfileUpdate { name: Some(Some("Ali".into())), hide_last_seen: Some(true) }),
        ),
        // `name: null` removes the name; an absent `hide_last_seen` leaves it as it is.
        (
            "request.profile.update.clear_name",
            frame(32, Request::ProfileUpdate { name: Some(None), hide_last_seen: None }),
        ),
        ("request.agent.get", frame(33, Request::AgentGet { agent_id: AgentId(AGENT) })),
        ("request.device.list", frame(34, Request::DeviceList {})),
        ("request.device.sign_out", frame(35, Request::DeviceSignOut { device_id: DeviceId(OTHER_DEVICE) })),
        (
            "request.telemetry.device",
            frame(
                36,
                Request::TelemetryDevice {
                    device: DeviceReport {
                        os: "android".into(),
                        os_version: Some("14".into()),
                        model: Some("Pixel 8".into()),
                        manufacturer: Some("Google".into()),
                        memory_mb: Some(8192),
                        screen_width: Some(1080),
                        screen_height: Some(2400),
                        app_version: Some("3.2.1".into()),
                        locale: Some("fa-IR".into()),
                    },
                },
            ),
        ),
        // Only `os` is required.
        (
            "request.telemetry.device.minimal",
            frame(37, Request::TelemetryDevice { device: DeviceReport { os: "web".into(), ..Default::default() } }),
        ),
        (
            "request.telemetry.views",
            frame(
                38,
                Request::TelemetryViews {
                    events: vec![
                        ViewEventReport {
                            kind: ViewKind::Screen,
                            screen: "tickets".into(),
                            target: None,
                            at: NOW - 5_000,
                            duration_ms: Some(4_200),
                        },
                        ViewEventReport {
                            kind: ViewKind::Action,
                            screen: "tickets".into(),
                            target: Some("new_ticket".into()),
                            at: NOW - 800,
                            duration_ms: None,
                        },
                    ],
                },
            ),
        ),
        ("request.settings.get", frame(39, Request::SettingsGet {})),
        ("request.settings.put", frame(40, Request::SettingsPut { settings: settings_doc() })),
        ("request.consent.get", frame(41, Request::ConsentGet {})),
        ("request.consent.set", frame(42, Request::ConsentSet {
                analytics: Some(false),
                personalisation: None,
                sms_reminders: Some(true),
            },
        )),
        ("request.purchase.list", frame(43, Request::PurchaseList {})),
        (
            // A browser's or UnifiedPush distributor's subscription, as PushSubscription.toJSON() gives it.
            "request.push.register.webpush",
            frame(
                44,
                Request::PushRegister {
                    registration: PushRegistrationRequest {
                        provider: "webpush".into(),
                        token: None,
                        environment: None,
                        endpoint: Some("https://ntfy.anapars.ir/up7Xk2bQ9nL3".into()),
                        keys: Some(WebPushKeys {
                            p256dh: "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
                                .into(),
                            auth: "tBHItJI5svbpez7KI4CCXg".into(),
                        }),
                        preview: false,
                        language: Some("fa".into()),
                    },
                },
            ),
        ),
        (
            "request.push.register.apns",
            frame(
                45,
                Request::PushRegister {
                    registration: PushRegistrationRequest {
                        provider: "apns".into(),
                        token: Some("5b1c0d8e9f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4".into()),
                        environment: Some("production".into()),
                        endpoint: None,
                        keys: None,
                        preview: true,
                        language: None,
                    },
                },
            ),
        ),
        ("request.push.unregister", frame(46, Request::PushUnregister {})),
    ]
}

/// A subscription bought at REGISTERED for 30 days; `status` and `active` as given.
fn subscription(status: PurchaseStatus, active: bool) -> PurchaseView {
    PurchaseView {
        id: PurchaseId(PURCHASE),
        reference: "inv-2025-12-000123".into(),
        product: "anapars-pro".into(),
        kind: PurchaseKind::Subscription,
        amount_minor: 4_900_000,
        currency: "IRR".into(),
        purchased_at: REGISTERED,
        expires_at: Some(REGISTERED + 60 * 86_400_000),
        status,
        active,
    }
}

/// A permanent activation (no expiry).
fn activation() -> PurchaseView {
    PurchaseView {
        id: PurchaseId(OTHER_PURCHASE),
        reference: "inv-2025-11-000042".into(),
        product: "anapars-desktop".into(),
        kind: PurchaseKind::Activation,
        amount_minor: 12_000_000,
        currency: "IRR".into(),
        purchased_at: REGISTERED - 86_400_000,
        expires_at: None,
        status: PurchaseStatus::Paid,
        active: true,
    }
}

/// A small settings document.
fn settings_doc() -> protocol::frames::SettingsDocument {
    match json!({"theme": "dark", "notifications": {"sound": false, "quiet_hours": [22, 7]}, "font_scale": 1.2}) {
        Value::Object(map) => map,
        _ => unreachable!("an object literal"),
    }
}

/// The team's labels: a Persian one and a Latin one.
fn labels() -> Vec<LabelView> {
    vec![
        LabelView { id: LabelId(LABEL), name: "بازپرداخت".into(), color: "#1f7a8c".into() },
        LabelView { id: LabelId(OTHER_LABEL), name: "card".into(), color: "#aa3300".into() },
    ]
}

/// The ticket with the refund label.
fn ticket_labels() -> TicketLabelsView {
    TicketLabelsView { ticket_id: TicketId(TICKET), label_ids: vec![LabelId(LABEL)] }
}

/// Sara's note on the ticket, naming Reza.
fn note() -> NoteView {
    NoteView {
        id: NoteId(NOTE),
        ticket_id: TicketId(TICKET),
        agent_id: AgentId(AGENT),
        body: "Card blocked by the bank; @Reza please check the refund".into(),
        mentions: vec![AgentId(OTHER_AGENT)],
        client_msg_id: "n-1".into(),
        at: NOW,
    }
}

/// The user's five-star rating of the ticket's resolution at seq 9, by Sara.
fn rating() -> RatingView {
    RatingView {
        ticket_id: TicketId(TICKET),
        resolution_seq: 9,
        agent_id: Some(AgentId(AGENT)),
        score: 5,
        comment: Some("خیلی سریع درست شد، ممنون".into()),
        rated_at: NOW,
    }
}

/// The request to rate that resolution, a week after it.
fn rating_request() -> RatingRequestView {
    RatingRequestView { ticket_id: TicketId(TICKET), resolution_seq: 9, expires_at: NOW + 7 * 24 * 3600 * 1000 }
}

/// Consent after analytics was turned off and SMS reminders on at NOW; personalisation never set.
fn consent() -> ConsentView {
    ConsentView {
        analytics: false,
        analytics_changed_at: Some(NOW),
        personalisation: true,
        personalisation_changed_at: None,
        sms_reminders: true,
        sms_reminders_changed_at: Some(NOW),
    }
}

fn user() -> Participant {
    Participant::User(UserId(USER))
}

fn agent() -> Participant {
    Participant::Agent(AgentId(AGENT))
}

fn agent_view(status: AgentStatus, capacity: u32) -> AgentView {
    AgentView { id: AgentId(AGENT), name: "Sara".into(), status, capacity, online: true, supervisor: false }
}

/// The sample ticket: opened at NOW, in `status`, its last event `last_seq`, updated a minute per event.
fn ticket(status: TicketStatus, agent_id: Option<Uuid>, last_seq: u64) -> TicketView {
    TicketView {
        id: TicketId(TICKET),
        user_id: UserId(USER),
        subject: "Payment failed".into(),
        status,
        agent_id: agent_id.map(AgentId),
        created_at: NOW,
        updated_at: NOW + (last_seq as i64 - 2) * 60_000,
        queued_at: (status == TicketStatus::Open).then_some(NOW),
        last_seq,
    }
}

fn profile(online: bool) -> ProfileView {
    ProfileView {
        user_id: UserId(USER),
        name: Some("Ali".into()),
        image: Some("/v1/media/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.jpg".into()),
        online,
        last_seen_at: (!online).then_some(NOW - 3_600_000),
    }
}

fn event(seq: u64, kind: EventKind, author: Participant) -> EventView {
    EventView {
        ticket_id: TicketId(TICKET),
        seq,
        kind,
        author,
        body: None,
        client_msg_id: None,
        agent_id: None,
        attachments: Vec::new(),
        at: NOW + (seq as i64 - 2).max(0) * 60_000,
    }
}

fn message(seq: u64, author: Participant, client_msg_id: &str, body: &str) -> EventView {
    EventView {
        body: Some(body.into()),
        client_msg_id: Some(client_msg_id.into()),
        ..event(seq, EventKind::Message, author)
    }
}

/// One frame of every server type (several for `ticket.event`, one per kind of author and event
/// shape), and errors with and without `id` and `retry_after_ms`.
fn server_samples() -> Vec<(&'static str, ServerFrame)> {
    let ticket_id = TicketId(TICKET);
    let opened = EventView { body: Some("Payment failed".into()), ..event(1, EventKind::Opened, user()) };
    let first = message(2, user(), "7f3c2a10-open", "My card was charged twice");
    let resolved_earlier = TicketView {
        id: TicketId(OLD_TICKET),
        subject: "Cannot sign in".into(),
        created_at: REGISTERED,
        updated_at: REGISTERED + 3_600_000,
        ..ticket(TicketStatus::Resolved, Some(OTHER_AGENT), 6)
    };
    vec![
        (
            "reply.auth.ok",
            ServerFrame::AuthOk {
                id: 1_000,
                user_id: UserId(USER),
                device_id: DeviceId(DEVICE),
                session_expires_at: EXPIRES,
            },
        ),
        (
            "reply.auth.agent.ok",
            ServerFrame::AuthAgentOk {
                id: 1,
                agent: agent_view(AgentStatus::Away, 3),
                session_expires_at: AGENT_EXPIRES,
            },
        ),
        (
            "reply.me.ok",
            ServerFrame::MeOk {
                id: 200,
                user_id: UserId(USER),
                phone: "+989121234567".into(),
                registered_at: REGISTERED,
            },
        ),
        ("reply.ping.ok", ServerFrame::PingOk { id: 3, server_time: NOW }),
        (
            "reply.session.refresh.ok",
            ServerFrame::SessionRefreshOk { id: 70_000, token: NEW_TOKEN.into(), expires_at: EXPIRES },
        ),
        ("reply.session.sign_out.ok", ServerFrame::SessionSignOutOk { id: MAX_SAFE_ID }),
        ("reply.ticket.open.ok", ServerFrame::TicketOpenOk { id: 10, ticket: ticket(TicketStatus::Open, None, 2) }),
        (
            "reply.ticket.list.ok",
            ServerFrame::TicketListOk {
                id: 11,
                tickets: vec![ticket(TicketStatus::Assigned, Some(AGENT), 5), resolved_earlier.clone()],
                labels: None,
            },
        ),
        (
            // An agent's list: the labels of the tickets that have any.
            "reply.ticket.list.ok.agent",
            ServerFrame::TicketListOk {
                id: 12,
                tickets: vec![ticket(TicketStatus::Assigned, Some(AGENT), 5)],
                labels: Some(vec![ticket_labels()]),
            },
        ),
        ("reply.label.list.ok", ServerFrame::LabelListOk { id: 52, labels: labels() }),
        (
            "reply.ticket.search.ok",
            ServerFrame::TicketSearchOk {
                id: 57,
                results: vec![SearchResultView {
                    ticket: ticket(TicketStatus::Assigned, Some(AGENT), 5),
                    seq: 2,
                    at: NOW,
                    snippet: vec![
                        SnippetPart { text: "سلام، ".into(), matched: false },
                        SnippetPart { text: "کارتم".into(), matched: true },
                        SnippetPart { text: " دو بار شارژ شد".into(), matched: false },
                    ],
                    matched: Matched::Text,
                }],
                more: false,
            },
        ),
        ("reply.ticket.label.ok", ServerFrame::TicketLabelOk { id: 56, labels: ticket_labels() }),
        (
            "reply.ticket.subscribe.ok",
            ServerFrame::TicketSubscribeOk {
                id: 13,
                ticket: ticket(TicketStatus::Assigned, Some(AGENT), 5),
                marks: vec![MarkView { participant: Participant::User(UserId(USER)), delivered_seq: 5, read_seq: 4 }],
            },
        ),
        (
            "reply.ticket.history.ok",
            ServerFrame::TicketHistoryOk {
                id: 15,
                ticket_id,
                events: vec![opened.clone(), first.clone()],
                more: false,
            },
        ),
        ("reply.ticket.send.ok", ServerFrame::TicketSendOk { id: 16, ticket_id, seq: 6, duplicate: false }),
        // The same `client_msg_id` sent again after a lost ack: stored once, the original seq.
        ("reply.ticket.send.ok.duplicate", ServerFrame::TicketSendOk { id: 29, ticket_id, seq: 6, duplicate: true }),
        (
            "reply.ticket.update.ok",
            ServerFrame::TicketUpdateOk { id: 17, ticket: ticket(TicketStatus::Assigned, Some(AGENT), 3) },
        ),
        (
            "reply.queue.subscribe.ok",
            ServerFrame::QueueSubscribeOk { id: 23, tickets: vec![ticket(TicketStatus::Open, None, 2)] },
        ),
        ("reply.agent.status.ok", ServerFrame::AgentStatusOk { id: 24, agent: agent_view(AgentStatus::Available, 5) }),
        (
            "reply.agent.list.ok",
            ServerFrame::AgentListOk {
                id: 25,
                agents: vec![
                    agent_view(AgentStatus::Available, 5),
                    AgentView {
                        id: AgentId(OTHER_AGENT),
                        name: "Reza".into(),
                        status: AgentStatus::Busy,
                        capacity: 3,
                        online: false,
                        supervisor: true,
                    },
                ],
            },
        ),
        ("reply.rating.submit.ok", ServerFrame::RatingSubmitOk { id: 60, rating: rating() }),
        ("reply.rating.pending.ok", ServerFrame::RatingPendingOk { id: 61, requests: vec![rating_request()] }),
        (
            "reply.rating.list.ok",
            ServerFrame::RatingListOk { id: 62, ticket_id: TicketId(TICKET), ratings: vec![rating()] },
        ),
        ("event.rating.request", ServerFrame::RatingRequest { request: rating_request() }),
        ("event.ticket.rated", ServerFrame::TicketRated { rating: rating() }),
        ("reply.note.add.ok", ServerFrame::NoteAddOk { id: 50, note: note() }),
        (
            "reply.note.list.ok",
            ServerFrame::NoteListOk { id: 51, ticket_id: TicketId(TICKET), notes: vec![note()], more: false },
        ),
        (
            "reply.canned.list.ok",
            ServerFrame::CannedListOk {
                id: 27,
                replies: vec![CannedReplyView {
                    id: CannedReplyId(REPLY),
                    title: "Refund".into(),
                    body: "Your refund is on its way.".into(),
                }],
            },
        ),
        ("reply.ok", ServerFrame::Ok { id: 20 }),
        ("reply.profile.ok", ServerFrame::ProfileOk { id: 30, profile: profile(true) }),
        (
            "reply.customer.get.ok",
            ServerFrame::CustomerGetOk {
                id: 36,
                customer: Box::new(CustomerView {
                    profile: profile(false),
                    device: Some(CustomerDeviceView {
                        os: "android".into(),
                        os_version: Some("14".into()),
                        model: Some("Pixel 8".into()),
                        manufacturer: Some("Google".into()),
                        app_version: Some("3.2.1".into()),
                        locale: Some("fa-IR".into()),
                        reported_at: NOW - 86_400_000,
                    }),
                    tickets: vec![ticket(TicketStatus::Assigned, Some(AGENT), 3), resolved_earlier],
                }),
            },
        ),
        (
            "reply.customer.get.ok.no_device",
            ServerFrame::CustomerGetOk {
                id: 37,
                customer: Box::new(CustomerView {
                    profile: profile(true),
                    device: None,
                    tickets: vec![ticket(TicketStatus::Open, None, 2)],
                }),
            },
        ),
        ("reply.agent.get.ok", ServerFrame::AgentGetOk { id: 33, agent: agent_view(AgentStatus::Busy, 5) }),
        (
            "reply.device.list.ok",
            ServerFrame::DeviceListOk {
                id: 34,
                devices: vec![
                    DeviceView {
                        id: DeviceId(DEVICE),
                        name: "Pixel 8".into(),
                        created_at: REGISTERED,
                        last_seen_at: NOW,
                        live_sessions: 1,
                        current: true,
                    },
                    DeviceView {
                        id: DeviceId(OTHER_DEVICE),
                        name: "Laptop".into(),
                        created_at: REGISTERED,
                        last_seen_at: REGISTERED,
                        live_sessions: 0,
                        current: false,
                    },
                ],
            },
        ),
        ("error.unauthenticated", ServerFrame::error(Some(200), &Error::Unauthenticated)),
        ("error.unknown_type", ServerFrame::error(Some(4), &Error::UnknownType)),
        (
            "error.bad_request.unreadable_id",
            ServerFrame::error(None, &Error::BadRequest("frame is not a json map".into())),
        ),
        (
            // What a socket over its frame rate gets for a frame without a readable id: 1 / max_frames_per_sec.
            "error.rate_limited.flood",
            ServerFrame::error(None, &Error::RateLimited { retry_after: Duration::from_millis(20) }),
        ),
        (
            // A second `ticket.typing` for the same ticket within 2 s.
            "error.rate_limited.typing",
            ServerFrame::error(Some(22), &Error::RateLimited { retry_after: Duration::from_millis(2_000) }),
        ),
        ("error.wrong_state", ServerFrame::error(Some(17), &Error::WrongState("the ticket is already assigned"))),
        (
            "error.overloaded",
            ServerFrame::error(Some(16), &Error::Overloaded { retry_after: Duration::from_millis(200) }),
        ),
        ("event.session.expiring", ServerFrame::SessionExpiring { expires_at: EXPIRES }),
        ("event.session.expired", ServerFrame::SessionExpired {}),
        ("event.session.revoked", ServerFrame::SessionRevoked { reason: RevokeReason::SignedOut }),
        ("event.session.revoked.agent_disabled", ServerFrame::SessionRevoked { reason: RevokeReason::AgentDisabled }),
        ("event.ticket.event.opened", ServerFrame::TicketEvent { event: opened }),
        ("event.ticket.event.message", ServerFrame::TicketEvent { event: first }),
        (
            // Auto-assignment: the hub is the author, `agent_id` the agent who got the ticket.
            "event.ticket.event.claimed.system",
            ServerFrame::TicketEvent {
                event: EventView {
                    agent_id: Some(AgentId(AGENT)),
                    ..event(3, EventKind::Claimed, Participant::System)
                },
            },
        ),
        (
            // A message of a picture and a PDF, without text.
            "event.ticket.event.message.attachments",
            ServerFrame::TicketEvent {
                event: EventView {
                    attachments: [
                        MessageAttachment {
                            id: AttachmentId(ATTACHMENT),
                            media_type: MediaType::Jpeg,
                            size: 183_412,
                            name: "رسید بانک.jpg".into(),
                            dimensions: Some(Dimensions { width: 1080, height: 1920 }),
                        },
                        MessageAttachment {
                            id: AttachmentId(OTHER_ATTACHMENT),
                            media_type: MediaType::Pdf,
                            size: 52_004,
                            name: "statement.pdf".into(),
                            dimensions: None,
                        },
                    ]
                    .iter()
                    .map(protocol::message_attachment_view)
                    .collect(),
                    ..message(3, user(), "7f3c2a10-0004", "")
                },
            },
        ),
        (
            "event.ticket.event.message.agent",
            ServerFrame::TicketEvent { event: message(4, agent(), "c0ffee-1", "Sorry about that, refunding now") },
        ),
        (
            "event.ticket.event.transferred",
            ServerFrame::TicketEvent {
                event: EventView { agent_id: Some(AgentId(OTHER_AGENT)), ..event(7, EventKind::Transferred, agent()) },
            },
        ),
        ("event.ticket.updated", ServerFrame::TicketUpdated { ticket: ticket(TicketStatus::Assigned, Some(AGENT), 5) }),
        (
            "event.ticket.receipt",
            ServerFrame::TicketReceipt { ticket_id, participant: user(), delivered_seq: 5, read_seq: 4 },
        ),
        ("event.ticket.typing", ServerFrame::TicketTyping { ticket_id, participant: agent() }),
        ("event.ticket.deleted", ServerFrame::TicketDeleted { ticket_id }),
        ("event.ticket.note", ServerFrame::TicketNote { note: note() }),
        ("event.labels.updated", ServerFrame::LabelsUpdated { labels: labels() }),
        ("event.ticket.labels", ServerFrame::TicketLabels { labels: ticket_labels() }),
        ("event.ticket.queue", ServerFrame::TicketQueue { ticket_id, position: 3, estimated_wait_ms: Some(270_000) }),
        // Offline, last seen an hour ago (absent while online, or when the user hides it).
        ("event.profile.updated", ServerFrame::ProfileUpdated { profile: profile(false) }),
        ("reply.settings.ok", ServerFrame::SettingsOk { id: 40, settings: settings_doc(), updated_at: Some(NOW) }),
        // Nothing stored yet.
        ("reply.settings.ok.empty", ServerFrame::SettingsOk { id: 39, settings: Default::default(), updated_at: None }),
        ("reply.consent.ok", ServerFrame::ConsentOk { id: 42, consent: consent() }),
        ("event.settings.updated", ServerFrame::SettingsUpdated { settings: settings_doc(), updated_at: NOW }),
        ("event.consent.updated", ServerFrame::ConsentUpdated { consent: consent() }),
        (
            "reply.push.register.ok",
            ServerFrame::PushRegisterOk {
                id: 44,
                registration: PushRegistrationView {
                    provider: "webpush".into(),
                    preview: false,
                    language: "fa".into(),
                    updated_at: NOW,
                },
            },
        ),
        (
            "reply.purchase.list.ok",
            ServerFrame::PurchaseListOk {
                id: 43,
                purchases: vec![subscription(PurchaseStatus::Paid, true), activation()],
            },
        ),
        // Refunded: no longer active, whatever its expiry.
        (
            "event.purchase.updated",
            ServerFrame::PurchaseUpdated { purchase: subscription(PurchaseStatus::Refunded, false) },
        ),
        (
            "error.consent_required",
            ServerFrame::error(Some(38), &Error::ConsentRequired("analytics is off: view events are not collected")),
        ),
        (
            "error.overloaded.telemetry",
            ServerFrame::error(Some(38), &Error::Overloaded { retry_after: Duration::from_secs(1) }),
        ),
        ("event.presence.online", ServerFrame::Presence { participant: agent(), online: true, last_seen_at: None }),
        (
            "event.presence.offline",
            ServerFrame::Presence { participant: user(), online: false, last_seen_at: Some(NOW - 3_600_000) },
        ),
        (
            "event.session.revoked.signed_in_elsewhere",
            ServerFrame::SessionRevoked { reason: RevokeReason::SignedInElsewhere },
        ),
        ("event.session.revoked.replaced", ServerFrame::SessionRevoked { reason: RevokeReason::Replaced }),
        (
            "event.announcement",
            ServerFrame::Announcement {
                announcement_id: uuid::Uuid::parse_str("019a6f2e-4b00-7c3d-9e1f-2a3b4c5d6e7f").unwrap(),
                text: "Maintenance tonight from 23:00 to 23:30 (Tehran time).".into(),
                sent_at: 1_764_000_000_000,
            },
        ),
        (
            // Fewer than three claims seen since the hub started: no estimate, and the field is null.
            "event.ticket.queue.no_estimate",
            ServerFrame::TicketQueue { ticket_id, position: 1, estimated_wait_ms: None },
        ),
    ]
}

/// Slot of each request variant. A new variant fails to compile here: give it the next slot, raise
/// [`REQUEST_SLOTS`] and add a sample to [`client_samples`] (the coverage test fails until a vector
/// decodes to it).
fn request_slot(request: &Request) -> usize {
    match request {
        Request::Auth { .. } => 0,
        Request::Ping {} => 1,
        Request::SessionRefresh {} => 2,
        Request::SessionSignOut {} => 3,
        Request::Me {} => 4,
        Request::TicketOpen { .. } => 5,
        Request::TicketList { .. } => 6,
        Request::TicketSubscribe { .. } => 7,
        Request::TicketUnsubscribe { .. } => 8,
        Request::TicketHistory { .. } => 9,
        Request::TicketSend { .. } => 10,
        Request::TicketClaim { .. } => 11,
        Request::TicketTransfer { .. } => 12,
        Request::TicketResolve { .. } => 13,
        Request::TicketDelivered { .. } => 14,
        Request::TicketRead { .. } => 15,
        Request::TicketTyping { .. } => 16,
        Request::QueueSubscribe {} => 17,
        Request::AgentStatus { .. } => 18,
        Request::AgentList {} => 19,
        Request::CannedList {} => 20,
        Request::CannedAdd { .. } => 21,
        Request::CannedDelete { .. } => 22,
        Request::ProfileGet { .. } => 23,
        Request::ProfileUpdate { .. } => 24,
        Request::AgentGet { .. } => 25,
        Request::DeviceList {} => 26,
        Request::DeviceSignOut { .. } => 27,
        Request::TelemetryDevice { .. } => 28,
        Request::TelemetryViews { .. } => 29,
        Request::SettingsGet {} => 30,
        Request::SettingsPut { .. } => 31,
        Request::ConsentGet {} => 32,
        Request::ConsentSet { .. } => 33,
        Request::PurchaseList {} => 34,
        Request::CustomerGet { .. } => 35,
        Request::PushRegister { .. } => 36,
        Request::PushUnregister {} => 37,
        Request::NoteAdd { .. } => 38,
        Request::NoteList { .. } => 39,
        Request::LabelList {} => 40,
        Request::LabelCreate { .. } => 41,
        Request::LabelUpdate { .. } => 42,
        Request::LabelDelete { .. } => 43,
        Request::TicketLabel { .. } => 44,
        Request::TicketSearch { .. } => 45,
        Request::RatingSubmit { .. } => 46,
        Request::RatingPending {} => 47,
        Request::RatingList { .. } => 48,
    }
}
const REQUEST_SLOTS: usize = 49;

/// Slot of each server frame variant; as [`request_slot`], for [`server_samples`].
fn server_slot(frame: &ServerFrame) -> usize {
    match frame {
        ServerFrame::AuthOk { .. } => 0,
        ServerFrame::PingOk { .. } => 1,
        ServerFrame::SessionRefreshOk { .. } => 2,
        ServerFrame::SessionSignOutOk { .. } => 3,
        ServerFrame::MeOk { .. } => 4,
        ServerFrame::Error { .. } => 5,
        ServerFrame::SessionExpiring { .. } => 6,
        ServerFrame::SessionExpired {} => 7,
        ServerFrame::SessionRevoked { .. } => 8,
        ServerFrame::AuthAgentOk { .. } => 9,
        ServerFrame::TicketOpenOk { .. } => 10,
        ServerFrame::TicketListOk { .. } => 11,
        ServerFrame::TicketSubscribeOk { .. } => 12,
        ServerFrame::TicketHistoryOk { .. } => 13,
        ServerFrame::TicketSendOk { .. } => 14,
        ServerFrame::TicketUpdateOk { .. } => 15,
        ServerFrame::QueueSubscribeOk { .. } => 16,
        ServerFrame::AgentStatusOk { .. } => 17,
        ServerFrame::AgentListOk { .. } => 18,
        ServerFrame::CannedListOk { .. } => 19,
        ServerFrame::Ok { .. } => 20,
        ServerFrame::TicketEvent { .. } => 21,
        ServerFrame::TicketUpdated { .. } => 22,
        ServerFrame::TicketReceipt { .. } => 23,
        ServerFrame::TicketTyping { .. } => 24,
        ServerFrame::TicketQueue { .. } => 25,
        ServerFrame::ProfileOk { .. } => 26,
        ServerFrame::AgentGetOk { .. } => 27,
        ServerFrame::DeviceListOk { .. } => 28,
        ServerFrame::ProfileUpdated { .. } => 29,
        ServerFrame::Presence { .. } => 30,
        ServerFrame::Announcement { .. } => 31,
        ServerFrame::SettingsOk { .. } => 32,
        ServerFrame::ConsentOk { .. } => 33,
        ServerFrame::SettingsUpdated { .. } => 34,
        ServerFrame::ConsentUpdated { .. } => 35,
        ServerFrame::TicketDeleted { .. } => 36,
        ServerFrame::PurchaseListOk { .. } => 37,
        ServerFrame::PurchaseUpdated { .. } => 38,
        ServerFrame::CustomerGetOk { .. } => 39,
        ServerFrame::PushRegisterOk { .. } => 40,
        ServerFrame::NoteAddOk { .. } => 41,
        ServerFrame::NoteListOk { .. } => 42,
        ServerFrame::TicketNote { .. } => 43,
        ServerFrame::LabelListOk { .. } => 44,
        ServerFrame::TicketLabelOk { .. } => 45,
        ServerFrame::LabelsUpdated { .. } => 46,
        ServerFrame::TicketLabels { .. } => 47,
        ServerFrame::TicketSearchOk { .. } => 48,
        ServerFrame::RatingSubmitOk { .. } => 49,
        ServerFrame::RatingPendingOk { .. } => 50,
        ServerFrame::RatingListOk { .. } => 51,
        ServerFrame::RatingRequest { .. } => 52,
        ServerFrame::TicketRated { .. } => 53,
    }
}
const SERVER_SLOTS: usize = 54;

/// Every close code the hub sends. A new one fails to compile in the `match`: list it here and in
/// PROTOCOL.md.
fn close_codes() -> Vec<CloseCode> {
    use CloseCode::*;
    let all = vec![
        Normal,
        InvalidPayload,
        MessageTooBig,
        InternalError,
        ServiceRestart,
        AuthTimeout,
        AuthFailed,
        SessionRevoked,
        SessionExpired,
        SlowConsumer,
        Flood,
        ProtocolAbuse,
        PingTimeout,
    ];
    let mut seen = [false; 13];
    for code in &all {
        let slot = match code {
            Normal => 0,
            InvalidPayload => 1,
            MessageTooBig => 2,
            InternalError => 3,
            ServiceRestart => 4,
            AuthTimeout => 5,
            AuthFailed => 6,
            SessionRevoked => 7,
            SessionExpired => 8,
            SlowConsumer => 9,
            Flood => 10,
            ProtocolAbuse => 11,
            PingTimeout => 12,
        };
        seen[slot] = true;
    }
    assert!(seen.iter().all(|s| *s), "close_codes() lists every variant of the match");
    all
}

/// Config fields that are protocol limits or sign-in rules: PROTOCOL.md has a table row for each,
/// with its current default.
const DOCUMENTED_SETTINGS: &[&str] = &[
    "max_message_bytes",
    "max_frame_hard_bytes",
    "max_frames_per_sec",
    "frame_burst",
    "max_bad_frames_per_min",
    "upgrade_timeout_ms",
    "auth_timeout_ms",
    "ping_interval_ms",
    "pong_timeout_ms",
    "write_timeout_ms",
    "outbound_queue_bytes",
    "max_connections",
    "session_ttl_secs",
    "max_devices",
    "code_ttl_secs",
    "code_max_attempts",
    "code_resend_secs",
    "codes_per_number_10min",
    "codes_per_number_day",
    "codes_per_ip_hour",
    "lockout_after_failures",
    "lockout_base_secs",
    "sms_budget_per_hour",
    "phone_countries",
    "phone_default_region",
    "test_phone_prefix",
    "test_code",
    "trusted_proxies",
    "allowed_origins",
    "shutdown_grace_ms",
    "sms",
    "sms_timeout_ms",
    "sms_retries",
    "sms_language",
    "sms_template_sign_in_fa",
    "sms_template_sign_in_en",
    "sms_template_phone_change_fa",
    "sms_template_phone_change_en",
    "sms_origin",
    "sms_app_hash",
    "agent_session_ttl_secs",
    "max_body_chars",
    "auto_assign",
    "message_queue",
    "message_batch",
    "telemetry_queue",
    "telemetry_batch",
    "view_retention_secs",
    "device_history_retention_secs",
    "connection_retention_secs",
    "telemetry_purge_interval_ms",
    "settings_max_bytes",
    "consent_analytics_default",
    "consent_personalisation_default",
    "db_timeout_ms",
    "billing_secret",
    "billing_tolerance_secs",
    "attachment_max_bytes",
    "attachments_per_message",
    "attachment_bytes_per_day",
    "uploads_in_progress",
    "upload_expiry_secs",
    "attachment_max_pixels",
    "upload_buffer_bytes",
    "push_collapse_ms",
    "push_give_up_secs",
    "push_timeout_ms",
    "sms_reminder_after_secs",
    "sms_reminder_period_secs",
    "sms_reminders_per_hour",
    "vapid_subject",
    "webpush_allow_http",
    "fcm_service_account_file",
    "fcm_url",
    "apns_key_file",
    "apns_key_id",
    "apns_team_id",
    "apns_topic",
    "apns_url",
    "apns_sandbox_url",
    "push_ca_file",
];

/// One error of each code, to read its HTTP status from the hub itself. A new code fails to compile
/// here: add it, and its row to PROTOCOL.md's error table.
fn error_of(code: ErrorCode) -> Error {
    let wait = Duration::from_secs(1);
    match code {
        ErrorCode::BadRequest => Error::BadRequest(String::new()),
        ErrorCode::UnknownType => Error::UnknownType,
        ErrorCode::TooLarge => Error::TooLarge { what: "frame", size: Some(2), limit: 1, unit: SizeUnit::Bytes },
        ErrorCode::InvalidUtf8 => Error::InvalidUtf8,
        ErrorCode::Unauthenticated => Error::Unauthenticated,
        ErrorCode::Unauthorized => Error::Unauthorized,
        ErrorCode::AlreadyAuthenticated => Error::AlreadyAuthenticated,
        ErrorCode::RateLimited => Error::RateLimited { retry_after: wait },
        ErrorCode::InvalidPhone => Error::InvalidPhone(""),
        ErrorCode::CountryNotAllowed => Error::CountryNotAllowed,
        ErrorCode::CodeExpired => Error::CodeExpired,
        ErrorCode::CodeInvalid => Error::CodeInvalid { attempts_left: 1 },
        ErrorCode::TooManyAttempts => Error::TooManyAttempts { retry_after: None },
        ErrorCode::SmsBudgetExhausted => Error::SmsBudgetExhausted { retry_after: wait },
        ErrorCode::SmsUnavailable => Error::SmsUnavailable,
        ErrorCode::NotFound => Error::NotFound("ticket"),
        ErrorCode::Forbidden => Error::Forbidden,
        ErrorCode::MethodNotAllowed => Error::MethodNotAllowed,
        ErrorCode::Conflict => Error::Conflict(""),
        ErrorCode::WrongState => Error::WrongState(""),
        ErrorCode::EmptyBody => Error::EmptyBody,
        ErrorCode::BadImage => Error::BadImage(""),
        ErrorCode::ConsentRequired => Error::ConsentRequired(""),
        ErrorCode::PhoneTaken => Error::PhoneTaken,
        ErrorCode::ConfirmationInvalid => Error::ConfirmationInvalid,
        ErrorCode::Overloaded => Error::Overloaded { retry_after: wait },
        ErrorCode::BadSignature => Error::BadSignature,
        ErrorCode::StaleSignature => Error::StaleSignature,
        ErrorCode::UnsupportedMedia => Error::UnsupportedMedia(""),
        ErrorCode::UploadLimit => Error::UploadLimit { reason: "", retry_after: wait },
        ErrorCode::PreconditionFailed => Error::PreconditionFailed(""),
        ErrorCode::Unavailable => Error::Unavailable,
        ErrorCode::Internal => Error::Internal(String::new()),
    }
}

/// Limits fixed in the code that clients must know: PROTOCOL.md's "Fixed limits" table has a row
/// starting with the first text whose value cell is the second.
fn fixed_limits() -> Vec<(&'static str, String)> {
    use anapars_hub::domain::tickets::{MAX_CLIENT_MSG_ID_CHARS, MAX_LIST, MAX_PAGE, MAX_SUBJECT_CHARS};
    vec![
        ("largest request `id`", format!("{} (2^53 - 1)", protocol::MAX_REQUEST_ID)),
        (
            "tickets one socket follows (`ticket.subscribe`)",
            anapars_hub::gateway::session::MAX_SUBSCRIPTIONS.to_string(),
        ),
        (
            "unanswered `ticket.send`s per socket (more wait to be read)",
            format!("{}, at most one per ticket", anapars_hub::gateway::session::MAX_SENDS_IN_FLIGHT),
        ),
        ("ticket `subject`", format!("1 to {MAX_SUBJECT_CHARS} characters")),
        ("`client_msg_id`", format!("1 to {MAX_CLIENT_MSG_ID_CHARS} characters")),
        ("tickets in one list", MAX_LIST.to_string()),
        ("events in one `ticket.history` page", format!("1 to {MAX_PAGE}, default 50")),
        ("agent token prefix", format!("`{AGENT_TOKEN_PREFIX}`")),
        (
            "events in one `telemetry.views`",
            format!("1 to {}", anapars_hub::domain::telemetry::schema::MAX_VIEWS_PER_BATCH),
        ),
        (
            "device reports kept per device",
            format!("{} earlier ones, and the latest", anapars_hub::model::telemetry::DEVICE_HISTORY_PER_DEVICE),
        ),
        (
            "`overloaded` retry hint (telemetry)",
            format!("{} ms", anapars_hub::domain::telemetry::pipeline::RETRY_AFTER.as_millis()),
        ),
        ("disabled agents' sockets closed within", format!("{} s", anapars_hub::app::AGENT_WATCH_INTERVAL.as_secs())),
        (
            "smallest upload piece that does not finish the upload",
            format!("{} bytes", anapars_hub::domain::attachments::MIN_PIECE),
        ),
        (
            "thumbnail of an image attachment",
            format!("within {0} x {0} pixels, JPEG", anapars_hub::domain::attachments::THUMBNAIL_SIDE),
        ),
        (
            "width or height of an image attachment",
            format!("at most {} pixels", anapars_hub::domain::attachments::MAX_SIDE),
        ),
        ("attachment file name", format!("{} characters, sanitised", anapars_hub::model::attachment::MAX_NAME_CHARS)),
    ]
}

// ---------------------------------------------------------------------------------------------
// The file.

fn repo_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn update_requested() -> bool {
    std::env::var("UPDATE_VECTORS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// One vector as generated: the hub's own JSON text and MessagePack bytes.
struct Generated {
    name: &'static str,
    direction: &'static str,
    json_text: String,
    msgpack: Vec<u8>,
}

fn generate() -> Vec<Generated> {
    let mut out = Vec::new();
    for (name, frame) in client_samples() {
        let json = protocol::encode_request(Encoding::Json, &frame).expect("requests encode as json");
        let msgpack = protocol::encode_request(Encoding::MsgPack, &frame).expect("requests encode as msgpack");
        let json_text = String::from_utf8(json).expect("json is utf-8");
        out.push(Generated { name, direction: "client", json_text, msgpack });
    }
    for (name, frame) in server_samples() {
        let Encoded::Text(json) = protocol::encode(Encoding::Json, &frame).expect("frames encode as json") else {
            panic!("{name}: json must be a text frame");
        };
        let Encoded::Binary(msgpack) = protocol::encode(Encoding::MsgPack, &frame).expect("frames encode as msgpack")
        else {
            panic!("{name}: msgpack must be a binary frame");
        };
        out.push(Generated {
            name,
            direction: "server",
            json_text: json.as_str().to_owned(),
            msgpack: msgpack.to_vec(),
        });
    }
    out
}

/// The file's text: one vector per block, its `json` as the exact text the hub writes.
fn render(vectors: &[Generated]) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("strings serialise");
    let mut text = String::from("{\n");
    text.push_str("  \"protocol\": \"anapars.v1\",\n");
    text.push_str(&format!(
        "  \"about\": {},\n",
        quote(&format!(
            "Every request and server frame type in JSON and MessagePack, as the hub's encoders write them. \
             Generated by tests/vectors.rs; regenerate with: {REGENERATE}"
        ))
    ));
    text.push_str("  \"vectors\": [\n");
    for (i, v) in vectors.iter().enumerate() {
        text.push_str("    {\n");
        text.push_str(&format!("      \"name\": {},\n", quote(v.name)));
        text.push_str(&format!("      \"direction\": {},\n", quote(v.direction)));
        text.push_str(&format!("      \"json\": {},\n", v.json_text));
        text.push_str(&format!("      \"msgpack_hex\": {}\n", quote(&to_hex(&v.msgpack))));
        text.push_str(if i + 1 == vectors.len() { "    }\n" } else { "    },\n" });
    }
    text.push_str("  ]\n}\n");
    text
}

/// The file's text, written first when `UPDATE_VECTORS` is set.
fn file_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let path = repo_file("protocol/vectors.json");
        if update_requested() {
            let text = render(&generate());
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, &text).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
            std::fs::rename(&tmp, &path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            text
        } else {
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}; generate it with `{REGENERATE}`", path.display()))
        }
    })
}

/// One vector as read from the file.
struct Vector {
    name: String,
    direction: String,
    json: Value,
    msgpack: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let file: Value = serde_json::from_str(file_text()).expect("protocol/vectors.json is JSON");
    let list = file["vectors"].as_array().expect("`vectors` is an array");
    assert!(!list.is_empty(), "protocol/vectors.json has no vectors");
    list.iter()
        .map(|v| {
            let field = |key: &str| {
                v[key].as_str().unwrap_or_else(|| panic!("vector {v}: `{key}` must be a string")).to_owned()
            };
            let name = field("name");
            let msgpack = from_hex(&field("msgpack_hex")).unwrap_or_else(|e| panic!("{name}: msgpack_hex: {e}"));
            Vector { direction: field("direction"), json: v["json"].clone(), msgpack, name }
        })
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(hex: &str) -> Result<Vec<u8>, String> {
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return Err(format!("`{hex}` is not an even number of hex digits"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| format!("`{}`: {e}", &hex[i..i + 2])))
        .collect()
}

/// The names serde accepts for `T`, read from its own "unknown variant" error so that the list is
/// the enum's, never a copy that can fall behind.
fn serde_variants<T: serde::de::DeserializeOwned + std::fmt::Debug>(probe: Value) -> BTreeSet<String> {
    let err = serde_json::from_value::<T>(probe).expect_err("the probe names no variant").to_string();
    assert!(err.starts_with("unknown variant `"), "unexpected serde error: {err}");
    // "unknown variant `<probe>`, expected one of `a`, `b`, `c`": the backquoted words after the probe.
    let names: BTreeSet<String> = err.split('`').skip(1).step_by(2).skip(1).map(str::to_owned).collect();
    assert!(!names.is_empty(), "no variants read from: {err}");
    names
}

fn request_types() -> BTreeSet<String> {
    serde_variants::<Request>(json!({"type": "\u{1}"}))
}

fn server_types() -> BTreeSet<String> {
    serde_variants::<ServerFrame>(json!({"type": "\u{1}"}))
}

fn type_of(v: &Vector) -> String {
    v.json["type"].as_str().unwrap_or_else(|| panic!("{}: json has no string `type`", v.name)).to_owned()
}

// ---------------------------------------------------------------------------------------------
// The checks.

#[test]
fn client_vectors_decode_from_both_forms_and_reencode_exactly() {
    let mut checked = 0;
    for v in vectors().iter().filter(|v| v.direction == "client") {
        let name = &v.name;
        let text = serde_json::to_vec(&v.json).expect("values serialise");
        let from_json = protocol::decode_request(Encoding::Json, &text)
            .unwrap_or_else(|e| panic!("{name}: json does not decode: {}", e.error));
        let from_msgpack = protocol::decode_request(Encoding::MsgPack, &v.msgpack)
            .unwrap_or_else(|e| panic!("{name}: msgpack does not decode: {}", e.error));
        assert_eq!(from_json, from_msgpack, "{name}: the two forms decode to different requests");
        assert_eq!(from_json.request.kind(), type_of(v), "{name}: decoded to another type");

        let json = protocol::encode_request(Encoding::Json, &from_json).expect("requests encode");
        let json: Value = serde_json::from_slice(&json).expect("the encoder writes json");
        assert_eq!(json, v.json, "{name}: json re-encodes differently");
        let msgpack = protocol::encode_request(Encoding::MsgPack, &from_json).expect("requests encode");
        assert_eq!(to_hex(&msgpack), to_hex(&v.msgpack), "{name}: msgpack re-encodes differently");
        let carried: Value = protocol::from_msgpack(&v.msgpack).expect("msgpack reads as a value");
        assert_eq!(carried, v.json, "{name}: msgpack carries other values than json");
        checked += 1;
    }
    assert!(checked > 0, "no client vectors");
}

#[test]
fn server_vectors_decode_from_both_forms_and_reencode_exactly() {
    let mut checked = 0;
    for v in vectors().iter().filter(|v| v.direction == "server") {
        let name = &v.name;
        let from_json: ServerFrame =
            serde_json::from_value(v.json.clone()).unwrap_or_else(|e| panic!("{name}: json does not deserialise: {e}"));
        let from_msgpack: ServerFrame =
            protocol::from_msgpack(&v.msgpack).unwrap_or_else(|e| panic!("{name}: msgpack does not deserialise: {e}"));
        assert_eq!(from_json, from_msgpack, "{name}: the two forms deserialise to different frames");
        assert_eq!(from_json.kind(), type_of(v), "{name}: deserialised to another type");

        let Encoded::Text(json) = protocol::encode(Encoding::Json, &from_json).expect("frames encode") else {
            panic!("{name}: json must be a text frame");
        };
        let json: Value = serde_json::from_str(json.as_str()).expect("the encoder writes json");
        assert_eq!(json, v.json, "{name}: json re-encodes differently");
        let Encoded::Binary(msgpack) = protocol::encode(Encoding::MsgPack, &from_json).expect("frames encode") else {
            panic!("{name}: msgpack must be a binary frame");
        };
        assert_eq!(to_hex(&msgpack), to_hex(&v.msgpack), "{name}: msgpack re-encodes differently");
        let carried: Value = protocol::from_msgpack(&v.msgpack).expect("msgpack reads as a value");
        assert_eq!(carried, v.json, "{name}: msgpack carries other values than json");
        checked += 1;
    }
    assert!(checked > 0, "no server vectors");
}

#[test]
fn every_request_type_and_server_frame_type_has_a_vector() {
    let vectors = vectors();
    let names: BTreeSet<&str> = vectors.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names.len(), vectors.len(), "vector names are unique");
    for v in &vectors {
        assert!(matches!(v.direction.as_str(), "client" | "server"), "{}: direction {}", v.name, v.direction);
    }

    let requests = request_types();
    let listed: BTreeSet<String> = Request::TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        listed, requests,
        "Request::TYPES must list every request variant, or decode_request answers unknown_type"
    );
    let covered: BTreeSet<String> = vectors.iter().filter(|v| v.direction == "client").map(type_of).collect();
    assert_eq!(
        covered, requests,
        "client vectors must cover exactly the request types; add samples, then `{REGENERATE}`"
    );
    let mut slots = [false; REQUEST_SLOTS];
    for v in vectors.iter().filter(|v| v.direction == "client") {
        let frame = protocol::decode_request(Encoding::MsgPack, &v.msgpack)
            .unwrap_or_else(|e| panic!("{}: msgpack does not decode: {}", v.name, e.error));
        slots[request_slot(&frame.request)] = true;
    }
    assert!(slots.iter().all(|s| *s), "a request variant has no vector: {slots:?}");

    let frames = server_types();
    let covered: BTreeSet<String> = vectors.iter().filter(|v| v.direction == "server").map(type_of).collect();
    assert_eq!(
        covered, frames,
        "server vectors must cover exactly the server frame types; add samples, then `{REGENERATE}`"
    );
    let mut slots = [false; SERVER_SLOTS];
    for v in vectors.iter().filter(|v| v.direction == "server") {
        let frame: ServerFrame =
            protocol::from_msgpack(&v.msgpack).unwrap_or_else(|e| panic!("{}: msgpack: {e}", v.name));
        slots[server_slot(&frame)] = true;
    }
    assert!(slots.iter().all(|s| *s), "a server frame variant has no vector: {slots:?}");

    let errors: Vec<&Value> = vectors.iter().filter(|v| type_of(v) == "error").map(|v| &v.json).collect();
    assert!(errors.iter().any(|e| e.get("retry_after_ms").is_some()), "an error vector with retry_after_ms");
    assert!(errors.iter().any(|e| e.get("retry_after_ms").is_none()), "an error vector without retry_after_ms");
    assert!(errors.iter().any(|e| e["id"].is_null()), "an error vector whose id is null");
    assert!(errors.iter().any(|e| e["id"].is_u64()), "an error vector that echoes an id");
}

#[test]
fn the_file_is_what_the_generator_writes() {
    for (name, frame) in client_samples() {
        if let Request::Auth { token } = &frame.request {
            let raw = token.strip_prefix(AGENT_TOKEN_PREFIX).unwrap_or(token);
            assert!(looks_like_token(raw), "{name}: the sample token has the real shape");
        }
    }
    let generated: Value = serde_json::from_str(&render(&generate())).expect("the generator writes json");
    let file: Value = serde_json::from_str(file_text()).expect("protocol/vectors.json is JSON");
    let list = |v: &Value| v["vectors"].as_array().cloned().unwrap_or_default();
    let name = |v: &Value| v["name"].as_str().unwrap_or("?").to_owned();
    let (in_file, wanted) = (list(&file), list(&generated));
    let names = |l: &[Value]| l.iter().map(name).collect::<Vec<_>>();
    assert_eq!(names(&in_file), names(&wanted), "protocol/vectors.json is out of date: `{REGENERATE}`");
    let stale: Vec<String> = in_file.iter().zip(&wanted).filter(|(a, b)| a != b).map(|(a, _)| name(a)).collect();
    assert!(stale.is_empty(), "protocol/vectors.json is out of date in {stale:?}: `{REGENERATE}`");
    assert_eq!(file, generated, "protocol/vectors.json is out of date: `{REGENERATE}`");
}

#[test]
fn protocol_md_names_every_type_error_code_close_code_and_limit() {
    let path = repo_file("protocol/PROTOCOL.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut missing = Vec::new();
    let mut need = |what: String| {
        if !doc.contains(&what) {
            missing.push(what);
        }
    };
    for t in request_types().into_iter().chain(server_types()) {
        need(format!("`{t}`"));
    }
    for code in serde_variants::<ErrorCode>(json!("\u{1}")) {
        need(format!("`{code}`"));
    }
    for reason in serde_variants::<RevokeReason>(json!("\u{1}")) {
        need(format!("`{reason}`"));
    }
    for close in close_codes() {
        need(format!("`{}`", close.code()));
        need(format!("`{}`", close.reason()));
    }
    // The worked example's `ping` and its reply, byte for byte.
    for v in vectors().iter().filter(|v| v.name == "request.ping" || v.name == "reply.ping.ok") {
        need(to_hex(&v.msgpack));
    }
    let defaults = serde_json::to_value(Config::default()).expect("the config serialises");
    for setting in DOCUMENTED_SETTINGS {
        let row = doc.lines().find(|l| l.starts_with(&format!("| `{setting}` ")));
        let Some(row) = row else {
            missing.push(format!("a table row starting with | `{setting}` "));
            continue;
        };
        let env = format!("`HUB_{}`", setting.to_uppercase());
        let default = match &defaults[*setting] {
            Value::Null => "unset".to_owned(),
            Value::String(s) if s.is_empty() => "empty".to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !row.contains(&env) || !row.contains(&format!("| `{default}` |")) {
            missing.push(format!("{env} with default `{default}` in: {row}"));
        }
    }
    // The error table: one row per code, with the HTTP status the hub answers it with.
    for code in serde_variants::<ErrorCode>(json!("\u{1}")) {
        let parsed: ErrorCode = serde_json::from_value(json!(code)).expect("codes read back");
        let status = error_of(parsed).http_status();
        match doc.lines().find(|l| l.starts_with(&format!("| `{code}` |"))) {
            Some(row) if row.starts_with(&format!("| `{code}` | {status} |")) => {}
            Some(row) => missing.push(format!("HTTP status {status} in the error row: {row}")),
            None => missing.push(format!("an error table row starting with | `{code}` | {status} |")),
        }
    }
    for (limit, value) in fixed_limits() {
        match doc.lines().find(|l| l.starts_with(&format!("| {limit} |"))) {
            Some(row) if row.contains(&format!("| {value} |")) => {}
            Some(row) => missing.push(format!("value `{value}` in the fixed-limit row: {row}")),
            None => missing.push(format!("a fixed-limit row starting with | {limit} | with value | {value} |")),
        }
    }
    assert!(missing.is_empty(), "protocol/PROTOCOL.md lacks:\n{}", missing.join("\n"));
}
