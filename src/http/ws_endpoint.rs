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

use super::HttpState;
use super::graphql::client_info;
use super::ws_protocol::{self as ws, InitRejected, WsProtocol, WsSettings};
use crate::auth::Identity;
use crate::error::AppError;
use crate::graphql::loaders::uncached_loaders;
use crate::graphql::{AppSchema, AppState};
use crate::services::auth::{ClientInfo, LoginBudget, authenticate};
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
    };
    let max_message = server.ws_max_message_bytes;
    let app = state.app.clone();
    let client = client_info(&headers, peer, app.settings.server.trust_forwarded_headers);
    let credentials = Arc::new(Mutex::new(None));
    let executor = ReauthenticatingExecutor {
        schema: state.schema.clone(),
        app: app.clone(),
        credentials: credentials.clone(),
    };
    upgrade
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .protocols([protocol.as_str()])
        .on_upgrade(move |socket| {
            ws::serve(socket, protocol, executor, settings, move |payload| async move {
                connection_data(&app, &payload, client, &credentials).await
            })
        })
        .into_response()
}

pub use crate::auth::ConnectionCredentials;

/// Runs each WebSocket operation as the identity its connection's
/// credentials have *now*.
#[derive(Clone)]
struct ReauthenticatingExecutor {
    schema: AppSchema,
    app: AppState,
    credentials: Arc<Mutex<Option<String>>>,
}

impl ReauthenticatingExecutor {
    fn credentials(&self) -> Option<String> {
        self.credentials
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Executor for ReauthenticatingExecutor {
    async fn execute(&self, request: Request) -> GraphqlResponse {
        let authorization = self.credentials();
        match prepare(&self.app, request, authorization).await {
            Ok(request) => self.schema.execute(request).await,
            Err(error) => refusal(&error),
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, GraphqlResponse> {
        let (schema, app, authorization) = (self.schema.clone(), self.app.clone(), self.credentials());
        let prepared = async move {
            match prepare(&app, request, authorization).await {
                Ok(request) => Executor::execute_stream(&schema, request, session_data),
                Err(error) => stream::once(future::ready(refusal(&error))).boxed(),
            }
        };
        stream::once(prepared).flatten().boxed()
    }
}

/// Authenticates an operation and gives it its identity, scoped loaders and
/// the connection's credentials.
async fn prepare(
    app: &AppState,
    request: Request,
    authorization: Option<String>,
) -> Result<Request, AppError> {
    let identity = authenticate(app, app.clock.now(), authorization.as_deref()).await?;
    match &identity {
        Identity::Rejected(reason) => return Err(AppError::Unauthenticated(reason.clone())),
        Identity::NoAccess(reason) => return Err(AppError::Forbidden(reason.clone())),
        Identity::Anonymous | Identity::User(_) | Identity::Service(_) => {}
    }
    Ok(request
        .data(uncached_loaders(app.db.clone(), Scope::of(&identity).ok()))
        .data(identity)
        .data(Arc::new(LoginBudget::default()))
        .data(ConnectionCredentials(authorization)))
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
    let identity = authenticate(app, app.clock.now(), authorization.as_deref())
        .await
        .map_err(|error| InitRejected::new(error.message()))?;
    if let Identity::Rejected(reason) | Identity::NoAccess(reason) = &identity {
        return Err(InitRejected::new(reason.clone()));
    }
    *credentials.lock().unwrap_or_else(PoisonError::into_inner) = authorization;
    let mut data = Data::default();
    data.insert(client);
    Ok(data)
}
