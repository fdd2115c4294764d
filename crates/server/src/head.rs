//! The head layer: what a request's head must be before it is routed. At
//! most [`MAX_HEAD_BYTES`] (431 `headers_too_large`), and a path whose
//! segments each decode to one UTF-8 segment (400 `bad_path`) and are not
//! empty (404 `not_found`: no route has an empty segment, but the router
//! would match one with a route's parameter). The router
//! then sees each segment decoded once and encoded again one way
//! (`/v1/bots/faq%2Dbot/turns` is `/v1/bots/faq-bot/turns`), so a route
//! matches however its names are spelled; the path as sent stays the
//! request's [`OriginalUri`].

use axum::extract::{OriginalUri, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::uri::{PathAndQuery, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::api::ApiError;

/// The largest request head answered: its URI and header fields, each
/// field counted with 32 bytes of overhead as HTTP/2 counts it. hyper's and
/// h2's own limits sit above it (they answer with an empty body), so a head
/// too large for this one gets a JSON answer.
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;

/// What a decoded segment is encoded with again: all but the unreserved
/// characters (RFC 3986), which the routes' own segments are made of.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The head layer (module docs).
pub(crate) async fn check_head(mut request: Request, next: Next) -> Response {
    if head_bytes(&request) > MAX_HEAD_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request's head is larger than {MAX_HEAD_BYTES} bytes"),
        )
        .into_response();
    }
    let path = request.uri().path();
    // A path without `%` is already as decoding would leave it.
    let decoded = path.contains('%').then(|| decoded(request.uri()));
    if let Some(Err(error)) = decoded {
        return error.into_response();
    }
    if path != "/" && path.split('/').skip(1).any(str::is_empty) {
        return ApiError::not_found(request.uri()).into_response();
    }
    if let Some(Ok(uri)) = decoded {
        let sent = std::mem::replace(request.uri_mut(), uri);
        request.extensions_mut().insert(OriginalUri(sent));
    }
    next.run(request).await
}

/// `uri` with each path segment decoded and encoded again with
/// [`SEGMENT`]. A segment that decodes to `/` would be two segments to
/// anything that decodes the path whole, and one that is not UTF-8 names
/// nothing: both are refused.
fn decoded(uri: &Uri) -> Result<Uri, ApiError> {
    let bad_path = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, "bad_path", message);
    let mut path = String::with_capacity(uri.path().len());
    for (index, raw) in uri.path().split('/').enumerate() {
        let segment = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| bad_path("a path segment decodes to invalid UTF-8"))?;
        if segment.contains('/') {
            return Err(bad_path(
                "a path segment may not encode `/` (%2F); names never contain it",
            ));
        }
        if index > 0 {
            path.push('/');
        }
        path.extend(utf8_percent_encode(&segment, SEGMENT));
    }
    if let Some(query) = uri.query() {
        path.push('?');
        path.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        PathAndQuery::try_from(path)
            .map_err(|_| bad_path("the path cannot be read once decoded"))?,
    );
    Uri::from_parts(parts).map_err(|_| bad_path("the path cannot be read once decoded"))
}

/// The size of a request's head as [`MAX_HEAD_BYTES`] counts it.
fn head_bytes(request: &Request) -> usize {
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum();
    let uri = request.uri();
    let target = uri
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    fields
        + target
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len())
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::extract::Path;
    use axum::middleware::from_fn;
    use axum::routing::get;
    use tower::ServiceBuilder;

    use super::*;
    use crate::testing::{call, request, send, serve};

    #[tokio::test]
    async fn the_head_layer_decodes_paths_once_and_refuses_bad_ones_and_large_heads() {
        let routes = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/v1/bots/{bot}/turns",
                get(|Path(bot): Path<String>| async move { bot }),
            )
            .route(
                "/sent",
                get(|OriginalUri(uri): OriginalUri| async move { uri.to_string() }),
            );
        let addr = serve(
            ServiceBuilder::new()
                .layer(from_fn(check_head))
                .service(routes),
        )
        .await;
        for (path, body) in [
            ("/health%7A", "ok"),
            ("/v1/bots/faq%2Dbot/turns", "faq-bot"),
            ("/v1/bots/my%20bot/turns", "my bot"),
            ("/v1/bots/100%25%3F/turns", "100%?"),
            ("/v1/bots/caf%C3%A9/turns", "caf\u{e9}"),
            ("/%73ent?q=%2F", "/%73ent?q=%2F"),
        ] {
            let answer = call(addr, "GET", path).await;
            assert_eq!(
                (answer.status.as_u16(), answer.body.as_str()),
                (200, body),
                "{path}"
            );
        }
        for path in [
            "/v1/bots/faq%2Fbot/turns",
            "/v1/bots/%FF/turns",
            "/nowhere/%2f",
        ] {
            let answer = call(addr, "GET", path).await;
            assert_eq!(answer.status, 400, "{path}: {answer:?}");
            assert_eq!(answer.code(), "bad_path", "{path}");
        }
        let large =
            request(addr, "GET", "/healthz", "").header("x-large", "a".repeat(MAX_HEAD_BYTES));
        let answer = send(addr, large, "").await;
        assert_eq!(answer.status, 431, "{answer:?}");
        assert_eq!(answer.code(), "headers_too_large");
    }
}
