//! Product events: what the domain tells the people entitled to know after something happened.
//! The domain publishes them through the broker port; only the gateway renders them into frames
//! (once per encoding), and between the nodes of a cluster the events themselves travel.

use crate::model::ids::{Principal, TicketId};
use crate::model::profile::PublicProfile;
use crate::model::purchase::Purchase;
use crate::model::telemetry::Consent;
use crate::model::ticket::{Author, Ticket, TicketEvent};
use crate::model::time::Millis;
use serde::{Deserialize, Serialize};

/// Something that happened, for an audience.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// A stored event of a ticket's stream (its opening, a message, a state change).
    TicketEvent(TicketEvent),
    /// A ticket's summary after a change.
    TicketUpdated(Ticket),
    /// An agent's private note on a ticket (for agents only).
    TicketNote(crate::model::note::Note),
    /// The team's labels after a change (for agents only).
    LabelsUpdated(Vec<crate::model::label::Label>),
    /// A ticket's labels after a change (for agents only).
    TicketLabels(crate::model::label::TicketLabels),
    /// A ticket was resolved: its user may rate the resolution (to the user's apps).
    RatingRequested(crate::model::rating::RatingRequest),
    /// A user rated a resolution (to every agent and the user's apps).
    TicketRated(crate::model::rating::Rating),
    /// A ticket is gone (its user deleted their account).
    TicketDeleted(TicketId),
    /// An open ticket's place in the queue changed.
    QueuePosition {
        /// The ticket.
        ticket_id: TicketId,
        /// 1 for the next ticket to be taken.
        position: u32,
        /// The expected wait, when the hub can estimate it.
        estimated_wait_ms: Option<u64>,
    },
    /// A participant's delivered and read marks on a ticket moved.
    Receipt {
        /// The ticket.
        ticket_id: TicketId,
        /// Whose marks.
        by: Author,
        /// Events up to this seq reached one of their devices.
        delivered_seq: u64,
        /// Events up to this seq were seen.
        read_seq: u64,
    },
    /// A participant is typing in a ticket.
    Typing {
        /// The ticket.
        ticket_id: TicketId,
        /// Who is typing.
        by: Author,
    },
    /// Someone came online or went offline.
    Presence {
        /// Who.
        who: Principal,
        /// Online now, or offline.
        online: bool,
        /// For offline: when they were last seen, unless they hide it.
        last_seen_at: Option<Millis>,
    },
    /// A user's name, image or last-seen setting changed.
    ProfileUpdated(PublicProfile),
    /// Billing reported a change of one of the user's purchases.
    PurchaseUpdated {
        /// The purchase after the report.
        purchase: Purchase,
        /// When it was told (subscriptions are active or not relative to this time).
        at: Millis,
    },
    /// The user changed their consent.
    ConsentUpdated(Consent),
    /// The user's settings document was replaced.
    SettingsUpdated {
        /// The whole document.
        settings: serde_json::Map<String, serde_json::Value>,
        /// When it was stored.
        updated_at: Millis,
    },
    /// An operator announcement.
    Announcement {
        /// Its id.
        id: uuid::Uuid,
        /// The text, in the operator's words.
        text: String,
        /// When it was sent.
        sent_at: Millis,
    },
}
