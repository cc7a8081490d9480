use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::{AdminAuth, ViewerAuth};
use super::error::ApiError;
use super::types::{HealthOut, SubscriptionCreated, SubscriptionIn, SubscriptionOut};
use crate::control::SubscriptionSpec;
use crate::domain::Subscription;
use crate::domain::health::Health;
use crate::http::AppState;
use crate::loader;
use crate::secrets::SecretBytes;
use crate::storage::subscriptions;

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

fn out(state: &AppState, sub: Subscription) -> SubscriptionOut {
    subscription_out(state, sub, None)
}

pub(super) fn subscription_out(state: &AppState, sub: Subscription, health: Option<&Health>) -> SubscriptionOut {
    let reg = state.ingest.registry().snapshot();
    let secrets = reg.get(sub.id).map(|e| e.secrets.clone()).unwrap_or_default();
    let mut secrets = secrets;
    if sub.source == crate::domain::Source::Shopify {
        secrets.extend(reg.shopify_app.iter().cloned());
    }
    SubscriptionOut { health: health.map(HealthOut::from), ..SubscriptionOut::new(sub, &secrets, &state.public_url()) }
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
        let o = state.store.read(move |db| loader::overview(db, now)).await?;
        let subs = o.subscriptions.into_iter().map(|s| subscription_out(state, s.subscription, Some(&s.health)));
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
        let sub = match found {
            Some(sid) => state.store.read(move |db| subscriptions::get(db, sid)).await?,
            None => None,
        };
        let sub = sub.ok_or_else(|| ApiError::not_found(format!("no subscription `{}`", id.0)))?;
        Ok(GetSubscriptionResponse::Ok(Json(out(state, sub))))
    }

    /// Create a subscription (or adopt a discovered Shopify one). The secret is write-only.
    #[oai(path = "/v1/subscriptions", method = "post", operation_id = "createSubscription")]
    async fn create(
        &self,
        auth: AdminAuth,
        req: &poem::Request,
        Data(state): Data<&AppState>,
        body: Json<SubscriptionIn>,
    ) -> Result<CreateSubscriptionResponse, ApiError> {
        let b = body.0;
        let spec = SubscriptionSpec {
            source: Some(b.source.into()),
            topic: b.topic,
            account: b.account,
            name: b.name,
            destination_url: b.destination_url,
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
