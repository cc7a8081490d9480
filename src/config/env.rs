//! What only the environment may provide: secrets, the file to read, the demo to run. Never a file, never
//! a flag (a flag shows in the process list).

use std::collections::BTreeMap;
use std::fmt;

use crate::secrets::SecretBytes;

/// Environment variables with a meaning of their own rather than a configuration key.
pub(super) const ENV_CONFIG: &str = "HOOKPLANE_CONFIG";
pub(super) const ENV_MASTER_KEY: &str = "HOOKPLANE_MASTER_KEY";
pub(super) const ENV_ADMIN_TOKEN: &str = "HOOKPLANE_ADMIN_TOKEN";
pub(super) const ENV_SETUP_CODE: &str = "HOOKPLANE_SETUP_CODE";
pub(super) const ENV_METRICS_TOKEN: &str = "HOOKPLANE_METRICS_TOKEN";
/// Read by `serve` itself: the demo scenario to run.
pub const ENV_DEMO: &str = "HOOKPLANE_DEMO";
pub const ENV_SHOPIFY_SECRET: &str = "SHOPIFY_WEBHOOK_SECRET";
pub const ENV_SHOPIFY_SECRET_PREVIOUS: &str = "SHOPIFY_WEBHOOK_SECRET_PREVIOUS";

/// Values that only the environment may provide.
#[derive(Clone, Default)]
pub struct EnvSecrets {
    pub master_key: Option<String>,
    pub admin_token: Option<SecretBytes>,
    /// The setup link's code instead of a random one, for automation that opens the dashboard before any
    /// operator exists.
    pub setup_code: Option<SecretBytes>,
    /// A bearer token that may read `/metrics` and nothing else.
    pub metrics_token: Option<SecretBytes>,
    pub shopify_secret: Option<SecretBytes>,
    pub shopify_secret_previous: Option<SecretBytes>,
    /// `SHOPIFY_ADMIN_ACCESS_TOKEN`: the Admin API token handshakes use for a shop without one of its own.
    pub shopify_admin_token: Option<SecretBytes>,
    /// Every variable, for `secret_env` references of declared subscriptions.
    vars: BTreeMap<String, String>,
}

impl EnvSecrets {
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The variable `name` as a secret; empty counts as unset.
    pub fn secret(&self, name: &str) -> Option<SecretBytes> {
        secret(&self.vars, name)
    }

    /// Shopify's app secrets: the current one, and the previous during a rotation.
    pub fn shopify_app_secrets(&self) -> [Option<&SecretBytes>; 2] {
        [self.shopify_secret.as_ref(), self.shopify_secret_previous.as_ref()]
    }
}

impl fmt::Debug for EnvSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |o: bool| if o { "***" } else { "unset" };
        f.debug_struct("EnvSecrets")
            .field("master_key", &set(self.master_key.is_some()))
            .field("admin_token", &set(self.admin_token.is_some()))
            .field("setup_code", &set(self.setup_code.is_some()))
            .field("metrics_token", &set(self.metrics_token.is_some()))
            .field("shopify_secret", &set(self.shopify_secret.is_some()))
            .field("shopify_secret_previous", &set(self.shopify_secret_previous.is_some()))
            .field("shopify_admin_token", &set(self.shopify_admin_token.is_some()))
            .finish_non_exhaustive()
    }
}

impl EnvSecrets {
    /// The secrets `env` holds; empty values count as unset.
    pub(super) fn from_env(env: &BTreeMap<String, String>) -> Self {
        EnvSecrets {
            master_key: env.get(ENV_MASTER_KEY).filter(|v| !v.is_empty()).cloned(),
            admin_token: secret(env, ENV_ADMIN_TOKEN),
            setup_code: secret(env, ENV_SETUP_CODE),
            metrics_token: secret(env, ENV_METRICS_TOKEN),
            shopify_secret: secret(env, ENV_SHOPIFY_SECRET),
            shopify_secret_previous: secret(env, ENV_SHOPIFY_SECRET_PREVIOUS),
            shopify_admin_token: secret(env, super::handshake::ENV_SHOPIFY_ADMIN_TOKEN),
            vars: env.clone(),
        }
    }
}

fn secret(env: &BTreeMap<String, String>, name: &str) -> Option<SecretBytes> {
    env.get(name).filter(|v| !v.is_empty()).map(|v| SecretBytes::new(v.as_bytes().to_vec()))
}
