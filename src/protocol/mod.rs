//! The codec: bytes <-> typed frames. JSON travels in WebSocket text frames, MessagePack in binary
//! frames; the encoding is chosen once per socket by subprotocol negotiation, and both are produced
//! from the same serde types in [`frames`].

mod close;
pub mod errors;
pub mod frames;
pub mod views;

pub use crate::model::telemetry::{DeviceReport, ViewEventReport, ViewKind};
pub use close::CloseCode;
pub use errors::{ErrorCode, WireError};
pub use frames::{Request, RequestFrame, RequestId, RevokeReason, ServerFrame};
pub use views::{
    attachment_path, consent_view, customer_view, event_view, label_views, message_attachment_view, note_view,
    participant, profile_view, purchase_view, rating_request_view, rating_view, search_result_view, ticket_labels_view,
    ticket_view, upload_view, AgentView, CannedReplyView, ConsentView, CustomerDeviceView, CustomerView, DeviceView,
    EventView, LabelView, MarkView, MessageAttachmentView, NoteView, Participant, ProfileView, PurchaseView,
    RatingRequestView, RatingView, SearchResultView, TicketLabelsView, TicketView, UploadView,
};

use crate::error::Error;
use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Largest request id: 2^53 - 1, the largest integer every JSON client represents exactly.
pub const MAX_REQUEST_ID: u64 = (1 << 53) - 1;

/// Subprotocol name of the JSON encoding.
pub const JSON_PROTOCOL: &str = "anapars.v1.json";
/// Subprotocol name of the MessagePack encoding.
pub const MSGPACK_PROTOCOL: &str = "anapars.v1.msgpack";

/// A socket's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// JSON in text frames.
    Json,
    /// MessagePack (maps with field names) in binary frames.
    MsgPack,
}

impl Encoding {
    /// Picks the encoding from the client's `Sec-WebSocket-Protocol` offers: the first one the hub
    /// knows wins. `None` when the client offered protocols but none of ours.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        offered.into_iter().find_map(|p| match p.trim() {
            JSON_PROTOCOL => Some(Self::Json),
            MSGPACK_PROTOCOL => Some(Self::MsgPack),
            _ => None,
        })
    }

    /// The subprotocol name.
    pub fn protocol(self) -> &'static str {
        match self {
            Self::Json => JSON_PROTOCOL,
            Self::MsgPack => MSGPACK_PROTOCOL,
        }
    }
}

/// An encoded frame, ready to hand to the socket; cloning it is cheap (shared bytes), so one event
/// is encoded once per encoding and the same bytes go to every recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encoded {
    /// A JSON text frame.
    Text(Utf8Bytes),
    /// A MessagePack binary frame.
    Binary(Bytes),
}

impl Encoded {
    /// Bytes on the wire (payload only), for queue budgets.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            Self::Binary(b) => b.len(),
        }
    }

    /// True for an empty payload (never produced by [`encode`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Encodes a hub frame.
///
/// # Errors
/// Only if serde fails, which the frame types rule out; reported as [`Error::Internal`].
pub fn encode(encoding: Encoding, frame: &ServerFrame) -> Result<Encoded, Error> {
    match encoding {
        Encoding::Json => serde_json::to_string(frame)
            .map(|s| Encoded::Text(Utf8Bytes::from(s)))
            .map_err(|e| Error::Internal(format!("json encode: {e}"))),
        Encoding::MsgPack => to_msgpack(frame)
            .map(|v| Encoded::Binary(Bytes::from(v)))
            .map_err(|e| Error::Internal(format!("msgpack encode: {e}"))),
    }
}

/// A frame that could not be decoded into a request: the error to reply with, and the request id
/// if one could be read, so the reply can echo it.
#[derive(Debug)]
pub struct DecodeError {
    /// The frame's id, if it had a readable one.
    pub id: Option<RequestId>,
    /// What was wrong.
    pub error: Error,
    /// The request type the frame named, when it is one the hub knows (for metrics).
    pub kind: Option<&'static str>,
}

/// Just enough of a frame to answer it: read first, leniently, so that even a frame with bad fields
/// gets an error that echoes its id.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    id: Option<Lenient<RequestId>>,
    #[serde(rename = "type", default)]
    kind: Option<Lenient<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Lenient<T> {
    Valid(T),
    Invalid(IgnoredAny),
}

impl<T> Lenient<T> {
    fn valid(self) -> Option<T> {
        match self {
            Self::Valid(v) => Some(v),
            Self::Invalid(_) => None,
        }
    }
}

/// The request id of a frame that will not be processed (rate-limited, too large), so its error
/// can still echo it; `None` if the frame has no readable id.
pub fn peek_id(encoding: Encoding, payload: &[u8]) -> Option<RequestId> {
    if !starts_with_map(encoding, payload) {
        return None;
    }
    from_slice::<Header>(encoding, payload).ok()?.id.and_then(Lenient::valid).filter(|id| *id <= MAX_REQUEST_ID)
}

/// Decodes one client frame.
///
/// # Errors
/// [`DecodeError`] with `bad_request` (not a map, no valid id, missing or mistyped field) or
/// `unknown_type`.
pub fn decode_request(encoding: Encoding, payload: &[u8]) -> Result<RequestFrame, DecodeError> {
    // serde would also read a struct from an array (`[7, "ping"]`); the protocol only has maps.
    if !starts_with_map(encoding, payload) {
        return Err(DecodeError {
            id: None,
            error: Error::BadRequest(format!("frame is not a {} map", encoding_name(encoding))),
            kind: None,
        });
    }
    let header: Header = from_slice(encoding, payload).map_err(|e| DecodeError {
        id: None,
        error: Error::BadRequest(format!("frame is not a {} map: {e}", encoding_name(encoding))),
        kind: None,
    })?;
    let id = header.id.and_then(Lenient::valid).filter(|id| *id <= MAX_REQUEST_ID);
    let kind = header.kind.and_then(Lenient::valid);
    let known = kind.as_deref().and_then(|k| Request::TYPES.iter().copied().find(|t| *t == k));
    let fail = |error| Err(DecodeError { id, error, kind: known });
    let Some(id) = id else {
        return fail(Error::BadRequest("field `id` must be an unsigned integer below 2^53".into()));
    };
    // serde reads a MessagePack `bin` as a string, and 16 bytes of one as a UUID; the protocol's
    // strings and ids are `str`, in every field, so the frame is checked once, before any field is read.
    if encoding == Encoding::MsgPack && holds_bin(payload) {
        return fail(Error::BadRequest("messagepack `bin` is not accepted: strings and ids are `str`".into()));
    }
    let Some(kind) = kind else {
        return fail(Error::BadRequest("field `type` must be a string".into()));
    };
    let Some(known) = known else {
        return fail(Error::UnknownType);
    };
    // Telemetry frames carry lists and nested maps: their errors name the field's path
    // (`events[3].at: invalid type: ...`), so that an app developer can find the bad value.
    // (serde buffers an internally tagged enum before it reads the fields, which loses the path,
    // so these two are read as plain structs.)
    let decoded = match known {
        "telemetry.device" => from_slice_with_path::<DeviceFrame>(encoding, payload)
            .map(|f| Request::TelemetryDevice { device: f.device }),
        "telemetry.views" => {
            from_slice_with_path::<ViewsFrame>(encoding, payload).map(|f| Request::TelemetryViews { events: f.events })
        }
        _ => from_slice::<Request>(encoding, payload),
    };
    match decoded {
        Ok(request) => Ok(RequestFrame { id, request }),
        Err(e) => fail(Error::BadRequest(format!("invalid `{kind}` frame: {e}"))),
    }
}

fn starts_with_map(encoding: Encoding, payload: &[u8]) -> bool {
    match encoding {
        Encoding::Json => payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
        // fixmap, map16, map32
        Encoding::MsgPack => matches!(payload.first(), Some(0x80..=0x8f | 0xde | 0xdf)),
    }
}

/// True when the MessagePack value at the start of `payload` holds a `bin` anywhere: its markers are
/// walked in one pass, without recursion or allocation (a string's bytes are skipped, not read). A
/// truncated or malformed value is left to the decoder, which refuses it with a better message.
fn holds_bin(payload: &[u8]) -> bool {
    let mut rest = payload;
    // Values still to walk: a map adds two per entry, an array one per element.
    let mut values: u64 = 1;
    while values > 0 {
        let Some((&marker, tail)) = rest.split_first() else { return false };
        rest = tail;
        values -= 1;
        match marker {
            0xc4..=0xc6 => return true,
            0x80..=0x8f => values = values.saturating_add(2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => values = values.saturating_add(u64::from(marker & 0x0f)),
            // array16, array32, map16, map32
            0xdc..=0xdf => {
                let Some(n) = take_len(&mut rest, if marker & 1 == 0 { 2 } else { 4 }) else { return false };
                let per = if marker >= 0xde { 2 } else { 1 };
                values = values.saturating_add(per * n as u64);
            }
            _ => {
                let skip = match marker {
                    0xa0..=0xbf => Some(usize::from(marker & 0x1f)),
                    0xd9 => take_len(&mut rest, 1),
                    0xda => take_len(&mut rest, 2),
                    0xdb => take_len(&mut rest, 4),
                    // ext8/16/32: the length, then a type byte and the data
                    0xc7 => take_len(&mut rest, 1).map(|n| n + 1),
                    0xc8 => take_len(&mut rest, 2).map(|n| n + 1),
                    0xc9 => take_len(&mut rest, 4).map(|n| n + 1),
                    0xcc | 0xd0 => Some(1),
                    0xcd | 0xd1 | 0xd4 => Some(2),
                    0xd5 => Some(3),
                    0xca | 0xce | 0xd2 => Some(4),
                    0xd6 => Some(5),
                    0xcb | 0xcf | 0xd3 => Some(8),
                    0xd7 => Some(9),
                    0xd8 => Some(17),
                    // fixints, nil, booleans (and the unused 0xc1, which the decoder refuses)
                    _ => Some(0),
                };
                let Some(tail) = skip.and_then(|n| rest.get(n..)) else { return false };
                rest = tail;
            }
        }
    }
    false
}

/// Reads a big-endian length of `width` bytes off the front of `rest`.
fn take_len(rest: &mut &[u8], width: usize) -> Option<usize> {
    let (len, tail) = rest.split_at_checked(width)?;
    *rest = tail;
    Some(len.iter().fold(0usize, |n, b| n << 8 | usize::from(*b)))
}

fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Json => "json",
        Encoding::MsgPack => "messagepack",
    }
}

fn from_slice<'a, T: Deserialize<'a>>(encoding: Encoding, payload: &'a [u8]) -> Result<T, String> {
    match encoding {
        Encoding::Json => serde_json::from_slice(payload).map_err(|e| e.to_string()),
        Encoding::MsgPack => from_msgpack(payload).map_err(|e| e.to_string()),
    }
}

/// The fields of `telemetry.device` (`id` and `type` are read by the header).
#[derive(Deserialize)]
struct DeviceFrame {
    device: DeviceReport,
}

/// The fields of `telemetry.views`.
#[derive(Deserialize)]
struct ViewsFrame {
    events: Vec<ViewEventReport>,
}

/// As [`from_slice`], with the path of the failing field in the error (`events[3].at: ...`).
fn from_slice_with_path<'a, T: Deserialize<'a>>(encoding: Encoding, payload: &'a [u8]) -> Result<T, String> {
    match encoding {
        Encoding::Json => {
            let mut de = serde_json::Deserializer::from_slice(payload);
            let value = serde_path_to_error::deserialize(&mut de).map_err(|e| e.to_string())?;
            de.end().map_err(|e| e.to_string())?;
            Ok(value)
        }
        Encoding::MsgPack => {
            let mut rest: &[u8] = payload;
            let mut de = rmp_serde::Deserializer::new(&mut rest).with_human_readable();
            let value = serde_path_to_error::deserialize(&mut de).map_err(|e| e.to_string())?;
            drop(de);
            if !rest.is_empty() {
                return Err(format!("{} bytes after the value", rest.len()));
            }
            Ok(value)
        }
    }
}

/// MessagePack as the protocol spells it: structs as maps with field names, and ids and times in
/// their human-readable form (a UUID is the same string as in JSON, not 16 raw bytes), so that the
/// two encodings carry identical values.
///
/// # Errors
/// Only if serde fails.
pub fn to_msgpack<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut buf = Vec::with_capacity(64);
    let mut ser = rmp_serde::Serializer::new(&mut buf).with_struct_map().with_human_readable();
    value.serialize(&mut ser)?;
    Ok(buf)
}

/// Decodes MessagePack written by [`to_msgpack`] (or any client) into `T`.
///
/// # Errors
/// Malformed input or a value of the wrong shape.
pub fn from_msgpack<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, rmp_serde::decode::Error> {
    let mut rest: &[u8] = payload;
    let mut de = rmp_serde::Deserializer::new(&mut rest).with_human_readable();
    let value = T::deserialize(&mut de)?;
    drop(de);
    // One frame is one value, as in JSON: bytes after it are an error, not something to ignore.
    if !rest.is_empty() {
        return Err(rmp_serde::decode::Error::Syntax(format!("{} bytes after the value", rest.len())));
    }
    Ok(value)
}

/// Encodes a request as a client would (used by tests, the load harness and the vectors).
///
/// # Errors
/// Only if serde fails.
pub fn encode_request(encoding: Encoding, frame: &RequestFrame) -> Result<Vec<u8>, Error> {
    // The id is written next to the request's own fields, in one flat map.
    let mut value = serde_json::to_value(&frame.request).map_err(|e| Error::Internal(e.to_string()))?;
    if let Some(map) = value.as_object_mut() {
        map.insert("id".into(), frame.id.into());
    }
    match encoding {
        Encoding::Json => serde_json::to_vec(&value).map_err(|e| Error::Internal(e.to_string())),
        Encoding::MsgPack => to_msgpack(&value).map_err(|e| Error::Internal(e.to_string())),
    }
}

#[cfg(test)]
mod tests;

/// An event to push to many sockets: encoded at most once per encoding, on first use, and the
/// same bytes shared by every recipient.
#[derive(Debug)]
pub struct SharedFrame {
    frame: ServerFrame,
    ticket_seq: Option<(crate::model::ids::TicketId, u64)>,
    json: std::sync::OnceLock<Encoded>,
    msgpack: std::sync::OnceLock<Encoded>,
}

impl SharedFrame {
    /// Wraps a frame for fan-out.
    pub fn new(frame: ServerFrame) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self { frame, ticket_seq: None, json: Default::default(), msgpack: Default::default() })
    }

    /// Wraps a `ticket.event` frame, remembering its place in the ticket's stream so each socket
    /// can drop what it already has and fill gaps from storage.
    pub fn ticket_event(frame: ServerFrame, ticket: crate::model::ids::TicketId, seq: u64) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            frame,
            ticket_seq: Some((ticket, seq)),
            json: Default::default(),
            msgpack: Default::default(),
        })
    }

    /// The ticket and seq of a `ticket.event`.
    pub fn ticket_seq(&self) -> Option<(crate::model::ids::TicketId, u64)> {
        self.ticket_seq
    }

    /// The frame.
    pub fn frame(&self) -> &ServerFrame {
        &self.frame
    }

    /// The frame's bytes in `encoding`, encoding it on first use.
    ///
    /// # Errors
    /// As [`encode`].
    pub fn encoded(&self, encoding: Encoding) -> Result<Encoded, Error> {
        let cell = match encoding {
            Encoding::Json => &self.json,
            Encoding::MsgPack => &self.msgpack,
        };
        if let Some(e) = cell.get() {
            return Ok(e.clone());
        }
        let e = encode(encoding, &self.frame)?;
        Ok(cell.get_or_init(|| e).clone())
    }
}
