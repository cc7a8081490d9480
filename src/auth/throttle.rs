//! Sign-in throttling: after too many sign-in attempts that did not succeed for one account, or from one
//! client address (an IPv6 /64), within a window, further attempts are refused until the window has
//! passed. Kept in memory: a restart forgets
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
    attempts: u32,
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

    /// Counts a sign-in attempt for `account` from `address`, or refuses it when either has used up its
    /// window. Checking and counting happen under the same locks, so parallel attempts cannot all slip in
    /// before any of them is counted.
    pub fn attempt(&self, account: &str, address: Option<IpAddr>, now: Timestamp) -> Result<(), Throttled> {
        let l = self.limits;
        let (Ok(mut addresses), Ok(mut accounts)) = (self.addresses.lock(), self.accounts.lock()) else {
            return Ok(());
        };
        let address = address.map(bucket);
        if let Some(ip) = &address
            && let Some(wait) = blocked(&addresses, ip, l.per_address, l.window_ms, now)
        {
            return Err(Throttled::Address { retry_after_ms: wait });
        }
        if let Some(wait) = blocked(&accounts, account, l.per_account, l.window_ms, now) {
            return Err(Throttled::Account { retry_after_ms: wait });
        }
        count(&mut accounts, account.to_owned(), l.window_ms, now);
        if let Some(ip) = address {
            count(&mut addresses, ip, l.window_ms, now);
        }
        Ok(())
    }

    /// A successful sign-in clears its account's count and takes itself back from its address's count
    /// (the address keeps its other attempts: one good password must not reset a guesser's budget for every
    /// other account).
    pub fn succeeded(&self, account: &str, address: Option<IpAddr>) {
        if let Ok(mut m) = self.accounts.lock() {
            m.remove(account);
        }
        if let (Some(ip), Ok(mut m)) = (address, self.addresses.lock())
            && let Some(w) = m.get_mut(&bucket(ip))
        {
            w.attempts = w.attempts.saturating_sub(1);
        }
    }
}

/// The key an address is counted under: IPv6 clients by their /64, which one client usually holds whole.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

fn blocked<K, Q>(m: &HashMap<K, Window>, key: &Q, limit: u32, window_ms: i64, now: Timestamp) -> Option<i64>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    let w = m.get(key)?;
    let ends = w.started + window_ms;
    (w.attempts >= limit && now.millis() < ends).then(|| ends - now.millis())
}

fn count<K: std::hash::Hash + Eq>(m: &mut HashMap<K, Window>, key: K, window_ms: i64, now: Timestamp) {
    let now = now.millis();
    if m.len() > PRUNE_ABOVE {
        m.retain(|_, w| now < w.started + window_ms);
    }
    let w = m.entry(key).or_insert(Window { started: now, attempts: 0 });
    if now >= w.started + window_ms {
        *w = Window { started: now, attempts: 0 };
    }
    w.attempts += 1;
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
            assert_eq!(t.attempt("alice", ip, Timestamp(0)), Ok(()));
        }
        assert_eq!(t.attempt("alice", ip, Timestamp(1_000)), Err(Throttled::Account { retry_after_ms: 59_000 }));
        assert_eq!(t.attempt("bob", ip, Timestamp(1_000)), Ok(()), "other accounts are not locked");
        t.succeeded("bob", ip);
        assert_eq!(t.attempt("alice", ip, Timestamp(60_000)), Ok(()), "the window passed");
        t.succeeded("alice", ip);
        assert_eq!(t.attempt("alice", ip, Timestamp(60_001)), Ok(()), "a success clears the account");
    }

    #[test]
    fn an_address_spraying_accounts_is_locked() {
        let t = LoginThrottle::new(LIMITS);
        let ip: Option<IpAddr> = "192.0.2.1".parse().ok();
        for i in 0..5 {
            assert_eq!(t.attempt(&format!("user{i}"), ip, Timestamp(0)), Ok(()));
        }
        let err = t.attempt("someone-else", ip, Timestamp(0)).unwrap_err();
        assert!(matches!(err, Throttled::Address { .. }));
        assert_eq!(err.retry_after_seconds(), 60);
        assert!(err.to_string().contains("from your address; try again in 1 minute"), "{err}");
        assert_eq!(t.attempt("someone-else", "192.0.2.2".parse().ok(), Timestamp(0)), Ok(()));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let t = LoginThrottle::new(LIMITS);
        for i in 0..5 {
            let ip: Option<IpAddr> = format!("2001:db8:1:2::{i:x}").parse().ok();
            assert_eq!(t.attempt(&format!("user{i}"), ip, Timestamp(0)), Ok(()));
        }
        let same_64: Option<IpAddr> = "2001:db8:1:2:ffff::1".parse().ok();
        assert!(matches!(t.attempt("x", same_64, Timestamp(0)), Err(Throttled::Address { .. })));
        let other_64: Option<IpAddr> = "2001:db8:1:3::1".parse().ok();
        assert_eq!(t.attempt("x", other_64, Timestamp(0)), Ok(()));
    }
}
