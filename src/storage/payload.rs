//! Stored payloads: the headers and the exact body of a delivery, compressed together with zstd (unless
//! that would not make them smaller). Headers repeat across deliveries and bodies are JSON, so together
//! they shrink several times; the delivery row stays small and quick to list.
//!
//! A webhook is too small for zstd to learn its own vocabulary, so payloads are compressed against a built-in
//! dictionary: the field and header names of the payloads Hookplane receives (Shopify orders, products and
//! customers, Zoho CRM and Books, Standard Webhooks envelopes). At the default fast level (-4) a 3.7 KB
//! order becomes about 0.9 KB in about 8 µs; plain zstd at level 1 made 1.3 KB in 16 µs. Smaller rows mean
//! fewer pages per commit and a smaller data file. Stored payloads name their dictionary by codec
//! byte, so a released dictionary never changes: a better one becomes a new codec, and old rows keep reading.

use std::io::Read;

use super::StoreError;
use crate::domain::Payload;

const CODEC_RAW: u8 = 0;
/// Plain zstd: written by earlier versions, still read.
const CODEC_ZSTD: u8 = 1;
/// zstd against [`DICTIONARY_V1`].
const CODEC_ZSTD_DICT_V1: u8 = 2;

/// Raw-content dictionary: text that payloads are likely to repeat, the most common (a Shopify order) last,
/// where matches are cheapest to encode.
const DICTIONARY_V1: &[u8] = include_bytes!("payload_dictionary_v1.txt");

static DECODER_DICTIONARY_V1: std::sync::LazyLock<zstd::dict::DecoderDictionary<'static>> =
    std::sync::LazyLock::new(|| zstd::dict::DecoderDictionary::copy(DICTIONARY_V1));

std::thread_local! {
    /// Compression state per thread: creating (and zeroing) it per call costs more than compressing a
    /// webhook.
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
    /// The same for reading, holding the dictionary: the search indexer and every page that shows bodies
    /// decompress one payload after another.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
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
            // The context keeps the dictionary digested after its first use.
            *slot = zstd::bulk::Compressor::with_dictionary(level, DICTIONARY_V1).ok().map(|c| (level, c));
        }
        slot.as_mut().and_then(|(_, c)| c.compress(&plain).ok())
    });
    let (codec, bytes) = match compressed {
        Some(z) if z.len() < plain.len() => (CODEC_ZSTD_DICT_V1, z),
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
    match *codec {
        CODEC_RAW => read_frame(&mut { data }, body_limit),
        CODEC_ZSTD => read_frame(
            &mut zstd::stream::read::Decoder::with_buffer(data).map_err(|e| corrupt(format!("zstd: {e}")))?,
            body_limit,
        ),
        CODEC_ZSTD_DICT_V1 => DECOMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                let mut context = zstd::zstd_safe::DCtx::create();
                context.ref_ddict(DECODER_DICTIONARY_V1.as_ddict()).map_err(|code| {
                    corrupt(format!("zstd: loading the dictionary: {}", zstd::zstd_safe::get_error_name(code)))
                })?;
                *slot = Some(context);
            }
            let context = slot.as_mut().ok_or_else(|| corrupt("zstd: no decompression context".into()))?;
            // Whatever an earlier read left unfinished (a prefix, an error) goes; the dictionary stays.
            let _ = context.reset(zstd::zstd_safe::ResetDirective::SessionOnly);
            read_frame(&mut zstd::stream::read::Decoder::with_context(data, context).single_frame(), body_limit)
        }),
        other => Err(corrupt(format!("unknown payload codec {other}"))),
    }
}

fn read_frame(reader: &mut dyn Read, body_limit: usize) -> Result<Payload, StoreError> {
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
        assert_eq!(encode(&headers(), json, 1)[0], CODEC_ZSTD_DICT_V1, "JSON compresses");
        assert_eq!(encode(&[], b"x", 1)[0], CODEC_RAW, "tiny payloads are kept raw");
        assert!(decode(&[9, 1, 2]).is_err());
        assert!(decode(&[CODEC_RAW, 200, 0, 0, 0]).is_err(), "a header length past the end is refused");
    }

    #[test]
    fn payloads_of_earlier_versions_still_read() {
        let plain = frame(&headers(), b"{\"id\":1}");
        let mut stored = vec![CODEC_ZSTD];
        stored.extend(zstd::bulk::compress(&plain, 1).unwrap());
        let p = decode(&stored).unwrap();
        assert_eq!((p.headers, p.body.as_slice()), (headers(), &b"{\"id\":1}"[..]));
    }

    #[test]
    fn the_released_dictionary_never_changes() {
        // Stored payloads depend on these exact bytes: a new dictionary needs a new codec byte.
        let digest = crate::secrets::sha256_hex(DICTIONARY_V1);
        assert_eq!(digest, "129f750b9af7269b76c744d64b54d7e546cdfc37e7632d0f65433c992e49ebdb");
    }
}
