//! Starts the real app in-process and talks to it over HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;

use hookplane::config::{Flags, Settings};
use hookplane::demo::factories::SignedRequest;
use hookplane::domain::{Clock, ManualClock, SystemClock, Timestamp};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "hp_test_admin_token";
pub const SHOPIFY_SECRET: &str = "hush";
pub const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// The setup link's code, known to the tests instead of read from the log.
pub const SETUP_CODE: &str = "test-setup-code-0123456789abcdefghijklmnopqrstuvwxyz";

/// The environment every test server starts from; `extra` adds or overrides variables.
pub fn env(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("HOOKPLANE_MASTER_KEY", MASTER_KEY),
        ("HOOKPLANE_ADMIN_TOKEN", ADMIN_TOKEN),
        ("HOOKPLANE_SETUP_CODE", SETUP_CODE),
        ("SHOPIFY_WEBHOOK_SECRET", SHOPIFY_SECRET),
        // Cheap digests: argon2's default cost would dominate test time.
        ("HOOKPLANE_SECRETS__DIGEST_MEMORY_KIB", "64"),
        ("HOOKPLANE_SECRETS__DIGEST_ITERATIONS", "1"),
        ("HOOKPLANE_AUTH__PASSWORD_MEMORY_KIB", "64"),
        ("HOOKPLANE_AUTH__PASSWORD_ITERATIONS", "1"),
        ("HOOKPLANE_SHUTDOWN_GRACE_SECONDS", "2"),
        // New deliveries searchable within milliseconds, so tests wait little.
        ("HOOKPLANE_SEARCH__COMMIT_INTERVAL_MS", "10"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    dir: Option<TempDir>,
    pub clock: Arc<ManualClock>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    local: tokio::sync::OnceCell<reqwest::Client>,
}

pub struct Options {
    pub env: BTreeMap<String, String>,
    pub config_toml: Option<String>,
    /// Use a manual clock set to this instant instead of the wall clock.
    pub clock_at: Option<Timestamp>,
    pub dir: Option<TempDir>,
    /// The demo's processing service, as `serve --demo` hands it to the dashboard.
    pub demo: Option<Arc<dyn hookplane::contract::demo::MockDestinations>>,
}

impl Default for Options {
    fn default() -> Self {
        Self { env: env(&[]), config_toml: None, clock_at: None, dir: None, demo: None }
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Self {
        let dir = opts.dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let config = opts.config_toml.map(|text| {
            let path = dir.path().join("hookplane.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let flags = Flags { config, data_dir: Some(dir.path().join("data")), ..Flags::default() };
        let settings = Settings::load(&flags, &opts.env).unwrap();
        let manual = Arc::new(ManualClock::new(opts.clock_at.unwrap_or_else(|| SystemClock.now())));
        let clock: Arc<dyn Clock> = if opts.clock_at.is_some() { manual.clone() } else { Arc::new(SystemClock) };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let mut core = hookplane::app::Core::start(settings, clock).await.unwrap();
        core.demo = opts.demo;
        let handle = tokio::spawn(hookplane::app::serve_core(core, listener, async move {
            let _ = rx.await;
        }));
        let server = Self {
            base,
            client: reqwest::Client::new(),
            dir: Some(dir),
            clock: manual,
            shutdown: Some(tx),
            handle: Some(handle),
            local: tokio::sync::OnceCell::new(),
        };
        // The listener is bound already, so this waits in the accept queue until the app is up.
        let ready = server.client.get(server.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK, "server not ready");
        server
    }

    /// The running server's data directory.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.as_ref().map(|d| d.path().join("data")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The browser on this machine that opened the setup link: the dashboard as the local principal, before
    /// any operator exists. Made once per server, since the link lets one browser in.
    pub async fn local(&self) -> &reqwest::Client {
        self.local
            .get_or_init(|| async {
                let mut b = Browser::new(self);
                let opened = b.get(&format!("/setup?code={SETUP_CODE}")).await;
                assert_eq!(opened.status, StatusCode::SEE_OTHER, "the setup link: {}", opened.body);
                let jar: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let mut headers = reqwest::header::HeaderMap::new();
                headers.insert(reqwest::header::COOKIE, jar.join("; ").parse().unwrap());
                reqwest::Client::builder().default_headers(headers).build().unwrap()
            })
            .await
    }

    /// Stops the server gracefully and hands back its directory, for a restart on the same data.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        self.dir.take().unwrap()
    }

    pub async fn send(&self, req: &SignedRequest) -> reqwest::Response {
        signed(&self.client, &self.base, req).send().await.unwrap()
    }

    /// Sends and returns the status with the JSON body.
    pub async fn send_json(&self, req: &SignedRequest) -> (StatusCode, Value) {
        let resp = self.send(req).await;
        json_of(resp).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        api_json("GET", self.client.get(self.url(path)).bearer_auth(ADMIN_TOKEN).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self.client.post(self.url(path)).bearer_auth(ADMIN_TOKEN).json_body(&body).send().await.unwrap();
        api_json("POST", resp).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self.client.patch(self.url(path)).bearer_auth(ADMIN_TOKEN).json_body(&body).send().await.unwrap();
        api_json("PATCH", resp).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self.client.put(self.url(path)).bearer_auth(ADMIN_TOKEN).json_body(&body).send().await.unwrap();
        api_json("PUT", resp).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        api_json("DELETE", self.client.delete(self.url(path)).bearer_auth(ADMIN_TOKEN).send().await.unwrap()).await
    }

    /// Every delivery, newest first, following cursors to the end.
    pub async fn all_deliveries(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if query.is_empty() { "" } else { "&" };
            let path = match &cursor {
                Some(c) => format!("/api/v1/deliveries?limit=500&cursor={c}{sep}{query}"),
                None => format!("/api/v1/deliveries?limit=500{sep}{query}"),
            };
            let (status, page) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            out.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let request_id = resp.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        assert_eq!(ct.as_deref(), Some("application/problem+json"), "errors are problem documents: {value}");
        assert!(request_id.is_some(), "every answer has an X-Request-Id");
        assert_eq!(value["request_id"].as_str(), request_id.as_deref(), "a problem names its request: {value}");
    }
    (status, value)
}

/// An answer of the API to `method`, read as JSON and checked against the committed OpenAPI document.
pub async fn api_json(method: &str, resp: reqwest::Response) -> (StatusCode, Value) {
    let url = resp.url().clone();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let got = json_of(resp).await;
    crate::apidoc::check(method, &url, got.0.as_u16(), ct.as_deref(), &got.1);
    got
}

/// Asserts a problem document with the given status and stable code.
#[track_caller]
pub fn assert_problem(got: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    assert_eq!(got.1["type"], format!("urn:hookplane:problem:{code}"));
    assert!(!got.1["detail"].as_str().unwrap_or_default().is_empty(), "a problem says what is wrong");
}

/// A small extension so `post` can send JSON without reqwest's `json` feature.
pub trait JsonBody {
    fn json_body(self, v: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, v: &Value) -> Self {
        self.header("content-type", "application/json").body(v.to_string())
    }
}

/// The exact stored body of a delivery, from the instance at `base`.
pub async fn body_of(client: &reqwest::Client, base: &str, delivery_id: &str) -> Vec<u8> {
    let resp = client
        .get(format!("{base}/api/v1/deliveries/{delivery_id}/body"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.bytes().await.unwrap().to_vec()
}

/// A server on a data directory seeded with a demo scenario, as `hookplane serve --demo` starts one, but
/// with no processing service: the demo's destinations are an address nobody answers.
pub async fn seeded(scenario: hookplane::demo::Scenario) -> TestServer {
    seeded_forwarding_to(scenario, &|name: &str| format!("http://127.0.0.1:9/{name}"), None).await
}

/// The same, its subscriptions forwarding to `processing(name)`.
pub async fn seeded_forwarding_to(
    scenario: hookplane::demo::Scenario,
    processing: &(dyn Fn(&str) -> String + Sync),
    demo: Option<Arc<dyn hookplane::contract::demo::MockDestinations>>,
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::load(&Flags::default(), &env(&[])).unwrap();
    hookplane::demo::prepare(&mut settings, dir.path(), scenario).unwrap();
    let key = settings.env.master_key.clone().unwrap();
    let urls: std::collections::HashMap<String, String> =
        ["shopify", "zoho", "billing"].into_iter().map(|n| (n.to_owned(), processing(n))).collect();
    let to = move |name: &str| urls.get(name).cloned().unwrap_or_default();
    tokio::task::spawn_blocking(move || hookplane::demo::seed(&settings, scenario, &SystemClock, &to))
        .await
        .unwrap()
        .unwrap();
    TestServer::start_with(Options {
        env: env(&[("HOOKPLANE_MASTER_KEY", &key)]),
        dir: Some(dir),
        demo,
        ..Options::default()
    })
    .await
}

pub fn now() -> Timestamp {
    SystemClock.now()
}

/// Searches until the result has `want` deliveries: indexing runs behind ingest by design. Fails after a
/// generous deadline with the last answer, so a search that never finds them is a failure, not a hang.
pub async fn searched(s: &TestServer, query: &str, want: usize) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, page) = s.get(&format!("/api/v1/deliveries?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        if page["items"].as_array().map(Vec::len) == Some(want) || std::time::Instant::now() > deadline {
            assert_eq!(page["items"].as_array().unwrap().len(), want, "{query}: {page}");
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The password every test operator gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// Adds an operator to a stopped instance's store, as `hookplane admin create-user` does.
pub fn add_operator(db: &redb::Database, username: &str, role: hookplane::domain::access::Role) {
    use hookplane::auth::operators::hash_password;
    use hookplane::domain::access::Operator;
    use hookplane::domain::audit::{Actor, AuditAction};
    let now = SystemClock.now();
    let params = hookplane::secrets::DigestParams { memory_kib: 64, iterations: 1 };
    let op = Operator {
        id: hookplane::domain::ids::OperatorId::new(now),
        username: username.to_owned(),
        role,
        password: hash_password(PASSWORD, params).unwrap(),
        created_at: now,
        created_by: "test".to_owned(),
        password_changed_at: now,
    };
    let entry = Actor::cli().entry(now, AuditAction::OperatorCreated).target(op.id);
    hookplane::storage::operators::create(db, &op, &entry).unwrap();
}

/// A server whose store was given operators (and whatever else `prepare` adds) while it was stopped.
pub async fn with_store(opts: Options, prepare: impl FnOnce(&redb::Database)) -> TestServer {
    let dir = TestServer::start().await.stop().await;
    let store = hookplane::storage::Store::open(&dir.path().join("data")).unwrap();
    prepare(&store.db().unwrap());
    store.close();
    TestServer::start_with(Options { dir: Some(dir), ..opts }).await
}

/// A browser: keeps cookies, does not follow redirects, so each answer can be checked.
pub struct Browser {
    client: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
    /// The token of the last sign-in form seen: a signed-in browser is sent away from the form, yet may
    /// still post it (a second tab).
    login_csrf: Option<String>,
}

/// One answer, read whole.
pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get("location").map_or("", |v| v.to_str().unwrap())
    }

    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").unwrap_or_else(|| panic!("no csrf field in {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// The `Set-Cookie` headers, whole.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    }
}

impl Browser {
    pub fn new(s: &TestServer) -> Self {
        Self::at(&s.base)
    }

    /// A browser for the server at `base`, e.g. `http://127.0.0.1:8080`.
    pub fn at(base: &str) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, base: base.to_owned(), cookies: BTreeMap::new(), login_csrf: None }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).unwrap();
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// Posts a form as the dashboard's script does: asking for JSON instead of a redirect.
    pub async fn post_for_json(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).unwrap();
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        self.send(req).await
    }

    /// Opens the sign-in page (or, when signed in already, uses the form seen last) and submits it.
    pub async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let csrf = match form.status {
            StatusCode::OK => form.csrf(),
            _ => self.login_csrf.clone().expect("a sign-in form seen before"),
        };
        self.login_csrf = Some(csrf.clone());
        self.post("/login", &[("username", username), ("password", password), ("csrf", &csrf)]).await
    }

    pub async fn send(&mut self, mut req: reqwest::RequestBuilder) -> Page {
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header("cookie", jar.join("; "));
        }
        let resp = req.send().await.unwrap();
        let page = Page { status: resp.status(), headers: resp.headers().clone(), body: resp.text().await.unwrap() };
        for c in page.set_cookies() {
            let first = c.split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        page
    }
}

/// The request that sends `req` (a provider's signed webhook) to the server at `base`.
pub fn signed(client: &reqwest::Client, base: &str, req: &SignedRequest) -> reqwest::RequestBuilder {
    let mut r = client.post(format!("{base}{}", req.path)).body(req.body.clone());
    for (k, v) in &req.headers {
        r = r.header(k, v);
    }
    r
}
