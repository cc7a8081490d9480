//! The way in before the first operator exists: a one-time setup link. Each start makes a random code,
//! which `app` prints to the log; the first browser on this machine that opens `/setup?code=…` gets a
//! cookie that makes it the local principal until it closes (or Hookplane stops), and the code is spent.
//! Reading the log is what proves a person is at this machine: a proxy on the same host makes every client
//! look local, so the address alone proves nothing.

use std::sync::{Mutex, MutexGuard, PoisonError};

use subtle::ConstantTimeEq;

use crate::secrets::{SecretBytes, random_credential, sha256};

/// The cookie of the browser that opened the setup link, and its name when cookies are `Secure`.
pub const COOKIE: &str = "hookplane_local";
pub const COOKIE_SECURE: &str = "__Host-hookplane_local";

/// Shorter configured codes are refused: the code is the only thing between a proxy and the dashboard.
pub const MIN_CODE_CHARS: usize = 32;

/// Wrong codes after which the link closes until the next start, so a code cannot be guessed at leisure.
pub const MAX_WRONG: u32 = 10;

#[derive(Debug, Default)]
struct State {
    /// The digest of the code, until it is spent.
    code: Option<[u8; 32]>,
    /// The digest of the code last spent, until its browser is let in for good (see [`LocalSetup::undo`]).
    spent: Option<[u8; 32]>,
    /// The digest of the cookie given for it.
    browser: Option<[u8; 32]>,
    wrong: u32,
}

/// The setup code and the one browser it let in.
#[derive(Debug, Default)]
pub struct LocalSetup {
    state: Mutex<State>,
}

/// Why a setup link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Another browser opened it already.
    Spent,
    Wrong,
    /// Too many wrong codes: closed until the next start.
    Closed,
}

impl LocalSetup {
    /// Setup open with `configured` as the code, or a fresh random one, which is returned for the log. A
    /// configured code is never printed: it outlives this start.
    pub fn open(configured: Option<&SecretBytes>) -> (Self, Option<SecretBytes>) {
        let (code, printable) = match configured {
            Some(c) => (c.clone(), None),
            None => {
                let c = random_credential("").0;
                (c.clone(), Some(c))
            }
        };
        let state = State { code: Some(sha256(code.expose())), ..State::default() };
        (Self { state: Mutex::new(state) }, printable)
    }

    /// No setup link: operators exist, or local access is turned off.
    pub fn closed() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spends the code and returns the cookie value for the browser that presented it.
    pub fn redeem(&self, presented: &str) -> Result<SecretBytes, Refused> {
        let mut s = self.lock();
        if s.wrong >= MAX_WRONG {
            return Err(Refused::Closed);
        }
        let Some(code) = s.code else { return Err(Refused::Spent) };
        if !bool::from(sha256(presented.as_bytes()).ct_eq(&code)) {
            s.wrong += 1;
            return Err(Refused::Wrong);
        }
        let (cookie, digest) = random_credential("");
        s.spent = s.code.take();
        s.browser = Some(digest);
        Ok(cookie)
    }

    /// Takes back the last redemption, when what had to go with it (its audit entry) failed: the code works
    /// again and the cookie given for it does not.
    pub fn undo(&self) {
        let mut s = self.lock();
        if let Some(code) = s.spent.take() {
            s.code = Some(code);
            s.browser = None;
        }
    }

    /// The digest of the cookie value `presented`, when it is the browser that opened the setup link.
    pub fn browser(&self, presented: &str) -> Option<[u8; 32]> {
        let digest = sha256(presented.as_bytes());
        let known = self.lock().browser?;
        bool::from(digest.ct_eq(&known)).then_some(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_lets_in_one_browser_once() {
        let (setup, code) = LocalSetup::open(None);
        let code = String::from_utf8(code.unwrap().expose().to_vec()).unwrap();
        assert_eq!(code.len(), 43, "256 random bits");
        assert_eq!(setup.redeem("guess").map(|_| ()), Err(Refused::Wrong));
        let cookie = setup.redeem(&code).unwrap();
        let cookie = String::from_utf8(cookie.expose().to_vec()).unwrap();
        assert!(setup.browser(&cookie).is_some());
        assert!(setup.browser("another").is_none());
        assert_eq!(setup.redeem(&code).map(|_| ()), Err(Refused::Spent), "once");
        assert!(setup.browser(&cookie).is_some(), "the first browser keeps its way in");
        assert!(LocalSetup::closed().browser(&cookie).is_none());
        assert_eq!(LocalSetup::closed().redeem(&code).map(|_| ()), Err(Refused::Spent));
    }

    #[test]
    fn an_undone_redemption_gives_the_code_back_and_wrong_codes_close_the_link() {
        let configured = SecretBytes::new(b"a-configured-setup-code-of-32-chars-or-more".to_vec());
        let (setup, printable) = LocalSetup::open(Some(&configured));
        assert!(printable.is_none(), "a configured code is never printed");
        let cookie = setup.redeem("a-configured-setup-code-of-32-chars-or-more").unwrap();
        setup.undo();
        assert!(setup.browser(std::str::from_utf8(cookie.expose()).unwrap()).is_none(), "its cookie is void");
        assert!(setup.redeem("a-configured-setup-code-of-32-chars-or-more").is_ok(), "and the code works again");

        let (setup, code) = LocalSetup::open(None);
        let code = String::from_utf8(code.unwrap().expose().to_vec()).unwrap();
        for _ in 0..MAX_WRONG {
            assert_eq!(setup.redeem("guess").map(|_| ()), Err(Refused::Wrong));
        }
        assert_eq!(setup.redeem(&code).map(|_| ()), Err(Refused::Closed), "closed even to the right code");
    }
}
