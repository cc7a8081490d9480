//! Which deliveries to list, search or replay. [`DeliveryFilter`] is the filter as people give it (query
//! strings, the dashboard's form, a bulk replay kept to resume after a restart); [`DeliveryFilter::parse`]
//! is the one place it is read into the typed [`Filter`] storage applies.

use serde::{Deserialize, Serialize};

use super::{DeliveryStatus, Source, SubscriptionId, Timestamp};

/// The delivery filters as text. Absent (or blank) means any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryFilter {
    /// Payload search text (see `search`).
    pub q: Option<String>,
    pub source: Option<String>,
    pub topic: Option<String>,
    pub status: Option<String>,
    /// A subscription id.
    pub subscription: Option<String>,
    pub account: Option<String>,
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
}

/// The filter as storage applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub source: Option<Source>,
    pub topic: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub subscription: Option<SubscriptionId>,
    pub account: Option<String>,
    /// Received at or after this instant.
    pub from: Option<Timestamp>,
    /// Received before this instant.
    pub to: Option<Timestamp>,
}

impl DeliveryFilter {
    /// Blank fields (an untouched form control) become absent.
    pub fn normalized(mut self) -> Self {
        for f in self.fields_mut() {
            if f.as_deref().is_some_and(|v| v.trim().is_empty()) {
                *f = None;
            }
        }
        self
    }

    /// No field is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn fields_mut(&mut self) -> [&mut Option<String>; 8] {
        [
            &mut self.q,
            &mut self.source,
            &mut self.topic,
            &mut self.status,
            &mut self.subscription,
            &mut self.account,
            &mut self.from,
            &mut self.to,
        ]
    }

    /// The typed filter and the search text. A field that cannot be read is an error that names it and
    /// says what it expects.
    pub fn parse(&self) -> Result<(Filter, Option<String>), String> {
        let (from, to) = time_range(self.from.as_deref(), self.to.as_deref())?;
        let filter = Filter {
            source: self.source.as_deref().map(str::parse::<Source>).transpose()?,
            topic: self.topic.clone(),
            status: self.status.as_deref().map(str::parse::<DeliveryStatus>).transpose()?,
            subscription: self
                .subscription
                .as_deref()
                .map(|s| s.parse::<SubscriptionId>().map_err(|e| e.to_string()))
                .transpose()?,
            account: self.account.clone(),
            from,
            to,
        };
        let text = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(str::to_owned);
        Ok((filter, text))
    }
}

impl Filter {
    /// Whether the filter narrows the subscriptions, so the per-subscription index can drive a scan.
    pub fn by_subscription(&self) -> bool {
        self.source.is_some() || self.topic.is_some() || self.subscription.is_some() || self.account.is_some()
    }
}

/// `from` and `to` as RFC 3339 times: a time range of deliveries or audit entries, `from` inclusive, `to`
/// exclusive.
pub fn time_range(from: Option<&str>, to: Option<&str>) -> Result<(Option<Timestamp>, Option<Timestamp>), String> {
    let instant = |name: &str, raw: Option<&str>| {
        raw.map(|r| {
            Timestamp::parse_rfc3339(r)
                .ok_or_else(|| format!("`{name}` must be an RFC 3339 time like 2026-11-28T09:00:00Z, not `{r}`"))
        })
        .transpose()
    };
    let (from, to) = (instant("from", from)?, instant("to", to)?);
    // `from` at or after `to` is a range that holds nothing, as it reads: the range is made empty rather
    // than refused, since no schema can say "before the other parameter".
    match (from, to) {
        (Some(f), Some(t)) if f >= t => Ok((Some(f), Some(f))),
        range => Ok(range),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_is_read_field_by_field_and_a_bad_field_is_named() {
        let given = DeliveryFilter {
            q: Some("  jon ".into()),
            source: Some("shopify".into()),
            status: Some("failed".into()),
            from: Some("2026-11-28T09:00:00Z".into()),
            to: Some("2026-11-28T10:00:00Z".into()),
            ..DeliveryFilter::default()
        };
        let (filter, text) = given.parse().unwrap();
        assert_eq!(
            (filter.source, filter.status, text.as_deref()),
            (Some(Source::Shopify), Some(DeliveryStatus::Failed), Some("jon"))
        );
        assert!(filter.from < filter.to);
        let bad = |f: DeliveryFilter| f.parse().unwrap_err();
        assert!(bad(DeliveryFilter { from: Some("yesterday".into()), ..DeliveryFilter::default() }).contains("`from`"));
        let backwards = DeliveryFilter { from: given.to.clone(), to: given.from.clone(), ..DeliveryFilter::default() };
        let (empty, _) = backwards.parse().unwrap();
        assert_eq!((empty.from, empty.to), (filter.to, filter.to), "a range that holds nothing");
        assert!(!bad(DeliveryFilter { source: Some("mailchimp".into()), ..DeliveryFilter::default() }).is_empty());
        assert!(
            DeliveryFilter { q: Some(" ".into()), topic: Some("".into()), ..DeliveryFilter::default() }
                .normalized()
                .is_empty()
        );
    }
}
