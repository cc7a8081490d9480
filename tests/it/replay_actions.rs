//! The dashboard's replay, pause and resume actions, and their contract with the API: the script's request
//! gets the API's own answers (schema, status, problem `code`, `Retry-After`), and without the script each
//! action redirects back with a banner.

use hookplane::domain::access::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::queue::{Destination, deliver, forwarding, post_as, until};
use crate::support::*;

async fn dashboard_server() -> TestServer {
    let vars = [("HOOKPLANE_DELIVERY__RETRY_DELAYS_SECONDS", "60"), ("HOOKPLANE_DELIVERY__POLL_INTERVAL_MS", "20")];
    with_store(Options { env: env(&vars), clock_at: Some(now()), ..Options::default() }, |db| {
        add_operator(db, "olga", Role::Operator);
        add_operator(db, "vic", Role::Viewer);
        add_operator(db, "ada", Role::Admin);
    })
    .await
}

async fn signed_in(s: &TestServer, who: &str) -> (Browser, String) {
    let mut b = Browser::new(s);
    assert_eq!(b.sign_in(who, PASSWORD).await.status, StatusCode::SEE_OTHER);
    let csrf = b.get("/dashboard/webhooks").await.csrf();
    (b, csrf)
}

/// The property names of a schema in the served OpenAPI document.
async fn schema_keys(s: &TestServer, name: &str) -> Vec<String> {
    let doc: Value =
        serde_json::from_str(&s.client.get(s.url("/api/openapi.json")).send().await.unwrap().text().await.unwrap())
            .unwrap();
    let mut keys: Vec<String> =
        doc["components"]["schemas"][name]["properties"].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// The dashboard's replay form, posted as the script posts it.
async fn replay_json(b: &mut Browser, csrf: &str, delivery: &str) -> Page {
    b.post_for_json("/dashboard/webhooks", &[("intent", "replay"), ("delivery", delivery), ("csrf", csrf)]).await
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn the_scripts_replay_gets_the_apis_answers() {
    let dest = Destination::start(&[]).await;
    let s = dashboard_server().await;
    forwarding(&s, "orders/create", &dest.url).await;
    let a = deliver(&s, "orders/create", 1).await;
    let b = deliver(&s, "orders/create", 2).await;
    let kept = deliver(&s, "carts/update", 3).await;
    until(&s, &a, "status", json!("succeeded")).await;
    until(&s, &b, "status", json!("succeeded")).await;
    let (mut olga, csrf) = signed_in(&s, "olga").await;

    // Accepted: 202 with a ReplayOut, exactly the API's schema.
    let made = replay_json(&mut olga, &csrf, &a).await;
    assert_eq!(made.status, 202, "{}", made.body);
    let body: Value = serde_json::from_str(&made.body).unwrap();
    assert_eq!(keys(&body), schema_keys(&s, "ReplayOut").await);
    assert_eq!(
        (body["delivery_id"].as_str(), body["requested_by"].as_str()),
        (Some(a.as_str()), Some("operator:olga"))
    );
    until(&s, &a, "attempt_count", json!(2)).await;

    // Refused by the per-delivery limit: the same status, problem code and Retry-After as the API.
    let ours = replay_json(&mut olga, &csrf, &a).await;
    let (api_status, api_body, api_retry) = post_as(&s, ADMIN_TOKEN, &format!("/api/v1/deliveries/{a}/replay")).await;
    let ours_body: Value = serde_json::from_str(&ours.body).unwrap();
    assert_eq!((ours.status, api_status), (StatusCode::TOO_MANY_REQUESTS, StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(ours_body["code"], api_body["code"]);
    assert_eq!(ours_body["code"], "replay_limited_per_delivery");
    assert_eq!(ours.headers.get("retry-after").map(|v| v.to_str().unwrap().to_owned()), api_retry);
    assert_eq!(ours.headers.get("content-type").unwrap(), "application/problem+json");
    assert_eq!(keys(&ours_body), schema_keys(&s, "Problem").await);

    // Unknown, malformed and unreplayable deliveries propagate the same way.
    for (d, status, code) in [
        ("dlv_01J0000000000000000000000A", 404, "not_found"),
        ("nonsense", 400, "invalid_request"),
        (kept.as_str(), 409, "not_replayable"),
    ] {
        let ours = replay_json(&mut olga, &csrf, d).await;
        let api = post_as(&s, ADMIN_TOKEN, &format!("/api/v1/deliveries/{d}/replay")).await;
        let ours_body: Value = serde_json::from_str(&ours.body).unwrap();
        assert_eq!((ours.status.as_u16(), api.0.as_u16()), (status, status), "{d}: {}", ours.body);
        assert_eq!((ours_body["code"].as_str(), api.1["code"].as_str()), (Some(code), Some(code)));
    }

    // A viewer is refused before anything happens; a forged form changes nothing.
    let (mut vic, vic_csrf) = signed_in(&s, "vic").await;
    let refused =
        vic.post_for_json("/dashboard/webhooks", &[("intent", "replay"), ("delivery", &b), ("csrf", &vic_csrf)]).await;
    assert_eq!(refused.status, 403);
    let forged =
        olga.post_for_json("/dashboard/webhooks", &[("intent", "replay"), ("delivery", &b), ("csrf", "x")]).await;
    assert_eq!(forged.status, 403);
    let (_, audit) = s.get("/api/v1/audit?action=delivery_replayed").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "only the one replay that was made: {audit}");
}

#[tokio::test]
async fn without_the_script_actions_redirect_back_with_a_banner() {
    let dest = Destination::start(&[]).await;
    let s = dashboard_server().await;
    let sub = forwarding(&s, "orders/paid", &dest.url).await;
    let a = deliver(&s, "orders/paid", 1).await;
    until(&s, &a, "status", json!("succeeded")).await;
    let (mut olga, csrf) = signed_in(&s, "olga").await;

    // The delivery page lists the attempt and offers Replay to an operator.
    let view = format!("/dashboard/webhooks/deliveries/{a}");
    let page = olga.get(&view).await;
    assert!(page.body.contains("data-attempt=\"1\""), "{}", page.body);
    assert!(page.body.contains("data-replay"), "an operator sees Replay");
    let (mut vic, _) = signed_in(&s, "vic").await;
    let theirs = vic.get(&view).await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(theirs.body.contains("data-attempt=\"1\"") && !theirs.body.contains("data-replay"), "a viewer does not");

    let replayed = olga
        .post("/dashboard/webhooks", &[("intent", "replay"), ("delivery", &a), ("return_to", &view), ("csrf", &csrf)])
        .await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER);
    assert_eq!(replayed.location(), format!("{view}?notice=replayed&target={a}"));
    let page = olga.get(replayed.location()).await;
    assert!(page.body.contains("Replay queued"), "{}", page.body);
    until(&s, &a, "attempt_count", json!(2)).await;
    let page = olga.get(&view).await;
    assert!(page.body.contains("data-attempt=\"2\"") && page.body.contains("operator:olga"), "{}", page.body);

    // The limit, as a warning banner on the page the form was on.
    let back = "/dashboard/webhooks?status=succeeded";
    let limited = olga
        .post("/dashboard/webhooks", &[("intent", "replay"), ("delivery", &a), ("return_to", back), ("csrf", &csrf)])
        .await;
    assert_eq!(limited.location(), format!("{back}&notice=replay_limited_per_delivery&target={a}&count=300"));
    let page = olga.get(limited.location()).await;
    assert!(page.body.contains("banner-warning") && page.body.contains("Replay limit reached"), "{}", page.body);
    // A return address off this site is not followed.
    let away = olga
        .post(
            "/dashboard/webhooks",
            &[("intent", "pause"), ("subscription", &sub), ("return_to", "//evil.example/"), ("csrf", &csrf)],
        )
        .await;
    assert!(away.location().starts_with("/dashboard/webhooks?notice=paused"), "{}", away.location());

    // Pause and resume from the subscription's panel; Replay latest replays its newest delivery.
    let page = olga.get(away.location()).await;
    assert!(page.body.contains("Destination paused") && page.body.contains(">Resume<"), "{}", page.body);
    let held = deliver(&s, "orders/paid", 2).await;
    let resumed = olga
        .post(
            "/dashboard/webhooks",
            &[("intent", "resume"), ("subscription", &sub), ("return_to", "/dashboard/webhooks"), ("csrf", &csrf)],
        )
        .await;
    assert!(
        resumed.location().contains("notice=resumed") && resumed.location().ends_with("count=1"),
        "{}",
        resumed.location()
    );
    until(&s, &held, "status", json!("succeeded")).await;
    let latest = olga
        .post(
            "/dashboard/webhooks",
            &[
                ("intent", "replay_latest"),
                ("subscription", &sub),
                ("return_to", "/dashboard/webhooks"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(latest.location(), format!("/dashboard/webhooks?notice=replayed&target={held}"));
    until(&s, &held, "attempt_count", json!(2)).await;
}

#[tokio::test]
async fn admins_count_start_and_follow_bulk_replays_on_their_page() {
    let dest = Destination::start(&[]).await;
    let s = dashboard_server().await;
    let sub = forwarding(&s, "orders/updated", &dest.url).await;
    for n in 0..2 {
        let id = deliver(&s, "orders/updated", n).await;
        until(&s, &id, "status", json!("succeeded")).await;
    }
    let (mut ada, csrf) = signed_in(&s, "ada").await;
    let filtered = ada.get(&format!("/dashboard/webhooks?subscription={sub}")).await;
    assert!(
        filtered.body.contains(&format!("/dashboard/replays?subscription={sub}")),
        "the webhooks page links its filters"
    );

    let page = ada.get(&format!("/dashboard/replays?subscription={sub}")).await;
    assert!(
        page.body.contains("Replay them") && page.body.contains(&format!("value=\"{sub}\" selected")),
        "{}",
        page.body
    );
    let counted = ada.post("/dashboard/replays", &[("intent", "count"), ("subscription", &sub), ("csrf", &csrf)]).await;
    assert_eq!(counted.status, StatusCode::SEE_OTHER);
    assert!(counted.location().ends_with("notice=bulk_counted&target=&count=2"), "{}", counted.location());
    assert!(ada.get(counted.location()).await.body.contains("2 deliveries match"));
    assert_eq!(dest.received().len(), 2, "counting replays nothing");

    let started = ada
        .post(
            "/dashboard/replays",
            &[("intent", "start"), ("subscription", &sub), ("rate_per_second", "200"), ("csrf", &csrf)],
        )
        .await;
    assert!(
        started.location().starts_with("/dashboard/replays?notice=bulk_started&target=blk_"),
        "{}",
        started.location()
    );
    dest.wait_for(4).await;
    let page = ada.get(started.location()).await;
    assert!(page.body.contains("Bulk replay started") && page.body.contains("data-bulk="), "{}", page.body);

    // Operators and viewers follow them; only admins start or cancel.
    let (mut olga, olga_csrf) = signed_in(&s, "olga").await;
    let theirs = olga.get("/dashboard/replays").await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(!theirs.body.contains("Replay them"));
    let refused =
        olga.post("/dashboard/replays", &[("intent", "count"), ("subscription", &sub), ("csrf", &olga_csrf)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let everything = ada.post("/dashboard/replays", &[("intent", "count"), ("csrf", &csrf)]).await;
    assert_eq!(everything.status, StatusCode::BAD_REQUEST, "a bulk replay of everything is refused");
}
