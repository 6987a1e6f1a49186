//! Identifier newtypes, so that a user id can never be passed where a device id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) identifier.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A phone user (an app user), created at the first successful sign-in with a number.
    UserId
);
uuid_id!(
    /// A device record of a user: one per app installation, keyed by the app's stable device id.
    DeviceId
);
uuid_id!(
    /// A signed-in session: one token bound to one device.
    SessionId
);
uuid_id!(
    /// A one-time sign-in code that was sent.
    CodeId
);
uuid_id!(
    /// A support agent (a staff account, not a phone user).
    AgentId
);
uuid_id!(
    /// A support ticket: one conversation between a user and support.
    TicketId
);
uuid_id!(
    /// An agent's canned reply.
    CannedReplyId
);
uuid_id!(
    /// An agent's private note on a ticket.
    NoteId
);
uuid_id!(
    /// A label agents put on tickets.
    LabelId
);
uuid_id!(
    /// The hub's id for a purchase the billing system reported (the billing system has its own
    /// `reference`).
    PurchaseId
);

uuid_id!(
    /// An uploaded file: an attachment of a message, from its first byte on.
    AttachmentId
);

/// The id of one live WebSocket on this node; only meaningful inside this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Who is behind a socket or an action: an app user or a support agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Principal {
    /// An app user.
    User(UserId),
    /// A support agent.
    Agent(AgentId),
}

impl Principal {
    /// `u:<id>` or `a:<id>`: how a principal appears in Redis keys and channel names.
    pub fn key(&self) -> String {
        match self {
            Self::User(u) => format!("u:{u}"),
            Self::Agent(a) => format!("a:{a}"),
        }
    }

    /// The principal of a [`Principal::key`].
    pub fn from_key(key: &str) -> Option<Self> {
        let (kind, id) = key.split_once(':')?;
        let id = uuid::Uuid::parse_str(id).ok()?;
        match kind {
            "u" => Some(Self::User(UserId(id))),
            "a" => Some(Self::Agent(AgentId(id))),
            _ => None,
        }
    }
}
