//! Who is calling a page, as the HTTP layer established it.

use crate::auth::Principal;

/// The caller of a dashboard page, as the guard established it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The token this page's forms carry; `None` for bearer callers, whose credential no other site can
    /// make a browser send, so their requests need none.
    pub csrf: Option<String>,
    /// The digest of the session the caller rides on, for sign-out.
    pub session: Option<[u8; 32]>,
}
