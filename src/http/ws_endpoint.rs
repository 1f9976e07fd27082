//! The WebSocket endpoint, `GET /graphql/ws`: the upgrade, the connection's
//! credentials and the per-operation data; the protocol itself
//! (graphql-transport-ws and the legacy graphql-ws) is `ws_protocol`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_graphql::futures_util::stream::BoxStream;
use async_graphql::{ErrorExtensions, Executor, Pos, Request, Response as GraphqlResponse};
use futures_util::{StreamExt, future, stream};

use async_graphql::Data;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::watch;

use super::HttpState;
use super::graphql::client_info;
use super::ws_protocol::{self as ws, InitRejected, Outcome, WsProtocol, WsSettings};
use crate::auth::Identity;
use crate::error::AppError;
use crate::graphql::fanout::{SharedItem, SharedSubscriptions};
use crate::graphql::loaders::uncached_loaders;
use crate::graphql::{AppSchema, AppState};
use crate::services::auth::{Activity, ClientInfo, LoginBudget, authenticate};
use crate::services::live_identity::{LiveIdentity, Standing, Watcher};
use crate::services::scope::Scope;

/// Upgrades the connection and serves GraphQL operations over it.
pub(crate) async fn handler(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = WsProtocol::negotiate(&headers) else {
        return (
            StatusCode::BAD_REQUEST,
            "offer the graphql-transport-ws (or legacy graphql-ws) subprotocol",
        )
            .into_response();
    };
    let server = &state.app.settings.server;
    let settings = WsSettings {
        connection_init_timeout: Duration::from_millis(server.ws_connection_init_timeout_ms),
        keep_alive_interval: Duration::from_secs(server.ws_keep_alive_secs),
        max_operations: server.ws_max_operations,
        send_timeout: Duration::from_secs(server.ws_send_timeout_secs),
    };
    let max_message = server.ws_max_message_bytes;
    let app = state.app.clone();
    let client = client_info(&headers, peer, app.settings.server.trust_forwarded_headers);
    let credentials = Arc::new(Mutex::new(None));
    let (watcher, standing) = Watcher::new(app.clone());
    let watcher = Arc::new(watcher);
    let executor = ReauthenticatingExecutor {
        schema: state.schema.clone(),
        shared: state.shared.clone(),
        app: app.clone(),
        credentials: credentials.clone(),
        watcher: watcher.clone(),
    };
    upgrade
        // tungstenite's 128 KiB buffers would make each idle subscriber cost
        // far more than its state; messages here are small, and a larger
        // one still arrives (the buffer grows to `max_message`).
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        // Every message is flushed as it is sent: nothing to gather.
        .write_buffer_size(0)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .protocols([protocol.as_str()])
        .on_upgrade(move |socket| {
            let on_init = move |payload: Value| async move {
                connection_data(&app, &payload, client, &credentials, &watcher).await
            };
            ws::serve(socket, protocol, executor, settings, on_init, closing(standing))
        })
        .into_response()
}

pub use crate::auth::ConnectionCredentials;

/// Closes the connection once its credentials stop working (its login
/// session ended, its token expired): 4401, so that a client logs in again
/// rather than reconnecting with the same token.
fn closing(mut standing: watch::Receiver<Standing>) -> ws::ClosingSignal {
    Box::pin(async move {
        let ending = {
            match standing
                .wait_for(|standing| matches!(standing, Standing::Ended(_)))
                .await
            {
                Ok(standing) => match &*standing {
                    Standing::Ended(ending) => Some(ending.clone()),
                    _ => None,
                },
                // Never watched (an anonymous connection): never closed from here.
                Err(_) => None,
            }
        };
        let Some(ending) = ending else {
            return std::future::pending().await;
        };
        let error = ending.error();
        ws::Closing {
            code: UNAUTHORIZED,
            reason: error.message(),
            response: refusal(&error),
        }
    })
}

/// The read buffer of one connection.
const WS_READ_BUFFER_BYTES: usize = 512;

/// graphql-transport-ws's close code for credentials that no longer work.
const UNAUTHORIZED: u16 = 4401;

/// Runs each WebSocket operation as the identity its connection's
/// credentials have *now*; a live subscription joins its group.
#[derive(Clone)]
struct ReauthenticatingExecutor {
    schema: AppSchema,
    shared: Arc<SharedSubscriptions>,
    app: AppState,
    credentials: Arc<Mutex<Option<String>>>,
    watcher: Arc<Watcher>,
}

impl ReauthenticatingExecutor {
    fn credentials(&self) -> Option<String> {
        self.credentials
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ws::Operations for ReauthenticatingExecutor {
    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Outcome> {
        let (schema, app, authorization) = (self.schema.clone(), self.app.clone(), self.credentials());
        let (shared, watcher) = (self.shared.clone(), self.watcher.clone());
        // Boxed apart from the stream, so that its memory is freed once the
        // operation runs rather than kept for as long as it does.
        let prepared = Box::pin(async move {
            let (request, identity, live) = match prepare(&app, request, authorization, &watcher).await {
                Ok(prepared) => prepared,
                Err(error) => {
                    let refused = Outcome::Response(Box::new(refusal(&error)));
                    return stream::once(future::ready(refused)).boxed();
                }
            };
            if let Some(live) = &live
                && let Some(items) = shared.join(&request, &identity, live)
            {
                return items.map(outcome).boxed();
            }
            let request = request
                .data(uncached_loaders(app.reads.clone(), Scope::of(&identity).ok()))
                .data(identity)
                .data(Arc::new(LoginBudget::default()));
            let request = match live {
                Some(live) => request.data(live),
                None => request,
            };
            Executor::execute_stream(&schema, request, session_data)
                .map(|response| Outcome::Response(Box::new(response)))
                .boxed()
        });
        stream::once(prepared).flatten().boxed()
    }
}

/// What the socket makes of a shared subscription's item.
fn outcome(item: SharedItem) -> Outcome {
    match item {
        SharedItem::Payload(payload) => Outcome::Shared(payload),
        SharedItem::Response(response) => Outcome::Response(response),
        SharedItem::TooFarBehind => Outcome::TooFarBehind,
    }
}

/// Authenticates an operation (a user action: it counts as activity): its
/// identity, its live view of the connection's identity (a logged-in
/// user's), and the request with the connection's credentials.
async fn prepare(
    app: &AppState,
    request: Request,
    authorization: Option<String>,
    watcher: &Watcher,
) -> Result<(Request, Identity, Option<LiveIdentity>), AppError> {
    let identity = authenticate(app, app.clock.now(), authorization.as_deref(), Activity::Record).await?;
    let live = match &identity {
        Identity::Rejected(reason) => return Err(AppError::Unauthenticated(reason.clone())),
        Identity::Ended(reason) => return Err(AppError::LoginSessionEnded(*reason)),
        Identity::NoAccess(reason) => return Err(AppError::Forbidden(reason.clone())),
        Identity::User(viewer) => Some(watcher.live(viewer.user_id)),
        Identity::Anonymous | Identity::Service(_) => None,
    };
    Ok((request.data(ConnectionCredentials(authorization)), identity, live))
}

/// A request error for a refused operation (sent as the protocol's `error`).
fn refusal(error: &AppError) -> GraphqlResponse {
    GraphqlResponse::from_errors(vec![error.extend().into_server_error(Pos::default())])
}

/// Authenticates a connection from its `connection_init` payload
/// (`{"Authorization": "Bearer <token>"}`, or `{"token": "<token>"}`).
/// Refused credentials refuse the connection (4403); no credentials give an
/// anonymous connection, whose operations then fail as UNAUTHENTICATED.
async fn connection_data(
    app: &AppState,
    payload: &Value,
    client: ClientInfo,
    credentials: &Mutex<Option<String>>,
    watcher: &Watcher,
) -> Result<Data, InitRejected> {
    let authorization = ["Authorization", "authorization"]
        .iter()
        .find_map(|key| payload.get(key).and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            payload
                .get("token")
                .and_then(Value::as_str)
                .map(|token| format!("Bearer {token}"))
        });
    let identity = authenticate(app, app.clock.now(), authorization.as_deref(), Activity::Record)
        .await
        .map_err(|error| InitRejected::new(error.message()))?;
    match &identity {
        Identity::Rejected(reason) | Identity::NoAccess(reason) => {
            return Err(InitRejected::new(reason.clone()));
        }
        Identity::Ended(reason) => {
            return Err(InitRejected::new(AppError::LoginSessionEnded(*reason).message()));
        }
        Identity::Anonymous | Identity::User(_) | Identity::Service(_) => {}
    }
    if let Some(authorization) = &authorization {
        watcher.start(&identity, authorization.clone());
    }
    *credentials.lock().unwrap_or_else(PoisonError::into_inner) = authorization;
    let mut data = Data::default();
    data.insert(client);
    Ok(data)
}
