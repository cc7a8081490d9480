//! The demo's providers: its handshakes talk to the mock Shopify and Zoho run inside the process
//! (`providers`), which hold the demo's registrations as a real shop and organisation would. The watchdog
//! last verified them 40 minutes ago; in the failing scenario Shopify has since lost one subscription
//! (`products/update`), which Retry handshake re-creates (as the watchdog would at its next run).

use std::sync::Arc;

use super::providers::{MockChannel, MockProviders};
use super::{DEALS_CHANNEL, LEADS_CHANNEL, SHOP, Scenario, ZOHO_DEALS_TOKEN, ZOHO_LEADS_TOKEN, demo};
use crate::app::Core;
use crate::config::Settings;
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::credential::ZohoSecret;
use crate::domain::handshake::{HandshakeRun, HandshakeState, Kind, Registration, RunOutcome, shopify_graphql_topic};
use crate::domain::ids::HandshakeRunId;
use crate::domain::subscription::ZohoAuth;
use crate::domain::{Clock, ManualClock};
use crate::secrets::SecretBytes;
use crate::storage::{handshakes, subscriptions};

/// The organisation of the demo's Zoho subscriptions.
const ZOHO_ORG: &str = "org-60012345";
/// The Shopify subscription the failing scenario's shop has lost.
const LOST_TOPIC: &str = "products/update";

/// Points the handshakes at `mock`, with a public URL (the listen address, when none is set) and a demo
/// Admin API token.
pub fn use_mock_providers(settings: &mut Settings, mock: &MockProviders) {
    settings.handshake.shopify_admin_url = mock.shopify_admin_url();
    settings.handshake.zoho_accounts_url = mock.zoho_url();
    settings.handshake.zoho_api_url = mock.zoho_url();
    if settings.public_url.trim().is_empty() {
        settings.public_url = settings.public_base();
    }
    settings.env.shopify_admin_token = Some(SecretBytes::new(b"shpat_demo_admin_api_token".to_vec()));
}

/// Registers the demo's subscriptions at `mock`, gives the Zoho organisation its OAuth credential, and
/// records the watchdog's last run, 40 minutes before `now`.
pub fn seed_providers(
    settings: &Settings,
    scenario: Scenario,
    mock: &MockProviders,
    now: &dyn Clock,
) -> anyhow::Result<()> {
    let ran_at = now.now().plus_millis(-40 * 60_000);
    let clock = Arc::new(ManualClock::new(ran_at));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let core = Core::start_without_queue(settings.clone(), clock).await?;
        let result = register(&core, settings, scenario, mock).await;
        core.stop().await?;
        result
    })
}

async fn register(core: &Core, settings: &Settings, scenario: Scenario, mock: &MockProviders) -> anyhow::Result<()> {
    let secret = ZohoSecret {
        client_id: "1000.DEMOCLIENT".to_owned(),
        client_secret: "demo-zoho-client-secret".to_owned(),
        refresh_token: "1000.demo.refresh-token".to_owned(),
    };
    core.handshakes.set_zoho_credential(ZOHO_ORG, secret, "com", &demo()).await?;
    let base = settings.public_base();
    let ran_at = core.clock.now();
    let expires = ran_at.plus_millis(settings.handshake.channel_lifetime_ms());
    let schedule = settings.handshake.schedule();
    let db = core.store.db()?;
    for sub in subscriptions::list(&*db)? {
        let Ok(kind) = Kind::of(&sub) else { continue };
        let callback = format!("{base}{}", kind.ingest_path());
        let (provider_id, expires_at, checked) = match (kind, &sub.zoho) {
            (Kind::ShopifyWebhook, _) => {
                let topic = shopify_graphql_topic(&sub.topic);
                let id = mock.add_webhook(SHOP, &topic, &callback, "JSON");
                (id.clone(), None, format!("{topic} sends to {callback} as JSON: {id}"))
            }
            (Kind::ZohoChannel, Some(ZohoAuth::Channel { channel_id })) => {
                let token = match channel_id.as_str() {
                    LEADS_CHANNEL => ZOHO_LEADS_TOKEN,
                    DEALS_CHANNEL => ZOHO_DEALS_TOKEN,
                    _ => continue,
                };
                let expiry = format!("{}+00:00", &expires.to_rfc3339()[..19]);
                mock.add_channel(MockChannel {
                    channel_id: channel_id.clone(),
                    events: vec![sub.topic.clone()],
                    notify_url: callback,
                    token: token.to_owned(),
                    expiry,
                });
                (channel_id.clone(), Some(expires), format!("channel {channel_id}: {}", sub.topic))
            }
            (Kind::ZohoChannel, _) => continue,
        };
        let run = HandshakeRun {
            id: HandshakeRunId::new(ran_at),
            subscription_id: sub.id,
            at: ran_at,
            by: "system".to_owned(),
            outcome: RunOutcome::Verified,
            checked: vec![checked],
            repaired: Vec::new(),
            failure: None,
            unknown: Vec::new(),
            registration: Registration { provider_id: Some(provider_id), expires_at },
        };
        let state = HandshakeState::after(None, &run, schedule);
        let entry = Actor::system()
            .entry(ran_at, AuditAction::HandshakeRan)
            .target(sub.id)
            .change(Change::set("outcome", RunOutcome::Verified.as_str()));
        handshakes::record(&db, &run, &state, &entry)?;
    }
    if scenario == Scenario::Failing {
        mock.remove_webhook(SHOP, &shopify_graphql_topic(LOST_TOPIC));
    }
    Ok(())
}
