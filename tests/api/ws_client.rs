//! A graphql-transport-ws client for the tests.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::helpers::TestApp;

/// A safety net only: in a passing test every awaited message arrives at once.
const PATIENCE: Duration = Duration::from_secs(10);

/// An initialised graphql-transport-ws connection.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Connects to `app` and initialises with `token` (anonymous when `None`).
    pub async fn connect(app: &TestApp, token: Option<&str>) -> Self {
        let mut request = app.ws_url().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        let (socket, _) = connect_async(request).await.unwrap();
        let mut client = Self { socket };
        let payload = token.map_or_else(
            || json!({}),
            |token| json!({ "Authorization": format!("Bearer {token}") }),
        );
        client
            .send_raw(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = client.receive().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        client
    }

    /// Sends a protocol message as it is.
    pub async fn send_raw(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// The next protocol message (pings answered, pongs skipped).
    pub async fn receive(&mut self) -> Value {
        match self.next_frame().await {
            Frame::Message(value) => value,
            Frame::Closed(frame) => panic!("the server closed the socket: {frame:?}"),
        }
    }

    /// Waits for the server to close the socket, answering pings and
    /// collecting what it sent first; returns those messages and the close
    /// frame's code and reason.
    pub async fn closed(&mut self) -> (Vec<Value>, u16, String) {
        let mut before = Vec::new();
        loop {
            match self.next_frame().await {
                Frame::Message(value) => before.push(value),
                Frame::Closed(Some(frame)) => {
                    return (before, u16::from(frame.code), frame.reason.to_string());
                }
                Frame::Closed(None) => panic!("a close frame without a code"),
            }
        }
    }

    /// The next protocol message or the close (pings answered, pongs skipped).
    async fn next_frame(&mut self) -> Frame {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .expect("a valid frame");
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    match value["type"].as_str() {
                        Some("ping") => self.send_raw(json!({ "type": "pong" })).await,
                        Some("pong") => {}
                        _ => return Frame::Message(value),
                    }
                }
                Message::Close(frame) => return Frame::Closed(frame),
                _ => {}
            }
        }
    }

    /// Starts an operation with id `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send_raw(
            json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }),
        )
        .await;
    }

    /// The payload of the next `next` message (of any operation), with its id.
    pub async fn next(&mut self) -> (String, Value) {
        let message = self.receive().await;
        assert_eq!(message["type"], "next", "expected a result: {message}");
        (
            message["id"].as_str().unwrap().to_owned(),
            message["payload"].clone(),
        )
    }

    /// The `data` of the next result, which must be of operation `id` and error-free.
    pub async fn next_data(&mut self, id: &str) -> Value {
        let (from, payload) = self.next().await;
        assert_eq!(from, id, "{payload}");
        assert!(payload.get("errors").is_none(), "{payload}");
        payload["data"].clone()
    }
}

/// What the server sent next.
enum Frame {
    /// A protocol message.
    Message(Value),
    /// The close frame.
    Closed(Option<CloseFrame>),
}

/// Waits until `app`'s event bus has `count` subscribers, so that what the
/// test does next is seen by every subscription it opened.
pub async fn wait_for_subscribers(app: &TestApp, count: usize) {
    tokio::time::timeout(PATIENCE, async {
        while app.state.events.subscriber_count() < app.baseline_subscribers + count {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the subscriptions are in place");
}
