//! Standard Webhooks (standardwebhooks.com, spec v1.0.0): HMAC-SHA256 over `{id}.{timestamp}.{body}` with
//! `whsec_` secrets, any number of space-separated `v1,` signatures, and a timestamp tolerance.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{Headers, Rejection, bounded_id, header_str, match_hmac};
use crate::domain::{RejectCause, Timestamp};
use crate::secrets::hmac_sha256;

pub const SECRET_PREFIX: &str = "whsec_";

/// The reference libraries' tolerance: a request signed more than five minutes away from now is refused.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Decodes a `whsec_…` secret (or bare base64) into the HMAC key. The spec asks for 24 to 64 bytes.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key =
        STANDARD.decode(b64).map_err(|_| "a Standard Webhooks secret is `whsec_` followed by base64".to_owned())?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "a Standard Webhooks secret must hold 24 to 64 bytes of key (this one holds {})",
            key.len()
        ));
    }
    Ok(key)
}

/// A fresh random secret in the spec's form.
pub fn generate_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardRequest {
    /// `webhook-id`: the same across retries, so it is the dedupe key.
    pub id: String,
    /// `webhook-timestamp`, Unix seconds of this attempt.
    pub timestamp: i64,
    signatures: Vec<[u8; 32]>,
}

/// Reads the three headers. A missing signature is a 401; a missing or unreadable id or timestamp a 400.
pub fn read_request(h: &(impl Headers + ?Sized)) -> Result<StandardRequest, Rejection> {
    let sig_header = header_str(h, "webhook-signature")?
        .ok_or_else(|| Rejection::new(RejectCause::SignatureMissing, "the `webhook-signature` header is required"))?;
    let id = header_str(h, "webhook-id")?.ok_or_else(|| Rejection::missing_header("webhook-id"))?;
    let id = bounded_id("webhook-id", id)?;
    let ts = header_str(h, "webhook-timestamp")?.ok_or_else(|| Rejection::missing_header("webhook-timestamp"))?;
    let timestamp = ts
        .parse::<i64>()
        .map_err(|_| Rejection::malformed_header("webhook-timestamp", "is not an integer number of Unix seconds"))?;
    // Unknown versions (`v1a`, future ones) are skipped, as the reference libraries do.
    let signatures: Vec<[u8; 32]> = sig_header
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok()?.try_into().ok())
        .collect();
    if signatures.is_empty() {
        return Err(Rejection::signature_invalid(
            "the `webhook-signature` header holds no readable `v1,<base64>` signature",
        ));
    }
    Ok(StandardRequest { id, timestamp, signatures })
}

impl StandardRequest {
    /// Checks the timestamp against `now` first (as the reference libraries do), then every signature
    /// against every key. Returns the index of the key that matched.
    pub fn verify(&self, body: &[u8], keys: &[&[u8]], now: Timestamp, tolerance_secs: i64) -> Result<usize, Rejection> {
        let skew = self.timestamp.saturating_sub(now.seconds());
        if skew.abs() > tolerance_secs {
            let when = if skew < 0 { "old" } else { "in the future" };
            return Err(Rejection::new(
                RejectCause::TimestampOutOfTolerance,
                format!("`webhook-timestamp` is {}s {when}; the tolerance is {tolerance_secs}s", skew.unsigned_abs()),
            ));
        }
        let ts = self.timestamp.to_string();
        let parts: [&[u8]; 5] = [self.id.as_bytes(), b".", ts.as_bytes(), b".", body];
        self.signatures.iter().find_map(|sig| match_hmac(keys, &parts, sig)).ok_or_else(|| {
            Rejection::signature_invalid(format!(
                "none of the {} `v1` signature(s) matches under the {} secret(s) held",
                self.signatures.len(),
                keys.len()
            ))
        })
    }
}

/// The `webhook-signature` value (`v1,<base64>`) for a message.
pub fn sign(id: &str, timestamp: i64, body: &[u8], key: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mac = hmac_sha256(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", STANDARD.encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vector {
        secret: &'static str,
        id: &'static str,
        ts: i64,
        body: &'static [u8],
        sig: &'static str,
    }

    const VECTORS: [Vector; 2] = [
        Vector {
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
            ts: 1_614_265_330,
            body: br#"{"test": 2432232314}"#,
            sig: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        },
        Vector {
            secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            id: "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            ts: 1_649_367_553,
            body: br#"{"email":"test@example.com","username":"test_user"}"#,
            sig: "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        },
    ];

    fn request(v: &Vector, sig: &str) -> StandardRequest {
        let ts = v.ts.to_string();
        let h: &[(&str, &str)] = &[("webhook-id", v.id), ("webhook-timestamp", &ts), ("webhook-signature", sig)];
        read_request(h).unwrap()
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn providers_md_vectors_sign_and_verify() {
        for v in &VECTORS {
            let key = decode_secret(v.secret).unwrap();
            assert_eq!(sign(v.id, v.ts, v.body, &key), v.sig);
            let req = request(v, v.sig);
            assert_eq!(req.verify(v.body, &[&key], at(v.ts), DEFAULT_TOLERANCE_SECS), Ok(0));
        }
    }

    #[test]
    fn the_negative_vector_is_rejected() {
        let v = &VECTORS[0];
        let key = decode_secret(v.secret).unwrap();
        let req = request(v, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=");
        let err = req.verify(v.body, &[&key], at(v.ts), 300).unwrap_err();
        assert_eq!(err.cause, RejectCause::SignatureInvalid);
    }

    #[test]
    fn any_v1_signature_and_any_key_may_match() {
        let v = &VECTORS[1];
        let key = decode_secret(v.secret).unwrap();
        let sig = format!("v1a,ignored v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {}", v.sig);
        let req = request(v, &sig);
        let other = decode_secret(&generate_secret()).unwrap();
        assert_eq!(req.verify(v.body, &[&other, &key], at(v.ts), 300), Ok(1));
        assert!(req.verify(b"{}", &[&key], at(v.ts), 300).is_err(), "tampered body");
        assert!(req.verify(v.body, &[&other], at(v.ts), 300).is_err(), "wrong secret");
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let v = &VECTORS[0];
        let key = decode_secret(v.secret).unwrap();
        let req = request(v, v.sig);
        for now in [v.ts + 301, v.ts - 301] {
            let err = req.verify(v.body, &[&key], at(now), 300).unwrap_err();
            assert_eq!(err.cause, RejectCause::TimestampOutOfTolerance);
        }
        assert!(req.verify(v.body, &[&key], at(v.ts + 300), 300).is_ok());
    }

    #[test]
    fn headers_are_required_and_checked() {
        let h: &[(&str, &str)] = &[("webhook-id", "m"), ("webhook-timestamp", "1")];
        assert_eq!(read_request(h).unwrap_err().cause, RejectCause::SignatureMissing);
        let h: &[(&str, &str)] = &[("webhook-signature", "v1,x"), ("webhook-timestamp", "1")];
        assert_eq!(read_request(h).unwrap_err().cause, RejectCause::HeaderMissing);
        let h: &[(&str, &str)] = &[("webhook-signature", "v1,x"), ("webhook-id", "m"), ("webhook-timestamp", "soon")];
        assert_eq!(read_request(h).unwrap_err().cause, RejectCause::HeaderMalformed);
        let h: &[(&str, &str)] = &[("webhook-signature", "v2,abc"), ("webhook-id", "m"), ("webhook-timestamp", "1")];
        assert_eq!(read_request(h).unwrap_err().cause, RejectCause::SignatureInvalid);
    }

    #[test]
    fn secrets_are_validated() {
        assert!(decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(decode_secret("whsec_c2hvcnQ=").unwrap_err().contains("24 to 64"));
        assert!(decode_secret("whsec_***").is_err());
        assert_eq!(decode_secret(&generate_secret()).unwrap().len(), 32);
    }
}
