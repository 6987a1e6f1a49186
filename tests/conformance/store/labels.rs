//! Checks of the [`anapars_hub::ports::store::labels::Labels`] port: label names are unique by
//! their folded key, labels go on and off tickets idempotently, and a deleted label leaves every
//! ticket.

use super::{agent, ticket, user};
use anapars_hub::error::Result;
use anapars_hub::model::ids::{LabelId, TicketId};
use anapars_hub::model::label::{Label, LabelWrite, TicketLabelled, TicketLabels};
use anapars_hub::model::time::now_ms;
use anapars_hub::ports::store::Store;
use std::sync::Arc;

fn label(name: &str) -> Label {
    Label { id: LabelId::generate(), name: name.to_owned(), color: "#1f7a8c".into(), created_at: now_ms() }
}

/// Names are unique by key; a label goes on a ticket once, comes off, and leaves with its deletion.
pub async fn labels_are_unique_by_key_and_go_on_and_off_tickets(store: Arc<dyn Store>) -> Result<()> {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let refund = label(&format!("بازپرداخت {suffix}"));
    let key = |name: &str| anapars_hub::model::text::fold(name);
    assert_eq!(store.create_label(&refund, &key(&refund.name)).await?, LabelWrite::Stored(refund.clone()));
    let twin = label(&format!("بازپرداخت {suffix}"));
    assert_eq!(store.create_label(&twin, &key(&twin.name)).await?, LabelWrite::NameTaken);
    let card = label(&format!("card {suffix}"));
    assert_eq!(store.create_label(&card, &key(&card.name)).await?, LabelWrite::Stored(card.clone()));
    let renamed = Label { name: format!("کارت {suffix}"), color: "#aa3300".into(), ..card.clone() };
    assert_eq!(store.update_label(&renamed, &key(&renamed.name)).await?, LabelWrite::Stored(renamed.clone()));
    let clash = Label { name: refund.name.clone(), ..renamed.clone() };
    assert_eq!(store.update_label(&clash, &key(&clash.name)).await?, LabelWrite::NameTaken);
    assert_eq!(store.update_label(&label("ghost"), "ghost").await?, LabelWrite::NotFound);
    let all = store.labels().await?;
    let ours: Vec<&Label> = all.iter().filter(|l| l.name.ends_with(&suffix)).collect();
    assert_eq!(ours, [&refund, &renamed], "oldest first, as renamed");

    let u = user(&*store).await?;
    let a = agent(&*store).await?;
    let (t, other) = (ticket(&*store, u.id, now_ms()).await?, ticket(&*store, u.id, now_ms()).await?);
    let on = |label: LabelId, on: bool| {
        let store = Arc::clone(&store);
        async move { store.label_ticket(t.id, label, on, a.id, now_ms()).await }
    };
    assert_eq!(on(refund.id, true).await?, TicketLabelled::Labels(vec![refund.id]));
    assert_eq!(on(refund.id, true).await?, TicketLabelled::Labels(vec![refund.id]), "on twice is once");
    assert_eq!(on(renamed.id, true).await?, TicketLabelled::Labels(vec![refund.id, renamed.id]));
    assert_eq!(on(refund.id, false).await?, TicketLabelled::Labels(vec![renamed.id]));
    assert_eq!(on(LabelId::generate(), true).await?, TicketLabelled::NoLabel);
    assert_eq!(
        store.label_ticket(TicketId::generate(), refund.id, true, a.id, now_ms()).await?,
        TicketLabelled::NoTicket
    );
    assert_eq!(
        store.ticket_labels(&[t.id, other.id]).await?,
        [TicketLabels { ticket_id: t.id, label_ids: vec![renamed.id] }],
        "only tickets with labels"
    );
    assert!(store.delete_label(renamed.id).await?);
    assert!(!store.delete_label(renamed.id).await?);
    assert!(store.ticket_labels(&[t.id]).await?.is_empty(), "a deleted label leaves its tickets");
    assert!(store.ticket_labels(&[]).await?.is_empty());
    store.delete_label(refund.id).await?;
    Ok(())
}
