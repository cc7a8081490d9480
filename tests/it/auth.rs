//! Who may call what: every API operation as anonymous, each role, a revoked token and the admin token.

use hookplane::auth::Role;
use hookplane::domain::{Clock as _, SystemClock};
use hookplane::storage::{Store, tokens};
use reqwest::Method;
use serde_json::json;

use crate::support::{ADMIN_TOKEN, Options, TestServer};

/// Each operation with the least role it needs. A body that fails validation is fine: authorization is
/// decided before it is read, and only 401 and 403 are authorization answers.
fn operations() -> Vec<(Method, &'static str, Role)> {
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
    ]
}

#[tokio::test]
async fn every_operation_answers_each_role_as_it_should() {
    // Tokens are made on the stopped instance's store, as `hookplane admin create-token` does.
    let dir = TestServer::start().await.stop().await;
    let store = Store::open(&dir.path().join("data")).unwrap();
    let db = store.db().unwrap();
    let now = SystemClock.now();
    let mut made = Vec::new();
    for role in Role::ALL {
        let (_, secret) = tokens::create(&db, role.as_str(), role, "test", now).unwrap();
        made.push((Some(role), String::from_utf8(secret.expose().to_vec()).unwrap()));
    }
    let (_, revoked) = tokens::create(&db, "gone", Role::Admin, "test", now).unwrap();
    assert!(tokens::revoke(&db, "gone", now).unwrap().is_some());
    assert!(tokens::create(&db, "viewer", Role::Admin, "test", now).is_err(), "names are unique among live tokens");
    drop(db);
    store.close();

    let s = TestServer::start_with(Options { dir: Some(dir), ..Options::default() }).await;
    let callers: Vec<(&str, Option<Role>, Option<String>)> = vec![
        ("anonymous", None, None),
        ("revoked", None, Some(String::from_utf8(revoked.expose().to_vec()).unwrap())),
        ("unknown", None, Some(format!("hp_{}", "A".repeat(43)))),
        ("viewer", made[0].0, Some(made[0].1.clone())),
        ("operator", made[1].0, Some(made[1].1.clone())),
        ("admin", made[2].0, Some(made[2].1.clone())),
        ("HOOKPLANE_ADMIN_TOKEN", Some(Role::Admin), Some(ADMIN_TOKEN.to_owned())),
    ];
    let client = reqwest::Client::new();
    let mut checked = 0;
    for (method, path, least) in operations() {
        for (who, role, token) in &callers {
            let mut req = client.request(method.clone(), s.url(path));
            if method == Method::POST {
                req = req.header("content-type", "application/json").body(json!({}).to_string());
            }
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or_default();
            match role {
                None => {
                    assert_eq!(status, 401, "{who} {method} {path}: {body}");
                    assert_eq!(body["code"], "unauthorized", "{who} {method} {path}");
                }
                Some(r) if *r < least => {
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
    assert_eq!(checked, operations().len() * callers.len());
}
