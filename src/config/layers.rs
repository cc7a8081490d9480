//! How the layers combine: a file's tables over the defaults, then `HOOKPLANE_*` variables read as the
//! type their key has in the defaults.

use std::collections::BTreeMap;

use super::alerts::ENV_WEBHOOK_SECRET;
use super::env::{ENV_ADMIN_TOKEN, ENV_CONFIG, ENV_DEMO, ENV_MASTER_KEY, ENV_METRICS_TOKEN, ENV_SETUP_CODE};
use super::{ConfigError, invalid};

pub(super) fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// `HOOKPLANE_INGEST__MAX_BODY_BYTES=1048576` sets `ingest.max_body_bytes`. The value is read as the type
/// the key has in the defaults, so `HOOKPLANE_LISTEN=127.0.0.1:9000` stays a string and a number a number.
pub(super) fn apply_env(
    merged: &mut toml::Table,
    defaults: &toml::Table,
    env: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("HOOKPLANE_") else { continue };
        if [
            ENV_CONFIG,
            ENV_MASTER_KEY,
            ENV_ADMIN_TOKEN,
            ENV_SETUP_CODE,
            ENV_METRICS_TOKEN,
            ENV_DEMO,
            ENV_WEBHOOK_SECRET,
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let Some(default) = lookup(defaults, &path) else {
            return Err(invalid(name.clone(), "no such configuration key (see config/hookplane.example.toml)"));
        };
        let value = match default {
            toml::Value::Integer(_) => raw.trim().parse().map(toml::Value::Integer).ok(),
            toml::Value::Boolean(_) => raw.trim().parse().map(toml::Value::Boolean).ok(),
            toml::Value::Float(_) => raw.trim().parse().map(toml::Value::Float).ok(),
            toml::Value::String(_) => Some(toml::Value::String(raw.clone())),
            // A list of numbers, written `1,2,3`.
            toml::Value::Array(_) => raw
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| p.trim().parse().map(toml::Value::Integer).ok())
                .collect::<Option<Vec<_>>>()
                .map(toml::Value::Array),
            _ => None,
        }
        .ok_or_else(|| invalid(name.clone(), format!("`{raw}` is not a valid value for this key")))?;
        let (last, parents) = path.split_last().unwrap_or_else(|| unreachable!("split yields one part at least"));
        let mut table = &mut *merged;
        for p in parents {
            table = match table.entry(p.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new())) {
                toml::Value::Table(t) => t,
                _ => return Err(invalid(name.clone(), "no such configuration key")),
            };
        }
        table.insert(last.clone(), value);
    }
    Ok(())
}

fn lookup<'t>(table: &'t toml::Table, path: &[String]) -> Option<&'t toml::Value> {
    let (first, rest) = path.split_first()?;
    let v = table.get(first)?;
    if rest.is_empty() {
        return Some(v);
    }
    match v {
        toml::Value::Table(t) => lookup(t, rest),
        _ => None,
    }
}
