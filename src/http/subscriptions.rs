//! `GET /graphql/ws`: GraphQL over WebSocket (graphql-transport-ws, and the
//! legacy graphql-ws subprotocol).

use std::time::Duration;

use async_graphql::Data;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use super::ws::{self, InitRejected, WsProtocol, WsSettings};
use crate::graphql::loaders::loaders;

/// Upgrades the connection and serves GraphQL operations over it.
pub async fn handler(
    State(state): State<HttpState>,
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
    let db = state.app.db.clone();
    upgrade
        .protocols([protocol.as_str()])
        .on_upgrade(move |socket| {
            ws::serve(socket, protocol, schema, settings, move |_payload| async move {
                let mut data = Data::default();
                data.insert(loaders(db));
                Ok::<_, InitRejected>(data)
            })
        })
        .into_response()
}
