//! `GET /metrics`: the Prometheus exposition. It takes `HOOKPLANE_METRICS_TOKEN` (which reads this and nothing
//! else, for a scraper's configuration) or any API token, whose least role (viewer) suffices.

use poem::http::header;
use poem::web::Data;
use poem::{Request, Response, handler};
use subtle::ConstantTimeEq as _;

use super::AppState;
use super::problem::{Kind, Problem};
use crate::storage::StoreError;

/// Jobs counted one by one at a scrape stop here (their index keys are small): a scrape stays quick
/// whatever the backlog.
const JOBS_CAP: u64 = 100_000;

/// Deliveries behind the index are counted up to this many: each counted row is a whole delivery read.
const LAG_CAP: u64 = 10_000;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[handler]
pub async fn metrics(req: &Request, Data(state): Data<&AppState>) -> Response {
    if let Err(p) = authorize(state, req).await {
        return p.response();
    }
    // Counters are answered whatever storage says; the levels read from it are left as they last were.
    if let Err(e) = levels(state).await {
        tracing::warn!(error = %e, "metrics: the levels kept in storage could not be read");
    }
    let text = crate::metrics::get().encode(crate::logging::dropped_lines());
    Response::builder().content_type(CONTENT_TYPE).body(text)
}

async fn authorize(state: &AppState, req: &Request) -> Result<(), Problem> {
    let presented = req
        .header(header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Problem::new(
                Kind::Unauthorized,
                "send `Authorization: Bearer <token>` with HOOKPLANE_METRICS_TOKEN or an API token",
            )
        })?;
    if let Some(token) = &state.metrics_token
        && bool::from(token.expose().ct_eq(presented.as_bytes()))
    {
        return Ok(());
    }
    match super::access::bearer(state, presented.as_bytes()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => {
            Err(Problem::new(Kind::Unauthorized, "the token is neither HOOKPLANE_METRICS_TOKEN nor a live API token"))
        }
        Err(e) => Err(Problem::from(&e)),
    }
}

/// Reads the levels that live in storage into the instruments.
async fn levels(state: &AppState) -> Result<(), StoreError> {
    let now = state.clock.now();
    let search = std::sync::Arc::clone(&state.search);
    let store = std::sync::Arc::clone(&state.store);
    let (queue, incidents, lag, index_bytes, store_bytes) = state
        .store
        .read(move |db| {
            let queue = crate::storage::jobs::levels(db, now, JOBS_CAP)?;
            let incidents = crate::storage::incidents::open_counts(db)?;
            let lag = search.lag(db, LAG_CAP).map_err(|e| StoreError::Other(format!("search index: {e}")))?;
            Ok::<_, StoreError>((queue, incidents, lag, search.size_bytes(), store.file_size()))
        })
        .await?;
    let l = &crate::metrics::get().levels;
    for (state, n) in
        [("due", queue.due), ("scheduled", queue.scheduled), ("leased", queue.leased), ("held", queue.held)]
    {
        l.queue_jobs.get_or_create(&[("state", state)]).set(gauge(n));
    }
    let waited = queue.oldest_due.map_or(0.0, |at| (now.millis() - at.millis()).max(0) as f64 / 1000.0);
    l.queue_oldest_waiting_seconds.set(waited);
    for (rule, n) in incidents {
        l.incidents_open.get_or_create(&[("rule", rule.as_str())]).set(gauge(n));
    }
    l.search_lag_deliveries.set(gauge(lag));
    l.search_index_bytes.set(gauge(index_bytes));
    l.store_bytes.set(gauge(store_bytes));
    Ok(())
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
