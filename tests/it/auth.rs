//! Who may call what: every API operation and every dashboard route, as anonymous, each role by API token
//! and by signed-in session, a revoked token, an unknown token, a session that has ended, and the admin
//! token.

use hookplane::auth::Role;
use hookplane::domain::audit::Actor;
use hookplane::domain::{Clock as _, SystemClock};
use hookplane::storage::tokens;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN_TOKEN, Browser, Options, PASSWORD, add_operator, with_store};

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
        (Method::GET, "/api/v1/audit", Role::Admin),
        (Method::GET, "/api/v1/audit/export", Role::Admin),
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
        (Method::POST, "/logout", Role::Viewer),
    ]
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
        assert!(tokens::revoke(db, "gone", &cli, now).unwrap().is_some());
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
    let callers_n = callers.len();
    assert_eq!(checked, (api_operations().len() + page_routes().len()) * callers_n);
    assert_eq!((api_operations().len(), page_routes().len(), callers_n), (11, 7, 11), "the matrix's size");
}
