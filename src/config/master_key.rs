//! Where the master key comes from.

use anyhow::Context as _;

use super::Settings;
use crate::secrets::MasterKey;

/// The master key from `HOOKPLANE_MASTER_KEY` or `master_key_file`.
pub fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(hex) = &settings.env.master_key {
        return MasterKey::from_hex(hex).context("HOOKPLANE_MASTER_KEY is not usable");
    }
    if let Some(path) = settings.master_key_file() {
        return Ok(MasterKey::from_file(path)?);
    }
    anyhow::bail!(
        "no master key: set HOOKPLANE_MASTER_KEY to 64 hex characters (make one with `hookplane master-key`) \
         or point master_key_file at a file holding them; keep it outside the data directory"
    )
}
