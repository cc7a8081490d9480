//! Version drift on the manual clock: a local destination that names its version in each answer makes the
//! deploy history; two versions side by side raise the `version_drift` banner and it clears once one is
//! left; announced deploys make a destination more than one deploy behind drift; a version URL is polled.

use std::time::Duration;

use poem::listener::TcpAcceptor;
use poem::{EndpointExt, Route, Server, handler};
use serde_json::{Value, json};

use crate::queue::{Answer, Destination, deliver, forwarding, server, until};
use crate::support::*;

const HEADER: &str = "X-Service-Version";
const MINUTE: i64 = 60_000;

fn drift(dashboard: &Value) -> Vec<Value> {
    dashboard["banners"].as_array().unwrap().iter().filter(|b| b["code"] == "version_drift").cloned().collect()
}

async fn delivered(s: &TestServer, n: u64) {
    let id = deliver(s, "orders/create", n).await;
    until(s, &id, "status", json!("succeeded")).await;
}

#[tokio::test]
async fn a_destination_switching_versions_raises_the_drift_banner_and_clears_it() {
    let dest = Destination::start(&[
        Answer::With(200, HEADER, "1.4.0"),
        Answer::With(200, HEADER, "1.5.0"),
        Answer::With(200, HEADER, "1.4.0"),
        Answer::With(200, HEADER, "1.5.0"),
        Answer::With(200, HEADER, "1.5.0"),
        Answer::With(200, HEADER, "1.7.0"),
    ])
    .await;
    let s = server("60", &[("HOOKPLANE_DRIFT__GRACE_MINUTES", "0")]).await;
    let sub = forwarding(&s, "orders/create", &dest.url).await;
    let service = dest.url.trim_start_matches("http://").trim_end_matches("/hooks").to_owned();
    delivered(&s, 1).await;
    let (_, d) = s.get("/api/v1/dashboard").await;
    assert_eq!(drift(&d), Vec::<Value>::new(), "one version: {d}");

    // A second instance answers 1.5.0 while the first still answers 1.4.0.
    s.clock.advance_millis(1_000);
    delivered(&s, 2).await;
    s.clock.advance_millis(1_000);
    delivered(&s, 3).await;
    let (_, d) = s.get("/api/v1/dashboard").await;
    let banners = drift(&d);
    assert_eq!(banners.len(), 1, "{d}");
    assert_eq!(banners[0]["subscription_id"], sub.as_str());
    assert!(banners[0]["rule"].is_null(), "a warning, not an alert rule: {}", banners[0]);
    let message = banners[0]["message"].as_str().unwrap();
    assert!(message.contains(&service) && message.contains("1.5.0 and 1.4.0 versions at once"), "{message}");
    assert!(banners[0]["runbook_url"].as_str().unwrap().ends_with("#version_drift"));
    let page = Browser::new(&s).send(s.client.get(s.url("/dashboard/webhooks")).bearer_auth(ADMIN_TOKEN)).await;
    assert!(page.body.contains("versions drift"), "{}", page.body);

    // 1.4.0 stops answering: past the live window only 1.5.0 is left, and the banner clears.
    s.clock.advance_millis(6 * MINUTE);
    delivered(&s, 4).await;
    let (_, d) = s.get("/api/v1/dashboard").await;
    assert_eq!(drift(&d), Vec::<Value>::new(), "{d}");

    // The pipeline deploys 1.6.0 then 1.7.0; the destination still answers 1.5.0: two deploys behind.
    for version in ["1.6.0", "1.7.0"] {
        let (st, made) = s.post("/api/v1/deploys", json!({ "service": service, "version": version })).await;
        assert_eq!(st, 201, "{made}");
        assert_eq!(made["subscriptions"].as_array().map(Vec::len), Some(1), "its one subscription: {made}");
        s.clock.advance_millis(1_000);
    }
    delivered(&s, 5).await;
    let (_, d) = s.get("/api/v1/dashboard").await;
    let banners = drift(&d);
    assert_eq!(banners.len(), 1, "{d}");
    let message = banners[0]["message"].as_str().unwrap();
    assert!(
        message.contains("still answers with 1.5.0, more than one deploy behind: 1.7.0 was announced, and 1.6.0"),
        "{message}"
    );

    // It catches up: once 1.5.0 is past the live window, 1.7.0 alone answers.
    s.clock.advance_millis(6 * MINUTE);
    delivered(&s, 6).await;
    let (_, d) = s.get("/api/v1/dashboard").await;
    assert_eq!(drift(&d), Vec::<Value>::new(), "{d}");

    // The deploy history: each version with when it was first and last seen, and the announcements.
    let (_, list) = s.get("/api/v1/deploys").await;
    let mine = &list[0];
    assert_eq!((mine["service"].as_str(), mine["version_header"].as_str()), (Some(service.as_str()), Some(HEADER)));
    let versions: Vec<&str> =
        mine["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["1.7.0", "1.5.0", "1.4.0"], "most recently seen first: {mine}");
    let v14 = &mine["versions"][2];
    assert_ne!(v14["first_seen"], v14["last_seen"], "1.4.0 answered twice: {v14}");
    assert_eq!(mine["announced"][0]["version"], "1.7.0");
    assert_eq!(mine["announced"][0]["announced_by"], "admin-token");
    let (_, attempts) = s.get(&format!("/api/v1/deliveries/{}/attempts", deliver_id(&s, 6).await)).await;
    assert_eq!(attempts[0]["version"], "1.7.0", "{attempts}");
    let (_, audit) = s.get("/api/v1/audit?action=deploy_announced").await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(2), "{audit}");
    let (_, settings) = s.get("/api/v1/settings").await;
    assert_eq!(settings["destinations"][0]["versions"][0]["version"], "1.7.0", "{settings}");

    for (bad, why) in [
        (json!({ "service": service, "version": " 1.8" }), "surrounding spaces"),
        (json!({ "service": "", "version": "1.8" }), "`service`"),
        (json!({ "service": service, "version": "x".repeat(65) }), "64 printable"),
    ] {
        let got = s.post("/api/v1/deploys", bad).await;
        assert!(got.1["detail"].as_str().unwrap_or("").contains(why), "{}", got.1);
        assert_problem(&got, 400, "invalid_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_announces_deploys_from_the_command_line() {
    let s = server("60", &[]).await;
    let args = |rest: &[&str]| -> Vec<String> {
        rest.iter().map(|a| (*a).to_owned()).chain(["--url".to_owned(), s.base.clone()]).collect()
    };
    let (ok, out, err) =
        crate::handshakes::cli(args(&["deploys", "announce", "--service", "orders", "--version", "2.0.0"]), "").await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"version\": \"2.0.0\"") || out.contains("\"version\":\"2.0.0\""), "{out}");
    let (ok, out, err) =
        crate::handshakes::cli(args(&["deploys", "announce", "--service", "orders", "--version", " 2.0.1"]), "").await;
    assert!(!ok && err.contains("without surrounding spaces"), "{out}{err}");
    let (_, audit) = s.get("/api/v1/audit?action=deploy_announced&target_id=orders").await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "only the good one: {audit}");
    let (ok, out, err) = crate::handshakes::cli(args(&["deploys", "list"]), "").await;
    assert!(ok && out.trim_start().starts_with('['), "{out}{err}");
}

/// The id of delivery `n` sent by `deliver`, found by its provider delivery id.
async fn deliver_id(s: &TestServer, n: u64) -> String {
    let all = s.all_deliveries("topic=orders/create").await;
    let want = format!("wh-orders/create-{n}");
    all.iter().find(|d| d["provider_delivery_id"] == want.as_str()).unwrap()["id"].as_str().unwrap().to_owned()
}

#[handler]
fn version_answer() -> &'static str {
    r#"{"version":"3.1.0","commit":"abc123"}"#
}

#[tokio::test]
async fn a_version_url_is_asked_and_versions_settings_are_checked() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/version", listener.local_addr().unwrap());
    let app = Route::new().at("/version", poem::get(version_answer)).data(());
    tokio::spawn(Server::new_with_acceptor(TcpAcceptor::from_tokio(listener).unwrap()).run(app));
    let dest = Destination::start(&[]).await;
    let s = server("60", &[]).await;
    let sub = forwarding(&s, "orders/create", &dest.url).await;
    for (bad, field) in [
        (json!({ "header": "X Version" }), "`header`"),
        (json!({ "url": "ftp://example.com/v" }), "`url`"),
        (json!({ "service": "a\u{7}b" }), "`service`"),
        (json!({ "nonsense": 1 }), "nonsense"),
    ] {
        let got = s.put(&format!("/api/v1/subscriptions/{sub}/versions"), bad).await;
        assert!(got.1["detail"].as_str().unwrap_or("").contains(field), "{}", got.1);
        assert_eq!(got.0, 400);
    }
    let (st, set) =
        s.put(&format!("/api/v1/subscriptions/{sub}/versions"), json!({ "url": url, "service": "orders" })).await;
    assert_eq!(st, 200, "{set}");
    let mut last = Value::Null;
    for _ in 0..200 {
        let (_, list) = s.get("/api/v1/deploys").await;
        if list[0]["versions"][0]["version"] == "3.1.0" {
            assert_eq!(list[0]["service"], "orders");
            assert_eq!(list[0]["version_url"], url.as_str());
            let (_, audit) = s.get(&format!("/api/v1/audit?action=subscription_updated&target_id={sub}")).await;
            assert!(audit["items"][0]["changes"].to_string().contains("version_url"), "{audit}");
            return;
        }
        last = list;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the version URL was never asked: {last}");
}
