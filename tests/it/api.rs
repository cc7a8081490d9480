use hookplane::demo::factories::{Factory, shopify_request, zoho_channel_request};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const SHOP: &str = "api-shop.myshopify.com";

/// Sends `n` orders and returns their delivery ids, oldest first.
async fn orders(s: &TestServer, f: &mut Factory, topic: &str, n: usize, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let body = f.shopify_order(2000 + i as u64, now());
        let req = shopify_request(topic, SHOP, body, SHOPIFY_SECRET.as_bytes(), &format!("{tag}-{i}"), now());
        let (st, b) = s.send_json(&req).await;
        assert_eq!(st, 200, "{b}");
        ids.push(b["delivery_id"].as_str().unwrap().to_owned());
    }
    ids
}

#[tokio::test]
async fn deliveries_list_newest_first_with_filters() {
    let s = TestServer::start().await;
    let mut f = Factory::new(11);
    let created = orders(&s, &mut f, "orders/create", 5, "c").await;
    let paid = orders(&s, &mut f, "orders/paid", 3, "p").await;
    s.post(
        "/api/v1/subscriptions",
        json!({"source": "zoho", "topic": "Leads.all", "account": "org-9", "channel_id": "77", "secret": "tok"}),
    )
    .await;
    let (st, _) = s.send_json(&zoho_channel_request(f.zoho_notification("Leads", "insert", "77", "tok", now()))).await;
    assert_eq!(st, 200);

    let all = s.all_deliveries("").await;
    assert_eq!(all.len(), 9);
    let ids: Vec<&str> = all.iter().map(|d| d["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    assert!(all.iter().all(|d| d.get("headers").is_none()), "lists leave headers out");

    let by_topic = s.all_deliveries("topic=orders/paid").await;
    let mut want: Vec<&str> = paid.iter().map(String::as_str).rev().collect();
    assert_eq!(by_topic.iter().map(|d| d["id"].as_str().unwrap()).collect::<Vec<_>>(), want);
    assert_eq!(s.all_deliveries("source=zoho").await.len(), 1);
    assert_eq!(s.all_deliveries("source=shopify").await.len(), 8);
    assert_eq!(s.all_deliveries(&format!("account={SHOP}")).await.len(), 8);
    assert_eq!(s.all_deliveries("status=stored").await.len(), 9);
    assert_eq!(s.all_deliveries("status=failed").await.len(), 0);
    assert_eq!(s.all_deliveries("source=shopify&topic=Leads.all").await.len(), 0);

    let sub =
        all.iter().find(|d| d["topic"] == "orders/create").unwrap()["subscription_id"].as_str().unwrap().to_owned();
    want = created.iter().map(String::as_str).rev().collect();
    let by_sub = s.all_deliveries(&format!("subscription={sub}")).await;
    assert_eq!(by_sub.iter().map(|d| d["id"].as_str().unwrap()).collect::<Vec<_>>(), want);
}

#[tokio::test]
async fn pagination_stays_correct_while_deliveries_arrive() {
    let s = TestServer::start().await;
    let mut f = Factory::new(12);
    let first_batch = orders(&s, &mut f, "orders/create", 7, "a").await;

    let (_, page1) = s.get("/api/v1/deliveries?limit=3").await;
    let cursor = page1["next_cursor"].as_str().unwrap().to_owned();
    // New deliveries arrive between pages: they are newer than the cursor and never shift older pages.
    orders(&s, &mut f, "orders/create", 4, "b").await;
    let (_, page2) = s.get(&format!("/api/v1/deliveries?limit=3&cursor={cursor}")).await;
    let cursor2 = page2["next_cursor"].as_str().unwrap().to_owned();
    let (_, page3) = s.get(&format!("/api/v1/deliveries?limit=3&cursor={cursor2}")).await;
    assert!(page3["next_cursor"].is_null(), "the last page says so");

    let seen: Vec<String> = [&page1, &page2, &page3]
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()))
        .collect();
    let want: Vec<String> = first_batch.iter().rev().cloned().collect();
    assert_eq!(seen, want, "every delivery of the first batch exactly once, in order");

    // Filtered pagination through the per-subscription index behaves the same.
    let sub = page1["items"][0]["subscription_id"].as_str().unwrap();
    let (_, p) = s.get(&format!("/api/v1/deliveries?limit=4&subscription={sub}")).await;
    assert_eq!(p["items"].as_array().unwrap().len(), 4);
    let (_, rest) = s
        .get(&format!("/api/v1/deliveries?limit=100&subscription={sub}&cursor={}", p["next_cursor"].as_str().unwrap()))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 7);
    assert!(rest["next_cursor"].is_null());
}

#[tokio::test]
async fn the_api_requires_the_admin_token() {
    let s = TestServer::start().await;
    for path in ["/api/v1/deliveries", "/api/v1/subscriptions", "/api/v1/rejections"] {
        let none = json_of(s.client.get(s.url(path)).send().await.unwrap()).await;
        assert_problem(&none, 401, "unauthorized");
        let wrong = json_of(s.client.get(s.url(path)).bearer_auth("hp_wrong").send().await.unwrap()).await;
        assert_problem(&wrong, 401, "unauthorized");
    }
    let closed =
        TestServer::start_with(Options { env: env(&[("HOOKPLANE_ADMIN_TOKEN", "")]), ..Options::default() }).await;
    let got =
        json_of(closed.client.get(closed.url("/api/v1/deliveries")).bearer_auth("anything").send().await.unwrap())
            .await;
    assert_problem(&got, 401, "unauthorized");
    assert!(got.1["detail"].as_str().unwrap().contains("HOOKPLANE_ADMIN_TOKEN"));
}

#[tokio::test]
async fn bad_parameters_get_specific_errors() {
    let s = TestServer::start().await;
    assert_problem(&s.get("/api/v1/deliveries?limit=0").await, 400, "invalid_request");
    assert_problem(&s.get("/api/v1/deliveries?limit=501").await, 400, "invalid_request");
    let got = s.get("/api/v1/deliveries?cursor=nope").await;
    assert_problem(&got, 400, "invalid_request");
    assert!(got.1["detail"].as_str().unwrap().contains("cursor"));
    assert_problem(&s.get("/api/v1/deliveries?status=lost").await, 400, "invalid_request");
    assert_problem(&s.get("/api/v1/deliveries?subscription=dlv_01J").await, 400, "invalid_request");
    assert_problem(&s.get("/api/v1/deliveries/not-an-id").await, 400, "invalid_request");
    assert_problem(&s.get("/api/v1/deliveries/dlv_01JD0000000000000000000000").await, 404, "not_found");
    assert_problem(&s.get("/api/v1/deliveries/dlv_01JD0000000000000000000000/body").await, 404, "not_found");
    assert_problem(&s.get("/api/v1/subscriptions/nobody").await, 404, "not_found");
    assert_problem(&s.get("/no/such/route").await, 404, "not_found");
    let wrong_method = json_of(s.client.get(s.url("/shopify/webhook")).send().await.unwrap()).await;
    assert_problem(&wrong_method, 405, "method_not_allowed");
}

#[tokio::test]
async fn subscription_input_is_validated_and_conflicts_are_409() {
    let s = TestServer::start().await;
    let cases = [
        (json!({"source": "zoho", "topic": "Leads.all", "account": "org"}), "secret"),
        (json!({"source": "shopify", "topic": "", "account": SHOP}), "topic"),
        (json!({"source": "shopify", "topic": "x", "account": SHOP, "name": "Bad Name"}), "name"),
        (json!({"source": "shopify", "topic": "x", "account": SHOP, "destination_url": "ftp://x"}), "destination_url"),
        (json!({"source": "shopify", "topic": "x", "account": SHOP, "channel_id": "1"}), "channel_id"),
        (json!({"source": "standard", "topic": "x", "account": "a", "secret": "whsec_c2hvcnQ="}), "24 to 64"),
        (json!({"source": "zoho", "topic": "x", "account": "a", "secret": "t", "auth": "magic"}), "auth"),
    ];
    for (body, mention) in cases {
        let got = s.post("/api/v1/subscriptions", body.clone()).await;
        assert_problem(&got, 400, "invalid_request");
        assert!(got.1["detail"].as_str().unwrap().contains(mention), "{body} → {}", got.1);
    }
    let unknown_field = s
        .post("/api/v1/subscriptions", json!({"source": "shopify", "topic": "x", "account": SHOP, "colour": "red"}))
        .await;
    assert_problem(&unknown_field, 400, "invalid_request");
    let bad_source = s.post("/api/v1/subscriptions", json!({"source": "paypal", "topic": "x", "account": "a"})).await;
    assert_problem(&bad_source, 400, "invalid_request");

    let ok = json!({"source": "shopify", "topic": "orders/create", "account": SHOP, "name": "orders"});
    assert_eq!(s.post("/api/v1/subscriptions", ok.clone()).await.0, 201);
    assert_problem(&s.post("/api/v1/subscriptions", ok).await, 409, "conflict");
    let same_name = json!({"source": "shopify", "topic": "orders/paid", "account": SHOP, "name": "orders"});
    assert_problem(&s.post("/api/v1/subscriptions", same_name).await, 409, "conflict");
    let (_, list) = s.get("/api/v1/subscriptions").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "refused requests changed nothing");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_even_without_a_content_length() {
    let s = TestServer::start_with(Options {
        env: env(&[("HOOKPLANE_INGEST__MAX_BODY_BYTES", "1024")]),
        ..Options::default()
    })
    .await;
    let big = vec![b'x'; 1025];
    let req = shopify_request("orders/create", SHOP, big.clone(), SHOPIFY_SECRET.as_bytes(), "big-1", now());
    assert_problem(&s.send_json(&req).await, 413, "payload_too_large");

    // Chunked: no length up front, so the limit must hold while reading.
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = String::from(
        "POST /shopify/webhook HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n",
    );
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in big.chunks(256) {
        stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.unwrap();
        stream.write_all(chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    let fits = shopify_request("orders/create", SHOP, vec![b'y'; 1024], SHOPIFY_SECRET.as_bytes(), "big-2", now());
    assert_eq!(s.send_json(&fits).await.0, 200, "exactly at the limit is fine");
    let (_, rej) = s.get("/api/v1/rejections").await;
    let n =
        rej["counts"].as_array().unwrap().iter().find(|c| c["cause"] == "payload_too_large").unwrap()["count"].clone();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let s = TestServer::start().await;
    assert_eq!(s.get("/healthz").await.1["status"], "ok");
    assert_eq!(s.get("/readyz").await.1["status"], "ready");
    let (_, v) = s.get("/version").await;
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(!v["git_sha"].as_str().unwrap().is_empty());
    let docs = s.client.get(s.url("/api/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let r = s.client.get(s.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");

    let icon = s.client.get(s.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    let etag = icon.headers()["etag"].to_str().unwrap().to_owned();
    assert!(icon.text().await.unwrap().starts_with("<svg"));
    let again = s.client.get(s.url("/assets/favicon.svg")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304, "an unchanged asset costs a revalidation only");
    assert_problem(&s.get("/assets/nope.css").await, 404, "not_found");
}

#[tokio::test]
async fn no_secret_reaches_the_disk_in_plaintext() {
    const TOKEN: &str = "plaintext-zoho-token-that-must-never-hit-the-disk";
    const WHSEC: &str = "whsec_cGxhaW50ZXh0LXN0YW5kYXJkLXNlY3JldC1vbi1kaXNr";
    let s = TestServer::start().await;
    let (st, _) = s
        .post(
            "/api/v1/subscriptions",
            json!({"source": "zoho", "topic": "t", "account": "a", "name": "z", "secret": TOKEN}),
        )
        .await;
    assert_eq!(st, 201);
    let (st, _) = s
        .post(
            "/api/v1/subscriptions",
            json!({"source": "standard", "topic": "t", "account": "a", "name": "w", "secret": WHSEC}),
        )
        .await;
    assert_eq!(st, 201);
    // The token also travels in every workflow request's Authorization header; headers are stored.
    let req = hookplane::demo::factories::zoho_token_request("z", "Authorization", TOKEN, b"{\"a\":1}".to_vec());
    assert_eq!(s.send_json(&req).await.0, 200);
    let dir = s.stop().await;
    let mut files = vec![dir.path().to_path_buf()];
    let mut scanned = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        scanned += bytes.len();
        for secret in [TOKEN, WHSEC, &WHSEC[6..]] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} found in {}", p.display());
        }
    }
    assert!(scanned > 0);
}

#[tokio::test]
async fn declared_subscriptions_are_applied_at_start_and_survive_restarts() {
    let toml = r#"
[[subscriptions]]
name = "zoho-leads"
source = "zoho"
topic = "Leads.all"
account = "org-5"
channel_id = "5001"
secret_env = "LEADS_TOKEN"
destination_url = "http://127.0.0.1:9/sync"
"#;
    let opts = || Options {
        env: env(&[("LEADS_TOKEN", "declared-token")]),
        config_toml: Some(toml.to_owned()),
        ..Options::default()
    };
    let s = TestServer::start_with(opts()).await;
    let mut f = Factory::new(13);
    let (st, stored) = s
        .send_json(&zoho_channel_request(f.zoho_notification("Leads", "insert", "5001", "declared-token", now())))
        .await;
    assert_eq!(st, 200, "{stored}");
    let (_, sub) = s.get("/api/v1/subscriptions/zoho-leads").await;
    assert_eq!(sub["origin"], "config");
    assert_eq!(sub["destination_url"], "http://127.0.0.1:9/sync");
    // The file is where it changes: every start applies it again.
    let got = s.patch("/api/v1/subscriptions/zoho-leads", json!({ "destination_url": null })).await;
    assert_problem(&got, 409, "conflict");
    assert!(got.1["detail"].as_str().unwrap().contains("configuration file"), "{}", got.1);
    let id = sub["id"].clone();
    let dir = s.stop().await;

    let s = TestServer::start_with(Options { dir: Some(dir), ..opts() }).await;
    let (_, sub) = s.get("/api/v1/subscriptions/zoho-leads").await;
    assert_eq!(sub["id"], id, "the same subscription, not a new one");
    assert_eq!(s.all_deliveries("").await.len(), 1);
    let (_, d) = s.get(&format!("/api/v1/deliveries/{}", stored["delivery_id"].as_str().unwrap())).await;
    assert_ne!(d["status"], "stored", "it is forwarded, not kept: {d}");
}
