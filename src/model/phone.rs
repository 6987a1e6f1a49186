//! Mobile numbers: parsed and normalised to E.164 with libphonenumber's metadata (the `phonenumber`
//! crate), checked against the operator's country allow-list, and never printed in full.

use crate::error::{Error, Result};
use phonenumber::{country, Type};
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

    /// Parses user input into a mobile number the hub accepts.
    ///
    /// # Errors
    /// [`Error::InvalidPhone`] for anything that is not a valid mobile number, and
    /// [`Error::CountryNotAllowed`] for a valid number outside the allow-list.
    pub fn parse(&self, input: &str) -> Result<Phone> {
        let input = input.trim();
        if input.is_empty() || input.len() > 32 {
            return Err(Error::InvalidPhone("phone must be a mobile number in international format"));
        }
        let number = phonenumber::parse(self.default_region, input)
            .map_err(|_| Error::InvalidPhone("phone must be a mobile number in international format"))?;
        if !number.is_valid() {
            return Err(Error::InvalidPhone("phone is not a valid number"));
        }
        match number.number_type(&phonenumber::metadata::DATABASE) {
            Type::Mobile | Type::FixedLineOrMobile => {}
            _ => return Err(Error::InvalidPhone("phone is not a mobile number")),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn iran_only() -> PhonePolicy {
        PhonePolicy::new("IR", "IR").unwrap()
    }

    #[test]
    fn normalises_national_and_international_forms_to_e164() {
        let p = iran_only();
        for input in ["+98 912 123 4567", "09121234567", "+989121234567", " +98-912-123-4567 "] {
            assert_eq!(p.parse(input).unwrap().e164(), "+989121234567", "{input}");
        }
    }

    #[test]
    fn rejects_garbage_landlines_and_other_countries() {
        let p = iran_only();
        for bad in ["", "hello", "+98", "+98912", "12345678901234567890123456789012345"] {
            assert!(matches!(p.parse(bad), Err(Error::InvalidPhone(_))), "{bad}");
        }
        // Tehran landline: valid number, not a mobile.
        assert!(matches!(p.parse("+982188888888"), Err(Error::InvalidPhone(_))));
        // A valid US number outside the allow-list.
        assert!(matches!(p.parse("+14155552671"), Err(Error::CountryNotAllowed)));
        assert!(PhonePolicy::new("IR", "*").unwrap().parse("+14155552671").is_ok());
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
}
