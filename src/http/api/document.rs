//! The API document as served and committed: poem-openapi's, with the rules of request bodies and path
//! segments that its derives cannot state (a body that must change something, at least one filter, text
//! that must not be blank, no unknown fields) added here, next to each other. The server checks each rule
//! itself, with its own messages; `tests/it/apidoc.rs` sends a request for every operation and checks the
//! answers against this document, and each rule names a schema or parameter a unit test finds.

use serde_json::{Map, Value, json};

use crate::domain::credential::ZOHO_DATA_CENTRES;
use crate::domain::ids::{SubscriptionId, TypedId, ULID_CHARS};

/// Not blank, and no control character once the surrounding white space is trimmed: what topics, accounts
/// and token names must be. White space is spelt out as Rust's `char::is_whitespace` has it, since `\s`
/// differs between the pattern languages of clients.
const NON_BLANK: &str = concat!(
    r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
    r"[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*",
    r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
);
/// The same, or empty.
const NON_BLANK_OR_EMPTY: &str = concat!(
    r"^(|[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
    r"[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*",
    r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)$"
);
/// At least one character that is not white space.
const SOME_TEXT: &str = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
/// Nothing but white space, or nothing.
const BLANK: &str = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";
/// A label: not blank, no control character, no surrounding spaces (deploys' services and versions).
const LABEL: &str = concat!(
    r"^[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
    r"([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?$"
);
/// A label, or empty for the default.
const LABEL_OR_EMPTY: &str = concat!(
    r"^([^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
    r"([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?)?$"
);
/// A subscription's name, or empty for a generated one: a-z, 0-9, `-`, `_`, never starting `sub_` (spelt
/// out, since the pattern languages of clients differ on look-ahead).
const SUBSCRIPTION_NAME: &str = r"^(|[a-rt-z0-9_-][a-z0-9_-]{0,63}|s([a-tv-z0-9_-][a-z0-9_-]{0,62})?|su([ac-z0-9_-][a-z0-9_-]{0,61})?|sub([a-z0-9-][a-z0-9_-]{0,60})?)$";
/// A shop's `*.myshopify.com` domain, as `Provider::Shopify.check_account` takes it.
const SHOP_DOMAIN: &str = r"^[a-z0-9][a-z0-9-]{0,59}\.myshopify\.com$";
/// A Zoho organisation, as `Provider::Zoho.check_account` takes it.
const ZOHO_ORG: &str = r"^[A-Za-z0-9._-]{1,100}$";
/// A credential's part as the provider issued it: printable ASCII without spaces.
const CREDENTIAL_PART: &str = r"^[!-~]{1,1000}$";
/// An http or https URL with a host, printable ASCII (the server takes any printable text; clients are
/// told the portable subset).
const URL: &str = r#"^https?://[!-"$-.0->@-~]+[!-~]*$"#;
/// A URL, or empty for none.
const URL_OR_EMPTY: &str = r#"^(|https?://[!-"$-.0->@-~]+[!-~]*)$"#;
/// A header name, or empty for the default.
const HEADER_OR_EMPTY: &str = r"^[A-Za-z0-9_-]{0,64}$";
/// A header value Hookplane sends: printable ASCII or tabs.
const HEADER_VALUE: &str = r"^[\t -~]{0,1024}$";
/// A Standard Webhooks secret: `whsec_` (optional) and the canonical base64 of 24 to 64 bytes.
const STANDARD_SECRET: &str = concat!(
    r"^(|(whsec_)?((?:[A-Za-z0-9+/]{4}){7,20}[A-Za-z0-9+/]{4}",
    r"|(?:[A-Za-z0-9+/]{4}){8,21}[A-Za-z0-9+/][AQgw]==",
    r"|(?:[A-Za-z0-9+/]{4}){8,20}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=))$"
);
/// The filters of a bulk operation, as a delivery listing takes them.
const FILTERS: [&str; 8] = ["q", "source", "topic", "status", "subscription", "account", "from", "to"];

/// Zoho's data centres, blank or null for `com`.
fn zoho_data_centres() -> Vec<Value> {
    ZOHO_DATA_CENTRES.iter().map(|d| json!(d)).chain([json!(""), Value::Null]).collect()
}

fn text(max: usize) -> Value {
    json!({ "maxLength": max, "pattern": NON_BLANK })
}

fn url(or_empty: bool) -> Value {
    json!({ "maxLength": 2048, "pattern": if or_empty { URL_OR_EMPTY } else { URL } })
}

fn header_value() -> Value {
    json!({ "pattern": HEADER_VALUE })
}

fn range(min: u32, max: u32) -> Value {
    json!({ "minimum": min, "maximum": max })
}

/// A subscription id, as the delivery filters take one.
fn subscription_id() -> Value {
    json!({ "pattern": format!("^{}{ULID_CHARS}$", SubscriptionId::PREFIX) })
}

/// At least one filter given, and not blank: a bulk operation over everything is refused.
fn at_least_one_filter() -> Value {
    let given = |f: &str| match f {
        "source" | "status" => json!({ "required": [f], "properties": { f: { "not": { "enum": [null] } } } }),
        _ => json!({ "required": [f], "properties": { f: { "type": "string", "pattern": SOME_TEXT } } }),
    };
    json!({ "anyOf": FILTERS.iter().map(|f| given(f)).collect::<Vec<_>>() })
}

/// The delivery filters of a bulk operation, field by field; a blank one is no filter.
fn filter_fields(schema: &'static str) -> Vec<Rule> {
    let blank_or = |rule: Value| json!({ "anyOf": [rule, { "pattern": BLANK }] });
    vec![
        Rule::Property(schema, "from", blank_or(json!({ "format": "date-time" }))),
        Rule::Property(schema, "to", blank_or(json!({ "format": "date-time" }))),
        Rule::Property(schema, "subscription", blank_or(subscription_id())),
    ]
}

/// One refinement of the generated document.
enum Rule {
    /// Keywords for a schema of `components`.
    Schema(&'static str, Value),
    /// Keywords for one property of a schema.
    Property(&'static str, &'static str, Value),
    /// Keywords for the schema of one path parameter of an operation.
    Parameter(&'static str, &'static str, Value),
    /// Keywords for what a path below `components/schemas` names: a map's values, say.
    Within(&'static str, Value),
}

fn rules(max_timeout_seconds: u32) -> Vec<Rule> {
    use Rule::{Parameter, Property, Schema, Within};
    let closed = || json!({ "additionalProperties": false });
    let mut rules = vec![
        Schema(
            "SubscriptionIn",
            json!({ "additionalProperties": false, "allOf": [
                // The destination's settings need a destination.
                { "anyOf": [
                    { "required": ["destination_url"], "properties": { "destination_url": { "type": "string", "minLength": 1 } } },
                    { "properties": {
                        "destination_timeout_seconds": { "enum": [null] },
                        "destination_concurrency": { "enum": [null] },
                        "destination_headers": { "maxProperties": 0 },
                    } },
                ] },
                // A Zoho subscription needs its secret; a Standard Webhooks one is generated when absent.
                { "anyOf": [
                    { "properties": { "source": { "enum": ["shopify"] } } },
                    { "properties": { "source": { "enum": ["zoho"] }, "secret": { "type": "string", "minLength": 1 } },
                      "required": ["secret"] },
                    { "properties": { "source": { "enum": ["standard"] },
                                      "secret": { "type": "string", "nullable": true, "pattern": STANDARD_SECRET } } },
                ] },
                // A channel subscription authenticates by its channel (`auth` says `channel`, as answers show it,
                // or nothing); a workflow webhook by a token or a signature.
                { "anyOf": [
                    { "properties": { "channel_id": { "enum": [null, ""] }, "auth": { "enum": ["token", "signature", null] } } },
                    { "required": ["channel_id"],
                      "properties": { "channel_id": { "type": "string", "minLength": 1 }, "auth": { "enum": ["channel", null] } } },
                ] },
                // Zoho's own settings are for Zoho subscriptions.
                { "anyOf": [
                    { "properties": { "source": { "enum": ["zoho"] } } },
                    { "properties": {
                        "channel_id": { "enum": [null] },
                        "auth": { "enum": [null] },
                        "token_header": { "enum": [null] },
                    } },
                ] },
            ] }),
        ),
        Property("SubscriptionIn", "topic", text(256)),
        Property("SubscriptionIn", "account", text(256)),
        Property("SubscriptionIn", "name", json!({ "pattern": SUBSCRIPTION_NAME })),
        Property("SubscriptionIn", "destination_url", url(true)),
        Property("SubscriptionIn", "destination_timeout_seconds", range(1, max_timeout_seconds)),
        Property("SubscriptionIn", "destination_concurrency", range(1, 256)),
        Property("SubscriptionIn", "secret", json!({ "maxLength": 256 })),
        Property("SubscriptionIn", "token_header", json!({ "pattern": HEADER_OR_EMPTY })),
        Property("SubscriptionIn", "dedupe_header", json!({ "pattern": HEADER_OR_EMPTY })),
        Property("SubscriptionIn", "destination_headers", json!({ "maxProperties": 20 })),
        Within("SubscriptionIn/properties/destination_headers/additionalProperties", header_value()),
        Property("SubscriptionIn", "auth", json!({ "enum": ["token", "signature", "channel", null] })),
        Property("SubscriptionIn", "channel_id", json!({ "maxLength": 256, "pattern": NON_BLANK_OR_EMPTY })),
        Schema(
            "SubscriptionPatchIn",
            json!({ "additionalProperties": false, "minProperties": 1, "anyOf": [
                // Going to `store` (`null`) takes the forwarding settings with it.
                { "not": { "required": ["destination_url"] } },
                { "properties": { "destination_url": { "type": "string" } } },
                { "properties": {
                    "destination_timeout_seconds": { "enum": [null] },
                    "destination_concurrency": { "enum": [null] },
                    "destination_headers": { "maxProperties": 0 },
                } },
            ] }),
        ),
        Property("SubscriptionPatchIn", "destination_url", url(false)),
        Property("SubscriptionPatchIn", "destination_timeout_seconds", range(1, max_timeout_seconds)),
        Property("SubscriptionPatchIn", "destination_concurrency", range(1, 256)),
        Property("SubscriptionPatchIn", "destination_headers", json!({ "maxProperties": 20 })),
        Within("SubscriptionPatchIn/properties/destination_headers/additionalProperties", header_value()),
        Property("RotateSecretIn", "secret", json!({ "minLength": 1, "maxLength": 256 })),
        Property("RotateSecretIn", "secret_confirmation", json!({ "maxLength": 256 })),
        Property("RotateSecretIn", "overlap_hours", range(1, 720)),
        Schema("RetentionIn", json!({ "additionalProperties": false, "required": ["days"] })),
        Property("RetentionIn", "days", range(1, 30)),
        Schema("RetentionChangeIn", closed()),
        Property("RetentionChangeIn", "days", range(1, 30)),
        Property("RetentionChangeIn", "confirm", json!({ "enum": [true] })),
        Property("TokenIn", "name", text(64)),
        Schema("BulkReplayIn", at_least_one_filter()),
        Property("BulkReplayIn", "rate_per_second", range(1, 200)),
        Schema(
            "ErasureIn",
            json!({ "allOf": [at_least_one_filter(), { "anyOf": [
                { "required": ["dry_run"], "properties": { "dry_run": { "enum": [true] } } },
                { "required": ["confirm"], "properties": { "confirm": { "enum": [true] } } },
            ] }] }),
        ),
        Property("ErasureIn", "reason", json!({ "maxLength": 200 })),
        // `null` reads as absent: `false`.
        Property("ErasureIn", "dry_run", json!({ "nullable": true })),
        Property("ErasureIn", "confirm", json!({ "nullable": true })),
        Property("BulkReplayIn", "dry_run", json!({ "nullable": true })),
        Schema("DeployIn", closed()),
        Property("DeployIn", "service", json!({ "maxLength": 64, "pattern": LABEL })),
        Property("DeployIn", "version", json!({ "maxLength": 64, "pattern": LABEL })),
        Schema("VersionWatchIn", closed()),
        Property("VersionWatchIn", "url", url(true)),
        Property("VersionWatchIn", "header", json!({ "pattern": HEADER_OR_EMPTY })),
        Property("VersionWatchIn", "service", json!({ "maxLength": 64, "pattern": LABEL_OR_EMPTY })),
        Property("ShopifyCredentialIn", "access_token", json!({ "pattern": CREDENTIAL_PART })),
        Property("ZohoCredentialIn", "client_id", json!({ "pattern": CREDENTIAL_PART })),
        Property("ZohoCredentialIn", "client_secret", json!({ "pattern": CREDENTIAL_PART })),
        Property("ZohoCredentialIn", "refresh_token", json!({ "pattern": CREDENTIAL_PART })),
        Property("ZohoCredentialIn", "data_centre", json!({ "enum": zoho_data_centres() })),
        Parameter("setShopifyCredential", "shop", json!({ "pattern": SHOP_DOMAIN })),
        Parameter("removeShopifyCredential", "shop", json!({ "pattern": SHOP_DOMAIN })),
        Parameter("setZohoCredential", "org", json!({ "pattern": ZOHO_ORG })),
        Parameter("removeZohoCredential", "org", json!({ "pattern": ZOHO_ORG })),
    ];
    rules.extend(filter_fields("BulkReplayIn"));
    rules.extend(filter_fields("ErasureIn"));
    rules
}

/// `spec` (poem-openapi's document) with every rule applied. A rule whose target is missing is an error
/// that names it, so a renamed type cannot silently lose its rules.
pub fn refine(spec: &str, max_timeout_seconds: u32) -> Result<String, String> {
    let mut doc: Value = serde_json::from_str(spec).map_err(|e| format!("the generated document: {e}"))?;
    for rule in rules(max_timeout_seconds) {
        let (target, keywords) = match &rule {
            Rule::Schema(s, k) => (doc.pointer_mut(&format!("/components/schemas/{s}")), k),
            Rule::Property(s, p, k) => (doc.pointer_mut(&format!("/components/schemas/{s}/properties/{p}")), k),
            Rule::Parameter(op, name, k) => (parameter(&mut doc, op, name), k),
            Rule::Within(path, k) => (doc.pointer_mut(&format!("/components/schemas/{path}")), k),
        };
        let target = target.and_then(Value::as_object_mut).ok_or_else(|| format!("no target for {}", rule.name()))?;
        merge(target, keywords).map_err(|e| format!("{}: {e}", rule.name()))?;
    }
    serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())
}

impl Rule {
    fn name(&self) -> String {
        match self {
            Rule::Schema(s, _) => format!("schema {s}"),
            Rule::Property(s, p, _) => format!("property {s}.{p}"),
            Rule::Parameter(op, name, _) => format!("parameter {name} of {op}"),
            Rule::Within(path, _) => path.to_string(),
        }
    }
}

fn parameter<'a>(doc: &'a mut Value, operation: &str, name: &str) -> Option<&'a mut Value> {
    let paths = doc.get_mut("paths")?.as_object_mut()?;
    let op = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .find(|op| op["operationId"] == operation)?;
    let params = op.get_mut("parameters")?.as_array_mut()?;
    params.iter_mut().find(|p| p["name"] == name)?.get_mut("schema")
}

/// Adds `keywords` to `target`. A keyword the generated document has already is an error: a rule adds
/// what the derives cannot say, and never overrides what they do.
fn merge(target: &mut Map<String, Value>, keywords: &Value) -> Result<(), String> {
    for (k, v) in keywords.as_object().into_iter().flatten() {
        if target.contains_key(k) {
            return Err(format!("`{k}` is there already"));
        }
        target.insert(k.clone(), v.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::standard::decode_secret;
    use crate::domain::credential::Provider;
    use crate::domain::deploy::check_label;
    use crate::domain::subscription::validate_name;

    /// Whether `pattern` takes `s` as a JSON Schema validator does (a search, anchored by the pattern).
    fn takes(pattern: &str, s: &str) -> bool {
        regex::Regex::new(pattern).is_ok_and(|r| r.is_match(s))
    }

    #[test]
    fn the_patterns_take_what_the_server_takes() {
        use base64::Engine as _;
        for n in 20..70 {
            let key: Vec<u8> = (0..n).map(|i| (i * 37 % 251) as u8).collect();
            let s = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key));
            assert_eq!(takes(STANDARD_SECRET, &s), decode_secret(&s).is_ok(), "{n} bytes: {s}");
        }
        let names =
            ["", "a", "s", "su", "sub", "sub_", "sub_x", "subx", "s-1", "A", "a b", &"a".repeat(64), &"a".repeat(65)];
        for n in names.into_iter().filter(|n| !n.is_empty()) {
            assert_eq!(takes(SUBSCRIPTION_NAME, n), validate_name(n).is_ok(), "{n:?}");
        }
        for shop in ["a.myshopify.com", "-a.myshopify.com", "A.myshopify.com", ".myshopify.com", "a.example.com"] {
            assert_eq!(takes(SHOP_DOMAIN, shop), Provider::Shopify.check_account(shop).is_ok(), "{shop}");
        }
        let texts =
            ["1.0", " 1.0", "1.0 ", "a b", "", " ", "\u{97}D", "\u{feff}x", "a\u{85}", "\ta", "a\tb", "\u{3000}"];
        for label in texts.iter().copied().chain([&*"v".repeat(64)]) {
            assert_eq!(takes(LABEL, label), check_label("version", label).is_ok(), "{label:?}");
        }
        // What `control::subscriptions::required` takes, bar the length.
        let required = |s: &str| !s.trim().is_empty() && !s.trim().chars().any(char::is_control);
        for text in texts {
            assert_eq!(takes(NON_BLANK, text), required(text), "{text:?}");
            assert_eq!(takes(NON_BLANK_OR_EMPTY, text), text.is_empty() || required(text), "{text:?}");
            assert_eq!(takes(BLANK, text), text.trim().is_empty(), "{text:?}");
            assert_eq!(takes(SOME_TEXT, text), !text.trim().is_empty(), "{text:?}");
        }
    }

    #[test]
    fn every_rule_finds_its_target() {
        let spec = super::super::service().spec();
        let doc = refine(&spec, 57).unwrap_or_else(|e| panic!("{e}"));
        let doc: Value = serde_json::from_str(&doc).unwrap_or_default();
        assert_eq!(doc["components"]["schemas"]["SubscriptionPatchIn"]["minProperties"], 1);
        assert_eq!(doc["components"]["schemas"]["TokenIn"]["properties"]["name"]["maxLength"], 64);
        let timeout = &doc["components"]["schemas"]["SubscriptionIn"]["properties"]["destination_timeout_seconds"];
        assert_eq!(timeout["maximum"], 57, "the instance's own limit");
    }
}
