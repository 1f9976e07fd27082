//! HTTP routes: GraphiQL at `/`, GraphQL at `/graphql`, subscriptions at
//! `/graphql/ws`, and health checks.

pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod ws_endpoint;
pub mod ws_protocol;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::http::{HeaderValue, Method, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::graphql::fanout::SharedSubscriptions;
use crate::graphql::{AppSchema, AppState};

/// Header carrying the request id, generated when the client sends none.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// What every handler can reach.
#[derive(Clone)]
pub struct HttpState {
    /// The executable schema.
    pub schema: AppSchema,
    /// Long-lived handles (database, clock, settings).
    pub app: AppState,
    /// The groups that live subscriptions share.
    pub(crate) shared: Arc<SharedSubscriptions>,
}

/// Cross-origin access for the configured origins only: what GraphQL over
/// HTTP needs (GET, POST, the `authorization` and `content-type` headers),
/// `x-request-id` readable by the page, no credentials (tokens travel in
/// `authorization`), preflights cached for an hour. Other origins get no
/// CORS headers, so browsers keep their pages out.
fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static(REQUEST_ID_HEADER),
        ])
        .expose_headers([HeaderName::from_static(REQUEST_ID_HEADER)])
        .allow_credentials(false)
        .max_age(Duration::from_secs(3600))
}

/// Gives the refusals made below GraphQL (a timeout, a body over the
/// limit) a GraphQL-shaped JSON body with a code, like every other error.
async fn coded_transport_errors(response: axum::response::Response) -> axum::response::Response {
    let (code, message) = match response.status() {
        StatusCode::REQUEST_TIMEOUT => (
            "REQUEST_TIMEOUT",
            "the request took longer than the server allows (server.request_timeout_secs)",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "PAYLOAD_TOO_LARGE",
            "the request body is larger than the server accepts (server.max_body_bytes)",
        ),
        _ => return response,
    };
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    let mut coded = (response.status(), body.to_string()).into_response();
    coded.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    coded
}

/// Builds the whole router.
pub(crate) fn router(state: HttpState) -> Router {
    let server = &state.app.settings.server;
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let timeout = server.request_timeout();
    let body_limit = server.max_body_bytes;
    let cors = cors(&server.cors_allowed_origins);
    Router::new()
        .route("/graphql", get(graphql::get_handler).post(graphql::post_handler))
        .route("/graphql/ws", get(ws_endpoint::handler))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .merge(graphiql::router())
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(compression())
        .layer(cors)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .headers()
                        .get(REQUEST_ID_HEADER)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "request",
                        request_id,
                        method = %request.method(),
                        path = request.uri().path(),
                        operation = tracing::field::Empty,
                    )
                })
                .on_response(
                    |response: &axum::response::Response, latency: Duration, _span: &Span| {
                        tracing::info!(
                            status = response.status().as_u16(),
                            duration_ms = latency.as_secs_f64() * 1000.0,
                            "request finished"
                        );
                    },
                ),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(coded_transport_errors))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Responses below this size go out uncompressed: the bytes saved do not
/// pay for the work (and most answers of a few fields are smaller).
const COMPRESS_ABOVE_BYTES: u16 = 1024;

/// Response compression: zstd or gzip, whichever the client prefers (zstd
/// on a tie), both at their fastest level. Measured by `bench/nested.sh`
/// on the admin portal's page of sessions (about 600 KB of JSON): see
/// bench/README.md for what each costs against no compression.
fn compression() -> CompressionLayer<impl Predicate> {
    let predicate = SizeAbove::new(COMPRESS_ABOVE_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    CompressionLayer::new()
        .no_br()
        .no_deflate()
        .quality(CompressionLevel::Fastest)
        .compress_when(predicate)
}
