//! GraphQL over HTTP, following the GraphQL-over-HTTP specification:
//! `Accept` negotiation between `application/graphql-response+json` and
//! `application/json`, 400 for request errors under the former, and 405 for
//! a mutation sent with GET.

use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Request};
use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::header::{ACCEPT, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use serde_json::json;
use tracing::Span;

use super::HttpState;
use crate::graphql::loaders::loaders;
use crate::graphql::wire::{WireResponse, is_request_error};
use crate::services::auth::{Activity, ClientInfo, LoginBudget, authenticate};
use crate::services::scope::Scope;

/// `application/graphql-response+json`.
pub(crate) const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
/// `application/json`.
pub(crate) const APPLICATION_JSON: &str = "application/json";

/// The media type of the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseMedia {
    /// `application/graphql-response+json`: status codes tell request errors apart.
    GraphqlResponse,
    /// `application/json`: the legacy type, always 200 for a well-formed request.
    Json,
}

impl ResponseMedia {
    fn content_type(self) -> &'static str {
        match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }

    /// Picks the media type from the `Accept` header; `None` when the client
    /// accepts neither. No header at all means `application/json`, as the
    /// specification asks during its transition period.
    pub(crate) fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let values: Vec<&str> = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        if values.is_empty() {
            return Some(Self::Json);
        }
        let mut best: Option<(f32, u8, Self)> = None;
        for range in values.iter().flat_map(|value| value.split(',')) {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let quality = parts
                .filter_map(|param| param.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            // Among equal qualities the explicit new type wins, then the
            // explicit legacy type, then a wildcard (answered as legacy JSON).
            let candidate = match media.as_str() {
                GRAPHQL_RESPONSE_JSON => (3, Self::GraphqlResponse),
                APPLICATION_JSON => (2, Self::Json),
                "application/*" | "*/*" => (1, Self::Json),
                _ => continue,
            };
            if quality <= 0.0 {
                continue;
            }
            let better = best.is_none_or(|(best_q, best_rank, _)| {
                quality > best_q || (quality == best_q && candidate.0 > best_rank)
            });
            if better {
                best = Some((quality, candidate.0, candidate.1));
            }
        }
        best.map(|(_, _, media)| media)
    }
}

/// `GET /graphql`: queries only.
pub(crate) async fn get_handler(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> HttpResponse {
    let Some(media) = ResponseMedia::negotiate(&headers) else {
        return not_acceptable();
    };
    let request = match parse_get_request(query.as_deref().unwrap_or_default()) {
        Ok(request) => request,
        Err(message) => return bad_request(media, &message),
    };
    if is_mutation(&request, state.app.settings.graphql.max_nesting) {
        let mut response = error_body(
            StatusCode::METHOD_NOT_ALLOWED,
            media,
            "mutations are only accepted with POST",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(state, media, &headers, peer, BatchRequest::Single(request)).await
}

/// `POST /graphql`: a JSON body with `query`, `variables`, `operationName`
/// and `extensions`, or a batch (an array of them).
pub(crate) async fn post_handler(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResponse {
    let Some(media) = ResponseMedia::negotiate(&headers) else {
        return not_acceptable();
    };
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case(APPLICATION_JSON));
    if !is_json {
        return error_body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "send the request body as application/json",
        );
    }
    let request = match serde_json::from_slice::<BatchRequest>(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(media, &format!("the body is not a GraphQL request: {error}")),
    };
    execute(state, media, &headers, peer, request).await
}

async fn execute(
    state: HttpState,
    media: ResponseMedia,
    headers: &HeaderMap,
    peer: SocketAddr,
    request: BatchRequest,
) -> HttpResponse {
    let max_batch = state.app.settings.graphql.max_batch_size;
    if let BatchRequest::Batch(requests) = &request
        && requests.len() > max_batch
    {
        return coded_error_body(
            StatusCode::BAD_REQUEST,
            media,
            &format!(
                "a batch may hold at most {max_batch} requests (graphql.max_batch_size); this one holds {}",
                requests.len()
            ),
            "BATCH_TOO_LARGE",
        );
    }
    let authorization = headers.get(AUTHORIZATION).and_then(|value| value.to_str().ok());
    let now = state.app.clock.now();
    let identity = match authenticate(&state.app, now, authorization, Activity::Record).await {
        Ok(identity) => identity,
        Err(error) => {
            // No operation ran: a response without `data`, which the
            // GraphQL-over-HTTP rules answer with 200 under
            // application/json and with an error status under
            // application/graphql-response+json.
            let error = async_graphql::ErrorExtensions::extend(&error);
            let status = match media {
                ResponseMedia::Json => StatusCode::OK,
                ResponseMedia::GraphqlResponse => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let body = json!({ "errors": [error] });
            let mut response = (status, body.to_string()).into_response();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
            return response;
        }
    };
    let client = client_info(headers, peer, state.app.settings.server.trust_forwarded_headers);
    let scope = Scope::of(&identity).ok();
    let db = state.app.reads.clone();
    let login_budget = Arc::new(LoginBudget::default());
    let prepare = move |request: Request| {
        request
            .data(loaders(db.clone(), scope))
            .data(identity.clone())
            .data(client.clone())
            .data(Arc::clone(&login_budget))
    };
    if let BatchRequest::Single(request) = &request
        && let Some(operation) = &request.operation_name
    {
        Span::current().record("operation", operation.as_str());
    }
    // The operation runs in a task of its own, so that the request timeout
    // answers even while it computes without awaiting; the task is aborted
    // when the answer is given up (timeout, client gone).
    let schema = state.schema.clone();
    let executed = run_detached(async move {
        match request {
            BatchRequest::Single(request) => BatchResponse::Single(schema.execute(prepare(request)).await),
            BatchRequest::Batch(requests) => {
                let requests = requests.into_iter().map(prepare).collect();
                schema.execute_batch(BatchRequest::Batch(requests)).await
            }
        }
    })
    .await;
    let (status, body) = match executed {
        Ok(BatchResponse::Single(response)) => {
            let request_error = is_request_error(&response);
            let status = if request_error && media == ResponseMedia::GraphqlResponse {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            let body = WireResponse::of(&response);
            (status, to_bytes(&body, body.size_hint()))
        }
        Ok(BatchResponse::Batch(responses)) => {
            let bodies: Vec<WireResponse<'_>> = responses.iter().map(WireResponse::of).collect();
            let size_hint = bodies.iter().map(|body| body.size_hint() + 1).sum();
            (StatusCode::OK, to_bytes(&bodies, size_hint))
        }
        Err(error) => {
            tracing::error!(%error, "the GraphQL execution task failed");
            return coded_error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                media,
                "internal error",
                "INTERNAL",
            );
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Runs `work` as a task of its own; dropping the returned future aborts it.
pub(crate) fn run_detached<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = Result<T, tokio::task::JoinError>> + Send {
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let task = AbortOnDrop(tokio::spawn(work));
    async move {
        let mut task = task;
        (&mut task.0).await
    }
}

/// Reads a GET request's query string: `query`, `operationName`,
/// `variables` and `extensions` (the last two as JSON).
fn parse_get_request(query_string: &str) -> Result<Request, String> {
    let mut query = None;
    let mut operation_name = None;
    let mut variables = None;
    let mut extensions = None;
    for (key, value) in url::form_urlencoded::parse(query_string.as_bytes()) {
        let slot = match key.as_ref() {
            "query" => &mut query,
            "operationName" | "operation_name" => &mut operation_name,
            "variables" => &mut variables,
            "extensions" => &mut extensions,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(format!("the `{key}` parameter is given more than once"));
        }
    }
    let query = query.filter(|query| !query.is_empty());
    let Some(query) = query else {
        return Err("the `query` parameter is required".to_owned());
    };
    let mut request = Request::new(query);
    request.operation_name = operation_name.filter(|name| !name.is_empty());
    if let Some(variables) = variables {
        request.variables = serde_json::from_str(&variables)
            .map_err(|error| format!("the `variables` parameter is not a JSON object: {error}"))?;
    }
    if let Some(extensions) = extensions {
        request.extensions = serde_json::from_str(&extensions)
            .map_err(|error| format!("the `extensions` parameter is not a JSON object: {error}"))?;
    }
    Ok(request)
}

/// The JSON of `body`, or a coded internal error should it not serialize.
fn to_bytes(body: &impl serde::Serialize, size_hint: usize) -> Vec<u8> {
    let mut json = Vec::with_capacity(size_hint);
    serde_json::to_writer(&mut json, body)
        .map(|()| json)
        .unwrap_or_else(|error| {
            tracing::error!(%error, "a response could not be serialized");
            json!({ "errors": [{ "message": "internal error", "extensions": { "code": "INTERNAL" } }] })
                .to_string()
                .into_bytes()
        })
}

/// The client's user agent and address. Behind a trusted proxy the first
/// `X-Forwarded-For` entry is the client.
pub(crate) fn client_info(headers: &HeaderMap, peer: SocketAddr, trust_forwarded: bool) -> ClientInfo {
    let forwarded = trust_forwarded.then(|| forwarded_client(headers)).flatten();
    ClientInfo {
        user_agent: headers
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        ip_address: Some(forwarded.unwrap_or_else(|| peer.ip()).to_string()),
    }
}

/// The client address a trusted proxy appended to `X-Forwarded-For`: the
/// right-most entry of the last header line (proxies may add a line of
/// their own; the entries before theirs are whatever the client sent). An
/// entry with a port (`1.2.3.4:5678`, `[::1]:80`) counts by its address;
/// one that is no address at all is ignored, and the peer counts instead.
fn forwarded_client(headers: &HeaderMap) -> Option<std::net::IpAddr> {
    let line = headers.get_all("x-forwarded-for").iter().next_back()?;
    let entry = line.to_str().ok()?.rsplit(',').next()?.trim();
    entry
        .parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

fn is_mutation(request: &Request, max_nesting: usize) -> bool {
    // The parser recurses: a document nested too deep is left to the gate,
    // which refuses it before parsing.
    if crate::graphql::limits::raw_nesting(&request.query, max_nesting) > max_nesting {
        return false;
    }
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        // Parse errors are reported by the executor in the usual format.
        return false;
    };
    let operation = match &request.operation_name {
        Some(name) => document
            .operations
            .iter()
            .find(|(operation_name, _)| operation_name.is_some_and(|n| n.as_str() == name))
            .map(|(_, operation)| operation),
        None => document.operations.iter().next().map(|(_, operation)| operation),
    };
    operation.is_some_and(|operation| operation.node.ty == OperationType::Mutation)
}

fn bad_request(media: ResponseMedia, message: &str) -> HttpResponse {
    error_body(StatusCode::BAD_REQUEST, media, message)
}

fn not_acceptable() -> HttpResponse {
    error_body(
        StatusCode::NOT_ACCEPTABLE,
        ResponseMedia::Json,
        "accept application/graphql-response+json or application/json",
    )
}

fn error_body(status: StatusCode, media: ResponseMedia, message: &str) -> HttpResponse {
    coded_error_body(status, media, message, "BAD_REQUEST")
}

fn coded_error_body(status: StatusCode, media: ResponseMedia, message: &str, code: &str) -> HttpResponse {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_what_the_trusted_proxy_appended() {
        let peer: SocketAddr = ([10, 0, 0, 1], 443).into();
        let with = |lines: &[&str]| {
            let mut headers = HeaderMap::new();
            for line in lines {
                if let Ok(value) = HeaderValue::from_str(line) {
                    headers.append("x-forwarded-for", value);
                }
            }
            client_info(&headers, peer, true).ip_address.unwrap_or_default()
        };
        assert_eq!(with(&["6.6.6.6, 203.0.113.7"]), "203.0.113.7");
        assert_eq!(
            with(&["6.6.6.6", "203.0.113.7"]),
            "203.0.113.7",
            "a proxy's own line"
        );
        assert_eq!(with(&["203.0.113.7:5123"]), "203.0.113.7");
        assert_eq!(with(&["[2001:db8::1]:80"]), "2001:db8::1");
        assert_eq!(with(&["not an address"]), "10.0.0.1", "the peer then");
        assert_eq!(with(&[]), "10.0.0.1");
        let mut spoofed = HeaderMap::new();
        spoofed.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
        assert_eq!(
            client_info(&spoofed, peer, false).ip_address.as_deref(),
            Some("10.0.0.1"),
            "untrusted headers are ignored"
        );
    }

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(ACCEPT, value);
        }
        headers
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn detached_work_that_never_awaits_still_lets_the_timeout_answer() {
        // The work blocks its worker thread without ever awaiting, as a
        // long computation would; the caller's timeout still fires.
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let work = run_detached(async move {
            let _ = blocked.recv();
        });
        let outcome = tokio::time::timeout(std::time::Duration::from_millis(50), work).await;
        assert!(outcome.is_err(), "the timeout answered first");
        let _ = release.send(());
    }

    #[test]
    fn get_requests_read_operation_name_and_json_parameters() {
        let request =
            parse_get_request("query=query%20A%7B__typename%7D&operationName=A&variables=%7B%22x%22%3A1%7D");
        let request = request.ok();
        assert_eq!(
            request
                .as_ref()
                .and_then(|request| request.operation_name.as_deref()),
            Some("A")
        );
        assert!(parse_get_request("query=%7Ba%7D&query=%7Bb%7D").is_err());
        assert!(parse_get_request("variables=%7B%7D").is_err());
        assert!(parse_get_request("query=%7Ba%7D&variables=nope").is_err());
    }

    #[test]
    fn accept_negotiation_prefers_the_explicit_graphql_response_type() {
        assert_eq!(
            ResponseMedia::negotiate(&HeaderMap::new()),
            Some(ResponseMedia::Json)
        );
        assert_eq!(
            ResponseMedia::negotiate(&accept("*/*")),
            Some(ResponseMedia::Json)
        );
        assert_eq!(
            ResponseMedia::negotiate(&accept("application/json, application/graphql-response+json")),
            Some(ResponseMedia::GraphqlResponse)
        );
        assert_eq!(
            ResponseMedia::negotiate(&accept(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Some(ResponseMedia::Json)
        );
        assert_eq!(ResponseMedia::negotiate(&accept("text/html")), None);
        assert_eq!(ResponseMedia::negotiate(&accept("application/json;q=0")), None);
    }
}
