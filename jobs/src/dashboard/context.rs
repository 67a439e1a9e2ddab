//! What handlers share: the dashboard's configuration ([`Shared`], the router's state) and
//! what the guard learned about the request ([`RequestCtx`], a request extension).
//!
//! The guard builds both; pages, actions and templates read them. This module imports
//! none of those, so every other dashboard module can depend on it.

use std::sync::Arc;
use std::time::Duration;

use super::auth::DashboardAuth;
use super::csrf::{CsrfKey, Nonce};
use super::flash::Flash;
use crate::client::Client;

/// The dashboard's configuration, shared by every request.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) title: String,
    pub(crate) read_only: bool,
    pub(crate) auth: Arc<dyn DashboardAuth>,
    pub(crate) csrf: CsrfKey,
    pub(crate) poll_interval: Duration,
}

/// What the guard learned about a request, for its handler.
#[derive(Debug, Clone)]
pub(crate) struct RequestCtx {
    /// The path the dashboard is nested at, without a trailing slash ("" at the root).
    pub(crate) base: String,
    /// Whether action buttons are shown and POSTs accepted.
    pub(crate) can_act: bool,
    /// The nonce of the CSRF cookie (new if the request had none).
    pub(crate) nonce: Nonce,
    /// Whether `nonce` came from the request's cookie (a POST needs it to).
    pub(crate) nonce_from_cookie: bool,
    /// The token forms carry.
    pub(crate) csrf_token: String,
    /// The path and query of this request, relative to `base` (where actions come back to).
    pub(crate) here: String,
    /// The message left by the previous action, if any.
    pub(crate) flash: Option<Flash>,
}

impl RequestCtx {
    /// An absolute URL path to `path` (which starts with `/`) inside the dashboard.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The overview's URL.
    pub(crate) fn home(&self) -> String {
        if self.base.is_empty() {
            "/".to_owned()
        } else {
            self.base.clone()
        }
    }

    /// The path cookies are scoped to.
    fn cookie_path(&self) -> &str {
        if self.base.is_empty() {
            "/"
        } else {
            &self.base
        }
    }

    /// A `Set-Cookie` value for a dashboard cookie (`max_age` 0 removes it).
    pub(crate) fn cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut cookie = format!(
            "{name}={value}; Path={}; HttpOnly; SameSite=Strict",
            self.cookie_path()
        );
        if let Some(max_age) = max_age {
            cookie.push_str(&format!("; Max-Age={max_age}"));
        }
        cookie
    }
}
