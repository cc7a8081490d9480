//! Shopify's GraphQL Admin API and Zoho's OAuth and CRM notification API, played inside the process: the
//! demo's handshakes talk to it (so Retry handshake works with no shop and no Zoho account), and the tests
//! talk to it with failures scripted in the providers' own shapes. It keeps what a real provider would:
//! each shop's webhook subscriptions and the channels, and every request it was sent.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use poem::http::{Method, StatusCode};
use poem::listener::TcpAcceptor;
use poem::web::{Data, Path};
use poem::{EndpointExt, Request, Response, Route, Server, handler};
use serde_json::{Value, json};

/// A shop's webhook subscription, as the mock Shopify keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockWebhook {
    pub id: String,
    /// GraphQL form, e.g. `ORDERS_CREATE`.
    pub topic: String,
    pub uri: String,
    pub format: String,
}

/// A notification channel, as the mock Zoho keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockChannel {
    pub channel_id: String,
    pub events: Vec<String>,
    pub notify_url: String,
    pub token: String,
    pub expiry: String,
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct MockRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl MockRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An answer the next admin API call gets instead of the normal one (OAuth token calls excepted).
#[derive(Debug, Clone)]
pub enum Scripted {
    /// This status and body.
    Status(u16, String),
    /// Shopify's GraphQL `THROTTLED` error, with its cost figures.
    Throttled { requested: u32, available: u32, restore_rate: u32 },
    /// No answer at all: the request is held open until the client gives up or goes away.
    Hang,
}

#[derive(Default)]
struct State {
    shops: Mutex<BTreeMap<String, Vec<MockWebhook>>>,
    channels: Mutex<Vec<MockChannel>>,
    next_id: AtomicU64,
    script: Mutex<VecDeque<Scripted>>,
    requests: Mutex<Vec<MockRequest>>,
    refused_refresh_tokens: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The mock providers, bound to a free port on this machine.
pub struct MockProviders {
    base: String,
    listener: Mutex<Option<std::net::TcpListener>>,
    state: Arc<State>,
}

impl MockProviders {
    pub fn bind() -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let base = format!("http://{}", listener.local_addr()?);
        Ok(Self { base, listener: Mutex::new(Some(listener)), state: Arc::default() })
    }

    /// Serves on the current tokio runtime until the process ends; once.
    pub fn serve(&self) -> std::io::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
        let std_listener = lock(&self.listener)
            .take()
            .ok_or_else(|| std::io::Error::other("the mock providers are served already"))?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let app = Route::new()
            .at("/shopify/:shop/admin/api/:version/graphql.json", poem::post(shopify))
            .at("/zoho/oauth/v2/token", poem::post(zoho_token))
            .at("/zoho/crm/:version/actions/watch", poem::get(zoho_watch).post(zoho_watch).patch(zoho_watch))
            .data(Arc::clone(&self.state));
        Ok(tokio::spawn(Server::new_with_acceptor(TcpAcceptor::from_tokio(listener)?).run(app)))
    }

    /// For `handshake.shopify_admin_url`.
    pub fn shopify_admin_url(&self) -> String {
        format!("{}/shopify/{{shop}}/admin/api/{{version}}/graphql.json", self.base)
    }

    /// For `handshake.zoho_accounts_url` and `handshake.zoho_api_url`.
    pub fn zoho_url(&self) -> String {
        format!("{}/zoho", self.base)
    }

    /// Gives `shop` a webhook subscription; returns its id.
    pub fn add_webhook(&self, shop: &str, topic: &str, uri: &str, format: &str) -> String {
        let id =
            format!("gid://shopify/WebhookSubscription/{}", 1000 + self.state.next_id.fetch_add(1, Ordering::Relaxed));
        let hook =
            MockWebhook { id: id.clone(), topic: topic.to_owned(), uri: uri.to_owned(), format: format.to_owned() };
        lock(&self.state.shops).entry(shop.to_owned()).or_default().push(hook);
        id
    }

    /// Shopify loses the shop's subscriptions to `topic`, as after repeated failed deliveries.
    pub fn remove_webhook(&self, shop: &str, topic: &str) {
        if let Some(hooks) = lock(&self.state.shops).get_mut(shop) {
            hooks.retain(|h| h.topic != topic);
        }
    }

    pub fn webhooks(&self, shop: &str) -> Vec<MockWebhook> {
        lock(&self.state.shops).get(shop).cloned().unwrap_or_default()
    }

    pub fn add_channel(&self, channel: MockChannel) {
        lock(&self.state.channels).push(channel);
    }

    pub fn channels(&self) -> Vec<MockChannel> {
        lock(&self.state.channels).clone()
    }

    /// The next admin API calls get these answers, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        lock(&self.state.script).extend(answers);
    }

    /// Zoho's accounts server refuses this refresh token as expired (`invalid_code`).
    pub fn refuse_refresh_token(&self, token: &str) {
        lock(&self.state.refused_refresh_tokens).push(token.to_owned());
    }

    pub fn requests(&self) -> Vec<MockRequest> {
        lock(&self.state.requests).clone()
    }
}

fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(body.to_string())
}

/// Logs the request; returns the scripted answer it gets, if any.
fn record(state: &State, req: &Request, body: &str, scripted: bool) -> Option<Scripted> {
    let headers = req.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect();
    let path = req.uri().path().to_owned();
    lock(&state.requests).push(MockRequest { method: req.method().to_string(), path, headers, body: body.to_owned() });
    if scripted { lock(&state.script).pop_front() } else { None }
}

async fn scripted_response(s: Scripted) -> Response {
    match s {
        Scripted::Hang => std::future::pending().await,
        Scripted::Status(status, body) => Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .content_type("application/json")
            .body(body),
        Scripted::Throttled { requested, available, restore_rate } => json_response(
            200,
            &json!({
                "errors": [{ "message": "Throttled", "extensions": {
                    "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/limits#rate-limits" } }],
                "extensions": { "cost": { "requestedQueryCost": requested, "actualQueryCost": null, "throttleStatus": {
                    "maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": restore_rate } } }
            }),
        ),
    }
}

fn node(h: &MockWebhook) -> Value {
    json!({ "id": h.id, "topic": h.topic, "format": h.format, "uri": h.uri })
}

#[handler]
async fn shopify(
    req: &Request,
    Path((shop, _version)): Path<(String, String)>,
    body: String,
    Data(state): Data<&Arc<State>>,
) -> Response {
    if let Some(s) = record(state, req, &body, true) {
        return scripted_response(s).await;
    }
    if req.headers().get("x-shopify-access-token").is_none_or(|v| v.is_empty()) {
        return json_response(
            401,
            &json!({ "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)" }),
        );
    }
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let (query, vars) = (v["query"].as_str().unwrap_or(""), &v["variables"]);
    let mut shops = lock(&state.shops);
    let hooks = shops.entry(shop).or_default();
    let input = &vars["sub"];
    let uri = input["uri"].as_str().or_else(|| input["callbackUrl"].as_str()).unwrap_or("").to_owned();
    let format = input["format"].as_str().unwrap_or("JSON").to_owned();
    let data = if query.contains("webhookSubscriptionCreate") {
        let id = format!("gid://shopify/WebhookSubscription/{}", 1000 + state.next_id.fetch_add(1, Ordering::Relaxed));
        let hook = MockWebhook { id, topic: vars["topic"].as_str().unwrap_or("").to_owned(), uri, format };
        hooks.push(hook.clone());
        json!({ "webhookSubscriptionCreate": { "userErrors": [], "webhookSubscription": node(&hook) } })
    } else if query.contains("webhookSubscriptionUpdate") {
        match hooks.iter_mut().find(|h| vars["id"] == h.id.as_str()) {
            Some(h) => {
                h.uri = uri;
                h.format = format;
                json!({ "webhookSubscriptionUpdate": { "userErrors": [], "webhookSubscription": node(h) } })
            }
            None => json!({ "webhookSubscriptionUpdate": { "webhookSubscription": null,
                "userErrors": [{ "field": ["id"], "message": "Webhook subscription does not exist" }] } }),
        }
    } else {
        let edges: Vec<Value> = hooks.iter().map(|h| json!({ "node": node(h) })).collect();
        json!({ "webhookSubscriptions": { "edges": edges, "pageInfo": { "hasNextPage": false, "endCursor": null } } })
    };
    json_response(200, &json!({ "data": data }))
}

#[handler]
async fn zoho_token(req: &Request, body: String, Data(state): Data<&Arc<State>>) -> Response {
    record(state, req, &body, false);
    let form: BTreeMap<String, String> = url_form(&body);
    let token = form.get("refresh_token").cloned().unwrap_or_default();
    if token.is_empty() || lock(&state.refused_refresh_tokens).contains(&token) {
        return json_response(200, &json!({ "error": "invalid_code" }));
    }
    let n = state.next_id.fetch_add(1, Ordering::Relaxed);
    json_response(
        200,
        &json!({ "access_token": format!("zat-{n}"), "api_domain": "https://www.zohoapis.com",
        "token_type": "Bearer", "expires_in": 3600 }),
    )
}

fn url_form(body: &str) -> BTreeMap<String, String> {
    body.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

fn decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn zoho_error(status: u16, code: &str, message: &str) -> Response {
    json_response(status, &json!({ "watch": [{ "code": code, "details": {}, "message": message, "status": "error" }] }))
}

#[handler]
async fn zoho_watch(req: &Request, body: String, Data(state): Data<&Arc<State>>) -> Response {
    if let Some(s) = record(state, req, &body, true) {
        return scripted_response(s).await;
    }
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Zoho-oauthtoken zat-"));
    if !authorized {
        return json_response(
            401,
            &json!({ "code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error" }),
        );
    }
    let mut channels = lock(&state.channels);
    if req.method() == Method::GET {
        let query = url_form(req.uri().query().unwrap_or(""));
        let number = |k: &str, default: usize| query.get(k).and_then(|v| v.parse::<usize>().ok()).unwrap_or(default);
        let (page, per_page) = (number("page", 1).max(1), number("per_page", 200).clamp(1, 200));
        let shown: Vec<&MockChannel> = channels.iter().skip((page - 1) * per_page).take(per_page).collect();
        if shown.is_empty() {
            return Response::builder().status(StatusCode::NO_CONTENT).finish();
        }
        let more = channels.len() > page * per_page;
        let watch: Vec<Value> = shown
            .iter()
            .map(|c| {
                json!({ "channel_id": c.channel_id.parse::<i64>().map_or_else(|_| json!(c.channel_id), |n| json!(n)),
                "events": c.events, "notify_url": c.notify_url, "token": c.token, "channel_expiry": c.expiry })
            })
            .collect();
        return json_response(
            200,
            &json!({ "watch": watch, "info": { "page": page, "per_page": per_page, "count": shown.len(), "more_records": more } }),
        );
    }
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let item = &v["watch"][0];
    let id = match &item["channel_id"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return zoho_error(400, "MANDATORY_NOT_FOUND", "required field not found"),
    };
    let token = item["token"].as_str().unwrap_or("").to_owned();
    if token.len() > 50 {
        return zoho_error(400, "INVALID_DATA", "invalid data");
    }
    let given = MockChannel {
        channel_id: id.clone(),
        events: item["events"].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_owned)).collect(),
        notify_url: item["notify_url"].as_str().unwrap_or("").to_owned(),
        token,
        expiry: item["channel_expiry"].as_str().unwrap_or("").to_owned(),
    };
    let existing = channels.iter_mut().find(|c| c.channel_id == id);
    match (req.method() == Method::PATCH, existing) {
        (true, None) => return zoho_error(400, "INVALID_DATA", "the channel_id is not subscribed"),
        (_, Some(c)) => *c = given.clone(),
        (false, None) => channels.push(given.clone()),
    }
    let events: Vec<Value> = given
        .events
        .iter()
        .map(|e| json!({ "channel_expiry": given.expiry, "resource_uri": "https://www.zohoapis.com/crm/v8/Leads",
            "resource_id": "4150868000000002175", "resource_name": e.split('.').next().unwrap_or(""), "channel_id": id }))
        .collect();
    json_response(
        200,
        &json!({ "watch": [{ "code": "SUCCESS", "details": { "events": events },
        "message": "Successfully subscribed for actions-watch of the given module", "status": "success" }] }),
    )
}
