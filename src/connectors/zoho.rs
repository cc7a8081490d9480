//! Zoho: CRM notification channels (a token echoed in the JSON body beside `channel_id`) and workflow
//! webhooks (a shared token in a header, or the finance-suite `X-Zoho-Webhook-Signature` scheme, whose
//! algorithm and encoding Zoho leaves undocumented and Hookplane therefore takes from configuration).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::{Headers, Rejection, header_str, match_token};
use crate::domain::RejectCause;
use crate::secrets::hmac_sha256;

/// The fields of a CRM notification body that identify and authenticate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelNotification {
    pub channel_id: String,
    token: Option<String>,
    /// `Leads`, `Deals`, …
    pub module: Option<String>,
    /// `insert`, `update`, `delete`.
    pub operation: Option<String>,
}

impl ChannelNotification {
    /// The topic a delivery is filed under, e.g. `Leads.update`.
    pub fn topic(&self) -> String {
        match (&self.module, &self.operation) {
            (Some(m), Some(o)) => format!("{m}.{o}"),
            (Some(m), None) => m.clone(),
            _ => "notification".to_owned(),
        }
    }

    pub fn verify(&self, tokens: &[&[u8]]) -> Result<usize, Rejection> {
        let token = self
            .token
            .as_deref()
            .ok_or_else(|| Rejection::new(RejectCause::SignatureMissing, "the notification body carries no `token`"))?;
        match_token(tokens, token.as_bytes())
            .ok_or_else(|| Rejection::signature_invalid("the notification `token` does not match the channel's token"))
    }
}

#[derive(Deserialize)]
struct RawNotification {
    channel_id: Option<serde_json::Value>,
    token: Option<String>,
    module: Option<String>,
    operation: Option<String>,
}

/// Reads a CRM notification body: JSON with at least `channel_id` (string or number).
pub fn read_channel_notification(body: &[u8]) -> Result<ChannelNotification, Rejection> {
    let raw: RawNotification = serde_json::from_slice(body).map_err(|e| {
        Rejection::new(RejectCause::BodyMalformed, format!("a Zoho notification body must be a JSON object: {e}"))
    })?;
    let channel_id = match raw.channel_id {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => {
            return Err(Rejection::new(
                RejectCause::BodyMalformed,
                "a Zoho notification body must carry `channel_id`; workflow webhooks post to /zoho/incoming/{subscription}",
            ));
        }
    };
    Ok(ChannelNotification { channel_id, token: raw.token, module: raw.module, operation: raw.operation })
}

/// Reads the shared token of a workflow webhook from `header`, accepting a bare value or a
/// `Bearer`/`Zoho-oauthtoken` scheme prefix, and matches it against the subscription's tokens.
pub fn verify_token(h: &(impl Headers + ?Sized), header: &str, tokens: &[&[u8]]) -> Result<usize, Rejection> {
    let value = header_str(h, &header.to_ascii_lowercase())?
        .ok_or_else(|| Rejection::new(RejectCause::SignatureMissing, format!("the `{header}` header is required")))?;
    let token = ["bearer ", "zoho-oauthtoken "]
        .iter()
        .find_map(|scheme| {
            value.get(..scheme.len()).filter(|p| p.eq_ignore_ascii_case(scheme)).map(|_| value[scheme.len()..].trim())
        })
        .unwrap_or(value);
    match_token(tokens, token.as_bytes()).ok_or_else(|| {
        Rejection::signature_invalid(format!("the token in `{header}` does not match the subscription's token"))
    })
}

/// How the signature digest is written in the header. Zoho does not say; hex is the guess to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

/// The finance-suite signature scheme, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureScheme {
    /// Header carrying the signature, `X-Zoho-Webhook-Signature` by default.
    pub header: String,
    pub encoding: SignatureEncoding,
}

impl SignatureScheme {
    /// Verifies `HMAC-SHA256(secret, sorted "keyvalue" pairs ‖ raw body)`. Query pairs always take part; a
    /// form-encoded body contributes its decoded pairs instead of its raw bytes.
    pub fn verify(
        &self,
        h: &(impl Headers + ?Sized),
        query: &str,
        body: &[u8],
        keys: &[&[u8]],
    ) -> Result<usize, Rejection> {
        let value = header_str(h, &self.header.to_ascii_lowercase())?.ok_or_else(|| {
            Rejection::new(RejectCause::SignatureMissing, format!("the `{}` header is required", self.header))
        })?;
        let expected = match self.encoding {
            SignatureEncoding::Hex => crate::hex::decode(value),
            SignatureEncoding::Base64 => STANDARD.decode(value).ok(),
        }
        .filter(|d| d.len() == 32)
        .ok_or_else(|| {
            Rejection::signature_invalid(format!(
                "the `{}` header is not a {} HMAC-SHA256 digest",
                self.header,
                match self.encoding {
                    SignatureEncoding::Hex => "hex",
                    SignatureEncoding::Base64 => "base64",
                }
            ))
        })?;
        let form = is_form(h);
        let message = string_to_sign(query, body, form);
        super::match_hmac(keys, &[&message], &expected).ok_or_else(|| {
            Rejection::signature_invalid(format!(
                "the `{}` signature does not match under the {} secret(s) held",
                self.header,
                keys.len()
            ))
        })
    }

    /// The header value for a request, as a sender would compute it.
    pub fn sign(&self, query: &str, body: &[u8], form: bool, key: &[u8]) -> String {
        let mac = hmac_sha256(key, &[&string_to_sign(query, body, form)]);
        match self.encoding {
            SignatureEncoding::Hex => crate::hex::encode(&mac),
            SignatureEncoding::Base64 => STANDARD.encode(mac),
        }
    }
}

fn is_form(h: &(impl Headers + ?Sized)) -> bool {
    h.get("content-type")
        .and_then(|v| std::str::from_utf8(v).ok())
        .is_some_and(|ct| ct.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

fn string_to_sign(query: &str, body: &[u8], form: bool) -> Vec<u8> {
    let mut pairs = parse_pairs(query.as_bytes());
    if form {
        pairs.extend(parse_pairs(body));
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(body.len() + 64);
    for (k, v) in pairs {
        out.extend_from_slice(&k);
        out.extend_from_slice(&v);
    }
    if !form {
        out.extend_from_slice(body);
    }
    out
}

fn parse_pairs(s: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    s.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut it = p.splitn(2, |&b| b == b'=');
            let k = percent_decode(it.next().unwrap_or_default());
            let v = percent_decode(it.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex_val(s[i + 1]), hex_val(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_notifications_are_read_and_verified() {
        let body = br#"{"server_time":1710000000000,"query_params":{},"module":"Leads","resource_uri":"https://www.zohoapis.com/crm/v2/Leads","ids":["5725767000000524157"],"affected_fields":[],"operation":"insert","channel_id":"1000000068001","token":"leads-token-123"}"#;
        let n = read_channel_notification(body).unwrap();
        assert_eq!(n.channel_id, "1000000068001");
        assert_eq!(n.topic(), "Leads.insert");
        assert_eq!(n.verify(&[b"old", b"leads-token-123"]), Ok(1));
        assert_eq!(n.verify(&[b"other"]).unwrap_err().cause, RejectCause::SignatureInvalid);

        let numeric = read_channel_notification(br#"{"channel_id":42,"module":"Deals"}"#).unwrap();
        assert_eq!(numeric.channel_id, "42");
        assert_eq!(numeric.verify(&[b"x"]).unwrap_err().cause, RejectCause::SignatureMissing);
    }

    #[test]
    fn malformed_notifications_are_refused() {
        for body in [&b"not json"[..], b"[]", br#"{"module":"Leads"}"#, br#"{"channel_id":""}"#] {
            assert_eq!(read_channel_notification(body).unwrap_err().cause, RejectCause::BodyMalformed);
        }
    }

    #[test]
    fn workflow_tokens_accept_bare_and_scheme_prefixed_values() {
        for value in ["s3cret-token", "Bearer s3cret-token", "Zoho-oauthtoken s3cret-token"] {
            let h: &[(&str, &str)] = &[("Authorization", value)];
            assert_eq!(verify_token(h, "Authorization", &[b"s3cret-token"]), Ok(0), "{value}");
        }
        let h: &[(&str, &str)] = &[("X-Api-Key", "nope")];
        assert_eq!(verify_token(h, "X-Api-Key", &[b"s3cret-token"]).unwrap_err().cause, RejectCause::SignatureInvalid);
        assert_eq!(verify_token(h, "Authorization", &[b"t"]).unwrap_err().cause, RejectCause::SignatureMissing);
    }

    #[test]
    fn the_documented_string_to_sign() {
        // Zoho Billing's own example: query subscription_id=90343, name=basic plus a JSON body.
        let body = br#"{"created_date":"2019-03-06","event_id":"5675"}"#;
        let s = string_to_sign("subscription_id=90343&name=basic", body, false);
        assert_eq!(s, br#"namebasicsubscription_id90343{"created_date":"2019-03-06","event_id":"5675"}"#.to_vec());
        let form = string_to_sign("b=2", b"c=hello+world&a=%41%2", true);
        assert_eq!(form, b"aA%2b2chello world".to_vec(), "form pairs are decoded and sorted; the raw body is left out");
    }

    #[test]
    fn signatures_verify_in_either_encoding() {
        let body = br#"{"invoice_id":"1"}"#;
        for encoding in [SignatureEncoding::Hex, SignatureEncoding::Base64] {
            let scheme = SignatureScheme { header: "X-Zoho-Webhook-Signature".into(), encoding };
            let sig = scheme.sign("org=7", body, false, b"abcdefghijkl");
            let h: &[(&str, &str)] = &[("x-zoho-webhook-signature", &sig)];
            assert_eq!(scheme.verify(h, "org=7", body, &[b"abcdefghijkl"]), Ok(0));
            assert!(scheme.verify(h, "org=8", body, &[b"abcdefghijkl"]).is_err());
            assert!(scheme.verify(h, "org=7", b"{}", &[b"abcdefghijkl"]).is_err());
            let none: &[(&str, &str)] = &[];
            assert_eq!(scheme.verify(none, "", body, &[b"k"]).unwrap_err().cause, RejectCause::SignatureMissing);
        }
    }
}
