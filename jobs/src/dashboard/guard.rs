//! The middleware every request goes through: where the dashboard is nested, authorization,
//! read-only, the CSRF cookie, the flash message, and security headers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::uri::Authority;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::{host, Access, AuthRequest};
use super::context::{RequestCtx, Shared};
use super::csrf::{self, Nonce};
use super::flash::{Flash, FLASH_COOKIE};

/// Where the dashboard is nested: the original path less the path the router sees.
fn base_path(request: &Request) -> String {
    let inner = request.uri().path();
    let original = request
        .extensions()
        .get::<OriginalUri>()
        .map_or(inner, |uri| uri.0.path());
    let prefix = match original.strip_suffix(inner) {
        Some(prefix) => prefix,
        // Nested at "/jobs", the request for "/jobs" reaches the router as "/".
        None if inner == "/" => original,
        None => "",
    };
    let prefix = prefix.trim_end_matches('/');
    // Never start with "//": the browser would read it as another host.
    let trimmed = prefix.trim_start_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

/// The value of cookie `name`, if the request has one.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// The middleware.
pub(crate) async fn guard(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let base = base_path(&request);
    let (mut parts, body) = request.into_parts();
    // The extractor also reads `MockConnectInfo`, which tests use to inject a peer.
    let peer = ConnectInfo::<SocketAddr>::from_request_parts(&mut parts, &())
        .await
        .ok()
        .map(|info| info.0);
    let auth_request = AuthRequest::new(parts, peer);
    let access = shared.auth.authorize(&auth_request).await;
    let mut parts = auth_request.into_parts();
    let can_act = match access {
        Access::Allow => !shared.read_only,
        Access::ReadOnly => false,
        Access::Unauthenticated => {
            return refuse(StatusCode::UNAUTHORIZED, "Sign in to use this dashboard.");
        }
        Access::Challenge(challenge) => {
            let mut response = refuse(StatusCode::UNAUTHORIZED, "Sign in to use this dashboard.");
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            return response;
        }
        Access::Forbidden => {
            return refuse(
                StatusCode::FORBIDDEN,
                "This dashboard answers only requests from this machine addressed to localhost, \
                 127.0.0.1 or [::1], unless the application configures an authorization \
                 (Dashboard::authorization).",
            );
        }
    };
    let reading = parts.method == Method::GET || parts.method == Method::HEAD;
    if !reading && !can_act {
        return refuse(StatusCode::FORBIDDEN, "This dashboard is read-only.");
    }
    if !reading && !same_origin(&parts) {
        return refuse(
            StatusCode::FORBIDDEN,
            "This action did not come from a page of this dashboard: its Origin header does \
             not name the host it was sent to, and Sec-Fetch-Site is not same-origin. Open the \
             dashboard at its own address and try again.",
        );
    }

    let from_cookie = cookie(&parts.headers, csrf::COOKIE).and_then(Nonce::parse);
    let nonce_from_cookie = from_cookie.is_some();
    let nonce = from_cookie.unwrap_or_else(Nonce::random);
    let flash = if reading {
        cookie(&parts.headers, FLASH_COOKIE).and_then(|value| Flash::parse(value, &shared.csrf))
    } else {
        None
    };
    let here = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
    let ctx = RequestCtx {
        base,
        can_act,
        csrf_token: shared.csrf.token(&nonce),
        nonce,
        nonce_from_cookie,
        here,
        flash,
    };
    parts.extensions.insert(ctx.clone());

    let mut response = next.run(Request::from_parts(parts, body)).await;

    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    let headers = response.headers_mut();
    if !nonce_from_cookie && is_html {
        let value = ctx.cookie(csrf::COOKIE, &ctx.nonce.to_cookie_value(), None);
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    if ctx.flash.is_some() && is_html {
        if let Ok(value) = HeaderValue::from_str(&ctx.cookie(FLASH_COOKIE, "", Some(0))) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    security_headers(headers);
    response
}

/// Whether a POST comes from a page of the dashboard itself: its `Origin` names the host the
/// request was sent to (scheme aside, default ports filled in), or the browser says
/// `Sec-Fetch-Site: same-origin`. Pages cannot forge either header, so another site's form or
/// script is refused even before its CSRF token is checked.
fn same_origin(parts: &Parts) -> bool {
    let fetched_from_here = parts
        .headers
        .get("sec-fetch-site")
        .is_some_and(|site| site == "same-origin");
    fetched_from_here || origin_is_host(parts)
}

fn origin_is_host(parts: &Parts) -> bool {
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<Uri>().ok());
    let host = host(parts).and_then(|host| host.parse::<Authority>().ok());
    let (Some(origin), Some(host)) = (origin, host) else {
        return false;
    };
    let default_port = match origin.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return false,
    };
    let Some(origin) = origin.authority() else {
        return false;
    };
    origin.host().eq_ignore_ascii_case(host.host())
        && origin.port_u16().unwrap_or(default_port) == host.port_u16().unwrap_or(default_port)
}

/// Headers every response carries.
fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// A refusal, before any handler runs.
fn refuse(status: StatusCode, message: &'static str) -> Response {
    let mut response = (status, message).into_response();
    security_headers(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Uri;

    fn request(inner: &str, original: Option<&str>) -> Request {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = inner.parse::<Uri>().expect("test uri");
        if let Some(original) = original {
            request
                .extensions_mut()
                .insert(OriginalUri(original.parse().expect("test uri")));
        }
        request
    }

    #[test]
    fn base_paths() {
        assert_eq!(base_path(&request("/jobs/failed", None)), "");
        assert_eq!(base_path(&request("/", Some("/"))), "");
        assert_eq!(base_path(&request("/", Some("/admin/jobs"))), "/admin/jobs");
        assert_eq!(
            base_path(&request("/", Some("/admin/jobs/"))),
            "/admin/jobs"
        );
        assert_eq!(
            base_path(&request("/jobs/failed", Some("/x/jobs/failed?page=2"))),
            "/x"
        );
        assert_eq!(base_path(&request("/job/1", Some("//evil/job/1"))), "/evil");
    }

    fn post(host: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request =
            axum::http::Request::post("/actions/jobs/delete").header(header::HOST, host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).expect("test request").into_parts().0
    }

    #[test]
    fn same_origin_posts() {
        for (host, headers, expected) in [
            (
                "localhost:9401",
                vec![("origin", "http://localhost:9401")],
                true,
            ),
            (
                "jobs.example.com",
                vec![("origin", "https://Jobs.Example.com:443")],
                true,
            ),
            ("localhost:80", vec![("origin", "http://localhost")], true),
            (
                "localhost:9401",
                vec![("sec-fetch-site", "same-origin")],
                true,
            ),
            ("localhost:9401", vec![], false),
            (
                "localhost:9401",
                vec![("origin", "http://localhost:9402")],
                false,
            ),
            (
                "localhost:9401",
                vec![("origin", "http://evil.example:9401")],
                false,
            ),
            ("localhost:443", vec![("origin", "http://localhost")], false),
            ("localhost", vec![("origin", "null")], false),
            ("localhost", vec![("origin", "file://localhost")], false),
            (
                "localhost:9401",
                vec![("sec-fetch-site", "same-site")],
                false,
            ),
            (
                "localhost:9401",
                vec![("sec-fetch-site", "cross-site")],
                false,
            ),
            ("localhost:9401", vec![("sec-fetch-site", "none")], false),
        ] {
            assert_eq!(
                same_origin(&post(host, &headers)),
                expected,
                "{host} {headers:?}"
            );
        }
    }

    #[test]
    fn cookies() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b = 2"));
        headers.append(header::COOKIE, HeaderValue::from_static("c=3"));
        assert_eq!(cookie(&headers, "a"), Some("1"));
        assert_eq!(cookie(&headers, "c"), Some("3"));
        assert_eq!(cookie(&headers, "d"), None);
    }
}
