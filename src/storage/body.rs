//! Stored bodies: exact bytes, compressed with zstd unless that would not make them smaller.

use super::StoreError;

const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;

pub fn encode(body: &[u8], level: i32) -> Vec<u8> {
    if let Ok(compressed) = zstd::bulk::compress(body, level)
        && compressed.len() < body.len()
    {
        let mut out = Vec::with_capacity(compressed.len() + 1);
        out.push(CODEC_ZSTD);
        out.extend_from_slice(&compressed);
        return out;
    }
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(CODEC_RAW);
    out.extend_from_slice(body);
    out
}

/// The exact body; `size` is the length recorded at ingest, which bounds decompression.
pub fn decode(stored: &[u8], size: u64) -> Result<Vec<u8>, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt { table: "bodies_v1", detail };
    match stored.split_first() {
        Some((&CODEC_RAW, raw)) => Ok(raw.to_vec()),
        Some((&CODEC_ZSTD, z)) => {
            let cap = usize::try_from(size).map_err(|_| corrupt("size out of range".into()))?;
            zstd::bulk::decompress(z, cap).map_err(|e| corrupt(format!("zstd: {e}")))
        }
        Some((codec, _)) => Err(corrupt(format!("unknown body codec {codec}"))),
        None => Err(corrupt("empty body record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_exactly() {
        let json = br#"{"id":1,"line_items":[{"sku":"A"},{"sku":"A"},{"sku":"A"},{"sku":"A"},{"sku":"A"}]}"#;
        for body in [&json[..], b"x", b"", &[0u8, 159, 146, 150][..]] {
            let stored = encode(body, 3);
            assert_eq!(decode(&stored, body.len() as u64).unwrap(), body);
        }
        assert_eq!(encode(json, 3)[0], CODEC_ZSTD, "JSON compresses");
        assert_eq!(encode(b"x", 3)[0], CODEC_RAW, "tiny bodies are kept raw");
        assert!(decode(&[9, 1, 2], 2).is_err());
    }
}
