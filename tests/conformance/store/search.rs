//! Checks of the [`anapars_hub::ports::store::search::Search`] port: folded words match the folded
//! texts of subjects and messages as whole words or their beginnings, all of them required; the
//! filters narrow; the order is by relevance then time; pages do not overlap; texts stored before
//! the index existed are indexed on request.

use super::{agent, apply, claim, message, new_ticket, ticket, user};
use anapars_hub::domain::tickets::search::query_words;
use anapars_hub::error::Result;
use anapars_hub::model::ids::LabelId;
use anapars_hub::model::label::Label;
use anapars_hub::model::search::{SearchHit, SearchQuery};
use anapars_hub::model::ticket::{Author, NewMessage, TicketStatus};
use anapars_hub::model::time::now_ms;
use anapars_hub::ports::store::Store;
use std::sync::Arc;

/// Folds, searches and answers (ticket subject or text prefix, seq) pairs.
async fn find(store: &dyn Store, words: &str, tweak: impl Fn(&mut SearchQuery)) -> Result<Vec<SearchHit>> {
    let mut query = SearchQuery { words: query_words(words), limit: 50, ..SearchQuery::default() };
    tweak(&mut query);
    store.search(&query).await
}

/// Persian typed on Arabic keyboards, marks and joiners, digits in every script, Latin in any case;
/// filters by status, agent, label and time; paging; an unknown word finds nothing.
pub async fn search_finds_folded_words_with_filters_and_pages(store: Arc<dyn Store>) -> Result<()> {
    // A word of this run only, so other checks' tickets never match.
    let tag = format!("z{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let u = user(&*store).await?;
    let a = agent(&*store).await?;
    let t0 = now_ms();
    let card = store
        .open_ticket(&anapars_hub::model::ticket::NewTicket {
            subject: format!("کارت بانکی {tag}"),
            body: format!("سلام، کارتم دو بار شارژ شد {tag}"),
            ..new_ticket(u.id, t0)
        })
        .await?
        .ticket;
    let refund = store
        .open_ticket(&anapars_hub::model::ticket::NewTicket {
            subject: format!("Refund {tag}"),
            body: format!("The REFUNDS came twice, order ۱۲۳۴۵ {tag}"),
            ..new_ticket(u.id, t0 + 1)
        })
        .await?
        .ticket;
    apply(&*store, &claim(card.id, a.id, t0 + 2)).await?;
    let says = |ticket, body: &str, at| NewMessage {
        body: format!("{body} {tag}"),
        ..message(ticket, Author::Agent(a.id), at)
    };
    store
        .append_messages(&[says(card.id, "مُحَمَّد، می‌روم بررسی کنم", t0 + 3), says(card.id, "کارت شما فعال شد", t0 + 4)])
        .await?;

    let subjects = |hits: &[SearchHit]| hits.iter().map(|h| (h.ticket.id, h.seq)).collect::<Vec<_>>();
    let hits = find(&*store, &format!("كارت {tag}"), |_| {}).await?;
    assert_eq!(hits.len(), 3, "the subject, the first message and an agent's: {:?}", subjects(&hits));
    assert!(hits.iter().all(|h| h.ticket.id == card.id));
    assert!(hits.iter().any(|h| h.seq == 1 && h.body.starts_with("کارت بانکی")), "the subject is the opening");
    assert_eq!(find(&*store, &format!("ميروم {tag}"), |_| {}).await?.len(), 1, "a joiner typed or not");
    assert_eq!(find(&*store, &format!("محمد {tag}"), |_| {}).await?.len(), 1, "short vowels fold away");
    assert_eq!(find(&*store, &format!("refund {tag}"), |_| {}).await?.len(), 2, "subject and REFUNDS (a prefix)");
    assert_eq!(find(&*store, &format!("12345 {tag}"), |_| {}).await?.len(), 1, "Persian digits as ASCII");
    assert!(find(&*store, &format!("کارت refund {tag}"), |_| {}).await?.is_empty(), "every word required");
    assert!(find(&*store, &format!("nothing{tag}"), |_| {}).await?.is_empty());

    let assigned = find(&*store, &tag, |q| q.filters.status = Some(TicketStatus::Assigned)).await?;
    assert!(!assigned.is_empty() && assigned.iter().all(|h| h.ticket.id == card.id), "status");
    let theirs = find(&*store, &tag, |q| q.filters.agent = Some(a.id)).await?;
    assert_eq!(subjects(&theirs), subjects(&assigned), "the agent holding it");
    let later = find(&*store, &tag, |q| q.filters.from = Some(t0 + 3)).await?;
    assert_eq!(later.len(), 2, "from: the agent's two messages");
    let earlier = find(&*store, &tag, |q| q.filters.to = Some(t0 + 3)).await?;
    assert_eq!(earlier.len() + later.len(), find(&*store, &tag, |_| {}).await?.len(), "to: the rest");
    let one = find(&*store, &tag, |q| q.ticket = Some(refund.id)).await?;
    assert_eq!(subjects(&one), [(refund.id, 1)], "one ticket's subject");

    let label = Label { id: LabelId::generate(), name: format!("L {tag}"), color: "#000000".into(), created_at: t0 };
    store.create_label(&label, &tag).await?;
    store.label_ticket(refund.id, label.id, true, a.id, t0).await?;
    let labelled = find(&*store, &tag, |q| q.filters.label = Some(label.id)).await?;
    assert!(!labelled.is_empty() && labelled.iter().all(|h| h.ticket.id == refund.id), "label");
    store.delete_label(label.id).await?;

    let all = find(&*store, &tag, |_| {}).await?;
    assert_eq!(all.len(), 6, "{:?}", subjects(&all));
    let first = find(&*store, &tag, |q| q.limit = 4).await?;
    let rest = find(&*store, &tag, |q| (q.offset, q.limit) = (4, 4)).await?;
    assert_eq!([subjects(&first), subjects(&rest)].concat(), subjects(&all), "pages follow each other");

    assert_eq!(store.index_unsearched(100).await?, 0, "everything stored is indexed as it is written");
    store.delete_account(u.id, &[]).await?.expect("deleted");
    assert!(find(&*store, &tag, |_| {}).await?.is_empty(), "gone with the account");
    Ok(())
}

/// The words inside an order code, an amount and an address are words too: a query split into them
/// finds the message whatever sits between them.
pub async fn search_finds_the_words_inside_codes_amounts_and_addresses(store: Arc<dyn Store>) -> Result<()> {
    let tag = format!("z{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let u = user(&*store).await?;
    let t0 = now_ms();
    let ticket = store
        .open_ticket(&anapars_hub::model::ticket::NewTicket { subject: format!("Order {tag}"), ..new_ticket(u.id, t0) })
        .await?
        .ticket;
    let appended = store
        .append_messages(&[NewMessage {
            body: format!("Order TX-99 paid 1234.56, receipt to a.b@example.com {tag}"),
            ..message(ticket.id, Author::User(u.id), t0 + 1)
        }])
        .await?;
    let Some(anapars_hub::model::ticket::Appended::Stored { ticket: after, .. }) = appended.first() else {
        panic!("the message is stored: {appended:?}");
    };
    for typed in ["tx-99", "TX 99", "99", "1234.56", "1234", "example.com", "a.b", "receipt"] {
        let hits = find(&*store, &format!("{typed} {tag}"), |_| {}).await?;
        let found: Vec<_> = hits.iter().map(|h| (h.ticket.id, h.seq)).collect();
        assert_eq!(found, [(ticket.id, after.last_seq)], "{typed:?} finds the message");
    }
    Ok(())
}

/// A search ranks only the newest matches it may (`ranked`), the filters applied first: an older
/// message that matches better is left out once newer ones fill the set, first once it is among
/// them; pages end with the set; a message of a ticket opened forty days before is found (on
/// Postgres, in an older month, or outside every month).
pub async fn search_ranks_only_the_newest_matches(store: Arc<dyn Store>) -> Result<()> {
    const DAY: i64 = 24 * 3600 * 1000;
    let tag = format!("z{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let u = user(&*store).await?;
    let t0 = now_ms();
    let opened = ticket(&*store, u.id, t0 - 40 * DAY).await?;
    // Stored one by one, in the order written: the best match first, then plain ones, all alike.
    let best = t0 - 40 * DAY + 1;
    let plain: Vec<i64> = (1..=4).map(|i| t0 + i).collect();
    for (body, at) in std::iter::once((format!("{tag} {tag} {tag} {tag}"), best))
        .chain(plain.iter().map(|&at| (format!("{tag} one two three"), at)))
    {
        store.append_messages(&[NewMessage { body, ..message(opened.id, Author::User(u.id), at) }]).await?;
    }
    let times = |hits: &[SearchHit]| hits.iter().map(|h| h.at).collect::<Vec<_>>();

    let all = find(&*store, &tag, |_| {}).await?;
    assert_eq!(times(&all), [best, plain[3], plain[2], plain[1], plain[0]], "the best first, then the newest");
    let newest = find(&*store, &tag, |q| q.ranked = 3).await?;
    assert_eq!(times(&newest), [plain[3], plain[2], plain[1]], "only the newest three are ranked");
    let last_page = find(&*store, &tag, |q| {
        q.ranked = 3;
        q.offset = 2;
    })
    .await?;
    assert_eq!(times(&last_page), [plain[1]], "pages end with the ranked set");
    let earlier = find(&*store, &tag, |q| {
        q.ranked = 3;
        q.filters.to = Some(plain[1]);
    })
    .await?;
    assert_eq!(times(&earlier), [best, plain[0]], "the filters narrow before the newest are taken");
    let best_among = find(&*store, &tag, |q| q.ranked = 5).await?;
    assert_eq!(times(&best_among), times(&all), "the older best match is first once it is among them");
    Ok(())
}

/// Customers are found by their names, folded like texts, each word as a word or its beginning;
/// the filters narrow; a name cleared is no longer found.
pub async fn search_finds_customers_by_folded_name(store: Arc<dyn Store>) -> Result<()> {
    use anapars_hub::model::profile::ProfileUpdate;
    use anapars_hub::model::search::Matched;
    let tag = format!("n{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let (ali, other) = (user(&*store).await?, user(&*store).await?);
    let name = |n: &str| ProfileUpdate { name: Some(Some(n.to_owned())), ..ProfileUpdate::default() };
    store.update_profile(ali.id, &name(&format!("علي رضايي {tag}"))).await?;
    store.update_profile(other.id, &name(&format!("Ali 100% {tag}"))).await?;
    let t0 = now_ms();
    let first = store.open_ticket(&new_ticket(ali.id, t0)).await?.ticket;
    let second = store.open_ticket(&new_ticket(ali.id, t0 + 1)).await?.ticket;
    let a = agent(&*store).await?;
    apply(&*store, &claim(first.id, a.id, t0 + 2)).await?;
    let theirs = store.open_ticket(&new_ticket(other.id, t0)).await?.ticket;

    let customers = |words: &str, tweak: &dyn Fn(&mut SearchQuery)| {
        let mut query =
            SearchQuery { words: query_words(&format!("{words} {tag}")), limit: 10, ..SearchQuery::default() };
        tweak(&mut query);
        let store = Arc::clone(&store);
        async move { store.search_customers(&query).await }
    };
    let found = customers("رضا علی", &|_| {}).await?;
    let ids: Vec<_> = found.iter().map(|h| h.ticket.id).collect();
    assert_eq!(ids, [first.id, second.id], "Persian letters find Arabic ones; most recently active first");
    assert!(found.iter().all(|h| h.matched == Matched::CustomerName && h.seq == 1));
    assert_eq!(found[0].body, format!("علي رضايي {tag}"), "the name as written");
    let held = customers("رضایی", &|q| q.filters.status = Some(TicketStatus::Assigned)).await?;
    assert_eq!(held.iter().map(|h| h.ticket.id).collect::<Vec<_>>(), [first.id]);
    assert_eq!(customers("ALI", &|_| {}).await?.iter().map(|h| h.ticket.id).collect::<Vec<_>>(), [theirs.id]);
    assert!(customers("ضا", &|_| {}).await?.is_empty(), "a word's beginning, not its middle");
    assert_eq!(customers("100%", &|_| {}).await?.len(), 1, "pattern characters are literal");
    assert!(customers("1_0", &|_| {}).await?.is_empty());
    store.update_profile(ali.id, &ProfileUpdate { name: Some(None), ..ProfileUpdate::default() }).await?;
    assert!(customers("رضا", &|_| {}).await?.is_empty(), "a cleared name is not found");
    Ok(())
}
