//! Attachments: files a user or an agent uploads into a conversation. An attachment is created
//! when its upload starts (`uploading`), becomes `stored` once every byte is in and its content
//! was checked, and `attached` when a message of a ticket carries it. An attachment that is not
//! attached by its `expires_at` is removed with its bytes.

use crate::model::ids::{AttachmentId, Principal, TicketId};
use crate::model::object::ObjectKey;
use crate::model::time::Millis;
use serde::{Deserialize, Serialize};

/// Longest stored file name, in characters.
pub const MAX_NAME_CHARS: usize = 120;

/// Where an attachment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachmentState {
    /// Bytes are still arriving.
    Uploading,
    /// Every byte is in and checked; not yet part of a message.
    Stored,
    /// A message of a ticket carries it.
    Attached,
}

impl AttachmentState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploading => "uploading",
            Self::Stored => "stored",
            Self::Attached => "attached",
        }
    }

    /// The state of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "uploading" => Self::Uploading,
            "stored" => Self::Stored,
            "attached" => Self::Attached,
            _ => return None,
        })
    }
}

/// The content types the hub accepts, told by the bytes, never by the name or a client's header.
/// Nothing a browser would run (HTML, SVG, scripts) is among them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MediaType {
    /// `image/jpeg`.
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// `image/png`.
    #[serde(rename = "image/png")]
    Png,
    /// `image/webp`.
    #[serde(rename = "image/webp")]
    WebP,
    /// `application/pdf`.
    #[serde(rename = "application/pdf")]
    Pdf,
    /// `text/plain` (UTF-8).
    #[serde(rename = "text/plain")]
    PlainText,
}

impl MediaType {
    /// Every accepted type.
    pub const ALL: [Self; 5] = [Self::Jpeg, Self::Png, Self::WebP, Self::Pdf, Self::PlainText];

    /// The media type as written in headers and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::WebP => "image/webp",
            Self::Pdf => "application/pdf",
            Self::PlainText => "text/plain",
        }
    }

    /// The type of a stored media type.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether files of this type are images (shown inline, with a thumbnail).
    pub fn kind(self) -> AttachmentKind {
        match self {
            Self::Jpeg | Self::Png | Self::WebP => AttachmentKind::Image,
            Self::Pdf | Self::PlainText => AttachmentKind::File,
        }
    }
}

/// How clients show an attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachmentKind {
    /// A picture: shown inline as its thumbnail.
    Image,
    /// Any other file: a download with its name and size.
    File,
}

impl AttachmentKind {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::File => "file",
        }
    }
}

/// Width and height of an image, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dimensions {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// An attachment as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Its id.
    pub id: AttachmentId,
    /// Who uploaded it; only they may attach it.
    pub uploader: Principal,
    /// The ticket whose message carries it, once attached.
    pub ticket_id: Option<TicketId>,
    /// Where it is in its life.
    pub state: AttachmentState,
    /// The file name, sanitised ([`sanitise_name`]).
    pub name: String,
    /// Bytes the upload announced.
    pub length: u64,
    /// Bytes received so far (equal to `length` once stored).
    pub received: u64,
    /// The checked content: set once stored.
    pub content: Option<StoredContent>,
    /// When the upload started.
    pub created_at: Millis,
    /// When it is removed unless attached; `None` once attached.
    pub expires_at: Option<Millis>,
}

impl Attachment {
    /// The key of its bytes in the object store: under its uploader, so that everything a person
    /// uploaded is found (and erased) by one prefix ([`uploader_prefix`]).
    pub fn object_key(&self) -> ObjectKey {
        object_key(self.uploader, self.id)
    }

    /// The key its thumbnail goes to, beside its bytes.
    pub fn thumbnail_key(&self) -> ObjectKey {
        thumbnail_key(self.uploader, self.id)
    }

    /// The prefix of all its objects.
    pub fn prefix(&self) -> ObjectKey {
        attachment_prefix(self.uploader, self.id)
    }
}

impl Attachment {
    /// The attachment as a message carries it, once its content is checked; `None` before.
    pub fn on_message(&self) -> Option<MessageAttachment> {
        let content = self.content.as_ref()?;
        Some(MessageAttachment {
            id: self.id,
            media_type: content.media_type,
            size: content.size,
            name: self.name.clone(),
            dimensions: content.dimensions,
        })
    }
}

/// An attachment as a message carries it: what a client needs to show it and fetch its bytes (and,
/// for an image, its thumbnail). Kept with the message, so history reads need no other table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAttachment {
    /// The attachment.
    pub id: AttachmentId,
    /// Its type, told by its bytes.
    pub media_type: MediaType,
    /// Bytes stored.
    pub size: u64,
    /// The sanitised file name.
    pub name: String,
    /// An image's dimensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<Dimensions>,
}

/// Why attachments named by a message cannot go on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachmentRefusal {
    /// One does not exist, or is not the sender's upload (the two look the same to the sender).
    Unknown,
    /// One is still uploading.
    Uploading,
    /// One is on a message already.
    Attached,
}

impl From<AttachmentRefusal> for crate::error::Error {
    fn from(refusal: AttachmentRefusal) -> Self {
        match refusal {
            AttachmentRefusal::Unknown => Self::NotFound("attachment"),
            AttachmentRefusal::Uploading => Self::WrongState("an attachment is still uploading"),
            AttachmentRefusal::Attached => Self::WrongState("an attachment is on a message already"),
        }
    }
}

/// What checking a complete upload found, and where its thumbnail is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredContent {
    /// The type told by the bytes.
    pub media_type: MediaType,
    /// Bytes stored (an image's after re-encoding).
    pub size: u64,
    /// An image's dimensions after re-encoding.
    pub dimensions: Option<Dimensions>,
    /// An image's thumbnail in the object store.
    pub thumbnail_key: Option<ObjectKey>,
}

/// An upload to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAttachment {
    /// Its id.
    pub id: AttachmentId,
    /// Who uploads it.
    pub uploader: Principal,
    /// The sanitised file name.
    pub name: String,
    /// Bytes it will have.
    pub length: u64,
    /// Now.
    pub created_at: Millis,
    /// When it is removed unless attached.
    pub expires_at: Millis,
}

/// The object store prefix of everything `uploader` uploaded.
pub fn uploader_prefix(uploader: Principal) -> ObjectKey {
    let text = match uploader {
        Principal::User(id) => format!("attachments/user-{}", id.0.simple()),
        Principal::Agent(id) => format!("attachments/agent-{}", id.0.simple()),
    };
    ObjectKey::parse(&text).expect("a uuid's simple form is a valid segment")
}

/// The object store prefix of one attachment's objects (its bytes, its thumbnail, the pieces of its
/// upload). Its objects are leaves below it: a folder cannot be a file too, so no key of the hub is
/// ever both an object and a prefix.
pub fn attachment_prefix(uploader: Principal, id: AttachmentId) -> ObjectKey {
    uploader_prefix(uploader).join(&id.0.simple().to_string()).expect("a uuid's simple form is a valid segment")
}

/// The object store key of an attachment's bytes.
pub fn object_key(uploader: Principal, id: AttachmentId) -> ObjectKey {
    attachment_prefix(uploader, id).join("original").expect("a valid segment")
}

/// The object store key of an image attachment's thumbnail.
pub fn thumbnail_key(uploader: Principal, id: AttachmentId) -> ObjectKey {
    attachment_prefix(uploader, id).join("thumbnail.jpg").expect("a valid segment")
}

/// The object store key of the piece of an upload that starts at byte `offset` (zero-padded, so
/// that the keys sort in byte order).
pub fn piece_key(uploader: Principal, id: AttachmentId, offset: u64) -> ObjectKey {
    attachment_prefix(uploader, id).join(&format!("{PIECE_PREFIX}{offset:012}")).expect("a valid segment")
}

/// Where the piece under `key` starts, if `key` names a piece of an upload.
pub fn piece_offset(key: &ObjectKey) -> Option<u64> {
    key.as_str().rsplit('/').next()?.strip_prefix(PIECE_PREFIX)?.parse().ok()
}

const PIECE_PREFIX: &str = "piece-";

/// A file name safe to store and show: the last path segment only, without control characters or
/// the direction overrides that can disguise an extension (`gpj.exe` shown as `exe.jpg`), without
/// dots and spaces at the ends, at most [`MAX_NAME_CHARS`] characters (the extension kept), and
/// `file` when nothing is left. Persian and other scripts are kept as written.
pub fn sanitise_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'))
        .collect();
    let trimmed = clean.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if trimmed.is_empty() {
        return "file".to_owned();
    }
    if trimmed.chars().count() <= MAX_NAME_CHARS {
        return trimmed.to_owned();
    }
    let (stem, ext) = match trimmed.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().count() <= 10 => (stem, Some(ext)),
        _ => (trimmed, None),
    };
    let room = MAX_NAME_CHARS - ext.map_or(0, |e| e.chars().count() + 1);
    let stem: String = stem.chars().take(room).collect();
    match ext {
        Some(ext) => format!("{}.{ext}", stem.trim_end()),
        None => stem.trim_end().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::UserId;

    #[test]
    fn names_lose_paths_controls_and_overrides_but_keep_their_script() {
        assert_eq!(sanitise_name("C:\\Users\\me\\رسید بانک.jpg"), "رسید بانک.jpg");
        assert_eq!(sanitise_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitise_name("photo\u{202E}gpj.exe"), "photogpj.exe");
        assert_eq!(sanitise_name("a\u{0}b\nc.pdf"), "abc.pdf");
        assert_eq!(sanitise_name(" .hidden. "), "hidden");
        assert_eq!(sanitise_name("..."), "file");
        assert_eq!(sanitise_name(""), "file");
    }

    #[test]
    fn long_names_are_cut_keeping_the_extension() {
        let long = format!("{}.pdf", "ن".repeat(300));
        let cut = sanitise_name(&long);
        assert_eq!(cut.chars().count(), MAX_NAME_CHARS);
        assert!(cut.ends_with(".pdf"));
        assert_eq!(sanitise_name(&"x".repeat(500)).chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn media_types_round_trip_and_know_their_kind() {
        for t in MediaType::ALL {
            assert_eq!(MediaType::parse(t.as_str()), Some(t));
        }
        assert_eq!(MediaType::parse("text/html"), None);
        assert_eq!(MediaType::parse("image/svg+xml"), None);
        assert_eq!(MediaType::WebP.kind(), AttachmentKind::Image);
        assert_eq!(MediaType::Pdf.kind(), AttachmentKind::File);
        for s in [AttachmentState::Uploading, AttachmentState::Stored, AttachmentState::Attached] {
            assert_eq!(AttachmentState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn keys_are_grouped_by_uploader() {
        let user = Principal::User(UserId::generate());
        let id = AttachmentId::generate();
        let key = object_key(user, id);
        assert!(key.is_under(&uploader_prefix(user)));
        assert!(thumbnail_key(user, id).is_under(&uploader_prefix(user)));
        assert!(!thumbnail_key(user, id).is_under(&key) && !key.is_under(&thumbnail_key(user, id)));
        assert!(!key.is_under(&uploader_prefix(Principal::User(UserId::generate()))));
        let piece = piece_key(user, id, 65_536);
        assert!(piece.is_under(&attachment_prefix(user, id)));
        assert_eq!(piece_offset(&piece), Some(65_536));
        assert_eq!(piece_offset(&key), None, "the original is no piece");
        assert!(piece_key(user, id, 9).as_str() < piece_key(user, id, 10).as_str(), "pieces sort by offset");
    }
}
