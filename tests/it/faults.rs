//! Faults: the process keeps working, or fails loudly, never half-alive. A log that cannot be written takes
//! nothing down; a part the process cannot do without that stops makes `/healthz` and `/readyz` say so,
//! requests still get an answer, and the server stops with an error after closing the store cleanly.

use std::os::unix::fs::FileExt as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use hookplane::app::{Core, serve_core};
use hookplane::config::{Flags, Settings};
use hookplane::demo::factories::shopify_request;
use hookplane::domain::SystemClock;
use poem::listener::TcpAcceptor;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

/// Bounds a wait that only a broken build would exceed, so the suite fails instead of hanging.
const GENEROUS: Duration = Duration::from_secs(60);

async fn core(dir: &tempfile::TempDir) -> Core {
    Core::start(settings_for(dir), Arc::new(SystemClock)).await.unwrap()
}

fn order(id: &str) -> hookplane::demo::factories::SignedRequest {
    shopify_request(
        "orders/create",
        "faults.myshopify.com",
        br#"{"id":1}"#.to_vec(),
        SHOPIFY_SECRET.as_bytes(),
        id,
        now(),
    )
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    req: &hookplane::demo::factories::SignedRequest,
) -> reqwest::Response {
    signed(client, base, req).send().await.unwrap()
}

async fn json(resp: reqwest::Response) -> (StatusCode, Option<String>, Value) {
    let status = resp.status();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, retry, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or_default())
}

#[tokio::test]
async fn when_the_writer_is_gone_every_request_is_answered_and_health_and_readiness_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(&dir).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = hookplane::http::routes(core.state());
    let server = tokio::spawn(poem::Server::new_with_acceptor(TcpAcceptor::from_tokio(listener).unwrap()).run(routes));
    let client = reqwest::Client::new();
    assert_eq!(json(send(&client, &base, &order("before")).await).await.0, StatusCode::OK);
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), StatusCode::OK);

    // The writer thread ends though nobody asked the server to stop.
    core.writer().stop().await;
    let (status, retry, problem) = json(send(&client, &base, &order("after")).await).await;
    assert_eq!((status, retry.as_deref()), (StatusCode::SERVICE_UNAVAILABLE, Some("5")), "{problem}");
    assert_eq!(problem["code"], "storage_unavailable");
    // The thread ends once it has drained its queue: health follows as soon as it has.
    let deadline = std::time::Instant::now() + GENEROUS;
    let health = loop {
        let (status, _, health) = json(client.get(format!("{base}/healthz")).send().await.unwrap()).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break health;
        }
        assert!(std::time::Instant::now() < deadline, "the writer never ended: {health}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!((health["code"].as_str(), health["detail"].as_str()), (Some("unhealthy"), Some("not running: writer")));
    let (status, _, ready) = json(client.get(format!("{base}/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready["detail"], "writer: stopped");
    server.abort();
    core.stop().await.unwrap();
}

#[tokio::test]
async fn losing_the_writer_stops_the_server_with_an_error_after_closing_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(&dir).await;
    let writer = core.writer().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = tokio::spawn(serve_core(core, listener, std::future::pending()));
    let client = reqwest::Client::new();
    let (status, _, stored) = json(send(&client, &base, &order("kept")).await).await;
    assert_eq!(status, StatusCode::OK);

    writer.stop().await;
    let ended = tokio::time::timeout(GENEROUS, served).await.expect("the server stops by itself").unwrap();
    let err = ended.expect_err("losing the writer is an error, so the process exits non-zero");
    assert!(err.to_string().contains("the writer stopped unexpectedly"), "{err:#}");
    // The store was closed in order: it opens again at once, with the acknowledged delivery.
    let store = hookplane::storage::Store::open(&dir.path().join("data")).unwrap();
    let id = stored["delivery_id"].as_str().unwrap().parse().unwrap();
    assert!(hookplane::storage::deliveries::get(&store.db().unwrap(), id).unwrap().is_some());
}

/// The real binary with its log and its standard error on a device where every write fails, as a log on a
/// full disk does: it starts, takes webhooks, refuses bad ones (logging each refusal), and stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_cannot_be_written_takes_nothing_down() {
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookplane"))
        .arg("serve")
        .env_clear()
        .env("HOOKPLANE_LISTEN", format!("127.0.0.1:{port}"))
        .env("HOOKPLANE_DATA_DIR", dir.path())
        .env("HOOKPLANE_MASTER_KEY", MASTER_KEY)
        .env("SHOPIFY_WEBHOOK_SECRET", SHOPIFY_SECRET)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(full())
        .stderr(full())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + GENEROUS;
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == StatusCode::OK
        {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the server died: it could not write its log");
        assert!(std::time::Instant::now() < deadline, "the server never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in 0..20 {
        let (status, _, body) = json(send(&client, &base, &order(&format!("full-{n}"))).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let forged = shopify_request(
            "orders/create",
            "faults.myshopify.com",
            b"{}".to_vec(),
            b"wrong",
            &format!("x-{n}"),
            now(),
        );
        assert_eq!(send(&client, &base, &forged).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), StatusCode::OK);
    let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "stopped cleanly: {status}");
}

/// The search indexer is derived data, so it restarts in place: here it cannot open the index for writing
/// at start (another writer holds the index's lock), `/healthz` says it is restarting (200, `degraded`: a
/// liveness probe must not restart the process for it), and once the lock is free it restarts by itself
/// and indexes what arrived meanwhile.
#[tokio::test]
async fn an_indexer_that_fails_restarts_in_place_and_catches_up() {
    let dir = TestServer::start().await.stop().await;
    let index = tantivy::Index::open_in_dir(dir.path().join("data/search")).unwrap();
    let holder: tantivy::IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
    let s = TestServer::start_with(Options { dir: Some(dir), ..Options::default() }).await;
    // The indexer fails on its own thread, moments after the server is ready.
    let deadline = std::time::Instant::now() + GENEROUS;
    let health = loop {
        let (status, health) = s.get("/healthz").await;
        assert_eq!(status, StatusCode::OK, "{health}");
        if health["status"] != "ok" {
            break health;
        }
        assert!(std::time::Instant::now() < deadline, "the indexer never failed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(health, serde_json::json!({"status": "degraded", "restarting": ["search indexer"]}));
    let req = shopify_request(
        "orders/create",
        "faults.myshopify.com",
        br#"{"note":"while the indexer was down"}"#.to_vec(),
        SHOPIFY_SECRET.as_bytes(),
        "down-1",
        now(),
    );
    assert_eq!(s.send_json(&req).await.0, StatusCode::OK, "ingest does not need the indexer");
    drop(holder);
    let deadline = std::time::Instant::now() + GENEROUS;
    while s.get("/healthz").await.1["status"] != "ok" {
        assert!(std::time::Instant::now() < deadline, "the indexer never restarted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    searched(&s, "q=%22indexer+was+down%22", 1).await;
}

/// A data file damaged while the server was stopped is refused at start with the way out, whatever the
/// damage: never a panic, never an empty store in its place, and the file is left as it is for the restore
/// to keep aside.
#[tokio::test]
async fn a_data_file_damaged_while_stopped_is_refused_at_start_naming_the_restore() {
    let s = TestServer::start().await;
    for i in 0..50 {
        assert_eq!(s.send(&order(&format!("damaged-{i}"))).await.status(), StatusCode::OK);
    }
    let dir = s.stop().await;
    let file = dir.path().join("data").join(hookplane::storage::DB_FILE);
    let intact = std::fs::read(&file).unwrap();
    let len = intact.len();
    // Everything past the first page, which holds the header and its commit slots: every table page.
    let mut overwritten = intact.clone();
    for (i, b) in overwritten[4096..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31) ^ 0x5a;
    }
    let mut foreign = intact.clone();
    foreign[..16].copy_from_slice(b"not a database!!");
    let damages = [
        ("truncated", intact[..len / 2].to_vec()),
        ("emptied", Vec::new()),
        ("overwritten past its header", overwritten),
        ("not a database", foreign),
    ];
    for (what, bytes) in damages {
        std::fs::write(&file, &bytes).unwrap();
        let started = tokio::time::timeout(GENEROUS, Core::start(settings_for(&dir), Arc::new(SystemClock))).await;
        let err = match started.unwrap() {
            Ok(_) => panic!("{what}: the damaged file was opened"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("is damaged and was not opened") && err.contains("hookplane restore --from FILE --replace"),
            "{what}: {err}"
        );
        assert!(std::fs::read(&file).unwrap() == bytes, "{what}: the damaged file is left as it was");
    }

    std::fs::write(&file, &intact).unwrap();
    let s = TestServer::start_with(Options { dir: Some(dir), ..Options::default() }).await;
    assert_eq!(s.all_deliveries("").await.len(), 50, "the intact file opens with every delivery");
}

fn settings_for(dir: &tempfile::TempDir) -> Settings {
    let flags = Flags { data_dir: Some(dir.path().join("data")), ..Flags::default() };
    Settings::load(&flags, &env(&[])).unwrap()
}

/// Orders that say `words`, sent and acknowledged.
async fn orders_saying(s: &TestServer, words: &str, ids: std::ops::Range<u32>) {
    for n in ids {
        let body = format!(r#"{{"id":{n},"note":"{words}"}}"#).into_bytes();
        let id = format!("{words}-{n}");
        let req = shopify_request("orders/create", "faults.myshopify.com", body, SHOPIFY_SECRET.as_bytes(), &id, now());
        assert_eq!(s.send_json(&req).await.0, StatusCode::OK);
    }
}

/// Waits until a search for `query` answers 200 again, checking each answer is that or 503
/// `search_unavailable`; returns the answer and how many 503s came first.
async fn search_once_rebuilt(s: &TestServer, query: &str) -> (Value, usize) {
    let deadline = std::time::Instant::now() + GENEROUS;
    let mut unavailable = 0;
    loop {
        let (status, page) = s.get(&format!("/api/v1/deliveries?q={query}")).await;
        match status {
            StatusCode::OK => return (page, unavailable),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(page["code"], "search_unavailable", "{page}");
                assert!(page["detail"].as_str().unwrap().contains("being rebuilt"), "{page}");
                unavailable += 1;
            }
            other => panic!("{other}: {page}"),
        }
        assert!(std::time::Instant::now() < deadline, "the search index was never rebuilt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The search directory deleted, then damaged, under a running server: searches answer 503
/// `search_unavailable` saying the index is being rebuilt, never stale or empty results, and the index is
/// rebuilt from storage by itself, with what arrived meanwhile.
#[tokio::test]
async fn a_search_index_deleted_or_damaged_while_running_is_rebuilt() {
    let s = TestServer::start().await;
    orders_saying(&s, "kettle", 0..3).await;
    searched(&s, "q=kettle", 3).await;
    let search = s.data_dir().join("search");

    std::fs::remove_dir_all(&search).unwrap();
    let (status, page) = s.get("/api/v1/deliveries?q=kettle").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a deleted index answered: {page}");
    assert_eq!(page["code"], "search_unavailable", "{page}");
    // Listing does not need the index.
    let (status, page) = s.get("/api/v1/deliveries?limit=10").await;
    assert_eq!((status, page["items"].as_array().unwrap().len()), (StatusCode::OK, 3), "{page}");
    orders_saying(&s, "kettle", 3..4).await;
    let (page, _) = search_once_rebuilt(&s, "kettle").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 4, "every delivery, the one sent meanwhile too: {page}");
    assert!(search.join("meta.json").is_file());

    // Damaged in place: every file of the index overwritten with other bytes of the same length.
    orders_saying(&s, "teapot", 0..2).await;
    searched(&s, "q=teapot", 2).await;
    for entry in std::fs::read_dir(&search).unwrap() {
        let path = entry.unwrap().path();
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        if path.extension().is_none_or(|e| e != "lock") && len > 0 {
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.write_all_at(&vec![0xA5; len], 0).unwrap();
        }
    }
    let (page, unavailable) = search_once_rebuilt(&s, "teapot").await;
    assert!(unavailable > 0, "a damaged index answered without a rebuild: {page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    searched(&s, "q=kettle", 4).await;
}
