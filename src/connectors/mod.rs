//! Identify and verify inbound requests, one module per provider. Pure code: a connector sees header
//! values and body bytes, never a socket, a database or the clock (time is passed in).

pub mod shopify;
pub mod standard;
pub mod zoho;

use std::fmt;

use crate::domain::RejectCause;
use crate::secrets::hmac_sha256;

/// Read access to request headers. Names are given in lower case; the first value wins.
pub trait Headers: Sync {
    fn get(&self, lower_name: &str) -> Option<&[u8]>;

    /// Every header as (lower-case name, value), values that are not UTF-8 replaced lossily.
    fn entries(&self) -> Vec<(String, String)>;
}

impl Headers for [(&str, &str)] {
    fn get(&self, lower_name: &str) -> Option<&[u8]> {
        self.iter().find(|(k, _)| k.eq_ignore_ascii_case(lower_name)).map(|(_, v)| v.as_bytes())
    }

    fn entries(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned())).collect()
    }
}

impl Headers for Vec<(String, String)> {
    fn get(&self, lower_name: &str) -> Option<&[u8]> {
        self.iter().find(|(k, _)| k.eq_ignore_ascii_case(lower_name)).map(|(_, v)| v.as_bytes())
    }

    fn entries(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect()
    }
}

/// Headers never written to storage: they carry credentials, and Zoho workflow tokens travel in them.
pub const STORED_HEADER_DENYLIST: [&str; 4] = ["authorization", "cookie", "proxy-authorization", "x-api-key"];

/// Why a connector refused a request: a stable cause and a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub cause: RejectCause,
    pub detail: String,
}

impl Rejection {
    pub fn new(cause: RejectCause, detail: impl Into<String>) -> Self {
        Self { cause, detail: detail.into() }
    }

    pub fn missing_header(name: &str) -> Self {
        Self::new(RejectCause::HeaderMissing, format!("the `{name}` header is required"))
    }

    pub fn malformed_header(name: &str, why: &str) -> Self {
        Self::new(RejectCause::HeaderMalformed, format!("the `{name}` header {why}"))
    }

    pub fn signature_invalid(detail: impl Into<String>) -> Self {
        Self::new(RejectCause::SignatureInvalid, detail)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.cause, self.detail)
    }
}

impl std::error::Error for Rejection {}

/// The value of a header as text; a header that is not visible ASCII is malformed, not absent.
pub(crate) fn header_str<'h>(h: &'h (impl Headers + ?Sized), name: &str) -> Result<Option<&'h str>, Rejection> {
    match h.get(name) {
        None => Ok(None),
        Some(raw) => {
            let text = std::str::from_utf8(raw)
                .ok()
                .filter(|s| s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)))
                .ok_or_else(|| Rejection::malformed_header(name, "is not printable ASCII"))?;
            let text = text.trim();
            Ok((!text.is_empty()).then_some(text))
        }
    }
}

/// The first of `names` that is present, with the name it was found under.
pub(crate) fn first_header<'h>(
    h: &'h (impl Headers + ?Sized),
    names: &[&'static str],
) -> Result<Option<(&'static str, &'h str)>, Rejection> {
    for name in names {
        if let Some(v) = header_str(h, name)? {
            return Ok(Some((name, v)));
        }
    }
    Ok(None)
}

/// The value of a configured header (any case), bounded like a provider id.
pub fn header_value(h: &(impl Headers + ?Sized), name: &str) -> Result<Option<String>, Rejection> {
    header_str(h, &name.to_ascii_lowercase())?.map(|v| bounded_id(name, v)).transpose()
}

/// Provider ids are stored and shown; a bounded length keeps a hostile sender from bloating the dedupe table.
pub(crate) const MAX_ID_LEN: usize = 256;

pub(crate) fn bounded_id(name: &str, value: &str) -> Result<String, Rejection> {
    if value.len() > MAX_ID_LEN {
        return Err(Rejection::malformed_header(name, &format!("is longer than {MAX_ID_LEN} characters")));
    }
    Ok(value.to_owned())
}

/// Index of the first key whose HMAC-SHA256 over `parts` equals `expected`. Every key is tried, and each
/// comparison is constant-time, so timing reveals neither the match nor how much of it matched.
pub(crate) fn match_hmac(keys: &[&[u8]], parts: &[&[u8]], expected: &[u8]) -> Option<usize> {
    use subtle::ConstantTimeEq;
    let mut found = None;
    for (i, key) in keys.iter().enumerate() {
        let ok = hmac_sha256(key, parts).ct_eq(expected);
        if bool::from(ok) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// Index of the first secret equal to `presented`, compared in constant time.
pub(crate) fn match_token(secrets: &[&[u8]], presented: &[u8]) -> Option<usize> {
    use subtle::ConstantTimeEq;
    let mut found = None;
    for (i, s) in secrets.iter().enumerate() {
        if bool::from(s.ct_eq(presented)) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_case_insensitively_and_checked() {
        let h: &[(&str, &str)] = &[("X-Shopify-Topic", " orders/create "), ("Bad", "caf\u{e9}")];
        assert_eq!(header_str(h, "x-shopify-topic").unwrap(), Some("orders/create"));
        assert_eq!(header_str(h, "absent").unwrap(), None);
        assert_eq!(header_str(h, "bad").unwrap_err().cause, RejectCause::HeaderMalformed);
    }

    #[test]
    fn tokens_and_macs_match_by_index() {
        assert_eq!(match_token(&[b"a", b"bb"], b"bb"), Some(1));
        assert_eq!(match_token(&[b"a"], b"ab"), None);
        let mac = hmac_sha256(b"k2", &[b"body"]);
        assert_eq!(match_hmac(&[b"k1", b"k2"], &[b"body"], &mac), Some(1));
        assert_eq!(match_hmac(&[b"k1"], &[b"body"], &mac), None);
    }
}
