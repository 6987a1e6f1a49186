//! Agents' search over tickets: words in subjects, messages and customers' names (Persian folded as
//! it is indexed, so `كارت` finds `کارت`), or a ticket's id; filtered by status, agent, label and time; best matches
//! first among the newest ones ([`RANKED_MATCHES`](crate::model::search::RANKED_MATCHES)), each
//! with the piece of text around the match, the matching words marked.
//!
//! A query that is a phone number is refused: agents never see numbers, and a search must not tell
//! whether a number belongs to a customer.

use super::TicketDesk;
use crate::error::{Error, Result};
use crate::model::ids::{Principal, TicketId};
use crate::model::search::{SearchFilters, SearchHit, SearchQuery, SnippetPart};
use crate::model::text::fold;

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most words a query may have.
pub const MAX_WORDS: usize = 8;
/// Most matches in one page.
pub const MAX_RESULTS: u32 = 50;
/// Most tickets found by their customer's name, all on the first page.
pub const MAX_CUSTOMER_MATCHES: u32 = 10;
/// Characters of text kept before the first match in a snippet.
const BEFORE: usize = 40;
/// Characters of text a snippet holds at most.
const SNIPPET: usize = 160;

/// What an agent asks for.
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    /// The words (or a ticket id).
    pub query: String,
    /// What the matches must be.
    pub filters: SearchFilters,
    /// Matches to skip.
    pub offset: u32,
    /// Matches to return, 1 to [`MAX_RESULTS`].
    pub limit: u32,
}

/// A match as agents see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The match.
    pub hit: SearchHit,
    /// Its text around the match, the matching words marked.
    pub snippet: Vec<SnippetPart>,
}

/// The words of a query, folded: runs of letters and digits.
pub fn query_words(query: &str) -> Vec<String> {
    crate::model::text::words(&fold(query)).map(str::to_owned).collect()
}

/// Whether `query` is a phone number, in any of the forms people type one.
fn is_phone_number(query: &str) -> bool {
    let typed = crate::model::typed::normalise(query);
    let digits = typed.strip_prefix('+').unwrap_or(&typed);
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

impl TicketDesk {
    /// Searches the tickets' subjects and messages (agents only).
    ///
    /// # Errors
    /// `forbidden` for users; `bad_request` for a query without words, too long, with too many
    /// words, that is a phone number, or a bad page; `unavailable`.
    pub async fn search(&self, who: Principal, request: &SearchRequest) -> Result<(Vec<Found>, bool)> {
        if !matches!(who, Principal::Agent(_)) {
            return Err(Error::Forbidden);
        }
        let text = request.query.trim();
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(Error::BadRequest(format!("query must be at most {MAX_QUERY_CHARS} characters")));
        }
        if request.limit == 0 || request.limit > MAX_RESULTS {
            return Err(Error::BadRequest(format!("limit must be 1 to {MAX_RESULTS}")));
        }
        if is_phone_number(text) {
            return Err(Error::BadRequest("search does not look up phone numbers".into()));
        }
        let mut query = SearchQuery {
            filters: request.filters,
            offset: request.offset,
            limit: request.limit + 1,
            ..SearchQuery::default()
        };
        match uuid::Uuid::parse_str(text) {
            // A ticket's id: its subject is the match, if the filters keep it.
            Ok(id) => {
                query.ticket = Some(TicketId(id));
                query.words =
                    query_words(&self.tickets.ticket(TicketId(id)).await?.map(|t| t.subject).unwrap_or_default());
                if query.words.is_empty() {
                    return Ok((Vec::new(), false));
                }
            }
            Err(_) => query.words = query_words(text),
        }
        if query.words.is_empty() {
            return Err(Error::BadRequest("query has no words".into()));
        }
        if query.words.len() > MAX_WORDS {
            return Err(Error::BadRequest(format!("query has more than {MAX_WORDS} words")));
        }
        let mut hits = self.search_index.search(&query).await?;
        let more = hits.len() > request.limit as usize;
        hits.truncate(request.limit as usize);
        // The first page starts with the tickets of customers so named (an agent who types a name
        // is most likely looking for that person); pages count text matches only.
        if request.offset == 0 && query.ticket.is_none() {
            let named = SearchQuery { limit: MAX_CUSTOMER_MATCHES, offset: 0, ..query.clone() };
            hits.splice(0..0, self.search_index.search_customers(&named).await?);
        }
        let found = hits.into_iter().map(|hit| Found { snippet: snippet(&hit.body, &query.words), hit }).collect();
        Ok((found, more))
    }

    /// Indexes the texts stored before the search index existed, in rounds, until none is left.
    pub async fn index_old_texts(&self) {
        loop {
            match self.search_index.index_unsearched(500).await {
                Ok(0) => return,
                Ok(n) => tracing::info!(texts = n, "indexed older texts for search"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not index older texts for search; trying again in a minute");
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                }
            }
        }
    }
}

/// `body` around its first matching word, cut to about [`SNIPPET`] characters, in parts: the text as
/// written, the words that match (a word starting with a query word, after folding) marked.
pub fn snippet(body: &str, words: &[String]) -> Vec<SnippetPart> {
    // The folded text, with the index of the original character each folded character came from.
    let chars: Vec<char> = body.chars().collect();
    let mut folded: Vec<char> = Vec::with_capacity(chars.len());
    let mut origin: Vec<usize> = Vec::with_capacity(chars.len());
    for (i, c) in chars.iter().enumerate() {
        for f in fold(c.encode_utf8(&mut [0; 4])).chars() {
            folded.push(f);
            origin.push(i);
        }
    }
    // Marked ranges of original characters: each word of the text that starts with a query word.
    let mut marked: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    while start < folded.len() {
        if !folded[start].is_alphanumeric() {
            start += 1;
            continue;
        }
        let end = (start..folded.len()).find(|&j| !folded[j].is_alphanumeric()).unwrap_or(folded.len());
        let word: String = folded[start..end].iter().collect();
        if words.iter().any(|w| word.starts_with(w.as_str())) {
            marked.push((origin[start], origin[end - 1] + 1));
        }
        start = end;
    }
    let first = marked.first().map_or(0, |m| m.0);
    let from = first.saturating_sub(BEFORE);
    let to = (from + SNIPPET).min(chars.len());
    let mut parts: Vec<SnippetPart> = Vec::new();
    let mut push = |text: String, matched: bool| {
        if text.is_empty() {
            return;
        }
        match parts.last_mut() {
            Some(last) if last.matched == matched => last.text.push_str(&text),
            _ => parts.push(SnippetPart { text, matched }),
        }
    };
    if from > 0 {
        push("…".into(), false);
    }
    let mut at = from;
    for &(s, e) in marked.iter().filter(|(s, e)| *e > from && *s < to) {
        let (s, e) = (s.max(from), e.min(to));
        push(chars[at..s].iter().collect(), false);
        push(chars[s..e].iter().collect(), true);
        at = e;
    }
    push(chars[at..to].iter().collect(), false);
    if to < chars.len() {
        push("…".into(), false);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(parts: &[SnippetPart]) -> String {
        parts.iter().map(|p| if p.matched { format!("[{}]", p.text) } else { p.text.clone() }).collect()
    }

    #[test]
    fn words_fold_as_the_index_does() {
        assert_eq!(query_words("  كارت  بانكي، TX-99812 "), ["کارت", "بانکی", "tx", "99812"]);
        assert!(query_words(" ؟! ").is_empty());
    }

    #[test]
    fn phone_numbers_in_any_form_are_not_queries() {
        for number in ["09121234567", "+98 912 123 4567", "۰۹۱۲۱۲۳۴۵۶۷", "٠٩١٢-١٢٣-٤٥٦٧", "9121234567"]
        {
            assert!(is_phone_number(number), "{number}");
        }
        for query in ["99812", "TX-99812", "کارت ۱۲۳۴", "order 1234"] {
            assert!(!is_phone_number(query), "{query}");
        }
    }

    #[test]
    fn snippets_mark_the_words_as_written() {
        let words = query_words("كارت");
        assert_eq!(render(&snippet("سلام، کارتم دو بار شارژ شد", &words)), "سلام، [کارتم] دو بار شارژ شد");
        let words = query_words("refund");
        assert_eq!(render(&snippet("The REFUNDS came; refund again", &words)), "The [REFUNDS] came; [refund] again");
        let words = query_words("می‌روم");
        assert_eq!(render(&snippet("فردا میروم", &words)), "فردا [میروم]");
    }

    #[test]
    fn long_texts_are_cut_around_the_first_match() {
        let body = format!("{} کارت {}", "الف ".repeat(100), "ب ".repeat(100));
        let parts = snippet(&body, &query_words("کارت"));
        let text = render(&parts);
        assert!(text.starts_with('…') && text.ends_with('…'), "{text}");
        assert!(text.contains("[کارت]"));
        assert!(text.chars().count() <= SNIPPET + 4, "{}", text.chars().count());
    }
}
