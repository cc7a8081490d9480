//! Data directories written by earlier schemas must keep opening, with everything readable, as migrations
//! are added: schema 1 (deliveries and a sealed secret) and schema 6 (also the queue, attempts, a replay,
//! a pause with its held delivery, an operator, a session, a token, rejections and the audit log). The
//! fixtures are committed; write one only when it is new, e.g. `UPDATE_FIXTURES=v6 cargo test v6_data_directory`.

use hookplane::demo::factories::{shopify_request, standard_request};
use hookplane::domain::Clock as _;
use hookplane::domain::access::Role;
use serde_json::{Value, json};

use crate::queue::{Answer, Destination, attempts, deliver, forwarding, make_token, post_as, until};
use crate::support::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1/hookplane.redb");
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SHOP: &str = "fixture-shop.myshopify.com";

fn bodies() -> Vec<(String, Vec<u8>)> {
    (0..5).map(|i| (format!("fixture-{i}"), format!(r#"{{"id":{i},"note":"v1 fixture"}}"#).into_bytes())).collect()
}

/// What both fixtures hold: a Standard Webhooks subscription with its sealed secret, and five orders.
async fn sealed_secret_and_orders(s: &TestServer) {
    let (st, _) = s
        .post(
            "/api/v1/subscriptions",
            json!({"source": "standard", "topic": "t", "account": "a", "name": "fixture-standard", "secret": STANDARD_SECRET}),
        )
        .await;
    assert_eq!(st, 201);
    for (id, body) in bodies() {
        let req = shopify_request("orders/create", SHOP, body, SHOPIFY_SECRET.as_bytes(), &id, now());
        assert_eq!(s.send_json(&req).await.0, 200);
    }
}

async fn write_fixture() {
    let s = TestServer::start().await;
    sealed_secret_and_orders(&s).await;
    let dir = s.stop().await;
    std::fs::create_dir_all(std::path::Path::new(FIXTURE).parent().unwrap()).unwrap();
    std::fs::copy(dir.path().join("data/hookplane.redb"), FIXTURE).unwrap();
}

#[tokio::test]
async fn a_v1_data_directory_opens_with_everything_readable() {
    if std::env::var("UPDATE_FIXTURES").as_deref() == Ok("v1") {
        write_fixture().await;
    }
    let s = open_fixture(FIXTURE, 1).await;

    let all = s.all_deliveries("").await;
    assert_eq!(all.len(), 5);
    for (provider_id, body) in bodies() {
        let d = all.iter().find(|d| d["provider_delivery_id"] == provider_id.as_str()).unwrap();
        assert_eq!(body_of(&s.client, &s.base, d["id"].as_str().unwrap()).await, body);
    }
    sealed_secret_and_dedupe_still_work(&s).await;
}

/// The sealed secret still opens under the same master key and verifies new deliveries, and dedupe keys
/// written by the old schema still catch repeats.
async fn sealed_secret_and_dedupe_still_work(s: &TestServer) {
    let req = standard_request("fixture-standard", STANDARD_SECRET, "msg_after_upgrade", s.clock.now(), b"{}".to_vec());
    let (st, body) = s.send_json(&req).await;
    assert_eq!(st, 200, "{body}");
    let repeat = shopify_request(
        "orders/create",
        SHOP,
        bodies()[0].1.clone(),
        SHOPIFY_SECRET.as_bytes(),
        "fixture-0",
        s.clock.now(),
    );
    assert_eq!(s.send_json(&repeat).await.1["duplicate"], true);
}

#[tokio::test]
async fn a_data_directory_from_a_newer_version_is_refused() {
    let s = TestServer::start().await;
    let dir = s.stop().await;
    {
        let db = redb::Database::create(dir.path().join("data/hookplane.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(hookplane::storage::tables::META).unwrap().insert("schema_version", 999u64).unwrap();
        tx.commit().unwrap();
    }
    let flags = hookplane::config::Flags { data_dir: Some(dir.path().join("data")), ..Default::default() };
    let settings = hookplane::config::Settings::load(&flags, &env(&[])).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = hookplane::app::serve(settings, listener, std::future::pending()).await.unwrap_err();
    assert!(format!("{err:#}").contains("newer Hookplane"), "{err:#}");
}

const FIXTURE_V6: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v6/hookplane.redb");
const OPERATOR: &str = "fixture-admin";
/// The topics of the forwarding subscription, and of a paused one with a delivery it holds.
const FORWARDED: &str = "orders/paid";
const HELD: &str = "orders/fulfilled";

/// Copies a committed fixture of schema `version` into a fresh data directory and starts a server on it.
async fn open_fixture(fixture: &str, version: u64) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let file = dir.path().join("data/hookplane.redb");
    std::fs::copy(fixture, &file).expect("the fixture is committed");
    let db = redb::Database::open(&file).unwrap();
    let found = hookplane::storage::migrations::current(&db).unwrap();
    assert_eq!(found, version, "{fixture} is of schema {found}");
    // The fixture's clock: a minute after its newest delivery, so retention finds it as it was written,
    // however old the committed file grows.
    let newest = {
        use redb::{ReadableDatabase, ReadableTable};
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(hookplane::storage::tables::DELIVERIES).unwrap();
        let last = t.last().unwrap().map(|(k, _)| k.value()).unwrap();
        hookplane::domain::DeliveryId::from_u128(last).timestamp()
    };
    drop(db);
    TestServer::start_with(Options { dir: Some(dir), clock_at: Some(newest.plus_millis(60_000)), ..Options::default() })
        .await
}

async fn write_v6_fixture() {
    let dest = Destination::start(&[Answer::Status(503)]).await;
    let retry_now = [("HOOKPLANE_DELIVERY__RETRY_DELAYS_SECONDS", "0"), ("HOOKPLANE_DELIVERY__POLL_INTERVAL_MS", "20")];
    let s = with_store(Options { env: env(&retry_now), ..Options::default() }, |db| {
        add_operator(db, OPERATOR, Role::Admin)
    })
    .await;
    let mut b = Browser::new(&s);
    assert_eq!(b.sign_in(OPERATOR, PASSWORD).await.status, 303, "a session");
    sealed_secret_and_orders(&s).await;
    // A delivery answered 503 then 200, then replayed by an operator's token: three attempts.
    forwarding(&s, FORWARDED, &dest.url).await;
    let id = deliver(&s, FORWARDED, 1).await;
    until(&s, &id, "attempt_count", json!(2)).await;
    let token = make_token(&s, "fixture-operator", "operator").await;
    assert_eq!(post_as(&s, &token, &format!("/api/v1/deliveries/{id}/replay")).await.0, 202);
    until(&s, &id, "attempt_count", json!(3)).await;
    // A paused destination and the delivery it holds.
    let paused = forwarding(&s, HELD, &dest.url).await;
    assert_eq!(s.post(&format!("/api/v1/subscriptions/{paused}/pause"), json!({})).await.0, 200);
    deliver(&s, HELD, 2).await;
    // A refusal, sampled.
    let forged = shopify_request("orders/create", SHOP, b"{}".to_vec(), b"not the secret", "forged", now());
    assert_eq!(s.send_json(&forged).await.0, 401);
    let dir = s.stop().await;
    std::fs::create_dir_all(std::path::Path::new(FIXTURE_V6).parent().unwrap()).unwrap();
    std::fs::copy(dir.path().join("data/hookplane.redb"), FIXTURE_V6).unwrap();
}

fn actions(audit: &Value) -> Vec<&str> {
    audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_v6_data_directory_opens_with_its_queue_accounts_and_audit_log_readable() {
    if std::env::var("UPDATE_FIXTURES").as_deref() == Ok("v6") {
        write_v6_fixture().await;
    }
    let s = open_fixture(FIXTURE_V6, 6).await;
    let all = s.all_deliveries("").await;
    assert_eq!(all.len(), 7, "five kept, one forwarded, one held");
    for (provider_id, body) in bodies() {
        let d = all.iter().find(|d| d["provider_delivery_id"] == provider_id.as_str()).unwrap();
        assert_eq!(body_of(&s.client, &s.base, d["id"].as_str().unwrap()).await, body);
    }
    // The forwarded delivery's attempts, the replay among them, and its outcome.
    let forwarded = all.iter().find(|d| d["topic"] == FORWARDED).unwrap();
    assert_eq!(forwarded["status"], "succeeded");
    let tried = attempts(&s, forwarded["id"].as_str().unwrap()).await;
    let codes: Vec<&Value> = tried.iter().map(|a| &a["response_code"]).collect();
    assert_eq!(codes, [&json!(503), &json!(200), &json!(200)]);
    assert_eq!(tried[2]["initiated_by"], "token:fixture-operator");
    // The token is listed, the operator signs in with the password set then, and the log kept every step.
    let (_, tokens) = s.get("/api/v1/tokens").await;
    assert!(tokens.as_array().unwrap().iter().any(|t| t["name"] == "fixture-operator"), "{tokens}");
    let mut b = Browser::new(&s);
    assert_eq!(b.sign_in(OPERATOR, PASSWORD).await.status, 303);
    let (_, audit) = s.get("/api/v1/audit?limit=100").await;
    for action in [
        "operator_created",
        "sign_in",
        "subscription_created",
        "token_created",
        "delivery_replayed",
        "destination_paused",
    ] {
        assert!(actions(&audit).contains(&action), "{action}: {:?}", actions(&audit));
    }
    let (_, rejections) = s.get("/api/v1/rejections").await;
    assert!(rejections.to_string().contains("signature_invalid"), "{rejections}");
    sealed_secret_and_dedupe_still_work(&s).await;
    // The held delivery goes to the paused subscription's new destination on resume.
    let held = all.iter().find(|d| d["topic"] == HELD).unwrap();
    let sub = held["subscription_id"].as_str().unwrap();
    let dest = Destination::start(&[]).await;
    let (st, body) = s.patch(&format!("/api/v1/subscriptions/{sub}"), json!({"destination_url": dest.url})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(s.post(&format!("/api/v1/subscriptions/{sub}/resume"), json!({})).await.0, 200);
    assert_eq!(dest.wait_for(1).await[0].body, br#"{"id":2,"note":"order 2"}"#.to_vec());
    until(&s, held["id"].as_str().unwrap(), "status", json!("succeeded")).await;
}
