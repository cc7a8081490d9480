//! `hookplane serve --demo …`: a throwaway instance seeded with a scenario. Deliveries go in through the
//! real ingest path (verification, dedupe, group commit), with a clock that walks through the last day;
//! their processing history is then written as the queue would have left it. Its forwarding subscriptions
//! send to a processing service run inside the process (`processing`), which answers as the scenario says.

pub mod factories;
pub mod handshakes;
pub mod processing;
pub mod providers;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use self::factories::{Factory, SignedRequest};
use crate::app::Core;
use crate::config::Settings;
use crate::contract::paths;
use crate::control::SubscriptionSpec;
use crate::domain::attempt::{ErrorClass, Tried};
use crate::domain::settlement::{Decision, Filed, Settled};
use crate::domain::subscription::Subscription;
use crate::domain::{Clock, ManualClock, Source, Timestamp};
use crate::ingest::RequestMeta;
use crate::ingest::writer::Stored;
use crate::secrets::{MasterKey, SecretBytes};
use crate::storage::{StoreError, attempts, tables};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// A day of healthy traffic from Shopify, Zoho and a Standard Webhooks sender.
    Base,
    /// The same, with the orders destination failing for the last two hours.
    Failing,
    /// Subscriptions and secrets, no deliveries yet.
    Empty,
    /// The healthy day, in which the three newest orders were replayed a minute ago: replaying one of them
    /// again is refused for the next four minutes.
    RateLimited,
}

/// How many of the newest orders the rate-limited scenario has replayed already.
pub const REPLAYED_ALREADY: usize = 3;

pub const SHOP: &str = "hookplane-demo.myshopify.com";
/// Throwaway credentials of the demo; printed at start so requests can be signed by hand.
pub const SHOPIFY_SECRET: &str = "demo-shopify-client-secret";
pub const ZOHO_LEADS_TOKEN: &str = "demo-zoho-leads-token";
pub const ZOHO_DEALS_TOKEN: &str = "demo-zoho-deals-token";
pub const ZOHO_BOOKS_TOKEN: &str = "demo-zoho-books-token";
pub const STANDARD_SECRET: &str = "whsec_ZGVtby1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ=";
pub const LEADS_CHANNEL: &str = "1000000068001";
pub const DEALS_CHANNEL: &str = "1000000068002";

/// What the demo prints for its user.
pub struct DemoInfo {
    pub scenario: Scenario,
    pub admin_token: String,
}

impl DemoInfo {
    pub fn banner(&self, settings: &Settings) -> String {
        let base = format!("http://{}", settings.listen);
        format!(
            "\nHookplane demo ({:?}) on {base}, data in {} (deleted on exit)\n\
             \n  Dashboard:   open the one-time setup link logged below ({base}/setup?code=…) in a browser on this machine\n  \
             API token:   {token}\n  Deliveries:  curl -H 'Authorization: Bearer {token}' {base}/api/v1/deliveries\n  \
             API docs:    {base}/api/docs\n\
             \n  Shopify client secret:      {SHOPIFY_SECRET}\n  Zoho Leads channel token:   {ZOHO_LEADS_TOKEN} (channel {LEADS_CHANNEL})\n  \
             Standard Webhooks secret:   {STANDARD_SECRET} (POST {base}/ingest/billing-events)\n",
            self.scenario,
            settings.data_dir.display(),
            token = self.admin_token,
        )
    }
}

/// Points `settings` at a throwaway data directory with throwaway keys and demo credentials.
pub fn prepare(settings: &mut Settings, dir: &Path, scenario: Scenario) -> anyhow::Result<DemoInfo> {
    settings.data_dir = dir.join("data");
    settings.master_key_file = Default::default();
    settings.env.master_key = Some(MasterKey::generate().to_hex());
    // The demo's deliveries are signed with the demo secret; a secret from the environment keeps working
    // beside it, in the place a rotation's previous secret takes.
    let own = settings.env.shopify_secret.replace(SecretBytes::new(SHOPIFY_SECRET.as_bytes().to_vec()));
    if own.is_some() {
        settings.env.shopify_secret_previous = own;
    }
    let admin_token = match &settings.env.admin_token {
        Some(t) => String::from_utf8_lossy(t.expose()).into_owned(),
        None => {
            let t = format!("hp_demo_{}", crate::hex::encode(&rand::random::<[u8; 16]>()));
            settings.env.admin_token = Some(SecretBytes::new(t.clone().into_bytes()));
            t
        }
    };
    Ok(DemoInfo { scenario, admin_token })
}

/// Seeds `settings.data_dir` with `scenario`, using a clock that ends at `now.now()`. The subscriptions that
/// forward send to `processing` (see [`processing::Processing::url`]).
pub fn seed(
    settings: &Settings,
    scenario: Scenario,
    now: &dyn Clock,
    processing: &dyn Fn(&str) -> String,
) -> anyhow::Result<()> {
    let end = now.now();
    let clock = Arc::new(ManualClock::new(end.plus_millis(-24 * 3_600_000)));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let core = Core::start_without_queue(settings.clone(), clock.clone()).await?;
        let result = seed_with(&core, &clock, scenario, end, processing).await;
        core.stop().await?;
        result
    })
}

struct Subs {
    orders: Subscription,
    failing_destination: bool,
}

async fn seed_with(
    core: &Core,
    clock: &ManualClock,
    scenario: Scenario,
    end: Timestamp,
    processing: &dyn Fn(&str) -> String,
) -> anyhow::Result<()> {
    let subs = create_subscriptions(core, processing).await?;
    if scenario == Scenario::Empty {
        return Ok(());
    }
    let mut f = Factory::new(42);
    let start = clock.now();
    let mut t = start;
    let mut order_number = 1001;
    // About one event every six minutes over the day, in a realistic mix.
    let mut i = 0u64;
    while t < end.plus_millis(-60_000) {
        let req = match i % 10 {
            0..=4 => {
                order_number += 1;
                let body = f.shopify_order(order_number, t);
                factories::shopify_request("orders/create", SHOP, body, SHOPIFY_SECRET.as_bytes(), &f.uuid(), t)
            }
            5 => factories::shopify_request(
                "products/update",
                SHOP,
                f.shopify_product(t),
                SHOPIFY_SECRET.as_bytes(),
                &f.uuid(),
                t,
            ),
            6 => factories::shopify_request(
                "customers/create",
                SHOP,
                f.shopify_customer(t),
                SHOPIFY_SECRET.as_bytes(),
                &f.uuid(),
                t,
            ),
            7 => factories::zoho_channel_request(f.zoho_notification(
                "Leads",
                "insert",
                LEADS_CHANNEL,
                ZOHO_LEADS_TOKEN,
                t,
            )),
            8 => factories::zoho_channel_request(f.zoho_notification(
                "Deals",
                "update",
                DEALS_CHANNEL,
                ZOHO_DEALS_TOKEN,
                t,
            )),
            _ => {
                let id = format!("msg_{}", f.uuid().replace('-', ""));
                factories::standard_request(
                    "billing-events",
                    STANDARD_SECRET,
                    &id,
                    t,
                    f.standard_event("invoice.paid", t),
                )
            }
        };
        clock.set(t);
        send(core, &req).await?;
        if i.is_multiple_of(40) {
            let topic = ["customers/data_request", "customers/redact", "shop/redact"][(i / 40 % 3) as usize];
            let body = f.shopify_compliance(topic, SHOP);
            let req = factories::shopify_request(topic, SHOP, body, SHOPIFY_SECRET.as_bytes(), &f.uuid(), t);
            send(core, &req).await?;
        }
        if i % 25 == 3 {
            // Zoho Books sends a workflow webhook with a shared token.
            let req =
                factories::zoho_token_request("zoho-books-invoices", "X-Api-Key", ZOHO_BOOKS_TOKEN, f.zoho_invoice(t));
            send(core, &req).await?;
        }
        i += 1;
        t = t.plus_millis(300_000 + (i * 7_919 % 120) as i64 * 1_000);
    }
    let failing = Subs { failing_destination: scenario == Scenario::Failing, ..subs };
    write_history(core, &failing, end).await?;
    if scenario == Scenario::RateLimited {
        clock.set(end.plus_millis(-60_000));
        replay_newest_orders(core, failing.orders.id).await?;
    }
    Ok(())
}

async fn create_subscriptions(core: &Core, processing: &dyn Fn(&str) -> String) -> anyhow::Result<Subs> {
    let spec = |source, topic: &str, account: &str, name: &str| SubscriptionSpec {
        source: Some(source),
        topic: topic.into(),
        account: account.into(),
        name: Some(name.into()),
        ..SubscriptionSpec::default()
    };
    let orders = core
        .control
        .create(
            SubscriptionSpec {
                destination_url: Some(processing(processing::ORDERS)),
                ..spec(Source::Shopify, "orders/create", SHOP, "shop-orders")
            },
            demo(),
        )
        .await?
        .subscription;
    for (topic, name) in [
        ("products/update", "shop-products"),
        ("customers/create", "shop-customers"),
        ("customers/data_request", "shop-gdpr-data-request"),
        ("customers/redact", "shop-gdpr-customers-redact"),
        ("shop/redact", "shop-gdpr-shop-redact"),
    ] {
        core.control.create(spec(Source::Shopify, topic, SHOP, name), demo()).await?;
    }
    for (topic, channel, token, name) in [
        ("Leads.all", LEADS_CHANNEL, ZOHO_LEADS_TOKEN, "zoho-leads"),
        ("Deals.all", DEALS_CHANNEL, ZOHO_DEALS_TOKEN, "zoho-deals"),
    ] {
        core.control
            .create(
                SubscriptionSpec {
                    channel_id: Some(channel.into()),
                    secret: Some(SecretBytes::new(token.as_bytes().to_vec())),
                    destination_url: Some(processing("zoho")),
                    ..spec(Source::Zoho, topic, "org-60012345", name)
                },
                demo(),
            )
            .await?;
    }
    core.control
        .create(
            SubscriptionSpec {
                token_header: Some("X-Api-Key".into()),
                secret: Some(SecretBytes::new(ZOHO_BOOKS_TOKEN.as_bytes().to_vec())),
                ..spec(Source::Zoho, "invoices", "org-60012345", "zoho-books-invoices")
            },
            demo(),
        )
        .await?;
    core.control
        .create(
            SubscriptionSpec {
                secret: Some(SecretBytes::new(STANDARD_SECRET.as_bytes().to_vec())),
                destination_url: Some(processing("billing")),
                ..spec(Source::Standard, "invoice.paid", "billing-service", "billing-events")
            },
            demo(),
        )
        .await?;
    Ok(Subs { orders, failing_destination: false })
}

/// Replays the newest orders as the demo, through the replay operation operators use, so their limits hold.
async fn replay_newest_orders(core: &Core, orders: crate::domain::SubscriptionId) -> anyhow::Result<()> {
    let db = core.store.db()?;
    let filter = crate::domain::filter::Filter { subscription: Some(orders), ..Default::default() };
    let page = crate::storage::deliveries::list(&db, &filter, None, REPLAYED_ALREADY)?;
    for listed in page.items {
        let (control, ingest, id) = (Arc::clone(&core.control), Arc::clone(&core.ingest), listed.delivery.id);
        crate::task::blocking(move || {
            control.replay_blocking(id, &demo(), None, |d, p| crate::control::queue::recheck_note(ingest.recheck(d, p)))
        })
        .await
        .with_context(|| format!("replaying {id} for the rate-limited scenario"))?;
    }
    Ok(())
}

/// Hands a signed request to ingest in-process, as the HTTP handler would: for seeding and benchmarks.
pub async fn send(core: &Core, req: &SignedRequest) -> anyhow::Result<Stored> {
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let endpoint = paths::ingest_endpoint(path).with_context(|| format!("{path} is not an ingest path"))?;
    let meta = RequestMeta { path: path.to_owned(), query: query.to_owned(), ..RequestMeta::default() };
    let result = core.ingest.receive(endpoint, &meta, &req.headers, &req.body).await;
    result.with_context(|| format!("seeding {path} failed"))
}

/// Writes the processing history the queue would have produced, attempt by attempt through the path the
/// worker's answers take (`attempts::file`): mostly first-try successes and a few successes after a retry.
/// When the scenario says so, the orders destination fails during two outages, each attempt at the time
/// the retry schedule gives: one ten hours ago, whose deliveries have run out of attempts since, and one
/// that began two hours ago and goes on, whose deliveries are still retrying. Those keep their jobs, due
/// when the schedule says, so the worker carries on with them; every other job is dropped, its attempts
/// written here.
async fn write_history(core: &Core, subs: &Subs, end: Timestamp) -> anyhow::Result<()> {
    let db = core.store.db()?;
    let orders = subs.orders.id;
    let failing = subs.failing_destination;
    let delays: Vec<i64> = core.settings.delivery.retry_delays_seconds.iter().map(|s| (*s as i64) * 1_000).collect();
    let outages =
        [(end.plus_millis(-10 * 3_600_000), end.plus_millis(-8 * 3_600_000)), (end.plus_millis(-2 * 3_600_000), end)];
    tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        let tx = db.begin_write()?;
        let mut queued = Vec::new();
        for row in redb::ReadableTable::range::<u128>(&tx.open_table(tables::JOBS.def())?, ..)? {
            queued.push(tables::JOBS.decode(row?.1.value())?);
        }
        let mut waiting = Vec::new();
        for (n, job) in queued.iter().enumerate() {
            let at = job.created_at;
            let latency = 40 + (n as u32 * 37 % 260);
            let fails = failing
                && job.subscription_id == orders
                && outages.iter().any(|(from, to)| at.millis() >= from.millis() && at.millis() < to.millis());
            let (times, last) = if fails {
                failing_attempts(at, &delays, end)
            } else {
                let tries: i64 = if n % 17 == 5 { 2 } else { 1 };
                // A retry a minute later, within what is left of the day.
                let times = (0..tries).map(|k| at.plus_millis((k * 60_000).min(end.millis() - at.millis()))).collect();
                (times, Settled::Done)
            };
            let count = times.len();
            for (k, started_at) in times.iter().copied().enumerate() {
                let ok = k + 1 == count && last == Settled::Done;
                let code = if ok { 200 } else { [500u16, 502, 503][(n + k) % 3] };
                let tried = Tried {
                    started_at,
                    response_code: Some(code),
                    latency_ms: if ok { latency } else { latency * 4 },
                    error: (!ok).then(|| (ErrorClass::Http, format!("the destination answered {code}"))),
                    excerpt: if ok { "ok".into() } else { "upstream unavailable".into() },
                    version: Some(processing::VERSION.to_owned()),
                };
                let settled = if k + 1 == count { last } else { Settled::Retrying };
                let decision = Decision { settled, job: job.clone(), filed: Some(Filed::new(tried)), pause: false };
                attempts::file(&tx, &decision, started_at)?;
            }
            if last == Settled::Retrying {
                let mut job = job.clone();
                job.attempts = count as u32;
                job.run_at =
                    times.last().copied().unwrap_or(at).plus_millis(delays.get(count - 1).copied().unwrap_or(0));
                job.last_error = Some("the destination answered 503".to_owned());
                waiting.push(job);
            }
        }
        tx.open_table(tables::JOBS_READY)?.retain(|_, _| false)?;
        tx.open_table(tables::JOBS.def())?.retain(|_, _| false)?;
        for job in &waiting {
            crate::storage::jobs::enqueue(&tx, job)?;
        }
        tx.commit()?;
        Ok(())
    })
    .await??;
    Ok(())
}

/// The attempts of a delivery made at `at` to a destination that has failed since: one at `at`, then one
/// after each wait of the retry schedule that ended by `end`. It has run out of attempts (`Dead`) when the
/// schedule is through, and is `Retrying` otherwise.
fn failing_attempts(at: Timestamp, delays: &[i64], end: Timestamp) -> (Vec<Timestamp>, Settled) {
    let mut times = vec![at];
    for wait in delays {
        let next = times.last().copied().unwrap_or(at).plus_millis(*wait);
        if next.millis() > end.millis() {
            return (times, Settled::Retrying);
        }
        times.push(next);
    }
    (times, Settled::Dead)
}

/// How the audit log names what the demo seeding does.
fn demo() -> crate::domain::audit::Actor {
    crate::domain::audit::Actor { label: "demo".to_owned(), client: None }
}
