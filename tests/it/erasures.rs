//! Privacy erasure over HTTP: a stored `customers/redact` erases exactly the payloads naming that customer
//! in that shop, `shop/redact` the whole shop's; an operator counts then erases on request; erased
//! deliveries keep their metadata, leave search, refuse replays, and every erasure is audited.

use std::time::Duration;

use hookplane::demo::factories::shopify_request;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const SHOP: &str = "erase-shop.myshopify.com";
const OTHER: &str = "other-shop.myshopify.com";

fn order(id: u64, customer: Option<(u64, &str)>, email: &str) -> Vec<u8> {
    let customer = customer.map(|(id, email)| json!({ "id": id, "email": email, "first_name": "Jon" }));
    json!({ "id": id, "email": email, "contact_email": email, "customer": customer, "note": "parcel" })
        .to_string()
        .into_bytes()
}

async fn send(s: &TestServer, shop: &str, topic: &str, body: Vec<u8>) -> String {
    let req = shopify_request(topic, shop, body, SHOPIFY_SECRET.as_bytes(), &uuid(), now());
    let (st, b) = s.send_json(&req).await;
    assert_eq!(st, 200, "{b}");
    b["delivery_id"].as_str().unwrap().to_owned()
}

fn uuid() -> String {
    format!("{:032x}", rand::random::<u128>())
}

async fn erasure_until(s: &TestServer, id: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (st, b) = s.get(&format!("/api/v1/erasures/{id}")).await;
        if st == 200 && b["status"] == want {
            return b;
        }
        last = b;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("erasure {id} never became {want}: {last}");
}

async fn erased(s: &TestServer, id: &str) -> bool {
    let (st, d) = s.get(&format!("/api/v1/deliveries/{id}")).await;
    assert_eq!(st, 200, "{d}");
    let is = d["erased"].is_object();
    assert_eq!(is, d["preview"].as_str().unwrap().starts_with(r#"{"erased":true"#), "{d}");
    is
}

fn redact_erasure(delivery: &str) -> String {
    format!("ers_{}", delivery.trim_start_matches("dlv_"))
}

#[tokio::test]
async fn redact_webhooks_erase_exactly_the_customers_then_the_shops_payloads() {
    let s = TestServer::start_with(Options {
        env: env(&[("HOOKPLANE_PRIVACY__HONOR_SHOPIFY_REDACT", "true")]),
        ..Options::default()
    })
    .await;
    let by_customer =
        send(&s, SHOP, "orders/create", order(1, Some((191_167, "john@example.com")), "john@example.com")).await;
    let guest = send(&s, SHOP, "orders/create", order(2, None, "John@Example.com")).await;
    let updated =
        send(&s, SHOP, "orders/updated", order(3, Some((191_167, "old@example.com")), "old@example.com")).await;
    let someone_else = send(&s, SHOP, "orders/create", order(4, Some((7, "ana@example.com")), "ana@example.com")).await;
    let other_shop =
        send(&s, OTHER, "orders/create", order(5, Some((191_167, "john@example.com")), "john@example.com")).await;
    let profile = json!({ "id": 191_167, "email": "new@example.com", "note": "parcel" });
    let profile = send(&s, SHOP, "customers/update", profile.to_string().into_bytes()).await;
    searched(&s, "q=parcel", 6).await;

    // Shopify signs the body only: a body naming another shop, sent as a redact, erases nothing.
    let spoofed = send(&s, SHOP, "shop/redact", json!({ "shop_domain": OTHER }).to_string().into_bytes()).await;
    let failed = erasure_until(&s, &redact_erasure(&spoofed), "failed").await;
    assert!(failed["error"].as_str().unwrap().contains("names the shop `other-shop.myshopify.com`"), "{failed}");

    let redact = json!({ "shop_id": 1, "shop_domain": SHOP, "customer": { "id": 191_167, "email": "john@example.com" },
                         "orders_to_redact": [1, 3] });
    let customers_redact = send(&s, SHOP, "customers/redact", redact.to_string().into_bytes()).await;
    let done = erasure_until(&s, &redact_erasure(&customers_redact), "done").await;
    assert_eq!(
        (done["requested_by"].as_str(), done["matched"].as_u64(), done["erased"].as_u64(), done["busy"].as_u64()),
        (Some("system"), Some(4), Some(4), Some(0)),
        "{done}"
    );
    assert_eq!(done["redact_delivery_id"], customers_redact.as_str());
    assert_eq!(done["filter"]["account"], SHOP);
    for (id, want) in [
        (&by_customer, true),
        (&guest, true),
        (&updated, true),
        (&profile, true),
        (&spoofed, false),
        (&someone_else, false),
        (&other_shop, false),
        (&customers_redact, false),
    ] {
        assert_eq!(erased(&s, id).await, want, "{id}");
    }
    // Metadata stays; the body is the tombstone, served whole and checked against its new digest.
    let (_, d) = s.get(&format!("/api/v1/deliveries/{by_customer}")).await;
    assert_eq!((d["topic"].as_str(), d["account"].as_str()), (Some("orders/create"), Some(SHOP)));
    assert_eq!(d["erased"]["erasure_id"], done["id"]);
    assert!(d["erased"]["size_bytes"].as_u64().unwrap() > d["size_bytes"].as_u64().unwrap(), "{d}");
    let body = body_of(&s.client, &s.base, &by_customer).await;
    assert!(String::from_utf8_lossy(&body).contains(done["id"].as_str().unwrap()));
    // Search finds the customer only where they were not erased: the other shop, and the request itself.
    let found = searched(&s, "q=payload.customer.id:191167", 2).await;
    let ids: Vec<&str> = found["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [customers_redact.as_str(), other_shop.as_str()]);
    searched(&s, "q=parcel", 2).await;
    searched(&s, "q=new@example.com", 0).await;
    // Nothing is left to replay.
    let (st, refused) = s.post(&format!("/api/v1/deliveries/{by_customer}/replay"), json!({})).await;
    assert_problem(&(st, refused.clone()), 409, "not_replayable");
    assert!(refused["detail"].as_str().unwrap().contains("was erased"), "{refused}");
    let (_, audit) =
        s.get(&format!("/api/v1/audit?action=erasure_started&target_id={}", done["id"].as_str().unwrap())).await;
    assert_eq!(audit["items"][0]["performed_by"], "system", "{audit}");
    let (_, audit) =
        s.get(&format!("/api/v1/audit?action=erasure_finished&target_id={}", done["id"].as_str().unwrap())).await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");

    // The shop leaves: everything of it from before is erased, the other shop's is not.
    let shop_redact =
        send(&s, SHOP, "shop/redact", json!({ "shop_id": 1, "shop_domain": SHOP }).to_string().into_bytes()).await;
    let done = erasure_until(&s, &redact_erasure(&shop_redact), "done").await;
    assert_eq!((done["erased"].as_u64(), done["skipped"].as_u64()), (Some(3), Some(4)), "{done}");
    for (id, want) in [
        (&someone_else, true),
        (&customers_redact, true),
        (&spoofed, true),
        (&other_shop, false),
        (&shop_redact, false),
    ] {
        assert_eq!(erased(&s, id).await, want, "{id}");
    }
    // One erasure per redact webhook, however often the watcher looks.
    let (_, list) = s.get("/api/v1/erasures").await;
    assert_eq!(list.as_array().map(Vec::len), Some(3), "{list}");
}

#[tokio::test]
async fn an_operator_counts_then_erases_on_request_and_redacts_wait_for_the_setting() {
    let s = TestServer::start().await;
    let johns = [
        send(&s, SHOP, "orders/create", order(1, Some((1, "jon@example.com")), "jon@example.com")).await,
        send(&s, OTHER, "orders/create", order(2, Some((2, "jon@example.com")), "jon@example.com")).await,
    ];
    let ana = send(&s, SHOP, "orders/create", order(3, Some((3, "ana@example.com")), "ana@example.com")).await;
    let redact = json!({ "shop_domain": SHOP, "customer": { "id": 3, "email": "ana@example.com" } });
    let redact = send(&s, SHOP, "customers/redact", redact.to_string().into_bytes()).await;
    searched(&s, "q=parcel", 3).await;

    let q = r#"customer.email:"jon@example.com""#;
    let (st, count) = s.post("/api/v1/erasures", json!({ "q": q, "dry_run": true })).await;
    assert_eq!((st, count["matched"].as_u64()), (StatusCode::OK, Some(2)), "{count}");
    for bad in
        [json!({ "q": q }), json!({ "confirm": true }), json!({ "q": q, "confirm": true, "reason": "x".repeat(201) })]
    {
        assert_problem(&s.post("/api/v1/erasures", bad).await, 400, "invalid_request");
    }
    let viewer = {
        let (_, t) = s.post("/api/v1/tokens", json!({ "name": "v", "role": "viewer" })).await;
        t["secret"].as_str().unwrap().to_owned()
    };
    let refused = s.client.get(s.url("/api/v1/erasures")).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(refused.status(), 403, "their filters may name a person");

    let (st, started) = s.post("/api/v1/erasures", json!({ "q": q, "confirm": true, "reason": "DSR-2041" })).await;
    assert_eq!(st, 202, "{started}");
    let id = started["id"].as_str().unwrap();
    let done = erasure_until(&s, id, "done").await;
    assert_eq!((done["erased"].as_u64(), done["requested_by"].as_str()), (Some(2), Some("admin-token")), "{done}");
    for j in &johns {
        assert!(erased(&s, j).await);
    }
    assert!(!erased(&s, &ana).await, "a redact webhook erases nothing unless privacy.honor_shopify_redact is on");
    assert_eq!(s.get(&format!("/api/v1/erasures/{}", redact_erasure(&redact))).await.0, 404, "nor is one recorded");
    let (_, audit) = s.get(&format!("/api/v1/audit?action=erasure_started&target_id={id}")).await;
    let changes = audit["items"][0]["changes"].to_string();
    assert!(changes.contains("DSR-2041") && changes.contains("jon@example.com"), "{audit}");
    assert_problem(&s.post(&format!("/api/v1/erasures/{id}/cancel"), json!({})).await, 409, "conflict");
    assert_problem(&s.get("/api/v1/erasures/ers_nonsense").await, 400, "invalid_request");

    // A forwarded delivery: the destination's answers kept with its attempts may echo the payload; they go.
    let dest = crate::queue::Destination::start(&[]).await;
    let fwd = crate::queue::forwarding(&s, "orders/paid", &dest.url).await;
    let sent = crate::queue::deliver(&s, "orders/paid", 1).await;
    crate::queue::until(&s, &sent, "status", json!("succeeded")).await;
    assert_eq!(crate::queue::attempts(&s, &sent).await[0]["excerpt"], "ok");
    let (st, started) = s.post("/api/v1/erasures", json!({ "subscription": fwd, "confirm": true })).await;
    assert_eq!(st, 202, "{started}");
    let done = erasure_until(&s, started["id"].as_str().unwrap(), "done").await;
    assert_eq!(done["erased"].as_u64(), Some(1), "{done}");
    let attempts = crate::queue::attempts(&s, &sent).await;
    assert_eq!((attempts[0]["excerpt"].as_str(), attempts[0]["response_code"].as_u64()), (Some(""), Some(200)));
    let (_, list) = s.get("/api/v1/erasures").await;
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
}

#[tokio::test]
async fn the_erasures_page_counts_then_erases_only_once_confirmed() {
    let s = with_store(Options::default(), |db| add_operator(db, "ada", hookplane::domain::access::Role::Admin)).await;
    let jon = send(&s, SHOP, "orders/create", order(1, Some((1, "jon@example.com")), "jon@example.com")).await;
    searched(&s, "q=parcel", 1).await;
    let mut ada = Browser::new(&s);
    ada.sign_in("ada", PASSWORD).await;
    let page = ada.get("/dashboard/erasures").await;
    assert!(page.body.contains("No erasures yet.") && page.body.contains("erase nothing"), "{}", page.body);
    let csrf = page.csrf();
    let form = |intent: &'static str, confirm: bool| {
        let mut f = vec![("intent", intent), ("q", "parcel"), ("reason", "DSR-7"), ("csrf", csrf.as_str())];
        if confirm {
            f.push(("confirm", "true"));
        }
        f
    };
    let counted = ada.post("/dashboard/erasures", &form("count", false)).await;
    assert_eq!(counted.status, StatusCode::SEE_OTHER);
    let shown = ada.get(counted.location()).await;
    assert!(shown.body.contains("1 deliveries match") && shown.body.contains("DSR-7"), "{}", shown.body);
    let unconfirmed = ada.post("/dashboard/erasures", &form("start", false)).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert!(unconfirmed.body.contains("Nothing was erased"), "{}", unconfirmed.body);
    assert!(!erased(&s, &jon).await);
    let started = ada.post("/dashboard/erasures", &form("start", true)).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    assert!(started.location().starts_with("/dashboard/erasures?notice=erasure_started"), "{}", started.location());
    let (_, list) = s.get("/api/v1/erasures").await;
    let done = erasure_until(&s, list[0]["id"].as_str().unwrap(), "done").await;
    assert_eq!((done["erased"].as_u64(), done["requested_by"].as_str()), (Some(1), Some("operator:ada")));
    let page = ada.get("/dashboard/erasures").await;
    assert!(page.body.contains("1 erased") && page.body.contains("Done"), "{}", page.body);
    let delivery = ada.get(&format!("/dashboard/webhooks/deliveries/{jon}")).await;
    assert!(
        delivery.body.contains("Payload erased") && delivery.body.contains("nothing left to replay"),
        "{}",
        delivery.body
    );
}

#[tokio::test]
async fn a_delivery_still_being_delivered_keeps_its_payload_until_it_settles_then_is_erased() {
    let s = TestServer::start_with(Options {
        env: env(&[("HOOKPLANE_PRIVACY__BUSY_RETRY_SECONDS", "1"), ("HOOKPLANE_DELIVERY__POLL_INTERVAL_MS", "20")]),
        ..Options::default()
    })
    .await;
    let dest = crate::queue::Destination::start(&[]).await;
    let fwd = crate::queue::forwarding(&s, "orders/paid", &dest.url).await;
    let (st, paused) = s.post(&format!("/api/v1/subscriptions/{fwd}/pause"), json!({})).await;
    assert_eq!(st, 200, "{paused}");
    let held = crate::queue::deliver(&s, "orders/paid", 1).await;
    let (st, started) = s.post("/api/v1/erasures", json!({ "subscription": fwd, "confirm": true })).await;
    assert_eq!(st, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    // Held by the pause: its payload stays (the destination must still get it), and the erasure waits.
    let mut waiting = Value::Null;
    for _ in 0..600 {
        waiting = s.get(&format!("/api/v1/erasures/{id}")).await.1;
        if waiting["busy"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((waiting["status"].as_str(), waiting["erased"].as_u64()), (Some("running"), Some(0)), "{waiting}");
    assert!(!erased(&s, &held).await);
    // Resumed, it is delivered with its payload, and then the erasure takes it.
    let (st, resumed) = s.post(&format!("/api/v1/subscriptions/{fwd}/resume"), json!({})).await;
    assert_eq!(st, 200, "{resumed}");
    crate::queue::until(&s, &held, "status", json!("succeeded")).await;
    assert!(!String::from_utf8_lossy(&dest.wait_for(1).await[0].body).contains("erased"));
    let done = erasure_until(&s, &id, "done").await;
    assert_eq!((done["erased"].as_u64(), done["busy"].as_u64()), (Some(1), Some(0)), "{done}");
    assert!(erased(&s, &held).await);
}
