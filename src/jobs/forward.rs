//! Handing one delivery to its destination over HTTP: the exact stored body with the provider's own
//! headers (so the receiver's Shopify or Zoho verification still passes), Hookplane's delivery id and
//! attempt number, and a Standard Webhooks signature made with the destination's secret. The answer is
//! classified into what the queue does next.

use std::time::{Duration, Instant};

use crate::connectors::standard;
use crate::domain::Timestamp;
use crate::domain::attempt::{EXCERPT_BYTES, ErrorClass, Tried};
use crate::domain::deploy::clean_version;
use crate::domain::settlement::Next;

/// Headers that describe one HTTP hop, not the delivery: never copied to the destination. `accept-encoding`
/// said what the provider's client accepts; Hookplane's client asks for the answer as it is.
const HOP_HEADERS: [&str; 9] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
    "te",
    "upgrade",
    "expect",
    "accept-encoding",
];

/// One attempt as it happened, with what the destination asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempted {
    pub tried: Tried,
    /// The destination's `Retry-After`, in seconds, on a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl Attempted {
    /// What the queue does next, from the destination's answer alone: delivered on 2xx, paused on 410
    /// (the destination does not want these any more), otherwise tried again.
    pub fn verdict(&self) -> Next {
        match self.tried.response_code {
            Some(s) if (200..300).contains(&s) => Next::Delivered,
            Some(410) => Next::Gone,
            _ => Next::Retry { after: self.retry_after },
        }
    }
}

/// What one attempt sends.
pub struct Outgoing<'a> {
    pub url: &'a str,
    pub delivery_id: &'a str,
    pub attempt: u32,
    /// The provider's headers as they arrived.
    pub headers: &'a [(String, String)],
    /// The destination's own headers, in place of provider headers of the same names.
    pub extra: &'a [(String, String)],
    pub body: &'a [u8],
    /// The destination's `whsec_` key bytes, for the signature; `None` sends none.
    pub signing_key: Option<&'a [u8]>,
    /// Seconds since the epoch, for the signature.
    pub timestamp: i64,
    /// The answer's header naming the destination's version.
    pub version_header: &'a str,
}

/// The headers sent: the provider's (minus hop headers), then Hookplane's. When the provider itself is a
/// Standard Webhooks sender, its `webhook-*` headers are kept for the receiver and Hookplane's signature
/// travels under `x-hookplane-webhook-*` instead.
pub fn headers(out: &Outgoing<'_>) -> Vec<(String, String)> {
    let replaced = |k: &str| out.extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(k));
    let mut h: Vec<(String, String)> = out
        .headers
        .iter()
        .filter(|(k, _)| !HOP_HEADERS.contains(&k.to_ascii_lowercase().as_str()) && !replaced(k))
        .cloned()
        .collect();
    h.extend(out.extra.iter().cloned());
    h.push(("x-hookplane-delivery-id".into(), out.delivery_id.into()));
    h.push(("x-hookplane-attempt".into(), out.attempt.to_string()));
    if let Some(key) = out.signing_key {
        let taken = out.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("webhook-signature"));
        let prefix = if taken { "x-hookplane-" } else { "" };
        let signature = standard::sign(out.delivery_id, out.timestamp, out.body, key);
        h.push((format!("{prefix}webhook-id"), out.delivery_id.into()));
        h.push((format!("{prefix}webhook-timestamp"), out.timestamp.to_string()));
        h.push((format!("{prefix}webhook-signature"), signature));
    }
    h
}

/// Sends one attempt, waiting at most `timeout` for the answer and reading at most [`EXCERPT_BYTES`] of its
/// body. `now` is when it started, as the queue's clock tells it.
pub async fn send(client: &reqwest::Client, out: &Outgoing<'_>, timeout: Duration, now: Timestamp) -> Attempted {
    let started = Instant::now();
    let mut req = client.post(out.url).timeout(timeout).body(out.body.to_vec());
    for (k, v) in headers(out) {
        req = req.header(k, v);
    }
    let elapsed = |s: Instant| u32::try_from(s.elapsed().as_millis()).unwrap_or(u32::MAX);
    let failed = |class, e: String| Attempted {
        tried: Tried {
            started_at: now,
            response_code: None,
            latency_ms: elapsed(started),
            error: Some((class, e)),
            excerpt: String::new(),
            version: None,
        },
        retry_after: None,
    };
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_builder() => return failed(ErrorClass::Internal, crate::logging::chain(&e)),
        Err(e) if e.is_timeout() => return failed(ErrorClass::Timeout, crate::logging::chain(&e)),
        Err(e) => return failed(ErrorClass::Connect, crate::logging::chain(&e)),
    };
    let status = resp.status().as_u16();
    let version = resp.headers().get(out.version_header).and_then(|v| v.to_str().ok()).and_then(clean_version);
    let retry_after = [429, 503]
        .contains(&status)
        .then(|| resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok()))
        .flatten()
        .map(|s: u64| Duration::from_secs(s.min(86_400)));
    // Only the start of the answer is kept; the rest is never read, so a huge answer costs nothing.
    let mut head = Vec::new();
    let mut read_error = None;
    while head.len() < EXCERPT_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    head.truncate(EXCERPT_BYTES);
    // A 2xx is the destination's acceptance, whatever happened to the rest of its answer.
    let error = match read_error {
        _ if (200..300).contains(&status) => None,
        Some(e) if e.is_timeout() => Some((ErrorClass::Timeout, crate::logging::chain(&e))),
        _ => Some((ErrorClass::Http, format!("the destination answered {status}"))),
    };
    let excerpt = String::from_utf8_lossy(&head).into_owned();
    Attempted {
        tried: Tried {
            started_at: now,
            response_code: Some(status),
            latency_ms: elapsed(started),
            error,
            excerpt,
            version,
        },
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing<'a>(headers: &'a [(String, String)], key: Option<&'a [u8]>) -> Outgoing<'a> {
        Outgoing {
            url: "http://127.0.0.1:9/",
            delivery_id: "dlv_1",
            attempt: 2,
            headers,
            extra: &[],
            body: b"{}",
            signing_key: key,
            timestamp: 1_700_000_000,
            version_header: "X-Service-Version",
        }
    }

    #[test]
    fn provider_headers_travel_and_ours_never_clobber_theirs() {
        let shopify = vec![
            ("host".to_owned(), "hooks.example".to_owned()),
            ("x-shopify-hmac-sha256".to_owned(), "abc=".to_owned()),
            ("Content-Length".to_owned(), "2".to_owned()),
        ];
        let h = headers(&outgoing(&shopify, Some(b"key")));
        let names: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-shopify-hmac-sha256",
                "x-hookplane-delivery-id",
                "x-hookplane-attempt",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature"
            ]
        );
        assert_eq!(h[5].1, standard::sign("dlv_1", 1_700_000_000, b"{}", b"key"));
        let standard_sender = vec![("webhook-signature".to_owned(), "v1,theirs".to_owned())];
        let h = headers(&outgoing(&standard_sender, Some(b"key")));
        assert!(h.contains(&("webhook-signature".to_owned(), "v1,theirs".to_owned())));
        assert!(h.iter().any(|(k, _)| k == "x-hookplane-webhook-signature"));
        assert!(!headers(&outgoing(&[], None)).iter().any(|(k, _)| k.contains("signature")));
    }

    #[test]
    fn answers_become_verdicts() {
        let a = |status: Option<u16>, retry_after: Option<u64>| Attempted {
            tried: Tried { response_code: status, ..Tried::default() },
            retry_after: retry_after.map(Duration::from_secs),
        };
        assert_eq!(a(Some(204), None).verdict(), Next::Delivered);
        assert_eq!(a(Some(410), None).verdict(), Next::Gone);
        assert_eq!(a(Some(503), Some(7)).verdict(), Next::Retry { after: Some(Duration::from_secs(7)) });
        assert_eq!(a(Some(500), None).verdict(), Next::Retry { after: None });
        assert_eq!(a(None, None).verdict(), Next::Retry { after: None });
    }

    /// A destination that answers one request with `answer` (or never, when `None`) and hands back the
    /// request as it arrived.
    async fn destination(answer: Option<&'static str>) -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let handle = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // The request is small: read until its body (after the blank line) is in.
            while !String::from_utf8_lossy(&seen).contains("\r\n\r\n{}") {
                let n = sock.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            match answer {
                Some(a) => sock.write_all(a.as_bytes()).await.unwrap(),
                None => std::future::pending::<()>().await,
            }
            String::from_utf8_lossy(&seen).into_owned()
        });
        (url, handle)
    }

    #[tokio::test]
    async fn attempts_are_recorded_as_the_destination_answers() {
        let client = reqwest::Client::new();
        let provider = vec![("x-shopify-hmac-sha256".to_owned(), "abc=".to_owned())];
        let t = Duration::from_secs(10);

        let (url, seen) = destination(Some("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")).await;
        let got = send(&client, &Outgoing { url: &url, ..outgoing(&provider, Some(b"key")) }, t, Timestamp(0)).await;
        assert_eq!((got.tried.response_code, got.verdict(), got.tried.error), (Some(204), Next::Delivered, None));
        let request = seen.await.unwrap().to_ascii_lowercase();
        for h in [
            "x-shopify-hmac-sha256: abc=",
            "x-hookplane-delivery-id: dlv_1",
            "x-hookplane-attempt: 2",
            "webhook-signature: v1,",
        ] {
            assert!(request.contains(h), "{h} in {request}");
        }

        let busy = "HTTP/1.1 503 Service Unavailable\r\nretry-after: 7\r\ncontent-length: 4\r\n\r\nbusy";
        let (url, _) = destination(Some(busy)).await;
        let got = send(&client, &Outgoing { url: &url, ..outgoing(&provider, None) }, t, Timestamp(0)).await;
        assert_eq!(got.verdict(), Next::Retry { after: Some(Duration::from_secs(7)) });
        assert_eq!((got.tried.excerpt.as_str(), got.tried.error.map(|e| e.0)), ("busy", Some(ErrorClass::Http)));

        let (url, _) = destination(Some("HTTP/1.1 410 Gone\r\ncontent-length: 0\r\n\r\n")).await;
        assert_eq!(
            send(&client, &Outgoing { url: &url, ..outgoing(&provider, None) }, t, Timestamp(0)).await.verdict(),
            Next::Gone
        );

        let refused = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            format!("http://{}/", l.local_addr().unwrap())
        };
        let got = send(&client, &Outgoing { url: &refused, ..outgoing(&provider, None) }, t, Timestamp(0)).await;
        assert_eq!(got.tried.error.map(|e| e.0), Some(ErrorClass::Connect));

        let (url, _) = destination(None).await;
        let quick = Duration::from_millis(200);
        let got = send(&client, &Outgoing { url: &url, ..outgoing(&provider, None) }, quick, Timestamp(0)).await;
        assert_eq!((got.tried.response_code, got.tried.error.map(|e| e.0)), (None, Some(ErrorClass::Timeout)));
    }
}
