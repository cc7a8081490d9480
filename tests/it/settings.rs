//! The settings page and API: retention set with its confirmation, audited, applied by the sweep; refused
//! when the configuration sets it; the integrations by fingerprint only; the version in every page's footer.

use hookplane::domain::access::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn retention_is_set_with_its_confirmation_audited_and_shown_to_everyone() {
    let s = with_store(Options::default(), |db| {
        add_operator(db, "ada", Role::Admin);
        add_operator(db, "vic", Role::Viewer);
    })
    .await;
    let (_, before) = s.get("/api/v1/settings").await;
    assert_eq!(before["retention"]["days"], 7, "{before}");
    assert_eq!(
        (before["retention"]["source"].as_str(), before["version"].as_str()),
        (Some("default"), Some(env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(before["shopify_app_secrets"][0]["slot"], "app", "{before}");
    assert!(!before.to_string().contains(SHOPIFY_SECRET), "fingerprints only");

    let (st, refused) = s.put("/api/v1/settings/retention", json!({ "days": 30, "confirm": false })).await;
    assert_problem(&(st, refused.clone()), 400, "invalid_request");
    assert!(refused["detail"].as_str().unwrap().contains("personal data"), "{refused}");
    let (st, refused) = s.put("/api/v1/settings/retention", json!({ "days": 31, "confirm": true })).await;
    assert_problem(&(st, refused), 400, "invalid_request");
    let (_, audit) = s.get("/api/v1/audit?action=settings_changed").await;
    assert_eq!(audit["items"], json!([]), "a refusal changes nothing");

    let mut vic = Browser::new(&s);
    vic.sign_in("vic", PASSWORD).await;
    let page = vic.get("/dashboard/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("kept <strong>7 days</strong>") && page.body.contains("Admins can change it"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("name=\"confirm\""), "viewers read only");
    assert!(page.body.contains(&format!("Hookplane {}", env!("CARGO_PKG_VERSION"))), "the footer");
    let csrf = page.csrf();
    let denied = vic
        .post("/dashboard/settings", &[("intent", "retention"), ("days", "30"), ("confirm", "true"), ("csrf", &csrf)])
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let mut ada = Browser::new(&s);
    ada.sign_in("ada", PASSWORD).await;
    let page = ada.get("/dashboard/settings").await;
    assert!(page.body.contains("Keeping payloads 30 days") && page.body.contains("customers/redact"), "{}", page.body);
    let csrf = page.csrf();
    let unconfirmed =
        ada.post("/dashboard/settings", &[("intent", "retention"), ("days", "30"), ("csrf", &csrf)]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert!(unconfirmed.body.contains("Nothing was changed"), "{}", unconfirmed.body);
    let saved = ada
        .post("/dashboard/settings", &[("intent", "retention"), ("days", "30"), ("confirm", "true"), ("csrf", &csrf)])
        .await;
    assert_eq!((saved.status, saved.location()), (StatusCode::SEE_OTHER, "/dashboard/settings?saved=30"));
    let (_, after) = s.get("/api/v1/settings").await;
    assert_eq!(
        (after["retention"]["days"].clone(), after["retention"]["source"].clone()),
        (json!(30), json!("dashboard"))
    );
    let (_, audit) = s.get("/api/v1/audit?action=settings_changed").await;
    let entry = &audit["items"][0];
    assert_eq!(entry["performed_by"], "operator:ada", "{audit}");
    assert_eq!(entry["changes"][0], json!({ "field": "retention_days", "before": "7", "after": "30" }));
}

#[tokio::test]
async fn retention_set_by_the_configuration_is_shown_as_such_and_not_changed_here() {
    let s = TestServer::start_with(Options { env: env(&[("HOOKPLANE_RETENTION__DAYS", "14")]), ..Options::default() })
        .await;
    let (_, shown) = s.get("/api/v1/settings").await;
    assert_eq!(shown["retention"]["days"], 14);
    assert_eq!(shown["retention"]["set_in"], "the environment variable HOOKPLANE_RETENTION__DAYS", "{shown}");
    let (st, refused) = s.put("/api/v1/settings/retention", json!({ "days": 30, "confirm": true })).await;
    assert_problem(&(st, refused.clone()), 409, "conflict");
    assert!(refused["detail"].as_str().unwrap().contains("HOOKPLANE_RETENTION__DAYS"), "{refused}");
    let resp = s.client.get(s.url("/dashboard/settings")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let body = resp.text().await.unwrap();
    assert!(body.contains("change it there") && !body.contains("name=\"confirm\""), "{body}");
}
