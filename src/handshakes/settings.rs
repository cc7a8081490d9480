//! The `[handshake]` section.

use std::time::Duration;

use serde::Deserialize;

use crate::domain::handshake::Schedule;
use crate::providers::ProviderSettings;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HandshakeSettings {
    pub interval_minutes: u32,
    pub poll_interval_ms: u64,
    pub shopify_admin_url: String,
    pub zoho_accounts_url: String,
    pub zoho_api_url: String,
    pub zoho_crm_version: String,
    pub zoho_channel_hours: u32,
    pub zoho_refresh_before_minutes: u32,
    pub timeout_seconds: u64,
    pub max_throttle_wait_seconds: u64,
}

fn web_template(key: &str, value: &str, placeholders: &[&str]) -> Result<(), String> {
    let rest = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://"));
    if rest.is_none_or(str::is_empty) {
        return Err(format!("handshake.{key} must start with http:// or https://"));
    }
    let mut stripped = value.to_owned();
    for p in placeholders {
        stripped = stripped.replace(p, "");
    }
    if stripped.contains('{') || stripped.contains('}') {
        return Err(format!("handshake.{key} may hold only these placeholders: {}", placeholders.join(", ")));
    }
    Ok(())
}

impl HandshakeSettings {
    pub fn check(&self) -> Result<(), String> {
        if !(5..=7 * 24 * 60).contains(&self.interval_minutes) {
            return Err("handshake.interval_minutes must be between 5 and 10080 (a week)".to_owned());
        }
        if !(10..=3_600_000).contains(&self.poll_interval_ms) {
            return Err("handshake.poll_interval_ms must be between 10 and 3600000".to_owned());
        }
        web_template("shopify_admin_url", &self.shopify_admin_url, &["{shop}", "{version}"])?;
        web_template("zoho_accounts_url", &self.zoho_accounts_url, &["{dc}"])?;
        web_template("zoho_api_url", &self.zoho_api_url, &["{dc}"])?;
        let v = &self.zoho_crm_version;
        if !(v.len() >= 2 && v.starts_with('v') && v[1..].bytes().all(|b| b.is_ascii_digit())) {
            return Err("handshake.zoho_crm_version must be a version like v8".to_owned());
        }
        // Zoho grants at most a week from v4 (a day before), and falls back to an hour above the maximum.
        if !(2..=167).contains(&self.zoho_channel_hours) {
            return Err(
                "handshake.zoho_channel_hours must be between 2 and 167 (under Zoho's maximum of a week, above which \
                 it grants only an hour)"
                    .to_owned(),
            );
        }
        if self.zoho_refresh_before_minutes < 5
            || u64::from(self.zoho_refresh_before_minutes) >= u64::from(self.zoho_channel_hours) * 60
        {
            return Err("handshake.zoho_refresh_before_minutes must be at least 5 and shorter than zoho_channel_hours"
                .to_owned());
        }
        if !(1..=300).contains(&self.timeout_seconds) {
            return Err("handshake.timeout_seconds must be between 1 and 300".to_owned());
        }
        if self.max_throttle_wait_seconds > 600 {
            return Err("handshake.max_throttle_wait_seconds must be at most 600".to_owned());
        }
        Ok(())
    }

    pub fn schedule(&self) -> Schedule {
        Schedule {
            interval_ms: i64::from(self.interval_minutes) * 60_000,
            refresh_before_ms: i64::from(self.zoho_refresh_before_minutes) * 60_000,
        }
    }

    pub fn channel_lifetime_ms(&self) -> i64 {
        i64::from(self.zoho_channel_hours) * 3_600_000
    }

    /// The clients' settings; `shopify_api_version` is `shopify.api_version`.
    pub fn providers(&self, shopify_api_version: &str) -> ProviderSettings {
        ProviderSettings {
            shopify_admin_url: self.shopify_admin_url.clone(),
            shopify_api_version: shopify_api_version.to_owned(),
            zoho_accounts_url: self.zoho_accounts_url.clone(),
            zoho_api_url: self.zoho_api_url.clone(),
            zoho_crm_version: self.zoho_crm_version.clone(),
            timeout: Duration::from_secs(self.timeout_seconds),
            max_throttle_wait: Duration::from_secs(self.max_throttle_wait_seconds),
        }
    }
}
