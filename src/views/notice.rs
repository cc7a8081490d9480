//! What the last action on a page did, carried in the query string of the redirect after it
//! (post/redirect/get) and shown as a banner at the top of the page it returns to.

use maud::{Markup, Render, html};
use serde::{Deserialize, Serialize};

use super::components::{Banner, Toast, Tone};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Notice {
    /// `replayed`, `replay_limited_per_delivery`, `replay_limited_per_operator`, `paused`, `resumed`,
    /// `bulk_counted`, `bulk_started`, `bulk_cancelled`, `demo_destination`, `acknowledged`, or the outcome of a
    /// handshake: `handshake_verified`, `handshake_repaired`, `handshake_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// The delivery or subscription it was about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Seconds until a limit allows another replay; deliveries a resume released; how a demo destination
    /// answers now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<String>,
}

const KEYS: [&str; 3] = ["notice", "target", "count"];

impl Notice {
    pub fn new(notice: &str, target: &str, count: Option<u64>) -> Self {
        Self { notice: Some(notice.to_owned()), target: Some(target.to_owned()), count: count.map(|c| c.to_string()) }
    }

    /// `page` (a path of this site, with or without a query) with this notice in place of any earlier one.
    pub fn on(&self, page: &str) -> String {
        let (path, query) = page.split_once('?').unwrap_or((page, ""));
        let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !KEYS.contains(&k.as_str()))
            .collect();
        if let Ok(mine) =
            serde_urlencoded::from_str::<Vec<(String, String)>>(&serde_urlencoded::to_string(self).unwrap_or_default())
        {
            pairs.extend(mine);
        }
        match serde_urlencoded::to_string(&pairs) {
            Ok(qs) if !qs.is_empty() => format!("{path}?{qs}"),
            _ => path.to_owned(),
        }
    }
}

impl Render for Notice {
    fn render(&self) -> Markup {
        let target = self.target.as_deref().unwrap_or("");
        let count = self.count.as_deref().unwrap_or("");
        let limited = |title: &str, why: String| {
            html! { (Banner { tone: Tone::Warning, title, body: html! { p { (why) } } }) }
        };
        match self.notice.as_deref() {
            Some("replayed") => html! {
                (Toast { title: "Replay queued", body: html! {
                    p { "A new attempt of " code { (target) } " is on its way; it shows among the delivery's attempts." }
                } })
            },
            Some("replay_limited_per_delivery") => limited(
                "Replay limit reached",
                format!("{target} was replayed less than 5 minutes ago. It can be replayed again in {count} s."),
            ),
            Some("replay_limited_per_operator") => limited(
                "Replay limit reached",
                format!(
                    "You have made 10 replays in the last hour, the most allowed. The next is possible in {count} s."
                ),
            ),
            Some("paused") => html! {
                (Toast { title: "Destination paused", body: html! {
                    p { "Deliveries for " (target) " are still received and stored, and wait until it is resumed." }
                } })
            },
            Some("resumed") => html! {
                (Toast { title: "Destination resumed", body: html! {
                    p { (count) " held deliver" @if count == "1" { "y" } @else { "ies" } " for " (target) " are being sent, oldest first." }
                } })
            },
            Some("bulk_counted") => html! {
                (Banner { tone: Tone::Info, title: &format!("{count} deliveries match"), body: html! {
                    p { "Nothing was replayed yet. Press Replay them to replay every one of them." }
                } })
            },
            Some("bulk_started") => html! {
                (Toast { title: "Bulk replay started", body: html! {
                    p { code { (target) } " replays " (count) " deliveries in the background; its progress shows below." }
                } })
            },
            Some("bulk_cancelled") => html! {
                (Toast { title: "Bulk replay cancelled", body: html! {
                    p { code { (target) } " stopped; what it replayed stays replayed." }
                } })
            },
            Some("erasure_counted") => html! {
                (Banner { tone: Tone::Warning, title: &format!("{count} deliveries match"), body: html! {
                    p { "Nothing was erased yet. Tick the confirmation and press Erase them to erase every one of their payloads." }
                } })
            },
            Some("erasure_started") => html! {
                (Toast { title: "Erasure started", body: html! {
                    p { code { (target) } " erases the payloads of " (count) " deliveries in the background; its progress shows below." }
                } })
            },
            Some("erasure_cancelled") => html! {
                (Toast { title: "Erasure cancelled", body: html! {
                    p { code { (target) } " stopped; what it erased stays erased." }
                } })
            },
            Some("acknowledged") => html! {
                (Toast { title: "Incident acknowledged", body: html! {
                    p { "It is yours now; the alert sinks were told. It resolves by itself once its rule stays clear." }
                } })
            },
            Some("handshake_verified") => html! {
                (Toast { title: "Handshake verified", body: html! {
                    p { "The provider has " (target) " registered as it should be." }
                } })
            },
            Some("handshake_repaired") => html! {
                (Toast { title: "Handshake repaired", body: html! {
                    p { "The provider's registration of " (target) " was missing or different and is fixed; the panel's handshakes say what changed." }
                } })
            },
            Some("handshake_failed") => limited(
                "Handshake failed",
                format!(
                    "The provider refused or did not answer for {target}; its panel shows the provider's own words."
                ),
            ),
            Some("demo_destination") => {
                let mode = crate::contract::demo::MockMode::parse(count).map_or(count, |m| m.label());
                html! {
                    (Toast { title: "Demo destination changed", body: html! {
                        p { "The demo's " code { (target) } " destination now answers " (mode) "." }
                    } })
                }
            }
            _ => html! {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_replaces_the_previous_one_and_keeps_the_filters() {
        let first = Notice::new("replayed", "dlv_1", None).on("/dashboard/webhooks?status=failed");
        assert_eq!(first, "/dashboard/webhooks?status=failed&notice=replayed&target=dlv_1");
        let second = Notice::new("replay_limited_per_delivery", "dlv_2", Some(240)).on(&first);
        assert_eq!(
            second,
            "/dashboard/webhooks?status=failed&notice=replay_limited_per_delivery&target=dlv_2&count=240"
        );
        assert_eq!(Notice::new("paused", "orders", None).on("/x"), "/x?notice=paused&target=orders");
    }
}
