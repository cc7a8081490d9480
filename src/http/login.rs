//! Sign-in and sign-out. The sign-in form is bound to a pre-session cookie by its CSRF token; a correct
//! password makes a new session (any session the browser held ends), and every attempt that reaches the
//! password check is in the audit log.

use maud::Render;
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::AppState;
use super::access;
use super::dashboard::{html_response, message_page};
use crate::auth::setup::Refused;
use crate::auth::{Principal, operators, sessions};
use crate::contract::Caller;
use crate::contract::paths;
use crate::domain::access::{Operator, Session};
use crate::domain::audit::{Actor, AuditAction, AuditEntry};
use crate::views::components::Tone;
use crate::views::layout::Chrome;
use crate::views::login::LoginPage;

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

#[derive(Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm").field("username", &self.username).field("password", &"***").finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SetupQuery {
    code: Option<String>,
}

/// The setup link (`/setup?code=…`, printed in the log at start): lets the browser on this machine that
/// opens it in as the local principal, once, until any operator exists.
#[handler]
pub async fn view_setup_get(req: &Request, Data(state): Data<&AppState>, Query(q): Query<SetupQuery>) -> Response {
    let gate = &state.gate;
    let refuse = |status, title: &str, detail: &str| {
        message_page(status, title, Tone::Warning, detail, &Chrome::default(), Some(paths::LOGIN))
    };
    if gate.operators_exist || !state.settings.open_on_loopback {
        return refuse(
            StatusCode::NOT_FOUND,
            "No setup link",
            "Operators sign in with their own accounts: the setup link is only for the time before the first \
             operator exists, and only while dashboard.open_on_loopback is on.",
        );
    }
    if !access::local(req) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Open it on this machine",
            "The setup link works only in a browser on the machine Hookplane runs on, asking for it as \
             127.0.0.1 or localhost, and not through a proxy.",
        );
    }
    let cookie = match gate.setup.redeem(q.code.as_deref().unwrap_or("")) {
        Ok(cookie) => cookie,
        Err(Refused::Spent) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "This setup link was used already",
                "It lets one browser in, once. Use that browser, or restart Hookplane for a new link (it is \
                 printed in the log), or make an operator with `hookplane admin create-user`.",
            );
        }
        Err(Refused::Wrong) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "Not this start's setup link",
                "The code does not match: open the link Hookplane printed in its log when it last started.",
            );
        }
        Err(Refused::Closed) => {
            tracing::warn!("the setup link is closed after too many wrong codes; it opens again at the next start");
            return refuse(
                StatusCode::FORBIDDEN,
                "The setup link is closed",
                "Too many wrong codes were tried. Restart Hookplane for the link to open again, or make an operator \
                 with `hookplane admin create-user`.",
            );
        }
    };
    let entry = Actor { label: Principal::Local.label(), client: access::client_ip(req).map(|ip| ip.to_string()) }
        .entry(state.clock.now(), AuditAction::SetupLinkUsed);
    if let Err(e) = state.store.read(move |db| crate::storage::audit::record(db, &entry)).await {
        // Not let in without its audit entry: the code works again once the store does.
        gate.setup.undo();
        return unavailable(req, state, paths::DASHBOARD_WEBHOOKS, &e);
    }
    let value = String::from_utf8_lossy(cookie.expose()).into_owned();
    let mut resp = super::dashboard::see_other(paths::DASHBOARD_WEBHOOKS);
    resp.headers_mut().append(header::SET_COOKIE, access::set_cookie(gate, access::local_cookie(gate), &value, None));
    resp
}

#[handler]
pub async fn view_login_get(req: &Request, Data(state): Data<&AppState>, Query(q): Query<LoginQuery>) -> Response {
    let next = access::safe_next(q.next.as_deref());
    if let Ok(Some(_)) = access::session(state, req).await {
        return redirect(next, None);
    }
    let notice = q.signed_out.map(|_| (Tone::Success, "Signed out", "You have signed out.".to_owned()));
    login_page(req, state, StatusCode::OK, next, "", notice)
}

/// Largest sign-in form read: two short fields, a token and a path. A bigger body is refused unread.
const MAX_LOGIN_FORM_BYTES: usize = 8 * 1024;

#[handler]
pub async fn view_login_post(req: &Request, Data(state): Data<&AppState>, body: poem::Body) -> Response {
    let gate = &state.gate;
    let form: LoginForm = match body.into_bytes_limit(MAX_LOGIN_FORM_BYTES).await {
        Ok(bytes) => serde_urlencoded::from_bytes(&bytes).unwrap_or_default(),
        Err(_) => {
            let detail = "The sign-in form was too large to be one. Nothing was checked.";
            let notice = Some(warning("Try again", detail));
            return login_page(req, state, StatusCode::PAYLOAD_TOO_LARGE, paths::DASHBOARD_WEBHOOKS, "", notice);
        }
    };
    let next = access::safe_next(form.next.as_deref());
    let (binding, _) = access::pre_session(req, gate);
    if !gate.csrf.verify(&binding, &form.csrf) {
        let detail = "The sign-in form had expired or came from another site. Nothing was checked; try again.";
        return login_page(req, state, StatusCode::FORBIDDEN, next, "", Some(warning("Try again", detail)));
    }
    // Only a well-formed username is counted, logged or looked up under its own name: anything else (a
    // password typed into the wrong box, say) is counted and logged as `(invalid username)`.
    let username = operators::username(&form.username).ok();
    let account = username.as_deref().unwrap_or(INVALID_USERNAME);
    let shown = username.as_deref().unwrap_or("");
    let now = state.clock.now();
    let client = access::client_ip(req);
    if let Err(throttled) = gate.throttle.attempt(account, client, now) {
        let detail = format!("{}.", capitalized(&throttled.to_string()));
        let notice = Some((Tone::Critical, "Sign-in is paused", detail));
        let mut resp = login_page(req, state, StatusCode::TOO_MANY_REQUESTS, next, shown, notice);
        if let Ok(v) = HeaderValue::from_str(&throttled.retry_after_seconds().to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }

    let actor =
        Actor { label: crate::domain::access::operator_label(account), client: client.map(|ip| ip.to_string()) };
    let found = match username.clone() {
        Some(name) => match state.store.read(move |db| crate::storage::operators::find(db, &name)).await {
            Ok(found) => found,
            Err(e) => return unavailable(req, state, next, &e),
        },
        None => None,
    };
    let found_id = found.as_ref().map(|o| o.id);
    let (password, params) = (form.password, gate.passwords);
    let checked = match gate.verifying.acquire().await {
        Ok(_permit) => {
            tokio::task::spawn_blocking(move || (operators::verify_password(found.as_ref(), &password, params), found))
                .await
        }
        Err(_) => Ok((false, None)),
    };
    let (ok, found) = checked.unwrap_or((false, None));
    let Some(op) = found.filter(|_| ok) else {
        let mut entry = actor.entry(now, AuditAction::SignInFailed);
        if let Some(id) = found_id {
            entry = entry.target(id);
        }
        if let Err(e) = state.store.read(move |db| crate::storage::audit::record(db, &entry)).await {
            return unavailable(req, state, next, &e);
        }
        let detail = "The username or password is not right.".to_owned();
        let notice = Some((Tone::Critical, "Not signed in", detail));
        return login_page(req, state, StatusCode::UNAUTHORIZED, next, shown, notice);
    };
    gate.throttle.succeeded(account, client);
    match start_session(state, req, &op, &actor).await {
        Ok(cookie) => redirect(next, Some(cookie)),
        Err(e) => unavailable(req, state, next, &e),
    }
}

/// What a sign-in with a malformed username is counted and audited as.
const INVALID_USERNAME: &str = "(invalid username)";

/// Ends the caller's session. Only a session can sign out: a bearer token has nothing to end.
#[handler]
pub async fn view_logout_post(req: &Request, Data(state): Data<&AppState>, Data(caller): Data<&Caller>) -> Response {
    if let Some(digest) = caller.session {
        let actor = access::actor(&caller.principal, req);
        let now = state.clock.now();
        let ended = state
            .store
            .read(move |db| {
                crate::storage::sessions::end(db, &digest, |s: &Session| {
                    actor.entry(now, AuditAction::SignOut).target(s.operator)
                })
            })
            .await;
        if let Err(e) = ended {
            return unavailable(req, state, paths::DASHBOARD_WEBHOOKS, &e);
        }
    }
    let clear = access::set_cookie(&state.gate, access::session_cookie(&state.gate), "", Some(0));
    let mut resp = redirect(&format!("{}?signed_out=1", paths::LOGIN), Some(clear));
    // Nothing of the signed-in pages may stay in the browser's cache.
    resp.headers_mut().insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    resp
}

async fn start_session(
    state: &AppState,
    req: &Request,
    op: &Operator,
    actor: &Actor,
) -> Result<HeaderValue, crate::storage::StoreError> {
    let now = state.clock.now();
    let (id, digest) = sessions::new_id();
    let session = Session {
        operator: op.id,
        username: op.username.clone(),
        created_at: now,
        last_seen_at: now,
        client: actor.client.clone(),
    };
    let replaces = access::session_digest(req, &state.gate);
    let entry: AuditEntry = actor.entry(now, AuditAction::SignIn).target(op.id);
    let policy = state.gate.sessions;
    state
        .store
        .read(move |db| crate::storage::sessions::start(db, &digest, &session, replaces, policy, &entry))
        .await?;
    let max_age = policy.absolute_ms / 1000;
    let value = String::from_utf8_lossy(id.expose()).into_owned();
    Ok(access::set_cookie(&state.gate, access::session_cookie(&state.gate), &value, Some(max_age)))
}

fn login_page(
    req: &Request,
    state: &AppState,
    status: StatusCode,
    next: &str,
    username: &str,
    notice: Option<(Tone, &str, String)>,
) -> Response {
    let (binding, set) = access::pre_session(req, &state.gate);
    let csrf = state.gate.csrf.token(&binding);
    let no_operators = !state.gate.operators_exist;
    let page = LoginPage { csrf: &csrf, next, username, notice, no_operators };
    let mut resp = html_response(status, page.render());
    if let Some(c) = set {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

fn unavailable(req: &Request, state: &AppState, next: &str, e: &crate::storage::StoreError) -> Response {
    tracing::warn!(error = %e, "sign-in could not reach the store");
    let detail = "Hookplane cannot reach its store right now; nothing was changed. Try again shortly.".to_owned();
    login_page(req, state, StatusCode::SERVICE_UNAVAILABLE, next, "", Some((Tone::Critical, "Not available", detail)))
}

fn warning<'a>(title: &'a str, detail: &str) -> (Tone, &'a str, String) {
    (Tone::Warning, title, detail.to_owned())
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn redirect(to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut resp = super::dashboard::see_other(to);
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}
