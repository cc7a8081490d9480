//! Handshakes: keeping each subscription registered at its provider. A run lists what the provider has for
//! one shop or organisation, repairs what is missing or different (Shopify: create or update the webhook
//! subscription; Zoho: enable, update or refresh the notification channel), and records per subscription
//! what it checked, what it repaired and, when the provider refused, the provider's own words. Runs come
//! from operators (now) and from the watchdog, which takes each account again every `interval_minutes`
//! and each Zoho channel ahead of its expiry. The schedule is each subscription's stored `next_at`, so it
//! survives a restart; a run missed while Hookplane was down is made at start.

pub mod credentials;
pub mod settings;
mod shopify;
mod zoho;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::credential::Provider;
use crate::domain::handshake::{HandshakeFailure, HandshakeRun, HandshakeState, Kind, Registration, RunOutcome};
use crate::domain::ids::HandshakeRunId;
use crate::domain::{Clock, Subscription, SubscriptionId};
use crate::providers::shopify::ShopifyAdmin;
use crate::providers::zoho::ZohoCrm;
use crate::secrets::{MasterKey, SecretBytes};
use crate::storage::{Store, StoreError, handshakes as repo, subscriptions};
use crate::task::AliveGuard;
use credentials::Credential;
use settings::HandshakeSettings;

/// The token ingest verifies a Zoho channel's notifications with (the subscription's current secret), which
/// a channel must carry. `app.rs` reads it from the registry, which also holds declared subscriptions'.
pub trait ChannelTokens: Send + Sync {
    fn current(&self, id: SubscriptionId) -> Option<SecretBytes>;
}

pub struct HandshakeOptions {
    pub settings: HandshakeSettings,
    pub shopify_api_version: String,
    /// The top-level `public_url`, without a trailing slash; none when it is not set, and then providers
    /// cannot be told where to send, so no handshake runs.
    pub public_url: Option<String>,
    /// `SHOPIFY_ADMIN_ACCESS_TOKEN`: for every shop without a token of its own.
    pub shopify_token: Option<SecretBytes>,
}

/// What a run of several accounts did.
#[derive(Debug, Default)]
pub struct Ran {
    pub runs: Vec<HandshakeRun>,
    /// Accounts not run, and why (no credential).
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{0}")]
    NotFound(String),
    /// The subscription has no registration Hookplane can check.
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    NoPublicUrl(String),
    #[error("{0}")]
    NoCredential(String),
    #[error("{0}")]
    Invalid(String),
    /// Hookplane's own fault, not the request's (a credential it cannot open).
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one run found for one subscription, before it is recorded.
struct Found {
    sub: SubscriptionId,
    checked: Vec<String>,
    repaired: Vec<String>,
    failure: Option<HandshakeFailure>,
    unknown: Vec<String>,
    registration: Registration,
}

impl Found {
    fn new(sub: SubscriptionId) -> Self {
        Self {
            sub,
            checked: Vec::new(),
            repaired: Vec::new(),
            failure: None,
            unknown: Vec::new(),
            registration: Registration::default(),
        }
    }

    pub(super) fn failed(sub: SubscriptionId, checked: &[String], failure: &HandshakeFailure) -> Self {
        Self { checked: checked.to_vec(), failure: Some(failure.clone()), ..Self::new(sub) }
    }

    fn outcome(&self) -> RunOutcome {
        match (&self.failure, self.repaired.is_empty()) {
            (Some(_), _) => RunOutcome::Failed,
            (None, true) => RunOutcome::Verified,
            (None, false) => RunOutcome::Repaired,
        }
    }
}

/// One subscription to hand to the provider, with what the last run found.
struct Target {
    sub: Subscription,
    state: Option<HandshakeState>,
}

pub struct Handshakes {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    master_key: MasterKey,
    options: HandshakeOptions,
    shopify: ShopifyAdmin,
    zoho: ZohoCrm,
    tokens: Arc<dyn ChannelTokens>,
    /// One run at a time: two runs for one shop would both create a missing subscription.
    serial: tokio::sync::Mutex<()>,
    wake: Notify,
}

impl Handshakes {
    pub fn new(
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        master_key: MasterKey,
        options: HandshakeOptions,
        tokens: Arc<dyn ChannelTokens>,
    ) -> Result<Self, reqwest::Error> {
        let providers = options.settings.providers(&options.shopify_api_version);
        Ok(Self {
            store,
            clock,
            master_key,
            shopify: ShopifyAdmin::new(&providers)?,
            zoho: ZohoCrm::new(&providers)?,
            options,
            tokens,
            serial: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
        })
    }

    /// Where the provider must send: `public_url` and the ingest path of the kind.
    fn callback(&self, kind: Kind) -> Result<String, HandshakeError> {
        let base = self.options.public_url.as_deref().ok_or_else(|| {
            HandshakeError::NoPublicUrl(
                "`public_url` is not set, so Hookplane cannot tell the provider where to send: set it to the address \
                 the provider reaches this instance at (e.g. https://hooks.example.com) and restart"
                    .to_owned(),
            )
        })?;
        Ok(format!("{base}{}", kind.ingest_path()))
    }

    /// Runs the handshake of one subscription (by id or name) now, as `actor`.
    pub async fn run_subscription(&self, key: &str, actor: &Actor) -> Result<HandshakeRun, HandshakeError> {
        let subs = self.store.read(subscriptions::list).await?;
        let sub = subs
            .iter()
            .find(|s| s.name == key || s.id.to_string() == key)
            .cloned()
            .ok_or_else(|| HandshakeError::NotFound(format!("no subscription `{key}`")))?;
        let kind = Kind::of(&sub)
            .map_err(|why| HandshakeError::Unsupported(format!("`{}` has no handshake: {why}", sub.name)))?;
        self.callback(kind)?;
        let credential = self.credential(kind, &sub.account).await?;
        // Due now until its run is recorded: a stop while the provider is being asked (a SIGTERM, a crash)
        // leaves it to the watchdog after the restart, instead of to the next scheduled run hours later.
        let (id, now) = (sub.id, self.clock.now());
        self.store.read(move |db| repo::make_due(db, &[id], now)).await?;
        let _serial = self.serial.lock().await;
        let found =
            self.run_account(kind, &sub.account, &credential, Some(sub.id), peers(&subs, kind, &sub.account)).await?;
        let mut runs = self.record(found, actor).await?;
        runs.pop().ok_or_else(|| HandshakeError::Internal("the handshake recorded no run".to_owned()))
    }

    /// Runs the handshake of every subscription that has one and whose account has a credential, as `actor`.
    pub async fn run_all(&self, actor: &Actor) -> Result<Ran, HandshakeError> {
        self.callback(Kind::ShopifyWebhook)?;
        self.run_accounts(actor, |_| true).await
    }

    /// The watchdog's turn: every account with a subscription that never ran or whose run is due (setting
    /// a credential makes its account's runs due).
    pub async fn run_due(&self) -> Result<Ran, HandshakeError> {
        if self.options.public_url.is_none() {
            return Ok(Ran::default());
        }
        let now = self.clock.now();
        let states: HashMap<SubscriptionId, HandshakeState> =
            self.store.read(repo::states).await?.into_iter().map(|s| (s.subscription_id, s)).collect();
        self.run_accounts(&Actor::system(), move |sub| states.get(&sub.id).is_none_or(|s| s.next_at <= now)).await
    }

    /// Runs every account with a subscription `due` says should run.
    async fn run_accounts(&self, actor: &Actor, due: impl Fn(&Subscription) -> bool) -> Result<Ran, HandshakeError> {
        let subs = self.store.read(subscriptions::list).await?;
        let mut accounts: BTreeMap<(Provider, String), (Kind, bool)> = BTreeMap::new();
        for sub in &subs {
            let Ok(kind) = Kind::of(sub) else { continue };
            let entry = accounts.entry((provider_of(kind), sub.account.clone())).or_insert((kind, false));
            entry.1 |= due(sub);
        }
        let mut ran = Ran::default();
        for ((provider, account), (kind, is_due)) in accounts {
            if !is_due {
                continue;
            }
            let peers = peers(&subs, kind, &account);
            let found = match self.credential(kind, &account).await {
                Ok(credential) => {
                    let _serial = self.serial.lock().await;
                    self.run_account(kind, &account, &credential, None, peers).await?
                }
                // An account nobody gave a credential for is not watched: its subscriptions keep their status.
                Err(HandshakeError::NoCredential(why)) => {
                    ran.skipped.push(format!("{provider}/{account}: {why}"));
                    continue;
                }
                // One that cannot be opened is a failure of every subscription of the account, recorded and
                // alerted on like the provider's own.
                Err(e) => {
                    let failure = HandshakeFailure::refused("credential_unreadable", e.to_string(), None);
                    peers.iter().map(|p| Found::failed(p.id, &[], &failure)).collect()
                }
            };
            ran.runs.extend(self.record(found, actor).await?);
        }
        Ok(ran)
    }

    /// Hands the account's subscriptions (`only` one of them, or all) to the provider. `peers` are all of
    /// the account's subscriptions with a handshake, so a registration one of them owns is never reported
    /// as unknown.
    async fn run_account(
        &self,
        kind: Kind,
        account: &str,
        credential: &Credential,
        only: Option<SubscriptionId>,
        peers: Vec<Subscription>,
    ) -> Result<Vec<Found>, HandshakeError> {
        let callback = self.callback(kind)?;
        let ids: Vec<SubscriptionId> = peers.iter().map(|s| s.id).collect();
        let states =
            self.store.read(move |db| ids.iter().map(|id| repo::state(db, *id)).collect::<Result<Vec<_>, _>>()).await?;
        let peers: Vec<Target> = peers.into_iter().zip(states).map(|(sub, state)| Target { sub, state }).collect();
        let targets: Vec<&Target> = peers.iter().filter(|t| only.is_none_or(|id| t.sub.id == id)).collect();
        Ok(match credential {
            Credential::Shopify(token) => {
                let token = String::from_utf8_lossy(token.expose());
                shopify::run(&self.shopify, account, &token, &callback, &targets, &peers).await
            }
            Credential::Zoho { secret, data_centre } => {
                let org = crate::providers::zoho::Org { org: account, data_centre, secret };
                let s = &self.options.settings;
                let plan = zoho::Plan {
                    notify_url: &callback,
                    now: self.clock.now(),
                    lifetime_ms: s.channel_lifetime_ms(),
                    refresh_before_ms: s.schedule().refresh_before_ms,
                };
                zoho::run(&self.zoho, &org, &plan, &targets, &peers, self.tokens.as_ref()).await
            }
        })
    }

    /// Records each subscription's run, the state it leaves and its audit entry.
    async fn record(&self, found: Vec<Found>, actor: &Actor) -> Result<Vec<HandshakeRun>, StoreError> {
        let now = self.clock.now();
        let schedule = self.options.settings.schedule();
        let mut runs = Vec::with_capacity(found.len());
        for f in found {
            let run = HandshakeRun {
                id: HandshakeRunId::new(now),
                subscription_id: f.sub,
                at: now,
                by: actor.label.clone(),
                outcome: f.outcome(),
                checked: f.checked,
                repaired: f.repaired,
                failure: f.failure,
                unknown: f.unknown,
                registration: f.registration,
            };
            let mut entry = actor
                .entry(now, AuditAction::HandshakeRan)
                .target(run.subscription_id)
                .change(Change::set("outcome", run.outcome.as_str()));
            for r in &run.repaired {
                entry = entry.change(Change::set("repaired", r.clone()));
            }
            if let Some(failure) = &run.failure {
                entry = entry.change(Change::set("failure", format!("{}: {}", failure.code, failure.message)));
                tracing::warn!(subscription = %run.subscription_id, code = %failure.code, "a handshake failed: {}", failure.message);
            }
            let r = run.clone();
            let entry = self
                .store
                .read(move |db| {
                    let before = repo::state(db, r.subscription_id)?;
                    let after = HandshakeState::after(before.as_ref(), &r, schedule);
                    // `ok`: the registration decides nothing, the subscription shows what its deliveries say.
                    let status =
                        |s: Option<&HandshakeState>| s.and_then(|s| s.status(r.at)).map_or("ok", |s| s.as_str());
                    let (was, is) = (status(before.as_ref()), status(Some(&after)));
                    let entry =
                        if was == is { entry } else { entry.change(Change::changed("handshake_status", was, is)) };
                    repo::record(db, &r, &after, &entry)?;
                    Ok::<_, StoreError>(entry)
                })
                .await?;
            tracing::info!(subscription = %run.subscription_id, outcome = run.outcome.as_str(), changes = entry.changes.len(), "handshake");
            runs.push(run);
        }
        Ok(runs)
    }

    /// Asks the watchdog to look now: a credential changed.
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// Makes the subscription's handshake due now and wakes the watchdog: what its provider holds changed
    /// (a Zoho channel's token was rotated).
    pub async fn due_now(&self, id: SubscriptionId) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.store.read(move |db| repo::make_due(db, &[id], now)).await?;
        self.poke();
        Ok(())
    }

    /// Starts the watchdog: it looks for due runs every `poll_interval_ms` and when poked.
    pub fn spawn_watchdog(self: &Arc<Self>, guard: AliveGuard) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        if this.options.public_url.is_none() {
            tracing::info!("handshakes are off until `public_url` is set: providers must be told where to send");
        }
        tokio::spawn(async move {
            let _guard = guard;
            let every = Duration::from_millis(this.options.settings.poll_interval_ms);
            loop {
                if let Err(e) = this.run_due().await {
                    tracing::error!("the handshake watchdog could not run: {}", crate::logging::chain(&e));
                }
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = this.wake.notified() => {}
                }
            }
        })
    }
}

/// Whether a provider's address is `ours`, as the provider may have written it back: scheme and host in any
/// case, the default port written out, a trailing slash.
fn same_address(theirs: Option<&str>, ours: &str) -> bool {
    fn normal(url: &str) -> String {
        let url = url.trim().trim_end_matches('/');
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let scheme = scheme.to_ascii_lowercase();
        let mut host = host.to_ascii_lowercase();
        for default in [(":443", "https"), (":80", "http")] {
            if scheme == default.1
                && let Some(bare) = host.strip_suffix(default.0)
            {
                host = bare.to_owned();
            }
        }
        format!("{scheme}://{host}{path}")
    }
    theirs.is_some_and(|t| normal(t) == normal(ours))
}

const fn provider_of(kind: Kind) -> Provider {
    match kind {
        Kind::ShopifyWebhook => Provider::Shopify,
        Kind::ZohoChannel => Provider::Zoho,
    }
}

/// The account's subscriptions that have a handshake of `kind`.
fn peers(subs: &[Subscription], kind: Kind, account: &str) -> Vec<Subscription> {
    subs.iter().filter(|s| s.account == account && Kind::of(s) == Ok(kind)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::same_address;

    #[test]
    fn addresses_match_as_providers_write_them_back() {
        let ours = "https://hooks.example.com/shopify/webhook";
        for theirs in
            [ours, "HTTPS://Hooks.Example.com/shopify/webhook", "https://hooks.example.com:443/shopify/webhook/"]
        {
            assert!(same_address(Some(theirs), ours), "{theirs}");
        }
        for theirs in [
            "https://hooks.example.com/Shopify/webhook",
            "http://hooks.example.com/shopify/webhook",
            "https://other.example.com/shopify/webhook",
        ] {
            assert!(!same_address(Some(theirs), ours), "{theirs}");
        }
        assert!(!same_address(None, ours));
    }
}
