//! Who may use the dashboard: [`DashboardAuth`] and the default, [`LocalOnly`].

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;
use axum::http::uri::Authority;
use axum::http::{header, request::Parts, HeaderMap, Method, Uri};

/// What a request may do, as decided by a [`DashboardAuth`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Everything: read pages and act (unless the dashboard is read-only).
    Allow,
    /// Read pages only: no buttons, POSTs refused with 403.
    ReadOnly,
    /// Refused with 401 Unauthorized (the caller is not authenticated).
    Unauthenticated,
    /// Refused with 401 and this `WWW-Authenticate` challenge (e.g. `Basic realm="jobs"`),
    /// which makes browsers ask for credentials.
    Challenge(String),
    /// Refused with 403 Forbidden (authenticated, but not allowed).
    Forbidden,
}

impl From<bool> for Access {
    /// `true` allows, `false` forbids.
    fn from(allowed: bool) -> Self {
        if allowed {
            Access::Allow
        } else {
            Access::Forbidden
        }
    }
}

/// What an authorization sees of a request: its method, URI, headers and extensions (e.g. a
/// user put there by the application's own authentication layer) and the peer address.
#[derive(Clone)]
pub struct AuthRequest {
    parts: Parts,
    peer: Option<SocketAddr>,
}

impl fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers may hold credentials: show only their names.
        f.debug_struct("AuthRequest")
            .field("method", &self.parts.method)
            .field("uri", &self.parts.uri)
            .field("headers", &self.parts.headers.keys().collect::<Vec<_>>())
            .field("peer", &self.peer)
            .finish()
    }
}

impl AuthRequest {
    /// A request from its parts and the peer address (`None` when the server did not record
    /// it with `ConnectInfo`).
    pub fn new(parts: Parts, peer: Option<SocketAddr>) -> Self {
        AuthRequest { parts, peer }
    }

    /// The request's parts: method, URI, headers, extensions.
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.parts.method
    }

    /// The URI, relative to where the dashboard is nested.
    pub fn uri(&self) -> &Uri {
        &self.parts.uri
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// The peer's address, from `ConnectInfo<SocketAddr>`.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Whether the peer is a loopback address (127.0.0.0/8, `::1`, or IPv4-mapped loopback).
    /// False when the peer is unknown.
    pub fn is_loopback(&self) -> bool {
        self.peer.is_some_and(|peer| is_loopback(peer.ip()))
    }

    /// The host the request was sent to, as the client named it, with its port if it gave one
    /// (`localhost:8080`): the `Host` header, or the URI's authority when there is no `Host`
    /// header (HTTP/2 sends `:authority` instead). `None` when the request names no host, or
    /// names it in several `Host` headers.
    pub fn host(&self) -> Option<&str> {
        host(&self.parts)
    }

    /// Whether the request was sent to this machine by a loopback name: `localhost`, an
    /// address in 127.0.0.0/8 or `[::1]`, with any port (in the `Host` header and in the URI's
    /// authority, if both are given). False when the request names no host.
    ///
    /// A page of another site can reach a dashboard on 127.0.0.1 from the user's own browser
    /// by making its own name resolve to 127.0.0.1 (DNS rebinding): the peer is then
    /// loopback, but the `Host` is the other site's name, which browsers do not let pages set.
    pub fn is_loopback_host(&self) -> bool {
        self.host().is_some_and(is_loopback_name)
            && self
                .parts
                .uri
                .authority()
                .is_none_or(|authority| is_loopback_name(authority.as_str()))
    }

    pub(crate) fn into_parts(self) -> Parts {
        self.parts
    }
}

/// The host a request was sent to: see [`AuthRequest::host`].
pub(crate) fn host(parts: &Parts) -> Option<&str> {
    let mut values = parts.headers.get_all(header::HOST).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok(),
        (None, _) => parts.uri.authority().map(Authority::as_str),
        (Some(_), Some(_)) => None,
    }
}

/// Whether `host` (`name[:port]`) is `localhost`, an address in 127.0.0.0/8 or `[::1]`.
fn is_loopback_name(host: &str) -> bool {
    let Ok(authority) = host.parse::<Authority>() else {
        return false;
    };
    let name = authority.host();
    // `user@host` is an authority, and so is `host:port` with any text as port (or none), but
    // no client sends them as a host.
    let port_given = authority.as_str().len() > name.len();
    if authority.as_str().contains('@') || (port_given && authority.port_u16().is_none()) {
        return false;
    }
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let ip = name
        .strip_prefix('[')
        .and_then(|name| name.strip_suffix(']'))
        .unwrap_or(name);
    ip.parse().is_ok_and(is_loopback)
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Decides what a request may do. Called for every request, pages and actions alike.
///
/// Implement it, possibly with `async fn` (through `#[async_trait]`), or pass a closure:
/// `Fn(&AuthRequest) -> Access` (or `-> bool`) is an implementation, and an async closure
/// `Fn(AuthRequest) -> impl Future<Output = Access>` is one when wrapped in [`AsyncAuth`].
///
/// ```
/// use jobs::dashboard::{Access, AuthRequest, DashboardAuth};
///
/// struct AdminsOnly;
///
/// #[async_trait::async_trait]
/// impl DashboardAuth for AdminsOnly {
///     async fn authorize(&self, request: &AuthRequest) -> Access {
///         // e.g. look the session cookie up in a database
///         match request.headers().get("x-role") {
///             Some(role) if role == "admin" => Access::Allow,
///             Some(_) => Access::Forbidden,
///             None => Access::Unauthenticated,
///         }
///     }
/// }
/// # let _ = jobs::dashboard::Dashboard::new(jobs::MemoryStorage::new()).authorization(AdminsOnly);
/// ```
#[async_trait]
pub trait DashboardAuth: Send + Sync + 'static {
    /// What `request` may do.
    async fn authorize(&self, request: &AuthRequest) -> Access;
}

/// Synchronous closures: `|request: &AuthRequest| request.is_loopback()`.
#[async_trait]
impl<F, R> DashboardAuth for F
where
    F: Fn(&AuthRequest) -> R + Send + Sync + 'static,
    R: Into<Access>,
{
    async fn authorize(&self, request: &AuthRequest) -> Access {
        self(request).into()
    }
}

/// An async closure as a [`DashboardAuth`]; it gets its own copy of the request.
///
/// ```
/// use jobs::dashboard::{Access, AsyncAuth, AuthRequest, Dashboard};
///
/// let dashboard = Dashboard::new(jobs::MemoryStorage::new()).authorization(AsyncAuth(
///     |request: AuthRequest| async move {
///         // e.g. ask a session store
///         request.headers().contains_key("x-session")
///     },
/// ));
/// # let _ = dashboard;
/// ```
#[derive(Clone)]
pub struct AsyncAuth<F>(pub F);

impl<F> fmt::Debug for AsyncAuth<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AsyncAuth(..)")
    }
}

#[async_trait]
impl<F, Fut, R> DashboardAuth for AsyncAuth<F>
where
    F: Fn(AuthRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send,
    R: Into<Access>,
{
    async fn authorize(&self, request: &AuthRequest) -> Access {
        (self.0)(request.clone()).await.into()
    }
}

/// The default authorization: requests from a loopback peer, sent to a loopback name
/// (`localhost`, 127.0.0.0/8 or `[::1]`, any port), are allowed; every other request
/// (including one whose peer or host is unknown) is refused with 403.
///
/// The host check keeps out pages of other sites that reach the dashboard through the user's
/// browser under their own name, made to resolve to 127.0.0.1 (DNS rebinding): see
/// [`AuthRequest::is_loopback_host`]. A dashboard reached by another name, or through a
/// reverse proxy that forwards another `Host`, needs its own [`Dashboard::authorization`].
///
/// [`Dashboard::authorization`]: super::Dashboard::authorization
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalOnly;

#[async_trait]
impl DashboardAuth for LocalOnly {
    async fn authorize(&self, request: &AuthRequest) -> Access {
        (request.is_loopback() && request.is_loopback_host()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses() {
        for (ip, expected) in [
            ("127.0.0.1", true),
            ("127.3.2.1", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("10.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("192.168.1.1", false),
            ("2001:db8::1", false),
        ] {
            let ip: IpAddr = ip.parse().expect("test address");
            assert_eq!(is_loopback(ip), expected, "{ip}");
        }
    }

    #[test]
    fn loopback_names() {
        for (host, expected) in [
            ("localhost", true),
            ("LOCALHOST:8080", true),
            ("127.0.0.1", true),
            ("127.3.2.1:9401", true),
            ("[::1]", true),
            ("[::1]:9401", true),
            ("[::ffff:127.0.0.1]:80", true),
            ("", false),
            ("::1", false),
            ("[::1", false),
            ("localhost.", false),
            ("localhost:port", false),
            ("localhost:", false),
            ("localhost:65536", false),
            ("user@localhost", false),
            ("evil.example:9401", false),
            ("localhost.evil.example", false),
            ("127.0.0.1.evil.example", false),
            ("10.0.0.1", false),
            ("[::2]", false),
        ] {
            assert_eq!(is_loopback_name(host), expected, "{host:?}");
        }
    }
}
