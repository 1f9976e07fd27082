//! `GET /graphql/ws`: GraphQL over WebSocket (graphql-transport-ws, and the
//! legacy graphql-ws subprotocol).

use std::net::SocketAddr;
use std::time::Duration;

use async_graphql::Data;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::HttpState;
use super::graphql::client_info;
use super::ws::{self, InitRejected, WsProtocol, WsSettings};
use crate::auth::Identity;
use crate::graphql::AppState;
use crate::graphql::loaders::uncached_loaders;
use crate::services::auth::{ClientInfo, authenticate};
use crate::services::scope::Scope;

/// Upgrades the connection and serves GraphQL operations over it.
pub async fn handler(
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
    };
    let schema = state.schema.clone();
    let app = state.app.clone();
    let client = client_info(&headers, peer, app.settings.server.trust_forwarded_headers);
    upgrade
        .protocols([protocol.as_str()])
        .on_upgrade(move |socket| {
            ws::serve(socket, protocol, schema, settings, move |payload| async move {
                connection_data(&app, &payload, client).await
            })
        })
        .into_response()
}

/// Authenticates a connection from its `connection_init` payload
/// (`{"Authorization": "Bearer <token>"}`, or `{"token": "<token>"}`).
/// Refused credentials refuse the connection (4403); no credentials give an
/// anonymous connection, whose operations then fail as UNAUTHENTICATED.
async fn connection_data(app: &AppState, payload: &Value, client: ClientInfo) -> Result<Data, InitRejected> {
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
    let mut data = Data::default();
    data.insert(uncached_loaders(app.db.clone(), Scope::of(&identity).ok()));
    data.insert(identity);
    data.insert(client);
    Ok(data)
}
