//! Provider credentials: set (sealed under the master key, bound to their provider and account), listed
//! by fingerprint, removed; each change audited with fingerprints only. Shopify's
//! `SHOPIFY_ADMIN_ACCESS_TOKEN` serves every shop without a token of its own.

use super::{HandshakeError, Handshakes, provider_of};
use crate::domain::Timestamp;
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::credential::{Provider, StoredCredential, ZohoSecret, check_data_centre};
use crate::domain::handshake::Kind;
use crate::secrets::SecretBytes;
use crate::storage::{StoreError, handshakes as repo};

/// What the run signs in with.
pub(super) enum Credential {
    Shopify(SecretBytes),
    Zoho { secret: ZohoSecret, data_centre: String },
}

/// A credential as operators see it: never the secret, only its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialView {
    pub provider: Provider,
    /// The shop or organisation; `*` for `SHOPIFY_ADMIN_ACCESS_TOKEN`, which serves every other shop.
    pub account: String,
    pub fingerprint: String,
    pub data_centre: Option<String>,
    /// Set through the API or the command line, not the environment.
    pub set_at: Option<Timestamp>,
    pub set_by: Option<String>,
}

impl From<&StoredCredential> for CredentialView {
    fn from(c: &StoredCredential) -> Self {
        Self {
            provider: c.provider,
            account: c.account.clone(),
            fingerprint: c.fingerprint.clone(),
            data_centre: c.data_centre.clone(),
            set_at: Some(c.set_at),
            set_by: Some(c.set_by.clone()),
        }
    }
}

/// One part of a credential as given: non-empty printable ASCII without spaces, at most 1000 characters.
fn check_part(name: &str, value: &str) -> Result<(), HandshakeError> {
    let ok = (1..=1000).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(HandshakeError::Invalid(format!(
            "`{name}` must be 1 to 1000 printable characters without spaces, as the provider issued it"
        )))
    }
}

impl Handshakes {
    /// Stores the Admin API access token of `shop`, replacing any it had.
    pub async fn set_shopify_credential(
        &self,
        shop: &str,
        token: SecretBytes,
        actor: &Actor,
    ) -> Result<CredentialView, HandshakeError> {
        Provider::Shopify.check_account(shop).map_err(HandshakeError::Invalid)?;
        let text = std::str::from_utf8(token.expose())
            .map_err(|_| HandshakeError::Invalid("`access_token` must be text".into()))?;
        check_part("access_token", text)?;
        self.put(Provider::Shopify, shop, token.expose(), None, actor).await
    }

    /// Stores the OAuth client and refresh token of the Zoho organisation `org`.
    pub async fn set_zoho_credential(
        &self,
        org: &str,
        secret: ZohoSecret,
        data_centre: &str,
        actor: &Actor,
    ) -> Result<CredentialView, HandshakeError> {
        Provider::Zoho.check_account(org).map_err(HandshakeError::Invalid)?;
        check_part("client_id", &secret.client_id)?;
        check_part("client_secret", &secret.client_secret)?;
        check_part("refresh_token", &secret.refresh_token)?;
        check_data_centre(data_centre).map_err(HandshakeError::Invalid)?;
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(&secret).map_err(|e| HandshakeError::Invalid(format!("cannot encode it: {e}")))?,
        );
        let view = self.put(Provider::Zoho, org, &json, Some(data_centre.to_owned()), actor).await?;
        self.zoho.forget(org).await;
        Ok(view)
    }

    async fn put(
        &self,
        provider: Provider,
        account: &str,
        secret: &[u8],
        data_centre: Option<String>,
        actor: &Actor,
    ) -> Result<CredentialView, HandshakeError> {
        let now = self.clock.now();
        let key = StoredCredential::key(provider, account);
        let stored = StoredCredential {
            provider,
            account: account.to_owned(),
            sealed: self.master_key.seal(secret, &key),
            fingerprint: self.master_key.fingerprint(secret),
            data_centre: data_centre.clone(),
            set_at: now,
            set_by: actor.label.clone(),
        };
        let (s, a) = (stored.clone(), actor.clone());
        self.store
            .read(move |db| {
                // The account's handshakes run again with it as soon as the watchdog looks.
                let due: Vec<_> = crate::storage::subscriptions::list(db)?
                    .into_iter()
                    .filter(|sub| sub.account == s.account && Kind::of(sub).is_ok_and(|k| provider_of(k) == provider))
                    .map(|sub| sub.id)
                    .collect();
                let entry = |before: Option<&StoredCredential>| {
                    let mut entry = a.entry(now, AuditAction::CredentialSet).target(&key).change(Change {
                        field: "fingerprint".to_owned(),
                        before: before.map(|b| b.fingerprint.clone()),
                        after: Some(s.fingerprint.clone()),
                    });
                    if let Some(dc) = &s.data_centre {
                        entry = entry.change(Change::set("data_centre", dc.clone()));
                    }
                    entry
                };
                repo::put_credential(db, &s, entry, &due)
            })
            .await?;
        self.poke();
        Ok(CredentialView::from(&stored))
    }

    /// Removes the credential of `provider` and `account`.
    pub async fn remove_credential(
        &self,
        provider: Provider,
        account: &str,
        actor: &Actor,
    ) -> Result<CredentialView, HandshakeError> {
        let now = self.clock.now();
        let (acc, a) = (account.to_owned(), actor.clone());
        let removed = self
            .store
            .read(move |db| {
                repo::remove_credential(db, provider, &acc, |r| {
                    a.entry(now, AuditAction::CredentialRemoved)
                        .target(StoredCredential::key(provider, &r.account))
                        .change(Change {
                            field: "fingerprint".to_owned(),
                            before: Some(r.fingerprint.clone()),
                            after: None,
                        })
                })
            })
            .await?
            .ok_or_else(|| HandshakeError::NotFound(format!("no {provider} credential for `{account}`")))?;
        if provider == Provider::Zoho {
            self.zoho.forget(account).await;
        }
        Ok(CredentialView::from(&removed))
    }

    /// Every credential: the stored ones, and `SHOPIFY_ADMIN_ACCESS_TOKEN` as the shop `*`.
    pub async fn credentials(&self) -> Result<Vec<CredentialView>, StoreError> {
        let mut out: Vec<CredentialView> =
            self.store.read(repo::credentials).await?.iter().map(CredentialView::from).collect();
        if let Some(token) = &self.options.shopify_token {
            out.push(CredentialView {
                provider: Provider::Shopify,
                account: "*".to_owned(),
                fingerprint: self.master_key.fingerprint(token.expose()),
                data_centre: None,
                set_at: None,
                set_by: None,
            });
        }
        Ok(out)
    }

    /// The credential a run for `account` signs in with, opened.
    pub(super) async fn credential(&self, kind: Kind, account: &str) -> Result<Credential, HandshakeError> {
        let provider = provider_of(kind);
        let acc = account.to_owned();
        let stored = self.store.read(move |db| repo::credential(db, provider, &acc)).await?;
        let key = StoredCredential::key(provider, account);
        let open = |c: &StoredCredential| {
            self.master_key.open(&c.sealed, &key).map_err(|e| {
                HandshakeError::Internal(format!(
                    "the {provider} credential of `{account}`: {e} (is HOOKPLANE_MASTER_KEY the key it was sealed with?)"
                ))
            })
        };
        match (provider, stored) {
            (Provider::Shopify, Some(c)) => Ok(Credential::Shopify(open(&c)?)),
            (Provider::Shopify, None) => self.options.shopify_token.clone().map(Credential::Shopify).ok_or_else(|| {
                HandshakeError::NoCredential(format!(
                    "no Admin API access token for the shop `{account}`: set SHOPIFY_ADMIN_ACCESS_TOKEN, or give one with \
                     PUT /api/v1/credentials/shopify/{account} or `hookplane credentials set shopify {account}`"
                ))
            }),
            (Provider::Zoho, Some(c)) => {
                let plain = open(&c)?;
                let secret: ZohoSecret = serde_json::from_slice(plain.expose())
                    .map_err(|e| HandshakeError::Internal(format!("the Zoho credential of `{account}` is damaged: {e}")))?;
                let data_centre = c.data_centre.clone().unwrap_or_else(|| "com".to_owned());
                Ok(Credential::Zoho { secret, data_centre })
            }
            (Provider::Zoho, None) => Err(HandshakeError::NoCredential(format!(
                "no Zoho OAuth credential for the organisation `{account}`: give its client id, client secret, refresh \
                 token and data centre with PUT /api/v1/credentials/zoho/{account} or `hookplane credentials set zoho {account}`"
            ))),
        }
    }
}
