//! The export (`GET /v1/me/export`): one JSON document with everything the hub keeps about an
//! account, written section by section and page by page into a bounded channel, so that an account
//! with years of messages and view events costs the hub a few pages of memory, not the document.
//!
//! The document's format is in protocol/PROTOCOL.md ("Export"). It is read from several queries,
//! not one snapshot: data written while the export runs may or may not be in it. Its last member
//! is `"complete": true`; a document cut short by a failure lacks it (and is not valid JSON).

use crate::error::{Error, Result};
use crate::model::attachment::Attachment;
use crate::model::ids::{AttachmentId, DeviceId, Principal, SessionId, TicketId, UserId};
use crate::model::telemetry::{ConnectionRecord, DeviceInfo, DeviceRecord, StoredView};
use crate::model::ticket::Page;
use crate::model::time::{now_ms, Millis};
use crate::ports::objects::Objects;
use crate::ports::store::Store;
use crate::protocol::{ConsentView, MarkView, TicketView};
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;
use uuid::Uuid;

/// The document's `format`.
pub(super) const FORMAT: &str = "anapars-export";
/// The document's `version`; raised when a member changes meaning or goes away (new members may
/// appear without it).
pub(super) const VERSION: u32 = 1;
/// Rows read per query.
const PAGE: u32 = 500;
/// Bytes gathered before a chunk goes out.
const CHUNK: usize = 64 * 1024;

#[derive(Serialize)]
struct Header<'a> {
    format: &'a str,
    version: u32,
    exported_at: Millis,
    account: AccountPart,
}

/// The account itself: the number, the profile and presence setting.
#[derive(Serialize)]
struct AccountPart {
    user_id: UserId,
    phone: String,
    registered_at: Millis,
    name: Option<String>,
    image: Option<String>,
    hide_last_seen: bool,
    last_seen_at: Option<Millis>,
}

#[derive(Serialize)]
struct DevicePart {
    id: DeviceId,
    client_device_id: String,
    name: String,
    created_at: Millis,
    last_seen_at: Millis,
    /// The latest device report (telemetry), if the app sent one.
    report: Option<ReportPart>,
    /// Earlier reports, newest first.
    report_history: Vec<ReportPart>,
}

#[derive(Serialize)]
struct ReportPart {
    reported_at: Millis,
    #[serde(flatten)]
    info: DeviceInfo,
}

impl From<DeviceRecord> for ReportPart {
    fn from(r: DeviceRecord) -> Self {
        Self { reported_at: r.reported_at, info: r.info }
    }
}

#[derive(Serialize)]
struct SessionPart {
    id: SessionId,
    device_id: DeviceId,
    created_at: Millis,
    expires_at: Millis,
    revoked_at: Option<Millis>,
}

#[derive(Serialize)]
struct SettingsPart {
    document: serde_json::Value,
    updated_at: Millis,
}

#[derive(Serialize)]
struct ConnectionPart {
    id: Uuid,
    device_id: DeviceId,
    ip: String,
    user_agent: Option<String>,
    client_version: Option<String>,
    connected_at: Millis,
    disconnected_at: Option<Millis>,
}

impl From<ConnectionRecord> for ConnectionPart {
    fn from(c: ConnectionRecord) -> Self {
        Self {
            id: c.id,
            device_id: c.device_id,
            ip: c.ip,
            user_agent: c.user_agent,
            client_version: c.client_version,
            connected_at: c.connected_at,
            disconnected_at: c.disconnected_at,
        }
    }
}

#[derive(Serialize)]
struct ViewPart {
    device_id: DeviceId,
    kind: String,
    screen: String,
    target: Option<String>,
    at: Millis,
    duration_ms: Option<i64>,
    received_at: Millis,
}

impl From<StoredView> for ViewPart {
    fn from(v: StoredView) -> Self {
        let e = v.event;
        Self {
            device_id: v.device_id,
            kind: e.kind,
            screen: e.screen,
            target: e.target,
            at: e.at,
            duration_ms: e.duration_ms,
            received_at: v.received_at,
        }
    }
}

/// The document being written: a buffer that goes out in chunks of about [`CHUNK`] bytes.
struct Writer {
    buf: Vec<u8>,
    out: mpsc::Sender<Bytes>,
}

impl Writer {
    fn raw(&mut self, text: &str) {
        self.buf.extend_from_slice(text.as_bytes());
    }

    fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        serde_json::to_writer(&mut self.buf, value).map_err(|e| Error::Internal(format!("export encoding: {e}")))
    }

    /// `"name":` preceded by a comma.
    fn member(&mut self, name: &str) {
        self.raw(",\"");
        self.raw(name);
        self.raw("\":");
    }

    /// Appends `items` to an array being written; `first` says whether anything preceded them.
    async fn items<T: Serialize>(&mut self, first: &mut bool, items: impl IntoIterator<Item = T>) -> Result<()> {
        for item in items {
            if !std::mem::take(first) {
                self.raw(",");
            }
            self.json(&item)?;
            if self.buf.len() >= CHUNK {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Sends what is buffered. A reader that went away ends the export (`unavailable`).
    async fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096)));
        self.out.send(chunk).await.map_err(|_| Error::Unavailable)
    }
}

/// Writes the export of `user` into `out`, chunk by chunk, ending with `"complete": true`.
/// `consent` is the user's consent as the hub applies it (stored switches, or the defaults).
///
/// # Errors
/// `not_found` (no such user), `unavailable` (storage failed or the reader went away),
/// `internal`. Whatever was sent before the error stays sent: the reader must treat a document
/// without `"complete": true` as failed.
pub(super) async fn write(
    store: &dyn Store,
    objects: &dyn Objects,
    user: UserId,
    consent: ConsentView,
    out: mpsc::Sender<Bytes>,
) -> Result<()> {
    let mut w = Writer { buf: Vec::with_capacity(CHUNK + 4096), out };
    let account = store.user(user).await?.ok_or(Error::NotFound("user"))?;
    let profile = store.profile(user).await?.ok_or(Error::NotFound("user"))?;
    let header = Header {
        format: FORMAT,
        version: VERSION,
        exported_at: now_ms(),
        account: AccountPart {
            user_id: user,
            phone: account.phone.e164().to_owned(),
            registered_at: account.registered_at,
            name: profile.name,
            image: profile.image,
            hide_last_seen: profile.hide_last_seen,
            last_seen_at: profile.last_seen_at,
        },
    };
    // The header's closing brace is dropped so that the other members follow it in one object.
    let mut head = serde_json::to_vec(&header).map_err(|e| Error::Internal(format!("export encoding: {e}")))?;
    head.pop();
    w.buf.extend_from_slice(&head);

    w.member("devices");
    w.raw("[");
    let mut first = true;
    for d in store.devices(user).await? {
        let report = store.device_info(d.id).await?.map(ReportPart::from);
        let report_history = store.device_history(d.id).await?.into_iter().map(ReportPart::from).collect();
        let part = DevicePart {
            id: d.id,
            client_device_id: d.client_device_id,
            name: d.name,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
            report,
            report_history,
        };
        w.items(&mut first, [part]).await?;
    }
    w.raw("]");

    w.member("sessions");
    w.raw("[");
    // Every session of a user is on one of their devices.
    let sessions = store.all_sessions(user).await?.into_iter().filter_map(|s| {
        Some(SessionPart {
            id: s.id,
            device_id: s.holder.device()?,
            created_at: s.created_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
        })
    });
    w.items(&mut true, sessions).await?;
    w.raw("]");

    w.member("settings");
    match store.settings(user).await? {
        Some((text, updated_at)) => {
            let document = serde_json::from_str(&text)
                .map_err(|e| Error::Internal(format!("stored settings are not json: {e}")))?;
            w.json(&SettingsPart { document, updated_at })?;
        }
        None => w.raw("null"),
    }
    w.member("consent");
    w.json(&consent)?;

    w.member("push_registrations");
    w.raw("[");
    let registrations: Vec<PushPart> =
        store.push_registrations(&[Principal::User(user)], now_ms()).await?.iter().map(PushPart::from).collect();
    w.items(&mut true, registrations).await?;
    w.raw("]");

    w.member("purchases");
    w.raw("[");
    let now = now_ms();
    let purchases: Vec<_> =
        store.purchases(user).await?.iter().map(|p| crate::protocol::purchase_view(p, now)).collect();
    w.items(&mut true, purchases).await?;
    w.raw("]");

    // What was done by the user or to what concerns them (an export, their tickets' claims):
    // ids and actions only.
    w.member("audit");
    w.raw("[");
    let audit = store.user_audit_entries(user).await?;
    w.items(&mut true, audit).await?;
    w.raw("]");

    w.member("connections");
    w.raw("[");
    let (mut first, mut cursor) = (true, None);
    loop {
        let page = store.connections_after(user, cursor, PAGE).await?;
        let Some(last) = page.last() else { break };
        cursor = Some((last.connected_at, last.id));
        let full = page.len() == PAGE as usize;
        w.items(&mut first, page.into_iter().map(ConnectionPart::from)).await?;
        if !full {
            break;
        }
    }
    w.raw("]");

    w.member("view_events");
    w.raw("[");
    let (mut first, mut after) = (true, 0);
    loop {
        let page = store.views_after(user, after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        let full = page.len() == PAGE as usize;
        w.items(&mut first, page.into_iter().map(|(_, v)| ViewPart::from(v))).await?;
        if !full {
            break;
        }
    }
    w.raw("]");

    w.member("tickets");
    w.raw("[");
    // Attachments on the user's tickets that others uploaded (agents'), for the attachments member.
    let mut on_tickets: Vec<AttachmentId> = Vec::new();
    let (mut first_ticket, mut cursor) = (true, None);
    loop {
        let tickets = store.tickets_after(user, cursor, PAGE).await?;
        let Some(last) = tickets.last() else { break };
        cursor = Some((last.created_at, last.id));
        let full = tickets.len() == PAGE as usize;
        for ticket in tickets {
            if !std::mem::take(&mut first_ticket) {
                w.raw(",");
            }
            let mut head = serde_json::to_vec(&TicketPart {
                ticket: crate::protocol::ticket_view(&ticket),
                marks: store
                    .marks(ticket.id)
                    .await?
                    .into_iter()
                    .map(|(author, m)| MarkView {
                        participant: crate::protocol::participant(author),
                        delivered_seq: m.delivered_seq,
                        read_seq: m.read_seq,
                    })
                    .collect(),
            })
            .map_err(|e| Error::Internal(format!("export encoding: {e}")))?;
            head.pop();
            w.buf.extend_from_slice(&head);
            w.member("events");
            w.raw("[");
            let (mut first, mut seq) = (true, 0);
            loop {
                let events = store.events(ticket.id, Page::After(seq), PAGE).await?;
                let Some(last) = events.last() else { break };
                seq = last.seq;
                let full = events.len() == PAGE as usize;
                let others = events.iter().filter(|e| e.author != crate::model::ticket::Author::User(user));
                on_tickets.extend(others.flat_map(|e| e.attachments.iter().map(|a| a.id)));
                w.items(&mut first, events.iter().map(crate::protocol::event_view)).await?;
                if !full {
                    break;
                }
            }
            w.raw("]");
            // Agents' private notes about the customer: theirs to see in the export.
            w.member("notes");
            w.raw("[");
            let (mut notes, mut before) = (Vec::new(), None);
            loop {
                let page = store.notes(ticket.id, before, PAGE).await?;
                let Some(oldest) = page.first() else { break };
                before = Some(oldest.id);
                let full = page.len() == PAGE as usize;
                notes.splice(0..0, page);
                if !full {
                    break;
                }
            }
            let mut first = true;
            w.items(&mut first, notes.iter().map(crate::protocol::note_view)).await?;
            w.raw("]");
            // The user's own ratings of the ticket's resolutions.
            w.member("ratings");
            w.raw("[");
            let ratings = store.ratings(&[ticket.id]).await?;
            let mut first = true;
            w.items(&mut first, ratings.iter().map(crate::protocol::rating_view)).await?;
            w.raw("]}");
        }
        if !full {
            break;
        }
    }
    w.raw("]");

    w.member("attachments");
    w.raw("[");
    let mut first = true;
    let mine = store.uploaded_by(Principal::User(user)).await?;
    for attachment in mine {
        attachment_item(&mut w, &mut first, objects, &attachment).await?;
    }
    for id in on_tickets {
        if let Some(attachment) = store.attachment(id).await? {
            attachment_item(&mut w, &mut first, objects, &attachment).await?;
        }
    }
    w.raw("]");

    w.raw(",\"complete\":true}");
    w.flush().await
}

/// A push registration in the export: where the user's notifications go, token and keys included
/// (they are the user's own data).
#[derive(Serialize)]
struct PushPart {
    session_id: SessionId,
    provider: &'static str,
    token: Option<String>,
    environment: Option<&'static str>,
    endpoint: Option<String>,
    preview: bool,
    language: &'static str,
    updated_at: Millis,
}

impl From<&crate::model::push::PushRegistration> for PushPart {
    fn from(r: &crate::model::push::PushRegistration) -> Self {
        use crate::model::push::PushTarget;
        let (token, environment, endpoint) = match &r.target {
            PushTarget::Fcm { token } => (Some(token.clone()), None, None),
            PushTarget::Apns { token, environment } => (Some(token.clone()), Some(environment.as_str()), None),
            PushTarget::WebPush { endpoint, .. } => (None, None, Some(endpoint.clone())),
        };
        Self {
            session_id: r.session_id,
            provider: r.target.provider(),
            token,
            environment,
            endpoint,
            preview: r.preview,
            language: r.language.as_str(),
            updated_at: r.updated_at,
        }
    }
}

/// An attachment in the export: its record and, once stored, its bytes (one at a time in memory,
/// at most `attachment_max_bytes`).
#[derive(Serialize)]
struct AttachmentPart {
    #[serde(flatten)]
    upload: crate::protocol::UploadView,
    uploaded_by: crate::protocol::Participant,
    ticket_id: Option<TicketId>,
    created_at: Millis,
    /// The stored bytes in standard base64; `null` while uploading.
    content_base64: Option<String>,
}

async fn attachment_item(w: &mut Writer, first: &mut bool, objects: &dyn Objects, a: &Attachment) -> Result<()> {
    use base64::Engine as _;
    let content_base64 = match a.content {
        Some(_) => objects.get(&a.object_key()).await?.map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        None => None,
    };
    let part = AttachmentPart {
        upload: crate::protocol::upload_view(a),
        uploaded_by: crate::protocol::participant(a.uploader.into()),
        ticket_id: a.ticket_id,
        created_at: a.created_at,
        content_base64,
    };
    w.items(first, [part]).await?;
    w.flush().await
}

/// A ticket and its marks; its events follow as a member written page by page.
#[derive(Serialize)]
struct TicketPart {
    ticket: TicketView,
    marks: Vec<MarkView>,
}
