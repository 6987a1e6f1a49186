//! Mobile numbers: read as people type them, parsed and normalised to E.164 with libphonenumber's
//! metadata (the `phonenumber` crate), checked against the operator's country allow-list, and
//! never printed in full.

use crate::error::{Error, Result};
use crate::model::typed;
use phonenumber::metadata::DATABASE;
use phonenumber::{country, Metadata, ParseError, PhoneNumber, Type};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A mobile number in E.164 form (`+989121234567`).
///
/// `Debug` masks the middle digits so that a number that slips into a log line is not readable;
/// there is deliberately no `Display`. Use [`Phone::e164`] where the full number is needed
/// (storage, the SMS sender, the owner's own profile).
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    /// Wraps a number already in E.164 form (as read back from storage).
    pub fn from_e164(e164: impl Into<String>) -> Self {
        Self(e164.into())
    }

    /// The full E.164 number.
    pub fn e164(&self) -> &str {
        &self.0
    }

    /// The region the number belongs to (`IR`), from its country code and leading digits.
    pub fn region(&self) -> Option<country::Id> {
        phonenumber::parse(None, &self.0).ok().and_then(|n| n.country().id())
    }

    /// `+98912***67`: enough to tell numbers apart in an operator's log, not enough to dial.
    pub fn masked(&self) -> String {
        let n = self.0.len();
        if n <= 8 {
            return "+***".to_owned();
        }
        format!("{}***{}", &self.0[..6], &self.0[n - 2..])
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

/// Which numbers the hub accepts for sign-in.
#[derive(Clone, Debug)]
pub struct PhonePolicy {
    /// Region used for numbers typed without `+` and country code (national format).
    default_region: Option<country::Id>,
    /// Allowed countries; `None` allows every country.
    allowed: Option<Vec<country::Id>>,
}

impl PhonePolicy {
    /// Builds the policy from the configuration's comma-separated region codes (`IR,AE`, or `*` for all).
    ///
    /// # Errors
    /// A region code libphonenumber does not know.
    pub fn new(default_region: &str, allowed: &str) -> Result<Self, String> {
        let parse =
            |s: &str| country::Id::from_str(s.trim()).map_err(|_| format!("unknown region code `{}`", s.trim()));
        let default_region = match default_region.trim() {
            "" => None,
            r => Some(parse(r)?),
        };
        let allowed = match allowed.trim() {
            "*" => None,
            list => Some(list.split(',').filter(|s| !s.trim().is_empty()).map(parse).collect::<Result<Vec<_>, _>>()?),
        };
        Ok(Self { default_region, allowed })
    }

    /// Parses a number as a person typed it into a mobile number the hub accepts: the input is
    /// [`typed::normalise`]d first (digits in any script, spaces, dashes, dots, brackets and
    /// invisible characters), then read with `+` and a country code, with `00` and a country code,
    /// or in the national format of the default region.
    ///
    /// # Errors
    /// [`Error::InvalidPhone`] for anything that is not a valid mobile number, with a message naming
    /// what is wrong (the messages are listed in protocol/PROTOCOL.md, "Numbers and codes as people
    /// type them"), and [`Error::CountryNotAllowed`] for a valid number outside the allow-list.
    pub fn parse(&self, input: &str) -> Result<Phone> {
        if input.chars().count() > MAX_TYPED_CHARS {
            return Err(Error::InvalidPhone("phone number is too long: type only the number"));
        }
        let typed = typed::normalise(input);
        let digits = typed.strip_prefix('+').unwrap_or(&typed);
        if typed.is_empty() {
            return Err(Error::InvalidPhone("phone number is empty"));
        }
        if typed.chars().any(char::is_alphabetic) {
            return Err(Error::InvalidPhone("phone number has letters in it: type digits only"));
        }
        if digits.contains('+') {
            return Err(Error::InvalidPhone("phone number has a + that is not at its start"));
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidPhone("phone number has characters other than digits"));
        }
        let international = typed.starts_with('+') || typed.starts_with("00");
        if !international && self.default_region.is_none() {
            return Err(Error::InvalidPhone("phone number needs its country code, starting with +"));
        }
        let number = phonenumber::parse(self.default_region, &typed).map_err(|e| {
            Error::InvalidPhone(match e {
                ParseError::InvalidCountryCode => UNKNOWN_COUNTRY_CODE,
                ParseError::TooLong | ParseError::MalformedInteger(_) => TOO_MANY_DIGITS,
                ParseError::NoNumber | ParseError::TooShortAfterIdd | ParseError::TooShortNsn => TOO_FEW_DIGITS,
            })
        })?;
        // A number outside every region of a shared country code (+44: GB, GG, IM, JE) has no
        // region of its own; the main region's metadata then tells its lengths.
        let meta = number.metadata(&DATABASE).or_else(|| {
            let regions = DATABASE.by_code(&number.country().code())?;
            regions.iter().find(|m| m.is_main_country_for_code()).or(regions.first()).copied()
        });
        let Some(meta) = meta else {
            return Err(Error::InvalidPhone(UNKNOWN_COUNTRY_CODE));
        };
        let kind = number.number_type(&DATABASE);
        if !matches!(kind, Type::Mobile | Type::FixedLineOrMobile) {
            return Err(Error::InvalidPhone(why_not_mobile(meta, &number, kind)));
        }
        if let Some(allowed) = &self.allowed {
            match number.country().id() {
                Some(id) if allowed.contains(&id) => {}
                _ => return Err(Error::CountryNotAllowed),
            }
        }
        Ok(Phone(number.format().mode(phonenumber::Mode::E164).to_string()))
    }
}

/// Characters of typed input read at most: a number with every digit spaced out and wrapped in
/// direction marks fits; anything longer is not a number.
const MAX_TYPED_CHARS: usize = 64;

const UNKNOWN_COUNTRY_CODE: &str = "phone number starts with a country code that does not exist";
const TOO_FEW_DIGITS: &str = "phone number has too few digits";
const TOO_MANY_DIGITS: &str = "phone number has too many digits";

/// Why a number that parsed is not a mobile number: its length against the lengths of its
/// country's mobile numbers, else a valid number of another kind (a landline), else a number
/// outside the country's plan.
fn why_not_mobile(meta: &Metadata, number: &PhoneNumber, kind: Type) -> &'static str {
    let descriptors = meta.descriptors();
    let lengths = descriptors
        .mobile()
        .map(|d| d.possible_length())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| descriptors.general().possible_length());
    let national = number.national().to_string().len();
    match (lengths.iter().min(), lengths.iter().max()) {
        (Some(&min), _) if national < usize::from(min) => TOO_FEW_DIGITS,
        (_, Some(&max)) if national > usize::from(max) => TOO_MANY_DIGITS,
        _ if kind != Type::Unknown => "phone number is not a mobile number",
        _ => "phone number is not a valid number in its country",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::typed::strategies::typed_digit;
    use proptest::prelude::*;

    fn iran_only() -> PhonePolicy {
        PhonePolicy::new("IR", "IR").unwrap()
    }

    /// The message of the refusal of `input`.
    fn refusal(input: &str) -> String {
        match iran_only().parse(input) {
            Err(Error::InvalidPhone(message)) => message.to_owned(),
            other => panic!("{input:?}: {other:?}"),
        }
    }

    #[test]
    fn normalises_national_and_international_forms_to_e164() {
        let p = iran_only();
        for input in [
            "+98 912 123 4567",
            "09121234567",
            "9121234567",
            "00989121234567",
            "+989121234567",
            " +98-912-123-4567 ",
            "(0912) 123-4567",
            "0912.123.4567",
        ] {
            assert_eq!(p.parse(input).unwrap().e164(), "+989121234567", "{input}");
        }
    }

    #[test]
    fn reads_numbers_as_phone_keyboards_and_chat_apps_type_them() {
        let p = iran_only();
        for input in [
            "۰۹۱۲۱۲۳۴۵۶۷",
            "٠٩١٢١٢٣٤٥٦٧",
            "０９１２１２３４５６７",
            "+۹۸ ۹۱۲ ۱۲۳ ۴۵۶۷",
            "\u{200E}+98\u{00A0}912\u{2009}123\u{202F}4567\u{200E}",
            "۰۹۱۲\u{200C}۱۲۳\u{200C}۴۵۶۷",
            "\u{FEFF}\u{2066}(۰۹۱۲) ۱۲۳–۴۵۶۷\u{2069}\u{200F}",
            "＋９８９１２１２３４５６７",
        ] {
            assert_eq!(p.parse(input).ok().map(|n| n.e164().to_owned()).as_deref(), Some("+989121234567"), "{input:?}");
        }
    }

    #[test]
    fn a_wrong_number_is_named() {
        assert_eq!(refusal(""), "phone number is empty");
        assert_eq!(refusal(" \u{200C}- "), "phone number is empty");
        assert_eq!(refusal("hello"), "phone number has letters in it: type digits only");
        assert_eq!(refusal("۰۹۱۲ب۱۲۳۴۵۶۷"), "phone number has letters in it: type digits only");
        assert_eq!(refusal("0912*123*4567"), "phone number has characters other than digits");
        assert_eq!(refusal("0912+1234567"), "phone number has a + that is not at its start");
        assert_eq!(refusal("+98912"), "phone number has too few digits");
        assert_eq!(refusal("0912123456"), "phone number has too few digits");
        assert_eq!(refusal("۰۹۱۲۱۲۳۴۵۶۷۸"), "phone number has too many digits");
        assert_eq!(refusal("+98 912 123 45678"), "phone number has too many digits");
        assert_eq!(refusal("12345678901234567890"), "phone number has too many digits");
        assert_eq!(refusal("+999 123 456 789"), "phone number starts with a country code that does not exist");
        let world = PhonePolicy::new("IR", "*").unwrap();
        assert!(matches!(world.parse("+44 7400 12345"), Err(Error::InvalidPhone("phone number has too few digits"))));
        // Tehran landline: valid number, not a mobile.
        assert_eq!(refusal("+982188888888"), "phone number is not a mobile number");
        assert_eq!(refusal("021 8888 8888"), "phone number is not a mobile number");
        assert_eq!(refusal(&"1".repeat(65)), "phone number is too long: type only the number");
        let anywhere = PhonePolicy::new("", "*").unwrap();
        assert!(matches!(
            anywhere.parse("09121234567"),
            Err(Error::InvalidPhone("phone number needs its country code, starting with +"))
        ));
    }

    #[test]
    fn other_countries_are_refused_unless_allowed() {
        // A valid US number outside the allow-list.
        assert!(matches!(iran_only().parse("+14155552671"), Err(Error::CountryNotAllowed)));
        assert!(PhonePolicy::new("IR", "*").unwrap().parse("+14155552671").is_ok());
        let uk = PhonePolicy::new("IR", "*").unwrap().parse("+44 7400 123456").unwrap();
        assert_eq!(uk.region(), Some(country::Id::GB));
        assert_eq!(iran_only().parse("09121234567").unwrap().region(), Some(country::Id::IR));
    }

    #[test]
    fn debug_never_shows_the_whole_number() {
        let phone = iran_only().parse("+989121234567").unwrap();
        let shown = format!("{phone:?}");
        assert!(!shown.contains("9121234567"), "{shown}");
    }

    #[test]
    fn unknown_region_codes_are_config_errors() {
        assert!(PhonePolicy::new("IR", "IR,XX").is_err());
    }

    /// How a number may be started: with `+98`, `0098`, the trunk `0`, or nothing, each possibly
    /// typed in another script.
    fn prefix() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["+98", "+۹۸", "+٩٨", "＋９８", "0098", "۰۰۹۸", "0", "۰", "٠", ""])
            .prop_map(str::to_owned)
    }

    /// Direction marks and isolates that keyboards and chat apps wrap around a pasted number.
    fn wrapper() -> impl Strategy<Value = (&'static str, &'static str)> {
        prop::sample::select(vec![
            ("", ""),
            ("\u{200E}", "\u{200E}"),
            ("\u{200F}", ""),
            ("\u{2066}", "\u{2069}"),
            ("\u{202A}", "\u{202C}"),
            ("\u{FEFF}", ""),
            (" ", "  "),
        ])
    }

    proptest! {
        #[test]
        fn every_rendering_of_a_valid_number_is_the_same_number(
            operator in prop::sample::select(vec!["912", "935", "901", "990", "921", "919", "936", "903"]),
            line in "[0-9]{7}",
            start in prefix(),
            digits in prop::collection::vec(typed_digit(), 10),
            (open, close) in wrapper(),
            bracketed in any::<bool>(),
        ) {
            let national = format!("{operator}{line}");
            let expected = format!("+98{national}");
            prop_assume!(iran_only().parse(&expected).is_ok());
            let mut typed = format!("{open}{start}");
            for (i, (b, how)) in national.bytes().zip(&digits).enumerate() {
                if bracketed && i == 0 {
                    typed.push('(');
                }
                typed.push_str(&how.render(b));
                if bracketed && i == 2 {
                    typed.push_str(") ");
                }
            }
            typed.push_str(close);
            match iran_only().parse(&typed) {
                Ok(phone) => prop_assert_eq!(phone.e164(), expected.as_str(), "typed {:?}", typed),
                Err(e) => prop_assert!(false, "typed {typed:?}: {e}"),
            }
        }

        #[test]
        fn anything_else_never_panics(input in "\\PC{0,80}") {
            match iran_only().parse(&input) {
                Ok(phone) => prop_assert!(phone.e164().starts_with("+989"), "{:?}", phone),
                Err(Error::InvalidPhone(_) | Error::CountryNotAllowed) => {}
                Err(other) => prop_assert!(false, "{input:?}: unexpected {other:?}"),
            }
        }

        #[test]
        fn digits_and_formatting_in_any_mix_never_panic(input in "[0-9۰-۹٠-٩+() .\\-\u{200C}\u{200F}a-z]{0,40}") {
            let _ = iran_only().parse(&input);
        }
    }
}
