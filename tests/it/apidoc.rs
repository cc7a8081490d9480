//! Real answers checked against the committed OpenAPI document (`docs/openapi.json`): every answer the API
//! helpers of `support` (`TestServer::get`, `post`, `patch`, `put`, `delete`) receive must have a status the operation documents, a content type it documents for
//! that status, and a body valid under its schema. OpenAPI 3.0's `nullable` is turned into JSON Schema
//! (`anyOf` with `null`) first; `jsonschema` does the rest.

use std::sync::LazyLock;

use serde_json::{Value, json};

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
    // The template with the most literal segments wins: `/v1/replays/bulk` over `/v1/replays/{id}`.
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
    let media = content.iter().find(|(k, _)| base(k) == ct).map(|(_, m)| m).unwrap_or_else(|| {
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
