//! The demo's processing service as the dashboard reaches it: its destinations, and how each answers. Only
//! `serve --demo` provides one; the page shows its controls only then.

/// How one destination of the demo's processing service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MockMode {
    /// 200, after 40 to 300 ms.
    Healthy,
    /// 503 at once.
    Failing,
    /// No answer before any destination timeout runs out.
    Slow,
    /// 410, which makes Hookplane pause the destination, as it would for a processing service that removed
    /// its endpoint.
    Gone,
}

impl MockMode {
    pub const ALL: [MockMode; 4] = [MockMode::Healthy, MockMode::Failing, MockMode::Slow, MockMode::Gone];

    pub const fn as_str(self) -> &'static str {
        match self {
            MockMode::Healthy => "healthy",
            MockMode::Failing => "failing",
            MockMode::Slow => "slow",
            MockMode::Gone => "gone",
        }
    }

    /// What an operator reads in the menu and in the outcome.
    pub const fn label(self) -> &'static str {
        match self {
            MockMode::Healthy => "Healthy (200)",
            MockMode::Failing => "Failing (503)",
            MockMode::Slow => "Slow (times out)",
            MockMode::Gone => "Gone (410)",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
            format!("`{s}` is not a way the demo destination can answer (expected {})", known.join(", "))
        })
    }
}

/// One destination of the demo's processing service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockDestination {
    pub name: String,
    /// What the demo's subscriptions forward to: they use it when their `destination_url` is this.
    pub url: String,
    pub mode: MockMode,
}

/// The demo's processing service, as the dashboard flips its destinations.
pub trait MockDestinations: Send + Sync {
    /// Every destination, by name.
    fn list(&self) -> Vec<MockDestination>;
    /// Makes `name` answer as `mode`; the mode it had, or `None` when there is no such destination.
    fn set(&self, name: &str, mode: MockMode) -> Option<MockMode>;
}
