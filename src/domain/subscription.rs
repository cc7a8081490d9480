//! The subscription: one provider-side registration that sends us events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Source, SubscriptionId, SubscriptionStatus, Timestamp};
use crate::secrets::{Sealed, SecretDigest};

/// Where processing happens for a subscription's deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    /// Keep only; consumers pull through the API.
    Store,
    /// Forward over HTTP to the team's processing service.
    Http {
        url: String,
        /// Seconds an attempt may take; `delivery.timeout_seconds` when absent.
        #[serde(default)]
        timeout_seconds: Option<u32>,
        /// At most this many attempts at once towards it; `delivery.per_destination_concurrency` when absent.
        #[serde(default)]
        concurrency: Option<u32>,
        /// Sent with every attempt, in place of a provider header of the same name. Not secrets: they are
        /// stored and shown as given (Hookplane's signature is how a receiver authenticates it).
        #[serde(default)]
        headers: Vec<(String, String)>,
    },
}

impl Destination {
    pub fn url(&self) -> Option<&str> {
        match self {
            Destination::Store => None,
            Destination::Http { url, .. } => Some(url),
        }
    }
}

/// Header names a destination's extra headers may not use: credentials (they would be stored and shown in
/// plain text), what describes the HTTP hop, and what Hookplane sets itself.
pub fn check_extra_header(name: &str, value: &str) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    let token = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !token {
        return Err(format!("`{name}` is not a header name: use letters, digits, `-` and `_`, at most 128"));
    }
    if ["authorization", "proxy-authorization", "cookie", "x-api-key"].contains(&lower.as_str()) {
        return Err(format!(
            "`{name}` would carry a credential, which Hookplane would store and show in plain text; have the \
             receiver verify Hookplane's `webhook-signature` with the destination secret instead"
        ));
    }
    let reserved = ["host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "expect"];
    if reserved.contains(&lower.as_str()) || lower.starts_with("x-hookplane-") || lower.starts_with("webhook-") {
        return Err(format!("`{name}` is set by Hookplane or describes the connection; it cannot be configured"));
    }
    if value.len() > 1024 || !value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        return Err(format!("the value of `{name}` must be printable ASCII, at most 1024 characters"));
    }
    Ok(())
}

/// How a Zoho request proves it is genuine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ZohoAuth {
    /// CRM notification channel: the token is echoed in the JSON body next to `channel_id`.
    Channel { channel_id: String },
    /// Workflow webhook: a shared token in a header (`Authorization` unless configured otherwise).
    Token { header: String },
    /// Workflow webhook signed in the finance-suite style (`X-Zoho-Webhook-Signature`); the algorithm and
    /// encoding come from the `[zoho.signature]` configuration because Zoho does not document them.
    Signature,
}

/// Where a subscription came from, which decides who may change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Declared in the configuration file; re-applied at every start.
    Config,
    /// Created through the API or the command line.
    Api,
    /// Created by Hookplane when verified traffic arrived for an unregistered topic.
    Discovered,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    /// Unique, URL-safe; usable in place of the id in `/ingest/{subscription}` and `/zoho/incoming/{subscription}`.
    pub name: String,
    pub source: Source,
    pub topic: String,
    pub account: String,
    pub status: SubscriptionStatus,
    pub destination: Destination,
    pub origin: Origin,
    /// Set for Zoho subscriptions only.
    pub zoho: Option<ZohoAuth>,
    /// Request header whose value is the provider's delivery id, for senders without a standard one.
    pub dedupe_header: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_verified_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    pub metadata: BTreeMap<String, String>,
    /// Days its deliveries are kept, in place of `retention.days` (1 to 30).
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Where its destination tells its version, for the deploy history and the drift warnings.
    #[serde(default)]
    pub versions: super::deploy::VersionWatch,
}

/// Subscription names appear in URLs, so they keep to a safe alphabet.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok_len = (1..=64).contains(&name.len());
    let ok_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok_len && ok_chars && !name.starts_with("sub_") {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid subscription name: use 1 to 64 characters from a-z, 0-9, `-` and `_`, not starting with `sub_`"
        ))
    }
}

/// A readable default name, e.g. `shopify-orders-create-7k2m`.
pub fn default_name(source: Source, topic: &str, id: SubscriptionId) -> String {
    let mut slug = String::with_capacity(48);
    for c in topic.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_matches('-');
    let id = id.to_string();
    let tail = &id[id.len() - 4..];
    format!("{}-{}-{}", source.as_str(), slug, tail.to_lowercase())
}

/// What the operator must do after rotating a subscription's secret: Hookplane accepts the new secret at
/// once, but the provider signs with the old one until it is told.
pub fn rotation_reminder(source: Source, previous_until: &str) -> String {
    let side = match source {
        Source::Shopify => {
            "in Shopify (the webhook subscription or the app's settings); Shopify can take up to an hour \
                            to switch"
                .to_owned()
        }
        Source::Zoho => "in Zoho (the notification channel's token or the workflow webhook's key)".to_owned(),
        Source::Standard => "with the sender that signs these webhooks".to_owned(),
    };
    format!(
        "Now update the secret {side}. Until {previous_until} Hookplane accepts both secrets; after that, only the \
         new one."
    )
}

/// A secret as stored: sealed, with its digest and the time it was set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    pub sealed: Sealed,
    pub digest: SecretDigest,
    pub created_at: Timestamp,
    /// For a previous secret: when it stops being accepted.
    pub expires_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_headers_are_checked() {
        assert!(check_extra_header("X-Team", "sync").is_ok());
        for (name, value) in [
            ("Authorization", "Bearer x"),
            ("x-api-key", "k"),
            ("Host", "h"),
            ("x-hookplane-attempt", "1"),
            ("webhook-id", "w"),
            ("bad name", "v"),
            ("X-Team", "line\nbreak"),
        ] {
            assert!(check_extra_header(name, value).is_err(), "{name}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("orders-create_2").is_ok());
        for bad in ["", "Orders", "a b", "sub_x", &"x".repeat(65), "ü"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_names_are_valid() {
        let id = SubscriptionId::new(Timestamp(0));
        for topic in ["orders/create", "Leads.all", "customers/data_request", "", "!!!"] {
            let name = default_name(Source::Shopify, topic, id);
            assert!(validate_name(&name).is_ok(), "{name}");
        }
        assert!(default_name(Source::Zoho, "Leads.all", id).starts_with("zoho-leads-all-"));
    }
}
