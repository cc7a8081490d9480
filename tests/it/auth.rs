//! Who may call what: every API operation and every dashboard route, as anonymous, each role by API token
//! and by signed-in session, a revoked token, an unknown token, a session that has ended, and the admin
//! token.

use hookplane::domain::access::Role;
use hookplane::domain::audit::Actor;
use hookplane::domain::{Clock as _, SystemClock};
use hookplane::storage::tokens;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN_TOKEN, Browser, Options, PASSWORD, add_operator, assert_problem, with_store};

/// Each API operation with the least role it needs. A body that fails validation is fine: authorization
/// is decided before it is read, and only 401 and 403 are authorization answers.
fn api_operations() -> Vec<(Method, &'static str, Role)> {
    vec![
        (Method::GET, "/api/v1/dashboard", Role::Viewer),
        (Method::GET, "/api/v1/stats", Role::Viewer),
        (Method::GET, "/api/v1/deliveries", Role::Viewer),
        (Method::GET, "/api/v1/deliveries/dlv_01J0000000000000000000000A", Role::Viewer),
        (Method::GET, "/api/v1/deliveries/dlv_01J0000000000000000000000A/body", Role::Viewer),
        (Method::GET, "/api/v1/rejections", Role::Viewer),
        (Method::GET, "/api/v1/subscriptions", Role::Viewer),
        (Method::GET, "/api/v1/subscriptions/nothing", Role::Viewer),
        (Method::POST, "/api/v1/subscriptions", Role::Admin),
        (Method::PATCH, "/api/v1/subscriptions/nothing", Role::Admin),
        (Method::GET, "/api/v1/audit", Role::Admin),
        (Method::GET, "/api/v1/audit/export", Role::Admin),
        (Method::POST, "/api/v1/subscriptions/nothing/secret/rotate", Role::Admin),
        (Method::GET, "/api/v1/tokens", Role::Admin),
        (Method::POST, "/api/v1/tokens", Role::Admin),
        (Method::POST, "/api/v1/tokens/tok_01J0000000000000000000000A/revoke", Role::Admin),
        (Method::GET, "/api/v1/deliveries/dlv_01J0000000000000000000000A/attempts", Role::Viewer),
        (Method::POST, "/api/v1/deliveries/dlv_01J0000000000000000000000A/replay", Role::Operator),
        (Method::POST, "/webhooks/replay/dlv_01J0000000000000000000000A", Role::Operator),
        (Method::POST, "/api/v1/subscriptions/nothing/pause", Role::Operator),
        (Method::POST, "/api/v1/subscriptions/nothing/resume", Role::Operator),
        (Method::GET, "/api/v1/subscriptions/nothing/destination-secret", Role::Admin),
        (Method::POST, "/api/v1/replays", Role::Admin),
        (Method::GET, "/api/v1/replays", Role::Viewer),
        (Method::GET, "/api/v1/replays/blk_01J0000000000000000000000A", Role::Viewer),
        (Method::POST, "/api/v1/replays/blk_01J0000000000000000000000A/cancel", Role::Admin),
        (Method::POST, "/api/v1/erasures", Role::Admin),
        (Method::GET, "/api/v1/erasures", Role::Admin),
        (Method::GET, "/api/v1/erasures/ers_01J0000000000000000000000A", Role::Admin),
        (Method::POST, "/api/v1/erasures/ers_01J0000000000000000000000A/cancel", Role::Admin),
        (Method::PUT, "/api/v1/subscriptions/nothing/versions", Role::Admin),
        (Method::POST, "/api/v1/deploys", Role::Admin),
        (Method::GET, "/api/v1/deploys", Role::Viewer),
    ]
}

/// Each dashboard route with the least role it needs. Sign-out comes last: it ends the sessions.
fn page_routes() -> Vec<(Method, &'static str, Role)> {
    vec![
        (Method::GET, "/", Role::Viewer),
        (Method::GET, "/dashboard/webhooks", Role::Viewer),
        (Method::GET, "/dashboard/webhooks/deliveries/dlv_01J0000000000000000000000A", Role::Viewer),
        (Method::GET, "/dashboard/webhooks/deliveries/dlv_01J0000000000000000000000A/body", Role::Viewer),
        (Method::GET, "/dashboard/audit", Role::Admin),
        (Method::GET, "/dashboard/audit/export", Role::Admin),
        (Method::GET, "/dashboard/tokens", Role::Admin),
        (Method::POST, "/dashboard/tokens", Role::Admin),
        (Method::GET, "/dashboard/replays", Role::Viewer),
        (Method::POST, "/dashboard/replays", Role::Admin),
        (Method::GET, "/dashboard/erasures", Role::Admin),
        (Method::POST, "/dashboard/erasures", Role::Admin),
        (Method::POST, "/dashboard/webhooks", Role::Operator),
        (Method::POST, "/logout", Role::Viewer),
    ]
}

/// Routes open to everyone: a credential changes nothing about their answer.
fn public_routes() -> Vec<&'static str> {
    vec!["/healthz", "/readyz", "/version", "/api/openapi.json", "/api/docs", "/assets/dashboard.css", "/favicon.ico"]
}

/// Ingest routes: only a provider's signature gets in, never an operator's credential.
fn ingest_routes() -> Vec<&'static str> {
    vec!["/shopify/webhook", "/zoho/incoming", "/ingest/billing"]
}

enum Credential {
    None,
    Bearer(String),
    /// A signed-in browser, and the CSRF token of its forms.
    Session(Box<Browser>, String),
}

struct Caller {
    who: &'static str,
    /// `None`: not a valid credential at all.
    role: Option<Role>,
    credential: Credential,
}

#[tokio::test]
async fn every_route_answers_each_caller_as_it_should() {
    let mut made = Vec::new();
    let mut revoked = String::new();
    let s = with_store(Options::default(), |db| {
        let now = SystemClock.now();
        let cli = Actor::cli();
        for role in Role::ALL {
            let (_, secret) = tokens::create(db, role.as_str(), role, &cli, now).unwrap();
            made.push(String::from_utf8(secret.expose().to_vec()).unwrap());
            add_operator(db, &format!("{role}-op"), role);
        }
        let (_, gone) = tokens::create(db, "gone", Role::Admin, &cli, now).unwrap();
        revoked = String::from_utf8(gone.expose().to_vec()).unwrap();
        assert!(tokens::revoke(db, tokens::TokenRef::Name("gone"), &cli, now).unwrap().is_some());
        assert!(tokens::create(db, "viewer", Role::Admin, &cli, now).is_err(), "names are unique among live tokens");
        add_operator(db, "leaver", Role::Admin);
    })
    .await;

    let mut callers = vec![
        Caller { who: "anonymous", role: None, credential: Credential::None },
        Caller { who: "revoked token", role: None, credential: Credential::Bearer(revoked) },
        Caller { who: "unknown token", role: None, credential: Credential::Bearer(format!("hp_{}", "A".repeat(43))) },
        Caller {
            who: "HOOKPLANE_ADMIN_TOKEN",
            role: Some(Role::Admin),
            credential: Credential::Bearer(ADMIN_TOKEN.into()),
        },
    ];
    for (role, token) in Role::ALL.into_iter().zip(made) {
        callers.push(Caller { who: role.as_str(), role: Some(role), credential: Credential::Bearer(token) });
    }
    for (who, role) in
        [("viewer session", Role::Viewer), ("operator session", Role::Operator), ("admin session", Role::Admin)]
    {
        let mut b = Browser::new(&s);
        let signed_in = b.sign_in(&format!("{role}-op"), PASSWORD).await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{who}: {}", signed_in.body);
        let csrf = b.get("/dashboard/webhooks").await.csrf();
        callers.push(Caller { who, role: Some(role), credential: Credential::Session(Box::new(b), csrf) });
    }
    // A session that signed out is worth nothing, even though the browser kept its cookie.
    let mut leaver = Browser::new(&s);
    leaver.sign_in("leaver", PASSWORD).await;
    let cookies = leaver.cookies.clone();
    let csrf = leaver.get("/dashboard/webhooks").await.csrf();
    assert_eq!(leaver.post("/logout", &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    leaver.cookies = cookies;
    callers.push(Caller { who: "ended session", role: None, credential: Credential::Session(Box::new(leaver), csrf) });

    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut checked = 0;
    // The API takes bearer tokens only: a session cookie is no credential there.
    for (method, path, least) in api_operations() {
        for c in &mut callers {
            let mut req = client.request(method.clone(), s.url(path));
            if method == Method::POST {
                req = req.header("content-type", "application/json").body(json!({}).to_string());
            }
            let role = match &mut c.credential {
                Credential::None => None,
                Credential::Bearer(t) => {
                    req = req.bearer_auth(t);
                    c.role
                }
                Credential::Session(b, _) => {
                    let jar: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    req = req.header("cookie", jar.join("; "));
                    None
                }
            };
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or_default();
            let who = c.who;
            match role {
                None => {
                    assert_eq!(status, 401, "{who} {method} {path}: {body}");
                    assert_eq!(body["code"], "unauthorized", "{who} {method} {path}");
                }
                Some(r) if r < least => {
                    assert_eq!(status, 403, "{who} {method} {path}: {body}");
                    assert_eq!(body["code"], "forbidden");
                    let detail = body["detail"].as_str().unwrap();
                    assert!(detail.contains(&format!("needs the {least} role")), "{detail}");
                }
                Some(_) => assert!(![401, 403].contains(&status), "{who} {method} {path}: {status} {body}"),
            }
            checked += 1;
        }
    }
    // Pages take sessions and bearer tokens. Without a credential a browser is sent to sign in.
    for (method, path, least) in page_routes() {
        for c in &mut callers {
            let page = match &mut c.credential {
                Credential::None => {
                    let req = client.request(method.clone(), s.url(path));
                    let resp = req.form(&[("csrf", "x")]).send().await.unwrap();
                    (resp.status(), resp.headers().get("location").map(|l| l.to_str().unwrap().to_owned()))
                }
                Credential::Bearer(t) => {
                    let resp = client.request(method.clone(), s.url(path)).bearer_auth(t).send().await.unwrap();
                    (resp.status(), None)
                }
                Credential::Session(b, csrf) => {
                    let p = if method == Method::POST {
                        b.post(path, &[("csrf", csrf.as_str())]).await
                    } else {
                        b.get(path).await
                    };
                    let location = Some(p.location().to_owned()).filter(|l| !l.is_empty());
                    (p.status, location)
                }
            };
            let (status, location) = page;
            let who = c.who;
            let anonymous = matches!(c.credential, Credential::None) || who == "ended session";
            match c.role {
                None if anonymous && method == Method::GET => {
                    assert_eq!(status, StatusCode::SEE_OTHER, "{who} {method} {path}");
                    let to = location.unwrap_or_default();
                    assert!(to.starts_with("/login?next="), "{who} {method} {path}: {to}");
                }
                None => assert_eq!(status, StatusCode::UNAUTHORIZED, "{who} {method} {path}"),
                Some(r) if r < least => assert_eq!(status, StatusCode::FORBIDDEN, "{who} {method} {path}"),
                Some(_) => assert!(
                    ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&status)
                        && !location.as_deref().unwrap_or("").starts_with("/login?next"),
                    "{who} {method} {path}: {status}"
                ),
            }
            checked += 1;
        }
    }
    // Open routes answer everyone alike, and no credential signs a webhook: an unsigned delivery is refused
    // the same way whoever sends it.
    for path in public_routes()
        .into_iter()
        .map(|p| (Method::GET, p))
        .chain(ingest_routes().into_iter().map(|p| (Method::POST, p)))
    {
        let (method, path) = path;
        let mut answers = Vec::new();
        for c in &mut callers {
            let mut req =
                client.request(method.clone(), s.url(path)).header("content-type", "application/json").body("{}");
            match &c.credential {
                Credential::None => {}
                Credential::Bearer(t) => req = req.bearer_auth(t),
                Credential::Session(b, _) => {
                    let jar: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    req = req.header("cookie", jar.join("; "));
                }
            }
            answers.push(req.send().await.unwrap().status().as_u16());
            checked += 1;
        }
        let want = if method == Method::GET { 200 } else { answers[0] };
        assert!(method == Method::GET || [400, 401, 404].contains(&want), "{path}: {want}");
        assert!(answers.iter().all(|a| *a == want), "{method} {path}: {answers:?}");
    }
    let callers_n = callers.len();
    let routes = api_operations().len() + page_routes().len() + public_routes().len() + ingest_routes().len();
    assert_eq!(checked, routes * callers_n);
    assert_eq!(
        (api_operations().len(), page_routes().len(), public_routes().len() + ingest_routes().len(), callers_n),
        (33, 14, 10, 11),
        "the matrix's size"
    );
}

#[tokio::test]
async fn admins_make_and_revoke_tokens_in_the_dashboard_and_the_api() {
    let s = with_store(Options::default(), |db| add_operator(db, "alice", Role::Admin)).await;
    let mut b = Browser::new(&s);
    b.sign_in("alice", PASSWORD).await;
    let page = b.get("/dashboard/tokens").await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();

    let made = b
        .post("/dashboard/tokens", &[("intent", "create"), ("name", "monitor"), ("role", "viewer"), ("csrf", &csrf)])
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let at = made.body.find("hp_").unwrap();
    let token = made.body[at..at + 46].to_owned();
    assert!(made.body.contains("shown this once"));
    let use_it = |t: String| s.client.get(s.url("/api/v1/deliveries")).bearer_auth(t).send();
    assert_eq!(use_it(token.clone()).await.unwrap().status(), StatusCode::OK);
    let listed = b.get("/dashboard/tokens").await;
    assert!(listed.body.contains("monitor") && !listed.body.contains(&token), "listed, never shown again");

    let dup = b
        .post("/dashboard/tokens", &[("intent", "create"), ("name", "monitor"), ("role", "admin"), ("csrf", &csrf)])
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert!(dup.body.contains("Nothing was changed") && dup.body.contains("a token named `monitor` exists"));
    let bad =
        b.post("/dashboard/tokens", &[("intent", "create"), ("name", "x"), ("role", "root"), ("csrf", &csrf)]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("`root` is not a role"));

    let id = s.get("/api/v1/tokens").await.1[0]["id"].as_str().unwrap().to_owned();
    let revoked = b.post("/dashboard/tokens", &[("intent", "revoke"), ("token", &id), ("csrf", &csrf)]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(revoked.location(), "/dashboard/tokens?revoked=monitor");
    assert_eq!(use_it(token).await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // The API: made once, names unique among live tokens, revoked once.
    let (st, made) = s.post("/api/v1/tokens", json!({ "name": "deploy", "role": "operator" })).await;
    assert_eq!(st, 201, "{made}");
    assert!(made["secret"].as_str().unwrap().starts_with("hp_"));
    assert_eq!(made["token"]["role"], "operator");
    assert_eq!(made["token"]["created_by"], "admin-token");
    assert_problem(&s.post("/api/v1/tokens", json!({ "name": "deploy", "role": "viewer" })).await, 409, "conflict");
    assert_problem(&s.post("/api/v1/tokens", json!({ "name": "", "role": "viewer" })).await, 400, "invalid_request");
    let (st, _) = s.post("/api/v1/tokens", json!({ "name": "x", "role": "root" })).await;
    assert_eq!(st, 400);
    let path = format!("/api/v1/tokens/{}/revoke", made["token"]["id"].as_str().unwrap());
    let (st, gone) = s.post(&path, json!({})).await;
    assert_eq!(st, 200);
    assert!(gone["revoked_at"].is_string());
    assert_problem(&s.post(&path, json!({})).await, 404, "not_found");
    assert_problem(&s.post("/api/v1/tokens/nonsense/revoke", json!({})).await, 400, "invalid_request");

    // Each change is audited with its diff.
    let (_, log) = s.get("/api/v1/audit?target_id=".to_owned().as_str()).await;
    let items = log["items"].as_array().unwrap();
    let created: Vec<&serde_json::Value> = items.iter().filter(|e| e["action"] == "token_created").collect();
    assert_eq!(created.len(), 2);
    let by_alice = created.iter().find(|e| e["performed_by"] == "operator:alice").unwrap();
    assert_eq!(by_alice["target_id"], id.as_str());
    assert_eq!(by_alice["client"], "127.0.0.1");
    assert_eq!(
        by_alice["changes"],
        json!([{ "field": "name", "before": null, "after": "monitor" }, { "field": "role", "before": null, "after": "viewer" }])
    );
    let revocations: Vec<&serde_json::Value> = items.iter().filter(|e| e["action"] == "token_revoked").collect();
    assert_eq!(revocations.len(), 2);
    assert_eq!(revocations[1]["changes"], json!([{ "field": "state", "before": "live", "after": "revoked" }]));
}

/// Before any operator exists: a proxy on this machine (nginx's default `proxy_pass http://127.0.0.1:…`,
/// which sends `Host: 127.0.0.1:…` and none of the usual proxy headers) is anonymous on every page; only the
/// browser that opened the setup link is let in, as an operator, and its cookie counts only from this
/// machine.
#[tokio::test]
async fn before_any_operator_a_proxy_on_this_machine_is_anonymous_and_the_setup_link_makes_an_operator() {
    let s = crate::support::TestServer::start().await;
    // A forwarding subscription, so that the page shows an operator's forms, with their CSRF token.
    let body = json!({"source": "shopify", "topic": "orders/create", "account": "m.myshopify.com", "destination_url": "http://127.0.0.1:9/"});
    assert_eq!(s.post("/api/v1/subscriptions", body).await.0, StatusCode::CREATED);
    let host = s.base.trim_start_matches("http://").to_owned();
    let mut local = Browser::new(&s);
    let opened = local.get(&format!("/setup?code={}", crate::support::SETUP_CODE)).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    let csrf = local.get("/dashboard/webhooks").await.csrf();
    let jar: Vec<String> = local.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let cookie = jar.join("; ");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut checked = 0;
    for (method, path, least) in page_routes() {
        // As a proxy on this machine forwards a browser's request, with the setup link's cookie or without.
        for (who, with_cookie) in [("proxy on this machine", false), ("setup cookie through a proxy", true)] {
            let mut req = client
                .request(method.clone(), s.url(path))
                .header("host", &host)
                .header("x-forwarded-proto", "https")
                .header("x-client-ip", "203.0.113.9")
                .form(&[("csrf", csrf.as_str())]);
            if with_cookie {
                req = req.header("cookie", &cookie).header("x-forwarded-for", "203.0.113.9");
            }
            let resp = req.send().await.unwrap();
            let expected = if method == Method::GET { StatusCode::SEE_OTHER } else { StatusCode::UNAUTHORIZED };
            assert_eq!(resp.status(), expected, "{who} {method} {path}");
            checked += 1;
        }
        if path == "/logout" {
            continue;
        }
        let p = if method == Method::POST {
            local.post(path, &[("csrf", csrf.as_str())]).await
        } else {
            local.get(path).await
        };
        if Role::Operator < least {
            assert_eq!(p.status, StatusCode::FORBIDDEN, "setup browser {method} {path}");
        } else {
            assert!(
                ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&p.status),
                "setup browser {method} {path}: {}",
                p.status
            );
            assert!(!p.location().starts_with("/login"), "setup browser {method} {path}");
        }
        checked += 1;
    }
    assert_eq!(checked, page_routes().len() * 3 - 1);
}
