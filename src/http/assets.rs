//! Static files from `assets/`, compiled into the binary. Served with a content hash as ETag so browsers
//! revalidate cheaply, and no file ever depends on the working directory.

use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{Request, Response, handler};

use super::problem::{Kind, Problem};

#[derive(rust_embed::Embed)]
#[folder = "assets/"]
struct Assets;

#[handler]
pub async fn asset(req: &Request, Path(path): Path<String>) -> Response {
    serve(req, &path)
}

#[handler]
pub async fn favicon(req: &Request) -> Response {
    serve(req, "favicon.svg")
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("svg") => "image/svg+xml",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn serve(req: &Request, path: &str) -> Response {
    let Some(file) = Assets::get(path) else {
        return Problem::new(Kind::NotFound, format!("no asset `{path}`")).response();
    };
    let etag = format!("\"{}\"", crate::hex::encode(&file.metadata.sha256_hash()[..16]));
    let builder = Response::builder()
        .header(header::ETAG, etag.as_str())
        // Unversioned URLs: a day of caching, then a revalidation that costs a 304.
        .header(header::CACHE_CONTROL, "public, max-age=86400");
    if req.header(header::IF_NONE_MATCH).is_some_and(|v| v == etag) {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    builder.content_type(content_type(path)).body(file.data.into_owned())
}
