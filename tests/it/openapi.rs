//! The committed OpenAPI document must match what the code serves; regenerate it with
//! `UPDATE_OPENAPI=1 cargo test openapi`.

use crate::support::TestServer;

#[tokio::test]
async fn the_committed_document_matches_the_served_one() {
    // An instance on the default configuration serves what is committed.
    let s = TestServer::start().await;
    let served = s.client.get(s.url("/api/openapi.json")).send().await.unwrap().text().await.unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &served).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(committed == served, "docs/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test openapi`");
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    for op in ["/v1/deliveries", "/v1/deliveries/{id}", "/v1/deliveries/{id}/body", "/v1/subscriptions"] {
        assert!(doc["paths"][op].is_object(), "{op} is documented");
    }
}
