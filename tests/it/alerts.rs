//! Alerts through real traffic: each rule opens an incident and resolves it, the sinks receive the exact
//! requests their providers expect (from a local server that plays PagerDuty, Better Stack and a webhook
//! receiver), acknowledgement reaches PagerDuty, a failing sink is retried with its failure on the incident,
//! and a subscription hovering across a threshold keeps one incident.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookplane::connectors::standard;
use hookplane::demo::factories::shopify_request;
use hookplane::domain::Clock as _;
use poem::listener::TcpAcceptor;
use poem::web::Data;
use poem::{EndpointExt, Request, Response, Route, Server, handler};
use serde_json::{Value, json};

use crate::queue::{Answer, Destination, deliver, forwarding, until};
use crate::support::*;

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request a sink received.
#[derive(Clone, Debug)]
struct Got {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct SinkState {
    got: Arc<Mutex<Vec<Got>>>,
    /// Statuses the webhook receiver answers first; then 200.
    webhook_script: Arc<Mutex<VecDeque<u16>>>,
}

/// PagerDuty, Better Stack and a webhook receiver on one local server.
struct Sinks {
    base: String,
    state: SinkState,
}

#[handler]
async fn sink(req: &Request, body: Vec<u8>, Data(state): Data<&SinkState>) -> Response {
    let path = req.uri().path().to_owned();
    let headers = req.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect();
    state.got.lock().unwrap().push(Got { path: path.clone(), headers, body });
    let (status, answer) = match path.as_str() {
        "/v2/enqueue" => (202, json!({ "status": "success", "message": "Event processed" })),
        "/api/v3/incidents" => (201, json!({ "data": { "id": "4242", "type": "incident" } })),
        "/hook" => {
            let s = state.webhook_script.lock().unwrap().pop_front().unwrap_or(200);
            (s, json!({ "ok": s == 200 }))
        }
        _ => (200, json!({ "data": { "id": "4242" } })),
    };
    Response::builder()
        .status(poem::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(answer.to_string())
}

impl Sinks {
    async fn start(webhook_script: &[u16]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = SinkState::default();
        state.webhook_script.lock().unwrap().extend(webhook_script);
        let app = Route::new().at("/*path", poem::post(sink)).data(state.clone());
        tokio::spawn(Server::new_with_acceptor(TcpAcceptor::from_tokio(listener).unwrap()).run(app));
        Self { base, state }
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PAGERDUTY_ROUTING_KEY".into(), "R0UT1NGKEY".into()),
            ("HOOKPLANE_ALERTS__PAGERDUTY_URL".into(), format!("{}/v2/enqueue", self.base)),
            ("BETTERSTACK_API_TOKEN".into(), "bs-token".into()),
            ("HOOKPLANE_ALERTS__BETTERSTACK_URL".into(), self.base.clone()),
            ("HOOKPLANE_ALERTS__WEBHOOK_URL".into(), format!("{}/hook", self.base)),
            ("HOOKPLANE_ALERTS_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
        ]
    }

    fn got(&self, path: &str) -> Vec<Got> {
        self.state.got.lock().unwrap().iter().filter(|g| g.path == path).cloned().collect()
    }

    /// Waits until `path` received `n` requests. The bound only keeps a broken build from hanging the suite.
    async fn wait_for(&self, path: &str, n: usize) -> Vec<Got> {
        for _ in 0..600 {
            let got = self.got(path);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{path} received {} requests, not {n}", self.got(path).len());
    }
}

/// A server on the manual clock that evaluates its rules every 50 ms and resolves incidents after
/// `resolve_after` minutes; deliveries retry after `delays`.
async fn alerting(delays: &str, resolve_after: &str, extra: &[(String, String)]) -> TestServer {
    let mut vars: Vec<(&str, &str)> = vec![
        ("HOOKPLANE_DELIVERY__RETRY_DELAYS_SECONDS", delays),
        ("HOOKPLANE_DELIVERY__RETRY_JITTER_PERCENT", "0"),
        ("HOOKPLANE_DELIVERY__POLL_INTERVAL_MS", "20"),
        ("HOOKPLANE_ALERTS__EVALUATE_INTERVAL_MS", "50"),
        ("HOOKPLANE_ALERTS__RESOLVE_AFTER_MINUTES", resolve_after),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    TestServer::start_with(Options { env: env(&vars), clock_at: Some(now()), ..Options::default() }).await
}

/// Waits until an incident of `rule` matches `want`, and returns it.
async fn incident_where(s: &TestServer, rule: &str, want: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (st, page) = s.get(&format!("/api/v1/incidents?rule={rule}")).await;
        assert_eq!(st, 200, "{page}");
        if let Some(found) = page["items"].as_array().unwrap().iter().find(|i| want(i)) {
            return found.clone();
        }
        last = page;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {rule} incident as wanted: {last}");
}

fn incidents_of(page: &Value, rule: &str) -> usize {
    page["items"].as_array().unwrap().iter().filter(|i| i["rule"] == rule).count()
}

#[tokio::test]
async fn consecutive_failures_page_pagerduty_and_better_stack_and_resolve_when_deliveries_succeed() {
    let sinks = Sinks::start(&[]).await;
    let dest = Destination::start(&vec![Answer::Status(503); 6]).await;
    // Six attempts at once, then an hour's wait before the seventh.
    let s = alerting("0,0,0,0,0,3600", "0", &sinks.env()).await;
    let sub = forwarding(&s, "orders/paid", &dest.url).await;
    let id = deliver(&s, "orders/paid", 1).await;
    until(&s, &id, "attempt_count", json!(6)).await;

    let opened = incident_where(&s, "consecutive_failures", |i| i["state"] == "open").await;
    assert_eq!(opened["subscription_id"], sub.as_str());
    let figure = |i: &Value, name: &str| {
        i["figures"].as_array().unwrap().iter().find(|f| f["name"] == name).map(|f| f["value"].clone())
    };
    assert_eq!(figure(&opened, "consecutive_failures"), Some(json!("6")), "{opened}");
    assert!(opened["runbook_url"].as_str().unwrap().ends_with("/docs/runbook#consecutive_failures"), "{opened}");
    let incident_id = opened["id"].as_str().unwrap().to_owned();

    // The banner links to its incident and to the runbook's section.
    let (_, stats) = s.get("/api/v1/stats").await;
    let banner = &stats["banners"][0];
    assert_eq!(
        (banner["rule"].clone(), banner["incident_id"].clone()),
        (json!("consecutive_failures"), json!(incident_id))
    );

    // PagerDuty: a trigger under a dedup key that stays the incident's.
    let trigger = sinks.wait_for("/v2/enqueue", 1).await[0].json();
    let dedup = format!("hookplane-{incident_id}");
    assert_eq!(trigger["routing_key"], "R0UT1NGKEY");
    assert_eq!((trigger["event_action"].clone(), trigger["dedup_key"].clone()), (json!("trigger"), json!(dedup)));
    let payload = &trigger["payload"];
    assert!(payload["summary"].as_str().unwrap().contains("6 consecutive failed attempts"), "{trigger}");
    assert_eq!(payload["severity"], "error");
    assert_eq!(payload["custom_details"]["consecutive_failures"], "6");
    assert!(payload["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(payload["source"].as_str().unwrap().starts_with("hookplane:"));
    let links: Vec<&str> = trigger["links"].as_array().unwrap().iter().map(|l| l["href"].as_str().unwrap()).collect();
    assert!(
        links[0].ends_with(&format!("/dashboard/incidents/{incident_id}"))
            && links[1].ends_with("#consecutive_failures")
    );

    // Better Stack: an incident made with the token, whose id the resolution uses.
    let made = &sinks.wait_for("/api/v3/incidents", 1).await[0];
    assert_eq!(made.header("authorization"), Some("Bearer bs-token"));
    assert!(made.json()["summary"].as_str().unwrap().contains("Consecutive failed attempts"));

    // The signed webhook: verifiable with the shared secret, with a line for Slack.
    let hook = &sinks.wait_for("/hook", 1).await[0];
    let key = standard::decode_secret(WEBHOOK_SECRET).unwrap();
    let h: Vec<(String, String)> = hook.headers.clone();
    let signed = standard::read_request(&h).unwrap();
    signed.verify(&hook.body, &[key.as_slice()], s.clock.now(), 300).unwrap();
    assert_eq!(hook.json()["type"], "incident.opened");
    assert!(hook.json()["text"].as_str().unwrap().contains("orders"), "{}", hook.json());

    // Acknowledged in Hookplane: audited, and PagerDuty and Better Stack hear of it.
    let (st, acked) = s.post(&format!("/api/v1/incidents/{incident_id}/acknowledge"), json!({})).await;
    assert_eq!(st, 200, "{acked}");
    assert_eq!(
        (acked["state"].clone(), acked["acknowledged_by"].clone()),
        (json!("acknowledged"), json!("admin-token"))
    );
    let ack = sinks.wait_for("/v2/enqueue", 2).await[1].json();
    assert_eq!((ack["event_action"].clone(), ack["dedup_key"].clone()), (json!("acknowledge"), json!(dedup)));
    let bs_ack = &sinks.wait_for("/api/v3/incidents/4242/acknowledge", 1).await[0];
    assert_eq!(bs_ack.json()["acknowledged_by"], "admin-token");
    let (st, again) = s.post(&format!("/api/v1/incidents/{incident_id}/acknowledge"), json!({})).await;
    assert_problem(&(st, again), 409, "conflict");
    let (_, audit) = s.get(&format!("/api/v1/audit?action=incident_acknowledged&target_id={incident_id}")).await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");

    // The destination recovers: the next attempt succeeds, the rule clears, the incident resolves.
    s.clock.advance_millis(3_600_001);
    until(&s, &id, "status", json!("succeeded")).await;
    let resolved = incident_where(&s, "consecutive_failures", |i| i["state"] == "resolved").await;
    assert_eq!(resolved["id"], incident_id.as_str());
    let resolve = sinks.wait_for("/v2/enqueue", 3).await[2].json();
    assert_eq!((resolve["event_action"].clone(), resolve["dedup_key"].clone()), (json!("resolve"), json!(dedup)));
    sinks.wait_for("/api/v3/incidents/4242/resolve", 1).await;
    let (_, stats) = s.get("/api/v1/stats").await;
    assert_eq!(stats["banners"], json!([]));
    let (st, done) = s.post(&format!("/api/v1/incidents/{incident_id}/acknowledge"), json!({})).await;
    assert_problem(&(st, done), 409, "conflict");

    // Bad filters and unknown incidents are named, and change nothing.
    let bad = s.get("/api/v1/incidents?state=bogus").await;
    assert_problem(&bad, 400, "invalid_request");
    assert!(bad.1["detail"].as_str().unwrap().contains("open, acknowledged or resolved"), "{}", bad.1);
    assert_problem(&s.get("/api/v1/incidents?rule=flapping").await, 400, "invalid_request");
    let unknown = "inc_01JABCDEFGHJKMNPQRSTVWXYZ0";
    assert_problem(&s.get(&format!("/api/v1/incidents/{unknown}")).await, 404, "not_found");
    let (st, body) = s.post(&format!("/api/v1/incidents/{unknown}/acknowledge"), json!({})).await;
    assert_problem(&(st, body), 404, "not_found");
}

#[tokio::test]
async fn the_rate_rule_waits_for_its_minimum_volume() {
    // One attempt per delivery, and no streak rule in the way.
    let dest = Destination::start(&vec![Answer::Status(500); 10]).await;
    let extra = [("HOOKPLANE_ALERTS__CONSECUTIVE_FAILURES".to_owned(), "1000".to_owned())];
    let s = alerting("", "0", &extra).await;
    let sub = forwarding(&s, "orders/fulfilled", &dest.url).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(deliver(&s, "orders/fulfilled", n).await);
    }
    for id in &ids {
        until(&s, id, "status", json!("failed")).await;
    }
    let (_, shown) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(shown["health"]["success_rate_1h"], 0.0, "{shown}");
    assert_eq!(shown["health"]["degraded"], json!([]), "5 attempts are under the minimum of 10: {shown}");
    let (_, page) = s.get("/api/v1/incidents").await;
    assert_eq!(incidents_of(&page, "success_rate"), 0, "{page}");

    for n in 5..10 {
        ids.push(deliver(&s, "orders/fulfilled", n).await);
    }
    for id in &ids {
        until(&s, id, "status", json!("failed")).await;
    }
    let (_, shown) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(shown["status"], "failing", "{shown}");
    let opened = incident_where(&s, "success_rate", |i| i["state"] == "open").await;
    assert!(opened["summary"].as_str().unwrap().contains("over 10 attempts"), "{opened}");

    // Successes bring the hour back over 90 %: 10 failures need 90 successes.
    for n in 10..100 {
        deliver(&s, "orders/fulfilled", n).await;
    }
    incident_where(&s, "success_rate", |i| i["state"] == "resolved").await;
}

#[tokio::test]
async fn refused_signatures_open_an_incident_naming_the_secrets_tried() {
    let s = alerting("", "0", &[]).await;
    let body = br#"{"id":1}"#.to_vec();
    for n in 0..5 {
        let req = shopify_request(
            "orders/create",
            "sig-test.myshopify.com",
            body.clone(),
            b"not-the-secret",
            &format!("wh-{n}"),
            s.clock.now(),
        );
        let (st, _) = s.send_json(&req).await;
        assert_eq!(st, 401);
    }
    let opened = incident_where(&s, "signature_failures", |i| i["state"] == "open").await;
    let figures = opened["figures"].as_array().unwrap();
    let value = |name: &str| figures.iter().find(|f| f["name"] == name).unwrap()["value"].as_str().unwrap().to_owned();
    assert_eq!(value("refused_10m"), "5");
    assert_ne!(value("secrets_tried"), "none held", "the app secret's fingerprint is named: {opened}");
    assert!(value("secrets_tried").contains(':'), "{opened}");

    // Ten minutes later the refusals are out of the window: the incident resolves.
    s.clock.advance_millis(10 * 60_000 + 1);
    incident_where(&s, "signature_failures", |i| i["state"] == "resolved").await;
}

#[tokio::test]
async fn a_silent_subscription_is_noticed_against_its_own_rhythm() {
    let s = alerting("", "0", &[]).await;
    let (st, made) = s
        .post(
            "/api/v1/subscriptions",
            json!({ "source": "shopify", "topic": "products/update", "account": "queue-test.myshopify.com" }),
        )
        .await;
    assert_eq!(st, 201, "{made}");
    // Hourly traffic for half a day: the subscription's rhythm allows 3 hours of silence.
    for n in 0..12 {
        deliver(&s, "products/update", n).await;
        s.clock.advance_millis(3_600_000);
    }
    let (_, page) = s.get("/api/v1/incidents?rule=silence").await;
    assert_eq!(incidents_of(&page, "silence"), 0, "an hour of silence is its rhythm: {page}");
    s.clock.advance_millis(3 * 3_600_000);
    let opened = incident_where(&s, "silence", |i| i["state"] == "open").await;
    assert!(opened["summary"].as_str().unwrap().contains("allows 180 min"), "{opened}");
    deliver(&s, "products/update", 99).await;
    incident_where(&s, "silence", |i| i["state"] == "resolved").await;
}

#[tokio::test]
async fn a_subscription_hovering_at_the_threshold_keeps_one_incident() {
    // One attempt per delivery: 6 failures, a success, then 6 failures again.
    let mut script = vec![Answer::Status(503); 6];
    script.push(Answer::Status(200));
    script.extend(vec![Answer::Status(503); 6]);
    let dest = Destination::start(&script).await;
    let s = alerting("", "10", &[]).await;
    forwarding(&s, "orders/edited", &dest.url).await;
    let send = |from: u64, to: u64| {
        let s = &s;
        async move {
            for n in from..to {
                let id = deliver(s, "orders/edited", n).await;
                until(s, &id, "attempt_count", json!(1)).await;
            }
        }
    };
    send(0, 6).await;
    let first = incident_where(&s, "consecutive_failures", |i| i["state"] == "open").await;
    send(6, 7).await;
    let clearing = incident_where(&s, "consecutive_failures", |i| !i["clear_since"].is_null()).await;
    assert_eq!(clearing["id"], first["id"]);
    send(7, 13).await;
    let again = incident_where(&s, "consecutive_failures", |i| i["clear_since"].is_null()).await;
    assert_eq!(again["id"], first["id"], "the same incident holds again");
    let (_, page) = s.get("/api/v1/incidents").await;
    assert_eq!(incidents_of(&page, "consecutive_failures"), 1, "{page}");
}

#[tokio::test]
async fn a_failing_sink_is_retried_shows_its_failure_and_never_slows_ingest() {
    let sinks = Sinks::start(&[500, 500]).await;
    let only_webhook: Vec<(String, String)> = sinks.env().into_iter().filter(|(k, _)| k.contains("WEBHOOK")).collect();
    let dest = Destination::start(&vec![Answer::Status(503); 6]).await;
    // The later deliveries succeed and clear the rule; the incident stays open 10 minutes more.
    let s = alerting("0,0,0,0,0,3600", "10", &only_webhook).await;
    forwarding(&s, "orders/delete", &dest.url).await;
    let id = deliver(&s, "orders/delete", 1).await;
    until(&s, &id, "attempt_count", json!(6)).await;

    sinks.wait_for("/hook", 1).await;
    let waiting = incident_where(&s, "consecutive_failures", |i| i["notifications"][0]["tries"] == 1).await;
    let n = &waiting["notifications"][0];
    assert_eq!((n["sink"].clone(), n["state"].clone()), (json!("webhook"), json!("pending")), "{waiting}");
    assert!(n["last_answer"].as_str().unwrap().starts_with("500"), "{waiting}");

    // Meanwhile ingest answers as always.
    for k in 2..12 {
        deliver(&s, "orders/delete", k).await;
    }

    // The first retry waits 10 s, the second 30 s.
    s.clock.advance_millis(10_001);
    sinks.wait_for("/hook", 2).await;
    s.clock.advance_millis(30_001);
    let tries = sinks.wait_for("/hook", 3).await;
    let ids: Vec<&str> = tries.iter().map(|g| g.header("webhook-id").unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one message id across tries: {ids:?}");
    let sent = incident_where(&s, "consecutive_failures", |i| i["notifications"][0]["state"] == "sent").await;
    assert_eq!(sent["notifications"][0]["tries"], 3, "{sent}");
}

#[tokio::test]
async fn a_sink_url_without_its_credential_is_refused_at_start() {
    let vars = env(&[("HOOKPLANE_ALERTS__WEBHOOK_URL", "https://hooks.example/alerts")]);
    let err = hookplane::config::Settings::load(&hookplane::config::Flags::default(), &vars).unwrap_err().to_string();
    assert!(err.contains("HOOKPLANE_ALERTS_WEBHOOK_SECRET"), "{err}");
    let vars = env(&[("HOOKPLANE_ALERTS__PAGERDUTY_URL", "https://pd.example/v2/enqueue")]);
    let err = hookplane::config::Settings::load(&hookplane::config::Flags::default(), &vars).unwrap_err().to_string();
    assert!(err.contains("PAGERDUTY_ROUTING_KEY"), "{err}");
    let vars = env(&[("HOOKPLANE_ALERTS_WEBHOOK_SECRET", WEBHOOK_SECRET)]);
    let err = hookplane::config::Settings::load(&hookplane::config::Flags::default(), &vars).unwrap_err().to_string();
    assert!(err.contains("alerts.webhook_url is empty"), "{err}");
}
