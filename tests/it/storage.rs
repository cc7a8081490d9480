//! A data directory written by schema version 1 must keep opening, with everything readable, as migrations
//! are added. The fixture is committed; regenerate it only when adding a new one:
//! `UPDATE_FIXTURES=1 cargo test v1_data_directory`.

use hookplane::demo::factories::{shopify_request, standard_request};
use serde_json::json;

use crate::support::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1/hookplane.redb");
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SHOP: &str = "fixture-shop.myshopify.com";

fn bodies() -> Vec<(String, Vec<u8>)> {
    (0..5).map(|i| (format!("fixture-{i}"), format!(r#"{{"id":{i},"note":"v1 fixture"}}"#).into_bytes())).collect()
}

async fn write_fixture() {
    let s = TestServer::start().await;
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
    let dir = s.stop().await;
    std::fs::create_dir_all(std::path::Path::new(FIXTURE).parent().unwrap()).unwrap();
    std::fs::copy(dir.path().join("data/hookplane.redb"), FIXTURE).unwrap();
}

#[tokio::test]
async fn a_v1_data_directory_opens_with_everything_readable() {
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        write_fixture().await;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::copy(FIXTURE, dir.path().join("data/hookplane.redb"))
        .expect("tests/fixtures/v1/hookplane.redb is committed");
    let s = TestServer::start_with(Options { dir: Some(dir), ..Options::default() }).await;

    let all = s.all_deliveries("").await;
    assert_eq!(all.len(), 5);
    for (provider_id, body) in bodies() {
        let d = all.iter().find(|d| d["provider_delivery_id"] == provider_id.as_str()).unwrap();
        assert_eq!(body_of(&s.client, &s.base, d["id"].as_str().unwrap()).await, body);
    }
    // The sealed secret still opens under the same master key and verifies new deliveries.
    let req = standard_request("fixture-standard", STANDARD_SECRET, "msg_after_upgrade", now(), b"{}".to_vec());
    let (st, body) = s.send_json(&req).await;
    assert_eq!(st, 200, "{body}");
    // Dedupe keys written by v1 still catch repeats.
    let repeat =
        shopify_request("orders/create", SHOP, bodies()[0].1.clone(), SHOPIFY_SECRET.as_bytes(), "fixture-0", now());
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
