//! The text of the SMS that carries a code: a template per purpose (sign-in, number change) and
//! language (Persian, English), the language a number gets, the lines that let a phone fill the
//! code in by itself, and the length of a text in SMS parts.
//!
//! Templates use the placeholders `{code}` (required: the 6 digits, always in ASCII digits, which
//! phones recognise and fill in) and `{minutes}` (how long the code works, in Persian digits in a
//! Persian text); `{{` and `}}` stand for `{` and `}`.

use crate::model::language::Language;
use crate::model::phone::Phone;
use phonenumber::country;
use std::fmt;

/// What a code is sent for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsPurpose {
    /// Signing in (`POST /v1/auth/code`).
    SignIn,
    /// Moving the account to a new number (`POST /v1/me/phone/code`).
    PhoneChange,
}

impl Language {
    /// The language numbers of `region` get: Persian for Iran and Afghanistan (whose Dari is
    /// Persian), English elsewhere.
    pub fn of_region(region: Option<country::Id>) -> Self {
        match region {
            Some(country::Id::IR | country::Id::AF) => Self::Persian,
            _ => Self::English,
        }
    }
}

/// How the language of an SMS is chosen (the `sms_language` setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LanguageChoice {
    /// `auto`: by the number's country ([`Language::of_region`]).
    ByCountry,
    /// `fa` or `en`: always this language.
    Always(Language),
}

impl LanguageChoice {
    /// Parses `auto`, `fa` or `en`.
    ///
    /// # Errors
    /// Any other value.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "auto" => Ok(Self::ByCountry),
            "fa" => Ok(Self::Always(Language::Persian)),
            "en" => Ok(Self::Always(Language::English)),
            other => Err(format!("`{other}` is not `auto`, `fa` or `en`")),
        }
    }
}

/// One piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Code,
    Minutes,
}

/// A parsed SMS template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

/// The placeholders a template may use.
pub const PLACEHOLDERS: &str = "{code} and {minutes}";

/// A template longer than this many SMS parts (with a code, three-digit minutes and the autofill
/// lines) is a configuration error: a paragraph pasted by mistake would multiply the SMS bill.
pub const MAX_PARTS: usize = 3;

impl Template {
    /// Parses `text`: `{code}` (at least once), `{minutes}`, `{{` and `}}`.
    ///
    /// # Errors
    /// An unknown placeholder, an unclosed or unopened brace, or no `{code}`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(format!("a `}}` without its `{{` (write `}}}}` for a brace); use {PLACEHOLDERS}")),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    let piece = match name.as_str() {
                        _ if !closed => return Err(format!("a `{{` is not closed; use {PLACEHOLDERS}")),
                        "code" => Piece::Code,
                        "minutes" => Piece::Minutes,
                        _ => return Err(format!("unknown placeholder `{{{name}}}`; use {PLACEHOLDERS}")),
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(piece);
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        if !pieces.contains(&Piece::Code) {
            return Err("the template has no {code}".into());
        }
        Ok(Self(pieces))
    }

    /// The text for `code`, valid for `minutes` (already in the text's digits).
    fn render(&self, code: &str, minutes: &str) -> String {
        self.0
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.as_str(),
                Piece::Code => code,
                Piece::Minutes => minutes,
            })
            .collect()
    }
}

/// The built-in template of `purpose` in `language`; each Persian one fits one SMS part.
pub fn default_template(purpose: SmsPurpose, language: Language) -> &'static str {
    match (purpose, language) {
        (SmsPurpose::SignIn, Language::Persian) => {
            "کد ورود آناپارس: {code}\nتا {minutes} دقیقه معتبر است. آن را به کسی ندهید."
        }
        (SmsPurpose::PhoneChange, Language::Persian) => {
            "کد تغییر شماره آناپارس: {code}\nتا {minutes} دقیقه معتبر است. به کسی ندهید."
        }
        (SmsPurpose::SignIn, Language::English) => {
            "Anapars code: {code}\nValid for {minutes} minutes. Never share it with anyone."
        }
        (SmsPurpose::PhoneChange, Language::English) => {
            "Anapars code for your new number: {code}\nValid for {minutes} minutes. Never share it with anyone."
        }
    }
}

/// The text of an SMS reminder of an unread reply: fixed, one SMS part, and without the reply's
/// text, the agent's name or the ticket (an SMS passes through the operators' hands).
pub fn reminder_text(language: Language) -> &'static str {
    match language {
        Language::Persian => "پشتیبانی آناپارس به پیام شما پاسخ داد؛ برنامه را باز کنید.",
        Language::English => "Anapars support has replied to your message. Open the app to read it.",
    }
}

/// The SMS texts of a hub: a template per purpose and language, how the language is chosen, and
/// the optional autofill lines.
#[derive(Clone, Debug)]
pub struct SmsTexts {
    choice: LanguageChoice,
    /// By purpose (sign-in, number change), then language (Persian, English).
    templates: [[Template; 2]; 2],
    origin: Option<String>,
    app_hash: Option<String>,
}

impl SmsTexts {
    /// The built-in templates, the language chosen by `choice`, no autofill lines.
    pub fn new(choice: LanguageChoice) -> Self {
        let built_in = |purpose| {
            [Language::Persian, Language::English].map(|language| {
                Template::parse(default_template(purpose, language)).unwrap_or_else(|e| unreachable!("{e}"))
            })
        };
        Self {
            choice,
            templates: [built_in(SmsPurpose::SignIn), built_in(SmsPurpose::PhoneChange)],
            origin: None,
            app_hash: None,
        }
    }

    /// Replaces the template of `purpose` in `language` with `text`.
    ///
    /// # Errors
    /// `text` is not a valid [`Template`], or takes more than [`MAX_PARTS`] parts.
    pub fn set_template(&mut self, purpose: SmsPurpose, language: Language, text: &str) -> Result<(), String> {
        self.templates[purpose as usize][language as usize] = Template::parse(text)?;
        self.check_length(purpose, language)
    }

    /// Adds the origin-bound line `@host #code` (WebOTP, iOS) as the last line of every text.
    ///
    /// # Errors
    /// `host` is not a host name (`app.example.com`: no scheme, port or path).
    pub fn set_origin(&mut self, host: &str) -> Result<(), String> {
        let labels_ok = host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        if host.len() > 253 || !labels_ok {
            return Err(format!(
                "`{host}` is not a host name in lower case such as app.example.com (no scheme, port or path)"
            ));
        }
        self.origin = Some(host.to_owned());
        self.check_all_lengths()
    }

    /// Adds the app's 11-character SMS Retriever hash (Android) on a line of its own.
    ///
    /// # Errors
    /// `hash` is not 11 characters of base64 (`A-Z a-z 0-9 + /`).
    pub fn set_app_hash(&mut self, hash: &str) -> Result<(), String> {
        let base64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        if hash.len() != 11 || !hash.bytes().all(base64) {
            return Err("an app hash is 11 characters of A-Z, a-z, 0-9, + and /".into());
        }
        self.app_hash = Some(hash.to_owned());
        self.check_all_lengths()
    }

    /// The language of a text to `to`.
    pub fn language_for(&self, to: &Phone) -> Language {
        match self.choice {
            LanguageChoice::ByCountry => Language::of_region(to.region()),
            LanguageChoice::Always(language) => language,
        }
    }

    /// The text of `purpose` to `to` for `code`, which works for `minutes`.
    pub fn render(&self, purpose: SmsPurpose, to: &Phone, code: &str, minutes: u64) -> String {
        self.render_in(purpose, self.language_for(to), code, minutes)
    }

    /// The text of `purpose` in `language`: the template, then the app hash line, then the
    /// origin-bound line (which must be the last line).
    pub fn render_in(&self, purpose: SmsPurpose, language: Language, code: &str, minutes: u64) -> String {
        let minutes = match language {
            Language::Persian => persian_digits(&minutes.to_string()),
            Language::English => minutes.to_string(),
        };
        let mut text = self.templates[purpose as usize][language as usize].render(code, &minutes);
        if let Some(hash) = &self.app_hash {
            text.push('\n');
            text.push_str(hash);
        }
        if let Some(host) = &self.origin {
            text.push_str(&format!("\n@{host} #{code}"));
        }
        text
    }

    fn check_all_lengths(&self) -> Result<(), String> {
        for purpose in [SmsPurpose::SignIn, SmsPurpose::PhoneChange] {
            for language in [Language::Persian, Language::English] {
                self.check_length(purpose, language)?;
            }
        }
        Ok(())
    }

    fn check_length(&self, purpose: SmsPurpose, language: Language) -> Result<(), String> {
        let longest = SmsLength::of(&self.render_in(purpose, language, "000000", 999));
        if longest.parts > MAX_PARTS {
            return Err(format!(
                "the {language} {purpose} text takes {} SMS parts, more than {MAX_PARTS}",
                longest.parts
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Persian => "Persian",
            Self::English => "English",
        })
    }
}

impl fmt::Display for SmsPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SignIn => "sign-in",
            Self::PhoneChange => "number change",
        })
    }
}

/// `text` with its ASCII digits written in Persian digits.
fn persian_digits(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32('۰' as u32 + (c as u32 - '0' as u32)).unwrap_or(c),
            c => c,
        })
        .collect()
}

/// How a text is encoded on the air.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsEncoding {
    /// The GSM 7-bit default alphabet: 160 septets in one part, 153 per part of a longer text.
    Gsm7,
    /// UCS-2 (UTF-16): 70 code units in one part, 67 per part of a longer text. Any character
    /// outside the GSM alphabet (every Persian letter) makes the whole text UCS-2.
    Ucs2,
}

/// The length of a text as an SMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmsLength {
    /// The encoding the text needs.
    pub encoding: SmsEncoding,
    /// Its length in the encoding's units (septets, or UTF-16 code units).
    pub units: usize,
    /// The parts it is sent in.
    pub parts: usize,
}

/// The GSM 03.38 default alphabet (one septet each).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                          ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The GSM 03.38 extension table (an escape and the character: two septets each).
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

impl SmsLength {
    /// The length of `text`. A longer text is split into parts whose user data header takes 7
    /// septets (GSM) or 3 code units (UCS-2); a character is never split between two parts (an
    /// extension character's escape stays with it, a surrogate pair stays whole).
    pub fn of(text: &str) -> Self {
        let gsm7: Option<Vec<usize>> = text
            .chars()
            .map(|c| {
                if GSM7_BASIC.contains(c) {
                    Some(1)
                } else if GSM7_EXTENSION.contains(c) {
                    Some(2)
                } else {
                    None
                }
            })
            .collect();
        let (encoding, widths, single, per_part) = match gsm7 {
            Some(widths) => (SmsEncoding::Gsm7, widths, 160, 153),
            None => (SmsEncoding::Ucs2, text.chars().map(char::len_utf16).collect(), 70, 67),
        };
        let units = widths.iter().sum();
        if units <= single {
            return Self { encoding, units, parts: 1 };
        }
        let (mut parts, mut filled) = (1, 0);
        for width in widths {
            if filled + width > per_part {
                parts += 1;
                filled = 0;
            }
            filled += width;
        }
        Self { encoding, units, parts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminders_fit_one_part() {
        for language in [Language::Persian, Language::English] {
            assert_eq!(SmsLength::of(reminder_text(language)).parts, 1, "{language:?}");
        }
    }

    fn iranian() -> Phone {
        Phone::from_e164("+989121234567")
    }

    #[test]
    fn built_in_texts_by_country() {
        let texts = SmsTexts::new(LanguageChoice::ByCountry);
        let fa = texts.render(SmsPurpose::SignIn, &iranian(), "493021", 5);
        assert_eq!(fa, "کد ورود آناپارس: 493021\nتا ۵ دقیقه معتبر است. آن را به کسی ندهید.");
        let en = texts.render(SmsPurpose::SignIn, &Phone::from_e164("+447700900123"), "493021", 5);
        assert_eq!(en, "Anapars code: 493021\nValid for 5 minutes. Never share it with anyone.");
        let afghan = texts.render(SmsPurpose::SignIn, &Phone::from_e164("+93701234567"), "493021", 5);
        assert!(afghan.starts_with("کد ورود"), "{afghan}");
        let english = SmsTexts::new(LanguageChoice::Always(Language::English));
        assert!(english.render(SmsPurpose::SignIn, &iranian(), "493021", 5).starts_with("Anapars code"));
    }

    #[test]
    fn persian_built_ins_fit_one_part_even_with_long_lifetimes() {
        let texts = SmsTexts::new(LanguageChoice::ByCountry);
        for purpose in [SmsPurpose::SignIn, SmsPurpose::PhoneChange] {
            for minutes in [1, 5, 60, 999] {
                let text = texts.render_in(purpose, Language::Persian, "493021", minutes);
                let length = SmsLength::of(&text);
                assert_eq!((length.encoding, length.parts), (SmsEncoding::Ucs2, 1), "{text}: {length:?}");
            }
            let english = texts.render_in(purpose, Language::English, "493021", 5);
            assert_eq!(SmsLength::of(&english).encoding, SmsEncoding::Gsm7, "{english}");
            assert_eq!(SmsLength::of(&english).parts, 1, "{english}");
        }
    }

    #[test]
    fn autofill_lines_follow_the_text_origin_last() {
        let mut texts = SmsTexts::new(LanguageChoice::ByCountry);
        texts.set_app_hash("FA+9qCX9VSu").unwrap();
        texts.set_origin("app.anapars.ir").unwrap();
        let text = texts.render_in(SmsPurpose::SignIn, Language::English, "493021", 5);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[lines.len() - 2..], ["FA+9qCX9VSu", "@app.anapars.ir #493021"]);
    }

    #[test]
    fn templates_are_checked() {
        let error = |text: &str| Template::parse(text).unwrap_err();
        assert!(error("code {cod}").contains("unknown placeholder `{cod}`"));
        assert!(error("no code here, {minutes} minutes").contains("no {code}"));
        assert!(error("code {code").contains("not closed"));
        assert!(error("{code} {cod").contains("not closed"));
        assert!(error("code } {code}").contains("without its"));
        let braces = Template::parse("{{{code}}}").unwrap();
        assert_eq!(braces.render("123456", "5"), "{123456}");
        let mut texts = SmsTexts::new(LanguageChoice::ByCountry);
        let paragraph = format!("{} {{code}}", "long words ".repeat(60));
        assert!(texts.set_template(SmsPurpose::SignIn, Language::English, &paragraph).unwrap_err().contains("parts"));
        assert!(texts.set_origin("https://app.example.com").is_err());
        assert!(texts.set_origin("App.example.com").is_err());
        assert!(texts.set_origin("app.example.com:8443").is_err());
        assert!(texts.set_app_hash("short").is_err());
        assert!(texts.set_app_hash("FA+9qCX9VS!").is_err());
        assert!(LanguageChoice::parse("de").is_err());
    }

    #[test]
    fn parts_by_encoding() {
        let gsm = |n: usize| SmsLength::of(&"a".repeat(n));
        assert_eq!(gsm(0), SmsLength { encoding: SmsEncoding::Gsm7, units: 0, parts: 1 });
        assert_eq!((gsm(160).parts, gsm(161).parts, gsm(306).parts, gsm(307).parts), (1, 2, 2, 3));
        // `€` takes two septets.
        assert_eq!(SmsLength::of(&"€".repeat(80)), SmsLength { encoding: SmsEncoding::Gsm7, units: 160, parts: 1 });
        // ... and never splits: 152 plain septets and a `€` need a second part.
        assert_eq!(SmsLength::of(&format!("{}€{}", "a".repeat(152), "a".repeat(10))).parts, 2);
        let ucs = |n: usize| SmsLength::of(&"س".repeat(n));
        assert_eq!(ucs(70), SmsLength { encoding: SmsEncoding::Ucs2, units: 70, parts: 1 });
        assert_eq!((ucs(71).parts, ucs(134).parts, ucs(135).parts), (2, 2, 3));
        // One Persian letter makes a Latin text UCS-2; an emoji is two code units.
        assert_eq!(SmsLength::of(&format!("{}س", "a".repeat(69))).parts, 1);
        assert_eq!(SmsLength::of(&format!("{}س", "a".repeat(70))).parts, 2);
        assert_eq!(SmsLength::of("🙂").units, 2);
    }
}
