//! Text as people search it. Persian is typed on Arabic keyboards as often as on Persian ones, with
//! or without the zero-width non-joiner and the short vowels, and with digits in three scripts; a
//! search for `كارت` must find `کارت`. [`fold`] is the one form both sides take: what is stored is
//! folded when it is indexed (and a label's name when it is compared), and what is typed is folded
//! before it is looked up.

use crate::error::{Error, Result, SizeUnit};
use crate::model::typed::{ascii_digit, is_invisible};

/// Checks a text a person wrote for others to read (a message, a note, a canned reply): not blank,
/// at most `limit` characters, and free of NUL.
///
/// # Errors
/// `empty_body`, `too_large`, `bad_request` (a NUL character).
pub fn check_body(body: &str, limit: usize) -> Result<()> {
    if body.trim().is_empty() {
        return Err(Error::EmptyBody);
    }
    let n = body.chars().count();
    if n > limit {
        return Err(Error::TooLarge { what: "body", size: Some(n), limit, unit: SizeUnit::Characters });
    }
    refuse_nul("body", body)
}

/// Refuses a text holding a NUL character (U+0000): no client has a reason to send one, and
/// Postgres's text cannot hold it, so it would fail the whole batch the text was stored in.
///
/// # Errors
/// `bad_request` naming `what`.
pub fn refuse_nul(what: &str, text: &str) -> Result<()> {
    if text.contains('\0') {
        return Err(Error::BadRequest(format!("{what} holds a NUL character (U+0000)")));
    }
    Ok(())
}

/// `text` in the form searches and comparisons use:
///
/// - the Arabic forms of Persian letters become the Persian ones: `ي` and `ى` to `ی`, `ك` to `ک`,
///   `ة` and `ۀ` to `ه`, `أ`, `إ` and `ٱ` to `ا`, `ؤ` to `و` (`آ` stays: it is a letter of its own);
/// - the short vowels and other marks (harakat, U+064B to U+065F, and the superscript alef U+0670)
///   and the tatweel (`ـ`) are removed;
/// - the zero-width non-joiner and the other invisible format characters are removed, so `می‌روم`
///   and `میروم` are one word;
/// - Persian, Arabic-Indic and full-width digits become ASCII;
/// - letters are lower-cased (Latin, and every script that has case).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        // ASCII (Latin text, digits, spaces and punctuation between Persian words) is only
        // lower-cased: none of the rules below applies to it.
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        if let Some(d) = ascii_digit(c) {
            out.push(d);
            continue;
        }
        match c {
            'ي' | 'ى' => out.push('ی'),
            'ك' => out.push('ک'),
            'ة' | 'ۀ' => out.push('ه'),
            'أ' | 'إ' | 'ٱ' => out.push('ا'),
            'ؤ' => out.push('و'),
            '\u{064B}'..='\u{065F}' | '\u{0670}' | 'ـ' => {}
            c if is_invisible(c) => {}
            // The Arabic script has no case.
            '\u{0600}'..='\u{06FF}' => out.push(c),
            c if c.is_uppercase() => out.extend(c.to_lowercase()),
            c => out.push(c),
        }
    }
    out
}

/// The words of a [`fold`]ed text, in order: its runs of letters and digits. Searches split what is
/// typed this way, and the stored texts are indexed by the same words, so that a query finds the
/// texts whose words begin with its words whatever sits between them (`TX-99`, an address).
pub fn words(folded: &str) -> impl Iterator<Item = &str> {
    folded.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::{check_body, fold, refuse_nul};
    use crate::error::Error;
    use proptest::prelude::*;

    #[test]
    fn a_body_is_checked_for_blankness_length_and_nul() {
        assert!(check_body("سلام", 4).is_ok());
        assert!(matches!(check_body(" \n", 4), Err(Error::EmptyBody)));
        assert!(matches!(check_body("سلام!", 4), Err(Error::TooLarge { size: Some(5), .. })));
        assert!(matches!(check_body("a\0b", 4), Err(Error::BadRequest(_))));
        assert!(refuse_nul("subject", "کارت").is_ok());
    }

    #[test]
    fn arabic_keyboards_find_persian_words() {
        assert_eq!(fold("كارت"), "کارت");
        assert_eq!(fold("علي"), "علی");
        assert_eq!(fold("مدرسة"), "مدرسه");
        assert_eq!(fold("خانۀ"), "خانه");
        assert_eq!(fold("أحمد إبراهيم"), "احمد ابراهیم");
        assert_eq!(fold("مؤسسه"), "موسسه");
        assert_eq!(fold("آب"), "آب", "alef madda is a letter of its own");
    }

    #[test]
    fn marks_joiners_and_digits_fold_away() {
        assert_eq!(fold("می\u{200C}روم"), "میروم");
        assert_eq!(fold("مُحَمَّد"), "محمد");
        assert_eq!(fold("كـــارت"), "کارت");
        assert_eq!(fold("سفارش ۱۲۳۴ و ٥٦"), "سفارش 1234 و 56");
        assert_eq!(fold("\u{200F}Refund TX-99"), "refund tx-99");
        assert_eq!(fold("İSTANBUL"), "i̇stanbul");
    }

    proptest! {
        #[test]
        fn folding_twice_changes_nothing(text in "\\PC{0,40}") {
            let once = fold(&text);
            prop_assert_eq!(fold(&once), once);
        }
    }
}
