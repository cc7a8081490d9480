//! Signing in to the dashboard: sessions, their expiry and rotation, sign-out, CSRF, throttling, and the
//! audit entries each leaves.

use hookplane::domain::Timestamp;
use hookplane::domain::access::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{ADMIN_TOKEN, Browser, Options, PASSWORD, SETUP_CODE, TestServer, add_operator, env, with_store};

async fn audit(s: &TestServer, query: &str) -> Vec<Value> {
    let r = s.client.get(s.url(&format!("/api/v1/audit?{query}"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    page["items"].as_array().unwrap().clone()
}

async fn server(opts: Options) -> TestServer {
    with_store(opts, |db| {
        add_operator(db, "alice", Role::Admin);
        add_operator(db, "victor", Role::Viewer);
    })
    .await
}

#[tokio::test]
async fn sign_in_makes_a_new_session_and_sign_out_ends_it() {
    let s = server(Options::default()).await;
    let mut b = Browser::new(&s);

    let r = b.get("/dashboard/webhooks?status=failed").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=%2Fdashboard%2Fwebhooks%3Fstatus%3Dfailed");

    // A session id planted before sign-in (fixation) is not the one sign-in makes, and stays worthless.
    let planted = "A".repeat(43);
    b.cookies.insert("hookplane_session".into(), planted.clone());
    let form = b.get("/login?next=%2Fdashboard%2Fwebhooks%3Fstatus%3Dfailed").await;
    assert!(form.body.contains("value=\"/dashboard/webhooks?status=failed\""), "next travels in the form");
    let csrf = form.csrf();
    let wrong = b.post("/login", &[("username", "alice"), ("password", "not the password"), ("csrf", &csrf)]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("The username or password is not right."));
    assert!(wrong.body.contains("value=\"alice\""), "the username is kept");
    assert!(!wrong.set_cookies().iter().any(|c| c.starts_with("hookplane_session=")));

    let ok = b
        .post(
            "/login",
            &[
                ("username", "Alice"),
                ("password", PASSWORD),
                ("csrf", &csrf),
                ("next", "/dashboard/webhooks?status=failed"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location(), "/dashboard/webhooks?status=failed");
    let cookie = ok.set_cookies().into_iter().find(|c| c.starts_with("hookplane_session=")).unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP unless configured");
    let first = b.cookies["hookplane_session"].clone();
    assert_ne!(first, planted);

    let page = b.get("/dashboard/webhooks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("alice") && page.body.contains("Sign out"));
    assert!(page.body.contains("Audit log"), "admins see the audit log link");

    // Signing in again from the same browser (a second tab's form) replaces the session: the old id stops
    // working.
    let again = b.post("/login", &[("username", "alice"), ("password", PASSWORD), ("csrf", &csrf)]).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let second = b.cookies["hookplane_session"].clone();
    assert_ne!(first, second);
    let mut stale = Browser::new(&s);
    stale.cookies.insert("hookplane_session".into(), first);
    assert_eq!(stale.get("/dashboard/webhooks").await.status, StatusCode::SEE_OTHER);

    // Sign-out needs the form's token; without it nothing happens.
    let csrf = b.get("/dashboard/webhooks").await.csrf();
    let refused = b.post("/logout", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("Nothing was changed"));
    let refused = b.post("/logout", &[("csrf", "forged")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(b.get("/dashboard/webhooks").await.status, StatusCode::OK, "still signed in");

    let out = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login?signed_out=1");
    assert!(!b.cookies.contains_key("hookplane_session"), "the cookie is cleared");
    let mut kept = Browser::new(&s);
    kept.cookies.insert("hookplane_session".into(), second);
    assert_eq!(kept.get("/dashboard/webhooks").await.status, StatusCode::SEE_OTHER, "the session ended");
    assert!(b.get("/login?signed_out=1").await.body.contains("You have signed out."));

    // Each step is in the audit log, newest first, with who, what, target and address.
    let entries = audit(&s, "").await;
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions[..4], ["sign_out", "sign_in", "sign_in", "sign_in_failed"], "{entries:#?}");
    for e in &entries[..4] {
        assert_eq!(e["performed_by"], "operator:alice");
        assert_eq!(e["client"], "127.0.0.1");
        assert!(e["target_id"].as_str().unwrap().starts_with("op_"), "{e}");
    }
    let created = audit(&s, "action=operator_created").await;
    assert_eq!(created.len(), 2);
    assert!(created.iter().all(|e| e["performed_by"] == "cli"));
    for (query, says) in [
        ("action=explode", "is not an audit action"),
        ("cursor=nonsense", "`cursor`: `nonsense` is not a valid audit entry id"),
        ("limit=0", "between 1 and 500"),
        ("from=yesterday", "RFC 3339"),
    ] {
        let bad = s.client.get(s.url(&format!("/api/v1/audit?{query}"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(bad.text().await.unwrap().contains(says), "{query}");
    }

    // Pages of one follow their cursors through every entry, newest first, and end without a cursor.
    let mut paged = Vec::new();
    let mut query = "limit=1".to_owned();
    loop {
        let r = s.client.get(s.url(&format!("/api/v1/audit?{query}"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        let page: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        paged.extend(page["items"].as_array().unwrap().iter().map(|e| e["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("limit=1&cursor={c}"),
            None => break,
        }
    }
    let all: Vec<Value> = audit(&s, "limit=500").await.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(paged, all);
    assert_eq!(all.len(), entries.len());
    // A time window is a key range: entries from the first sign-in on are the four newest.
    let first_sign_in = entries[3]["at"].as_str().unwrap().to_owned();
    let since = audit(&s, &format!("from={first_sign_in}")).await;
    assert!(since.len() >= 4 && since.len() < all.len(), "{} of {}", since.len(), all.len());
    assert!(audit(&s, &format!("to={first_sign_in}&action=sign_out")).await.is_empty());
}

#[tokio::test]
async fn a_sign_in_form_without_its_token_changes_nothing() {
    let s = server(Options::default()).await;
    let mut b = Browser::new(&s);
    let r = b.post("/login", &[("username", "alice"), ("password", PASSWORD)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("hookplane_session"));
    // A token made for another browser's pre-session cookie does not fit this one.
    let mut other = Browser::new(&s);
    let theirs = other.get("/login").await.csrf();
    b.get("/login").await;
    let r = b.post("/login", &[("username", "alice"), ("password", PASSWORD), ("csrf", &theirs)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("hookplane_session"));
    assert!(audit(&s, "action=sign_in").await.is_empty(), "nothing was checked, nothing signed in");
    assert!(audit(&s, "action=sign_in_failed").await.is_empty());
}

#[tokio::test]
async fn an_oversized_or_malformed_sign_in_is_refused_unread() {
    let s = server(Options::default()).await;
    let mut b = Browser::new(&s);
    let csrf = b.get("/login").await.csrf();
    let huge = "x".repeat(9 * 1024);
    let r = b.post("/login", &[("username", "alice"), ("password", &huge), ("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A password typed into the username box is not a username: it is neither shown again nor audited.
    let r = b.post("/login", &[("username", "my secret pass phrase"), ("password", PASSWORD), ("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!r.body.contains("my secret pass phrase"));
    let failed = audit(&s, "action=sign_in_failed").await;
    assert_eq!(failed.len(), 1, "the oversized form was not checked");
    assert_eq!(failed[0]["performed_by"], "operator:(invalid username)");
    assert!(!failed[0].to_string().contains("pass phrase"));
    // After sign-in, `next` leads only to a path of this site.
    let r = b
        .post("/login", &[("username", "alice"), ("password", PASSWORD), ("csrf", &csrf), ("next", "/\t/evil.example")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/dashboard/webhooks");
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_absolute_age() {
    let start = Timestamp::parse_rfc3339("2026-11-28T09:00:00Z").unwrap();
    let s = server(Options { clock_at: Some(start), ..Options::default() }).await;
    let minute = 60_000;

    let mut b = Browser::new(&s);
    assert_eq!(b.sign_in("victor", PASSWORD).await.status, StatusCode::SEE_OTHER);
    s.clock.advance_millis(59 * minute);
    assert_eq!(b.get("/dashboard/webhooks").await.status, StatusCode::OK, "59 idle minutes are fine");
    s.clock.advance_millis(60 * minute);
    let r = b.get("/dashboard/webhooks").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "60 idle minutes end it");
    assert!(r.location().starts_with("/login"));

    // Active all along, a session still ends 12 hours after sign-in.
    assert_eq!(b.sign_in("victor", PASSWORD).await.status, StatusCode::SEE_OTHER);
    for _ in 0..14 {
        s.clock.advance_millis(50 * minute);
        assert_eq!(b.get("/dashboard/webhooks").await.status, StatusCode::OK);
    }
    s.clock.advance_millis(21 * minute); // 12 h 01 min after sign-in
    assert_eq!(b.get("/dashboard/webhooks").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_in_is_throttled_per_account_and_per_address() {
    let start = Timestamp::parse_rfc3339("2026-11-28T09:00:00Z").unwrap();
    let opts = Options {
        env: env(&[
            ("HOOKPLANE_AUTH__LOGIN_FAILURES_PER_ACCOUNT", "3"),
            ("HOOKPLANE_AUTH__LOGIN_FAILURES_PER_ADDRESS", "6"),
        ]),
        clock_at: Some(start),
        ..Options::default()
    };
    let s = server(opts).await;
    let mut b = Browser::new(&s);
    for _ in 0..3 {
        assert_eq!(b.sign_in("alice", "wrong password!").await.status, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password is not checked, and the page says why and for how long.
    let locked = b.sign_in("alice", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        locked.body.contains("Too many failed sign-ins for this account; try again in 15 minutes"),
        "{}",
        locked.body
    );
    assert_eq!(locked.headers["retry-after"], "900");
    assert!(!b.cookies.contains_key("hookplane_session"));
    // Another account from the same address is not locked by it.
    assert_eq!(b.sign_in("victor", PASSWORD).await.status, StatusCode::SEE_OTHER);
    s.clock.advance_millis(15 * 60_000);
    assert_eq!(b.sign_in("alice", PASSWORD).await.status, StatusCode::SEE_OTHER, "the window passed");

    // One address guessing across many accounts is stopped by the address limit.
    for i in 0..6 {
        assert_eq!(b.sign_in(&format!("nobody{i}"), "wrong password!").await.status, StatusCode::UNAUTHORIZED);
    }
    let sprayed = b.sign_in("victor", PASSWORD).await;
    assert_eq!(sprayed.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(sprayed.body.contains("from your address"));
    // Failed attempts for unknown names are audited under the name that was tried, with no target.
    let failed = audit(&s, "action=sign_in_failed&performed_by=operator:nobody0").await;
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["target_id"].is_null());
}

#[tokio::test]
async fn secure_cookies_are_host_bound_when_configured() {
    let opts = Options { env: env(&[("HOOKPLANE_AUTH__SECURE_COOKIES", "true")]), ..Options::default() };
    let s = server(opts).await;
    let mut b = Browser::new(&s);
    let form = b.get("/login").await;
    assert!(form.set_cookies().iter().any(|c| c.starts_with("__Host-hookplane_csrf=") && c.contains("; Secure")));
    let ok = b.sign_in("alice", PASSWORD).await;
    let cookie = ok.set_cookies().into_iter().find(|c| c.starts_with("__Host-hookplane_session=")).unwrap();
    assert!(cookie.contains("; Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"), "{cookie}");
    assert_eq!(b.get("/dashboard/webhooks").await.status, StatusCode::OK);
}

#[tokio::test]
async fn before_the_first_operator_this_machine_gets_in_and_is_told_how_to_close_it() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    assert_eq!(b.get(&format!("/setup?code={SETUP_CODE}")).await.status, StatusCode::SEE_OTHER);
    let page = b.get("/dashboard/webhooks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("this machine"));
    let login = b.get("/login").await;
    assert!(login.body.contains("hookplane admin create-user --username you --role admin"));
    // Once an operator exists, this machine signs in like everyone else.
    let dir = s.stop().await;
    let s = with_store_dir(dir).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.get("/dashboard/webhooks").await.status, StatusCode::SEE_OTHER);
    assert!(!b.get("/login").await.body.contains("No operator exists yet"));
}

async fn with_store_dir(dir: tempfile::TempDir) -> TestServer {
    let store = hookplane::storage::Store::open(&dir.path().join("data")).unwrap();
    add_operator(&store.db().unwrap(), "alice", Role::Admin);
    store.close();
    TestServer::start_with(Options { dir: Some(dir), ..Options::default() }).await
}

#[tokio::test]
async fn parallel_guesses_get_no_more_tries_than_the_limit() {
    let opts = Options { env: env(&[("HOOKPLANE_AUTH__LOGIN_FAILURES_PER_ACCOUNT", "3")]), ..Options::default() };
    let s = server(opts).await;
    let mut b = Browser::new(&s);
    let csrf = b.get("/login").await.csrf();
    let jar: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let jar = jar.join("; ");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let guesses = (0..12).map(|i| {
        let body = serde_urlencoded::to_string([
            ("username", "alice"),
            ("password", &format!("guess number {i}")),
            ("csrf", &csrf),
        ])
        .unwrap();
        client
            .post(s.url("/login"))
            .header("cookie", &jar)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    });
    let mut statuses: Vec<u16> =
        futures_util::future::join_all(guesses).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [vec![401; 3], vec![429; 9]].concat(), "exactly the limit was checked");
    assert_eq!(audit(&s, "action=sign_in_failed").await.len(), 3);
}
