use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::{AdminAuth, OperatorAuth, ViewerAuth};
use super::body::JsonIn;
use super::error::{ApiError, BodyError};
use crate::contract::{
    DestinationSecretOut, DestinationStateOut, RetentionIn, RotateSecretIn, SecretRotated, SubscriptionCreated,
    SubscriptionIn, SubscriptionOut, SubscriptionPatchIn,
};
use crate::control::{DestinationPatch, DestinationState, SubscriptionSpec};
use crate::domain::Subscription;
use crate::domain::audit::Actor;
use crate::http::AppState;
use crate::loader;
use crate::secrets::SecretBytes;

#[derive(Default)]
pub struct SubscriptionsApi;

#[derive(ApiResponse)]
enum ListSubscriptionsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<SubscriptionOut>>),
}

#[derive(ApiResponse)]
enum GetSubscriptionResponse {
    #[oai(status = 200)]
    Ok(Json<SubscriptionOut>),
}

#[derive(ApiResponse)]
enum CreateSubscriptionResponse {
    /// Created.
    #[oai(status = 201)]
    Created(Json<SubscriptionCreated>),
    /// A discovered subscription for the same shop and topic was adopted.
    #[oai(status = 200)]
    Adopted(Json<SubscriptionCreated>),
}

#[derive(ApiResponse)]
enum DestinationStateResponse {
    #[oai(status = 200)]
    Ok(Json<DestinationStateOut>),
}

#[derive(ApiResponse)]
enum DestinationSecretResponse {
    #[oai(status = 200)]
    Ok(Json<DestinationSecretOut>),
}

/// Pauses (`pause`) or resumes the destination of the subscription named by `id`.
pub(crate) async fn set_paused(
    state: &AppState,
    by: Actor,
    id: &str,
    pause: bool,
) -> Result<DestinationStateOut, ApiError> {
    let sub_id = resolve(state, id)?;
    let control = std::sync::Arc::clone(&state.control);
    let done = crate::task::blocking(move || control.set_paused_blocking(sub_id, pause, &by)).await?;
    Ok(state_out(state, done))
}

fn state_out(state: &AppState, done: DestinationState) -> DestinationStateOut {
    DestinationStateOut { subscription: out(state, done.subscription), released: done.released as u64 }
}

fn resolve(state: &AppState, id: &str) -> Result<crate::domain::SubscriptionId, ApiError> {
    state
        .ingest
        .registry()
        .snapshot()
        .by_name_or_id(id)
        .map(|e| e.sub.id)
        .ok_or_else(|| ApiError::not_found(format!("no subscription `{id}`")))
}

#[derive(ApiResponse)]
enum RotateSecretResponse {
    /// Rotated: the new secret verifies now, the replaced one until `previous_expires_at`.
    #[oai(status = 200)]
    Ok(Json<SecretRotated>),
}

/// Rotates the secret of the subscription named by `id` (id or name), for the API and the dashboard.
pub(crate) async fn rotate_secret(
    state: &AppState,
    by: crate::domain::audit::Actor,
    id: &str,
    input: RotateSecretIn,
) -> Result<SecretRotated, ApiError> {
    use subtle::ConstantTimeEq;
    if input.secret.is_empty() {
        return Err(ApiError::bad_request("`secret` is required: the new secret, typed twice"));
    }
    if !bool::from(input.secret.as_bytes().ct_eq(input.secret_confirmation.as_bytes())) {
        return Err(ApiError::bad_request(
            "`secret` and `secret_confirmation` differ: type the new secret twice, exactly; nothing was changed",
        ));
    }
    let hours = input.overlap_hours.unwrap_or(state.settings.rotation_overlap_hours);
    if !(1..=720).contains(&hours) {
        return Err(ApiError::bad_request(format!(
            "`overlap_hours` must be between 1 and 720 (Shopify can take an hour to switch), not {hours}"
        )));
    }
    let sub_id = resolve(state, id)?;
    let control = std::sync::Arc::clone(&state.control);
    let secret = SecretBytes::new(input.secret.into_bytes());
    let rotated = crate::task::blocking(move || {
        control.rotate_secret_blocking(sub_id, secret, i64::from(hours) * 3_600_000, &by)
    })
    .await?;
    // A Zoho channel must carry the new token before the old one's overlap ends: its handshake runs now.
    if crate::domain::handshake::Kind::of(&rotated.subscription) == Ok(crate::domain::handshake::Kind::ZohoChannel) {
        state.handshakes.due_now(rotated.subscription.id).await?;
    }
    let until = crate::contract::time(rotated.previous_expires_at);
    Ok(SecretRotated {
        reminder: crate::domain::subscription::rotation_reminder(rotated.subscription.source, &until),
        subscription: out_with(state, rotated.subscription, rotated.secrets),
        previous_expires_at: until,
    })
}

pub(super) fn out(state: &AppState, sub: Subscription) -> SubscriptionOut {
    let secrets = state.ingest.registry().snapshot().get(sub.id).map(|e| e.secrets.clone()).unwrap_or_default();
    out_with(state, sub, secrets)
}

/// The same with the subscription's own secrets given (a rotation's answer shows the secrets it left),
/// and the Shopify app's added for a Shopify subscription.
fn out_with(
    state: &AppState,
    sub: Subscription,
    mut secrets: Vec<crate::ingest::registry::HeldSecret>,
) -> SubscriptionOut {
    if sub.source == crate::domain::Source::Shopify {
        secrets.extend(state.ingest.registry().snapshot().shopify_app.iter().cloned());
    }
    SubscriptionOut::new(sub, &secrets, &state.public_url())
}

/// A subscription with its health and handshakes, as the read model has them.
pub(super) fn subscription_out(state: &AppState, s: &loader::SubscriptionHealth) -> SubscriptionOut {
    out(state, s.subscription.clone()).with(s)
}

#[OpenApi(tag = "ApiTags::Subscriptions")]
impl SubscriptionsApi {
    /// Every subscription, oldest first, with its health.
    #[oai(path = "/v1/subscriptions", method = "get", operation_id = "listSubscriptions")]
    async fn list(
        &self,
        _auth: ViewerAuth,
        Data(state): Data<&AppState>,
    ) -> Result<ListSubscriptionsResponse, ApiError> {
        let now = state.clock.now();
        let rules = std::sync::Arc::clone(&state.settings.alert_rules);
        let o = state.store.read(move |db| loader::overview(db, now, &rules)).await?;
        let subs = o.subscriptions.iter().map(|s| subscription_out(state, s));
        Ok(ListSubscriptionsResponse::Ok(Json(subs.collect())))
    }

    /// One subscription by id or name.
    #[oai(path = "/v1/subscriptions/:id", method = "get", operation_id = "getSubscription")]
    async fn get(
        &self,
        _auth: ViewerAuth,
        Data(state): Data<&AppState>,
        id: Path<String>,
    ) -> Result<GetSubscriptionResponse, ApiError> {
        let reg = state.ingest.registry().snapshot();
        let found = reg.by_name_or_id(&id.0).map(|e| e.sub.id);
        let now = state.clock.now();
        let sub = match found {
            Some(sid) => {
                let rules = std::sync::Arc::clone(&state.settings.alert_rules);
                state.store.read(move |db| loader::subscription(db, sid, now, &rules)).await?
            }
            None => None,
        };
        let s = sub.ok_or_else(|| ApiError::not_found(format!("no subscription `{}`", id.0)))?;
        Ok(GetSubscriptionResponse::Ok(Json(subscription_out(state, &s))))
    }

    /// Change where and how a subscription's deliveries are forwarded: its destination URL (`null` keeps
    /// them in `store`), timeout, concurrency and extra headers. Audited; subscriptions declared in the
    /// configuration file are changed there.
    #[oai(path = "/v1/subscriptions/:id", method = "patch", operation_id = "updateSubscription")]
    async fn update(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        id: Path<String>,
        body: JsonIn<SubscriptionPatchIn>,
    ) -> Result<DestinationStateResponse, BodyError> {
        let by = crate::http::access::actor(&auth.0, req);
        let b = body.0;
        let patch = DestinationPatch {
            url: b.destination_url.into(),
            timeout_seconds: b.destination_timeout_seconds.into(),
            concurrency: b.destination_concurrency.into(),
            headers: Option::<Option<_>>::from(b.destination_headers)
                .map(|h| h.unwrap_or_default().into_iter().collect()),
        };
        let sub_id = resolve(state, &id.0)?;
        let control = std::sync::Arc::clone(&state.control);
        let done = crate::task::blocking(move || control.change_destination_blocking(sub_id, patch, &by)).await?;
        Ok(DestinationStateResponse::Ok(Json(state_out(state, done))))
    }

    /// Replace a subscription's secret. The replaced secret stays accepted for the overlap, then is dropped;
    /// update the provider's side before then (the answer's `reminder` says where).
    #[oai(path = "/v1/subscriptions/:id/secret/rotate", method = "post", operation_id = "rotateSubscriptionSecret")]
    async fn rotate(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        id: Path<String>,
        body: JsonIn<RotateSecretIn>,
    ) -> Result<RotateSecretResponse, BodyError> {
        let by = crate::http::access::actor(&auth.0, req);
        Ok(RotateSecretResponse::Ok(Json(rotate_secret(state, by, &id.0, body.0).await?)))
    }

    /// Keep this subscription's deliveries `days` (1 to 30) instead of `retention.days`, or `null` to go back
    /// to it. Audited; the next retention sweep applies it.
    #[oai(path = "/v1/subscriptions/:id/retention", method = "put", operation_id = "setSubscriptionRetention")]
    async fn set_retention(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        id: Path<String>,
        body: JsonIn<RetentionIn>,
    ) -> Result<GetSubscriptionResponse, BodyError> {
        let by = crate::http::access::actor(&auth.0, req);
        let sub_id = resolve(state, &id.0)?;
        let control = std::sync::Arc::clone(&state.control);
        let days = match body.0.days {
            poem_openapi::types::MaybeUndefined::Undefined => {
                return Err(BodyError::from(ApiError::bad_request(
                    "`days` is required: 1 and 30 days, or `null` for retention.days; nothing was changed",
                )));
            }
            d => d.take(),
        };
        let done = crate::task::blocking(move || control.set_retention_blocking(sub_id, days, &by)).await?;
        Ok(GetSubscriptionResponse::Ok(Json(out(state, done))))
    }

    /// Set where this subscription's destination tells its version: the answer's header (`X-Service-Version`
    /// by default), a version URL to poll, and the service name deploys are announced under (the destination
    /// URL's host by default). Each absent field goes back to its default. Audited.
    #[oai(path = "/v1/subscriptions/:id/versions", method = "put", operation_id = "setSubscriptionVersions")]
    async fn set_versions(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        id: Path<String>,
        body: JsonIn<crate::contract::VersionWatchIn>,
    ) -> Result<GetSubscriptionResponse, BodyError> {
        let by = crate::http::access::actor(&auth.0, req);
        let sub_id = resolve(state, &id.0)?;
        let control = std::sync::Arc::clone(&state.control);
        let watch = body.0.into();
        let done = crate::task::blocking(move || control.set_versions_blocking(sub_id, watch, &by)).await?;
        if done.versions.url.is_some() {
            // A new version URL is asked at once rather than at the next poll.
            let deploys = std::sync::Arc::clone(&state.deploys);
            tokio::spawn(async move {
                if let Err(e) = deploys.poll_once().await {
                    tracing::warn!(error = %e, "asking the version URLs failed; the next poll tries again");
                }
            });
        }
        Ok(GetSubscriptionResponse::Ok(Json(out(state, done))))
    }

    /// Pause the subscription's destination: deliveries keep being received and stored, and are held until
    /// resume. A destination that answers 410 Gone is paused this way by Hookplane itself.
    #[oai(path = "/v1/subscriptions/:id/pause", method = "post", operation_id = "pauseDestination")]
    async fn pause(
        &self,
        auth: OperatorAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        id: Path<String>,
    ) -> Result<DestinationStateResponse, ApiError> {
        let by = crate::http::access::actor(&auth.0, req);
        Ok(DestinationStateResponse::Ok(Json(set_paused(state, by, &id.0, true).await?)))
    }

    /// Resume a paused destination: the deliveries held meanwhile are sent, oldest first.
    #[oai(path = "/v1/subscriptions/:id/resume", method = "post", operation_id = "resumeDestination")]
    async fn resume(
        &self,
        auth: OperatorAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        id: Path<String>,
    ) -> Result<DestinationStateResponse, ApiError> {
        let by = crate::http::access::actor(&auth.0, req);
        Ok(DestinationStateResponse::Ok(Json(set_paused(state, by, &id.0, false).await?)))
    }

    /// The secret Hookplane signs what it forwards to this subscription's destination with, for the
    /// receiving service to verify (Standard Webhooks). Derived from the master key.
    #[oai(path = "/v1/subscriptions/:id/destination-secret", method = "get", operation_id = "getDestinationSecret")]
    async fn destination_secret(
        &self,
        _auth: AdminAuth,
        Data(state): Data<&AppState>,
        id: Path<String>,
    ) -> Result<DestinationSecretResponse, ApiError> {
        let sub_id = resolve(state, &id.0)?;
        Ok(DestinationSecretResponse::Ok(Json(DestinationSecretOut {
            secret: state.control.destination_secret(sub_id),
        })))
    }

    /// Create a subscription (or adopt a discovered Shopify one). The secret is write-only.
    #[oai(path = "/v1/subscriptions", method = "post", operation_id = "createSubscription")]
    async fn create(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        body: JsonIn<SubscriptionIn>,
    ) -> Result<CreateSubscriptionResponse, BodyError> {
        let b = body.0;
        let spec = SubscriptionSpec {
            source: Some(b.source.into()),
            topic: b.topic,
            account: b.account,
            name: b.name,
            destination_url: b.destination_url,
            destination_timeout_seconds: b.destination_timeout_seconds,
            destination_concurrency: b.destination_concurrency,
            destination_headers: b.destination_headers.unwrap_or_default().into_iter().collect(),
            secret: b.secret.map(|s| SecretBytes::new(s.into_bytes())),
            channel_id: b.channel_id,
            auth: b.auth,
            token_header: b.token_header,
            dedupe_header: b.dedupe_header,
        };
        let created = state.control.create(spec, crate::http::access::actor(&auth.0, req)).await?;
        let body = SubscriptionCreated {
            subscription: out(state, created.subscription),
            adopted: created.adopted,
            generated_secret: created.generated_secret,
        };
        Ok(if created.adopted {
            CreateSubscriptionResponse::Adopted(Json(body))
        } else {
            CreateSubscriptionResponse::Created(Json(body))
        })
    }
}
