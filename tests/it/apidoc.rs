//! Real answers checked against the committed OpenAPI document (`docs/openapi.json`). Every answer that
//! `support`'s API helpers (`TestServer::get`, `post`, `patch`, `put`, `delete`) receive must have a status
//! its operation documents, a content type documented for that status, and a body valid under its schema.
//! OpenAPI 3.0's `nullable` is turned into JSON Schema (`anyOf` with `null`) first; `jsonschema` does the rest.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::LazyLock;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, JsonBody, api_json, assert_problem, seeded};

thread_local! {
    /// The operations this thread's checks saw: a test on the current-thread runtime sees its own.
    static CALLED: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
}

static DOC: LazyLock<Value> = LazyLock::new(|| {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    nullable_to_json_schema(&mut doc);
    doc
});

/// `{"nullable": true, …}` becomes `{"anyOf": [{…}, {"type": "null"}]}`; an `allOf` whose parts say
/// `nullable` makes the whole `allOf` nullable (poem-openapi puts it in the part beside the `$ref`).
fn nullable_to_json_schema(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let mut nullable = m.remove("nullable") == Some(Value::Bool(true));
            if let Some(Value::Array(parts)) = m.get_mut("allOf") {
                for p in parts.iter_mut() {
                    if let Value::Object(pm) = p {
                        nullable |= pm.remove("nullable") == Some(Value::Bool(true));
                    }
                }
            }
            for child in m.values_mut() {
                nullable_to_json_schema(child);
            }
            if nullable {
                let inner = Value::Object(std::mem::take(m));
                *v = json!({ "anyOf": [inner, { "type": "null" }] });
            }
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_json_schema),
        _ => {}
    }
}

/// The documented operation for `method` on `path` (the API's own path, without `/api`): its template and
/// its description in the document.
fn operation(method: &str, path: &str) -> (String, &'static Value) {
    let segments: Vec<&str> = path.split('/').collect();
    let paths = DOC["paths"].as_object().unwrap();
    // The template with the most literal segments wins, as in the router: `/v1/x/latest` over `/v1/x/{id}`.
    let found = paths
        .iter()
        .filter(|(template, _)| {
            let t: Vec<&str> = template.split('/').collect();
            t.len() == segments.len() && t.iter().zip(&segments).all(|(t, s)| t == s || t.starts_with('{'))
        })
        .max_by_key(|(template, _)| template.split('/').filter(|t| !t.starts_with('{')).count());
    let (template, item) = found.unwrap_or_else(|| panic!("{method} /api{path}: no such path in the document"));
    let op = &item[method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} /api{template}: the document has no such operation");
    (template.clone(), op)
}

/// Checks one answer of the API against the document.
#[track_caller]
pub fn check(method: &str, url: &reqwest::Url, status: u16, content_type: Option<&str>, body: &Value) {
    let Some(path) = url.path().strip_prefix("/api") else { return };
    let (template, op) = operation(method, path);
    let id = op["operationId"].as_str().unwrap_or(&template);
    CALLED.with(|c| c.borrow_mut().insert(id.to_owned()));
    let response = &op["responses"][status.to_string()];
    assert!(response.is_object(), "{id}: answered {status}, which the document does not list for it: {body}");
    let Some(content) = response["content"].as_object() else {
        assert!(
            body.is_null() || body == &Value::String(String::new()),
            "{id} {status}: documented without a body: {body}"
        );
        return;
    };
    let ct = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let base = |t: &str| t.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let media =
        content.iter().find(|(k, _)| base(k) == ct || k.as_str() == "*/*").map(|(_, m)| m).unwrap_or_else(|| {
            panic!("{id} {status}: answered {ct}, documented as {:?}", content.keys().collect::<Vec<_>>())
        });
    if !ct.ends_with("json") {
        return;
    }
    let mut schema = media["schema"].clone();
    if let Value::Object(m) = &mut schema {
        m.insert("components".to_owned(), DOC["components"].clone());
    }
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{id} {status}: the document's schema does not compile: {e}"));
    let errors: Vec<String> =
        validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).take(5).collect();
    assert!(errors.is_empty(), "{id} {status}: the answer breaks the document:\n  {}\n{body}", errors.join("\n  "));
}

#[test]
fn nullable_becomes_a_null_alternative() {
    let mut schema = json!({ "type": "object", "properties": {
        "a": { "type": "integer", "nullable": true },
        "b": { "allOf": [{ "$ref": "#/x" }, { "nullable": true, "description": "d" }] },
        "c": { "type": "string" } } });
    nullable_to_json_schema(&mut schema);
    assert_eq!(schema["properties"]["a"], json!({ "anyOf": [{ "type": "integer" }, { "type": "null" }] }));
    assert_eq!(
        schema["properties"]["b"],
        json!({ "anyOf": [{ "allOf": [{ "$ref": "#/x" }, { "description": "d" }] }, { "type": "null" }] })
    );
    assert_eq!(schema["properties"]["c"], json!({ "type": "string" }));
}

/// Every operation of the document, called once or more on a seeded server with a valid request, each
/// answer checked against the document; an operation added without a request here fails the test.
#[tokio::test]
async fn every_operation_answers_as_documented() {
    let s = seeded(hookplane::demo::Scenario::Failing).await;
    let ok = |got: &(StatusCode, Value), status: u16| assert_eq!(got.0.as_u16(), status, "{}", got.1);

    ok(&s.get("/api/v1/dashboard?limit=5&source=shopify").await, 200);
    ok(&s.get("/api/v1/stats").await, 200);
    let page = s.get("/api/v1/deliveries?limit=3&from=2020-01-01T00:00:00Z").await;
    ok(&page, 200);
    let delivery = page.1["items"][0]["id"].as_str().unwrap().to_owned();
    let delivered_by = page.1["items"][0]["subscription_id"].as_str().unwrap().to_owned();
    let next = page.1["next_cursor"].as_str().unwrap().to_owned();
    ok(&s.get(&format!("/api/v1/deliveries?cursor={next}&limit=1")).await, 200);
    ok(&s.get(&format!("/api/v1/deliveries/{delivery}")).await, 200);
    ok(&s.get(&format!("/api/v1/deliveries/{delivery}/attempts")).await, 200);
    ok(&s.get(&format!("/api/v1/deliveries/{delivery}/body")).await, 200);
    let replayed = s.post(&format!("/api/v1/deliveries/{delivery}/replay"), json!({})).await;
    assert!([202, 409].contains(&replayed.0.as_u16()), "{}", replayed.1);

    let subs = s.get("/api/v1/subscriptions").await;
    ok(&subs, 200);
    let created = s
        .post(
            "/api/v1/subscriptions",
            json!({ "source": "standard", "topic": "walk.done", "account": "walker", "name": "walker",
                    "destination_url": "http://127.0.0.1:9/walk" }),
        )
        .await;
    ok(&created, 201);
    let sub = created.1["subscription"]["id"].as_str().unwrap().to_owned();
    ok(&s.get("/api/v1/subscriptions/walker").await, 200);
    ok(&s.patch(&format!("/api/v1/subscriptions/{sub}"), json!({ "destination_concurrency": 2 })).await, 200);
    let secret = json!({ "secret": "whsec_d2Fsay13YWxrLXdhbGstd2Fsay13YWxrLXdhbGstd2E=", "secret_confirmation": "whsec_d2Fsay13YWxrLXdhbGstd2Fsay13YWxrLXdhbGstd2E=" });
    ok(&s.post(&format!("/api/v1/subscriptions/{sub}/secret/rotate"), secret).await, 200);
    ok(&s.put(&format!("/api/v1/subscriptions/{sub}/retention"), json!({ "days": 30 })).await, 200);
    ok(&s.put(&format!("/api/v1/subscriptions/{sub}/versions"), json!({ "header": "X-Version" })).await, 200);
    ok(&s.post(&format!("/api/v1/subscriptions/{sub}/pause"), json!({})).await, 200);
    ok(&s.post(&format!("/api/v1/subscriptions/{sub}/resume"), json!({})).await, 200);
    ok(&s.get(&format!("/api/v1/subscriptions/{sub}/destination-secret")).await, 200);
    let handshake = s.post(&format!("/api/v1/subscriptions/{sub}/handshake"), json!({})).await;
    assert_problem(&handshake, 409, "handshake_unavailable");
    assert_problem(&s.post("/api/v1/handshakes", json!({})).await, 409, "public_url_missing");

    ok(&s.get("/api/v1/rejections?limit=0").await, 200);
    ok(&s.get("/api/v1/audit?limit=2&action=subscription_created").await, 200);
    ok(&s.get("/api/v1/audit/export?from=2020-01-01T00:00:00Z").await, 200);

    ok(&s.get("/api/v1/tokens").await, 200);
    let token = s.post("/api/v1/tokens", json!({ "name": "walker", "role": "viewer" })).await;
    ok(&token, 201);
    let token = token.1["token"]["id"].as_str().unwrap().to_owned();
    ok(&s.post(&format!("/api/v1/tokens/{token}/revoke"), json!({})).await, 200);

    ok(&s.post("/api/v1/replays", json!({ "topic": "orders/create", "dry_run": true })).await, 200);
    let bulk = s.post("/api/v1/replays", json!({ "subscription": delivered_by, "rate_per_second": 1 })).await;
    ok(&bulk, 202);
    let bulk = bulk.1["id"].as_str().unwrap().to_owned();
    ok(&s.get("/api/v1/replays").await, 200);
    ok(&s.get(&format!("/api/v1/replays/{bulk}")).await, 200);
    ok(&s.post(&format!("/api/v1/replays/{bulk}/cancel"), json!({})).await, 200);

    ok(&s.post("/api/v1/erasures", json!({ "account": "nobody", "dry_run": true })).await, 200);
    let erasure = s.post("/api/v1/erasures", json!({ "account": "nobody", "confirm": true, "reason": "walk" })).await;
    ok(&erasure, 202);
    let erasure = erasure.1["id"].as_str().unwrap().to_owned();
    ok(&s.get("/api/v1/erasures").await, 200);
    ok(&s.get(&format!("/api/v1/erasures/{erasure}")).await, 200);
    let cancelled = s.post(&format!("/api/v1/erasures/{erasure}/cancel"), json!({})).await;
    assert!([200, 409].contains(&cancelled.0.as_u16()), "{}", cancelled.1);

    ok(&s.post("/api/v1/deploys", json!({ "service": "walker", "version": "1.0.0" })).await, 201);
    ok(&s.get("/api/v1/deploys").await, 200);

    let incidents = s.get("/api/v1/incidents?state=open&limit=5").await;
    ok(&incidents, 200);
    let incident = incidents.1["items"][0]["id"].as_str().unwrap().to_owned();
    ok(&s.get(&format!("/api/v1/incidents/{incident}")).await, 200);
    ok(&s.post(&format!("/api/v1/incidents/{incident}/acknowledge"), json!({})).await, 200);

    ok(&s.get("/api/v1/credentials").await, 200);
    let shop = "/api/v1/credentials/shopify/walker.myshopify.com";
    ok(&s.put(shop, json!({ "access_token": "shpat_walker" })).await, 200);
    ok(&s.delete(shop).await, 200);
    let org = "/api/v1/credentials/zoho/walker-org";
    let zoho = json!({ "client_id": "1000.WALK", "client_secret": "walk", "refresh_token": "1000.walk" });
    ok(&s.put(org, zoho).await, 200);
    ok(&s.delete(org).await, 200);

    ok(&s.get("/api/v1/settings").await, 200);
    ok(&s.put("/api/v1/settings/retention", json!({ "days": 7, "confirm": true })).await, 200);
    let backup = s.client.get(s.url("/api/v1/backup")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(backup.status(), StatusCode::OK);
    check("GET", &backup.url().clone(), 200, Some("application/octet-stream"), &Value::Null);

    // What poem answers before an operation runs is documented too: a body that is not JSON, and a method a
    // path does not answer (with `Allow`).
    let url = s.url("/api/v1/tokens");
    let not_json = s.client.post(&url).bearer_auth(ADMIN_TOKEN).header("content-type", "text/plain").body("x");
    assert_problem(&api_json("POST", not_json.send().await.unwrap()).await, 415, "unsupported_media_type");
    let wrong = s.client.delete(&url).bearer_auth(ADMIN_TOKEN).json_body(&json!({})).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.headers()["allow"], "GET, HEAD, POST");

    let documented: BTreeSet<String> = DOC["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap().to_owned())
        .collect();
    let called = CALLED.with(|c| c.borrow().clone());
    let missed: Vec<&String> = documented.difference(&called).collect();
    assert!(missed.is_empty(), "operations no request here reaches: {missed:?}");
}
