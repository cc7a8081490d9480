//! The other half of the external ingest benchmark (`benches/external/run.sh`).
//!
//! `cargo bench --bench bare -- --bodies FILE` writes 512 correctly signed Shopify order bodies (2.8–3.7 KB),
//! one per line as `hmac<TAB>body`, for the load generator's script; `cargo bench --bench bare -- --serve
//! ADDR` serves a bare poem endpoint that reads each request's body and answers 200: the ceiling Hookplane's
//! ingest is compared with, built the way Hookplane is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;

#[allow(dead_code)] // the in-process load generators' parts of it
#[path = "common/mod.rs"]
mod common;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[poem::handler]
async fn bare_endpoint(body: poem::Body) -> &'static str {
    let _ = body.into_bytes().await;
    "{}"
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["--bodies", file, secret] => {
            let mut out = std::io::BufWriter::new(std::fs::File::create(file).unwrap());
            for body in common::bodies(2026, secret.as_bytes()) {
                let text = std::str::from_utf8(&body.bytes).unwrap();
                assert!(!text.contains(['\t', '\n']), "a body on one line");
                writeln!(out, "{}\t{text}", body.hmac).unwrap();
            }
            out.flush().unwrap();
        }
        ["--serve", addr] => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let listener = poem::listener::TcpListener::bind(addr.to_string());
                let app = poem::Route::new().at("/shopify/webhook", poem::post(bare_endpoint));
                poem::Server::new(listener).run(app).await.unwrap();
            });
        }
        _ => panic!("usage: bare --bodies FILE SECRET | bare --serve ADDR"),
    }
}
