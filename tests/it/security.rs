//! Security headers on every response, whoever answered it.

use reqwest::Method;

use crate::support::TestServer;

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let s = TestServer::start().await;
    let anonymous = reqwest::Client::new();
    let cases = [
        (Method::GET, "/dashboard/webhooks", 200),
        (Method::GET, "/api/v1/deliveries", 401),
        (Method::POST, "/shopify/webhook", 400),
        (Method::GET, "/assets/dashboard.css", 200),
        (Method::GET, "/healthz", 200),
        (Method::GET, "/api/openapi.json", 200),
        (Method::GET, "/no/such/page", 404),
    ];
    for (method, path, status) in cases {
        let resp = anonymous.request(method.clone(), s.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        let h = resp.headers();
        let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let csp = header("content-security-policy");
        assert!(
            csp.contains("script-src 'self';")
                && csp.contains("style-src 'self';")
                && csp.contains("frame-ancestors 'none'"),
            "{method} {path}: {csp}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{method} {path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{method} {path}");
        assert_eq!(header("x-frame-options"), "DENY", "{method} {path}");
    }
}

#[tokio::test]
async fn the_api_docs_page_allows_only_its_own_inline_blocks() {
    let s = TestServer::start().await;
    let resp = reqwest::get(s.url("/api/docs")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let html = resp.text().await.unwrap();
    assert!(html.contains("SwaggerUIBundle"), "the docs page is served");
    assert!(!csp.contains("'unsafe-inline'") && !csp.contains("'unsafe-eval'"), "{csp}");
    // The bundle and the start-up script, each by its digest.
    let scripts = csp.split(';').find(|d| d.trim_start().starts_with("script-src")).unwrap();
    assert_eq!(scripts.matches("'sha256-").count(), 2, "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}
