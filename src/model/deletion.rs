//! What deleting an account removed.

use crate::model::attachment::Attachment;
use crate::model::ticket::Ticket;

/// What deleting an account removed that the caller must act on outside the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedAccount {
    /// The account's tickets as they were, so that the people watching them can be told.
    pub tickets: Vec<Ticket>,
    /// The account's image path (`/v1/media/<sha256>.jpg`), if it had one.
    pub image: Option<String>,
    /// Whether another account still uses the same image (content-addressed files are shared by
    /// identical uploads), in which case the file must stay.
    pub image_still_used: bool,
    /// The attachments the account uploaded and those on its tickets (an agent's among them),
    /// whose bytes must now leave the object store.
    pub attachments: Vec<Attachment>,
}

/// The name of the one counter kept about deleted accounts: how many there were, nothing else.
pub const DELETED_ACCOUNTS: &str = "deleted_accounts";
