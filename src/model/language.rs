//! The languages of the texts the hub itself writes to people (SMS, push notifications): Persian
//! first, and English.

/// A language the hub writes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Language {
    /// Persian (`fa`).
    Persian,
    /// English (`en`).
    English,
}

impl Language {
    /// The language's code: `fa` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Persian => "fa",
            Self::English => "en",
        }
    }

    /// The language of a code.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "fa" => Some(Self::Persian),
            "en" => Some(Self::English),
            _ => None,
        }
    }
}
