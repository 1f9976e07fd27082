//! The GraphiQL explorer, served entirely from assets embedded in the binary.
//!
//! [`router`] serves the explorer page at `GET /` and its scripts and styles at
//! `GET /graphiql/{file}`, so it works with no internet access. The page talks
//! to the API on its own origin: queries, mutations and introspection go to
//! `POST /graphql`, subscriptions to the WebSocket at `/graphql/ws`
//! (graphql-transport-ws protocol). Whatever JSON object the user types in
//! GraphiQL's Headers editor (e.g. `{"Authorization": "Bearer <token>"}`) is
//! sent as HTTP headers and, for subscriptions, as the `connection_init`
//! payload.
//!
//! The vendored files live in `assets/graphiql/` (see its README for versions
//! and how to update them). Their names carry the package version, so they
//! are served with a one-year immutable cache; the page and `init.js` are
//! served with `no-cache`.

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// `Content-Type` of the JavaScript assets.
const JAVASCRIPT: &str = "application/javascript; charset=utf-8";
/// `Content-Type` of the stylesheet.
const CSS: &str = "text/css; charset=utf-8";
/// `Cache-Control` of assets whose file name carries their version.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of the page and of the unversioned bootstrap script.
const NO_CACHE: &str = "no-cache";

/// The explorer page.
const INDEX_HTML: &str = include_str!("../../assets/graphiql/index.html");

/// One file served under `/graphiql/`.
struct Asset {
    /// File name, as it appears in the URL.
    name: &'static str,
    /// `Content-Type` header value.
    content_type: &'static str,
    /// `Cache-Control` header value.
    cache_control: &'static str,
    /// The file's bytes.
    body: &'static [u8],
}

/// Every file served under `/graphiql/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "react-18.3.1.production.min.js",
        content_type: JAVASCRIPT,
        cache_control: IMMUTABLE,
        body: include_bytes!("../../assets/graphiql/react-18.3.1.production.min.js"),
    },
    Asset {
        name: "react-dom-18.3.1.production.min.js",
        content_type: JAVASCRIPT,
        cache_control: IMMUTABLE,
        body: include_bytes!("../../assets/graphiql/react-dom-18.3.1.production.min.js"),
    },
    Asset {
        name: "graphiql-3.8.3.min.js",
        content_type: JAVASCRIPT,
        cache_control: IMMUTABLE,
        body: include_bytes!("../../assets/graphiql/graphiql-3.8.3.min.js"),
    },
    Asset {
        name: "graphiql-3.8.3.min.css",
        content_type: CSS,
        cache_control: IMMUTABLE,
        body: include_bytes!("../../assets/graphiql/graphiql-3.8.3.min.css"),
    },
    Asset {
        name: "init.js",
        content_type: JAVASCRIPT,
        cache_control: NO_CACHE,
        body: include_bytes!("../../assets/graphiql/init.js"),
    },
];

/// The page's CSP up to (excluding) the WebSocket sources of `connect-src`.
///
/// Scripts only from our origin (the bootstrap lives in `/graphiql/init.js`);
/// styles from our origin plus inline ones, because GraphiQL sets `style`
/// attributes and injects `<style>` elements; fonts and images also from
/// `data:` URLs, which the GraphiQL stylesheet embeds.
const CSP_HEAD: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'; connect-src 'self'";

/// Builds the GraphiQL router: `GET /` (the explorer page) and
/// `GET /graphiql/{file}` (its embedded scripts and styles; unknown files are
/// `404 Not Found`).
///
/// The page expects the GraphQL API on the same origin, at `POST /graphql`
/// and (for subscriptions) the WebSocket `/graphql/ws`; this router does not
/// serve those. Merge it into the application's router, e.g.
/// `app.merge(graphiql::router())`.
pub(crate) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(index))
        .route("/graphiql/{file}", get(asset))
}

/// `GET /`: the explorer page, with its Content-Security-Policy.
async fn index(headers: HeaderMap, uri: Uri) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE)),
            (header::CONTENT_SECURITY_POLICY, content_security_policy(host)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        INDEX_HTML,
    )
        .into_response()
}

/// `GET /graphiql/{file}`: one embedded asset, or `404 Not Found`.
async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|asset| asset.name == file) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, asset.cache_control),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "unknown GraphiQL asset").into_response(),
    }
}

/// The page's `Content-Security-Policy`.
///
/// `connect-src 'self'` covers same-origin `ws:`/`wss:` in CSP Level 3
/// browsers; when the request names a plausible host, `ws://host` and
/// `wss://host` are listed too for browsers that predate that rule.
fn content_security_policy(host: Option<&str>) -> HeaderValue {
    let policy = match host.filter(|host| is_plain_host(host)) {
        Some(host) => format!("{CSP_HEAD} ws://{host} wss://{host}"),
        None => CSP_HEAD.to_owned(),
    };
    HeaderValue::try_from(policy).unwrap_or_else(|_| HeaderValue::from_static(CSP_HEAD))
}

/// Whether `host` is a bare `host[:port]` (DNS name, IPv4 or bracketed IPv6),
/// so that it cannot add anything but a source to the CSP.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b".-:[]".contains(&byte))
}

#[cfg(test)]
mod tests {
    use axum::{
        body::{Body, to_bytes},
        http::{Request, StatusCode, header},
        response::Response,
    };
    use tower::ServiceExt as _;

    use super::{ASSETS, router};

    /// Sends `GET uri` to the GraphiQL router.
    async fn get(uri: &str) -> Response {
        let request = Request::get(uri)
            .header(header::HOST, "localhost:8080")
            .body(Body::empty());
        let Ok(request) = request else {
            panic!("invalid request for {uri}");
        };
        let Ok(response) = router::<()>().oneshot(request).await;
        response
    }

    /// The value of `name` in `response`, or "" when absent or not text.
    fn header_of(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// Reads the whole body of `response`.
    async fn body_of(response: Response) -> Vec<u8> {
        match to_bytes(response.into_body(), 16 * 1024 * 1024).await {
            Ok(bytes) => bytes.to_vec(),
            Err(error) => panic!("reading body: {error}"),
        }
    }

    #[tokio::test]
    async fn index_is_html_linking_every_asset() {
        let response = get("/").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        let csp = header_of(&response, header::CONTENT_SECURITY_POLICY).to_owned();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
        assert!(
            csp.contains("connect-src 'self' ws://localhost:8080 wss://localhost:8080"),
            "{csp}"
        );
        let html = String::from_utf8(body_of(response).await).unwrap_or_default();
        assert!(html.contains("<title>session-manager · GraphiQL</title>"));
        for asset in ASSETS {
            assert!(
                html.contains(&format!("\"graphiql/{}\"", asset.name)),
                "page does not load {}",
                asset.name
            );
        }
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_content_type() {
        let expected = [
            (
                "react-18.3.1.production.min.js",
                "application/javascript; charset=utf-8",
            ),
            (
                "react-dom-18.3.1.production.min.js",
                "application/javascript; charset=utf-8",
            ),
            ("graphiql-3.8.3.min.js", "application/javascript; charset=utf-8"),
            ("graphiql-3.8.3.min.css", "text/css; charset=utf-8"),
            ("init.js", "application/javascript; charset=utf-8"),
        ];
        assert_eq!(expected.len(), ASSETS.len());
        for (name, content_type) in expected {
            let response = get(&format!("/graphiql/{name}")).await;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(header_of(&response, header::CONTENT_TYPE), content_type, "{name}");
            let cache_control = header_of(&response, header::CACHE_CONTROL).to_owned();
            if name == "init.js" {
                assert_eq!(cache_control, "no-cache");
            } else {
                assert_eq!(cache_control, "public, max-age=31536000, immutable", "{name}");
            }
            assert!(!body_of(response).await.is_empty(), "{name} is empty");
        }
    }

    #[tokio::test]
    async fn init_script_wires_http_and_websocket_endpoints() {
        let response = get("/graphiql/init.js").await;
        let script = String::from_utf8(body_of(response).await).unwrap_or_default();
        assert!(script.contains("window.location.origin + '/graphql'"));
        assert!(script.contains("'/graphql/ws'"));
        assert!(script.contains("subscriptionUrl: wsUrl"));
        assert!(script.contains("query Sessions {"));
    }

    #[tokio::test]
    async fn unknown_asset_is_not_found() {
        for uri in [
            "/graphiql/nope.js",
            "/graphiql/graphiql.min.js",
            "/graphiql/",
            "/graphiql/..%2Findex.html",
        ] {
            let response = get(uri).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
        }
    }

    #[test]
    fn csp_lists_websocket_sources_only_for_plain_hosts() {
        let with_host = super::content_security_policy(Some("[::1]:3000"));
        assert!(
            with_host
                .to_str()
                .unwrap_or_default()
                .ends_with("connect-src 'self' ws://[::1]:3000 wss://[::1]:3000")
        );
        for bad in [Some("evil; script-src *"), Some(""), None] {
            let policy = super::content_security_policy(bad);
            assert!(
                policy
                    .to_str()
                    .unwrap_or_default()
                    .ends_with("connect-src 'self'"),
                "{bad:?}"
            );
        }
    }
}
