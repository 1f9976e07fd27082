use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use session_manager::seed::seed_demo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A safety net only: every awaited message arrives at once in a passing test.
const PATIENCE: Duration = Duration::from_secs(10);

async fn connect(app: &TestApp, protocol: &str) -> Socket {
    let mut request = app.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (socket, response) = connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.unwrap();
}

/// The next text message as JSON, or the close code.
async fn receive(socket: &mut Socket) -> Result<Value, Option<u16>> {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message in time");
        match message {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|frame| u16::from(frame.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

async fn a_query_over_graphql_transport_ws_yields_next_then_complete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    seed_demo(&app.db).await.unwrap();
    let token = app.login("admin@demo.example", "demo-admin-pass").await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ sessions { edges { node { name modules { name } } } } }" } }),
    )
    .await;
    let next = receive(&mut socket).await.unwrap();
    assert_eq!(next["type"], "next");
    assert_eq!(next["id"], "1");
    assert_eq!(
        next["payload"]["data"]["sessions"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let complete = receive(&mut socket).await.unwrap();
    assert_eq!(complete, json!({ "id": "1", "type": "complete" }));
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "pong");
}

async fn an_invalid_operation_over_websocket_yields_an_error_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "a", "type": "subscribe", "payload": { "query": "{ nope }" } }),
    )
    .await;
    let error = receive(&mut socket).await.unwrap();
    assert_eq!(error["type"], "error");
    assert!(error["payload"][0]["message"].is_string(), "{error}");
}

async fn subscribing_before_init_closes_with_4401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ tenants { id } }" } }),
    )
    .await;
    assert_eq!(receive(&mut socket).await, Err(Some(4401)));
}

async fn no_connection_init_in_time_closes_with_4408(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.server.ws_connection_init_timeout_ms = 50
    })
    .await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    assert_eq!(receive(&mut socket).await, Err(Some(4408)));
}

async fn a_second_connection_init_closes_with_4429(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "connection_ack");
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(receive(&mut socket).await, Err(Some(4429)));
}

async fn an_unparsable_message_closes_with_4400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    socket.send(Message::text("{ not json")).await.unwrap();
    assert_eq!(receive(&mut socket).await, Err(Some(4400)));
}

async fn the_legacy_graphql_ws_protocol_is_spoken_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut socket = connect(&app, "graphql-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "7", "type": "start", "payload": { "query": "{ __typename }" } }),
    )
    .await;
    let mut data = None;
    loop {
        let message = receive(&mut socket).await.unwrap();
        match message["type"].as_str().unwrap() {
            "ka" => continue,
            "data" => data = Some(message),
            "complete" => break,
            other => panic!("unexpected {other}: {message}"),
        }
    }
    assert_eq!(data.unwrap()["payload"]["data"]["__typename"], "QueryRoot");
}

async fn an_unknown_subprotocol_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut request = app.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "chat".parse().unwrap());
    assert!(connect_async(request).await.is_err());
}

async fn refused_credentials_close_the_connection_with_4403(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer forged" } }),
    )
    .await;
    assert_eq!(receive(&mut socket).await, Err(Some(4403)));
}

async fn an_anonymous_connection_gets_unauthenticated_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "connection_ack");
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ sessions { edges { node { id } } } }" } })).await;
    let next = receive(&mut socket).await.unwrap();
    assert_eq!(
        next["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{next}"
    );
}

backend_tests!(
    refused_credentials_close_the_connection_with_4403,
    an_anonymous_connection_gets_unauthenticated_errors,
    a_query_over_graphql_transport_ws_yields_next_then_complete,
    an_invalid_operation_over_websocket_yields_an_error_message,
    subscribing_before_init_closes_with_4401,
    no_connection_init_in_time_closes_with_4408,
    a_second_connection_init_closes_with_4429,
    an_unparsable_message_closes_with_4400,
    the_legacy_graphql_ws_protocol_is_spoken_too,
    an_unknown_subprotocol_is_refused,
);
