//! The shapes of tickets, events and agents as clients see them: plain protocol values, and the
//! functions that fill them in from the model's records. No phone number ever appears here.

use crate::model::agent::AgentStatus;
use crate::model::attachment::{Attachment, AttachmentKind, MediaType, MessageAttachment};
use crate::model::ids::{
    AgentId, AttachmentId, CannedReplyId, DeviceId, LabelId, NoteId, PurchaseId, TicketId, UserId,
};
use crate::model::label::{Label, TicketLabels};
use crate::model::note::Note;
use crate::model::profile::{Customer, PublicProfile};
use crate::model::purchase::{Purchase, PurchaseKind, PurchaseStatus};
use crate::model::rating::{Rating, RatingRequest};
use crate::model::search::{Matched, SearchHit, SnippetPart};
use crate::model::telemetry::{Consent, DeviceRecord};
use crate::model::ticket::{Author, EventKind, Ticket, TicketEvent, TicketStatus};
use crate::model::time::Millis;
use serde::{Deserialize, Serialize};

/// Who did something, as shown to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Participant {
    /// An app user.
    User(UserId),
    /// A support agent.
    Agent(AgentId),
    /// The hub (auto-assignment).
    System,
}

/// A participant's delivery and read marks on a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkView {
    /// Whose marks.
    pub participant: Participant,
    /// Highest seq a device of theirs received (0: none).
    pub delivered_seq: u64,
    /// Highest seq they read (0: none).
    pub read_seq: u64,
}

/// A ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketView {
    /// Id.
    pub id: TicketId,
    /// Owner.
    pub user_id: UserId,
    /// Subject.
    pub subject: String,
    /// `open`, `assigned` or `resolved`.
    pub status: TicketStatus,
    /// The agent holding it (also the last holder of a resolved ticket).
    pub agent_id: Option<AgentId>,
    /// Creation time.
    pub created_at: Millis,
    /// Time of the last event.
    pub updated_at: Millis,
    /// While open: when it entered the queue (opening or reopening), the queue's order; absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<Millis>,
    /// Seq of its last event.
    pub last_seq: u64,
}

/// One event of a ticket's stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Place in the stream: 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// `opened`, `message`, `claimed`, `transferred`, `resolved` or `reopened`.
    pub kind: EventKind,
    /// Who caused it.
    pub author: Participant,
    /// Message text (and the subject, for `opened`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The sender's id for a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// For `claimed` and `transferred`: the agent holding the ticket now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// For a message: the files it carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<MessageAttachmentView>,
    /// When it was stored.
    pub at: Millis,
}

/// A search match, as agents' consoles show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResultView {
    /// The ticket, as it is now.
    pub ticket: TicketView,
    /// The event that matched (1: the subject).
    pub seq: u64,
    /// When it was written.
    pub at: Millis,
    /// Its text around the match, in parts; the matching words have `match` true.
    pub snippet: Vec<SnippetPart>,
    /// What matched: `text` (a message or the subject) or `customer_name`.
    pub matched: Matched,
}

/// A label, as agents' consoles show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelView {
    /// The label.
    pub id: LabelId,
    /// Its name.
    pub name: String,
    /// Its colour, `#rrggbb`.
    pub color: String,
}

/// A ticket's labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLabelsView {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Its labels, in the order of the team's list.
    pub label_ids: Vec<LabelId>,
}

/// A search match as agents see it.
pub fn search_result_view(hit: SearchHit, snippet: Vec<SnippetPart>) -> SearchResultView {
    SearchResultView { ticket: ticket_view(&hit.ticket), seq: hit.seq, at: hit.at, snippet, matched: hit.matched }
}

/// The labels as agents see them.
pub fn label_views(labels: &[Label]) -> Vec<LabelView> {
    labels.iter().map(|l| LabelView { id: l.id, name: l.name.clone(), color: l.color.clone() }).collect()
}

/// A ticket's labels as agents see them.
pub fn ticket_labels_view(t: &TicketLabels) -> TicketLabelsView {
    TicketLabelsView { ticket_id: t.ticket_id, label_ids: t.label_ids.clone() }
}

/// An agent's private note on a ticket, as agents' consoles show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteView {
    /// The note.
    pub id: NoteId,
    /// The ticket it is about.
    pub ticket_id: TicketId,
    /// Who wrote it.
    pub agent_id: AgentId,
    /// The text.
    pub body: String,
    /// The agents it names.
    pub mentions: Vec<AgentId>,
    /// The writer's id for it.
    pub client_msg_id: String,
    /// When it was stored.
    pub at: Millis,
}

/// A note as agents see it.
pub fn note_view(n: &Note) -> NoteView {
    NoteView {
        id: n.id,
        ticket_id: n.ticket_id,
        agent_id: n.agent_id,
        body: n.body.clone(),
        mentions: n.mentions.clone(),
        client_msg_id: n.client_msg_id.clone(),
        at: n.created_at,
    }
}

/// A user's rating of a resolution of their ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingView {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The seq of the `resolved` event rated.
    pub resolution_seq: u64,
    /// The agent who resolved the ticket then.
    pub agent_id: Option<AgentId>,
    /// 1 (worst) to 5 (best).
    pub score: u8,
    /// The user's words, if any.
    pub comment: Option<String>,
    /// When it was given.
    pub rated_at: Millis,
}

/// A rating as clients see it.
pub fn rating_view(r: &Rating) -> RatingView {
    RatingView {
        ticket_id: r.ticket_id,
        resolution_seq: r.resolution_seq,
        agent_id: r.agent_id,
        score: r.score,
        comment: r.comment.clone(),
        rated_at: r.rated_at,
    }
}

/// A resolution its user may rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingRequestView {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The seq of its `resolved` event: name it in `rating.submit`.
    pub resolution_seq: u64,
    /// When the request lapses.
    pub expires_at: Millis,
}

/// A rating request as the user's apps see it.
pub fn rating_request_view(r: &RatingRequest) -> RatingRequestView {
    RatingRequestView { ticket_id: r.ticket_id, resolution_seq: r.resolution_seq, expires_at: r.expires_at }
}

/// A file on a message, as clients show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAttachmentView {
    /// The attachment.
    pub id: AttachmentId,
    /// `image` (shown inline, with a thumbnail) or `file` (a download).
    pub kind: String,
    /// The type told by its bytes.
    pub media_type: MediaType,
    /// Bytes stored.
    pub size: u64,
    /// The sanitised file name.
    pub name: String,
    /// An image's width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// An image's height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Where its bytes are read (with the reader's token).
    pub url: String,
    /// Where an image's thumbnail is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
}

/// An upload as its uploader sees it: its progress, and once its content is checked, what a
/// message would carry (`kind` to `thumbnail`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadView {
    /// The attachment.
    pub id: AttachmentId,
    /// `uploading`, `stored` or `attached`.
    pub state: String,
    /// The sanitised file name.
    pub name: String,
    /// Bytes announced.
    pub length: u64,
    /// Bytes received so far.
    pub received: u64,
    /// Until when it is kept unless it goes on a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
    /// `image` or `file`, once checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The type told by its bytes, once checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// Bytes stored (an image's after re-encoding), once checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// An image's width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// An image's height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Where its bytes are read, once checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where an image's thumbnail is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
}

/// The path of an attachment's bytes.
pub fn attachment_path(id: AttachmentId) -> String {
    format!("/v1/attachments/{id}")
}

/// A file on a message as clients see it.
pub fn message_attachment_view(a: &MessageAttachment) -> MessageAttachmentView {
    let kind = a.media_type.kind();
    MessageAttachmentView {
        id: a.id,
        kind: kind.as_str().to_owned(),
        media_type: a.media_type,
        size: a.size,
        name: a.name.clone(),
        width: a.dimensions.map(|d| d.width),
        height: a.dimensions.map(|d| d.height),
        url: attachment_path(a.id),
        thumbnail: (kind == AttachmentKind::Image).then(|| format!("{}/thumbnail", attachment_path(a.id))),
    }
}

/// An upload as its uploader sees it.
pub fn upload_view(a: &Attachment) -> UploadView {
    let checked = a.on_message().as_ref().map(message_attachment_view);
    UploadView {
        id: a.id,
        state: a.state.as_str().to_owned(),
        name: a.name.clone(),
        length: a.length,
        received: a.received,
        expires_at: a.expires_at,
        kind: checked.as_ref().map(|c| c.kind.clone()),
        media_type: checked.as_ref().map(|c| c.media_type),
        size: checked.as_ref().map(|c| c.size),
        width: checked.as_ref().and_then(|c| c.width),
        height: checked.as_ref().and_then(|c| c.height),
        url: checked.as_ref().map(|c| c.url.clone()),
        thumbnail: checked.and_then(|c| c.thumbnail),
    }
}

/// An agent, as other agents see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    /// Id.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// Their status.
    pub status: AgentStatus,
    /// Assigned tickets they take at once.
    pub capacity: u32,
    /// Whether they have a live socket on this hub.
    pub online: bool,
    /// Whether they are a supervisor (keep the team's labels, read its reports).
    pub supervisor: bool,
}

/// A canned reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CannedReplyView {
    /// Id.
    pub id: CannedReplyId,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
}

/// A user's profile as others (and the user) see it. Never carries the number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileView {
    /// The user.
    pub user_id: UserId,
    /// Display name, if set.
    pub name: Option<String>,
    /// Path of the profile image on this hub (`/v1/media/<sha256>.jpg`), if set.
    pub image: Option<String>,
    /// Whether the user has a live socket.
    pub online: bool,
    /// When the user was last online; absent while online or when the user hides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Millis>,
}

/// A user as agents see them beside a conversation (`customer.get.ok`). Never the number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerView {
    /// The profile, as in `profile.ok`.
    pub profile: ProfileView,
    /// The user's latest device report; absent while their analytics consent is off or when none
    /// was reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<CustomerDeviceView>,
    /// The user's tickets, most recently updated first (at most 50).
    pub tickets: Vec<TicketView>,
}

/// What a user's app last reported of the device it runs on, as agents see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerDeviceView {
    /// Operating system (`android`, `ios`, `web`, ...).
    pub os: String,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// Device model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// The app's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// The app's locale (BCP 47).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// When the hub received the report.
    pub reported_at: Millis,
}

/// One of the user's devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    /// The hub's id for the device.
    pub id: DeviceId,
    /// Its name.
    pub name: String,
    /// First sign-in on it.
    pub created_at: Millis,
    /// Last sign-in on it.
    pub last_seen_at: Millis,
    /// Live sessions it holds (0: signed out).
    pub live_sessions: u32,
    /// Whether this socket's session belongs to it.
    pub current: bool,
}

/// A user's consent switches, with the time each was last set (`null`: never, the default applies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentView {
    /// View patterns (`telemetry.views`) may be collected.
    pub analytics: bool,
    /// When the user last set `analytics`.
    pub analytics_changed_at: Option<Millis>,
    /// The settings document may be stored on the server.
    pub personalisation: bool,
    /// When the user last set `personalisation`.
    pub personalisation_changed_at: Option<Millis>,
    /// An SMS may remind the user of a reply from support they have not read (off by default).
    pub sms_reminders: bool,
    /// When the user last set `sms_reminders`.
    pub sms_reminders_changed_at: Option<Millis>,
}

/// A purchase or subscription as its buyer sees it (never the hub's bookkeeping times).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseView {
    /// The hub's id.
    pub id: PurchaseId,
    /// The billing system's id.
    pub reference: String,
    /// The product bought.
    pub product: String,
    /// `activation` or `subscription`.
    pub kind: PurchaseKind,
    /// The price in minor currency units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// When it was bought.
    pub purchased_at: Millis,
    /// When it stops counting; `null`: never.
    pub expires_at: Option<Millis>,
    /// `paid`, `refunded` or `cancelled`.
    pub status: PurchaseStatus,
    /// Whether it counts now (paid and not expired, by the hub's clock when it was sent): what an
    /// app unlocks by.
    pub active: bool,
}

/// A ticket as clients see it.
pub fn ticket_view(t: &Ticket) -> TicketView {
    TicketView {
        id: t.id,
        user_id: t.user_id,
        subject: t.subject.clone(),
        status: t.status,
        agent_id: t.agent_id,
        created_at: t.created_at,
        updated_at: t.updated_at,
        queued_at: if t.status == TicketStatus::Open { t.queued_at } else { None },
        last_seq: t.last_seq,
    }
}

/// How a principal or author appears on the wire.
pub fn participant(a: Author) -> Participant {
    match a {
        Author::User(u) => Participant::User(u),
        Author::Agent(a) => Participant::Agent(a),
        Author::System => Participant::System,
    }
}

/// An event as clients see it.
pub fn event_view(e: &TicketEvent) -> EventView {
    EventView {
        ticket_id: e.ticket_id,
        seq: e.seq,
        kind: e.kind,
        author: participant(e.author),
        body: e.body.clone(),
        client_msg_id: e.client_msg_id.clone(),
        agent_id: e.agent_id,
        attachments: e.attachments.iter().map(message_attachment_view).collect(),
        at: e.created_at,
    }
}

/// A purchase as its buyer sees it at `now`.
pub fn purchase_view(p: &Purchase, now: Millis) -> PurchaseView {
    PurchaseView {
        id: p.id,
        reference: p.reference.clone(),
        product: p.product.clone(),
        kind: p.kind,
        amount_minor: p.amount_minor,
        currency: p.currency.clone(),
        purchased_at: p.purchased_at,
        expires_at: p.expires_at,
        status: p.status,
        active: p.is_active(now),
    }
}

/// Consent as clients see it.
pub fn consent_view(c: &Consent) -> ConsentView {
    ConsentView {
        analytics: c.analytics,
        analytics_changed_at: c.analytics_changed_at,
        personalisation: c.personalisation,
        personalisation_changed_at: c.personalisation_changed_at,
        sms_reminders: c.sms_reminders,
        sms_reminders_changed_at: c.sms_reminders_changed_at,
    }
}

/// A profile as others see it.
pub fn profile_view(p: &PublicProfile) -> ProfileView {
    ProfileView {
        user_id: p.user_id,
        name: p.name.clone(),
        image: p.image.clone(),
        online: p.online,
        last_seen_at: p.last_seen_at,
    }
}

/// A device report as agents see it.
pub fn customer_device_view(d: &DeviceRecord) -> CustomerDeviceView {
    CustomerDeviceView {
        os: d.info.os.clone(),
        os_version: d.info.os_version.clone(),
        model: d.info.model.clone(),
        manufacturer: d.info.manufacturer.clone(),
        app_version: d.info.app_version.clone(),
        locale: d.info.locale.clone(),
        reported_at: d.reported_at,
    }
}

/// A customer as agents see them.
pub fn customer_view(c: &Customer) -> CustomerView {
    CustomerView {
        profile: profile_view(&c.profile),
        device: c.device.as_ref().map(customer_device_view),
        tickets: c.tickets.iter().map(ticket_view).collect(),
    }
}

/// What a device registers to receive push notifications (the `push.register` frame's fields and
/// the body of `PUT /v1/push`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRegistrationRequest {
    /// `fcm`, `apns` or `webpush`.
    pub provider: String,
    /// `fcm`: the registration token; `apns`: the device token (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `apns`: `production` (default) or `sandbox`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// `webpush`: the subscription's endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `webpush`: the subscription's keys, as `PushSubscription.toJSON()` gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<WebPushKeys>,
    /// Show the beginning of message texts in notifications (default false).
    #[serde(default)]
    pub preview: bool,
    /// The language of the notifications' fixed text: `fa` (default) or `en`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// A Web Push subscription's keys, base64url.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebPushKeys {
    /// The P-256 public key (65 bytes).
    pub p256dh: String,
    /// The authentication secret (16 bytes).
    pub auth: String,
}

impl PushRegistrationRequest {
    /// The request in the domain's terms.
    ///
    /// # Errors
    /// `bad_request` naming what is missing or malformed.
    pub fn into_model(self) -> Result<crate::domain::push::RegistrationRequest, crate::error::Error> {
        use crate::error::Error;
        use crate::model::push::{ApnsEnvironment, PushTarget};
        use base64::Engine as _;
        let bad = |what: &str| Error::BadRequest(what.to_owned());
        let decode = |field: &str, value: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(value.trim_end_matches('='))
                .map_err(|_| Error::BadRequest(format!("keys.{field} is not base64url")))
        };
        let target = match self.provider.as_str() {
            "fcm" => PushTarget::Fcm { token: self.token.ok_or_else(|| bad("fcm needs token"))? },
            "apns" => PushTarget::Apns {
                token: self.token.ok_or_else(|| bad("apns needs token"))?,
                environment: match self.environment.as_deref() {
                    None => ApnsEnvironment::Production,
                    Some(e) => ApnsEnvironment::parse(e).ok_or_else(|| bad("environment is production or sandbox"))?,
                },
            },
            "webpush" => {
                let keys = self.keys.ok_or_else(|| bad("webpush needs keys.p256dh and keys.auth"))?;
                PushTarget::WebPush {
                    endpoint: self.endpoint.ok_or_else(|| bad("webpush needs endpoint"))?,
                    p256dh: decode("p256dh", &keys.p256dh)?,
                    auth: decode("auth", &keys.auth)?,
                }
            }
            _ => return Err(bad("provider is fcm, apns or webpush")),
        };
        let language = match self.language.as_deref() {
            None => None,
            Some(code) => {
                Some(crate::model::language::Language::parse(code).ok_or_else(|| bad("language is fa or en"))?)
            }
        };
        Ok(crate::domain::push::RegistrationRequest { target, preview: self.preview, language })
    }
}

/// A push registration as its device sees it: never its token or keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRegistrationView {
    /// `fcm`, `apns` or `webpush`.
    pub provider: String,
    /// Whether notifications show the beginning of message texts.
    pub preview: bool,
    /// `fa` or `en`.
    pub language: String,
    /// When it was stored.
    pub updated_at: Millis,
}

/// A registration as its device sees it.
pub fn push_registration_view(r: &crate::model::push::PushRegistration) -> PushRegistrationView {
    PushRegistrationView {
        provider: r.target.provider().to_owned(),
        preview: r.preview,
        language: r.language.as_str().to_owned(),
        updated_at: r.updated_at,
    }
}
