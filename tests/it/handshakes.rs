//! Handshakes against a local server that plays Shopify's GraphQL Admin API and Zoho's OAuth and
//! notification API, with their error shapes: create, update and verify; throttling waited out; a bad
//! token, a frozen and a locked shop; a Zoho channel enabled, refreshed ahead of its expiry on the
//! watchdog's schedule (manual clock) and an expired refresh token; the audit entries; and credentials that
//! never show in the data directory or any answer.

use std::time::Duration;

use hookplane::demo::providers::{MockProviders, Scripted};
use hookplane::domain::Clock as _;
use serde_json::{Value, json};

use crate::support::*;

const SHOP: &str = "handshake-test.myshopify.com";
const PUBLIC: &str = "https://hooks.example.com";
const SHOPIFY_TOKEN: &str = "shpat_handshake_test_token_0123";
const ZOHO_CLIENT_SECRET: &str = "zoho-client-secret-4d9c";
const ZOHO_REFRESH: &str = "1000.refresh.9f8e7d";

async fn providers() -> MockProviders {
    let mock = MockProviders::bind().unwrap();
    mock.serve().unwrap();
    mock
}

/// A server on the manual clock whose handshakes talk to `mock`; `extra` adds variables.
async fn server(mock: &MockProviders, extra: &[(&str, &str)]) -> TestServer {
    let (shopify, zoho) = (mock.shopify_admin_url(), mock.zoho_url());
    let mut vars = vec![
        ("HOOKPLANE_PUBLIC_URL", PUBLIC),
        ("HOOKPLANE_HANDSHAKE__SHOPIFY_ADMIN_URL", shopify.as_str()),
        ("HOOKPLANE_HANDSHAKE__ZOHO_ACCOUNTS_URL", zoho.as_str()),
        ("HOOKPLANE_HANDSHAKE__ZOHO_API_URL", zoho.as_str()),
        ("HOOKPLANE_HANDSHAKE__POLL_INTERVAL_MS", "3600000"),
        ("HOOKPLANE_ALERTS__EVALUATE_INTERVAL_MS", "50"),
    ];
    vars.extend_from_slice(extra);
    TestServer::start_with(Options { env: env(&vars), clock_at: Some(now()), ..Options::default() }).await
}

async fn shopify_sub(s: &TestServer, topic: &str) -> String {
    let (st, made) =
        s.post("/api/v1/subscriptions", json!({ "source": "shopify", "topic": topic, "account": SHOP })).await;
    assert_eq!(st, 201, "{made}");
    made["subscription"]["id"].as_str().unwrap().to_owned()
}

async fn handshake(s: &TestServer, sub: &str) -> Value {
    let (st, run) = s.post(&format!("/api/v1/subscriptions/{sub}/handshake"), json!({})).await;
    assert_eq!(st, 200, "{run}");
    run
}

async fn audit(s: &TestServer, action: &str) -> Vec<Value> {
    let (_, page) = s.get(&format!("/api/v1/audit?action={action}&limit=100")).await;
    page["items"].as_array().unwrap().clone()
}

fn texts(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn shopify_subscriptions_are_verified_updated_and_created_and_strangers_only_reported() {
    let mock = providers().await;
    let callback = format!("{PUBLIC}/shopify/webhook");
    let present = mock.add_webhook(SHOP, "ORDERS_CREATE", &callback, "JSON");
    let xml = mock.add_webhook(SHOP, "ORDERS_PAID", &callback, "XML");
    let stranger = mock.add_webhook(SHOP, "PRODUCTS_UPDATE", "https://elsewhere.example.com/hooks", "JSON");
    let s = server(&mock, &[("SHOPIFY_ADMIN_ACCESS_TOKEN", SHOPIFY_TOKEN)]).await;
    let create = shopify_sub(&s, "orders/create").await;
    let paid = shopify_sub(&s, "orders/paid").await;
    let fulfilled = shopify_sub(&s, "orders/fulfilled").await;

    let run = handshake(&s, &create).await;
    assert_eq!(
        (run["outcome"].as_str(), run["provider_id"].as_str()),
        (Some("verified"), Some(present.as_str())),
        "{run}"
    );
    assert_eq!(run["repaired"], json!([]));
    assert!(texts(&run["unknown"]).iter().any(|u| u.starts_with(&stranger)), "{run}");
    assert!(texts(&run["checked"]).iter().any(|c| c.contains("ORDERS_CREATE sends to")), "{run}");

    // The contract's own path, with a bearer token, answers the same way.
    let resp =
        s.client.post(s.url(&format!("/webhooks/handshake/{paid}"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let (st, run) = json_of(resp).await;
    assert_eq!(st, 200, "{run}");
    assert_eq!(run["outcome"], "repaired", "{run}");
    assert!(texts(&run["repaired"])[0].starts_with(&format!("updated {xml}: it sent XML")), "{run}");

    let (st, all) = s.post("/api/v1/handshakes", json!({})).await;
    assert_eq!(st, 200, "{all}");
    let runs = all["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{all}");
    let made = runs.iter().find(|r| r["subscription_id"] == json!(fulfilled)).unwrap();
    assert_eq!(made["outcome"], "repaired", "{made}");
    assert!(runs.iter().filter(|r| r["subscription_id"] != json!(fulfilled)).all(|r| r["outcome"] == "verified"));

    let hooks = mock.webhooks(SHOP);
    assert_eq!(hooks.len(), 4, "{hooks:?}");
    assert!(hooks.iter().any(|h| h.id == stranger), "a stranger is never deleted");
    let new = hooks.iter().find(|h| h.topic == "ORDERS_FULFILLED").unwrap();
    assert_eq!((new.uri.as_str(), new.format.as_str()), (callback.as_str(), "JSON"));
    assert!(hooks.iter().filter(|h| h.id != stranger).all(|h| h.format == "JSON" && h.uri == callback));
    let calls = mock.requests();
    assert!(calls.iter().all(|r| r.header("x-shopify-access-token") == Some(SHOPIFY_TOKEN)));
    assert!(calls.iter().all(|r| r.path == format!("/shopify/{SHOP}/admin/api/2026-10/graphql.json")), "{calls:?}");

    let (_, sub) = s.get(&format!("/api/v1/subscriptions/{fulfilled}")).await;
    assert_eq!(sub["status"], "active", "{sub}");
    assert_eq!(sub["handshake"]["last_outcome"], "repaired", "{sub}");
    assert_eq!(sub["handshake"]["provider_id"], json!(new.id));
    assert!(sub["last_verified_at"].is_string(), "{sub}");
    assert_eq!(sub["handshake_runs"].as_array().unwrap().len(), 1, "{sub}");

    let entries = audit(&s, "handshake_ran").await;
    assert_eq!(entries.len(), 5, "every run, each audited");
    let fulfilled_entry = entries.iter().find(|e| e["target_id"] == json!(fulfilled)).unwrap();
    let changes = fulfilled_entry["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c["field"] == "repaired" && c["after"].as_str().unwrap().starts_with("created ")));
    assert_eq!(fulfilled_entry["performed_by"], "admin-token");
}

#[tokio::test]
async fn throttling_is_waited_out_and_refusals_fail_with_shopifys_words_until_fixed() {
    let mock = providers().await;
    let s = server(&mock, &[("SHOPIFY_ADMIN_ACCESS_TOKEN", SHOPIFY_TOKEN)]).await;
    let sub = shopify_sub(&s, "orders/create").await;

    mock.script([Scripted::Throttled { requested: 112, available: 100, restore_rate: 1000 }]);
    let run = handshake(&s, &sub).await;
    assert_eq!(run["outcome"], "repaired", "{run}");
    assert_eq!(mock.requests().len(), 3, "the throttled list, the list again, the create");

    let invalid = r#"{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}"#;
    mock.script([Scripted::Status(401, invalid.to_owned())]);
    let run = handshake(&s, &sub).await;
    assert_eq!(run["outcome"], "failed", "{run}");
    assert_eq!(run["failure"]["code"], "unauthorized");
    assert_eq!(run["failure"]["transient"], false);
    assert!(run["failure"]["provider_said"].as_str().unwrap().contains("Invalid API key or access token"), "{run}");
    let (_, shown) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(shown["status"], "handshake_failed", "{shown}");

    // The alert rule opens an incident for it, linked from the banner.
    let incident = wait_for(&s, &format!("/api/v1/incidents?rule=handshake&subscription={sub}"), |p| {
        p["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    assert!(incident["items"][0]["summary"].as_str().unwrap().contains("401"), "{incident}");
    let (_, dash) = s.get("/api/v1/dashboard").await;
    let banner = dash["banners"].as_array().unwrap().iter().find(|b| b["rule"] == "handshake").unwrap().clone();
    assert_eq!(banner["code"], "handshake_failed", "{banner}");

    for (status, code) in [(402, "shop_frozen"), (423, "shop_locked")] {
        mock.script([Scripted::Status(status, "{}".to_owned())]);
        let run = handshake(&s, &sub).await;
        assert_eq!(run["failure"]["code"], code, "{run}");
    }
    let run = handshake(&s, &sub).await;
    assert_eq!(run["outcome"], "verified", "fixed on Shopify's side: {run}");
    let (_, shown) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(shown["status"], "active", "{shown}");
    let entries = audit(&s, "handshake_ran").await;
    let back = entries[0]["changes"].as_array().unwrap().iter().find(|c| c["field"] == "handshake_status").cloned();
    assert_eq!(back, Some(json!({ "field": "handshake_status", "before": "handshake_failed", "after": "ok" })));
}

/// Polls `path` until `done` holds for its answer.
async fn wait_for(s: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        let (st, v) = s.get(path).await;
        assert_eq!(st, 200, "{v}");
        if done(&v) {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{path} never became as expected: {last}");
}

#[tokio::test]
async fn a_zoho_channel_is_enabled_checked_on_schedule_refreshed_before_expiry_and_a_dead_refresh_token_reported() {
    let mock = providers().await;
    let s = server(&mock, &[("HOOKPLANE_HANDSHAKE__POLL_INTERVAL_MS", "20")]).await;
    let (st, made) = s
        .post(
            "/api/v1/subscriptions",
            json!({ "source": "zoho", "topic": "Leads.all", "account": "org-1", "name": "leads",
                    "channel_id": "1000000068001", "secret": "leads-token" }),
        )
        .await;
    assert_eq!(st, 201, "{made}");
    let credential = json!({ "client_id": "1000.CLIENT", "client_secret": ZOHO_CLIENT_SECRET,
                             "refresh_token": ZOHO_REFRESH, "data_centre": "eu" });
    let (st, set) = s.put("/api/v1/credentials/zoho/org-1", credential).await;
    assert_eq!(st, 200, "{set}");
    assert_eq!((set["provider"].as_str(), set["data_centre"].as_str()), (Some("zoho"), Some("eu")));

    // Setting a credential wakes the watchdog: the channel is enabled with the token ingest verifies.
    let sub = wait_for(&s, "/api/v1/subscriptions/leads", |v| v["handshake"]["last_outcome"] == "repaired").await;
    let channels = mock.channels();
    assert_eq!(channels.len(), 1);
    let c = &channels[0];
    assert_eq!((c.channel_id.as_str(), c.token.as_str()), ("1000000068001", "leads-token"));
    assert_eq!(
        (c.notify_url.as_str(), c.events.as_slice()),
        (&*format!("{PUBLIC}/zoho/incoming"), &["Leads.all".to_owned()][..])
    );
    let start = s.clock.now();
    let week = start.plus_millis(167 * 3_600_000);
    assert_eq!(c.expiry, format!("{}+00:00", &week.to_rfc3339()[..19]));
    assert_eq!(sub["handshake"]["next_at"], json!(start.plus_millis(3_600_000).to_rfc3339()), "{sub}");
    let token_call = mock.requests().into_iter().find(|r| r.path == "/zoho/oauth/v2/token").unwrap();
    assert!(token_call.body.contains("grant_type=refresh_token") && token_call.body.contains("client_id=1000.CLIENT"));
    let watch = mock.requests().into_iter().find(|r| r.path == "/zoho/crm/v8/actions/watch").unwrap();
    assert!(watch.header("authorization").unwrap().starts_with("Zoho-oauthtoken zat-"), "{watch:?}");

    // An hour on: checked, nothing to repair.
    s.clock.advance_millis(3_600_000 + 1);
    wait_for(&s, "/api/v1/subscriptions/leads", |v| v["handshake_runs"].as_array().unwrap().len() == 2).await;
    let (_, sub) = s.get("/api/v1/subscriptions/leads").await;
    assert_eq!(sub["handshake_runs"][0]["outcome"], "verified", "{sub}");
    assert!(mock.requests().iter().filter(|r| r.method == "PATCH").count() == 0);

    // Six hours before it expires, it is refreshed for another week.
    s.clock.advance_millis(161 * 3_600_000);
    wait_for(&s, "/api/v1/subscriptions/leads", |v| v["handshake_runs"][0]["outcome"] == "repaired").await;
    let (_, sub) = s.get("/api/v1/subscriptions/leads").await;
    assert!(texts(&sub["handshake_runs"][0]["repaired"])[0].contains("it was near its expiry"), "{sub}");
    assert_eq!(mock.requests().iter().filter(|r| r.method == "PATCH").count(), 1);
    assert_ne!(mock.channels()[0].expiry, c.expiry, "a new expiry");

    // A rotated token reaches the channel at once, before the old one's overlap ends.
    let rotate = json!({ "secret": "leads-token-2", "secret_confirmation": "leads-token-2", "overlap_hours": 1 });
    let (st, rotated) = s.post("/api/v1/subscriptions/leads/secret/rotate", rotate).await;
    assert_eq!(st, 200, "{rotated}");
    wait_for(&s, "/api/v1/subscriptions/leads", |v| v["handshake_runs"].as_array().unwrap().len() == 4).await;
    assert_eq!(mock.channels()[0].token, "leads-token-2");

    // A refresh token Zoho no longer takes: refused, in Zoho's words, and the channel is failed.
    mock.refuse_refresh_token("1000.refresh.dead");
    let dead = json!({ "client_id": "1000.CLIENT", "client_secret": ZOHO_CLIENT_SECRET, "refresh_token": "1000.refresh.dead" });
    let (st, _) = s.put("/api/v1/credentials/zoho/org-1", dead).await;
    assert_eq!(st, 200);
    let sub = wait_for(&s, "/api/v1/subscriptions/leads", |v| v["handshake_runs"][0]["outcome"] == "failed").await;
    let failure = &sub["handshake_runs"][0]["failure"];
    assert_eq!(failure["code"], "oauth_refused", "{sub}");
    assert!(failure["message"].as_str().unwrap().contains("invalid_code"), "{failure}");
    assert_eq!(sub["status"], "handshake_failed", "{sub}");

    // Credentials are audited by fingerprint and never appear in any answer or file.
    let sets = audit(&s, "credential_set").await;
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0]["changes"][0]["before"], sets[1]["changes"][0]["after"], "{sets:?}");
    let (_, listed) = s.get("/api/v1/credentials").await;
    let (_, all_audit) = s.get("/api/v1/audit?limit=500").await;
    let (_, subs) = s.get("/api/v1/subscriptions").await;
    for answer in [listed.to_string(), all_audit.to_string(), subs.to_string()] {
        for secret in [ZOHO_CLIENT_SECRET, ZOHO_REFRESH, "1000.refresh.dead"] {
            assert!(!answer.contains(secret), "{secret} in {answer}");
        }
    }
    let dir = s.stop().await;
    assert_no_file_holds(dir.path(), &[ZOHO_CLIENT_SECRET, ZOHO_REFRESH, "1000.refresh.dead", "zat-"]);
}

/// No file under `dir` holds any of `secrets`.
fn assert_no_file_holds(dir: &std::path::Path, secrets: &[&str]) {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            files += 1;
            for s in secrets {
                assert!(!bytes.windows(s.len()).any(|w| w == s.as_bytes()), "{s} in {}", path.display());
            }
        }
    }
    assert!(files > 0, "the data directory holds files");
}

#[tokio::test]
async fn a_shopify_token_set_through_the_api_is_used_sealed_and_never_shown() {
    let mock = providers().await;
    let s = server(&mock, &[]).await;
    let sub = shopify_sub(&s, "orders/create").await;
    let (st, refused) = s.post(&format!("/api/v1/subscriptions/{sub}/handshake"), json!({})).await;
    assert_problem(&(st, refused.clone()), 409, "credential_missing");
    assert!(refused["detail"].as_str().unwrap().contains("SHOPIFY_ADMIN_ACCESS_TOKEN"), "{refused}");
    assert_eq!(audit(&s, "handshake_ran").await.len(), 0, "a refusal changes nothing");

    let (st, all) = s.post("/api/v1/handshakes", json!({})).await;
    assert_eq!((st.as_u16(), all["runs"].clone()), (200, json!([])), "{all}");
    assert!(
        all["skipped"][0].as_str().unwrap().starts_with(&format!("shopify/{SHOP}: no Admin API access token")),
        "{all}"
    );

    let (st, bad) = s.put("/api/v1/credentials/shopify/evil.example.com", json!({ "access_token": "x" })).await;
    assert_problem(&(st, bad), 400, "invalid_request");
    let (st, set) =
        s.put(&format!("/api/v1/credentials/shopify/{SHOP}"), json!({ "access_token": SHOPIFY_TOKEN })).await;
    assert_eq!(st, 200, "{set}");
    assert_eq!(set["fingerprint"].as_str().unwrap().len(), 14, "{set}");
    // Setting it wakes the watchdog, which creates the missing subscription at once.
    let shown = wait_for(&s, &format!("/api/v1/subscriptions/{sub}"), |v| v["handshake"].is_object()).await;
    assert_eq!(shown["handshake_runs"][0]["outcome"], "repaired", "{shown}");
    assert_eq!(shown["handshake_runs"][0]["by"], "system", "{shown}");
    let run = handshake(&s, &sub).await;
    assert_eq!(run["outcome"], "verified", "{run}");
    assert!(mock.requests().iter().all(|r| r.header("x-shopify-access-token") == Some(SHOPIFY_TOKEN)));

    let (_, listed) = s.get("/api/v1/credentials").await;
    let (_, entries) = s.get("/api/v1/audit?limit=500").await;
    for answer in [listed.to_string(), entries.to_string(), run.to_string()] {
        assert!(!answer.contains(SHOPIFY_TOKEN), "{answer}");
    }
    let (st, gone) = s.delete(&format!("/api/v1/credentials/shopify/{SHOP}")).await;
    assert_eq!((st.as_u16(), gone["fingerprint"].clone()), (200, set["fingerprint"].clone()));
    let (st, _) = s.delete(&format!("/api/v1/credentials/shopify/{SHOP}")).await;
    assert_eq!(st, 404);
    let dir = s.stop().await;
    assert_no_file_holds(dir.path(), &[SHOPIFY_TOKEN]);
}

#[tokio::test]
async fn handshakes_that_cannot_run_are_refused_clearly_and_change_nothing() {
    let mock = providers().await;
    let s = TestServer::start_with(Options {
        env: env(&[
            ("SHOPIFY_ADMIN_ACCESS_TOKEN", SHOPIFY_TOKEN),
            ("HOOKPLANE_HANDSHAKE__SHOPIFY_ADMIN_URL", &mock.shopify_admin_url()),
        ]),
        ..Options::default()
    })
    .await;
    let sub = shopify_sub(&s, "orders/create").await;
    let (st, refused) = s.post(&format!("/api/v1/subscriptions/{sub}/handshake"), json!({})).await;
    assert_problem(&(st, refused.clone()), 409, "public_url_missing");
    let (st, refused) = s.post("/api/v1/handshakes", json!({})).await;
    assert_problem(&(st, refused), 409, "public_url_missing");
    let (st, std_sub) = s
        .post("/api/v1/subscriptions", json!({ "source": "standard", "topic": "invoice.paid", "account": "billing" }))
        .await;
    assert_eq!(st, 201, "{std_sub}");
    let id = std_sub["subscription"]["id"].as_str().unwrap();
    let (st, refused) = s.post(&format!("/api/v1/subscriptions/{id}/handshake"), json!({})).await;
    assert_problem(&(st, refused.clone()), 409, "handshake_unavailable");
    let (_, shown) = s.get(&format!("/api/v1/subscriptions/{id}")).await;
    assert!(shown["handshake_unavailable"].as_str().unwrap().contains("Standard Webhooks"), "{shown}");
    let (st, refused) = s.post("/api/v1/subscriptions/nope/handshake", json!({})).await;
    assert_problem(&(st, refused), 404, "not_found");
    let resp = s.client.post(s.url(&format!("/webhooks/handshake/{sub}"))).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(mock.requests().is_empty(), "nothing reached the provider");
    assert_eq!(audit(&s, "handshake_ran").await.len(), 0);
}

#[tokio::test]
async fn operators_retry_a_handshake_from_the_panel_and_see_what_it_did() {
    use hookplane::domain::access::Role;
    let mock = providers().await;
    let (shopify, vars) =
        (mock.shopify_admin_url(), [("HOOKPLANE_PUBLIC_URL", PUBLIC), ("SHOPIFY_ADMIN_ACCESS_TOKEN", SHOPIFY_TOKEN)]);
    let mut env = env(&vars);
    env.insert("HOOKPLANE_HANDSHAKE__SHOPIFY_ADMIN_URL".into(), shopify);
    env.insert("HOOKPLANE_HANDSHAKE__POLL_INTERVAL_MS".into(), "3600000".into());
    let s = with_store(Options { env, clock_at: Some(now()), ..Options::default() }, |db| {
        add_operator(db, "olga", Role::Operator);
        add_operator(db, "vic", Role::Viewer);
    })
    .await;
    let sub = shopify_sub(&s, "orders/create").await;
    let mut vic = Browser::new(&s);
    vic.sign_in("vic", PASSWORD).await;
    assert!(!vic.get("/dashboard/webhooks").await.body.contains("Retry handshake"), "viewers do not retry");
    let mut olga = Browser::new(&s);
    olga.sign_in("olga", PASSWORD).await;
    let page = olga.get("/dashboard/webhooks").await;
    assert!(page.body.contains("Retry handshake") && page.body.contains("never: it runs once"), "{}", page.body);
    let csrf = page.csrf();

    let form = [
        ("intent", "handshake"),
        ("subscription", sub.as_str()),
        ("return_to", "/dashboard/webhooks"),
        ("csrf", &csrf),
    ];
    let done = olga.post("/dashboard/webhooks", &form).await;
    assert_eq!(done.status, reqwest::StatusCode::SEE_OTHER);
    assert!(
        done.location().starts_with("/dashboard/webhooks?notice=handshake_repaired&target=shopify-orders-create-"),
        "{}",
        done.location()
    );
    let page = olga.get(done.location()).await;
    assert!(page.body.contains("Handshake repaired") && page.body.contains("Recent handshakes"), "{}", page.body);
    assert!(page.body.contains("created gid://shopify/WebhookSubscription/"), "{}", page.body);

    mock.script([Scripted::Status(423, r#"{"errors":"Shop is locked"}"#.to_owned())]);
    let failed = olga.post("/dashboard/webhooks", &form).await;
    assert!(failed.location().contains("notice=handshake_failed"), "{}", failed.location());
    let page = olga.get(failed.location()).await;
    assert!(page.body.contains("banner-warning") && page.body.contains("Handshake failed"), "{}", page.body);
    assert!(page.body.contains("The last run failed") && page.body.contains("Shop is locked"), "{}", page.body);
    assert!(page.body.contains("Handshake failed</span>") || page.body.contains(">Handshake failed<"), "the badge");
    let (_, entries) = s.get("/api/v1/audit?action=handshake_ran").await;
    assert_eq!(entries["items"][0]["performed_by"], "operator:olga", "{entries}");
}

/// Runs the binary with `stdin`, as an operator's shell would, and hands back its status and output.
pub(crate) async fn cli(args: Vec<String>, stdin: &'static str) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hookplane"))
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOOKPLANE_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_sets_credentials_from_stdin_and_runs_handshakes() {
    let mock = providers().await;
    let s = server(&mock, &[]).await;
    let sub = shopify_sub(&s, "orders/create").await;
    let url = |rest: &[&str]| -> Vec<String> {
        rest.iter().map(|a| (*a).to_owned()).chain(["--url".to_owned(), s.base.clone()]).collect()
    };
    let (ok, out, err) =
        cli(url(&["credentials", "set", "shopify", SHOP, "--secret-stdin"]), "shpat_from_stdin_0001\n").await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"fingerprint\"") && !out.contains("shpat_from_stdin_0001"), "{out}");
    wait_for(&s, &format!("/api/v1/subscriptions/{sub}"), |v| v["handshake"].is_object()).await;

    let (ok, out, err) = cli(url(&["handshake", "--subscription", &sub]), "").await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"outcome\": \"verified\""), "{out}");
    mock.script([Scripted::Status(401, "{\"errors\":\"[API] Invalid API key or access token\"}".to_owned())]);
    let (ok, out, err) = cli(url(&["handshake", "--all"]), "").await;
    assert!(!ok, "a failed handshake fails the command: {out}");
    assert!(err.contains("1 of 1 handshakes failed") && out.contains("\"code\": \"unauthorized\""), "{out}{err}");
    assert!(mock.requests().iter().all(|r| r.header("x-shopify-access-token") == Some("shpat_from_stdin_0001")));
    let (ok, _, err) = cli(url(&["handshake"]), "").await;
    assert!(!ok && err.contains("--subscription"), "{err}");
}

#[tokio::test]
async fn a_channel_on_a_later_page_is_found_not_enabled_again() {
    use hookplane::demo::providers::MockChannel;
    let mock = providers().await;
    for n in 0..200 {
        mock.add_channel(MockChannel {
            channel_id: format!("{}", 5_000 + n),
            events: vec!["Deals.all".to_owned()],
            notify_url: "https://someone-else.example.com/zoho".to_owned(),
            token: "theirs".to_owned(),
            expiry: "2030-01-01T00:00:00+00:00".to_owned(),
        });
    }
    let week = now().plus_millis(167 * 3_600_000);
    mock.add_channel(MockChannel {
        channel_id: "1000000068001".to_owned(),
        events: vec!["Leads.all".to_owned()],
        notify_url: format!("{PUBLIC}/zoho/incoming"),
        token: "leads-token".to_owned(),
        expiry: format!("{}+00:00", &week.to_rfc3339()[..19]),
    });
    let s = server(&mock, &[]).await;
    let (st, _) = s
        .post(
            "/api/v1/subscriptions",
            json!({ "source": "zoho", "topic": "Leads.all", "account": "org-1", "name": "leads",
                    "channel_id": "1000000068001", "secret": "leads-token" }),
        )
        .await;
    assert_eq!(st, 201);
    let credential =
        json!({ "client_id": "1000.CLIENT", "client_secret": ZOHO_CLIENT_SECRET, "refresh_token": ZOHO_REFRESH });
    assert_eq!(s.put("/api/v1/credentials/zoho/org-1", credential).await.0, 200);
    let sub = wait_for(&s, "/api/v1/subscriptions/leads", |v| v["handshake"].is_object()).await;
    assert_eq!(sub["handshake_runs"][0]["outcome"], "verified", "{sub}");
    assert_eq!(sub["handshake_runs"][0]["unknown"].as_array().unwrap().len(), 200, "the others, reported");
    let pages: Vec<String> = mock.requests().into_iter().filter(|r| r.method == "GET").map(|r| r.path).collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(mock.requests().iter().all(|r| r.method != "POST" || r.path.contains("oauth")), "nothing enabled again");
}

#[tokio::test]
async fn a_credential_sealed_under_another_master_key_fails_loudly_not_silently() {
    let mock = providers().await;
    let s = server(&mock, &[]).await;
    let sub = shopify_sub(&s, "orders/create").await;
    let (st, _) = s.put(&format!("/api/v1/credentials/shopify/{SHOP}"), json!({ "access_token": SHOPIFY_TOKEN })).await;
    assert_eq!(st, 200);
    wait_for(&s, &format!("/api/v1/subscriptions/{sub}"), |v| v["handshake"].is_object()).await;
    let dir = s.stop().await;

    let other_key = "ff".repeat(32);
    let (shopify, zoho) = (mock.shopify_admin_url(), mock.zoho_url());
    let vars = [
        ("HOOKPLANE_MASTER_KEY", other_key.as_str()),
        ("HOOKPLANE_PUBLIC_URL", PUBLIC),
        ("HOOKPLANE_HANDSHAKE__SHOPIFY_ADMIN_URL", shopify.as_str()),
        ("HOOKPLANE_HANDSHAKE__ZOHO_API_URL", zoho.as_str()),
        ("HOOKPLANE_HANDSHAKE__POLL_INTERVAL_MS", "3600000"),
    ];
    let s = TestServer::start_with(Options {
        env: env(&vars),
        dir: Some(dir),
        clock_at: Some(now()),
        ..Options::default()
    })
    .await;
    let (st, refused) = s.post(&format!("/api/v1/subscriptions/{sub}/handshake"), json!({})).await;
    assert_problem(&(st, refused.clone()), 500, "internal");
    assert!(refused["detail"].as_str().unwrap().contains("HOOKPLANE_MASTER_KEY"), "{refused}");
    let (st, all) = s.post("/api/v1/handshakes", json!({})).await;
    assert_eq!(st, 200, "{all}");
    assert_eq!(all["runs"][0]["failure"]["code"], "credential_unreadable", "recorded, so it alerts: {all}");
    let (_, shown) = s.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(shown["status"], "handshake_failed", "{shown}");
}
