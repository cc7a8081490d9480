//! `Allow` on every 405 (RFC 9110 §15.5.6 requires it): the methods a path answers, taken from where its
//! routes are declared, the pages' here and the API's from its OpenAPI document, so the header cannot
//! disagree with the routes.

use std::sync::Arc;

use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoEndpoint, Middleware, Request, Response, Route, RouteMethod};

/// The methods one path answers, with their endpoints: `RouteMethod` that remembers its methods.
pub struct Methods {
    route: RouteMethod,
    methods: Vec<Method>,
}

impl Methods {
    pub fn get(ep: impl IntoEndpoint<Endpoint: 'static>) -> Self {
        Self { route: RouteMethod::new(), methods: Vec::new() }.and(Method::GET, ep)
    }

    pub fn post(ep: impl IntoEndpoint<Endpoint: 'static>) -> Self {
        Self { route: RouteMethod::new(), methods: Vec::new() }.and(Method::POST, ep)
    }

    /// Adds `POST` to a path that answers `GET`.
    pub fn and_post(self, ep: impl IntoEndpoint<Endpoint: 'static>) -> Self {
        self.and(Method::POST, ep)
    }

    fn and(mut self, method: Method, ep: impl IntoEndpoint<Endpoint: 'static>) -> Self {
        self.route = self.route.method(method.clone(), ep);
        self.methods.push(method);
        self
    }
}

/// A route table that records, for each path template, what its `Allow` header says.
#[derive(Default)]
pub struct Routes {
    route: Route,
    allowed: Vec<(Vec<Segment>, String)>,
}

impl Routes {
    pub fn at(mut self, template: &str, methods: Methods) -> Self {
        self.allowed.push((segments(template), allow_value(&methods.methods)));
        self.route = self.route.at(template, methods.route);
        self
    }

    /// Nests the API at `prefix`, with the methods its OpenAPI document gives each of its paths.
    pub fn api(mut self, prefix: &str, api: impl IntoEndpoint<Endpoint: 'static>, document: &str) -> Self {
        let doc: serde_json::Value = serde_json::from_str(document).unwrap_or_default();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            let methods: Vec<Method> = item
                .as_object()
                .into_iter()
                .flat_map(|ops| ops.keys())
                .filter_map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
                .collect();
            self.allowed.push((segments(&format!("{prefix}{path}")), allow_value(&methods)));
        }
        self.route = self.route.nest(prefix, api);
        self
    }

    /// The routes, and the middleware that answers their 405s with `Allow`.
    pub fn finish(self) -> (Route, AllowHeader) {
        (self.route, AllowHeader(Arc::new(self.allowed)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `:name` or `{name}`: any one non-empty segment.
    Param,
    /// `*name`: the rest of the path.
    Rest,
}

fn segments(template: &str) -> Vec<Segment> {
    template
        .split('/')
        .map(|s| {
            if s.starts_with(':') || (s.starts_with('{') && s.ends_with('}')) {
                Segment::Param
            } else if s.starts_with('*') {
                Segment::Rest
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}

/// How well `template` matches `path`: the number of literal segments, or `None`. The router prefers
/// literal segments the same way, so the best match is the route that answered.
fn score(template: &[Segment], path: &[&str]) -> Option<usize> {
    let mut literal = 0;
    for (i, t) in template.iter().enumerate() {
        match (t, path.get(i)) {
            (Segment::Rest, Some(_)) => return Some(literal),
            (Segment::Literal(l), Some(p)) if l == p => literal += 1,
            (Segment::Param, Some(p)) if !p.is_empty() => {}
            _ => return None,
        }
    }
    (template.len() == path.len()).then_some(literal)
}

/// `GET` brings `HEAD`: poem answers `HEAD` with the `GET` endpoint.
fn allow_value(methods: &[Method]) -> String {
    let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
    if names.contains(&"GET") && !names.contains(&"HEAD") {
        names.push("HEAD");
    }
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// Adds `Allow` to every 405 answer, for the path's declared methods.
pub struct AllowHeader(Arc<Vec<(Vec<Segment>, String)>>);

impl AllowHeader {
    fn allowed(&self, path: &str) -> Option<&str> {
        let parts: Vec<&str> = path.split('/').collect();
        let scored = self.0.iter().filter_map(|(t, v)| score(t, &parts).map(|s| (s, v)));
        scored.max_by_key(|(s, _)| *s).map(|(_, v)| v.as_str())
    }
}

impl<E: Endpoint<Output = Response>> Middleware<E> for AllowHeader {
    type Output = AllowHeaderEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        AllowHeaderEndpoint { ep, table: AllowHeader(Arc::clone(&self.0)) }
    }
}

pub struct AllowHeaderEndpoint<E> {
    ep: E,
    table: AllowHeader,
}

impl<E: Endpoint<Output = Response>> Endpoint for AllowHeaderEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        let mut resp = self.ep.call(req).await?;
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(Ok(allow)) = self.table.allowed(&path).map(HeaderValue::from_str)
        {
            resp.headers_mut().insert(poem::http::header::ALLOW, allow);
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> AllowHeader {
        let doc = r#"{"paths": {"/v1/replays/{id}": {"get": {}}, "/v1/replays": {"get": {}, "post": {}}}}"#;
        let routes = Routes::default()
            .at(
                "/dashboard/incidents/:id",
                Methods::get(poem::endpoint::make_sync(|_| ())).and_post(poem::endpoint::make_sync(|_| ())),
            )
            .at("/assets/*path", Methods::get(poem::endpoint::make_sync(|_| ())))
            .api("/api", Route::new(), doc);
        routes.finish().1
    }

    #[test]
    fn each_path_is_allowed_what_its_routes_declare() {
        let t = table();
        let allow = |p: &str| t.allowed(p).map(str::to_owned);
        assert_eq!(allow("/dashboard/incidents/inc_1").as_deref(), Some("GET, HEAD, POST"));
        assert_eq!(allow("/api/v1/replays").as_deref(), Some("GET, HEAD, POST"));
        assert_eq!(allow("/api/v1/replays/blk_1").as_deref(), Some("GET, HEAD"));
        assert_eq!(allow("/assets/css/app.css").as_deref(), Some("GET, HEAD"));
        assert_eq!(allow("/api/v1/replays/blk_1/x"), None);
        assert_eq!(allow("/dashboard/incidents/"), None);
    }
}
