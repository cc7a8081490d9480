//! Settings: what `GET /api/v1/settings` and the settings page show, and the retention an admin sets there.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::{AdminAuth, ViewerAuth};
use super::body::JsonIn;
use super::error::{ApiError, BodyError};
use crate::contract::{
    AlertSinkOut, RetentionChangeIn, RetentionOverrideOut, RetentionSettingsOut, SecretOut, SettingsOut,
};
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::retention;
use crate::http::AppState;
use crate::http::problem::{Kind, Problem};

#[derive(Default)]
pub struct SettingsApi;

#[derive(ApiResponse)]
pub(crate) enum SettingsResponse {
    #[oai(status = 200)]
    Ok(Json<SettingsOut>),
}

/// Everything the settings page shows.
pub(crate) async fn settings(state: &AppState) -> Result<SettingsOut, ApiError> {
    let days = state.retention.days().await?;
    let set_in = state.retention.pinned_by().map(str::to_owned);
    let stored = state.store.read(crate::storage::settings::retention_days).await?;
    let source = match (&set_in, stored) {
        (Some(_), _) => "configuration",
        (None, Some(_)) => "dashboard",
        (None, None) => "default",
    };
    let now = state.clock.now();
    let rules = std::sync::Arc::clone(&state.settings.alert_rules);
    let overview = state.store.read(move |db| crate::loader::overview(db, now, &rules)).await?;
    // What the toggle changes: subscriptions with their own retention keep it.
    let bytes_per_day = overview
        .subscriptions
        .iter()
        .filter(|s| s.subscription.retention_days.is_none())
        .map(|s| s.health.totals_24h.bytes)
        .sum();
    let overrides = overview
        .subscriptions
        .iter()
        .filter_map(|s| {
            let sub = &s.subscription;
            sub.retention_days.map(|days| RetentionOverrideOut {
                subscription_id: sub.id.to_string(),
                name: sub.name.clone(),
                days,
            })
        })
        .collect();
    let grace = state.settings.alert_rules.drift_grace_ms;
    let destinations = state
        .store
        .read(move |db| crate::loader::destination_versions(db, now, grace))
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let credentials =
        state.handshakes.credentials().await?.into_iter().map(super::handshakes::credential_out).collect();
    let registry = state.ingest.registry().snapshot();
    Ok(SettingsOut {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        git_sha: env!("BUILD_GIT_SHA").to_owned(),
        retention: RetentionSettingsOut { days, source: source.to_owned(), set_in, bytes_per_day, overrides },
        shopify_app_secrets: registry.shopify_app.iter().map(SecretOut::from).collect(),
        credentials,
        alert_sinks: state
            .settings
            .alert_sinks
            .iter()
            .map(|(kind, target)| AlertSinkOut { kind: kind.clone(), target: target.clone() })
            .collect(),
        destinations,
        drift_grace_minutes: state.deploys.settings().grace_minutes,
    })
}

/// Sets the retention of subscriptions without their own, as `by`; refused when the configuration sets it
/// or without the confirmation.
pub(crate) async fn set_retention(
    state: &AppState,
    by: &Actor,
    change: RetentionChangeIn,
) -> Result<SettingsOut, ApiError> {
    if let Some(set_in) = state.retention.pinned_by() {
        return Err(Problem::new(Kind::Conflict, format!("the retention is set by {set_in}: change it there")).into());
    }
    retention::check_days(change.days).map_err(ApiError::bad_request)?;
    if !change.confirm {
        return Err(ApiError::bad_request(
            "`confirm` must be true: stored payloads hold customers' personal data, and a longer retention keeps \
             it longer and costs disk; nothing was changed",
        ));
    }
    if state.retention.days().await? == change.days {
        return settings(state).await;
    }
    let (now, days, default) = (state.clock.now(), change.days, state.retention.configured_days());
    let by = by.clone();
    state
        .store
        .read(move |db| {
            crate::storage::settings::set_retention_days(db, days, |before| {
                let before = before.unwrap_or(default);
                by.entry(now, AuditAction::SettingsChanged).target("retention.days").change(Change::changed(
                    "retention_days",
                    before.to_string(),
                    days.to_string(),
                ))
            })
        })
        .await?;
    settings(state).await
}

#[OpenApi(tag = "ApiTags::Settings")]
impl SettingsApi {
    /// Retention and its overrides, the credentials and provider secrets by fingerprint, the alert sinks,
    /// and the version.
    #[oai(path = "/v1/settings", method = "get", operation_id = "getSettings")]
    async fn get(&self, _auth: ViewerAuth, Data(state): Data<&AppState>) -> Result<SettingsResponse, ApiError> {
        Ok(SettingsResponse::Ok(Json(settings(state).await?)))
    }

    /// Keep deliveries of subscriptions without their own retention this many days (1 to 30). Needs
    /// `confirm: true`; audited with before and after; 409 when the configuration sets it.
    #[oai(path = "/v1/settings/retention", method = "put", operation_id = "setRetention")]
    async fn set_retention(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        body: JsonIn<RetentionChangeIn>,
    ) -> Result<SettingsResponse, BodyError> {
        let by = crate::http::access::actor(&auth.0, req);
        Ok(SettingsResponse::Ok(Json(set_retention(state, &by, body.0).await?)))
    }
}
