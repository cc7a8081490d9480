//! Sign-in throttling: after too many failed sign-ins for one account, or from one client address, within
//! a window, further attempts are refused until the window has passed. Kept in memory: a restart forgets
//! the counts, which costs an attacker a restart they cannot cause.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::domain::Timestamp;

/// Above this many tracked keys, windows that have passed are dropped, so a spray of names or addresses
/// cannot grow memory without bound.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_account: u32,
    pub per_address: u32,
    pub window_ms: i64,
}

/// Why a sign-in is refused before its password is checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Throttled {
    #[error("too many failed sign-ins for this account; try again in {}", minutes(retry_after_ms))]
    Account { retry_after_ms: i64 },
    #[error("too many failed sign-ins from your address; try again in {}", minutes(retry_after_ms))]
    Address { retry_after_ms: i64 },
}

impl Throttled {
    pub fn retry_after_seconds(&self) -> i64 {
        let (Throttled::Account { retry_after_ms } | Throttled::Address { retry_after_ms }) = self;
        (retry_after_ms + 999) / 1000
    }
}

fn minutes(ms: &i64) -> String {
    match ((ms + 59_999) / 60_000).max(1) {
        1 => "1 minute".to_owned(),
        n => format!("{n} minutes"),
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: i64,
    failures: u32,
}

#[derive(Debug)]
pub struct LoginThrottle {
    limits: Limits,
    accounts: Mutex<HashMap<String, Window>>,
    addresses: Mutex<HashMap<IpAddr, Window>>,
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> Self {
        Self { limits, accounts: Mutex::default(), addresses: Mutex::default() }
    }

    /// Whether a sign-in for `account` from `address` may be tried now.
    pub fn check(&self, account: &str, address: Option<IpAddr>, now: Timestamp) -> Result<(), Throttled> {
        let l = self.limits;
        if let Some(ip) = address
            && let Some(wait) = blocked(&self.addresses, &ip, l.per_address, l.window_ms, now)
        {
            return Err(Throttled::Address { retry_after_ms: wait });
        }
        match blocked(&self.accounts, account, l.per_account, l.window_ms, now) {
            Some(wait) => Err(Throttled::Account { retry_after_ms: wait }),
            None => Ok(()),
        }
    }

    pub fn failed(&self, account: &str, address: Option<IpAddr>, now: Timestamp) {
        count(&self.accounts, account.to_owned(), self.limits.window_ms, now);
        if let Some(ip) = address {
            count(&self.addresses, ip, self.limits.window_ms, now);
        }
    }

    /// A successful sign-in clears its account's failures (not its address's: one good password must not
    /// reset a guesser's budget for every other account).
    pub fn succeeded(&self, account: &str) {
        if let Ok(mut m) = self.accounts.lock() {
            m.remove(account);
        }
    }
}

fn blocked<K, Q>(map: &Mutex<HashMap<K, Window>>, key: &Q, limit: u32, window_ms: i64, now: Timestamp) -> Option<i64>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    let m = map.lock().ok()?;
    let w = m.get(key)?;
    let ends = w.started + window_ms;
    (w.failures >= limit && now.millis() < ends).then(|| ends - now.millis())
}

fn count<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, Window>>, key: K, window_ms: i64, now: Timestamp) {
    let Ok(mut m) = map.lock() else { return };
    let now = now.millis();
    if m.len() > PRUNE_ABOVE {
        m.retain(|_, w| now < w.started + window_ms);
    }
    let w = m.entry(key).or_insert(Window { started: now, failures: 0 });
    if now >= w.started + window_ms {
        *w = Window { started: now, failures: 0 };
    }
    w.failures += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { per_account: 3, per_address: 5, window_ms: 60_000 };

    #[test]
    fn accounts_lock_after_their_limit_until_the_window_passes() {
        let t = LoginThrottle::new(LIMITS);
        let ip: Option<IpAddr> = "192.0.2.1".parse().ok();
        for _ in 0..3 {
            assert_eq!(t.check("alice", ip, Timestamp(0)), Ok(()));
            t.failed("alice", ip, Timestamp(0));
        }
        assert_eq!(t.check("alice", ip, Timestamp(1_000)), Err(Throttled::Account { retry_after_ms: 59_000 }));
        assert_eq!(t.check("bob", ip, Timestamp(1_000)), Ok(()), "other accounts are not locked");
        assert_eq!(t.check("alice", ip, Timestamp(60_000)), Ok(()), "the window passed");
        t.succeeded("alice");
        assert_eq!(t.check("alice", ip, Timestamp(1_000)), Ok(()));
    }

    #[test]
    fn an_address_spraying_accounts_is_locked() {
        let t = LoginThrottle::new(LIMITS);
        let ip: Option<IpAddr> = "192.0.2.1".parse().ok();
        for i in 0..5 {
            t.failed(&format!("user{i}"), ip, Timestamp(0));
        }
        let err = t.check("someone-else", ip, Timestamp(0)).unwrap_err();
        assert!(matches!(err, Throttled::Address { .. }));
        assert_eq!(err.retry_after_seconds(), 60);
        assert!(err.to_string().contains("from your address; try again in 1 minute"), "{err}");
        assert_eq!(t.check("someone-else", "192.0.2.2".parse().ok(), Timestamp(0)), Ok(()));
    }
}
