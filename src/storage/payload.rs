//! Stored payloads: the headers and the exact body of a delivery, compressed together with zstd (unless
//! that would not make them smaller). Headers repeat across deliveries and bodies are JSON, so together
//! they shrink several times; the delivery row stays small and quick to list.
//!
//! zstd rather than lz4: lz4 compressed a 3 KB order four times faster, but ingest throughput is bound by
//! commit latency, not CPU, so it gained nothing there, while its larger payloads (two to a page less
//! often) doubled the data file (`cargo bench --bench ingest`, docs/benchmarks.md).

use std::io::Read;

use super::StoreError;
use crate::domain::Payload;

const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;

std::thread_local! {
    /// Compression state per thread: creating (and zeroing) it per call costs more than compressing a
    /// webhook.
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// `u32` length of the encoded headers, the headers (MessagePack), then the body.
fn frame(headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let encoded = rmp_serde::to_vec(headers).unwrap_or_default();
    let mut out = Vec::with_capacity(4 + encoded.len() + body.len());
    out.extend_from_slice(&u32::try_from(encoded.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&encoded);
    out.extend_from_slice(body);
    out
}

pub fn encode(headers: &[(String, String)], body: &[u8], level: i32) -> Vec<u8> {
    let plain = frame(headers, body);
    let compressed = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = zstd::bulk::Compressor::new(level).ok().map(|c| (level, c));
        }
        slot.as_mut().and_then(|(_, c)| c.compress(&plain).ok())
    });
    let (codec, bytes) = match compressed {
        Some(z) if z.len() < plain.len() => (CODEC_ZSTD, z),
        _ => (CODEC_RAW, plain),
    };
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(codec);
    out.extend_from_slice(&bytes);
    out
}

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt { table: "payloads_v1", detail }
}

/// The whole payload.
pub fn decode(stored: &[u8]) -> Result<Payload, StoreError> {
    decode_prefix(stored, usize::MAX)
}

/// The headers and at most `body_limit` bytes of the body, decompressing no further than that: listing a
/// page of large deliveries costs what their previews cost.
pub fn decode_prefix(stored: &[u8], body_limit: usize) -> Result<Payload, StoreError> {
    let (codec, data) = stored.split_first().ok_or_else(|| corrupt("empty payload record".into()))?;
    let mut reader: Box<dyn Read + '_> = match *codec {
        CODEC_RAW => Box::new(data),
        CODEC_ZSTD => {
            Box::new(zstd::stream::read::Decoder::with_buffer(data).map_err(|e| corrupt(format!("zstd: {e}")))?)
        }
        other => return Err(corrupt(format!("unknown payload codec {other}"))),
    };
    let mut len = [0u8; 4];
    reader.read_exact(&mut len).map_err(|e| corrupt(format!("truncated payload: {e}")))?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_HEADER_BYTES {
        return Err(corrupt(format!("a header block of {len} bytes")));
    }
    let mut encoded = vec![0u8; len];
    reader.read_exact(&mut encoded).map_err(|e| corrupt(format!("truncated headers: {e}")))?;
    let headers = rmp_serde::from_slice(&encoded).map_err(|e| corrupt(format!("headers: {e}")))?;
    let mut body = Vec::new();
    reader
        .take(u64::try_from(body_limit).unwrap_or(u64::MAX))
        .read_to_end(&mut body)
        .map_err(|e| corrupt(format!("body: {e}")))?;
    Ok(Payload { headers, body })
}

/// Room for stored headers when decompressing: hyper refuses requests with more than 100 headers, and
/// real providers send a few kilobytes at most.
const MAX_HEADER_BYTES: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> Vec<(String, String)> {
        vec![("x-shopify-topic".into(), "orders/create".into()), ("content-type".into(), "application/json".into())]
    }

    #[test]
    fn payloads_round_trip_exactly() {
        let json = br#"{"id":1,"line_items":[{"sku":"A"},{"sku":"A"},{"sku":"A"},{"sku":"A"},{"sku":"A"}]}"#;
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| format!("{{\"n\":{i}}}").into_bytes()).collect();
        for body in [&json[..], b"x", b"", &[0u8, 159, 146, 150][..], &big] {
            for h in [headers(), Vec::new()] {
                let stored = encode(&h, body, 1);
                let p = decode(&stored).unwrap();
                assert_eq!((p.headers.clone(), p.body.as_slice()), (h.clone(), body));
                let head = decode_prefix(&stored, 3).unwrap();
                assert_eq!((head.headers, head.body.as_slice()), (h, &body[..body.len().min(3)]));
            }
        }
        assert_eq!(encode(&headers(), json, 1)[0], CODEC_ZSTD, "JSON compresses");
        assert_eq!(encode(&[], b"x", 1)[0], CODEC_RAW, "tiny payloads are kept raw");
        assert!(decode(&[9, 1, 2]).is_err());
        assert!(decode(&[CODEC_RAW, 200, 0, 0, 0]).is_err(), "a header length past the end is refused");
    }
}
