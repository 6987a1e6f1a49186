//! Numbers and codes as people type them. Phone keyboards and chat apps hand the hub digits in
//! several scripts, grouped with spaces, dashes, dots or brackets, and sprinkled with invisible
//! characters (zero-width joiners, direction marks, byte-order marks). [`normalise`] is the one
//! place that turns such input into plain ASCII digits before anything parses it: the mobile
//! number ([`crate::model::phone::PhonePolicy::parse`]) and the sign-in code ([`sign_in_code`]).

use crate::error::{Error, Result};

/// Digits of a sign-in code.
pub const CODE_DIGITS: usize = 6;

/// `input` with every digit in ASCII and the formatting people add removed.
///
/// - Persian (`۰`-`۹`, U+06F0-U+06F9), Arabic-Indic (`٠`-`٩`, U+0660-U+0669) and full-width
///   (`０`-`９`) digits become `0`-`9`; a full-width or small plus sign becomes `+`.
/// - Removed: spaces of every width (the no-break, thin and narrow no-break spaces among them),
///   dashes and hyphens, dots, slashes, and round, square and full-width brackets; and the invisible
///   format characters (zero-width space, non-joiner and joiner, the left-to-right, right-to-left
///   and Arabic letter marks, the bidi embeddings, overrides and isolates, the word joiner, the soft
///   hyphen, the byte-order mark).
/// - Anything else is kept as it is, for the parser to name.
pub fn normalise(input: &str) -> String {
    input.chars().filter_map(normalise_char).collect()
}

/// The ASCII digit of a Persian, Arabic-Indic or full-width digit.
pub(crate) fn ascii_digit(c: char) -> Option<char> {
    let digit = |zero: char| char::from(b'0' + (c as u32 - zero as u32) as u8);
    match c {
        '۰'..='۹' => Some(digit('۰')),
        '٠'..='٩' => Some(digit('٠')),
        '０'..='９' => Some(digit('０')),
        _ => None,
    }
}

/// One character of [`normalise`]: its ASCII form, or `None` when it is formatting.
fn normalise_char(c: char) -> Option<char> {
    if let Some(d) = ascii_digit(c) {
        return Some(d);
    }
    Some(match c {
        '\u{FF0B}' | '\u{FE62}' => '+',
        c if is_separator(c) || is_invisible(c) => return None,
        c => c,
    })
}

/// Characters people put between groups of digits.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            // hyphen-minus, the Unicode hyphens and dashes, minus sign, small and full-width hyphen-minus
            '-' | '\u{2010}'
                ..='\u{2015}' | '\u{2212}' | '\u{FE63}' | '\u{FF0D}'
            // dots: full stop, middle dot, one-dot leader, full-width full stop, Arabic full stop
            | '.' | '\u{00B7}' | '\u{2024}' | '\u{FF0E}' | '\u{06D4}'
            | '/' | '(' | ')' | '[' | ']' | '\u{FF08}' | '\u{FF09}' | '\u{FF3B}' | '\u{FF3D}'
        )
}

/// Invisible format characters that keyboards and chat apps insert around and inside numbers.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' // soft hyphen
            | '\u{061C}' // Arabic letter mark
            | '\u{180E}' // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space, ZWNJ, ZWJ, LRM, RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner and invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}' // byte-order mark, zero-width no-break space
    )
}

/// A sign-in code as typed: [`normalise`]d, then exactly [`CODE_DIGITS`] digits.
///
/// # Errors
/// [`Error::BadRequest`] naming what is wrong: the code is empty, has letters or other characters,
/// or too few or too many digits. The messages are listed in protocol/PROTOCOL.md ("Numbers and
/// codes as people type them").
pub fn sign_in_code(input: &str) -> Result<String> {
    let code = normalise(input);
    let wrong = |message: &str| Err(Error::BadRequest(message.to_owned()));
    if code.is_empty() {
        return wrong("code is empty: type the 6 digits from the SMS");
    }
    if code.chars().any(char::is_alphabetic) {
        return wrong("code has letters in it: type the 6 digits from the SMS");
    }
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return wrong("code has characters other than digits: type the 6 digits from the SMS");
    }
    match code.len() {
        CODE_DIGITS => Ok(code),
        n if n < CODE_DIGITS => wrong("code has too few digits: type all 6 digits from the SMS"),
        _ => wrong("code has too many digits: type only the 6 digits from the SMS"),
    }
}

/// Ways of typing digits, for the property tests of everything that reads typed digits.
#[cfg(test)]
pub(crate) mod strategies {
    use proptest::prelude::*;

    /// How one digit was typed: its script and what follows it.
    #[derive(Clone, Debug)]
    pub(crate) struct TypedDigit {
        zero: char,
        fill: &'static str,
    }

    impl TypedDigit {
        /// The ASCII digit `d` (`b'0'..=b'9'`) as typed this way.
        pub(crate) fn render(&self, d: u8) -> String {
            let digit = char::from_u32(self.zero as u32 + u32::from(d - b'0')).unwrap_or('?');
            format!("{digit}{}", self.fill)
        }
    }

    /// A way of typing one digit: a script (ASCII, Persian, Arabic-Indic, full-width) and what
    /// follows it (often nothing; else a space of some width, a dash, a dot, an invisible format
    /// character).
    pub(crate) fn typed_digit() -> impl Strategy<Value = TypedDigit> {
        let fill = prop::sample::select(vec![
            "", "", "", "", "", " ", "\u{00A0}", "\u{2009}", "\u{202F}", "-", "\u{2013}", ".", "\u{200C}", "\u{200D}",
            "\u{200E}", "\u{200F}", "\u{FEFF}", "\u{2066}", "\u{2069}", "\u{061C}", "\u{200B}",
        ]);
        (prop::sample::select(vec!['0', '۰', '٠', '０']), fill).prop_map(|(zero, fill)| TypedDigit { zero, fill })
    }
}

#[cfg(test)]
mod tests {
    use super::strategies::typed_digit;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_digit_script_becomes_ascii() {
        assert_eq!(normalise("۰۱۲۳۴۵۶۷۸۹"), "0123456789");
        assert_eq!(normalise("٠١٢٣٤٥٦٧٨٩"), "0123456789");
        assert_eq!(normalise("０１２３４５６７８９"), "0123456789");
        assert_eq!(normalise("＋۹۸"), "+98");
    }

    #[test]
    fn formatting_and_invisible_characters_go() {
        let typed = "\u{202B}(۰۹۱۲)\u{00A0}۱۲۳\u{2009}-\u{200C}۴۵.۶۷\u{200F}\u{FEFF}\u{2069}";
        assert_eq!(normalise(typed), "09121234567");
        assert_eq!(normalise("0912 – 123 — 4567"), "09121234567");
    }

    #[test]
    fn letters_and_symbols_stay_for_the_parser_to_name() {
        assert_eq!(normalise("09۱۲abc#"), "0912abc#");
    }

    #[test]
    fn codes_are_six_digits_in_any_script() {
        for typed in ["493021", "۴۹۳۰۲۱", "٤٩٣٠٢١", "４９３０２１", "493 021", "493-021", "\u{200F}۴۹۳\u{200C}۰۲۱"]
        {
            assert_eq!(sign_in_code(typed).unwrap(), "493021", "{typed:?}");
        }
    }

    #[test]
    fn a_wrong_code_is_named() {
        let message = |typed: &str| sign_in_code(typed).unwrap_err().to_string();
        assert!(message("").starts_with("code is empty"));
        assert!(message("\u{200C} ").starts_with("code is empty"));
        assert!(message("12ab56").starts_with("code has letters"));
        assert!(message("۱۲ک۴۵۶").starts_with("code has letters"));
        assert!(message("12*456").starts_with("code has characters other than digits"));
        assert!(message("12345").starts_with("code has too few digits"));
        assert!(message("۱۲۳۴۵۶۷").starts_with("code has too many digits"));
        assert!(matches!(sign_in_code("1"), Err(Error::BadRequest(_))));
    }

    proptest! {
        #[test]
        fn any_rendering_of_a_code_reads_back(code in "[0-9]{6}", typed in prop::collection::vec(typed_digit(), 6)) {
            let typed: String = code.bytes().zip(&typed).map(|(b, how)| how.render(b)).collect();
            prop_assert_eq!(sign_in_code(&typed).unwrap(), code);
        }

        #[test]
        fn anything_else_is_refused_without_panic(input in "\\PC{0,40}") {
            if let Ok(code) = sign_in_code(&input) {
                prop_assert!(code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit()), "{code}");
            }
        }
    }
}
