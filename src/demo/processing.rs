//! The demo's processing service, run inside the process: every demo subscription that forwards sends its
//! deliveries here, so live deliveries and replays succeed or fail as the scenario says instead of failing
//! against an address nobody answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use poem::listener::TcpAcceptor;
use poem::web::{Data, Path};
use poem::{EndpointExt, Response, Route, Server, handler};

use super::Scenario;
use crate::contract::demo::{MockDestination, MockDestinations, MockMode};

#[derive(Debug)]
struct State {
    base: String,
    /// Each destination in the order the demo named it, with how it answers.
    modes: Mutex<Vec<(String, MockMode)>>,
    answered: AtomicU64,
}

/// The mock processing service, bound and not yet serving.
pub struct Processing {
    listener: std::net::TcpListener,
    state: Arc<State>,
}

impl Processing {
    /// Binds a free port on this machine; `scenario` sets how each destination answers (the failing
    /// scenario's orders destination answers 503, everything else 200).
    pub fn bind(scenario: Scenario) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let base = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State { base, modes: Mutex::default(), answered: AtomicU64::new(0) });
        if scenario == Scenario::Failing {
            state.add(ORDERS);
            state.set(ORDERS, MockMode::Failing);
        }
        Ok(Self { listener, state })
    }

    /// The URL a demo subscription forwards to, one per destination `name`.
    pub fn url(&self, name: &str) -> String {
        self.state.add(name);
        self.state.url(name)
    }

    /// Its destinations, for the dashboard to flip while it serves.
    pub fn destinations(&self) -> Arc<dyn MockDestinations> {
        Arc::clone(&self.state) as Arc<dyn MockDestinations>
    }

    /// Serves on the current tokio runtime until the process ends.
    pub fn serve(self) -> std::io::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let app = Route::new().at("/processing/:name", poem::post(receive)).data(self.state);
        Ok(tokio::spawn(Server::new_with_acceptor(TcpAcceptor::from_tokio(listener)?).run(app)))
    }
}

/// The orders destination, the one the failing scenario breaks.
pub const ORDERS: &str = "shopify";

impl State {
    fn url(&self, name: &str) -> String {
        format!("{}/processing/{name}", self.base)
    }

    fn add(&self, name: &str) {
        let mut modes = self.modes.lock().unwrap_or_else(PoisonError::into_inner);
        if !modes.iter().any(|(n, _)| n == name) {
            modes.push((name.to_owned(), MockMode::Healthy));
        }
    }

    fn of(&self, name: &str) -> MockMode {
        let modes = self.modes.lock().unwrap_or_else(PoisonError::into_inner);
        modes.iter().find(|(n, _)| n == name).map_or(MockMode::Healthy, |(_, m)| *m)
    }
}

impl MockDestinations for State {
    fn list(&self) -> Vec<MockDestination> {
        let modes = self.modes.lock().unwrap_or_else(PoisonError::into_inner);
        modes
            .iter()
            .map(|(name, mode)| MockDestination { name: name.clone(), url: self.url(name), mode: *mode })
            .collect()
    }

    fn set(&self, name: &str, mode: MockMode) -> Option<MockMode> {
        let mut modes = self.modes.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, m) = modes.iter_mut().find(|(n, _)| n == name)?;
        Some(std::mem::replace(m, mode))
    }
}

/// The version the demo's processing service names in every answer (`X-Service-Version`).
pub const VERSION: &str = "2.14.0";

#[handler]
async fn receive(Path(name): Path<String>, Data(state): Data<&Arc<State>>) -> Response {
    use poem::http::StatusCode;
    let n = state.answered.fetch_add(1, Ordering::Relaxed);
    let answer = Response::builder().header(crate::domain::deploy::DEFAULT_VERSION_HEADER, VERSION);
    match state.of(&name) {
        MockMode::Healthy => {
            // The same spread of latencies as the demo's history: 40 to 300 ms.
            tokio::time::sleep(Duration::from_millis(40 + n * 37 % 260)).await;
            answer.status(StatusCode::OK).body("processed")
        }
        MockMode::Failing => {
            answer.status(StatusCode::SERVICE_UNAVAILABLE).body("the demo processing service is failing")
        }
        MockMode::Slow => {
            // Past the longest timeout a destination may have (600 s): every attempt times out.
            tokio::time::sleep(Duration::from_secs(601)).await;
            answer.status(StatusCode::OK).body("processed, too late")
        }
        MockMode::Gone => answer.status(StatusCode::GONE).body("the demo processing service removed this endpoint"),
    }
}
