//! Shopify HTTPS webhooks: base64 HMAC-SHA256 of the raw body under the app's client secret.
//! Both header families are read: the classic `X-Shopify-*` and the unprefixed `shopify-*` sent by the
//! newer Events product (which also sends the classic ones for compatibility).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{Headers, Rejection, bounded_id, first_header, match_hmac};
use crate::domain::RejectCause;
use crate::secrets::hmac_sha256;

/// What the headers of a Shopify delivery say, before the signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopifyRequest {
    pub topic: String,
    pub shop_domain: String,
    /// Dedupe key: `X-Shopify-Webhook-Id`, or `{event id}:{topic}` when only the event id is sent.
    pub delivery_id: String,
    pub event_id: Option<String>,
    pub api_version: Option<String>,
    pub triggered_at: Option<String>,
    /// The subscription's `name`, when the developer gave it one.
    pub name: Option<String>,
    signature: [u8; 32],
}

fn pair(name: &'static str) -> [&'static str; 2] {
    match name {
        "hmac-sha256" => ["shopify-hmac-sha256", "x-shopify-hmac-sha256"],
        "topic" => ["shopify-topic", "x-shopify-topic"],
        "shop-domain" => ["shopify-shop-domain", "x-shopify-shop-domain"],
        "webhook-id" => ["x-shopify-webhook-id", "shopify-webhook-id"],
        "event-id" => ["shopify-event-id", "x-shopify-event-id"],
        "api-version" => ["shopify-api-version", "x-shopify-api-version"],
        "triggered-at" => ["shopify-triggered-at", "x-shopify-triggered-at"],
        "name" => ["x-shopify-name", "shopify-name"],
        _ => unreachable!("not a Shopify header: {name}"),
    }
}

fn optional(h: &(impl Headers + ?Sized), name: &'static str) -> Result<Option<String>, Rejection> {
    first_header(h, &pair(name))?.map(|(n, v)| bounded_id(n, v)).transpose()
}

/// Reads the Shopify headers. A missing signature is a 401; other missing headers are a 400.
pub fn read_request(h: &(impl Headers + ?Sized)) -> Result<ShopifyRequest, Rejection> {
    let (sig_name, sig) = first_header(h, &pair("hmac-sha256"))?.ok_or_else(|| {
        Rejection::new(RejectCause::SignatureMissing, "the `X-Shopify-Hmac-Sha256` header is required")
    })?;
    let signature = decode_signature(sig).ok_or_else(|| {
        Rejection::signature_invalid(format!(
            "the `{sig_name}` header is not the base64 encoding of a 32-byte HMAC-SHA256 digest"
        ))
    })?;
    let topic = optional(h, "topic")?.ok_or_else(|| Rejection::missing_header("X-Shopify-Topic"))?;
    let shop_domain = optional(h, "shop-domain")?.ok_or_else(|| Rejection::missing_header("X-Shopify-Shop-Domain"))?;
    let event_id = optional(h, "event-id")?;
    let delivery_id = match (optional(h, "webhook-id")?, &event_id) {
        (Some(id), _) => id,
        (None, Some(event)) => format!("{event}:{topic}"),
        (None, None) => return Err(Rejection::missing_header("X-Shopify-Webhook-Id")),
    };
    Ok(ShopifyRequest {
        topic,
        shop_domain: shop_domain.to_ascii_lowercase(),
        delivery_id,
        event_id,
        api_version: optional(h, "api-version")?,
        triggered_at: optional(h, "triggered-at")?,
        name: optional(h, "name")?,
        signature,
    })
}

fn decode_signature(value: &str) -> Option<[u8; 32]> {
    STANDARD.decode(value).ok()?.try_into().ok()
}

impl ShopifyRequest {
    /// Index of the key that signed `body`. Every key is tried in constant time.
    pub fn verify(&self, body: &[u8], keys: &[&[u8]]) -> Result<usize, Rejection> {
        match_hmac(keys, &[body], &self.signature).ok_or_else(|| {
            Rejection::signature_invalid(if keys.is_empty() {
                "no Shopify secret is configured (set SHOPIFY_WEBHOOK_SECRET)".to_owned()
            } else {
                format!("the HMAC does not match the body under any of the {} Shopify secret(s) held", keys.len())
            })
        })
    }
}

/// The `X-Shopify-Hmac-Sha256` value for `body` under `secret`.
pub fn sign(body: &[u8], secret: &[u8]) -> String {
    STANDARD.encode(hmac_sha256(secret, &[body]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com","topic":"orders/create"}"#;

    fn headers(sig: &str) -> Vec<(&'static str, String)> {
        vec![
            ("X-Shopify-Hmac-Sha256", sig.to_owned()),
            ("X-Shopify-Topic", "orders/create".to_owned()),
            ("X-Shopify-Shop-Domain", "Example.myshopify.com".to_owned()),
            ("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".to_owned()),
            ("X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5".to_owned()),
            ("X-Shopify-API-Version", "2025-10".to_owned()),
        ]
    }

    fn read(h: &[(&'static str, String)]) -> Result<ShopifyRequest, Rejection> {
        let view: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        read_request(view.as_slice())
    }

    #[test]
    fn providers_md_vectors() {
        assert_eq!(sign(BODY, b"hush"), "caywFtONLHCQ/kdAoRCOAC9s972OdEFX6QvGUQVBTbQ=");
        let mut with_newline = BODY.to_vec();
        with_newline.push(b'\n');
        assert_eq!(sign(&with_newline, b"hush"), "3XO+LNoFCbgnzV8sNU6kP0ruDUTjboGoPpR4Ejj6PpU=");
        assert_eq!(sign(b"", b"hush"), "Knm8rWjeSXNIt2H0AOMT7DQ8/YSy8sQi/pEjbuUmGMs=");
    }

    #[test]
    fn verifies_against_current_or_previous_secret() {
        let req = read(&headers("caywFtONLHCQ/kdAoRCOAC9s972OdEFX6QvGUQVBTbQ=")).unwrap();
        assert_eq!(req.topic, "orders/create");
        assert_eq!(req.shop_domain, "example.myshopify.com");
        assert_eq!(req.delivery_id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
        assert_eq!(req.verify(BODY, &[b"hush"]), Ok(0));
        assert_eq!(req.verify(BODY, &[b"new-secret", b"hush"]), Ok(1));
        let wrong = req.verify(BODY, &[b"wrong"]).unwrap_err();
        assert_eq!(wrong.cause, RejectCause::SignatureInvalid);
        let mut tampered = BODY.to_vec();
        tampered[10] = b'9';
        assert!(req.verify(&tampered, &[b"hush"]).is_err());
    }

    #[test]
    fn reads_the_unprefixed_family() {
        let h: &[(&str, &str)] = &[
            ("shopify-hmac-sha256", "caywFtONLHCQ/kdAoRCOAC9s972OdEFX6QvGUQVBTbQ="),
            ("shopify-topic", "orders/create"),
            ("shopify-shop-domain", "example.myshopify.com"),
            ("shopify-event-id", "evt-1"),
        ];
        let req = read_request(h).unwrap();
        assert_eq!(req.delivery_id, "evt-1:orders/create");
        assert_eq!(req.event_id.as_deref(), Some("evt-1"));
        assert_eq!(req.verify(BODY, &[b"hush"]), Ok(0));
    }

    #[test]
    fn missing_and_malformed_headers_have_their_own_causes() {
        let mut h = headers("caywFtONLHCQ/kdAoRCOAC9s972OdEFX6QvGUQVBTbQ=");
        h.remove(0);
        assert_eq!(read(&h).unwrap_err().cause, RejectCause::SignatureMissing);

        let h = headers("not base64!");
        assert_eq!(read(&h).unwrap_err().cause, RejectCause::SignatureInvalid);
        let h = headers("aGVsbG8="); // valid base64, wrong length
        assert_eq!(read(&h).unwrap_err().cause, RejectCause::SignatureInvalid);

        for drop in ["X-Shopify-Topic", "X-Shopify-Shop-Domain"] {
            let h: Vec<_> = headers("caywFtONLHCQ/kdAoRCOAC9s972OdEFX6QvGUQVBTbQ=")
                .into_iter()
                .filter(|(k, _)| *k != drop)
                .collect();
            let err = read(&h).unwrap_err();
            assert_eq!(err.cause, RejectCause::HeaderMissing, "{drop}");
            assert!(err.detail.contains(drop));
        }
        let h: Vec<_> = headers("caywFtONLHCQ/kdAoRCOAC9s972OdEFX6QvGUQVBTbQ=")
            .into_iter()
            .filter(|(k, _)| !k.ends_with("Id"))
            .collect();
        assert_eq!(read(&h).unwrap_err().cause, RejectCause::HeaderMissing);
    }
}
