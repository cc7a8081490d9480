//! Provider credentials: what Hookplane signs in to a provider's admin API with, to keep its subscriptions
//! registered. Stored sealed; only a fingerprint is ever shown.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::secrets::Sealed;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// A shop's Admin API access token.
    Shopify,
    /// An organisation's OAuth client and refresh token for Zoho CRM.
    Zoho,
}

impl Provider {
    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Shopify => "shopify",
            Provider::Zoho => "zoho",
        }
    }

    /// Checks the account a credential or a handshake is for: a shop's `*.myshopify.com` domain (it becomes
    /// the Admin API's host, so nothing else may pass), or a Zoho organisation as subscriptions name it.
    pub fn check_account(self, account: &str) -> Result<(), String> {
        match self {
            Provider::Shopify => {
                let name = account.strip_suffix(".myshopify.com").unwrap_or("");
                let ok = !name.is_empty()
                    && name.len() <= 60
                    && !name.starts_with('-')
                    && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if ok {
                    Ok(())
                } else {
                    Err(format!("`{account}` is not a shop domain: use the shop's `name.myshopify.com`"))
                }
            }
            Provider::Zoho => {
                let ok = (1..=100).contains(&account.len())
                    && account.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "`{account}` is not a Zoho organisation as subscriptions name it: 1 to 100 letters, digits, \
                         `-`, `_` and `.`"
                    ))
                }
            }
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "shopify" => Ok(Provider::Shopify),
            "zoho" => Ok(Provider::Zoho),
            _ => Err(format!("`{s}` is not a provider with credentials (expected shopify or zoho)")),
        }
    }
}

/// Zoho's data centres: each has its own accounts and API domains (`accounts.zoho.{dc}`, `www.zohoapis.{dc}`).
pub const ZOHO_DATA_CENTRES: [&str; 9] = ["com", "eu", "in", "com.au", "jp", "ca", "sa", "uk", "com.cn"];

pub fn check_data_centre(dc: &str) -> Result<(), String> {
    if ZOHO_DATA_CENTRES.contains(&dc) {
        Ok(())
    } else {
        Err(format!("`{dc}` is not a Zoho data centre (expected one of {})", ZOHO_DATA_CENTRES.join(", ")))
    }
}

/// A credential as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCredential {
    pub provider: Provider,
    pub account: String,
    /// The secret part: Shopify's access token, or Zoho's [`ZohoSecret`] as JSON.
    pub sealed: Sealed,
    /// A keyed digest of the secret part, to show and audit.
    pub fingerprint: String,
    /// Zoho only: the data centre the organisation lives in.
    pub data_centre: Option<String>,
    pub set_at: Timestamp,
    pub set_by: String,
}

impl StoredCredential {
    /// The store key, and the context the secret is sealed under: a sealed token cannot be moved to another
    /// shop.
    pub fn key(provider: Provider, account: &str) -> String {
        format!("{provider}/{account}")
    }
}

/// What Zoho's OAuth needs to mint access tokens: sealed together as JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZohoSecret {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
}

impl fmt::Debug for ZohoSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ZohoSecret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_checked_for_their_provider() {
        assert!(Provider::Shopify.check_account("demo-shop.myshopify.com").is_ok());
        for bad in ["evil.com", "a.myshopify.com.evil.com", ".myshopify.com", "x/y.myshopify.com", "Shop.myshopify.com"]
        {
            assert!(Provider::Shopify.check_account(bad).unwrap_err().contains("not a shop domain"), "{bad}");
        }
        assert!(Provider::Zoho.check_account("org-60012345").is_ok());
        assert!(Provider::Zoho.check_account("org/1").is_err());
        assert_eq!("zoho".parse::<Provider>(), Ok(Provider::Zoho));
        assert!("stripe".parse::<Provider>().unwrap_err().contains("shopify or zoho"));
        assert!(check_data_centre("eu").is_ok() && check_data_centre("mars").is_err());
        assert_eq!(
            format!("{:?}", ZohoSecret { client_id: "a".into(), client_secret: "b".into(), refresh_token: "c".into() }),
            "ZohoSecret(***)"
        );
    }
}
