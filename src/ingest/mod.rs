//! The path of one webhook up to its acknowledgement: identify the subscription, verify, build the
//! delivery, and hand it to the group-commit writer. Rejections are counted and sampled on the way.

mod batch;
pub mod registry;
pub mod writer;

use std::sync::Arc;

use self::registry::{Entry, HeldSecret, Registry, SharedRegistry};
use self::writer::{Pending, Stored, Target, WriteError, WriterHandle, bind};
use crate::connectors::zoho::SignatureScheme;
use crate::connectors::{Headers, Rejection, STORED_HEADER_DENYLIST, header_value, shopify, standard, zoho};
use crate::domain::Payload;
use crate::domain::delivery::INITIATED_BY_PROVIDER;
use crate::domain::ids::RejectionId;
use crate::domain::job::PRELOAD_BODY_MAX;
use crate::domain::subscription::ZohoAuth;
use crate::domain::{Clock, Delivery, DeliveryId, DeliveryStatus, RejectCause, Source, SubscriptionId, Timestamp};
use crate::secrets::sha256_hex;
use crate::storage::deliveries::NewDelivery;
use crate::storage::records::RejectionSample;
use crate::storage::{StoreError, payload};

/// What the HTTP layer knows of a request besides its headers and body.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub path: String,
    pub query: String,
    pub remote_addr: Option<String>,
    pub user_agent: Option<String>,
    pub content_length: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Rejected(Rejection),
    /// Verified, but not stored: the provider must retry.
    #[error("{0}")]
    Unavailable(String),
}

impl From<WriteError> for IngestError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::SubscriptionGone(id) => IngestError::Rejected(Rejection::new(
                RejectCause::UnknownSubscription,
                format!("subscription {id} was removed while the request was in flight"),
            )),
            other => IngestError::Unavailable(other.to_string()),
        }
    }
}

/// Which ingest endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `POST /shopify/webhook`
    Shopify,
    /// `POST /zoho/incoming`: CRM notification channels, found by the channel id in the body.
    ZohoChannel,
    /// `POST /zoho/incoming/{subscription}`
    Zoho(&'a str),
    /// `POST /ingest/{subscription}`: Standard Webhooks.
    Standard(&'a str),
}

/// How ingest reads and keeps requests; built from `[ingest]`, `[shopify]`, `[standard]` and `[zoho]`.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// zstd level of stored payloads.
    pub compression_level: i32,
    /// Verified Shopify traffic for an unregistered shop and topic is kept under a `discovered` subscription.
    pub discover: bool,
    /// How far a Standard Webhooks timestamp may be from now.
    pub tolerance_secs: i64,
    /// The header a Zoho workflow webhook's shared token comes in, unless its subscription names another.
    pub zoho_token_header: String,
    pub zoho_signature: SignatureScheme,
}

/// The ingest service shared by the ingest endpoints.
pub struct Ingest {
    writer: WriterHandle,
    registry: Arc<SharedRegistry>,
    clock: Arc<dyn Clock>,
    options: IngestOptions,
}

/// What every request needs once: the time it arrived, the registry as it was then, the body's digest.
struct Context {
    now: Timestamp,
    registry: Arc<Registry>,
    body_sha256: String,
}

/// What was learned about a request before it was refused, for its rejection sample.
#[derive(Default)]
struct Seen {
    subscription: Option<SubscriptionId>,
    topic: Option<String>,
}

/// The verified request, ready to become a delivery.
/// A replay's second look at a provider signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    Verified,
    /// Not checked, and why.
    Skipped(&'static str),
    Failed(String),
}

struct Verified<'a> {
    target: Target,
    source: Source,
    topic: String,
    account: String,
    provider_delivery_id: Option<String>,
    dedupe_key: Option<String>,
    event_id: Option<String>,
    verified_with: &'static str,
    verified_fingerprint: String,
    headers: &'a dyn Headers,
}

impl Ingest {
    pub fn new(
        options: IngestOptions,
        writer: WriterHandle,
        registry: Arc<SharedRegistry>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { writer, registry, clock, options }
    }

    pub fn registry(&self) -> &Arc<SharedRegistry> {
        &self.registry
    }

    /// Verifies and stores one request to `endpoint`.
    pub async fn receive(
        &self,
        endpoint: Endpoint<'_>,
        meta: &RequestMeta,
        h: &dyn Headers,
        body: &[u8],
    ) -> Result<Stored, IngestError> {
        match endpoint {
            Endpoint::Shopify => self.shopify(meta, h, body).await,
            Endpoint::ZohoChannel => self.zoho(meta, None, h, body).await,
            Endpoint::Zoho(name) => self.zoho(meta, Some(name), h, body).await,
            Endpoint::Standard(name) => self.standard(meta, name, h, body).await,
        }
    }

    /// `POST /shopify/webhook`.
    async fn shopify(&self, meta: &RequestMeta, h: &dyn Headers, body: &[u8]) -> Result<Stored, IngestError> {
        let cx = self.context(body);
        let mut seen = Seen::default();
        let outcome = self.verify_shopify(&cx, h, body, &mut seen);
        self.finish(meta, &cx, outcome, body, seen).await
    }

    /// `POST /zoho/incoming` (CRM notification channels) and `POST /zoho/incoming/{subscription}`.
    async fn zoho(
        &self,
        meta: &RequestMeta,
        subscription: Option<&str>,
        h: &dyn Headers,
        body: &[u8],
    ) -> Result<Stored, IngestError> {
        let cx = self.context(body);
        let mut seen = Seen::default();
        let outcome = self.verify_zoho(&cx, meta, subscription, h, body, &mut seen);
        self.finish(meta, &cx, outcome, body, seen).await
    }

    /// `POST /ingest/{subscription}`: Standard Webhooks.
    async fn standard(
        &self,
        meta: &RequestMeta,
        subscription: &str,
        h: &dyn Headers,
        body: &[u8],
    ) -> Result<Stored, IngestError> {
        let cx = self.context(body);
        let mut seen = Seen::default();
        let outcome = self.verify_standard(&cx, subscription, h, body, &mut seen);
        self.finish(meta, &cx, outcome, body, seen).await
    }

    fn context(&self, body: &[u8]) -> Context {
        Context { now: self.clock.now(), registry: self.registry.snapshot(), body_sha256: sha256_hex(body) }
    }

    fn verify_shopify<'h>(
        &self,
        cx: &Context,
        h: &'h dyn Headers,
        body: &[u8],
        seen: &mut Seen,
    ) -> Result<Verified<'h>, Rejection> {
        check_body(body)?;
        let req = shopify::read_request(h)?;
        seen.topic = Some(req.topic.clone());
        let entry = cx.registry.shopify(&req.shop_domain, &req.topic);
        seen.subscription = entry.map(|e| e.sub.id);
        let mut held: Vec<&HeldSecret> = entry.map(|e| live(&e.secrets, cx.now)).unwrap_or_default();
        held.extend(live(&cx.registry.shopify_app, cx.now));
        let keys: Vec<&[u8]> = held.iter().map(|s| s.key.expose()).collect();
        let matched = req.verify(body, &keys)?;
        let target = match entry {
            Some(e) => Target::Known(e.sub.id),
            None if self.options.discover => {
                Target::DiscoverShopify { account: req.shop_domain.clone(), topic: req.topic.clone() }
            }
            None => {
                return Err(Rejection::new(
                    RejectCause::UnknownSubscription,
                    format!(
                        "no subscription for shop `{}` and topic `{}`, and discovery of unknown topics is off",
                        req.shop_domain, req.topic
                    ),
                ));
            }
        };
        Ok(Verified {
            target,
            source: Source::Shopify,
            dedupe_key: Some(format!("shopify/{}", req.delivery_id)),
            provider_delivery_id: Some(req.delivery_id),
            topic: req.topic,
            account: req.shop_domain,
            event_id: req.event_id,
            verified_with: held[matched].label,
            verified_fingerprint: held[matched].fingerprint.clone(),
            headers: h,
        })
    }

    fn verify_zoho<'h>(
        &self,
        cx: &Context,
        meta: &RequestMeta,
        subscription: Option<&str>,
        h: &'h dyn Headers,
        body: &[u8],
        seen: &mut Seen,
    ) -> Result<Verified<'h>, Rejection> {
        check_body(body)?;
        let entry = match subscription {
            Some(name) => find(&cx.registry, name, Source::Zoho)?,
            None => {
                let n = zoho::read_channel_notification(body)?;
                cx.registry.zoho_channel(&n.channel_id).ok_or_else(|| {
                    Rejection::new(
                        RejectCause::UnknownSubscription,
                        format!("no subscription for Zoho channel `{}`", n.channel_id),
                    )
                })?
            }
        };
        seen.subscription = Some(entry.sub.id);
        let held = live(&entry.secrets, cx.now);
        let keys: Vec<&[u8]> = held.iter().map(|s| s.key.expose()).collect();
        let (matched, provider_id) = match &entry.sub.zoho {
            Some(ZohoAuth::Channel { channel_id }) => {
                let n = zoho::read_channel_notification(body)?;
                if &n.channel_id != channel_id {
                    return Err(Rejection::new(
                        RejectCause::UnknownSubscription,
                        format!("the body names channel `{}`, not this subscription's", n.channel_id),
                    ));
                }
                // Notifications carry no delivery id, but each holds Zoho's `server_time`, so equal bodies
                // on one channel are the same notification sent again.
                (n.verify(&keys)?, Some(cx.body_sha256.clone()))
            }
            Some(ZohoAuth::Token { header }) => (zoho::verify_token(h, header, &keys)?, None),
            Some(ZohoAuth::Signature) => (self.options.zoho_signature.verify(h, &meta.query, body, &keys)?, None),
            None => (zoho::verify_token(h, &self.options.zoho_token_header, &keys)?, None),
        };
        let provider_id = match (provider_id, &entry.sub.dedupe_header) {
            (Some(d), _) => Some(d),
            (None, Some(name)) => header_value(h, name)?,
            (None, None) => None,
        };
        Ok(Verified {
            target: Target::Known(entry.sub.id),
            source: Source::Zoho,
            topic: entry.sub.topic.clone(),
            account: entry.sub.account.clone(),
            dedupe_key: provider_id.as_ref().map(|id| format!("{}/{id}", entry.sub.id)),
            provider_delivery_id: provider_id,
            event_id: None,
            verified_with: held[matched].label,
            verified_fingerprint: held[matched].fingerprint.clone(),
            headers: h,
        })
    }

    fn verify_standard<'h>(
        &self,
        cx: &Context,
        subscription: &str,
        h: &'h dyn Headers,
        body: &[u8],
        seen: &mut Seen,
    ) -> Result<Verified<'h>, Rejection> {
        check_body(body)?;
        let entry = find(&cx.registry, subscription, Source::Standard)?;
        seen.subscription = Some(entry.sub.id);
        let req = standard::read_request(h)?;
        let held = live(&entry.secrets, cx.now);
        let keys: Vec<&[u8]> = held.iter().map(|s| s.key.expose()).collect();
        let matched = req.verify(body, &keys, cx.now, self.options.tolerance_secs)?;
        Ok(Verified {
            target: Target::Known(entry.sub.id),
            source: Source::Standard,
            topic: entry.sub.topic.clone(),
            account: entry.sub.account.clone(),
            dedupe_key: Some(format!("{}/{}", entry.sub.id, req.id)),
            provider_delivery_id: Some(req.id),
            event_id: None,
            verified_with: held[matched].label,
            verified_fingerprint: held[matched].fingerprint.clone(),
            headers: h,
        })
    }

    /// Checks a stored delivery's provider signature again, for a replay, when the secret that verified it
    /// at ingest is still held (found by its fingerprint, so a rotation in between is recognised).
    pub fn recheck(&self, d: &Delivery, p: &Payload) -> Recheck {
        let reg = self.registry.snapshot();
        let mut held: Vec<&HeldSecret> =
            reg.get(d.subscription_id).map(|e| e.secrets.iter().collect()).unwrap_or_default();
        if d.source == Source::Shopify {
            held.extend(reg.shopify_app.iter());
        }
        let signer = d.verified_fingerprint.as_deref().and_then(|f| held.iter().find(|s| s.fingerprint == f));
        let Some(signer) = signer else {
            return Recheck::Skipped("the secret that verified it is no longer held; its body digest was checked");
        };
        let keys = [signer.key.expose()];
        let headers: Vec<(&str, &str)> = p.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let h: &[(&str, &str)] = &headers;
        let checked = match d.source {
            Source::Shopify => shopify::read_request(h).and_then(|r| r.verify(&p.body, &keys)),
            // The tolerance guards against replayed requests at ingest; here the time is the stored one.
            Source::Standard => standard::read_request(h).and_then(|r| {
                r.verify(&p.body, &keys, Timestamp::from_millis(r.timestamp * 1000), self.options.tolerance_secs)
            }),
            Source::Zoho => match reg.get(d.subscription_id).and_then(|e| e.sub.zoho.clone()) {
                Some(ZohoAuth::Channel { .. }) => {
                    zoho::read_channel_notification(&p.body).and_then(|n| n.verify(&keys))
                }
                _ => return Recheck::Skipped("Zoho's token or signature travels in what Hookplane does not store"),
            },
        };
        match checked {
            Ok(_) => Recheck::Verified,
            Err(r) => Recheck::Failed(r.detail),
        }
    }

    /// Records a request refused before any connector saw it (a body over the limit).
    pub fn reject_early(&self, meta: &RequestMeta, rejection: &Rejection) {
        self.record_rejection(meta, rejection, Seen::default(), self.clock.now());
    }

    async fn finish(
        &self,
        meta: &RequestMeta,
        cx: &Context,
        outcome: Result<Verified<'_>, Rejection>,
        body: &[u8],
        seen: Seen,
    ) -> Result<Stored, IngestError> {
        let now = cx.now;
        let v = match outcome {
            Ok(v) => v,
            Err(rejection) => {
                self.record_rejection(meta, &rejection, seen, now);
                return Err(IngestError::Rejected(rejection));
            }
        };
        let headers: Vec<(String, String)> =
            v.headers.entries().into_iter().filter(|(k, _)| !STORED_HEADER_DENYLIST.contains(&k.as_str())).collect();
        let mut delivery = Delivery {
            id: DeliveryId::new(now),
            // Bound below, or by the writer once a discovered subscription exists.
            subscription_id: SubscriptionId::from_u128(0),
            source: v.source,
            topic: v.topic,
            provider_delivery_id: v.provider_delivery_id,
            dedupe_key: v.dedupe_key,
            event_id: v.event_id,
            account: v.account,
            status: DeliveryStatus::Queued,
            attempt_count: 0,
            received_at: now,
            last_attempted_at: None,
            response_code: None,
            latency_ms: None,
            size_bytes: body.len() as u64,
            content_type: v.headers.get("content-type").map(|c| String::from_utf8_lossy(c).into_owned()),
            body_sha256: cx.body_sha256.clone(),
            error_message: None,
            initiated_by: INITIATED_BY_PROVIDER.to_owned(),
            verified_with: v.verified_with.to_owned(),
            verified_fingerprint: Some(v.verified_fingerprint),
            erased: None,
        };
        let job = match &v.target {
            Target::Known(id) => cx.registry.get(*id).and_then(|e| bind(&mut delivery, &e.sub)),
            Target::DiscoverShopify { .. } => None,
        };
        let stored_payload = payload::encode(&headers, body, self.options.compression_level);
        let new = match NewDelivery::new(delivery, stored_payload) {
            Ok(new) => new,
            Err(e) => return Err(IngestError::Unavailable(e.to_string())),
        };
        // A delivery to forward travels on with its payload, so its first attempt need not read it back.
        let payload =
            (job.is_some() && body.len() <= PRELOAD_BODY_MAX).then(|| Payload { headers, body: body.to_vec() });
        match self.writer.deliver(Pending { target: v.target, new, job, payload }).await {
            Ok(stored) => Ok(stored),
            Err(e) => {
                let err = IngestError::from(e);
                let cause = match &err {
                    IngestError::Rejected(r) => r.clone(),
                    IngestError::Unavailable(why) => Rejection::new(RejectCause::StorageUnavailable, why.clone()),
                };
                self.record_rejection(meta, &cause, seen, now);
                Err(err)
            }
        }
    }

    fn record_rejection(&self, meta: &RequestMeta, r: &Rejection, seen: Seen, now: Timestamp) {
        tracing::info!(path = %meta.path, cause = %r.cause, detail = %r.detail, remote = ?meta.remote_addr, "request rejected");
        self.writer.reject(RejectionSample {
            id: RejectionId::new(now),
            at: now,
            cause: r.cause,
            detail: r.detail.clone(),
            path: meta.path.clone(),
            subscription_id: seen.subscription,
            topic: seen.topic,
            remote_addr: meta.remote_addr.clone(),
            user_agent: meta.user_agent.clone(),
            content_length: meta.content_length,
        });
    }
}

fn check_body(body: &[u8]) -> Result<(), Rejection> {
    if body.is_empty() {
        return Err(Rejection::new(RejectCause::EmptyBody, "the request body is empty"));
    }
    Ok(())
}

fn live(secrets: &[HeldSecret], now: Timestamp) -> Vec<&HeldSecret> {
    secrets.iter().filter(|s| s.live_at(now)).collect()
}

fn find<'r>(reg: &'r Registry, name: &str, source: Source) -> Result<&'r Arc<Entry>, Rejection> {
    match reg.by_name_or_id(name) {
        Some(e) if e.sub.source == source => Ok(e),
        Some(e) => Err(Rejection::new(
            RejectCause::UnknownSubscription,
            format!("subscription `{name}` is a {} subscription, not {}", e.sub.source, source),
        )),
        None => Err(Rejection::new(RejectCause::UnknownSubscription, format!("no subscription named `{name}`"))),
    }
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        IngestError::Unavailable(e.to_string())
    }
}
