//! Tests against the real binary in its own process: kill -9 under load, a disk that refuses writes, and
//! SIGTERM.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hookplane::demo::factories::{Factory, SignedRequest, shopify_request};
use tokio::sync::Notify;

use crate::support::{ADMIN_TOKEN, JsonBody as _, MASTER_KEY, SHOPIFY_SECRET, body_of, now};

const SHOP: &str = "crash-shop.myshopify.com";

pub(crate) struct Proc {
    child: Child,
    pub(crate) base: String,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Starts `hookplane serve` on `dir`, optionally through `bash -c` with a file-size limit in KiB (and
    /// SIGXFSZ ignored, so the limit shows up as a failed write, as a full disk does).
    pub(crate) fn start(dir: &Path, file_limit_kib: Option<u64>) -> Self {
        Self::start_env(dir, file_limit_kib, &[])
    }

    pub(crate) fn start_env(dir: &Path, file_limit_kib: Option<u64>, extra: &[(&str, &str)]) -> Self {
        let bin = env!("CARGO_BIN_EXE_hookplane");
        let cmd = match file_limit_kib {
            None => {
                let mut c = Command::new(bin);
                c.arg("serve");
                c
            }
            Some(kib) => {
                let mut c = Command::new("bash");
                c.args(["-c", &format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" serve"), bin]);
                c
            }
        };
        Self::spawn(cmd, dir, extra, None)
    }

    /// Starts `hookplane serve` with its data directory on a filesystem of `mib` MiB of its own (a tmpfs in
    /// a mount namespace made for it, so nothing outside sees it) and its log appended to [`SMALL_DISK_LOG`]
    /// there, as `hookplane serve >> hookplane.log 2>&1` on a small disk would. The test reaches the files
    /// through `/proc/PID/root` ([`Proc::on_disk`]); they go with the process. Root makes the namespace
    /// itself; anyone else, inside a user namespace of their own.
    pub(crate) fn start_on_small_disk(dir: &Path, mib: u64) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        let mut cmd = Command::new("unshare");
        if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() != 0) {
            cmd.args(["--user", "--map-root-user"]);
        }
        let script = format!(
            "mount -t tmpfs -o size={mib}m hookplane-small \"$HOOKPLANE_DATA_DIR\" && \
             exec \"$0\" serve >>\"$HOOKPLANE_DATA_DIR/{SMALL_DISK_LOG}\" 2>&1"
        );
        cmd.args(["--mount", "--propagation", "private", "bash", "-c", &script, env!("CARGO_BIN_EXE_hookplane")]);
        Self::spawn(cmd, dir, &[], Some(dir.join(SMALL_DISK_LOG)))
    }

    /// Where `path`, as the server sees it, is from outside its mount namespace.
    pub(crate) fn on_disk(&self, path: &Path) -> std::path::PathBuf {
        Path::new(&format!("/proc/{}/root", self.child.id())).join(path.strip_prefix("/").unwrap_or(path))
    }

    /// Runs `cmd` as the server, reading its log from standard output, or from `log_file` (as the server
    /// sees it) when it writes its log there.
    fn spawn(mut cmd: Command, dir: &Path, extra: &[(&str, &str)], log_file: Option<std::path::PathBuf>) -> Self {
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOOKPLANE_LISTEN", "127.0.0.1:0")
            .env("HOOKPLANE_DATA_DIR", dir)
            .env("HOOKPLANE_MASTER_KEY", MASTER_KEY)
            .env("HOOKPLANE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SHOPIFY_WEBHOOK_SECRET", SHOPIFY_SECRET)
            .env("HOOKPLANE_SECRETS__DIGEST_MEMORY_KIB", "64")
            .env("HOOKPLANE_SECRETS__DIGEST_ITERATIONS", "1")
            .env("RUST_LOG", "info")
            .envs(extra.iter().copied())
            .stdout(if log_file.is_some() { Stdio::null() } else { Stdio::piped() })
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        let mut tx = Some(tx);
        let mut take = move |line: String| {
            if line.contains("Hookplane is listening")
                && let Some(addr) = listening_address(&line)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr);
            }
            sink.lock().unwrap().push(line);
        };
        let reader = match log_file {
            None => {
                let stdout = child.stdout.take().unwrap();
                std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).for_each(take))
            }
            Some(file) => {
                let file = Path::new(&format!("/proc/{}/root", child.id())).join(file.strip_prefix("/").unwrap());
                std::thread::spawn(move || tail(&file, &mut take))
            }
        };
        let addr = rx.recv_timeout(GENEROUS).expect("the server exited, or never said it was listening");
        Self { child, base: format!("http://{addr}"), log, reader: Some(reader) }
    }

    pub(crate) fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub(crate) fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success());
        let status = self.child.wait().unwrap();
        // The reader ends at end of output, so the log is complete once it is joined.
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        let log = self.log.lock().unwrap().clone();
        (status, log)
    }
}

impl Drop for Proc {
    /// A failing test must not leave a server running (it would hold the test's output open).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The log file of a server started by [`Proc::start_on_small_disk`], in its data directory.
pub(crate) const SMALL_DISK_LOG: &str = "hookplane.log";

/// Bounds a wait that only a broken build would exceed.
const GENEROUS: std::time::Duration = std::time::Duration::from_secs(60);

/// Hands `take` each line appended to `file` until the file cannot be read any more after it could (its
/// process has gone), or never could within [`GENEROUS`].
fn tail(file: &Path, take: &mut dyn FnMut(String)) {
    let began = std::time::Instant::now();
    let (mut read, mut partial) = (0usize, Vec::new());
    loop {
        match std::fs::read(file) {
            Ok(bytes) => {
                partial.extend_from_slice(bytes.get(read..).unwrap_or_default());
                read = bytes.len();
                while let Some(end) = partial.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = partial.drain(..=end).collect();
                    take(String::from_utf8_lossy(&line[..end]).into_owned());
                }
            }
            Err(_) if read > 0 || began.elapsed() > GENEROUS => return,
            Err(_) => {}
        }
        #[allow(clippy::disallowed_methods)] // the tail's own thread, never the runtime
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The address in the "listening" line, written as text (`addr=…`) or as JSON (`"addr":"…"`).
fn listening_address(line: &str) -> Option<String> {
    if let Ok(event) = serde_json::from_str::<serde_json::Value>(line) {
        return event["addr"].as_str().map(str::to_owned);
    }
    line.split_whitespace().find_map(|w| w.strip_prefix("addr=")).map(str::to_owned)
}

/// An API answer read as JSON, asked for with the admin token.
async fn api_get(base: &str, path: &str) -> serde_json::Value {
    let resp = reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    serde_json::from_str(&resp.text().await.unwrap()).unwrap()
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    req: &SignedRequest,
) -> Result<(u16, serde_json::Value), reqwest::Error> {
    let resp = crate::support::signed(client, base, req).send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or_default()))
}

#[derive(Default)]
pub(crate) struct Ledger {
    pub(crate) acked: Mutex<HashMap<String, Vec<u8>>>,
    unacked: Mutex<Vec<SignedRequest>>,
    pub(crate) refused: Mutex<Vec<(u16, serde_json::Value, SignedRequest)>>,
}

/// One round of load: stops when told, and says when `target` acknowledgements were reached.
pub(crate) struct Round {
    pub(crate) stop: AtomicBool,
    pub(crate) acks: AtomicUsize,
    pub(crate) reached: Notify,
    pub(crate) target: usize,
}

/// Sends unique signed orders from `workers` tasks until the round stops, recording what was acknowledged.
pub(crate) async fn load(base: String, ledger: Arc<Ledger>, workers: usize, seed: u64, round: Arc<Round>) {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, base, ledger, round) = (client.clone(), base.clone(), Arc::clone(&ledger), Arc::clone(&round));
        tasks.push(tokio::spawn(async move {
            let mut f = Factory::new(seed * 1000 + w as u64);
            let mut n = 0u64;
            while !round.stop.load(Ordering::SeqCst) {
                n += 1;
                let id = format!("s{seed}-w{w}-n{n}");
                let body = f.shopify_order(1000 + n, now());
                let req = shopify_request("orders/create", SHOP, body, SHOPIFY_SECRET.as_bytes(), &id, now());
                match post(&client, &base, &req).await {
                    Ok((200, _)) => {
                        ledger.acked.lock().unwrap().insert(id, req.body);
                        if round.acks.fetch_add(1, Ordering::SeqCst) + 1 >= round.target {
                            round.reached.notify_one();
                        }
                    }
                    Ok((status, body)) => ledger.refused.lock().unwrap().push((status, body, req)),
                    Err(_) => {
                        ledger.unacked.lock().unwrap().push(req);
                        break;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Every acknowledged delivery is stored once with its exact bytes; returns how many deliveries exist.
pub(crate) async fn verify(base: &str, acked: &HashMap<String, Vec<u8>>) -> usize {
    let client = reqwest::Client::new();
    let mut by_provider: HashMap<String, Vec<String>> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}/api/v1/deliveries?limit=500&cursor={c}"),
            None => format!("{base}/api/v1/deliveries?limit=500"),
        };
        let page: serde_json::Value =
            serde_json::from_str(&client.get(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap().text().await.unwrap())
                .unwrap();
        for d in page["items"].as_array().unwrap() {
            by_provider
                .entry(d["provider_delivery_id"].as_str().unwrap().to_owned())
                .or_default()
                .push(d["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    for (provider_id, ids) in &by_provider {
        assert_eq!(ids.len(), 1, "{provider_id} stored {} times", ids.len());
    }
    for (provider_id, body) in acked {
        let ids = by_provider.get(provider_id).unwrap_or_else(|| panic!("acknowledged {provider_id} is missing"));
        assert_eq!(&body_of(&client, base, &ids[0]).await, body, "{provider_id} body differs");
    }
    by_provider.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_deliveries_survive_kill_9_repeatedly() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Ledger::default());
    // Three rounds: each kills the server while 16 clients are sending, at whatever point a commit is in.
    for round in 1..=3u64 {
        let proc = Proc::start(dir.path(), None);
        let r = Arc::new(Round {
            stop: AtomicBool::new(false),
            acks: AtomicUsize::new(0),
            reached: Notify::new(),
            target: 150,
        });
        let load = tokio::spawn(load(proc.base.clone(), Arc::clone(&ledger), 16, round, Arc::clone(&r)));
        r.reached.notified().await;
        proc.kill9();
        r.stop.store(true, Ordering::SeqCst);
        load.await.unwrap();
    }
    assert!(
        ledger.refused.lock().unwrap().is_empty(),
        "nothing was refused: {:?}",
        ledger.refused.lock().unwrap().first().map(|r| (r.0, r.1.clone()))
    );

    let proc = Proc::start(dir.path(), None);
    let acked = ledger.acked.lock().unwrap().clone();
    assert!(acked.len() >= 450);
    let stored = verify(&proc.base, &acked).await;
    assert!(stored >= acked.len());

    // What was in flight at a kill is retried, as a provider would: accepted, stored once.
    let client = reqwest::Client::new();
    let retries = ledger.unacked.lock().unwrap().clone();
    for req in &retries {
        let (status, body) = post(&client, &proc.base, req).await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let mut all = acked.clone();
    for req in retries {
        all.insert(req.header("x-shopify-webhook-id").unwrap().to_owned(), req.body);
    }
    assert_eq!(verify(&proc.base, &all).await, stored.max(all.len()));
    proc.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disk_that_refuses_writes_gets_503_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _) = Proc::start(dir.path(), None).terminate();
    assert!(status.success());
    let size = std::fs::metadata(dir.path().join("hookplane.redb")).unwrap().len();

    // Room for a little growth, then every write that extends the file fails (EFBIG, as ENOSPC would).
    let proc = Proc::start(dir.path(), Some(size / 1024 + 256));
    let ledger = Arc::new(Ledger::default());
    let client = reqwest::Client::new();
    let mut f = Factory::new(99);
    let mut first_refusal = None;
    for n in 0..20_000u64 {
        let id = format!("disk-{n}");
        let req =
            shopify_request("orders/create", SHOP, f.shopify_order(n, now()), SHOPIFY_SECRET.as_bytes(), &id, now());
        let (status, body) = post(&client, &proc.base, &req).await.unwrap();
        match status {
            200 => {
                ledger.acked.lock().unwrap().insert(id, req.body);
            }
            503 => {
                first_refusal = Some((body, req));
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let (problem, refused) = first_refusal.expect("the size limit was never reached");
    assert_eq!(problem["code"], "storage_unavailable", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("retry"));
    // It keeps refusing rather than pretending.
    let (again, _) = post(&client, &proc.base, &refused).await.unwrap();
    assert_eq!(again, 503);
    proc.kill9();

    let proc = Proc::start(dir.path(), None);
    let acked = ledger.acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    verify(&proc.base, &acked).await;
    let (status, body) = post(&client, &proc.base, &refused).await.unwrap();
    assert_eq!(status, 200, "the provider's retry is accepted once the disk has room: {body}");
    let (status, log) = proc.terminate();
    assert!(status.success());
    assert!(log.iter().any(|l| l.contains("stopped cleanly")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::start(dir.path(), None);
    let client = reqwest::Client::new();
    let mut f = Factory::new(5);
    let mut acked = HashMap::new();
    for n in 0..20u64 {
        let id = format!("term-{n}");
        let req =
            shopify_request("orders/create", SHOP, f.shopify_order(n, now()), SHOPIFY_SECRET.as_bytes(), &id, now());
        assert_eq!(post(&client, &proc.base, &req).await.unwrap().0, 200);
        acked.insert(id, req.body);
    }
    let (status, log) = proc.terminate();
    assert!(status.success(), "{status}");
    assert!(log.iter().any(|l| l.contains("stopped cleanly")), "{log:?}");
    let proc = Proc::start(dir.path(), None);
    assert_eq!(verify(&proc.base, &acked).await, 20);
    proc.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_and_the_healthcheck_command() {
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::start_env(dir.path(), None, &[("HOOKPLANE_LOG_FORMAT", "json")]);
    let ok = hookplane(&["healthcheck", "--url", &proc.base], &[]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains(r#""status":"ok""#));
    let (status, log) = proc.terminate();
    assert!(status.success());
    assert!(log.len() >= 2, "{log:?}");
    for line in &log {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(event["level"].is_string() && event["message"].is_string() && event["timestamp"].is_string(), "{line}");
    }
    let gone = hookplane(&["healthcheck", "--url", "http://127.0.0.1:9", "--timeout-seconds", "2"], &[]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("cannot reach http://127.0.0.1:9/healthz"));
    let bad = hookplane(&["serve"], &[("HOOKPLANE_LOG_FORMAT", "xml")]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("log_format"), "{}", String::from_utf8_lossy(&bad.stderr));
}

pub(crate) fn hookplane(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookplane"));
    cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_manages_subscriptions_and_checks_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::start(dir.path(), None);
    let env = [("HOOKPLANE_ADMIN_TOKEN", ADMIN_TOKEN), ("LEADS_TOKEN", "cli-token")];
    let create = |channel: &'static str| {
        let base = proc.base.clone();
        tokio::task::spawn_blocking(move || {
            let args = ["subscriptions", "create", "--url", &base, "--source", "zoho", "--topic", "Leads.all"];
            let more =
                ["--account", "org-7", "--name", "cli-leads", "--channel-id", channel, "--secret-env", "LEADS_TOKEN"];
            hookplane(&[&args[..], &more[..]].concat(), &env)
        })
    };
    let out = create("8001").await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["subscription"]["name"], "cli-leads");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("cli-token"));

    // The secret came from the environment variable: a notification signed with it is accepted.
    let mut f = Factory::new(8);
    let body = f.zoho_notification("Leads", "insert", "8001", "cli-token", now());
    let req = hookplane::demo::factories::zoho_channel_request(body);
    assert_eq!(post(&reqwest::Client::new(), &proc.base, &req).await.unwrap().0, 200);

    // The destination changes in place, and back to `store`.
    let set = |args: &'static [&'static str]| {
        let base = proc.base.clone();
        tokio::task::spawn_blocking(move || {
            hookplane(&[&["subscriptions", "set-destination", "--url", &base, "cli-leads"][..], args].concat(), &env)
        })
    };
    let out = set(&["--destination-url", "http://127.0.0.1:9/leads", "--concurrency", "2"]).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let changed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(changed["subscription"]["destination_url"], "http://127.0.0.1:9/leads");
    assert_eq!(changed["subscription"]["destination_concurrency"], 2);
    let out = set(&["--store"]).await.unwrap();
    let changed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(changed["subscription"]["destination_url"].is_null(), "{changed}");
    let out = set(&[]).await.unwrap();
    assert!(!out.status.success(), "nothing to change is refused before any request");
    let out = set(&["--destination-url", "ftp://x"]).await.unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("http:// or https://"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dup = create("8002").await.unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("409"), "{}", String::from_utf8_lossy(&dup.stderr));

    let base = proc.base.clone();
    let list =
        tokio::task::spawn_blocking(move || hookplane(&["subscriptions", "list", "--url", &base], &env)).await.unwrap();
    assert!(list.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    proc.kill9();

    let key = hookplane(&["master-key"], &[]);
    let key = String::from_utf8(key.stdout).unwrap();
    assert_eq!(key.trim().len(), 64);
    let data = tempfile::tempdir().unwrap();
    let data_dir = ("HOOKPLANE_DATA_DIR", data.path().to_str().unwrap());
    let ok = hookplane(&["check"], &[("HOOKPLANE_MASTER_KEY", key.trim()), data_dir]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    let missing = hookplane(&["check"], &[data_dir]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stdout).contains("HOOKPLANE_MASTER_KEY"));
    let typo = hookplane(&["check"], &[("HOOKPLANE_MASTER_KEY", key.trim()), ("HOOKPLANE_LISTN", "x")]);
    assert!(String::from_utf8_lossy(&typo.stderr).contains("HOOKPLANE_LISTN"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_delivers_a_signed_sample_from_every_source() {
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::start(dir.path(), None);
    let whsec = hookplane::connectors::standard::generate_secret();
    let client = reqwest::Client::new();
    let create = |body: serde_json::Value| {
        client
            .post(format!("{}/api/v1/subscriptions", proc.base))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let standard = serde_json::json!({"source": "standard", "topic": "invoice.paid", "account": "billing",
        "name": "billing", "secret": whsec});
    assert!(create(standard).await.unwrap().status().is_success());
    let zoho = serde_json::json!({"source": "zoho", "topic": "Leads.all", "account": "org-1", "channel_id": "4242",
        "secret": "zoho-token"});
    assert!(create(zoho).await.unwrap().status().is_success());

    let env = [("SHOPIFY_WEBHOOK_SECRET", SHOPIFY_SECRET), ("WHSEC", whsec.as_str()), ("ZOHO_TOKEN", "zoho-token")];
    let send = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["send-test", "--url", proc.base.as_str()];
        all.extend_from_slice(args);
        hookplane(&all, env)
    };
    let runs = [
        send(&[], &env),
        send(&["--source", "standard", "--subscription", "billing", "--secret-env", "WHSEC"], &env),
        send(&["--source", "zoho", "--channel-id", "4242", "--secret-env", "ZOHO_TOKEN"], &env),
    ];
    for out in &runs {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("delivery_id"));
    }

    // A wrong secret is refused by the server, and the command says so and fails.
    let wrong = send(&[], &[("SHOPIFY_WEBHOOK_SECRET", "not-the-secret")]);
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("401") && err.contains("HMAC does not match"), "{err}");
    let missing = send(&["--source", "standard", "--secret-env", "WHSEC"], &env);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--subscription"));

    let page = api_get(&proc.base, "/api/v1/deliveries").await;
    let sources: Vec<&str> = page["items"].as_array().unwrap().iter().map(|d| d["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["zoho", "standard", "shopify"], "newest first, one from each source");
    proc.kill9();
}

/// How many orders (up to 100) a path query every order matches finds.
pub(crate) async fn orders_found(client: &reqwest::Client, base: &str) -> usize {
    let url = format!("{base}/api/v1/deliveries?q=gateway:shopify_payments&limit=100");
    let text = client.get(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap().text().await.unwrap();
    let page: serde_json::Value = serde_json::from_str(&text).unwrap();
    page["items"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_stored_but_not_yet_indexed_when_killed_are_found_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    // An index commit only every hour: every delivery below is in redb and none in a committed index when
    // the process dies.
    let lazy = [("HOOKPLANE_SEARCH__COMMIT_INTERVAL_MS", "60000"), ("HOOKPLANE_SEARCH__COMMIT_DOCS", "100000")];
    let proc = Proc::start_env(dir.path(), None, &lazy);
    let client = reqwest::Client::new();
    let mut f = Factory::new(12);
    for n in 0..10u64 {
        let body = f.shopify_order(7000 + n, now());
        let req = shopify_request("orders/create", SHOP, body, SHOPIFY_SECRET.as_bytes(), &format!("idx-{n}"), now());
        assert_eq!(post(&client, &proc.base, &req).await.unwrap().0, 200);
    }
    proc.kill9();

    let proc = Proc::start_env(dir.path(), None, &[("HOOKPLANE_SEARCH__COMMIT_INTERVAL_MS", "10")]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let found = loop {
        let n = orders_found(&client, &proc.base).await;
        if n == 10 || std::time::Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(found, 10, "the index caught up from redb");
    proc.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_rebuilds_the_index_of_a_stopped_instance_and_refuses_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let proc = Proc::start(dir.path(), None);
    let client = reqwest::Client::new();
    let mut f = Factory::new(13);
    for n in 0..10u64 {
        let body = f.shopify_order(8000 + n, now());
        let req = shopify_request("orders/create", SHOP, body, SHOPIFY_SECRET.as_bytes(), &format!("rx-{n}"), now());
        assert_eq!(post(&client, &proc.base, &req).await.unwrap().0, 200);
    }
    let busy = hookplane(&["reindex", "--data-dir", data], &[("HOOKPLANE_MASTER_KEY", MASTER_KEY)]);
    assert!(!busy.status.success());
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(err.contains("in use by a running Hookplane: stop it first"), "{err}");
    let (status, _) = proc.terminate();
    assert!(status.success());

    // Damage the index, then rebuild it offline.
    std::fs::write(dir.path().join("search").join("meta.json"), b"{ not json").unwrap();
    let out = hookplane(&["reindex", "--data-dir", data], &[("HOOKPLANE_MASTER_KEY", MASTER_KEY)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("reindexing 10 deliveries") && err.contains("indexed 10 deliveries"), "{err}");
    assert!(err.contains("100 %"), "progress is reported: {err}");

    // The rebuilt index is whole: with no catch-up margin, the next start re-indexes only what shares the
    // newest delivery's millisecond, and every delivery is found.
    let proc = Proc::start_env(dir.path(), None, &[("HOOKPLANE_SEARCH__CATCH_UP_MARGIN_SECONDS", "0")]);
    assert_eq!(orders_found(&client, &proc.base).await, 10);
    let (_, log) = proc.terminate();
    // The stop can come before the start's short catch-up has logged its end; it must not be a rebuild.
    assert!(!log.iter().any(|l| l.contains("rebuilding it")), "the start rebuilt a whole index: {log:#?}");
    if let Some(caught_up) = log.iter().find(|l| l.contains("search index caught up")) {
        let n: usize = caught_up
            .split("deliveries=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no delivery count in {caught_up:?}"));
        assert!(n < 10, "the start found a whole index and did not rebuild it: {caught_up}");
    }

    let none = hookplane(&["reindex", "--data-dir", dir.path().join("nothing").to_str().unwrap()], &[]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("there is no Hookplane store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_make_list_and_revoke_api_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let key = [("HOOKPLANE_MASTER_KEY", MASTER_KEY)];
    let proc = Proc::start(dir.path(), None);
    let busy = hookplane(&["admin", "create-token", "--name", "ci", "--role", "viewer", "--data-dir", data], &key);
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use by a running Hookplane: stop it first"));
    assert!(proc.terminate().0.success());

    let bad = hookplane(&["admin", "create-token", "--name", "ci", "--role", "root", "--data-dir", data], &key);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`root` is not a role"));
    let made = hookplane(&["admin", "create-token", "--name", "ci", "--role", "viewer", "--data-dir", data], &key);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let token = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("hp_") && token.len() == 46, "{token}");
    let listed = hookplane(&["admin", "list-tokens", "--data-dir", data], &key);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("\tci\tviewer\t") && listed.contains("live") && !listed.contains(&token), "{listed}");

    let client = reqwest::Client::new();
    let proc = Proc::start(dir.path(), None);
    let call = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{}{path}", proc.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{}")
            .send()
    };
    assert_eq!(call(reqwest::Method::GET, "/api/v1/deliveries").await.unwrap().status().as_u16(), 200);
    assert_eq!(call(reqwest::Method::POST, "/api/v1/subscriptions").await.unwrap().status().as_u16(), 403);
    assert!(proc.terminate().0.success());

    let revoked = hookplane(&["admin", "revoke-token", "--name", "ci", "--data-dir", data], &key);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let again = hookplane(&["admin", "revoke-token", "--name", "ci", "--data-dir", data], &key);
    assert!(String::from_utf8_lossy(&again.stderr).contains("there is no live token named `ci`"));
    let proc = Proc::start(dir.path(), None);
    let resp = client.get(format!("{}/api/v1/deliveries", proc.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401, "a revoked token is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_make_operators_who_sign_in() {
    use crate::support::Browser;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let key = [("HOOKPLANE_MASTER_KEY", MASTER_KEY), ("SHORT", "too short"), ("GOOD", "a long enough password")];
    let proc = Proc::start(dir.path(), None);
    let busy = hookplane(&["admin", "create-user", "--username", "alice", "--role", "admin", "--data-dir", data], &key);
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use by a running Hookplane: stop it first"));
    // The first start logs a one-time setup link for this machine, and how to make an operator.
    // Logged right after "listening", which is what `Proc::start` waited for.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let line = loop {
        if let Some(l) = proc.log.lock().unwrap().iter().find(|l| l.contains("no operator exists yet")).cloned() {
            break l;
        }
        assert!(std::time::Instant::now() < deadline, "the first start says how to get in");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(line.contains("hookplane admin create-user"), "{line}");
    let link = line.split_whitespace().find(|w| w.starts_with(&format!("{}/setup?code=", proc.base))).unwrap();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let opened = client.get(link).send().await.unwrap();
    assert_eq!(opened.status().as_u16(), 303, "{link}");
    assert!(opened.headers()["set-cookie"].to_str().unwrap().starts_with("hookplane_local="));
    assert_eq!(client.get(link).send().await.unwrap().status().as_u16(), 403, "once");
    let (status, _) = proc.terminate();
    assert!(status.success());

    let made = hookplane(&["admin", "create-user", "--username", "Alice", "--role", "admin", "--data-dir", data], &key);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let out = String::from_utf8(made.stdout).unwrap();
    assert!(out.contains("made operator `alice`"), "{out}");
    let password = out.lines().find_map(|l| l.strip_prefix("password (shown once): ")).unwrap().to_owned();
    assert_eq!(password.len(), 24);
    let again =
        hookplane(&["admin", "create-user", "--username", "alice", "--role", "viewer", "--data-dir", data], &key);
    assert!(String::from_utf8_lossy(&again.stderr).contains("an operator named `alice` exists"));
    let args = ["admin", "create-user", "--username", "bob", "--role", "viewer", "--password-env", "SHORT"];
    let short = hookplane(&[&args[..], &["--data-dir", data]].concat(), &key);
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    let args = ["admin", "create-user", "--username", "b o b", "--role", "viewer", "--password-env", "GOOD"];
    let bad_name = hookplane(&[&args[..], &["--data-dir", data]].concat(), &key);
    assert!(String::from_utf8_lossy(&bad_name.stderr).contains("a username must be"));
    let listed = hookplane(&["admin", "list-users", "--data-dir", data], &key);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("\talice\tadmin\t") && !listed.contains("bob") && !listed.contains(&password), "{listed}");

    let proc = Proc::start(dir.path(), None);
    let mut browser = Browser::at(&proc.base);
    assert_eq!(browser.sign_in("alice", &password).await.status.as_u16(), 303);
    assert_eq!(browser.get("/dashboard/webhooks").await.status.as_u16(), 200);
    let (_, log) = proc.terminate();
    assert!(!log.iter().any(|l| l.contains("no operator can sign in yet")));

    // A reset ends the operator's sessions and replaces the password.
    let args = ["admin", "reset-password", "--username", "alice", "--password-env", "GOOD", "--data-dir", data];
    let reset = hookplane(&args, &key);
    assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));
    let missing = hookplane(&["admin", "reset-password", "--username", "carol", "--data-dir", data], &key);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("there is no operator `carol`"));
    let proc = Proc::start(dir.path(), None);
    let mut browser_after = Browser::at(&proc.base);
    browser_after.cookies = browser.cookies.clone();
    assert_eq!(browser_after.get("/dashboard/webhooks").await.status.as_u16(), 303, "the session ended");
    assert_eq!(browser_after.sign_in("alice", &password).await.status.as_u16(), 401);
    assert_eq!(browser_after.sign_in("alice", "a long enough password").await.status.as_u16(), 303);
    let audit = api_get(&proc.base, "/api/v1/audit").await;
    let entry = |action: &str| {
        audit["items"].as_array().unwrap().iter().find(|e| e["action"] == action).cloned().unwrap_or_default()
    };
    for action in ["sign_in", "sign_in_failed"] {
        assert_eq!(entry(action)["performed_by"], "operator:alice", "{action}");
    }
    let created = entry("operator_created");
    assert_eq!(created["performed_by"], "cli");
    assert_eq!(
        created["changes"],
        serde_json::json!([
            { "field": "username", "before": null, "after": "alice" },
            { "field": "role", "before": null, "after": "admin" }
        ])
    );
    let reset = entry("password_reset");
    assert_eq!(reset["target_id"], created["target_id"]);
    assert_eq!(reset["changes"][0]["field"], "password_changed_at");
    assert_ne!(reset["changes"][0]["before"], reset["changes"][0]["after"]);
    assert!(!audit.to_string().contains(&password) && !audit.to_string().contains("a long enough password"));
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_secret_reaches_the_data_directory_or_the_logs() {
    use hookplane::connectors::standard::decode_secret;
    use hookplane::demo::factories::standard_request;
    const OLD: &str = "whsec_b2xkLXNlY3JldC1uZXZlci1vbi1kaXNrLTAwMQ==";
    const NEW: &str = "whsec_bmV3LXNlY3JldC1uZXZlci1vbi1kaXNrLTAwMg==";
    const ZOHO_TOKEN: &str = "zoho-token-never-on-disk-003";
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::start_env(dir.path(), None, &[("RUST_LOG", "debug")]);
    let client = reqwest::Client::new();
    let api = |path: &str, body: serde_json::Value| {
        client.post(format!("{}{path}", proc.base)).bearer_auth(ADMIN_TOKEN).json_body(&body).send()
    };
    let sub =
        serde_json::json!({ "source": "standard", "topic": "t", "account": "a", "name": "billing", "secret": OLD });
    assert_eq!(api("/api/v1/subscriptions", sub).await.unwrap().status().as_u16(), 201);
    let zoho = serde_json::json!({ "source": "zoho", "topic": "Leads.all", "account": "org", "name": "leads", "secret": ZOHO_TOKEN });
    assert_eq!(api("/api/v1/subscriptions", zoho).await.unwrap().status().as_u16(), 201);
    let signed = |secret: &str, n: u32| standard_request("billing", secret, &format!("msg_{n}"), now(), b"{}".to_vec());
    assert_eq!(post(&client, &proc.base, &signed(OLD, 1)).await.unwrap().0, 200);
    let rotate = serde_json::json!({ "secret": NEW, "secret_confirmation": NEW });
    let r = api("/api/v1/subscriptions/billing/secret/rotate", rotate).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(post(&client, &proc.base, &signed(NEW, 2)).await.unwrap().0, 200);
    assert_eq!(post(&client, &proc.base, &signed(OLD, 3)).await.unwrap().0, 200, "during the overlap");
    let (status, log) = proc.terminate();
    assert!(status.success());
    assert!(log.iter().any(|l| l.contains("DEBUG")), "the log was at debug level");

    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for secret in [OLD, NEW] {
        needles.push((secret.to_owned(), secret.as_bytes().to_vec()));
        needles.push((format!("{secret} (base64 part)"), secret.as_bytes()["whsec_".len()..].to_vec()));
        needles.push((format!("{secret} (key bytes)"), decode_secret(secret).unwrap()));
    }
    needles.push((ZOHO_TOKEN.to_owned(), ZOHO_TOKEN.as_bytes().to_vec()));
    let files = files_under(dir.path());
    assert!(files.iter().any(|f| f.ends_with("hookplane.redb")), "{files:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for (name, needle) in &needles {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_slice()), "{name} is in {}", file.display());
        }
    }
    let log = log.join("\n");
    for (name, needle) in &needles {
        assert!(!log.as_bytes().windows(needle.len()).any(|w| w == needle.as_slice()), "{name} is in the log");
    }
}

/// Handshakes sign in to providers with credentials that must never reach the log, even at debug level,
/// through success, a refusal and Zoho's OAuth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_credentials_never_reach_the_log() {
    use hookplane::demo::providers::{MockProviders, Scripted};
    const TOKEN: &str = "shpat_log_test_token_77";
    const CLIENT_SECRET: &str = "zoho-log-test-client-secret";
    const REFRESH: &str = "1000.log-test.refresh";
    let mock = MockProviders::bind().unwrap();
    mock.serve().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (shopify, zoho) = (mock.shopify_admin_url(), mock.zoho_url());
    let proc = Proc::start_env(
        dir.path(),
        None,
        &[
            ("RUST_LOG", "debug"),
            ("HOOKPLANE_PUBLIC_URL", "https://hooks.example.com"),
            ("SHOPIFY_ADMIN_ACCESS_TOKEN", TOKEN),
            ("HOOKPLANE_HANDSHAKE__SHOPIFY_ADMIN_URL", &shopify),
            ("HOOKPLANE_HANDSHAKE__ZOHO_ACCOUNTS_URL", &zoho),
            ("HOOKPLANE_HANDSHAKE__ZOHO_API_URL", &zoho),
        ],
    );
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        client.request(method, format!("{}{path}", proc.base)).bearer_auth(ADMIN_TOKEN).json_body(&body).send()
    };
    for body in [
        serde_json::json!({ "source": "shopify", "topic": "orders/create", "account": SHOP }),
        serde_json::json!({ "source": "zoho", "topic": "Leads.all", "account": "org-1", "channel_id": "42", "secret": "leads-token" }),
    ] {
        assert_eq!(call(reqwest::Method::POST, "/api/v1/subscriptions", body).await.unwrap().status(), 201);
    }
    let zoho_credential =
        serde_json::json!({ "client_id": "1000.C", "client_secret": CLIENT_SECRET, "refresh_token": REFRESH });
    let set = call(reqwest::Method::PUT, "/api/v1/credentials/zoho/org-1", zoho_credential).await.unwrap();
    assert_eq!(set.status(), 200);
    // Setting the credential woke the watchdog: its runs end before the failure is scripted, so the
    // failure goes to the run below and to nothing else.
    for _ in 0..400 {
        let resp =
            client.get(format!("{}/api/v1/subscriptions", proc.base)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        let (_, subs) = crate::support::json_of(resp).await;
        if subs.as_array().is_some_and(|a| a.iter().all(|s| s["handshake"].is_object())) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let ran = call(reqwest::Method::POST, "/api/v1/handshakes", serde_json::json!({})).await.unwrap();
    assert_eq!(ran.status(), 200);
    mock.script([Scripted::Status(401, "{\"errors\":\"[API] Invalid API key or access token\"}".to_owned())]);
    let failed =
        call(reqwest::Method::POST, "/api/v1/handshakes", serde_json::json!({})).await.unwrap().text().await.unwrap();
    assert!(failed.contains("unauthorized"), "{failed}");
    let (status, log) = proc.terminate();
    assert!(status.success(), "{status}");
    assert!(log.iter().any(|l| l.contains("a handshake failed")), "the failure is logged: {log:?}");
    for line in &log {
        for secret in [TOKEN, CLIENT_SECRET, REFRESH, "zat-", "leads-token"] {
            assert!(!line.contains(secret), "{secret} in the log: {line}");
        }
    }
}
