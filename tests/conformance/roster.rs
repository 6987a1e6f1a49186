//! The conformance checks every [`Roster`] passes (run by `tests/roster.rs` against memory always and
//! Redis when `TEST_REDIS_URL` is set). The factory gives a roster after its first upkeep (a cluster
//! node heartbeats before it serves); each check uses fresh people.

use anapars_hub::model::ids::{AgentId, Principal, UserId};
use anapars_hub::ports::roster::Roster;
use std::sync::Arc;

fn someone() -> Principal {
    Principal::User(UserId::generate())
}

/// The first stretch of sockets brings a person online; a later stretch on the same node changes
/// nothing; the end of an old stretch is ignored; the end of the current one takes them offline,
/// once.
pub async fn arrivals_and_departures_announce_once(r: Arc<dyn Roster>) {
    let who = someone();
    assert!(r.arrived(who, 1).await.unwrap(), "first arrival announces");
    assert_eq!(r.online(&[who]).await.unwrap(), [true]);
    assert!(!r.arrived(who, 2).await.unwrap(), "already online");
    assert!(!r.departed(who, 1).await.unwrap(), "the end of an older stretch is ignored");
    assert_eq!(r.online(&[who]).await.unwrap(), [true]);
    assert!(r.departed(who, 2).await.unwrap(), "the last departure announces");
    assert_eq!(r.online(&[who]).await.unwrap(), [false]);
    assert!(!r.departed(who, 2).await.unwrap(), "and only once");
}

/// Online flags come back in the order asked, for any number of people.
pub async fn online_answers_in_order(r: Arc<dyn Roster>) {
    let (a, b, c) = (someone(), someone(), someone());
    r.arrived(a, 1).await.unwrap();
    r.arrived(c, 1).await.unwrap();
    assert_eq!(r.online(&[a, b, c]).await.unwrap(), [true, false, true]);
    assert_eq!(r.online(&[]).await.unwrap(), Vec::<bool>::new());
    r.departed(a, 1).await.unwrap();
    assert_eq!(r.online(&[a, b, c]).await.unwrap(), [false, false, true]);
}

/// Online agents are the agents with a socket, and only agents.
pub async fn online_agents_are_the_agents_present(r: Arc<dyn Roster>) {
    let agent = AgentId::generate();
    let user = someone();
    r.arrived(Principal::Agent(agent), 7).await.unwrap();
    r.arrived(user, 7).await.unwrap();
    assert!(r.online_agents().await.unwrap().contains(&agent));
    r.departed(Principal::Agent(agent), 7).await.unwrap();
    assert!(!r.online_agents().await.unwrap().contains(&agent));
}

/// A forgotten person is offline at once, and their later departure announces nothing.
pub async fn forget_takes_a_person_offline_silently(r: Arc<dyn Roster>) {
    let (gone, stays) = (someone(), someone());
    r.arrived(gone, 3).await.unwrap();
    r.arrived(stays, 3).await.unwrap();
    r.forget(gone).await.unwrap();
    assert_eq!(r.online(&[gone, stays]).await.unwrap(), [false, true]);
    assert!(!r.departed(gone, 3).await.unwrap(), "nothing left to announce");
    let agent = AgentId::generate();
    r.arrived(Principal::Agent(agent), 1).await.unwrap();
    r.forget(Principal::Agent(agent)).await.unwrap();
    assert!(!r.online_agents().await.unwrap().contains(&agent));
}

/// Runs every check on rosters from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Roster>>,
{
    arrivals_and_departures_announce_once(make().await).await;
    online_answers_in_order(make().await).await;
    online_agents_are_the_agents_present(make().await).await;
    forget_takes_a_person_offline_silently(make().await).await;
}
