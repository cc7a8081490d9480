//! Secret rotation over real HTTP: double entry, the overlap during which both secrets verify, the sweep
//! that drops the old one after it, the audit entries, and the dashboard's form.

use hookplane::demo::factories::standard_request;
use hookplane::domain::Timestamp;
use hookplane::domain::access::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW: &str = "whsec_c2Vjb25kLXNlY3JldC1mb3ItaG9va3BsYW5l";

fn start() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-28T09:00:00Z").unwrap()
}

async fn with_subscription(opts: Options) -> TestServer {
    let s = with_store(opts, |db| {
        add_operator(db, "alice", Role::Admin);
        add_operator(db, "otto", Role::Operator);
    })
    .await;
    let sub = json!({ "source": "standard", "topic": "invoice.paid", "account": "billing", "name": "billing", "secret": OLD });
    let (st, body) = s.post("/api/v1/subscriptions", sub).await;
    assert_eq!(st, 201, "{body}");
    s
}

/// Sends one message signed with `secret`; the answer's status.
async fn send(s: &TestServer, secret: &str, n: u32) -> u16 {
    let at = hookplane::domain::Clock::now(&*s.clock);
    let req = standard_request("billing", secret, &format!("msg_{n}_{}", at.millis()), at, br#"{"n":1}"#.to_vec());
    s.send(&req).await.status().as_u16()
}

async fn rotate(s: &TestServer, body: Value) -> (StatusCode, Value) {
    s.post("/api/v1/subscriptions/billing/secret/rotate", body).await
}

fn slots(sub: &Value) -> Vec<(String, String)> {
    sub["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["slot"].as_str().unwrap().to_owned(), k["fingerprint"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn the_old_secret_verifies_during_the_overlap_and_never_after() {
    let s = with_subscription(Options { clock_at: Some(start()), ..Options::default() }).await;
    let (_, before) = s.get("/api/v1/subscriptions/billing").await;
    let old_fp = slots(&before)[0].1.clone();
    assert_eq!(send(&s, OLD, 1).await, 200);

    // Refusals change nothing.
    let refusals = [
        (json!({ "secret": NEW, "secret_confirmation": format!("{NEW}x") }), "differ"),
        (json!({ "secret": "", "secret_confirmation": "" }), "is required"),
        (json!({ "secret": NEW, "secret_confirmation": NEW, "overlap_hours": 0 }), "between 1 and 720"),
        (json!({ "secret": NEW, "secret_confirmation": NEW, "overlap_hours": 721 }), "between 1 and 720"),
        (json!({ "secret": OLD, "secret_confirmation": OLD }), "already in use"),
        (json!({ "secret": "not-a-whsec", "secret_confirmation": "not-a-whsec" }), "whsec_"),
    ];
    for (body, says) in refusals {
        let got = rotate(&s, body).await;
        assert_problem(&got, 400, "invalid_request");
        assert!(got.1["detail"].as_str().unwrap().contains(says), "{says}: {}", got.1);
    }
    let missing = s
        .post("/api/v1/subscriptions/nobody/secret/rotate", json!({ "secret": NEW, "secret_confirmation": NEW }))
        .await;
    assert_problem(&missing, 404, "not_found");
    let (_, unchanged) = s.get("/api/v1/subscriptions/billing").await;
    assert_eq!(slots(&unchanged), vec![("current".to_owned(), old_fp.clone())]);

    let (st, rotated) = rotate(&s, json!({ "secret": NEW, "secret_confirmation": NEW, "overlap_hours": 1 })).await;
    assert_eq!(st, 200, "{rotated}");
    assert_eq!(rotated["previous_expires_at"], "2026-11-28T10:00:00.000Z");
    assert!(rotated["reminder"].as_str().unwrap().contains("Now update the secret with the sender"), "{rotated}");
    let held = slots(&rotated["subscription"]);
    assert_eq!(held.len(), 2);
    assert_eq!(held[1], ("previous".to_owned(), old_fp.clone()));
    assert_ne!(held[0].1, old_fp);
    assert!(!rotated.to_string().contains(NEW) && !rotated.to_string().contains(OLD), "never an answer");

    // During the overlap both verify; after it, only the new one.
    assert_eq!(send(&s, OLD, 2).await, 200);
    assert_eq!(send(&s, NEW, 3).await, 200);
    s.clock.advance_millis(59 * 60_000);
    assert_eq!(send(&s, OLD, 4).await, 200);
    s.clock.advance_millis(60_000);
    assert_eq!(send(&s, OLD, 5).await, 401, "the overlap ended at 10:00");
    assert_eq!(send(&s, NEW, 6).await, 200);

    // The sweep drops it from the store too: after a restart the old secret is not even held.
    let dir = s.stop().await;
    let later = start().plus_millis(61 * 60_000);
    let s = TestServer::start_with(Options { dir: Some(dir), clock_at: Some(later), ..Options::default() }).await;
    let mut dropped = Vec::new();
    for _ in 0..200 {
        dropped = audit(&s, "action=secret_previous_dropped").await;
        if !dropped.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(dropped.len(), 1, "the sweep at start dropped it");
    assert_eq!(dropped[0]["performed_by"], "system");
    let (_, after) = s.get("/api/v1/subscriptions/billing").await;
    assert_eq!(slots(&after).len(), 1);
    assert_eq!(send(&s, OLD, 7).await, 401);
    assert_eq!(send(&s, NEW, 8).await, 200);

    // The rotation's entry shows both secrets as digests, never as themselves.
    let entries = audit(&s, "action=secret_rotated").await;
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["performed_by"], "admin-token");
    assert!(e["target_id"].as_str().unwrap().starts_with("sub_"));
    let digest = e["changes"].as_array().unwrap().iter().find(|c| c["field"] == "secret_digest").unwrap();
    assert!(digest["before"].as_str().unwrap().starts_with("$argon2id$"));
    assert!(digest["after"].as_str().unwrap().starts_with("$argon2id$"));
    assert_ne!(digest["before"], digest["after"]);
    let created = audit(&s, "action=subscription_created").await;
    let fields: Vec<&str> =
        created[0]["changes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "source", "topic", "account", "secret_digest"]);
    assert_eq!(created[0]["changes"][4]["after"], digest["before"], "the digest made at creation");
    let export = s.client.get(s.url("/api/v1/audit/export")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let lines = export.text().await.unwrap();
    assert!(!lines.contains(NEW) && !lines.contains(OLD) && !lines.contains(&NEW[6..]));
    let parsed: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(parsed.len() >= 4, "{lines}");
    assert!(parsed.windows(2).all(|w| w[0]["id"].as_str() < w[1]["id"].as_str()), "oldest first");
}

async fn post(b: &mut Browser, form: Vec<(String, String)>) -> Page {
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post("/dashboard/webhooks", &refs).await
}

async fn audit(s: &TestServer, query: &str) -> Vec<Value> {
    let (st, page) = s.get(&format!("/api/v1/audit?{query}")).await;
    assert_eq!(st, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn admins_rotate_from_the_dashboard_with_a_reminder() {
    let s = with_subscription(Options::default()).await;
    let mut admin = Browser::new(&s);
    admin.sign_in("alice", PASSWORD).await;
    let page = admin.get("/dashboard/webhooks").await;
    assert!(page.body.contains("Rotate secret") && page.body.contains("name=\"secret_confirmation\""));
    let csrf = page.csrf();
    let sub_id = s.get("/api/v1/subscriptions/billing").await.1["id"].as_str().unwrap().to_owned();

    let form = |secret: &'static str, again: &'static str, csrf: String, sub: String| {
        vec![
            ("intent".to_owned(), "rotate".to_owned()),
            ("subscription".to_owned(), sub),
            ("secret".to_owned(), secret.to_owned()),
            ("secret_confirmation".to_owned(), again.to_owned()),
            ("overlap_hours".to_owned(), String::new()),
            ("csrf".to_owned(), csrf),
        ]
    };
    let typo = post(&mut admin, form(NEW, "whsec_typo", csrf.clone(), sub_id.clone())).await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    assert!(typo.body.contains("differ") && typo.body.contains("Nothing was changed"));
    let forged = post(&mut admin, form(NEW, NEW, "forged".into(), sub_id.clone())).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(slots(&s.get("/api/v1/subscriptions/billing").await.1).len(), 1, "nothing rotated");

    let done = post(&mut admin, form(NEW, NEW, csrf.clone(), sub_id.clone())).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), format!("/dashboard/webhooks?rotated={sub_id}"));
    let shown = admin.get(done.location()).await;
    assert!(shown.body.contains("Secret rotated for billing"), "{}", shown.body);
    assert!(shown.body.contains("Now update the secret with the sender"));
    assert!(shown.body.contains("still accepted"), "the panel shows the overlap");
    assert_eq!(slots(&s.get("/api/v1/subscriptions/billing").await.1).len(), 2);
    let entries = audit(&s, "action=secret_rotated").await;
    assert_eq!(entries[0]["performed_by"], "operator:alice");

    // An operator sees no form, and a hand-made post is refused.
    let mut otto = Browser::new(&s);
    otto.sign_in("otto", PASSWORD).await;
    let page = otto.get("/dashboard/webhooks").await;
    assert!(!page.body.contains("Rotate secret"));
    let refused = post(&mut otto, form(OLD, OLD, page.csrf(), sub_id.clone())).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("needs the admin role"));
}

#[tokio::test]
async fn parallel_rotations_leave_the_store_and_the_registry_agreeing() {
    let s = with_subscription(Options::default()).await;
    const THIRD: &str = "whsec_dGhpcmQtc2VjcmV0LWZvci1ob29rcGxhbmUtMDM=";
    let (a, b) = tokio::join!(
        rotate(&s, json!({ "secret": NEW, "secret_confirmation": NEW })),
        rotate(&s, json!({ "secret": THIRD, "secret_confirmation": THIRD }))
    );
    assert_eq!((a.0.as_u16(), b.0.as_u16()), (200, 200), "{} {}", a.1, b.1);
    let (_, live) = s.get("/api/v1/subscriptions/billing").await;
    let held = slots(&live);
    assert_eq!(held.len(), 2, "{held:?}");
    // One rotation followed the other: the later one's previous secret is the earlier one's new secret.
    let (first, second) = if slots(&a.1["subscription"])[0].1 == held[0].1 { (&b, &a) } else { (&a, &b) };
    assert_eq!(slots(&second.1["subscription"]), held);
    assert_eq!(slots(&first.1["subscription"])[0].1, held[1].1);
    let last = if held[0].1 == slots(&a.1["subscription"])[0].1 { NEW } else { THIRD };
    let dir = s.stop().await;
    let s = TestServer::start_with(Options { dir: Some(dir), ..Options::default() }).await;
    let (_, reloaded) = s.get("/api/v1/subscriptions/billing").await;
    assert_eq!(slots(&reloaded), held, "the store holds what the registry held");
    assert_eq!(send(&s, last, 1).await, 200);
    assert_eq!(send(&s, OLD, 2).await, 401, "the first secret went with the second rotation");
}
