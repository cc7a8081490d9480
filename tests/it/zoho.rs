use hookplane::connectors::zoho::{SignatureEncoding, SignatureScheme};
use hookplane::demo::factories::{Factory, SignedRequest, zoho_channel_request, zoho_token_request};
use serde_json::json;

use crate::support::*;

async fn with_channel(s: &TestServer) {
    let (st, body) = s
        .post(
            "/api/v1/subscriptions",
            json!({ "source": "zoho", "topic": "Leads.all", "account": "org-1", "name": "leads",
                    "channel_id": "1000000068001", "secret": "leads-token" }),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["subscription"]["zoho_auth"], "channel");
    assert!(body["subscription"]["callback_url"].as_str().unwrap().ends_with("/zoho/incoming"));
    assert!(!body.to_string().contains("leads-token"), "secrets are write-only");
}

#[tokio::test]
async fn channel_notifications_are_verified_by_their_token() {
    let s = TestServer::start().await;
    with_channel(&s).await;
    let mut f = Factory::new(3);
    let body = f.zoho_notification("Leads", "insert", "1000000068001", "leads-token", now());
    let (st, stored) = s.send_json(&zoho_channel_request(body.clone())).await;
    assert_eq!(st, 200, "{stored}");
    let (_, d) = s.get(&format!("/api/v1/deliveries/{}", stored["delivery_id"].as_str().unwrap())).await;
    assert_eq!(d["source"], "zoho");
    assert_eq!(d["topic"], "Leads.all");
    assert_eq!(d["account"], "org-1");

    // Zoho sending the same notification again is a duplicate.
    let (_, again) = s.send_json(&zoho_channel_request(body)).await;
    assert_eq!(again["duplicate"], true);

    // The same channel by name works as well.
    let body = f.zoho_notification("Leads", "update", "1000000068001", "leads-token", now());
    let mut by_name = zoho_channel_request(body);
    by_name.path = "/zoho/incoming/leads".into();
    assert_eq!(s.send_json(&by_name).await.0, 200);
}

#[tokio::test]
async fn channel_notifications_with_a_bad_token_or_channel_or_body_are_refused() {
    let s = TestServer::start().await;
    with_channel(&s).await;
    let mut f = Factory::new(4);
    let wrong = f.zoho_notification("Leads", "insert", "1000000068001", "guess", now());
    assert_problem(&s.send_json(&zoho_channel_request(wrong)).await, 401, "signature_invalid");
    let unknown = f.zoho_notification("Leads", "insert", "999", "leads-token", now());
    assert_problem(&s.send_json(&zoho_channel_request(unknown)).await, 404, "unknown_subscription");
    let untokened = br#"{"channel_id":"1000000068001","module":"Leads"}"#.to_vec();
    assert_problem(&s.send_json(&zoho_channel_request(untokened)).await, 401, "signature_missing");
    assert_problem(&s.send_json(&zoho_channel_request(b"not json".to_vec())).await, 400, "body_malformed");
    assert!(s.all_deliveries("").await.is_empty());
}

#[tokio::test]
async fn workflow_webhooks_are_verified_by_a_shared_token() {
    let s = TestServer::start().await;
    let (st, body) = s
        .post(
            "/api/v1/subscriptions",
            json!({ "source": "zoho", "topic": "invoices", "account": "org-1", "name": "books",
                    "token_header": "X-Api-Key", "secret": "books-token", "dedupe_header": "X-Request-Id" }),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let mut f = Factory::new(5);
    let invoice = f.zoho_invoice(now());
    let mut req = zoho_token_request("books", "X-Api-Key", "books-token", invoice.clone());
    req.headers.push(("x-request-id".into(), "req-1".into()));
    let (st, first) = s.send_json(&req).await;
    assert_eq!(st, 200, "{first}");
    let (_, again) = s.send_json(&req).await;
    assert_eq!(again["duplicate"], true, "the configured dedupe header identifies repeats");

    let (_, d) = s.get(&format!("/api/v1/deliveries/{}", first["delivery_id"].as_str().unwrap())).await;
    assert!(
        !d["headers"].as_array().unwrap().iter().any(|h| h["name"] == "x-api-key"),
        "credential headers are not stored: {d}"
    );

    let wrong = zoho_token_request("books", "X-Api-Key", "nope", invoice.clone());
    assert_problem(&s.send_json(&wrong).await, 401, "signature_invalid");
    let missing = zoho_token_request("books", "X-Other", "books-token", invoice.clone());
    assert_problem(&s.send_json(&missing).await, 401, "signature_missing");
    let unknown = zoho_token_request("nobody", "X-Api-Key", "books-token", invoice);
    assert_problem(&s.send_json(&unknown).await, 404, "unknown_subscription");
}

fn signed(scheme: &SignatureScheme, query: &str, body: &[u8], key: &[u8]) -> SignedRequest {
    SignedRequest {
        path: format!("/zoho/incoming/billing?{query}"),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-zoho-webhook-signature".into(), scheme.sign(query, body, false, key)),
        ],
        body: body.to_vec(),
    }
}

#[tokio::test]
async fn the_signature_scheme_follows_its_configured_encoding() {
    for (encoding, name) in [(SignatureEncoding::Hex, "hex"), (SignatureEncoding::Base64, "base64")] {
        let s = TestServer::start_with(Options {
            env: env(&[("HOOKPLANE_ZOHO__SIGNATURE__ENCODING", name)]),
            ..Options::default()
        })
        .await;
        let (st, body) = s
            .post(
                "/api/v1/subscriptions",
                json!({ "source": "zoho", "topic": "subscriptions", "account": "org-1", "name": "billing",
                        "auth": "signature", "secret": "abcdef123456" }),
            )
            .await;
        assert_eq!(st, 201, "{body}");
        let scheme = SignatureScheme { header: "X-Zoho-Webhook-Signature".into(), encoding };
        let body = br#"{"created_date":"2019-03-06","event_id":"5675"}"#;
        let (st, got) = s.send_json(&signed(&scheme, "subscription_id=90343&name=basic", body, b"abcdef123456")).await;
        assert_eq!(st, 200, "{name}: {got}");
        let forged = signed(&scheme, "subscription_id=90343&name=basic", body, b"wrong-key-123");
        assert_problem(&s.send_json(&forged).await, 401, "signature_invalid");
        let mut moved = signed(&scheme, "subscription_id=90343&name=basic", body, b"abcdef123456");
        moved.path = "/zoho/incoming/billing?subscription_id=1&name=basic".into();
        assert_problem(&s.send_json(&moved).await, 401, "signature_invalid");
    }
}
