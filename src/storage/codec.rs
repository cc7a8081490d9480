//! How typed values are written into redb: a one-byte format version, then MessagePack with field names,
//! so a field added later (with a serde default) reads old rows without copying them.

use std::marker::PhantomData;

use redb::{Key, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// The format byte in front of every record.
const FORMAT_MSGPACK_V1: u8 = 1;

/// Encodes and decodes records of type `T`; `name` is the table they live in, for error messages.
pub struct Codec<T> {
    name: &'static str,
    _t: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Codec<T> {
    pub const fn new(name: &'static str) -> Self {
        Self { name, _t: PhantomData }
    }

    pub fn encode(&self, value: &T) -> Result<Vec<u8>, StoreError> {
        let mut out = vec![FORMAT_MSGPACK_V1];
        rmp_serde::encode::write_named(&mut out, value)
            .map_err(|e| StoreError::Corrupt { table: self.name, detail: format!("encoding failed: {e}") })?;
        Ok(out)
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<T, StoreError> {
        match bytes.split_first() {
            Some((&FORMAT_MSGPACK_V1, rest)) => {
                rmp_serde::from_slice(rest).map_err(|e| StoreError::Corrupt { table: self.name, detail: e.to_string() })
            }
            Some((v, _)) => Err(StoreError::Corrupt { table: self.name, detail: format!("unknown record format {v}") }),
            None => Err(StoreError::Corrupt { table: self.name, detail: "empty record".into() }),
        }
    }
}

/// A table whose values are records of type `T`. The redb value type is `&[u8]`; encoding happens once per
/// write here (redb would run a `Value` encoder twice per insert) and decoding errors are reported, not
/// panicked on.
pub struct RecordTable<K: Key + 'static, T> {
    name: &'static str,
    codec: Codec<T>,
    _k: PhantomData<fn() -> K>,
}

impl<K: Key + 'static, T: Serialize + DeserializeOwned> RecordTable<K, T> {
    pub const fn new(name: &'static str) -> Self {
        Self { name, codec: Codec::new(name), _k: PhantomData }
    }

    pub const fn def(&self) -> TableDefinition<'static, K, &'static [u8]> {
        TableDefinition::new(self.name)
    }

    pub fn encode(&self, value: &T) -> Result<Vec<u8>, StoreError> {
        self.codec.encode(value)
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<T, StoreError> {
        self.codec.decode(bytes)
    }
}
