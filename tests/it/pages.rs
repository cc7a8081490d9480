//! The dashboard's HTML pages over real HTTP: what they show for each demo scenario, filters and search,
//! the payload view and download, escaping of hostile payloads, and who may open them.

use hookplane::demo::Scenario;
use hookplane::demo::factories::shopify_request;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

use crate::support::*;

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    html: String,
}

impl Page {
    fn count(&self, needle: &str) -> usize {
        self.html.matches(needle).count()
    }

    #[track_caller]
    fn has(&self, needle: &str) {
        assert!(self.html.contains(needle), "`{needle}` is not on the page:\n{}", self.html);
    }
}

async fn open(s: &TestServer, path: &str) -> Page {
    let resp = s.local().await.get(s.url(path)).send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    Page { status, headers, html: resp.text().await.unwrap() }
}

const ROWS: &str = "<tr data-delivery=\"";

#[tokio::test]
async fn base_scenario_shows_figures_a_page_of_deliveries_and_every_subscription() {
    let s = seeded(Scenario::Base).await;
    let p = open(&s, "/dashboard/webhooks").await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(p.headers["content-type"], "text/html; charset=utf-8");
    let csp = p.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(p.headers["x-content-type-options"], "nosniff");

    for label in ["Active subscriptions", "Deliveries, 24 h", "Failing topics", "Average latency, 24 h"] {
        p.has(label);
    }
    // The figures are the API's figures.
    let (_, api) = s.get("/api/v1/dashboard").await;
    p.has(&format!("<p class=\"kpi-value\">{}</p>", api["kpis"]["active_subscriptions"]));
    assert_eq!(p.count(ROWS), 50, "one default page");
    let api_ids: Vec<&str> =
        api["deliveries"]["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    let first_row = p.html.split(ROWS).nth(1).unwrap();
    assert!(first_row.starts_with(api_ids[0]), "newest first, as the API");
    for col in ["Event time", "Topic", "Source", "Status", "Response", "Latency"] {
        p.has(&format!(">{col}</th>"));
    }
    // A healthy day: successes, some only after a retry (warnings), no errors and no banners.
    assert!(p.count("badge badge-success\">Success") > 0);
    assert_eq!(p.count("badge badge-critical\">Error"), 0);
    assert_eq!(p.count("class=\"banner banner-critical\""), 0);
    // Every subscription has a panel with its callback URL, secret fingerprint and a sparkline.
    assert_eq!(p.count("<details class=\"card subscription\""), 10);
    assert_eq!(p.count("<svg class=\"sparkline\""), 10);
    p.has("Callback URL");
    p.has("/shopify/webhook</code>");
    p.has("Last handshake");
    // The accordions come before the delivery table; times read "… ago", the exact time on hover.
    assert!(p.html.find("class=\"subscriptions\"").unwrap() < p.html.find("class=\"index-table\"").unwrap());
    assert!(p.html.contains("data-ago>") && p.html.contains(" ago</time>") && p.html.contains(" UTC\" data-ago"));
    // The Shopify app secret from the environment: its age counts from when this instance first held it.
    p.has(" in use here");
    // View payload opens the modal with the script, and is the delivery page without it.
    p.has(&format!("href=\"/dashboard/webhooks/deliveries/{}\" data-payload=", api_ids[0]));
    // Pagination: an older page through the cursor, and it starts where the first ended.
    let next = api["deliveries"]["next_cursor"].as_str().unwrap();
    p.has(&format!("href=\"/dashboard/webhooks?cursor={next}\" rel=\"next\""));
    let older = open(&s, &format!("/dashboard/webhooks?cursor={next}")).await;
    assert_eq!(older.count(ROWS), 50);
    older.has("rel=\"first\"");
    assert!(!older.html.contains(&format!("{ROWS}{}", api_ids[0])));
    // The page needs no script of its own beyond the embedded file, and works without it.
    assert_eq!(p.count("<script"), 1);
    p.has("<script src=\"/assets/dashboard.js\" defer>");
    let js = s.client.get(s.url("/assets/dashboard.js")).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    let css = s.client.get(s.url("/assets/dashboard.css")).send().await.unwrap();
    assert!(css.text().await.unwrap().contains("--p-color-bg-fill-success-secondary: #affebf"));
}

#[tokio::test]
async fn failing_scenario_raises_banners_and_error_badges_and_filters_narrow_the_list() {
    let s = seeded(Scenario::Failing).await;
    let p = open(&s, "/dashboard/webhooks").await;
    assert_eq!(p.count("class=\"banner banner-critical\""), 1, "one banner for the subscription");
    assert_eq!(p.count("shop-orders is degraded"), 1);
    p.has("consecutive failed attempts");
    p.has("badge badge-critical\">Failing");
    // Its failure timeline: the last 20 attempts, each readable on hover and focus.
    let strip = p.html.split("<ol class=\"timeline\"").nth(1).unwrap().split("</ol>").next().unwrap();
    assert_eq!(strip.matches("<li").count(), 20, "{strip}");
    assert!(
        strip.contains("tick-failed") && strip.contains("tabindex=\"0\"") && strip.contains("Failed at "),
        "{strip}"
    );

    let failed = open(&s, "/dashboard/webhooks?status=failed&source=shopify&topic=orders%2Fcreate&range=24h").await;
    assert_eq!(failed.status, StatusCode::OK);
    let rows = failed.count(ROWS);
    let api = s.all_deliveries("status=failed&source=shopify&topic=orders/create").await;
    assert!(rows > 0 && rows == api.len().min(50), "{rows} rows, {} from the API", api.len());
    assert_eq!(failed.count("badge badge-critical\">Error"), rows, "every row is an error");
    // The form keeps what was chosen, and offers to clear it.
    failed.has("<option value=\"failed\" selected>");
    failed.has("<option value=\"24h\" selected>");
    failed.has("value=\"orders/create\"");
    failed.has(">Clear</a>");
}

#[tokio::test]
async fn empty_scenario_shows_how_to_send_a_test_webhook() {
    let s = seeded(Scenario::Empty).await;
    let p = open(&s, "/dashboard/webhooks").await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(p.count(ROWS), 0);
    p.has("No webhooks yet");
    p.has("hookplane send-test --url http://");
    // Shopify's CLI command, at this instance's callback URL (the configured 127.0.0.1:8080) named
    // `localhost`, the one local name the CLI takes.
    p.has(
        "shopify app webhook trigger --topic orders/create --api-version 2026-10 --delivery-method http \\\n  \
         --address http://localhost:8080/shopify/webhook --client-secret &quot;$SHOPIFY_WEBHOOK_SECRET&quot;",
    );
    p.has("data-copy-target=\"shopify-trigger\"");
    // A filter that matches nothing is a different message.
    let none = open(&s, "/dashboard/webhooks?topic=nothing%2Fhere").await;
    none.has("No deliveries match");
}

#[tokio::test]
async fn search_shows_highlighted_matches_and_hostile_payloads_stay_text() {
    let s = TestServer::start().await;
    let hostile = json!({"note": "<script>alert('owned')</script> marigold", "customer": {"email": "jon@example.com"}});
    let req = shopify_request(
        "orders/create",
        "pages.myshopify.com",
        hostile.to_string().into_bytes(),
        SHOPIFY_SECRET.as_bytes(),
        "p-1",
        now(),
    );
    let (st, b) = s.send_json(&req).await;
    assert_eq!(st, 200, "{b}");
    let id = b["delivery_id"].as_str().unwrap().to_owned();
    searched(&s, "q=marigold", 1).await;

    let p = open(&s, "/dashboard/webhooks?q=marigold").await;
    assert_eq!(p.count(ROWS), 1);
    p.has("<mark>marigold</mark>");
    assert!(!p.html.contains("<script>alert"), "the payload is escaped");
    p.has("&lt;script&gt;alert");
    p.has("value=\"marigold\"");

    // The payload view pretty-prints the JSON, escaped, and the download is the exact bytes as an attachment.
    let view = open(&s, &format!("/dashboard/webhooks/deliveries/{id}")).await;
    assert_eq!(view.status, StatusCode::OK);
    assert!(!view.html.contains("<script>alert"));
    view.has("&quot;note&quot;: &quot;&lt;script&gt;alert('owned')&lt;/script&gt; marigold&quot;");
    view.has("{\n  &quot;customer&quot;: {\n    &quot;email&quot;");
    view.has("x-shopify-topic");
    view.has(&format!("href=\"/dashboard/webhooks/deliveries/{id}/body\" download"));
    let dl = s.local().await.get(s.url(&format!("/dashboard/webhooks/deliveries/{id}/body"))).send().await.unwrap();
    assert_eq!(dl.headers()["content-type"], "application/octet-stream");
    assert_eq!(dl.headers()["cache-control"], "no-store");
    assert_eq!(dl.headers()["content-disposition"], format!("attachment; filename=\"{id}.json\""));
    assert_eq!(dl.bytes().await.unwrap().to_vec(), hostile.to_string().into_bytes());
}

#[tokio::test]
async fn a_large_body_shows_its_preview_and_says_so() {
    let s = TestServer::start().await;
    let big = json!({"blob": "x".repeat(1_200_000)}).to_string().into_bytes();
    let req = shopify_request("orders/create", "pages.myshopify.com", big, SHOPIFY_SECRET.as_bytes(), "p-big", now());
    let (st, b) = s.send_json(&req).await;
    assert_eq!(st, 200, "{b}");
    let view = open(&s, &format!("/dashboard/webhooks/deliveries/{}", b["delivery_id"].as_str().unwrap())).await;
    view.has("Only the 4 KB preview is shown");
    assert!(view.html.len() < 64 * 1024, "the page holds the preview, not the body");
}

#[tokio::test]
async fn bad_filters_and_queries_explain_themselves_and_show_no_list() {
    let s = seeded(Scenario::Empty).await;
    for (query, says) in [
        ("q=%22unclosed", "search"),
        ("status=lost", "unknown delivery status `lost`"),
        ("range=2w", "`range` cannot be `2w`"),
        ("from=yesterday", "`from` must be an RFC 3339 time"),
        ("limit=9000", "`limit` must be between 1 and 500"),
    ] {
        let p = open(&s, &format!("/dashboard/webhooks?{query}")).await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "{query}");
        p.has("These filters cannot be applied");
        assert!(p.html.to_lowercase().contains(&says.to_lowercase()), "{query}: {}", p.html);
        assert_eq!(p.count("id=\"deliveries\""), 0, "{query}: no unfiltered list in its place");
        p.has("Active subscriptions");
    }
    let missing = open(&s, "/dashboard/webhooks/deliveries/dlv_01JZZZZZZZZZZZZZZZZZZZZZZZ").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let garbage = open(&s, "/dashboard/webhooks/deliveries/nope").await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND);
    garbage.has("is not a delivery id");
}

#[tokio::test]
async fn before_any_operator_only_the_setup_link_on_this_machine_or_a_token_opens_the_dashboard() {
    let s = TestServer::start().await;
    // A forwarding subscription, so that the page shows an operator's forms, with their CSRF token.
    let body = json!({"source": "shopify", "topic": "orders/create", "account": "m.myshopify.com", "destination_url": "http://127.0.0.1:9/"});
    assert_eq!(s.post("/api/v1/subscriptions", body).await.0, StatusCode::CREATED);
    let root = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = root.get(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?next=%2F");

    // Being on this machine is not enough: a proxy here makes every client look local.
    let host = s.base.trim_start_matches("http://").to_owned();
    let r = root.get(s.url("/dashboard/webhooks")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?next=%2Fdashboard%2Fwebhooks");
    // nginx's `proxy_pass http://127.0.0.1:8080` with a header outside any list: still sent to sign in.
    let r = root
        .get(s.url("/dashboard/tokens"))
        .header("host", &host)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "a proxy on this machine gets no admin page");
    let login = root.get(s.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("No operator exists yet") && login.contains("/setup?code="), "{login}");

    // The setup link: refused through a proxy, with a wrong code, or from a name that is not this machine.
    let setup = format!("/setup?code={SETUP_CODE}");
    let r = root.get(s.url(&setup)).header("x-forwarded-for", "203.0.113.9").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("on the machine Hookplane runs on"));
    let r = root.get(s.url(&setup)).header("host", "rebound.example:80").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = root.get(s.url("/setup?code=guess")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Not this start"));
    // The right one lets this browser in, once, as an operator.
    let mut b = Browser::new(&s);
    let opened = b.get(&setup).await;
    assert_eq!((opened.status, opened.location()), (StatusCode::SEE_OTHER, "/dashboard/webhooks"));
    assert_eq!(b.get("/").await.location(), "/dashboard/webhooks");
    let page = b.get("/dashboard/webhooks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("this machine"), "{}", page.body);
    let again = Browser::new(&s).get(&setup).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(again.body.contains("used already"), "{}", again.body);
    // An operator, never an admin: no API token, no secret, no audit log.
    for path in ["/dashboard/tokens", "/dashboard/audit"] {
        assert_eq!(b.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let csrf = page.csrf();
    let made =
        b.post("/dashboard/tokens", &[("csrf", &csrf), ("intent", "create"), ("name", "x"), ("role", "admin")]).await;
    assert_eq!(made.status, StatusCode::FORBIDDEN);
    let rotate = [
        ("csrf", csrf.as_str()),
        ("intent", "rotate"),
        ("subscription", "x"),
        ("secret", "s"),
        ("secret_confirmation", "s"),
    ];
    assert_eq!(b.post("/dashboard/webhooks", &rotate).await.status, StatusCode::FORBIDDEN);
    let (_, tokens) = s.get("/api/v1/tokens").await;
    assert_eq!(tokens, serde_json::json!([]), "nothing was made");
    // Its cookie does not work through a proxy, and the API takes bearer tokens only.
    let jar: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let cookie = jar.join("; ");
    let r = root
        .get(s.url("/dashboard/webhooks"))
        .header("cookie", &cookie)
        .header("via", "1.1 proxy")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = root.get(s.url("/api/v1/deliveries")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (_, audit) = s.get("/api/v1/audit?action=setup_link_used").await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
    // A token opens the pages from anywhere.
    let proxied = |path: &str| root.get(s.url(path)).header("x-forwarded-for", "203.0.113.9");
    let r = proxied("/dashboard/webhooks").bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // HTTP Basic is not a credential: sign-in replaced it.
    let r = proxied("/dashboard/webhooks").basic_auth("anyone", Some(ADMIN_TOKEN)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("Bearer"));
    let r = proxied("/dashboard/webhooks").bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The payload download is behind the same check, and other paths keep their own answers.
    let r = proxied("/dashboard/webhooks/deliveries/nope/body").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = proxied("/no/such/page").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The next start has a new link: the old browser is out until it opens it.
    let dir = s.stop().await;
    let s = TestServer::start_with(Options { dir: Some(dir), ..Options::default() }).await;
    let mut old = Browser::new(&s);
    old.cookies = b.cookies.clone();
    assert_eq!(old.get("/dashboard/webhooks").await.status, StatusCode::SEE_OTHER);
    assert_eq!(old.get(&setup).await.status, StatusCode::SEE_OTHER, "the same code, as configured, opens it again");

    // With loopback access off there is no setup link at all.
    let strict = TestServer::start_with(Options {
        env: env(&[("HOOKPLANE_DASHBOARD__OPEN_ON_LOOPBACK", "false")]),
        ..Options::default()
    })
    .await;
    let r = root.get(strict.url(&setup)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = root.get(strict.url("/dashboard/webhooks")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Replay is offered only where the API would take it; elsewhere the control is disabled and says why, to
/// the pointer (title) and to a screen reader (`aria-describedby`).
#[tokio::test]
async fn replay_is_offered_only_where_it_can_work_and_elsewhere_says_why() {
    let s = seeded(Scenario::Failing).await;
    let p = open(&s, "/dashboard/webhooks?limit=200").await;
    let (_, api) = s.get("/api/v1/deliveries?limit=200").await;
    let mut seen = std::collections::BTreeSet::new();
    for d in api["items"].as_array().unwrap() {
        let (id, status) = (d["id"].as_str().unwrap(), d["status"].as_str().unwrap());
        let row = p.html.split(&format!("{ROWS}{id}\"")).nth(1).unwrap().split("</tr>").next().unwrap();
        let offered = row.contains("name=\"intent\" value=\"replay\"");
        let disabled = row.contains("disabled title=\"") && row.contains(&format!("aria-describedby=\"why-{id}\""));
        match status {
            "succeeded" | "failed" => assert!(offered && !disabled, "{status} {id}: {row}"),
            _ => assert!(!offered && disabled, "{status} {id}: {row}"),
        }
        seen.insert(status.to_owned());
    }
    assert!(["succeeded", "failed", "retrying", "stored"].iter().all(|s| seen.contains(*s)), "{seen:?}");
    // The delivery page follows the same rule.
    let retrying = api["items"].as_array().unwrap().iter().find(|d| d["status"] == "retrying").unwrap();
    let page = open(&s, &format!("/dashboard/webhooks/deliveries/{}", retrying["id"].as_str().unwrap())).await;
    page.has("Its own attempts are under way");
    assert_eq!(page.count("name=\"intent\" value=\"replay\""), 0);
}

/// The error banner links to the processing service's logs when the page fails, configured by
/// `dashboard.logs_url`; a mistake in the filters is not a failure, and gets no link.
#[tokio::test]
async fn a_mistake_in_the_filters_gets_no_logs_link() {
    let opts =
        Options { env: env(&[("HOOKPLANE_DASHBOARD__LOGS_URL", "https://logs.example/sync")]), ..Options::default() };
    let s = TestServer::start_with(opts).await;
    let p = open(&s, "/dashboard/webhooks?range=2w").await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    p.has("These filters cannot be applied");
    assert_eq!(p.count("https://logs.example/sync"), 0);
}

/// Whether Replay is offered follows the subscription's destination now, as the replay itself does: a
/// delivery kept while its subscription kept deliveries can be replayed once it forwards.
#[tokio::test]
async fn replay_follows_the_subscriptions_destination_now() {
    let s = TestServer::start().await;
    let body = json!({"source": "shopify", "topic": "orders/paid", "account": "kept.myshopify.com"});
    let (st, made) = s.post("/api/v1/subscriptions", body).await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let sub = made["subscription"]["id"].as_str().unwrap().to_owned();
    let req = shopify_request(
        "orders/paid",
        "kept.myshopify.com",
        b"{}".to_vec(),
        SHOPIFY_SECRET.as_bytes(),
        "kept-1",
        now(),
    );
    let id = s.send_json(&req).await.1["delivery_id"].as_str().unwrap().to_owned();
    let page = open(&s, &format!("/dashboard/webhooks/deliveries/{id}")).await;
    page.has("keeps its deliveries");

    let dest = crate::queue::Destination::start(&[]).await;
    let (st, changed) = s.patch(&format!("/api/v1/subscriptions/{sub}"), json!({"destination_url": dest.url})).await;
    assert_eq!(st, StatusCode::OK, "{changed}");
    let page = open(&s, &format!("/dashboard/webhooks/deliveries/{id}")).await;
    assert_eq!(page.count("name=\"intent\" value=\"replay\""), 1, "offered on its page");
    let table = open(&s, "/dashboard/webhooks").await;
    let row = table.html.split(&format!("{ROWS}{id}\"")).nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(row.contains("name=\"intent\" value=\"replay\""), "and in the table: {row}");
    let (st, replayed, _) = crate::queue::s_post(&s, &format!("/api/v1/deliveries/{id}/replay")).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{replayed}");
    assert_eq!(dest.wait_for(1).await[0].body, b"{}".to_vec());
}
