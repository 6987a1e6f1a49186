//! Checks of the [`anapars_hub::ports::store::attachments::Attachments`] port: uploads and their
//! progress, the limits under concurrency, the checked content, attaching (all or none, only by the
//! uploader), expiry, deletion, and what goes with an account.

use super::{agent, claim, message, new_ticket, race, ticket, user, HOUR, RACERS};
use anapars_hub::error::{Error, Result};
use anapars_hub::model::attachment::{
    sanitise_name, Attachment, AttachmentRefusal, AttachmentState, Dimensions, MediaType, NewAttachment, StoredContent,
};
use anapars_hub::model::ids::{AgentId, AttachmentId, Principal, TicketId, UserId};
use anapars_hub::model::ticket::{Appended, Author, NewMessage, TicketEvent};
use anapars_hub::model::time::{now_ms, Millis};
use anapars_hub::ports::store::attachments::{Created, UploadLimits};
use anapars_hub::ports::store::Store;
use std::sync::Arc;

/// The expiry check's window (1970-01-24): no other check's attachment expires before 1971.
const EXPIRY_EPOCH: Millis = 2_000_000_000;

/// Limits no check but the limits' own comes near.
const ROOMY: UploadLimits = UploadLimits { max_in_progress: 1000, max_bytes_per_day: u64::MAX, day_start: 0 };

fn new_upload(uploader: Principal, length: u64, at: Millis) -> NewAttachment {
    NewAttachment {
        id: AttachmentId::generate(),
        uploader,
        name: sanitise_name("رسید بانک.jpg"),
        length,
        created_at: at,
        expires_at: at + HOUR,
    }
}

fn created(outcome: Created) -> Attachment {
    match outcome {
        Created::Created(a) => a,
        other => panic!("expected a new upload, got {other:?}"),
    }
}

async fn upload(store: &dyn Store, uploader: Principal, length: u64) -> Result<Attachment> {
    Ok(created(store.create_attachment(&new_upload(uploader, length, now_ms()), &ROOMY).await?))
}

fn image_content(a: &Attachment) -> StoredContent {
    StoredContent {
        media_type: MediaType::Jpeg,
        size: 4321,
        dimensions: Some(Dimensions { width: 1080, height: 1920 }),
        thumbnail_key: Some(a.thumbnail_key()),
    }
}

/// An upload that received every byte and was checked: `stored`.
async fn stored(store: &dyn Store, uploader: Principal, length: u64) -> Result<Attachment> {
    let a = upload(store, uploader, length).await?;
    store.advance_upload(a.id, 0, length).await?.expect("the whole upload in one step");
    Ok(store.finish_upload(a.id, &image_content(&a)).await?.expect("a complete upload finishes"))
}

/// A new upload is `uploading` with nothing received, reads back whole, for users and agents; an
/// uploader who does not exist is `not_found`.
pub async fn create_attachment_starts_an_upload(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let now = now_ms();
    let new = new_upload(Principal::User(u.id), 6 << 20, now);
    let a = created(store.create_attachment(&new, &ROOMY).await?);
    let expected = Attachment {
        id: new.id,
        uploader: Principal::User(u.id),
        ticket_id: None,
        state: AttachmentState::Uploading,
        name: "رسید بانک.jpg".into(),
        length: 6 << 20,
        received: 0,
        content: None,
        created_at: now,
        expires_at: Some(now + HOUR),
    };
    assert_eq!(a, expected);
    assert_eq!(store.attachment(a.id).await?, Some(expected));
    let by_agent = upload(&*store, Principal::Agent(agent(&*store).await?.id), 10).await?;
    assert!(matches!(by_agent.uploader, Principal::Agent(_)));
    let nobody = new_upload(Principal::User(UserId::generate()), 10, now);
    assert!(matches!(store.create_attachment(&nobody, &ROOMY).await, Err(Error::NotFound("user"))));
    let no_agent = new_upload(Principal::Agent(AgentId::generate()), 10, now);
    assert!(matches!(store.create_attachment(&no_agent, &ROOMY).await, Err(Error::NotFound("agent"))));
    assert_eq!(store.attachment(nobody.id).await?, None);
    Ok(())
}

/// Progress moves only from the offset the store holds, never past the length; of racing writers
/// at one offset exactly one wins.
pub async fn advance_upload_moves_only_from_the_stored_offset(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let a = upload(&*store, Principal::User(u.id), 1000).await?;
    assert_eq!(store.advance_upload(a.id, 0, 400).await?.map(|a| a.received), Some(400));
    assert_eq!(store.advance_upload(a.id, 0, 400).await?, None, "the offset is 400 now");
    assert_eq!(store.advance_upload(a.id, 400, 1001).await?, None, "past the length");
    assert_eq!(store.advance_upload(a.id, 400, 300).await?, None, "backwards");
    let outcomes = race(|i| {
        let store = store.clone();
        async move { store.advance_upload(a.id, 400, 500 + i as u64).await }
    })
    .await?;
    let winners: Vec<_> = outcomes.iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{RACERS} writers at offset 400");
    let now_at = store.attachment(a.id).await?.expect("the upload").received;
    assert_eq!(now_at, winners[0].received);
    assert_eq!(store.advance_upload(AttachmentId::generate(), 0, 1).await?, None, "unknown id");
    Ok(())
}

/// A complete upload becomes `stored` with its checked content, once; an incomplete one does not.
pub async fn finish_upload_stores_the_content_of_a_complete_upload(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let a = upload(&*store, Principal::User(u.id), 100).await?;
    store.advance_upload(a.id, 0, 99).await?.expect("progress");
    assert_eq!(store.finish_upload(a.id, &image_content(&a)).await?, None, "one byte is missing");
    store.advance_upload(a.id, 99, 100).await?.expect("progress");
    let done = store.finish_upload(a.id, &image_content(&a)).await?.expect("complete");
    assert_eq!(done.state, AttachmentState::Stored);
    assert_eq!(done.content, Some(image_content(&a)));
    assert_eq!(store.attachment(a.id).await?, Some(done.clone()));
    assert_eq!(store.finish_upload(a.id, &image_content(&a)).await?, None, "stored already");
    assert_eq!(store.advance_upload(a.id, 100, 100).await?, None, "no progress once stored");
    // A file without image facts (a PDF) stores as well.
    let pdf = upload(&*store, Principal::User(u.id), 5).await?;
    store.advance_upload(pdf.id, 0, 5).await?.expect("progress");
    let content = StoredContent { media_type: MediaType::Pdf, size: 5, dimensions: None, thumbnail_key: None };
    assert_eq!(store.finish_upload(pdf.id, &content).await?.and_then(|a| a.content), Some(content));
    Ok(())
}

/// Racing creations by one uploader never pass `max_in_progress` together; the day's bytes count
/// the uploads created since the day's start; another uploader has limits of their own.
pub async fn upload_limits_hold_under_concurrency(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let limits = UploadLimits { max_in_progress: 3, max_bytes_per_day: u64::MAX, day_start: 0 };
    let outcomes = race(|_| {
        let store = store.clone();
        async move { store.create_attachment(&new_upload(Principal::User(u.id), 10, now_ms()), &limits).await }
    })
    .await?;
    let made = outcomes.iter().filter(|o| matches!(o, Created::Created(_))).count();
    assert_eq!(made, 3, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Created::Created(_) | Created::TooManyInProgress)));
    // A finished upload no longer counts as running.
    let first = outcomes.iter().find_map(|o| if let Created::Created(a) = o { Some(a.clone()) } else { None });
    let first = first.expect("one was created");
    store.advance_upload(first.id, 0, 10).await?.expect("progress");
    store.finish_upload(first.id, &image_content(&first)).await?.expect("finished");
    let again = store.create_attachment(&new_upload(Principal::User(u.id), 10, now_ms()), &limits).await?;
    assert!(matches!(again, Created::Created(_)), "{again:?}");

    let v = user(&*store).await?;
    let now = now_ms();
    let daily = UploadLimits { max_in_progress: 100, max_bytes_per_day: 1000, day_start: now - HOUR };
    created(store.create_attachment(&new_upload(Principal::User(v.id), 600, now), &daily).await?);
    let over = store.create_attachment(&new_upload(Principal::User(v.id), 401, now), &daily).await?;
    assert_eq!(over, Created::DailyBytesSpent { used: 600 });
    created(store.create_attachment(&new_upload(Principal::User(v.id), 400, now), &daily).await?);
    let next_day = UploadLimits { day_start: now + 1, ..daily };
    created(store.create_attachment(&new_upload(Principal::User(v.id), 1000, now + 2), &next_day).await?);
    // u's 5 uploads of 10 bytes leave exactly 950 of the day, whatever v used.
    let other = store.create_attachment(&new_upload(Principal::User(u.id), 950, now), &daily).await?;
    assert!(matches!(other, Created::Created(_)), "another uploader's bytes do not count: {other:?}");
    Ok(())
}

/// A message by `who` on `ticket` carrying `ids`, stored alone.
async fn send_with(store: &dyn Store, ticket: TicketId, who: Principal, ids: &[AttachmentId]) -> Result<Appended> {
    let m =
        NewMessage { attachments: ids.to_vec(), body: String::new(), ..message(ticket, Author::from(who), now_ms()) };
    Ok(store.append_messages(&[m]).await?.remove(0))
}

fn stored_event(outcome: Appended) -> TicketEvent {
    match outcome {
        Appended::Stored { mut events, .. } => events.pop().expect("the message"),
        other => panic!("expected the message stored, got {other:?}"),
    }
}

/// A message carries all the uploads it names or is not stored: one still uploading, another
/// person's, unknown, or on a message already refuses the message and changes no upload; the
/// ticket's opening too. Carried, an upload is attached to the ticket and no longer expires, and
/// the message reads back with it, in the order named.
pub async fn messages_carry_their_authors_uploads_all_or_none(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let me = Principal::User(u.id);
    let t = ticket(&*store, u.id, now_ms()).await?;
    let (a, b) = (stored(&*store, me, 10).await?, stored(&*store, me, 20).await?);
    let running = upload(&*store, me, 30).await?;
    let refused = |r| Appended::AttachmentRefused(r);
    assert_eq!(send_with(&*store, t.id, me, &[a.id, b.id, running.id]).await?, refused(AttachmentRefusal::Uploading));
    let stranger = user(&*store).await?;
    let theirs = ticket(&*store, stranger.id, now_ms()).await?;
    let stranger = Principal::User(stranger.id);
    assert_eq!(send_with(&*store, theirs.id, stranger, &[a.id]).await?, refused(AttachmentRefusal::Unknown));
    assert_eq!(
        send_with(&*store, t.id, me, &[a.id, AttachmentId::generate()]).await?,
        refused(AttachmentRefusal::Unknown)
    );
    for id in [a.id, b.id] {
        let unchanged = store.attachment(id).await?.expect("still there");
        assert_eq!((unchanged.state, unchanged.ticket_id), (AttachmentState::Stored, None), "nothing changed");
    }
    assert_eq!(store.ticket(t.id).await?.expect("the ticket").last_seq, 2, "no refused message was stored");

    let event = stored_event(send_with(&*store, t.id, me, &[b.id, a.id]).await?);
    let carried: Vec<_> = event.attachments.iter().map(|x| x.id).collect();
    assert_eq!(carried, [b.id, a.id], "in the order named");
    assert_eq!(event.attachments[0], store.attachment(b.id).await?.expect("b").on_message().expect("checked"));
    let read = store.events(t.id, anapars_hub::model::ticket::Page::After(2), 10).await?;
    assert_eq!(read, [event], "the message reads back with its attachments");
    for id in [a.id, b.id] {
        let x = store.attachment(id).await?.expect("kept");
        assert_eq!((x.state, x.ticket_id, x.expires_at), (AttachmentState::Attached, Some(t.id), None));
    }
    assert_eq!(send_with(&*store, t.id, me, &[a.id]).await?, refused(AttachmentRefusal::Attached));

    // An agent carries their own uploads on a ticket they hold.
    let ag = agent(&*store).await?;
    store.transition(&claim(t.id, ag.id, now_ms())).await?.expect("claimed");
    let agents = stored(&*store, Principal::Agent(ag.id), 7).await?;
    assert_eq!(
        send_with(&*store, t.id, Principal::Agent(ag.id), &[running.id]).await?,
        refused(AttachmentRefusal::Unknown)
    );
    stored_event(send_with(&*store, t.id, Principal::Agent(ag.id), &[agents.id]).await?);

    // Opening a ticket: refused, nothing of it stays; carried, its first message has the upload.
    let c = stored(&*store, me, 5).await?;
    let bad =
        anapars_hub::model::ticket::NewTicket { attachments: vec![c.id, running.id], ..new_ticket(u.id, now_ms()) };
    let refusal = store.open_ticket(&bad).await.expect_err("an upload still running");
    assert!(matches!(refusal, Error::WrongState(_)), "{refusal:?}");
    assert_eq!(store.ticket(bad.id).await?, None, "the refused opening left no ticket");
    let good = anapars_hub::model::ticket::NewTicket { attachments: vec![c.id], ..new_ticket(u.id, now_ms()) };
    let opened = store.open_ticket(&good).await?;
    assert_eq!(opened.events[1].attachments, [c.on_message().expect("checked")]);
    assert_eq!(store.attachment(c.id).await?.expect("c").ticket_id, Some(good.id));
    Ok(())
}

/// The expired are the unattached ones whose time passed, oldest expiry first, at most `limit`.
pub async fn expired_attachments_are_the_unattached_past_their_time(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let me = Principal::User(u.id);
    let t = ticket(&*store, u.id, now_ms()).await?;
    let at = |minutes: Millis| EXPIRY_EPOCH + minutes * 60_000;
    let make = |created_at: Millis, expires_at: Millis| NewAttachment { expires_at, ..new_upload(me, 10, created_at) };
    let late_upload = created(store.create_attachment(&make(at(0), at(30)), &ROOMY).await?);
    let early_upload = created(store.create_attachment(&make(at(0), at(10)), &ROOMY).await?);
    let stored_one = created(store.create_attachment(&make(at(0), at(20)), &ROOMY).await?);
    store.advance_upload(stored_one.id, 0, 10).await?.expect("progress");
    store.finish_upload(stored_one.id, &image_content(&stored_one)).await?.expect("stored");
    let attached = created(store.create_attachment(&make(at(0), at(5)), &ROOMY).await?);
    store.advance_upload(attached.id, 0, 10).await?.expect("progress");
    store.finish_upload(attached.id, &image_content(&attached)).await?.expect("stored");
    stored_event(send_with(&*store, t.id, me, &[attached.id]).await?);
    let not_yet = created(store.create_attachment(&make(at(0), at(60)), &ROOMY).await?);

    let ids = |list: Vec<Attachment>| list.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(ids(store.expired_attachments(at(40), 100).await?), [early_upload.id, stored_one.id, late_upload.id]);
    assert_eq!(ids(store.expired_attachments(at(40), 2).await?), [early_upload.id, stored_one.id]);
    assert_eq!(ids(store.expired_attachments(at(10), 100).await?), Vec::<AttachmentId>::new(), "expiry is exclusive");
    assert!(store.attachment(not_yet.id).await?.is_some());
    Ok(())
}

/// Deleting returns the record once; then it is gone.
pub async fn delete_attachment_returns_the_record_once(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let a = stored(&*store, Principal::User(u.id), 10).await?;
    assert_eq!(store.delete_attachment(a.id).await?, Some(a.clone()));
    assert_eq!(store.attachment(a.id).await?, None);
    assert_eq!(store.delete_attachment(a.id).await?, None);
    Ok(())
}

/// An uploader's list holds their own uploads in every state, oldest first, and nobody else's.
pub async fn uploaded_by_lists_the_uploaders_own_oldest_first(store: Arc<dyn Store>) -> Result<()> {
    let (u, v) = (user(&*store).await?, user(&*store).await?);
    let ag = agent(&*store).await?;
    let now = now_ms();
    let mut mine = Vec::new();
    for i in [2, 0, 1] {
        mine.push(created(store.create_attachment(&new_upload(Principal::User(u.id), 10, now + i), &ROOMY).await?));
    }
    upload(&*store, Principal::User(v.id), 10).await?;
    let agents = upload(&*store, Principal::Agent(ag.id), 10).await?;
    mine.sort_by_key(|a| a.created_at);
    assert_eq!(store.uploaded_by(Principal::User(u.id)).await?, mine);
    assert_eq!(store.uploaded_by(Principal::Agent(ag.id)).await?, vec![agents]);
    assert!(store.uploaded_by(Principal::User(UserId::generate())).await?.is_empty());
    Ok(())
}

/// Deleting an account deletes its user's uploads and everything attached to the user's tickets,
/// an agent's included; another user's stay.
pub async fn deleting_an_account_deletes_its_attachments(store: Arc<dyn Store>) -> Result<()> {
    let (u, other) = (user(&*store).await?, user(&*store).await?);
    let ag = agent(&*store).await?;
    let t = ticket(&*store, u.id, now_ms()).await?;
    let own = stored(&*store, Principal::User(u.id), 10).await?;
    let running = upload(&*store, Principal::User(u.id), 10).await?;
    let agents = stored(&*store, Principal::Agent(ag.id), 10).await?;
    stored_event(send_with(&*store, t.id, Principal::User(u.id), &[own.id]).await?);
    store.transition(&claim(t.id, ag.id, now_ms())).await?.expect("claimed");
    stored_event(send_with(&*store, t.id, Principal::Agent(ag.id), &[agents.id]).await?);
    let kept = stored(&*store, Principal::User(other.id), 10).await?;
    let deleted = store.delete_account(u.id, &[]).await?.expect("deleted");
    let mut reported: Vec<_> = deleted.attachments.iter().map(|a| a.id).collect();
    reported.sort();
    let mut expected = vec![own.id, running.id, agents.id];
    expected.sort();
    assert_eq!(reported, expected, "the deletion names every attachment whose bytes must go");
    for id in [own.id, running.id, agents.id] {
        assert_eq!(store.attachment(id).await?, None);
    }
    assert!(store.attachment(kept.id).await?.is_some());
    assert!(store.uploaded_by(Principal::User(u.id)).await?.is_empty());
    Ok(())
}
