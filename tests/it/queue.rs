//! The processing queue against local destinations: forwarding, retries on the schedule (manual clock),
//! failures and their classes, 410 pausing, pause and resume, a crash mid-attempt, and replays with their
//! rate limits.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookplane::connectors::{shopify, standard};
use hookplane::demo::factories::shopify_request;
use hookplane::domain::Clock as _;
use poem::listener::TcpAcceptor;
use poem::web::Data;
use poem::{EndpointExt, Request, Response, Route, Server, handler};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const SHOP: &str = "queue-test.myshopify.com";

/// What a local destination answers, request by request; after the script, 200.
#[derive(Clone)]
pub(crate) enum Answer {
    Status(u16),
    /// A status with one header, e.g. `Retry-After`.
    With(u16, &'static str, &'static str),
    /// No answer, ever.
    Hang,
    /// Answers 200 after this long.
    Slow(Duration),
}

#[derive(Clone, Debug)]
pub(crate) struct Received {
    headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct DestState {
    script: Arc<Mutex<VecDeque<Answer>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

/// A processing service on 127.0.0.1 that records what reaches it.
pub(crate) struct Destination {
    pub(crate) url: String,
    state: DestState,
}

#[handler]
async fn receive(req: &Request, body: Vec<u8>, Data(state): Data<&DestState>) -> Response {
    let headers = req.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect();
    state.received.lock().unwrap().push(Received { headers, body });
    let answer = state.script.lock().unwrap().pop_front();
    match answer {
        None => Response::builder().status(poem::http::StatusCode::OK).body("ok"),
        Some(Answer::Status(s)) => Response::builder().status(code(s)).body(format!("answer {s}")),
        Some(Answer::With(s, k, v)) => Response::builder().status(code(s)).header(k, v).body(format!("answer {s}")),
        Some(Answer::Hang) => std::future::pending().await,
        Some(Answer::Slow(d)) => {
            tokio::time::sleep(d).await;
            Response::builder().status(poem::http::StatusCode::OK).body("slow ok")
        }
    }
}

fn code(s: u16) -> poem::http::StatusCode {
    poem::http::StatusCode::from_u16(s).unwrap()
}

impl Destination {
    pub(crate) async fn start(script: &[Answer]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let state = DestState::default();
        state.script.lock().unwrap().extend(script.iter().cloned());
        let app = Route::new().at("/hooks", poem::post(receive)).data(state.clone());
        let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        Self { url, state }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived. The bound only keeps a broken build from hanging the suite.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..600 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the destination received {} requests, not {n}", self.received().len());
    }
}

/// A server whose deliveries retry after `delays` seconds, with no jitter, on the manual clock.
pub(crate) async fn server(delays: &str, extra: &[(&str, &str)]) -> TestServer {
    let mut vars = vec![
        ("HOOKPLANE_DELIVERY__RETRY_DELAYS_SECONDS", delays),
        ("HOOKPLANE_DELIVERY__RETRY_JITTER_PERCENT", "0"),
        ("HOOKPLANE_DELIVERY__POLL_INTERVAL_MS", "20"),
    ];
    vars.extend_from_slice(extra);
    TestServer::start_with(Options { env: env(&vars), clock_at: Some(now()), ..Options::default() }).await
}

/// A Shopify subscription for `topic` that forwards to `url`; returns its id.
pub(crate) async fn forwarding(s: &TestServer, topic: &str, url: &str) -> String {
    let (st, made) = s
        .post(
            "/api/v1/subscriptions",
            json!({ "source": "shopify", "topic": topic, "account": SHOP, "destination_url": url }),
        )
        .await;
    assert_eq!(st, 201, "{made}");
    made["subscription"]["id"].as_str().unwrap().to_owned()
}

/// Sends a signed Shopify delivery for `topic`; returns its delivery id.
pub(crate) async fn deliver(s: &TestServer, topic: &str, n: u64) -> String {
    let body = format!(r#"{{"id":{n},"note":"order {n}"}}"#).into_bytes();
    let req = shopify_request(topic, SHOP, body, SHOPIFY_SECRET.as_bytes(), &format!("wh-{topic}-{n}"), s.clock.now());
    let (st, got) = s.send_json(&req).await;
    assert_eq!(st, 200, "{got}");
    got["delivery_id"].as_str().unwrap().to_owned()
}

/// Waits until the delivery's `field` is `want`.
pub(crate) async fn until(s: &TestServer, id: &str, field: &str, want: Value) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (st, d) = s.get(&format!("/api/v1/deliveries/{id}")).await;
        assert_eq!(st, 200, "{d}");
        if d[field] == want {
            return d;
        }
        last = d;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id}: `{field}` never became {want}: {last}");
}

pub(crate) async fn attempts(s: &TestServer, id: &str) -> Vec<Value> {
    let (st, list) = s.get(&format!("/api/v1/deliveries/{id}/attempts")).await;
    assert_eq!(st, 200, "{list}");
    list.as_array().unwrap().clone()
}

fn column<'a>(list: &'a [Value], field: &str) -> Vec<&'a Value> {
    list.iter().map(|a| &a[field]).collect()
}

pub(crate) async fn make_token(s: &TestServer, name: &str, role: &str) -> String {
    let (st, made) = s.post("/api/v1/tokens", json!({ "name": name, "role": role })).await;
    assert_eq!(st, 201, "{made}");
    made["secret"].as_str().unwrap().to_owned()
}

pub(crate) async fn post_as(s: &TestServer, token: &str, path: &str) -> (StatusCode, Value, Option<String>) {
    let resp = s.client.post(s.url(path)).bearer_auth(token).send().await.unwrap();
    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let (st, body) = json_of(resp).await;
    (st, body, retry_after)
}

#[tokio::test]
async fn a_delivery_reaches_its_destination_exactly_as_it_arrived_and_signed() {
    let dest = Destination::start(&[]).await;
    let s = server("60", &[]).await;
    let sub = forwarding(&s, "orders/create", &dest.url).await;
    let id = deliver(&s, "orders/create", 1).await;

    let got = dest.wait_for(1).await;
    let r = &got[0];
    assert_eq!(r.body, br#"{"id":1,"note":"order 1"}"#, "the exact stored body");
    // The provider's own signature still verifies at the receiver, with the app's secret.
    assert_eq!(r.header("x-shopify-hmac-sha256"), Some(shopify::sign(&r.body, SHOPIFY_SECRET.as_bytes()).as_str()));
    assert_eq!(r.header("x-shopify-topic"), Some("orders/create"));
    assert_eq!(r.header("x-hookplane-delivery-id"), Some(id.as_str()));
    assert_eq!(r.header("x-hookplane-attempt"), Some("1"));
    // Hookplane's own Standard Webhooks signature, with the destination's secret from the API.
    let (st, secret) = s.get(&format!("/api/v1/subscriptions/{sub}/destination-secret")).await;
    assert_eq!(st, 200, "{secret}");
    let key = standard::decode_secret(secret["secret"].as_str().unwrap()).unwrap();
    let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
    assert_eq!(r.header("webhook-id"), Some(id.as_str()));
    assert_eq!(r.header("webhook-signature"), Some(standard::sign(&id, ts, &r.body, &key).as_str()));

    let d = until(&s, &id, "status", json!("succeeded")).await;
    assert_eq!((d["attempt_count"].as_u64(), d["response_code"].as_u64()), (Some(1), Some(200)));
    let list = attempts(&s, &id).await;
    assert_eq!(column(&list, "initiated_by"), [&json!("provider")]);
    assert_eq!(column(&list, "next"), [&json!("delivered")]);
    assert_eq!(list[0]["excerpt"], "ok");
    let (_, sub) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(sub["consecutive_failures"], 0, "{sub}");
}

#[tokio::test]
async fn failed_attempts_retry_on_the_schedule_and_honour_retry_after() {
    let dest = Destination::start(&[Answer::Status(500), Answer::With(503, "retry-after", "7")]).await;
    let s = server("60,600", &[]).await;
    let sub = forwarding(&s, "orders/paid", &dest.url).await;
    let id = deliver(&s, "orders/paid", 1).await;

    let d = until(&s, &id, "attempt_count", json!(1)).await;
    assert_eq!((d["status"].as_str(), d["response_code"].as_u64()), (Some("retrying"), Some(500)));
    // Due in 60 s on the manual clock: 59 s later it is still waiting, at 60 s it goes.
    s.clock.advance_millis(59_000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(dest.received().len(), 1, "retried before its time");
    s.clock.advance_millis(1_000);
    let d = until(&s, &id, "attempt_count", json!(2)).await;
    assert_eq!(d["response_code"], 503);
    let (_, sub_now) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(sub_now["consecutive_failures"], 2, "{sub_now}");
    // The destination asked for 7 s, not the schedule's 600.
    s.clock.advance_millis(7_000);
    let d = until(&s, &id, "status", json!("succeeded")).await;
    assert_eq!(d["attempt_count"], 3);
    let list = attempts(&s, &id).await;
    assert_eq!(column(&list, "response_code"), [&json!(500), &json!(503), &json!(200)]);
    assert_eq!(column(&list, "next"), [&json!("retry"), &json!("retry"), &json!("delivered")]);
    assert_eq!(column(&list, "error_class"), [&json!("http"), &json!("http"), &Value::Null]);
    assert_eq!(
        dest.received().iter().map(|r| r.header("x-hookplane-attempt").unwrap()).collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    let (_, sub_now) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(sub_now["consecutive_failures"], 0, "a success ends the run of failures");
}

#[tokio::test]
async fn refused_connections_and_timeouts_are_classified_and_attempts_run_out() {
    let slow = Destination::start(&[Answer::Slow(Duration::from_secs(5))]).await;
    let refused = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/hooks", l.local_addr().unwrap())
    };
    // No waits: one attempt each. A one-second timeout.
    let s = server("", &[("HOOKPLANE_DELIVERY__TIMEOUT_SECONDS", "1")]).await;
    forwarding(&s, "orders/cancelled", &refused).await;
    let sub = forwarding(&s, "orders/updated", &slow.url).await;
    let a = deliver(&s, "orders/cancelled", 1).await;
    let b = deliver(&s, "orders/updated", 2).await;

    let d = until(&s, &a, "status", json!("failed")).await;
    assert!(d["response_code"].is_null());
    let list = attempts(&s, &a).await;
    assert_eq!(
        (column(&list, "error_class"), column(&list, "next")),
        (vec![&json!("connect")], vec![&json!("gave_up")])
    );
    until(&s, &b, "status", json!("failed")).await;
    let list = attempts(&s, &b).await;
    assert_eq!(list[0]["error_class"], "timeout", "{list:?}");
    let (_, sub) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(sub["consecutive_failures"], 1, "{sub}");
    let (_, failed) = s.get("/api/v1/deliveries?status=failed").await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 2, "listed among the failed: {failed}");
}

#[tokio::test]
async fn gone_pauses_the_destination_and_resume_sends_what_was_held_in_order() {
    let dest = Destination::start(&[Answer::Status(410)]).await;
    // One attempt at a time, so arrival order at the destination is send order.
    let s = server("60", &[("HOOKPLANE_DELIVERY__CONCURRENCY", "1")]).await;
    let sub = forwarding(&s, "products/update", &dest.url).await;
    let first = deliver(&s, "products/update", 1).await;
    until(&s, &first, "attempt_count", json!(1)).await;
    let (_, paused) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(paused["status"], "paused", "{paused}");
    assert_eq!(column(&attempts(&s, &first).await, "next"), [&json!("paused")]);
    let (_, audit) = s.get("/api/v1/audit?action=destination_paused").await;
    assert_eq!(audit["items"][0]["performed_by"], "system", "{audit}");

    // Paused: deliveries are still received and kept, and wait.
    let second = deliver(&s, "products/update", 2).await;
    let third = deliver(&s, "products/update", 3).await;
    let (_, d) = s.get(&format!("/api/v1/deliveries/{third}")).await;
    assert_eq!(d["status"], "queued");

    let viewer = make_token(&s, "watcher", "viewer").await;
    let (st, _, _) = post_as(&s, &viewer, &format!("/api/v1/subscriptions/{sub}/resume")).await;
    assert_eq!(st, 403, "viewers cannot resume");
    let (st, resumed) = s.post(&format!("/api/v1/subscriptions/{sub}/resume"), json!({})).await;
    assert_eq!(st, 200, "{resumed}");
    assert_eq!((resumed["released"].as_u64(), resumed["subscription"]["status"].as_str()), (Some(3), Some("active")));
    for id in [&first, &second, &third] {
        until(&s, id, "status", json!("succeeded")).await;
    }
    let bodies: Vec<Vec<u8>> = dest.received().into_iter().map(|r| r.body).collect();
    let expected: Vec<Vec<u8>> =
        [1, 1, 2, 3].iter().map(|n| format!(r#"{{"id":{n},"note":"order {n}"}}"#).into_bytes()).collect();
    assert_eq!(bodies, expected, "the 410'd delivery again, then the held ones in arrival order");

    // An operator pauses by hand; resume is audited with what it released.
    let (st, p) = s.post(&format!("/api/v1/subscriptions/{sub}/pause"), json!({})).await;
    assert_eq!((st, p["subscription"]["status"].as_str()), (StatusCode::OK, Some("paused")));
    let fourth = deliver(&s, "products/update", 4).await;
    s.post(&format!("/api/v1/subscriptions/{sub}/resume"), json!({})).await;
    until(&s, &fourth, "status", json!("succeeded")).await;
    let (_, audit) = s.get("/api/v1/audit?action=destination_resumed").await;
    assert_eq!(audit["items"][0]["performed_by"], "admin-token", "{audit}");
    assert_eq!(audit["items"][0]["changes"][1]["after"], "1", "{audit}");
}

#[tokio::test]
async fn an_attempt_cut_short_by_a_stop_is_made_again_after_restart_and_never_lost() {
    let dest = Destination::start(&[Answer::Hang]).await;
    let s = server("60", &[]).await;
    forwarding(&s, "orders/fulfilled", &dest.url).await;
    let id = deliver(&s, "orders/fulfilled", 1).await;
    dest.wait_for(1).await;
    // While its attempt waits for an answer, the delivery is `processing`, and listed as such.
    let (_, d) = s.get(&format!("/api/v1/deliveries/{id}")).await;
    assert_eq!(d["status"], "processing", "{d}");
    let (_, listed) = s.get("/api/v1/deliveries?status=processing").await;
    assert_eq!(listed["items"][0]["id"], json!(id), "{listed}");
    let (_, listed) = s.get("/api/v1/deliveries?status=queued").await;
    assert_eq!(listed["items"], json!([]), "{listed}");
    // Stopped while the destination has not answered: the attempt is abandoned after the grace period.
    let dir = s.stop().await;

    let s = TestServer::start_with(Options {
        env: env(&[("HOOKPLANE_DELIVERY__POLL_INTERVAL_MS", "20")]),
        dir: Some(dir),
        ..Options::default()
    })
    .await;
    let d = until(&s, &id, "status", json!("succeeded")).await;
    assert_eq!(d["attempt_count"], 2);
    assert_eq!(dest.received().len(), 2, "sent once more, not lost and not twice more");
    let list = attempts(&s, &id).await;
    assert!(
        list[0]["error"].as_str().unwrap().starts_with("Hookplane stopped before this attempt finished"),
        "{list:?}"
    );
    assert_eq!(list[1]["response_code"], 200);
}

#[tokio::test]
async fn replays_make_attempts_by_their_operator_within_their_limits() {
    let dest = Destination::start(&[]).await;
    let s = server("60", &[]).await;
    forwarding(&s, "orders/edited", &dest.url).await;
    let mut ids = Vec::new();
    for n in 0..12 {
        let id = deliver(&s, "orders/edited", n).await;
        until(&s, &id, "status", json!("succeeded")).await;
        ids.push(id);
    }
    let alice = make_token(&s, "alice", "operator").await;
    let viewer = make_token(&s, "vera", "viewer").await;

    let (st, made, _) = post_as(&s, &alice, &format!("/api/v1/deliveries/{}/replay", ids[0])).await;
    assert_eq!(st, 202, "{made}");
    assert_eq!((made["status"].as_str(), made["requested_by"].as_str()), (Some("queued"), Some("token:alice")));
    let d = until(&s, &ids[0], "attempt_count", json!(2)).await;
    assert_eq!(d["status"], "succeeded");
    let list = attempts(&s, &ids[0]).await;
    assert_eq!(column(&list, "initiated_by"), [&json!("provider"), &json!("token:alice")]);
    let sent = dest.received();
    assert_eq!(sent.iter().filter(|r| r.body == sent[0].body).count(), 2, "the same bytes again");

    // One per delivery per 5 minutes, for everyone.
    s.clock.advance_millis(60_000);
    let (st, refused, retry) = post_as(&s, &alice, &format!("/api/v1/deliveries/{}/replay", ids[0])).await;
    assert_problem(&(st, refused.clone()), 429, "replay_limited_per_delivery");
    assert_eq!(retry.as_deref(), Some("240"), "{refused}");
    let (st, refused, _) = s_post(&s, &format!("/api/v1/deliveries/{}/replay", ids[0])).await;
    assert_problem(&(st, refused), 429, "replay_limited_per_delivery");

    // Ten per operator per hour: alice's 2nd to 10th go, the 11th does not; someone else's still does.
    for id in &ids[1..10] {
        let (st, body, _) = post_as(&s, &alice, &format!("/webhooks/replay/{id}")).await;
        assert_eq!(st, 202, "{body}");
    }
    let (st, refused, retry) = post_as(&s, &alice, &format!("/api/v1/deliveries/{}/replay", ids[10])).await;
    assert_problem(&(st, refused.clone()), 429, "replay_limited_per_operator");
    assert_eq!(retry.as_deref(), Some("3540"), "an hour after her first, a minute ago: {refused}");
    let (st, _, _) = s_post(&s, &format!("/api/v1/deliveries/{}/replay", ids[10])).await;
    assert_eq!(st, 202);
    // Each replay made its one attempt, before the clock moves past the leases of any still running.
    for id in &ids[1..11] {
        until(&s, id, "attempt_count", json!(2)).await;
    }
    // Past the hour, alice may again.
    s.clock.advance_millis(3_540_000);
    let (st, _, _) = post_as(&s, &alice, &format!("/api/v1/deliveries/{}/replay", ids[11])).await;
    assert_eq!(st, 202);

    let (st, _, _) = post_as(&s, &viewer, &format!("/api/v1/deliveries/{}/replay", ids[11])).await;
    assert_eq!(st, 403, "viewers do not replay");
    let anonymous = s.client.post(s.url(&format!("/webhooks/replay/{}", ids[11]))).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let (_, audit) = s.get("/api/v1/audit?action=delivery_replayed&limit=100").await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 12, "every replay, and only those that were made");
    let signature = entries[0]["changes"].as_array().unwrap().iter().find(|c| c["field"] == "signature").unwrap();
    assert_eq!(signature["after"], "the provider's signature verified again", "{signature}");
    for id in &ids[1..11] {
        assert_eq!(attempts(&s, id).await.len(), 2, "{id}: one attempt from its provider, one replay");
    }
}

/// Shopify's app secret comes from the environment at every start: its fingerprint must come out the same
/// after a restart, and a replay of a delivery it verified must still check the signature again.
#[tokio::test]
async fn after_a_restart_the_app_secret_keeps_its_fingerprint_and_replays_recheck() {
    let dest = Destination::start(&[]).await;
    let s = server("60", &[]).await;
    let sub = forwarding(&s, "orders/paid", &dest.url).await;
    let id = deliver(&s, "orders/paid", 1).await;
    until(&s, &id, "status", json!("succeeded")).await;
    let fingerprints = |sub: &Value| -> Vec<String> {
        sub["secrets"].as_array().unwrap().iter().map(|k| k["fingerprint"].as_str().unwrap().to_owned()).collect()
    };
    let (_, before) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    let before = fingerprints(&before);
    assert_eq!(before.len(), 1, "{before:?}");
    let dir = s.stop().await;

    let s = TestServer::start_with(Options {
        env: env(&[("HOOKPLANE_DELIVERY__POLL_INTERVAL_MS", "20")]),
        dir: Some(dir),
        clock_at: Some(now()),
        ..Options::default()
    })
    .await;
    let (_, after) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(fingerprints(&after), before, "the same secret, the same fingerprint");
    let (st, made, _) = s_post(&s, &format!("/api/v1/deliveries/{id}/replay")).await;
    assert_eq!(st, 202, "{made}");
    let (_, audit) = s.get("/api/v1/audit?action=delivery_replayed").await;
    let changes = audit["items"][0]["changes"].as_array().unwrap().clone();
    let signature = changes.iter().find(|c| c["field"] == "signature").unwrap();
    assert_eq!(signature["after"], "the provider's signature verified again", "{signature}");
}

/// A replay as the admin token.
pub(crate) async fn s_post(s: &TestServer, path: &str) -> (StatusCode, Value, Option<String>) {
    post_as(s, ADMIN_TOKEN, path).await
}

#[tokio::test]
async fn a_delivery_being_sent_is_processing_and_a_replay_keeps_its_outcome_meanwhile() {
    let dest = Destination::start(&[Answer::Status(200), Answer::Hang]).await;
    let s = server("60", &[]).await;
    forwarding(&s, "orders/edited", &dest.url).await;
    let id = deliver(&s, "orders/edited", 1).await;
    until(&s, &id, "status", json!("succeeded")).await;
    let (st, made, _) = s_post(&s, &format!("/api/v1/deliveries/{id}/replay")).await;
    assert_eq!(st, 202, "{made}");
    // The replay's attempt has reached the destination, which never answers it.
    dest.wait_for(2).await;
    let (_, d) = s.get(&format!("/api/v1/deliveries/{id}")).await;
    assert_eq!((d["status"].as_str(), d["attempt_count"].as_u64()), (Some("succeeded"), Some(1)), "{d}");
    let (_, listed) = s.get("/api/v1/deliveries?status=processing").await;
    assert_eq!(listed["items"], json!([]), "{listed}");
}

#[tokio::test]
async fn what_cannot_be_replayed_is_refused_and_changes_nothing() {
    let s = server("60", &[]).await;
    // A discovered Shopify subscription keeps its deliveries: there is nowhere to replay to.
    let kept = deliver(&s, "customers/create", 1).await;
    let (st, body, _) = s_post(&s, &format!("/api/v1/deliveries/{kept}/replay")).await;
    assert_problem(&(st, body), 409, "not_replayable");
    let (st, body, _) = s_post(&s, "/api/v1/deliveries/dlv_01J0000000000000000000000A/replay").await;
    assert_problem(&(st, body), 404, "not_found");
    let (st, body, _) = s_post(&s, "/api/v1/deliveries/nonsense/replay").await;
    assert_problem(&(st, body), 400, "invalid_request");
    let (_, audit) = s.get("/api/v1/audit?action=delivery_replayed").await;
    assert!(audit["items"].as_array().unwrap().is_empty(), "{audit}");
    let (_, d) = s.get(&format!("/api/v1/deliveries/{kept}")).await;
    assert_eq!((d["status"].as_str(), d["attempt_count"].as_u64()), (Some("stored"), Some(0)));

    // A delivery whose own attempts are still under way is not replayed beside them.
    let failing = Destination::start(&[Answer::Status(500)]).await;
    forwarding(&s, "orders/partially_fulfilled", &failing.url).await;
    let retrying = deliver(&s, "orders/partially_fulfilled", 3).await;
    until(&s, &retrying, "status", json!("retrying")).await;
    let (st, body, _) = s_post(&s, &format!("/api/v1/deliveries/{retrying}/replay")).await;
    assert!(body["detail"].as_str().unwrap().contains("still retrying"), "{body}");
    assert_problem(&(st, body), 409, "not_replayable");

    // A stored body that no longer matches its digest is never sent again.
    let dest = Destination::start(&[]).await;
    forwarding(&s, "orders/delete", &dest.url).await;
    let sent = deliver(&s, "orders/delete", 2).await;
    until(&s, &sent, "status", json!("succeeded")).await;
    let dir = s.stop().await;
    let store = hookplane::storage::Store::open(&dir.path().join("data")).unwrap();
    let db = store.db().unwrap();
    let tx = db.begin_write().unwrap();
    let id = sent.parse().unwrap();
    hookplane::storage::deliveries::update(&tx, id, |d| d.body_sha256 = "0".repeat(64)).unwrap().unwrap();
    tx.commit().unwrap();
    drop(db);
    store.close();
    let s = TestServer::start_with(Options { dir: Some(dir), ..Options::default() }).await;
    let (st, body, _) = s_post(&s, &format!("/api/v1/deliveries/{sent}/replay")).await;
    assert_problem(&(st, body), 500, "integrity_failed");
    assert_eq!(dest.received().len(), 1, "sent once, at ingest; never replayed");
    let (_, audit) = s.get("/api/v1/audit?action=delivery_replayed").await;
    assert!(audit["items"].as_array().unwrap().is_empty(), "{audit}");
}

#[tokio::test]
async fn each_destination_has_its_own_timeout_limit_and_headers() {
    let slow = Destination::start(&[Answer::Slow(Duration::from_secs(2)), Answer::Slow(Duration::from_secs(2))]).await;
    let s = server("", &[]).await;
    let make = |topic: &str, extra: Value| {
        let mut body = json!({ "source": "shopify", "topic": topic, "account": SHOP, "destination_url": slow.url });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    // Refused settings change nothing.
    for (extra, field) in [
        (json!({ "destination_headers": { "Authorization": "Bearer x" } }), "webhook-signature"),
        (json!({ "destination_headers": { "x-hookplane-attempt": "9" } }), "set by Hookplane"),
        (json!({ "destination_timeout_seconds": 0 }), "destination_timeout_seconds"),
        (json!({ "destination_timeout_seconds": 3600 }), "lease"),
        (json!({ "destination_concurrency": 0 }), "destination_concurrency"),
    ] {
        let got = s.post("/api/v1/subscriptions", make("orders/create", extra)).await;
        assert_problem(&got, 400, "invalid_request");
        assert!(got.1["detail"].as_str().unwrap().contains(field), "{}", got.1);
    }
    let got = s
        .post(
            "/api/v1/subscriptions",
            json!({ "source": "shopify", "topic": "x", "account": SHOP, "destination_concurrency": 2 }),
        )
        .await;
    assert_problem(&got, 400, "invalid_request");
    let (_, subs) = s.get("/api/v1/subscriptions").await;
    assert!(subs.as_array().unwrap().is_empty(), "{subs}");

    // One waits the default 30 s and succeeds although slow; the other gives up after its own second.
    let (st, patient) = s
        .post(
            "/api/v1/subscriptions",
            make("orders/create", json!({ "destination_headers": { "X-Team": "sync", "Content-Type": "application/x-test" }, "destination_concurrency": 1 })),
        )
        .await;
    assert_eq!(st, 201, "{patient}");
    assert_eq!(
        patient["subscription"]["destination_headers"],
        json!({ "Content-Type": "application/x-test", "X-Team": "sync" })
    );
    assert_eq!(patient["subscription"]["destination_concurrency"], 1);
    let (st, hasty) =
        s.post("/api/v1/subscriptions", make("orders/paid", json!({ "destination_timeout_seconds": 1 }))).await;
    assert_eq!((st, hasty["subscription"]["destination_timeout_seconds"].as_u64()), (StatusCode::CREATED, Some(1)));
    let a = deliver(&s, "orders/create", 1).await;
    let d = until(&s, &a, "status", json!("succeeded")).await;
    assert!(d["latency_ms"].as_u64().unwrap() >= 2000, "{d}");
    let got = slow.wait_for(1).await;
    assert_eq!(got[0].header("x-team"), Some("sync"));
    assert_eq!(got[0].header("content-type"), Some("application/x-test"), "in place of the provider's");
    let b = deliver(&s, "orders/paid", 2).await;
    until(&s, &b, "status", json!("failed")).await;
    assert_eq!(attempts(&s, &b).await[0]["error_class"], "timeout");
}

#[tokio::test]
async fn a_destination_is_changed_in_place_audited_and_going_back_to_store_ends_forwarding() {
    let old = Destination::start(&[]).await;
    let new = Destination::start(&[]).await;
    let s = server("60", &[]).await;
    let sub = forwarding(&s, "orders/create", &old.url).await;
    let path = format!("/api/v1/subscriptions/{sub}");
    let first = deliver(&s, "orders/create", 1).await;
    until(&s, &first, "status", json!("succeeded")).await;

    // Refused changes change nothing.
    for (body, says) in [
        (json!({}), "nothing to change"),
        (json!({ "destination_url": "" }), "is empty"),
        (json!({ "destination_url": "ftp://example.com" }), "http:// or https://"),
        (json!({ "destination_concurrency": 0 }), "destination_concurrency"),
        (json!({ "destination_timeout_seconds": 3600 }), "lease"),
        (json!({ "destination_headers": { "Authorization": "Bearer x" } }), "webhook-signature"),
    ] {
        let got = s.patch(&path, body).await;
        assert_problem(&got, 400, "invalid_request");
        assert!(got.1["detail"].as_str().unwrap().contains(says), "{}", got.1);
    }
    let (st, _) = s.patch(&path, json!({ "name": "renamed" })).await;
    assert_eq!(st, 400, "only the destination can be changed");
    let got = s.patch("/api/v1/subscriptions/nothing", json!({ "destination_url": new.url })).await;
    assert_problem(&got, 404, "not_found");
    let operator = make_token(&s, "ops", "operator").await;
    let resp = s.client.patch(s.url(&path)).bearer_auth(&operator).json_body(&json!({ "destination_url": new.url }));
    assert_eq!(resp.send().await.unwrap().status(), 403, "changing where deliveries go is for admins");
    let (_, unchanged) = s.get(&path).await;
    assert_eq!(unchanged["destination_url"], json!(old.url), "{unchanged}");

    let (st, changed) =
        s.patch(&path, json!({ "destination_url": new.url, "destination_headers": { "X-Team": "sync" } })).await;
    assert_eq!(st, 200, "{changed}");
    assert_eq!(changed["subscription"]["destination_url"], json!(new.url));
    assert_eq!(changed["subscription"]["destination_headers"], json!({ "X-Team": "sync" }));
    let second = deliver(&s, "orders/create", 2).await;
    until(&s, &second, "status", json!("succeeded")).await;
    let got = new.wait_for(1).await;
    assert_eq!(got[0].header("x-team"), Some("sync"));
    assert_eq!(old.received().len(), 1, "the old destination got only what came before the change");
    let (_, audit) = s.get("/api/v1/audit?action=subscription_updated").await;
    let entry = &audit["items"][0];
    assert_eq!(
        (entry["performed_by"].as_str(), entry["target_id"].as_str()),
        (Some("admin-token"), Some(sub.as_str()))
    );
    assert_eq!(
        entry["changes"],
        json!([
            { "field": "destination_url", "before": old.url, "after": new.url },
            { "field": "destination_headers", "before": null, "after": "X-Team: sync" },
        ]),
        "{audit}"
    );
    // The same settings again change nothing and add no entry.
    let (st, _) = s.patch(&path, json!({ "destination_url": new.url })).await;
    assert_eq!(st, 200);
    let (_, audit) = s.get("/api/v1/audit?action=subscription_updated").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");

    // Paused with a delivery held, then back to `store`: nothing more is sent, the held delivery is
    // recorded as not sent, and new deliveries are kept.
    s.post(&format!("{path}/pause"), json!({})).await;
    let held = deliver(&s, "orders/create", 3).await;
    let got = s.patch(&path, json!({ "destination_url": null, "destination_concurrency": 2 })).await;
    assert_problem(&got, 400, "invalid_request");
    let (st, kept) = s.patch(&path, json!({ "destination_url": null })).await;
    assert_eq!(st, 200, "{kept}");
    assert_eq!((kept["released"].as_u64(), kept["subscription"]["status"].as_str()), (Some(1), Some("active")));
    assert!(kept["subscription"]["destination_url"].is_null(), "{kept}");
    assert_eq!(kept["subscription"]["destination_headers"], json!({}), "the settings went with the URL: {kept}");
    until(&s, &held, "status", json!("failed")).await;
    let list = attempts(&s, &held).await;
    assert!(list[0]["error"].as_str().unwrap().contains("not sent"), "{list:?}");
    let fourth = deliver(&s, "orders/create", 4).await;
    let d = until(&s, &fourth, "status", json!("stored")).await;
    assert_eq!(d["attempt_count"], 0);
    assert_eq!(new.received().len(), 1, "nothing was sent after the pause");
    let (_, audit) = s.get("/api/v1/audit?action=subscription_updated").await;
    let changes = &audit["items"][0]["changes"];
    assert_eq!(changes[0], json!({ "field": "destination_url", "before": new.url, "after": null }), "{audit}");
    assert_eq!(changes[2], json!({ "field": "status", "before": "paused", "after": "active" }), "{audit}");
    assert_eq!(changes[3]["after"], "1", "{audit}");

    // A subscription discovered from traffic is adopted before it is changed.
    deliver(&s, "products/create", 5).await;
    let (_, subs) = s.get("/api/v1/subscriptions").await;
    let found = subs.as_array().unwrap().iter().find(|x| x["status"] == "discovered").unwrap();
    let got = s
        .patch(
            &format!("/api/v1/subscriptions/{}", found["id"].as_str().unwrap()),
            json!({ "destination_url": new.url }),
        )
        .await;
    assert_problem(&got, 409, "conflict");
    assert!(got.1["detail"].as_str().unwrap().contains("adopt it first"), "{}", got.1);
}

/// A subscription is `failing` exactly while a degradation rule holds, and `active` again by itself once
/// deliveries succeed: the status, the figure and the banner read that one decision.
#[tokio::test]
async fn failing_is_shown_while_the_rule_holds_and_clears_by_itself() {
    let dest = Destination::start(&vec![Answer::Status(503); 6]).await;
    // Six attempts at once, then an hour's wait before the seventh.
    let s = server("0,0,0,0,0,3600", &[]).await;
    let sub = forwarding(&s, "orders/cancelled", &dest.url).await;
    let id = deliver(&s, "orders/cancelled", 1).await;
    until(&s, &id, "attempt_count", json!(6)).await;
    let (_, shown) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(shown["status"], "failing", "more than 5 failed attempts in a row: {shown}");
    let timeline = |s: &serde_json::Value| -> Vec<(Option<u64>, bool)> {
        let marks = s["health"]["recent_attempts"].as_array().unwrap();
        marks.iter().map(|m| (m["response_code"].as_u64(), m["succeeded"].as_bool().unwrap())).collect()
    };
    assert_eq!(timeline(&shown), vec![(Some(503), false); 6], "its failure timeline, oldest first");
    let (_, stats) = s.get("/api/v1/stats").await;
    assert_eq!(stats["kpis"]["failing_topics"], 1, "{stats}");
    assert_eq!(stats["banners"].as_array().map(Vec::len), Some(1), "{stats}");
    let (_, list) = s.get("/api/v1/subscriptions").await;
    assert_eq!(list.as_array().unwrap().iter().find(|x| x["id"] == sub.as_str()).unwrap()["status"], "failing");

    // The destination recovers: the next attempt succeeds, and nothing is failing any more.
    s.clock.advance_millis(3_600_001);
    until(&s, &id, "status", json!("succeeded")).await;
    let (_, shown) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(timeline(&shown).last(), Some(&(Some(200), true)), "the newest attempt last");
    let (_, stats) = s.get("/api/v1/stats").await;
    assert_eq!((stats["kpis"]["failing_topics"].clone(), stats["banners"].clone()), (json!(0), json!([])), "{stats}");
}
