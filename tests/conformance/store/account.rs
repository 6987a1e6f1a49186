//! Checks of the [`anapars_hub::ports::store::account::AccountRecords`] port: the number change, the export's
//! pages, and the deletion of everything an account left.

use super::purchases::subscription;
use super::telemetry::{report, views};
use super::{agent, apply, claim, code, device, message, phone, phone_key, session, ticket, user, HOUR};
use anapars_hub::error::{Error, Result};
use anapars_hub::model::deletion::DELETED_ACCOUNTS;
use anapars_hub::model::ids::UserId;
use anapars_hub::model::profile::ProfileUpdate;
use anapars_hub::model::telemetry::{ConnectionRecord, ConsentChange, ConsentDefaults, TelemetryWrite};
use anapars_hub::model::ticket::{Author, Page};
use anapars_hub::model::time::now_ms;
use anapars_hub::ports::store::Store;
use std::sync::Arc;
use uuid::Uuid;

fn connection(user: UserId, device: anapars_hub::model::ids::DeviceId, at: i64) -> TelemetryWrite {
    TelemetryWrite::Connected(ConnectionRecord {
        id: Uuid::new_v4(),
        user_id: user,
        device_id: device,
        ip: "198.51.100.4".into(),
        user_agent: Some("Anapars/4.0".into()),
        client_version: Some("4.0".into()),
        connected_at: at,
        disconnected_at: None,
    })
}

/// The account moves to the new number (the old one no longer finds it); a number another account
/// holds is refused with `conflict` and changes nothing; an unknown user changes nothing.
pub async fn change_phone_moves_the_account_and_refuses_a_taken_number(store: Arc<dyn Store>) -> Result<()> {
    let a = user(&*store).await?;
    let b = user(&*store).await?;
    let new = phone();
    assert!(store.change_phone(a.id, &new).await?);
    assert_eq!(store.user_by_phone(&new).await?.map(|u| u.id), Some(a.id));
    assert_eq!(store.user_by_phone(&a.phone).await?, None, "the old number no longer finds the account");
    assert_eq!(store.user(a.id).await?.map(|u| u.phone), Some(new.clone()));
    match store.change_phone(a.id, &b.phone).await {
        Err(Error::Conflict(_)) => {}
        other => panic!("changing to a taken number must be a conflict, got {other:?}"),
    }
    assert_eq!(store.user(a.id).await?.map(|u| u.phone), Some(new), "a refused change changes nothing");
    assert_eq!(store.user_by_phone(&b.phone).await?.map(|u| u.id), Some(b.id));
    assert!(!store.change_phone(UserId::generate(), &phone()).await?);
    Ok(())
}

/// The export's pages: tickets, view events and connection records come oldest first, page after
/// page from their cursors, each exactly once; sessions include revoked ones.
pub async fn account_pages_list_everything_once_in_order(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let d = device(&*store, u.id).await?;
    let now = now_ms();
    let mut opened = Vec::new();
    for i in 0..5 {
        opened.push(ticket(&*store, u.id, now + i).await?.id);
    }
    let mut listed = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.tickets_after(u.id, cursor, 2).await?;
        let Some(last) = page.last() else { break };
        cursor = Some((last.created_at, last.id));
        listed.extend(page.iter().map(|t| t.id));
    }
    assert_eq!(listed, opened);

    store.store_telemetry(&[views(u.id, d.id, 7, now), views(u.id, d.id, 3, now + 1)], true).await?;
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.views_after(u.id, after, 4).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        seen.extend(page.into_iter().map(|(_, v)| v));
    }
    assert_eq!(seen.len(), 10);
    assert_eq!(
        seen.iter().map(|v| v.event.screen.clone()).collect::<Vec<_>>()[..7],
        *(0..7).map(|i| format!("screen-{i}")).collect::<Vec<_>>()
    );

    let writes: Vec<TelemetryWrite> = (0..5).map(|i| connection(u.id, d.id, now + (i / 2))).collect();
    store.store_telemetry(&writes, true).await?;
    let mut records = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.connections_after(u.id, cursor, 2).await?;
        let Some(last) = page.last() else { break };
        cursor = Some((last.connected_at, last.id));
        records.extend(page);
    }
    assert_eq!(records.len(), 5, "ties on connected_at are paged by id, none lost or repeated");
    assert!(records.windows(2).all(|w| (w[0].connected_at, w[0].id) < (w[1].connected_at, w[1].id)));

    let (live, _) = session(&*store, &d, now, now + HOUR).await?;
    let (revoked, _) = session(&*store, &d, now + 1, now + HOUR).await?;
    store.revoke_session(revoked.id, now + 2).await?;
    let sessions: Vec<_> = store.all_sessions(u.id).await?.into_iter().map(|s| s.id).collect();
    assert_eq!(sessions, vec![live.id, revoked.id]);
    Ok(())
}

/// Deleting an account removes every row of it, in every table the port reaches, and its number's
/// codes and lock-outs; another account's data stays; the counter goes up; a second deletion
/// finds nothing. A shared image is reported as still used until its last user is deleted.
pub async fn delete_account_leaves_nothing_of_the_account(store: Arc<dyn Store>) -> Result<()> {
    let now = now_ms();
    let defaults = ConsentDefaults { analytics: true, personalisation: true };
    let mut people = Vec::new();
    for _ in 0..2 {
        let u = user(&*store).await?;
        let d = device(&*store, u.id).await?;
        let (s, _) = session(&*store, &d, now, now + HOUR).await?;
        let t = ticket(&*store, u.id, now).await?;
        let a = agent(&*store).await?;
        apply(&*store, &claim(t.id, a.id, now)).await?;
        store
            .append_messages(&[message(t.id, Author::Agent(a.id), now), message(t.id, Author::User(u.id), now)])
            .await?;
        store.mark(t.id, Author::User(u.id), 3, 3).await?;
        store.mark(t.id, Author::Agent(a.id), 4, 4).await?;
        store
            .store_telemetry(
                &[
                    report("14", now, &d),
                    report("15", now + 1, &d),
                    views(u.id, d.id, 3, now),
                    connection(u.id, d.id, now),
                ],
                true,
            )
            .await?;
        store.put_settings(u.id, r#"{"theme":"dark"}"#, now, true).await?;
        store.set_consent(u.id, ConsentChange { analytics: Some(true), ..Default::default() }, defaults, now).await?;
        store
            .update_profile(
                u.id,
                &ProfileUpdate {
                    name: Some(Some("Sara".into())),
                    image: Some(Some("/v1/media/shared.jpg".into())),
                    hide_last_seen: None,
                },
            )
            .await?;
        store.record_purchase(&subscription(u.id, now), now).await?;
        let pk = phone_key();
        store.put_code(&code(&pk, now, now + HOUR)).await?;
        store.add_failure(&pk, now).await?;
        people.push((u, d, s, t, pk));
    }
    let before = store.counter(DELETED_ACCOUNTS).await?;
    let (u, d, s, t, pk) = &people[0];
    let deleted = store.delete_account(u.id, std::slice::from_ref(pk)).await?.expect("the account exists");
    assert_eq!(deleted.tickets.iter().map(|t| t.id).collect::<Vec<_>>(), vec![t.id]);
    assert_eq!(deleted.image.as_deref(), Some("/v1/media/shared.jpg"));
    assert!(deleted.image_still_used, "the other account still shows the same image");
    assert!(store.counter(DELETED_ACCOUNTS).await? > before);

    assert_eq!(store.user(u.id).await?, None);
    assert_eq!(store.user_by_phone(&u.phone).await?, None);
    assert!(store.devices(u.id).await?.is_empty());
    assert_eq!(store.session(s.id).await?, None);
    assert!(store.all_sessions(u.id).await?.is_empty());
    assert_eq!(store.ticket(t.id).await?, None);
    assert!(store.events(t.id, Page::After(0), 100).await?.is_empty());
    assert!(store.marks(t.id).await?.is_empty());
    assert!(store.views_after(u.id, 0, 100).await?.is_empty());
    assert!(store.connections_after(u.id, None, 100).await?.is_empty());
    assert_eq!(store.device_info(d.id).await?, None);
    assert!(store.device_history(d.id).await?.is_empty());
    assert_eq!(store.settings(u.id).await?, None);
    assert_eq!(store.consent(u.id).await?, None);
    assert_eq!(store.current_code(pk).await?, None);
    assert_eq!(store.phone_guard(pk).await?, Default::default());
    assert!(store.tickets_after(u.id, None, 100).await?.is_empty());
    assert!(store.purchases(u.id).await?.is_empty(), "the fees paid go with the account");

    let (other, od, os, ot, opk) = &people[1];
    assert!(store.user(other.id).await?.is_some(), "another account is untouched");
    assert!(store.session(os.id).await?.is_some());
    assert_eq!(store.events(ot.id, Page::After(0), 100).await?.len(), 5);
    assert_eq!(store.views_after(other.id, 0, 100).await?.len(), 3);
    assert!(store.device_info(od.id).await?.is_some());
    assert!(store.current_code(opk).await?.is_some());
    assert_eq!(store.purchases(other.id).await?.len(), 1);
    assert!(store.image_in_use("/v1/media/shared.jpg").await?);

    assert_eq!(store.delete_account(u.id, &[]).await?, None, "deleted already");
    let last = store.delete_account(other.id, &[]).await?.expect("the other account exists");
    assert!(!last.image_still_used, "nobody shows the image any more");
    assert!(!store.image_in_use("/v1/media/shared.jpg").await?);
    Ok(())
}
