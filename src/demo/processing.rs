//! The demo's processing service, run inside the process: every demo subscription that forwards sends its
//! deliveries here, so live deliveries and replays succeed or fail as the scenario says instead of failing
//! against an address nobody answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use poem::listener::TcpAcceptor;
use poem::web::{Data, Path};
use poem::{EndpointExt, Response, Route, Server, handler};

use super::Scenario;

/// How one destination of the mock answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200, after a realistic latency.
    Healthy,
    /// 503.
    Failing,
}

#[derive(Debug, Default)]
struct State {
    behaviours: Mutex<HashMap<String, Behaviour>>,
    answered: AtomicU64,
}

/// The mock processing service, bound and not yet serving.
pub struct Processing {
    listener: std::net::TcpListener,
    base: String,
    state: Arc<State>,
}

impl Processing {
    /// Binds a free port on this machine; `scenario` sets how each destination answers (the failing
    /// scenario's orders destination answers 503, everything else 200).
    pub fn bind(scenario: Scenario) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let base = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State::default());
        if scenario == Scenario::Failing {
            state.set(ORDERS, Behaviour::Failing);
        }
        Ok(Self { listener, base, state })
    }

    /// The URL a demo subscription forwards to, one per destination `name`.
    pub fn url(&self, name: &str) -> String {
        format!("{}/processing/{name}", self.base)
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
    fn set(&self, name: &str, b: Behaviour) {
        self.behaviours.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_owned(), b);
    }

    fn of(&self, name: &str) -> Behaviour {
        self.behaviours.lock().unwrap_or_else(PoisonError::into_inner).get(name).copied().unwrap_or(Behaviour::Healthy)
    }
}

#[handler]
async fn receive(Path(name): Path<String>, Data(state): Data<&Arc<State>>) -> Response {
    use poem::http::StatusCode;
    let n = state.answered.fetch_add(1, Ordering::Relaxed);
    match state.of(&name) {
        Behaviour::Healthy => {
            // The same spread of latencies as the demo's history: 40 to 300 ms.
            tokio::time::sleep(Duration::from_millis(40 + n * 37 % 260)).await;
            Response::builder().status(StatusCode::OK).body("processed")
        }
        Behaviour::Failing => {
            Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body("the demo processing service is failing")
        }
    }
}
