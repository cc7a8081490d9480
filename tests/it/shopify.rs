use hookplane::connectors::shopify::sign;
use hookplane::demo::factories::{Factory, shopify_request};
use serde_json::json;

use crate::queue::{Answer, Destination};
use crate::support::*;

const VECTOR_BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com","topic":"orders/create"}"#;
const SHOP: &str = "test-shop.myshopify.com";

#[tokio::test]
async fn the_providers_md_vector_is_accepted_and_stored_exactly() {
    let s = TestServer::start().await;
    let req = shopify_request("orders/create", SHOP, VECTOR_BODY.to_vec(), b"hush", "wh-vector-1", now());
    assert_eq!(req.header("x-shopify-hmac-sha256"), Some("caywFtONLHCQ/kdAoRCOAC9s972OdEFX6QvGUQVBTbQ="));
    let (status, body) = s.send_json(&req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["duplicate"], false);
    let id = body["delivery_id"].as_str().unwrap();

    let (status, d) = s.get(&format!("/api/v1/deliveries/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(d["source"], "shopify");
    assert_eq!(d["topic"], "orders/create");
    assert_eq!(d["account"], SHOP);
    assert_eq!(d["provider_delivery_id"], "wh-vector-1");
    assert_eq!(d["event_id"], "wh-vector-1-evt");
    assert_eq!(d["verified_with"], "app");
    assert_eq!(d["status"], "stored", "a discovered subscription keeps deliveries in store");
    assert_eq!(d["size_bytes"], VECTOR_BODY.len());
    assert_eq!(d["preview"], std::str::from_utf8(VECTOR_BODY).unwrap());
    assert_eq!(d["preview_truncated"], false);
    let headers = d["headers"].as_array().unwrap();
    assert!(headers.iter().any(|h| h["name"] == "x-shopify-topic" && h["value"] == "orders/create"));

    let body =
        s.client.get(s.url(&format!("/api/v1/deliveries/{id}/body"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(body.status(), 200);
    assert_eq!(body.headers()["content-type"], "application/json");
    assert_eq!(body.bytes().await.unwrap().as_ref(), VECTOR_BODY);
}

#[tokio::test]
async fn realistic_orders_and_the_unprefixed_header_family_are_accepted() {
    let s = TestServer::start().await;
    let mut f = Factory::new(1);
    let order = f.shopify_order(1042, now());
    let (status, _) = s.send_json(&shopify_request("orders/create", SHOP, order.clone(), b"hush", "wh-1", now())).await;
    assert_eq!(status, 200);

    let body = f.shopify_product(now());
    let sig = sign(&body, b"hush");
    let resp = s
        .client
        .post(s.url("/shopify/webhook"))
        .header("shopify-hmac-sha256", sig)
        .header("shopify-topic", "products/update")
        .header("shopify-shop-domain", SHOP)
        .header("shopify-event-id", "evt-77")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, stored) = json_of(resp).await;
    assert_eq!(status, 200, "{stored}");
    let (_, d) = s.get(&format!("/api/v1/deliveries/{}", stored["delivery_id"].as_str().unwrap())).await;
    assert_eq!(d["provider_delivery_id"], "evt-77:products/update");
    assert_eq!(d["event_id"], "evt-77");
}

#[tokio::test]
async fn tampered_wrong_secret_and_missing_headers_are_refused_and_counted() {
    let s = TestServer::start().await;
    let good = shopify_request("orders/create", SHOP, VECTOR_BODY.to_vec(), b"hush", "wh-2", now());

    let mut tampered = good.clone();
    tampered.body[10] = b'9';
    assert_problem(&s.send_json(&tampered).await, 401, "signature_invalid");

    let wrong = shopify_request("orders/create", SHOP, VECTOR_BODY.to_vec(), b"not-the-secret", "wh-3", now());
    assert_problem(&s.send_json(&wrong).await, 401, "signature_invalid");

    let mut no_sig = good.clone();
    no_sig.headers.retain(|(k, _)| k != "x-shopify-hmac-sha256");
    assert_problem(&s.send_json(&no_sig).await, 401, "signature_missing");

    let mut no_topic = good.clone();
    no_topic.headers.retain(|(k, _)| k != "x-shopify-topic");
    let got = s.send_json(&no_topic).await;
    assert_problem(&got, 400, "header_missing");
    assert!(got.1["detail"].as_str().unwrap().contains("X-Shopify-Topic"));

    let mut empty = good.clone();
    empty.body.clear();
    assert_problem(&s.send_json(&empty).await, 400, "empty_body");

    // Nothing refused was stored; every refusal was counted by cause, with metadata only.
    assert!(s.all_deliveries("").await.is_empty());
    // Samples are recorded after the refusal is answered (the writer takes them in order, without holding
    // up any answer), so wait until the last one is in before counting.
    let mut rejections = serde_json::Value::Null;
    for _ in 0..2000 {
        rejections = s.get("/api/v1/rejections").await.1;
        if rejections["recent"].as_array().is_some_and(|r| r.len() == 5) {
            break;
        }
        tokio::task::yield_now().await;
    }
    let count = |cause: &str| {
        rejections["counts"].as_array().unwrap().iter().find(|c| c["cause"] == cause).unwrap()["count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count("signature_invalid"), 2);
    assert_eq!(count("signature_missing"), 1);
    assert_eq!(count("header_missing"), 1);
    assert_eq!(count("empty_body"), 1);
    let recent = rejections["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 5);
    assert_eq!(recent[0]["cause"], "empty_body", "newest first");
    assert!(recent.iter().all(|r| r["path"] == "/shopify/webhook"));
    assert!(!rejections.to_string().contains("jon@example.com"), "bodies of refused requests are never kept");
}

#[tokio::test]
async fn a_repeat_is_a_duplicate_stored_once() {
    let s = TestServer::start().await;
    let req = shopify_request("orders/create", SHOP, VECTOR_BODY.to_vec(), b"hush", "wh-dup", now());
    let (s1, first) = s.send_json(&req).await;
    let (s2, second) = s.send_json(&req).await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (200, 200));
    assert_eq!(first["duplicate"], false);
    assert_eq!(second["duplicate"], true);
    assert_eq!(first["delivery_id"], second["delivery_id"]);
    assert_eq!(s.all_deliveries("").await.len(), 1);
}

#[tokio::test]
async fn concurrent_repeats_are_stored_once() {
    let s = TestServer::start().await;
    let req = shopify_request("orders/create", SHOP, VECTOR_BODY.to_vec(), b"hush", "wh-race", now());
    let sends = (0..16).map(|_| s.send_json(&req));
    let results = futures_util::future::join_all(sends).await;
    assert!(results.iter().all(|(st, _)| *st == 200));
    assert_eq!(results.iter().filter(|(_, b)| b["duplicate"] == false).count(), 1);
    assert_eq!(s.all_deliveries("").await.len(), 1);
}

#[tokio::test]
async fn the_previous_app_secret_is_accepted_during_a_rotation() {
    let s = TestServer::start_with(Options {
        env: env(&[("SHOPIFY_WEBHOOK_SECRET", "new-secret"), ("SHOPIFY_WEBHOOK_SECRET_PREVIOUS", "hush")]),
        ..Options::default()
    })
    .await;
    let old = shopify_request("orders/create", SHOP, VECTOR_BODY.to_vec(), b"hush", "wh-old", now());
    let new = shopify_request("orders/create", SHOP, VECTOR_BODY.to_vec(), b"new-secret", "wh-new", now());
    let (st, a) = s.send_json(&old).await;
    assert_eq!(st, 200);
    let (st, b) = s.send_json(&new).await;
    assert_eq!(st, 200);
    let (_, a) = s.get(&format!("/api/v1/deliveries/{}", a["delivery_id"].as_str().unwrap())).await;
    let (_, b) = s.get(&format!("/api/v1/deliveries/{}", b["delivery_id"].as_str().unwrap())).await;
    assert_eq!(a["verified_with"], "app_previous");
    assert_eq!(b["verified_with"], "app");
}

#[tokio::test]
async fn unknown_topics_are_discovered_then_adopted() {
    // A destination that never answers, so a forwarded delivery stays queued while the test looks.
    let dest = Destination::start(&[Answer::Hang]).await;
    let s = TestServer::start().await;
    let req = shopify_request("app/uninstalled", SHOP, br#"{"id":1}"#.to_vec(), b"hush", "wh-disc-1", now());
    let (st, first) = s.send_json(&req).await;
    assert_eq!(st, 200);
    let req2 = shopify_request("app/uninstalled", SHOP, br#"{"id":2}"#.to_vec(), b"hush", "wh-disc-2", now());
    let (_, second) = s.send_json(&req2).await;
    assert_eq!(first["subscription_id"], second["subscription_id"], "one discovered subscription per shop and topic");

    let (_, subs) = s.get("/api/v1/subscriptions").await;
    let subs = subs.as_array().unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["status"], "discovered");
    assert_eq!(subs[0]["origin"], "discovered");
    assert_eq!(subs[0]["topic"], "app/uninstalled");

    let (st, adopted) = s
        .post(
            "/api/v1/subscriptions",
            json!({ "source": "shopify", "topic": "app/uninstalled", "account": SHOP, "name": "uninstalls",
                    "destination_url": dest.url }),
        )
        .await;
    assert_eq!(st, 200, "{adopted}");
    assert_eq!(adopted["adopted"], true);
    assert_eq!(adopted["subscription"]["id"], first["subscription_id"], "the discovered id is kept");
    assert_eq!(adopted["subscription"]["status"], "active");
    assert_eq!(adopted["subscription"]["name"], "uninstalls");

    // Later deliveries land on the adopted subscription and, having a destination now, are forwarded: the
    // destination never answers, so the delivery stays `processing`.
    let req3 = shopify_request("app/uninstalled", SHOP, br#"{"id":3}"#.to_vec(), b"hush", "wh-disc-3", now());
    let (_, third) = s.send_json(&req3).await;
    assert_eq!(third["subscription_id"], first["subscription_id"]);
    assert_eq!(dest.wait_for(1).await[0].body, br#"{"id":3}"#.to_vec(), "and handed to the destination");
    let (_, d) = s.get(&format!("/api/v1/deliveries/{}", third["delivery_id"].as_str().unwrap())).await;
    assert_eq!(d["status"], "processing");
}

#[tokio::test]
async fn with_discovery_off_unknown_topics_are_404() {
    let s = TestServer::start_with(Options {
        env: env(&[("HOOKPLANE_SHOPIFY__DISCOVER_UNKNOWN_TOPICS", "false")]),
        ..Options::default()
    })
    .await;
    let req = shopify_request("orders/create", SHOP, VECTOR_BODY.to_vec(), b"hush", "wh-x", now());
    assert_problem(&s.send_json(&req).await, 404, "unknown_subscription");

    // A subscription for every shop (`*`) makes the topic known.
    let (st, _) =
        s.post("/api/v1/subscriptions", json!({"source": "shopify", "topic": "orders/create", "account": "*"})).await;
    assert_eq!(st, 201);
    let (st, _) = s.send_json(&req).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn a_subscription_secret_verifies_deliveries_signed_outside_the_app() {
    // Deliveries created in the shop admin are signed with the store's key, not the app secret.
    let s = TestServer::start_with(Options { env: env(&[("SHOPIFY_WEBHOOK_SECRET", "")]), ..Options::default() }).await;
    let req = shopify_request("orders/paid", SHOP, VECTOR_BODY.to_vec(), b"store-key", "wh-s1", now());
    let got = s.send_json(&req).await;
    assert_problem(&got, 401, "signature_invalid");
    assert!(got.1["detail"].as_str().unwrap().contains("SHOPIFY_WEBHOOK_SECRET"), "{}", got.1);

    let (st, _) = s
        .post(
            "/api/v1/subscriptions",
            json!({"source": "shopify", "topic": "orders/paid", "account": SHOP, "secret": "store-key"}),
        )
        .await;
    assert_eq!(st, 201);
    let (st, body) = s.send_json(&req).await;
    assert_eq!(st, 200, "{body}");
}
