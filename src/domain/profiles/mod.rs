//! Profiles: a user's name and image, who may see them, and telling those people when they change.
//! Images are stored content-addressed on disk (`<media_dir>/<sha256>.jpg`) and served at a stable
//! URL (`/v1/media/<sha256>.jpg`) that can be cached forever, since its content never changes.

use crate::domain::media::image::{self, ImagePolicy};
use crate::domain::presence::Presence;
use crate::domain::telemetry::TelemetryDesk;
use crate::error::{Error, Result};
use crate::model::event::Event;
use crate::model::ids::{Principal, UserId};
use crate::model::profile::{Customer, Profile, ProfileUpdate, PublicProfile, CUSTOMER_TICKETS};
use crate::model::ticket::TicketStatus;
use crate::ports::broker::{Audience, Broker};
use crate::ports::store::profiles::Profiles;
use crate::ports::store::tickets::Tickets;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

/// URL path prefix of stored images.
pub const MEDIA_PATH: &str = "/v1/media/";
/// Longest display name.
pub const MAX_NAME_CHARS: usize = 64;

/// Profiles of users.
pub struct ProfileDesk {
    profiles: Arc<dyn Profiles>,
    tickets: Arc<dyn Tickets>,
    broker: Arc<dyn Broker>,
    presence: Arc<Presence>,
    telemetry: Arc<TelemetryDesk>,
    media_dir: PathBuf,
    policy: ImagePolicy,
}

impl ProfileDesk {
    /// Profiles over these ports, with images in `media_dir`; device reports for agents come from
    /// `telemetry`, which applies the users' consent.
    pub fn new(
        profiles: Arc<dyn Profiles>,
        tickets: Arc<dyn Tickets>,
        broker: Arc<dyn Broker>,
        presence: Arc<Presence>,
        telemetry: Arc<TelemetryDesk>,
        media_dir: PathBuf,
        policy: ImagePolicy,
    ) -> Self {
        Self { profiles, tickets, broker, presence, telemetry, media_dir, policy }
    }

    /// The view of a profile, with presence.
    pub async fn view(&self, profile: &Profile) -> PublicProfile {
        let online = self.presence.is_online(Principal::User(profile.user_id)).await;
        PublicProfile {
            user_id: profile.user_id,
            name: profile.name.clone(),
            image: profile.image.clone(),
            online,
            last_seen_at: if online || profile.hide_last_seen { None } else { profile.last_seen_at },
        }
    }

    /// A user's profile: agents may read any; users only their own.
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `unavailable`.
    pub async fn get(&self, who: Principal, user: UserId) -> Result<PublicProfile> {
        if who == Principal::User(user) || matches!(who, Principal::Agent(_)) {
            let profile = self.profiles.profile(user).await?.ok_or(Error::NotFound("user"))?;
            Ok(self.view(&profile).await)
        } else {
            Err(Error::Forbidden)
        }
    }

    /// A user as an agent sees them beside a conversation: profile, latest device report (when the
    /// user's analytics consent is on) and tickets, most recently updated first.
    ///
    /// # Errors
    /// `forbidden` for users, `not_found` for an unknown user, `unavailable`.
    pub async fn customer(&self, who: Principal, user: UserId) -> Result<Customer> {
        let Principal::Agent(_) = who else { return Err(Error::Forbidden) };
        let profile = self.profiles.profile(user).await?.ok_or(Error::NotFound("user"))?;
        let profile = self.view(&profile).await;
        let device = self.telemetry.shared_device(user).await?;
        let tickets = self.tickets.user_tickets(user, CUSTOMER_TICKETS).await?;
        Ok(Customer { profile, device, tickets })
    }

    /// Changes a user's name and last-seen setting and tells whoever can see the profile.
    ///
    /// # Errors
    /// `forbidden` for agents, `bad_request` for a name outside 1..=64 characters, `unavailable`.
    pub async fn update(
        &self,
        who: Principal,
        name: Option<Option<String>>,
        hide_last_seen: Option<bool>,
    ) -> Result<PublicProfile> {
        let Principal::User(user) = who else { return Err(Error::Forbidden) };
        let name = match name {
            Some(Some(n)) => {
                let n = n.trim().to_owned();
                if n.is_empty() || n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) {
                    return Err(Error::BadRequest(format!("name must be 1 to {MAX_NAME_CHARS} printable characters")));
                }
                Some(Some(n))
            }
            other => other,
        };
        self.apply(user, ProfileUpdate { name, image: None, hide_last_seen }).await
    }

    /// Stores a new profile image for the user (decoded, checked, re-encoded) and tells whoever can
    /// see the profile.
    ///
    /// # Errors
    /// `too_large`, `bad_image`, `unavailable`, `internal` when the file cannot be written.
    pub async fn set_image(&self, user: UserId, bytes: Vec<u8>) -> Result<PublicProfile> {
        let policy = self.policy;
        let jpeg = tokio::task::spawn_blocking(move || image::normalise(&bytes, policy))
            .await
            .map_err(|e| Error::Internal(format!("image task: {e}")))??;
        let name = format!("{}.jpg", hex(&Sha256::digest(&jpeg)));
        self.write_media(&name, &jpeg).await?;
        let before = self.current_image(user).await?;
        let view = self
            .apply(user, ProfileUpdate { image: Some(Some(format!("{MEDIA_PATH}{name}"))), ..Default::default() })
            .await?;
        if let Some(old) = before.filter(|old| view.image.as_deref() != Some(old.as_str())) {
            self.discard_image(&old).await;
        }
        Ok(view)
    }

    /// Removes the user's profile image.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn clear_image(&self, user: UserId) -> Result<PublicProfile> {
        let before = self.current_image(user).await?;
        let view = self.apply(user, ProfileUpdate { image: Some(None), ..Default::default() }).await?;
        if let Some(old) = before {
            self.discard_image(&old).await;
        }
        Ok(view)
    }

    async fn current_image(&self, user: UserId) -> Result<Option<String>> {
        Ok(self.profiles.profile(user).await?.and_then(|p| p.image))
    }

    /// Deletes the file behind an image path (`/v1/media/<sha256>.jpg`) that no profile names any
    /// more: a replaced, removed or deleted account's image does not stay on disk. Files are shared
    /// by identical uploads, hence the check. Failures are logged, not returned: the profile change
    /// they follow has happened.
    pub async fn discard_image(&self, path: &str) {
        let Some(file) = path.strip_prefix(MEDIA_PATH).filter(|f| !f.contains('/') && !f.starts_with('.')) else {
            return;
        };
        match self.profiles.image_in_use(path).await {
            Ok(false) => match tokio::fs::remove_file(self.media_dir.join(file)).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(error = %e, "an unused image file could not be deleted"),
            },
            Ok(true) => {}
            Err(e) => tracing::warn!(error = %e, "image file kept: could not check whether it is still used"),
        }
    }

    /// A stored image by file name (`<64 hex>.jpg`); `None` for any other name or a missing file.
    pub async fn media(&self, file: &str) -> Option<Vec<u8>> {
        let valid = file.len() == 68
            && file.ends_with(".jpg")
            && file[..64].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !valid {
            return None;
        }
        tokio::fs::read(self.media_dir.join(file)).await.ok()
    }

    async fn write_media(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.media_dir.join(name);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(()); // Same content, same name: already stored.
        }
        let fail =
            |e: std::io::Error| Error::Internal(format!("storing an image in {}: {e}", self.media_dir.display()));
        tokio::fs::create_dir_all(&self.media_dir).await.map_err(fail)?;
        // Written aside and renamed, so a reader never sees half a file.
        let tmp = self.media_dir.join(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, bytes).await.map_err(fail)?;
        tokio::fs::rename(&tmp, &path).await.map_err(fail)
    }

    async fn apply(&self, user: UserId, update: ProfileUpdate) -> Result<PublicProfile> {
        let profile = self.profiles.update_profile(user, &update).await?.ok_or(Error::NotFound("user"))?;
        let view = self.view(&profile).await;
        self.publish(&view).await;
        Ok(view)
    }

    /// Tells the user's sockets and the agents handling the user's open tickets (and those tickets'
    /// followers).
    async fn publish(&self, view: &PublicProfile) {
        let user = view.user_id;
        let tickets = match self.tickets.user_tickets(user, 100).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "profile change not published");
                return;
            }
        };
        let open: Vec<_> = tickets.iter().filter(|t| t.status != TicketStatus::Resolved).collect();
        let mut principals = vec![Principal::User(user)];
        principals.extend(open.iter().filter_map(|t| t.agent_id.map(Principal::Agent)));
        let ids: Vec<_> = open.iter().map(|t| t.id).collect();
        let event = Event::ProfileUpdated(view.clone());
        self.broker.publish(&Audience { tickets: &ids, principals: &principals, ..Audience::default() }, event);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
