//! What the handshakes need from the settings: the `[handshake]` section, `public_url` as it is set (a
//! handshake tells the provider where to send, so the listen address will not do), Shopify's API version
//! and the Admin API token from the environment.

use super::Settings;
use crate::handshakes::HandshakeOptions;

pub const ENV_SHOPIFY_ADMIN_TOKEN: &str = "SHOPIFY_ADMIN_ACCESS_TOKEN";

impl Settings {
    pub fn handshake_options(&self) -> HandshakeOptions {
        let public = self.public_url.trim().trim_end_matches('/');
        HandshakeOptions {
            settings: self.handshake.clone(),
            shopify_api_version: self.shopify.api_version.clone(),
            public_url: (!public.is_empty()).then(|| public.to_owned()),
            shopify_token: self.env.shopify_admin_token.clone(),
        }
    }
}
