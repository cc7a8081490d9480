//! Full-text payload search over HTTP: words, phrases, JSON paths, filters, pagination, malformed queries,
//! and the index rebuilt from storage when it is deleted or damaged.

use hookplane::demo::factories::shopify_request;
use serde_json::{Value, json};

use crate::support::*;

const SHOP: &str = "search-shop.myshopify.com";

fn order(number: u64, email: &str, note: &str) -> Vec<u8> {
    json!({"id": 5_000 + number, "order_number": number, "note": note,
           "customer": {"email": email, "first_name": "Jon"}, "line_items": [{"sku": format!("SKU-{number}")}]})
    .to_string()
    .into_bytes()
}

async fn send(s: &TestServer, topic: &str, body: Vec<u8>, id: &str) -> String {
    let req = shopify_request(topic, SHOP, body, SHOPIFY_SECRET.as_bytes(), id, now());
    let (st, b) = s.send_json(&req).await;
    assert_eq!(st, 200, "{b}");
    b["delivery_id"].as_str().unwrap().to_owned()
}

fn ids(page: &Value) -> Vec<&str> {
    page["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect()
}

async fn three_orders(s: &TestServer) -> Vec<String> {
    vec![
        send(s, "orders/create", order(1042, "jon@example.com", "gift wrap please"), "s-1").await,
        send(s, "orders/create", order(1043, "ana@example.com", "leave at the door"), "s-2").await,
        send(s, "orders/paid", order(1044, "jon@example.org", "gift card inside"), "s-3").await,
    ]
}

#[tokio::test]
async fn words_phrases_paths_and_filters_find_the_right_deliveries() {
    let s = TestServer::start().await;
    let sent = three_orders(&s).await;

    let page = searched(&s, "q=gift", 2).await;
    assert_eq!(ids(&page), [sent[2].as_str(), sent[0].as_str()], "newest first");
    let m = &page["items"][1]["match"];
    let fragment = m["fragment"].as_str().unwrap();
    let [start, end] = [0, 1].map(|i| m["highlights"][0][i].as_u64().unwrap() as usize);
    assert_eq!(&fragment[start..end], "gift", "{m}");

    assert_eq!(ids(&searched(&s, "q=%22wrap%20please%22", 1).await), [sent[0].as_str()], "a phrase");
    assert_eq!(ids(&searched(&s, "q=%22please%20wrap%22", 0).await), Vec::<&str>::new(), "word order counts");
    let by_email = searched(&s, "q=customer.email:%22jon@example.com%22", 1).await;
    assert_eq!(ids(&by_email), [sent[0].as_str()], "a JSON path matches that value only");
    // Its match is the fragment around the value, with the value highlighted as sent.
    let m = &by_email["items"][0]["match"];
    let fragment = m["fragment"].as_str().unwrap();
    let [start, end] = [0, 1].map(|i| m["highlights"][0][i].as_u64().unwrap() as usize);
    assert_eq!(&fragment[start..end], "jon@example.com", "{m}");
    let upper = searched(&s, "q=line_items.sku:sku-1043", 1).await;
    let m = &upper["items"][0]["match"];
    let [start, end] = [0, 1].map(|i| m["highlights"][0][i].as_u64().unwrap() as usize);
    assert_eq!(&m["fragment"].as_str().unwrap()[start..end], "SKU-1043", "in the case it was sent: {m}");
    // A path matches a whole value, whatever its case; words inside values are found without a path.
    assert_eq!(ids(&searched(&s, "q=customer.email:JON@example.COM", 1).await), [sent[0].as_str()]);
    assert_eq!(ids(&searched(&s, "q=line_items.sku:sku-1043", 1).await), [sent[1].as_str()]);
    searched(&s, "q=customer.email:jon", 0).await;
    assert_eq!(ids(&searched(&s, "q=note:%22gift%20wrap%20please%22", 1).await), [sent[0].as_str()]);
    assert_eq!(ids(&searched(&s, "q=1043", 1).await), [sent[1].as_str()], "numbers in the body");
    assert_eq!(ids(&searched(&s, "q=gift%20door", 0).await).len(), 0, "all words must match");
    assert_eq!(ids(&searched(&s, "q=gift%20OR%20door", 3).await).len(), 3);
    assert_eq!(ids(&searched(&s, "q=gift%20-card", 1).await), [sent[0].as_str()]);

    // Filters combine with the text.
    assert_eq!(ids(&searched(&s, "q=gift&topic=orders/paid", 1).await), [sent[2].as_str()]);
    searched(&s, "q=gift&source=zoho", 0).await;
    searched(&s, "q=gift&status=stored", 2).await;
    searched(&s, "q=gift&status=failed", 0).await;
    searched(&s, &format!("q=gift&account={SHOP}"), 2).await;
    searched(&s, "q=gift&from=2999-01-01T00:00:00Z", 0).await;

    // Pages of one, following the cursor.
    let first = searched(&s, "q=example&limit=1", 1).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = searched(&s, &format!("q=example&limit=1&cursor={cursor}"), 1).await;
    let third = searched(&s, &format!("q=example&limit=1&cursor={}", second["next_cursor"].as_str().unwrap()), 1).await;
    assert_eq!(third["next_cursor"], Value::Null);
    let walked: Vec<&str> = [&first, &second, &third].iter().flat_map(|p| ids(p)).collect();
    assert_eq!(walked, sent.iter().rev().map(String::as_str).collect::<Vec<_>>());

    // The dashboard payload searches the same way.
    let (_, dash) = s.get("/api/v1/dashboard?q=gift&limit=1").await;
    let (_, list) = s.get("/api/v1/deliveries?q=gift&limit=1").await;
    assert_eq!(dash["deliveries"], list);
}

#[tokio::test]
async fn malformed_queries_are_a_400_that_says_what_is_wrong() {
    let s = TestServer::start().await;
    three_orders(&s).await;
    for bad in ["q=(gift", "q=%22unterminated", "q=note:[a%20TO"] {
        let got = s.get(&format!("/api/v1/deliveries?{bad}")).await;
        assert_problem(&got, 400, "invalid_query");
        let dash = s.get(&format!("/api/v1/dashboard?{bad}")).await;
        assert_problem(&dash, 400, "invalid_query");
    }
    let long = "a".repeat(1025);
    let got = s.get(&format!("/api/v1/deliveries?q={long}")).await;
    assert_problem(&got, 400, "invalid_query");
    assert!(got.1["detail"].as_str().unwrap().contains("1024"));
    // An empty query is no search at all.
    let (st, page) = s.get("/api/v1/deliveries?q=%20").await;
    assert_eq!((st.as_u16(), page["items"].as_array().unwrap().len()), (200, 3));
}

#[tokio::test]
async fn a_deleted_or_damaged_index_is_rebuilt_from_storage() {
    let s = TestServer::start().await;
    let sent = three_orders(&s).await;
    searched(&s, "q=example", 3).await;
    let dir = s.stop().await;

    std::fs::remove_dir_all(dir.path().join("data/search")).unwrap();
    let s = TestServer::start_with(Options { dir: Some(dir), ..Options::default() }).await;
    assert_eq!(ids(&searched(&s, "q=example", 3).await), sent.iter().rev().map(String::as_str).collect::<Vec<_>>());
    let dir = s.stop().await;

    // Damage: the index's own metadata is garbage.
    std::fs::write(dir.path().join("data/search/meta.json"), b"{ not json").unwrap();
    let s = TestServer::start_with(Options { dir: Some(dir), ..Options::default() }).await;
    searched(&s, "q=example", 3).await;
    searched(&s, "q=customer.email:%22ana@example.com%22", 1).await;
}

#[tokio::test]
async fn indexing_waits_while_ingest_is_saturated_and_catches_up_after() {
    // Every commit counts as large; after four in a row ingest is saturated, and it "calms down" only after
    // a minute: nothing more is indexed.
    let saturated = env(&[
        ("HOOKPLANE_SEARCH__DEFER_BATCH", "1"),
        ("HOOKPLANE_SEARCH__DEFER_BUSY_PERCENT", "0"),
        ("HOOKPLANE_SEARCH__DEFER_CALM_MS", "60000"),
    ]);
    let s = TestServer::start_with(Options { env: saturated, ..Options::default() }).await;
    // The indexer's first catch-up from storage indexes whatever is stored, saturated or not: it must be
    // over (a delivery indexed as it arrives says so) before the deferral is watched for.
    send(&s, "orders/create", order(99, "ready@up.test", "indexer readiness"), "ready").await;
    searched(&s, "q=readiness", 1).await;
    for n in 0..4 {
        send(&s, "orders/create", order(n, "warm@up.test", "warming up"), &format!("w-{n}")).await;
    }
    three_orders(&s).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, page) = s.get("/api/v1/deliveries?q=example").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "indexing is deferred: {page}");
    // Stopped while deferred: nothing is lost, the next start catches up from storage.
    let dir = s.stop().await;
    let s = TestServer::start_with(Options { dir: Some(dir), ..Options::default() }).await;
    searched(&s, "q=example", 3).await;
    drop(s);

    // A short calm: the deferred deliveries are indexed from storage once commits are small again.
    let calm = env(&[
        ("HOOKPLANE_SEARCH__DEFER_BATCH", "1"),
        ("HOOKPLANE_SEARCH__DEFER_BUSY_PERCENT", "0"),
        ("HOOKPLANE_SEARCH__DEFER_CALM_MS", "100"),
    ]);
    let s = TestServer::start_with(Options { env: calm, ..Options::default() }).await;
    for n in 0..4 {
        send(&s, "orders/create", order(n, "warm@up.test", "warming up"), &format!("w-{n}")).await;
    }
    three_orders(&s).await;
    searched(&s, "q=example", 3).await;
    searched(&s, "q=customer.email:%22ana@example.com%22", 1).await;
}

#[tokio::test]
async fn deliveries_beyond_what_the_indexer_may_hold_in_memory_are_indexed_from_storage() {
    // Each payload is larger than the indexer may hold queued, so every one is left in storage and indexed
    // from there.
    let s = TestServer::start_with(Options {
        env: env(&[("HOOKPLANE_SEARCH__MAX_QUEUED_KIB", "1")]),
        ..Options::default()
    })
    .await;
    // Digits that do not compress: about 10 KB of them stay several KiB stored, well over the bound.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: String = (0..2000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("{:x}", x % 0xffff)
        })
        .collect::<Vec<_>>()
        .join(" ");
    for n in 0..3 {
        send(&s, "orders/create", order(n, "big@example.com", &format!("overflow {noise}")), &format!("b-{n}")).await;
    }
    searched(&s, "q=overflow", 3).await;
    searched(&s, "q=customer.email:%22big@example.com%22", 3).await;
}

#[tokio::test]
async fn keys_are_not_words_and_path_values_are_whole_up_to_64_bytes() {
    let s = TestServer::start().await;
    let value = |n: usize| format!("v{}", "x".repeat(n - 1));
    let body = json!({"gift_card": false, "note": "a gift for mom", "ref64": value(64), "ref65": value(65)});
    let sent = send(&s, "orders/create", body.to_string().into_bytes(), "k-1").await;

    // The key `gift_card` is not a word; the note's value is, and its match shows the value.
    let page = searched(&s, "q=gift", 1).await;
    assert_eq!(ids(&page), [sent.as_str()]);
    let m = &page["items"][0]["match"];
    let fragment = m["fragment"].as_str().unwrap();
    let [start, end] = [0, 1].map(|i| m["highlights"][0][i].as_u64().unwrap() as usize);
    assert_eq!(&fragment[start..end], "gift", "{m}");
    assert!(fragment[..start].ends_with("\"a "), "the value's word, not the key's: {m}");
    searched(&s, "q=card", 0).await;

    assert_eq!(ids(&searched(&s, &format!("q=ref64:{}", value(64)), 1).await), [sent.as_str()], "64 bytes: whole");
    let (long, short) = (value(65), value(64));
    for q in [format!("ref65:{long}"), format!("note:gift AND -ref65:{long}"), format!("ref65: IN [{short} {long}]")] {
        let (status, problem) = s.get(&format!("/api/v1/deliveries?q={}", q.replace(' ', "%20"))).await;
        assert_problem(&(status, problem.clone()), 400, "invalid_query");
        let detail = "`ref65`: a path query matches whole values of up to 64 bytes, and this one is 65; search its \
                      words without the path";
        assert_eq!(problem["detail"], detail, "{q}");
    }
}
