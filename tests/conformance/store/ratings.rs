//! Checks of the [`anapars_hub::ports::store::ratings::Ratings`] port: one rating per resolution,
//! only while the ticket is resolved at that seq, credited to the agent who resolved it; a reopen
//! and a new resolution make a new one possible; unrated resolutions are listed until they are rated.

use super::{agent, apply, claim, message, resolve, ticket, user};
use anapars_hub::error::Result;
use anapars_hub::model::rating::{Rated, Rating};
use anapars_hub::model::ticket::Author;
use anapars_hub::model::time::now_ms;
use anapars_hub::ports::store::Store;
use std::sync::Arc;

/// One rating per resolution, only of the current one; reopening and resolving again asks anew.
pub async fn ratings_are_one_per_resolution_of_a_resolved_ticket(store: Arc<dyn Store>) -> Result<()> {
    let (u, a) = (user(&*store).await?, agent(&*store).await?);
    let now = now_ms();
    let t = ticket(&*store, u.id, now).await?;
    let rating = |seq: u64, score: u8| Rating {
        ticket_id: t.id,
        resolution_seq: seq,
        agent_id: None,
        score,
        comment: Some("سریع و دقیق".into()),
        rated_at: now_ms(),
    };
    assert_eq!(store.rate(&rating(2, 5)).await?, Rated::NotResolved, "an open ticket cannot be rated");
    apply(&*store, &claim(t.id, a.id, now + 1)).await?;
    let resolved = apply(&*store, &resolve(t.id, a.id, now + 2)).await?;
    assert_eq!(resolved.last_seq, 4, "opened, message, claimed, resolved");
    assert_eq!(store.unrated(u.id, now).await?, [(t.id, 4, now + 2)]);
    assert_eq!(store.unrated(u.id, now + 2).await?, [], "resolved at or before the bound: not listed");
    assert_eq!(store.rate(&rating(3, 5)).await?, Rated::NotResolved, "not the resolution's seq");

    let first = rating(4, 4);
    let Rated::Stored(stored) = store.rate(&first).await? else { panic!("the resolution's rating is stored") };
    assert_eq!(stored, Rating { agent_id: Some(a.id), ..first.clone() }, "credited to the resolving agent");
    assert_eq!(store.rate(&rating(4, 1)).await?, Rated::Earlier(stored.clone()), "once per resolution");
    assert_eq!(store.unrated(u.id, now).await?, [], "rated: no longer asked");

    // The user writes again (reopened), another agent resolves it: a new resolution to rate.
    let b = agent(&*store).await?;
    store.append_messages(&[message(t.id, Author::User(u.id), now + 3)]).await?;
    assert_eq!(store.rate(&rating(4, 2)).await?, Rated::Earlier(stored.clone()), "the earlier rating stays");
    assert_eq!(store.rate(&rating(6, 2)).await?, Rated::NotResolved, "reopened: nothing to rate");
    apply(&*store, &claim(t.id, b.id, now + 4)).await?;
    let again = apply(&*store, &resolve(t.id, b.id, now + 5)).await?;
    assert_eq!(again.last_seq, 8, "reopened, message, claimed, resolved");
    assert_eq!(store.unrated(u.id, now).await?, [(t.id, 8, now + 5)]);
    let Rated::Stored(second) = store.rate(&rating(8, 2)).await? else { panic!("the new resolution is rated") };
    assert_eq!(second.agent_id, Some(b.id));

    let other = ticket(&*store, u.id, now).await?;
    let ratings = store.ratings(&[t.id, other.id]).await?;
    assert_eq!(ratings, [stored, second], "by resolution; the other ticket has none");
    Ok(())
}

/// A user's account deletion takes their ratings with their tickets.
pub async fn ratings_go_with_their_ticket(store: Arc<dyn Store>) -> Result<()> {
    let (u, a) = (user(&*store).await?, agent(&*store).await?);
    let now = now_ms();
    let t = ticket(&*store, u.id, now).await?;
    apply(&*store, &claim(t.id, a.id, now + 1)).await?;
    apply(&*store, &resolve(t.id, a.id, now + 2)).await?;
    let rating =
        Rating { ticket_id: t.id, resolution_seq: 4, agent_id: None, score: 3, comment: None, rated_at: now + 3 };
    assert!(matches!(store.rate(&rating).await?, Rated::Stored(_)));
    assert!(store.delete_account(u.id, &[]).await?.is_some());
    assert_eq!(store.ratings(&[t.id]).await?, []);
    Ok(())
}
