use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A provider that sends us webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Shopify,
    Zoho,
    /// Any sender that follows the Standard Webhooks specification.
    Standard,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Shopify, Source::Zoho, Source::Standard];

    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Shopify => "shopify",
            Source::Zoho => "zoho",
            Source::Standard => "standard",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown source `{s}` (expected one of: shopify, zoho, standard)"))
    }
}
