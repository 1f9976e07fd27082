//! GraphQL over WebSocket, implemented on top of axum's [`WebSocket`] and an
//! [`Operations`] runner (async-graphql's [`Executor::execute_stream`], or
//! one that hands out results computed once for many subscribers).
//!
//! Two subprotocols are spoken:
//!
//! - [`graphql-transport-ws`](https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md)
//!   (the `graphql-ws` library), followed exactly, including its close codes
//!   (4400, 4401, 4403, 4408, 4409, 4429);
//! - the legacy `graphql-ws` subprotocol of
//!   [`subscriptions-transport-ws`](https://github.com/apollographql/subscriptions-transport-ws/blob/master/PROTOCOL.md).
//!
//! Each connection is served by a single task: the socket, the pending
//! `connection_init` callback, the keep-alive timer and every running
//! operation are polled from one `select!` loop. Operations are streams kept
//! in a [`SelectAll`], each wrapped in an [`Abortable`] so that a client
//! `complete`/`stop` drops it; when the connection ends every stream is
//! dropped before the closing handshake is awaited.
//!
//! Choices where the specifications leave room:
//!
//! - Binary frames are decoded as UTF-8 and handled like text frames (this is
//!   what the reference `graphql-ws` server does); a binary frame that is not
//!   UTF-8 is an invalid message.
//! - The `connection_init` timeout also applies to the legacy protocol (the
//!   server answers `connection_error` and closes), so that unauthenticated
//!   sockets cannot linger.
//! - `Duration::ZERO` disables the `connection_init` timeout, and the legacy
//!   keep-alive.
//! - No server pings are sent on `graphql-transport-ws`;
//!   [`WsSettings::keep_alive_interval`] only drives the legacy `ka` messages.
//! - A request error (the first result has no data and only errors without
//!   a `path`: parse/validation errors) is sent as `error` instead of
//!   `next`/`data`, and is not followed by `complete`.
//!
//! Legacy protocol specifics:
//!
//! - `start`/`stop` received while `on_init` runs are queued and replayed
//!   after `connection_ack` (legacy clients do not wait for the ack); a
//!   `start` before any `connection_init` is answered with `connection_error`
//!   and a close (1002), as is a second `connection_init`.
//! - A refused `connection_init` is answered with `connection_error`
//!   `{"message"}` and a close (1011), as the reference server does.
//! - The `error` payload is `{"message": <first error>, "errors": [...]}`.
//! - Malformed messages are answered with `connection_error` (or `error` when
//!   the message has an id) without closing, as the reference server does.
//! - A `start` reusing a running id replaces that operation (no `complete` is
//!   sent for the replaced one).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Data, Executor, Request, Response, ServerError};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::http::{HeaderMap, HeaderValue, header};
use futures_util::future::OptionFuture;
use futures_util::stream::{self, AbortHandle, Abortable, BoxStream, SelectAll};
use futures_util::{FutureExt as _, StreamExt as _};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use crate::graphql::wire::{WireResponse, is_request_error};

/// Longest close reason allowed by RFC 6455 (125-byte payload minus the code).
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// How long to wait for the client's half of the closing handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Legacy protocol: how many `start`/`stop` messages are buffered while the
/// `connection_init` callback runs.
const MAX_QUEUED_LEGACY_MESSAGES: usize = 64;

/// Close codes used by this module.
mod code {
    /// Normal closure.
    pub(super) const NORMAL: u16 = 1000;
    /// Protocol error (legacy protocol violations).
    pub(super) const PROTOCOL_ERROR: u16 = 1002;
    /// Internal error (legacy refused init, serialization failures).
    pub(super) const INTERNAL_ERROR: u16 = 1011;
    /// graphql-transport-ws: invalid message.
    pub(super) const BAD_REQUEST: u16 = 4400;
    /// graphql-transport-ws: `subscribe` before `connection_ack`.
    pub(super) const UNAUTHORIZED: u16 = 4401;
    /// graphql-transport-ws: `connection_init` refused.
    pub(super) const FORBIDDEN: u16 = 4403;
    /// graphql-transport-ws: no `connection_init` in time.
    pub(super) const INIT_TIMEOUT: u16 = 4408;
    /// graphql-transport-ws: duplicate operation id.
    pub(super) const SUBSCRIBER_EXISTS: u16 = 4409;
    /// graphql-transport-ws: second `connection_init`.
    pub(super) const TOO_MANY_INITS: u16 = 4429;
    /// Try again later: the client fell too far behind its results.
    pub(super) const TRY_AGAIN_LATER: u16 = 1013;
}

/// What an operation produces, one item at a time.
pub enum Outcome {
    /// A response of this operation alone (boxed: responses are large).
    Response(Box<Response>),
    /// A result computed once and shared by every subscriber it is for: the
    /// JSON of the GraphQL response, written to each socket as it is.
    Shared(Arc<RawValue>),
    /// The operation fell too far behind what it was given: the connection
    /// closes with 1013 ("try again later"), and the client resumes with
    /// `after` once reconnected.
    TooFarBehind,
}

/// Runs a connection's operations.
pub trait Operations: Send + Sync + 'static {
    /// The results of one operation, executed with the connection's data.
    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Outcome>;
}

/// Runs every operation by itself with an async-graphql [`Executor`].
pub struct Unshared<E>(pub E);

impl<E: Executor> Operations for Unshared<E> {
    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Outcome> {
        self.0
            .execute_stream(request, session_data)
            .map(|response| Outcome::Response(Box::new(response)))
            .boxed()
    }
}

/// Which GraphQL-over-WebSocket subprotocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WsProtocol {
    /// `graphql-transport-ws`, the protocol of the `graphql-ws` library.
    GraphqlTransportWs,
    /// Legacy `graphql-ws`, the protocol of `subscriptions-transport-ws`.
    GraphqlWs,
}

impl WsProtocol {
    /// Picks the protocol from the request's `Sec-WebSocket-Protocol` headers
    /// ("graphql-transport-ws" preferred, then legacy "graphql-ws"); `None`
    /// when neither is offered.
    ///
    /// Answer with the same protocol, e.g.
    /// `upgrade.protocols([protocol.as_str()])`.
    pub(crate) fn negotiate(headers: &HeaderMap) -> Option<Self> {
        Self::negotiate_offers(headers.get_all(header::SEC_WEBSOCKET_PROTOCOL))
    }

    /// Like [`negotiate`](Self::negotiate), from header values such as
    /// [`WebSocketUpgrade::requested_protocols`](axum::extract::ws::WebSocketUpgrade::requested_protocols).
    /// Each value may be a comma-separated list. Names are matched exactly
    /// (case-sensitively), as axum's `WebSocketUpgrade::protocols` does.
    pub(crate) fn negotiate_offers<'a, I>(offered: I) -> Option<Self>
    where
        I: IntoIterator<Item = &'a HeaderValue>,
    {
        let mut legacy = false;
        for value in offered {
            for token in value.as_bytes().split(|byte| *byte == b',') {
                match token.trim_ascii() {
                    b"graphql-transport-ws" => return Some(Self::GraphqlTransportWs),
                    b"graphql-ws" => legacy = true,
                    _ => {}
                }
            }
        }
        legacy.then_some(Self::GraphqlWs)
    }

    /// The header value to answer with.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::GraphqlTransportWs => "graphql-transport-ws",
            Self::GraphqlWs => "graphql-ws",
        }
    }
}

/// Why a `connection_init` was refused: the message goes to the client
/// (close reason on graphql-transport-ws, `connection_error` payload on the
/// legacy protocol), so it must not leak anything sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitRejected {
    /// Human-readable reason sent to the client.
    pub message: String,
}

impl InitRejected {
    /// A rejection with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Why and how the server ends a connection on its own account (the
/// connection's login session ended): every operation still running gets
/// `response` (its errors) and `complete`, then the socket closes.
pub struct Closing {
    /// The close code (4401 when the client is to log in again).
    pub code: u16,
    /// The close reason.
    pub reason: String,
    /// What an operation still running receives last.
    pub response: Response,
}

/// Resolves when the server is to end the connection.
pub type ClosingSignal = Pin<Box<dyn Future<Output = Closing> + Send>>;

/// How long operations get to end on their own (and send what they still
/// have) once the connection is closing.
const CLOSING_GRACE: Duration = Duration::from_secs(1);

/// Settings of a WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsSettings {
    /// How long the server waits for `connection_init` before closing the
    /// socket (4408 on graphql-transport-ws, `connection_error` on the legacy
    /// protocol). Counted until the message arrives, not until the
    /// `on_init` callback finishes. `Duration::ZERO` disables it.
    pub connection_init_timeout: Duration,
    /// Interval of the legacy protocol's `ka` messages (the first one is sent
    /// right after `connection_ack`). Unused by graphql-transport-ws.
    /// `Duration::ZERO` disables them.
    pub keep_alive_interval: Duration,
    /// Most operations running at once; one more is refused with an error
    /// message for its id (code `TOO_MANY_OPERATIONS`).
    pub max_operations: usize,
    /// How long one message may wait for the client to take it: a client
    /// that reads slower than its results arrive fills the socket's
    /// buffers, and is then disconnected with 1013 ("try again later"; it
    /// resumes with `after`) instead of holding its results in memory.
    /// `Duration::ZERO` disables it.
    pub send_timeout: Duration,
}

impl Default for WsSettings {
    /// 3 s to initialise (the `graphql-ws` default), `ka` every 15 s, 100
    /// operations at once, 10 s for a client to take a message.
    fn default() -> Self {
        Self {
            connection_init_timeout: Duration::from_secs(3),
            keep_alive_interval: Duration::from_secs(15),
            max_operations: 100,
            send_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves one upgraded WebSocket until it closes.
///
/// `on_init` receives the `connection_init` payload (`Value::Null` when the
/// client sent none) and returns the per-connection [`Data`] that every
/// operation of this connection is executed with (as session data), or
/// refuses the connection. It runs concurrently with the socket, so pings
/// are still answered while it is pending.
///
/// `closing` ends the connection from the server's side (see [`Closing`]).
pub async fn serve<E, F, Fut>(
    socket: WebSocket,
    protocol: WsProtocol,
    executor: E,
    settings: WsSettings,
    on_init: F,
    closing: ClosingSignal,
) where
    E: Operations,
    F: FnOnce(Value) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Data, InitRejected>> + Send + 'static,
{
    tracing::debug!(protocol = protocol.as_str(), "websocket connection opened");
    let mut connection = Connection {
        socket,
        protocol,
        executor,
        keep_alive_interval: settings.keep_alive_interval,
        max_operations: settings.max_operations,
        send_timeout: settings.send_timeout,
        on_init: Some(on_init),
        init: InitState::AwaitingInit,
        init_future: None,
        init_deadline: (!settings.connection_init_timeout.is_zero())
            .then(|| Box::pin(tokio::time::sleep(settings.connection_init_timeout))),
        data: None,
        keep_alive: None,
        operations: HashMap::new(),
        streams: SelectAll::new(),
        next_generation: 0,
        queued: VecDeque::new(),
        closing,
    };
    let exit = connection.run().await;
    // Drops every running operation (and the init callback) before the
    // closing handshake, so that their resources are released promptly.
    let mut socket = connection.into_socket();
    match exit {
        Exit::Close { code, reason } => {
            tracing::debug!(code, "closing websocket connection");
            let frame = CloseFrame {
                code,
                reason: truncate_close_reason(&reason).into(),
            };
            // Bounded: a client that stopped reading may never take it.
            let sent = tokio::time::timeout(CLOSE_GRACE, socket.send(Message::Close(Some(frame)))).await;
            if matches!(sent, Ok(Ok(()))) {
                drain(&mut socket).await;
            }
        }
        Exit::ClientClosed => {
            tracing::debug!("websocket connection closed by the client");
            // Flushes the automatic reply to the client's close frame.
            drain(&mut socket).await;
        }
        Exit::Broken => tracing::debug!("websocket connection lost"),
    }
}

/// Reads until the closing handshake completes (bounded by [`CLOSE_GRACE`]).
async fn drain(socket: &mut WebSocket) {
    let read_all = async { while let Some(Ok(_)) = socket.recv().await {} };
    if tokio::time::timeout(CLOSE_GRACE, read_all).await.is_err() {
        tracing::debug!("client did not complete the closing handshake");
    }
}

/// Cuts a close reason to the 123 bytes allowed, on a character boundary.
fn truncate_close_reason(reason: &str) -> String {
    let mut end = reason.len().min(MAX_CLOSE_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.get(..end).unwrap_or_default().to_owned()
}

/// How the connection loop ended.
enum Exit {
    /// Send this close frame, then wait for the client's.
    Close {
        /// Close code.
        code: u16,
        /// Close reason (truncated when sent).
        reason: String,
    },
    /// The client sent a close frame.
    ClientClosed,
    /// The socket failed or ended without a closing handshake.
    Broken,
}

impl Exit {
    /// An [`Exit::Close`].
    fn close(code: u16, reason: impl Into<String>) -> Self {
        Self::Close {
            code,
            reason: reason.into(),
        }
    }
}

/// `Err` ends the connection.
type Flow = Result<(), Exit>;

/// Where the connection is in the `connection_init` handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InitState {
    /// No `connection_init` received yet.
    AwaitingInit,
    /// `on_init` is running.
    Pending,
    /// `connection_ack` sent.
    Acknowledged,
}

/// An item of an operation stream, tagged with the operation it belongs to.
enum OpEvent {
    /// A result.
    Next {
        /// Client-chosen id.
        id: Arc<str>,
        /// Distinguishes reuses of the same id.
        generation: u64,
        /// The result.
        outcome: Outcome,
    },
    /// The stream ended (or was aborted).
    End {
        /// Client-chosen id.
        id: Arc<str>,
        /// Distinguishes reuses of the same id.
        generation: u64,
    },
}

/// A running operation.
struct Operation {
    /// Matches the [`OpEvent`]s of this run of the id.
    generation: u64,
    /// Stops the stream (it is dropped the next time it is polled).
    abort: AbortHandle,
    /// Whether a result was already sent (request errors only come first).
    produced: bool,
}

/// One step of the connection loop.
enum Step {
    /// A socket read.
    Socket(Option<Result<Message, axum::Error>>),
    /// `on_init` finished.
    Init(Result<Data, InitRejected>),
    /// An operation produced something.
    Op(OpEvent),
    /// Time for a legacy `ka`.
    KeepAlive,
    /// No `connection_init` in time.
    InitTimeout,
    /// The server ends the connection.
    Closing(Box<Closing>),
}

/// State of one connection.
struct Connection<E, F, Fut> {
    /// The socket.
    socket: WebSocket,
    /// The subprotocol spoken.
    protocol: WsProtocol,
    /// Runs the operations.
    executor: E,
    /// Legacy `ka` interval.
    keep_alive_interval: Duration,
    max_operations: usize,
    /// See [`WsSettings::send_timeout`].
    send_timeout: Duration,
    /// Taken by the first `connection_init`.
    on_init: Option<F>,
    /// Handshake state.
    init: InitState,
    /// The running `on_init`.
    init_future: Option<Pin<Box<Fut>>>,
    /// Fires when `connection_init` is late; `None` when disabled.
    init_deadline: Option<Pin<Box<Sleep>>>,
    /// Per-connection data, set on acknowledgement.
    data: Option<Arc<Data>>,
    /// Legacy `ka` timer, started on acknowledgement.
    keep_alive: Option<Interval>,
    /// Running operations by id.
    operations: HashMap<Arc<str>, Operation>,
    /// The streams of the running operations.
    streams: SelectAll<BoxStream<'static, OpEvent>>,
    /// Next operation generation.
    next_generation: u64,
    /// Legacy `start`/`stop` received while `on_init` runs.
    queued: VecDeque<LegacyMessage>,
    /// Resolves when the server ends the connection.
    closing: ClosingSignal,
}

impl<E, F, Fut> Connection<E, F, Fut>
where
    E: Operations,
    F: FnOnce(Value) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Data, InitRejected>> + Send + 'static,
{
    /// Gives the socket back, dropping everything else.
    fn into_socket(self) -> WebSocket {
        self.socket
    }

    /// The connection loop.
    async fn run(&mut self) -> Exit {
        loop {
            let awaiting_init = self.init == InitState::AwaitingInit;
            let step = tokio::select! {
                biased;
                Some(()) = OptionFuture::from(self.init_deadline.as_mut()), if awaiting_init => {
                    Step::InitTimeout
                }
                message = self.socket.recv() => Step::Socket(message),
                Some(result) = OptionFuture::from(self.init_future.as_mut()) => Step::Init(result),
                Some(_) = OptionFuture::from(self.keep_alive.as_mut().map(Interval::tick)) => {
                    Step::KeepAlive
                }
                Some(event) = self.streams.next(), if !self.streams.is_empty() => Step::Op(event),
                closing = &mut self.closing => Step::Closing(Box::new(closing)),
            };
            // The handlers of what seldom happens are boxed: a connection
            // spends its life waiting here, and the size of what it waits
            // in is what each idle connection costs.
            let flow = match step {
                Step::Socket(message) => Box::pin(self.on_socket(message)).await,
                Step::Init(result) => {
                    self.init_future = None;
                    Box::pin(self.on_init_done(result)).await
                }
                Step::Op(event) => self.on_op_event(event).await,
                Step::KeepAlive => self.send(&ServerMessage::KeepAlive).await,
                Step::InitTimeout => self.on_init_timeout().await,
                Step::Closing(closing) => Box::pin(self.on_closing(*closing)).await,
            };
            if let Err(exit) = flow {
                return exit;
            }
        }
    }

    /// Handles a socket read.
    async fn on_socket(&mut self, message: Option<Result<Message, axum::Error>>) -> Flow {
        match message {
            None => Err(Exit::Broken),
            Some(Err(error)) => {
                tracing::debug!(%error, "websocket read failed");
                Err(Exit::Broken)
            }
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
            Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_text(text).await,
                Err(_) => self.on_invalid("Invalid message received").await,
            },
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
            Some(Ok(Message::Close(_))) => Err(Exit::ClientClosed),
        }
    }

    /// Handles a text message.
    async fn on_text(&mut self, text: &str) -> Flow {
        match self.protocol {
            WsProtocol::GraphqlTransportWs => match parse_transport_message(text) {
                Ok(message) => self.on_transport_message(message).await,
                Err(reason) => Err(Exit::close(code::BAD_REQUEST, reason)),
            },
            WsProtocol::GraphqlWs => match parse_legacy_message(text) {
                Ok(message) => self.on_legacy_message(message).await,
                Err(LegacyInvalid::Connection(message)) => {
                    self.send(&ServerMessage::ConnectionError {
                        payload: MessagePayload { message: &message },
                    })
                    .await
                }
                Err(LegacyInvalid::Operation { id, message }) => {
                    self.send(&ServerMessage::LegacyError {
                        id: id.as_deref(),
                        payload: LegacyErrorPayload {
                            message: &message,
                            errors: &[],
                        },
                    })
                    .await
                }
            },
        }
    }

    /// Handles a frame that is not a message at all.
    async fn on_invalid(&mut self, reason: &str) -> Flow {
        match self.protocol {
            WsProtocol::GraphqlTransportWs => Err(Exit::close(code::BAD_REQUEST, reason)),
            WsProtocol::GraphqlWs => {
                self.send(&ServerMessage::ConnectionError {
                    payload: MessagePayload { message: reason },
                })
                .await
            }
        }
    }

    /// Handles a `connection_init` payload: starts `on_init`.
    fn start_init(&mut self, payload: Value) {
        if let Some(on_init) = self.on_init.take() {
            self.init = InitState::Pending;
            self.init_deadline = None;
            self.init_future = Some(Box::pin(on_init(payload)));
        }
    }

    /// The `connection_init` deadline passed.
    async fn on_init_timeout(&mut self) -> Flow {
        const REASON: &str = "Connection initialisation timeout";
        match self.protocol {
            WsProtocol::GraphqlTransportWs => Err(Exit::close(code::INIT_TIMEOUT, REASON)),
            WsProtocol::GraphqlWs => {
                self.send(&ServerMessage::ConnectionError {
                    payload: MessagePayload { message: REASON },
                })
                .await?;
                Err(Exit::close(code::PROTOCOL_ERROR, REASON))
            }
        }
    }

    /// `on_init` finished.
    async fn on_init_done(&mut self, result: Result<Data, InitRejected>) -> Flow {
        let data = match result {
            Ok(data) => data,
            Err(rejected) => {
                tracing::debug!("connection_init refused");
                return match self.protocol {
                    WsProtocol::GraphqlTransportWs => {
                        let reason = if rejected.message.is_empty() {
                            "Forbidden".to_owned()
                        } else {
                            format!("Forbidden: {}", rejected.message)
                        };
                        Err(Exit::close(code::FORBIDDEN, reason))
                    }
                    WsProtocol::GraphqlWs => {
                        self.send(&ServerMessage::ConnectionError {
                            payload: MessagePayload {
                                message: &rejected.message,
                            },
                        })
                        .await?;
                        Err(Exit::close(code::INTERNAL_ERROR, rejected.message))
                    }
                };
            }
        };
        self.data = Some(Arc::new(data));
        self.init = InitState::Acknowledged;
        self.send(&ServerMessage::ConnectionAck).await?;
        if self.protocol == WsProtocol::GraphqlWs {
            self.start_keep_alive().await?;
            while let Some(message) = self.queued.pop_front() {
                match message {
                    LegacyMessage::Start { id, request } => self.legacy_start(id, request).await?,
                    LegacyMessage::Stop { id } => self.legacy_stop(&id).await?,
                    LegacyMessage::ConnectionInit(_) | LegacyMessage::ConnectionTerminate => {}
                }
            }
        }
        Ok(())
    }

    /// Sends the first legacy `ka` and starts the timer for the next ones.
    async fn start_keep_alive(&mut self) -> Flow {
        let period = self.keep_alive_interval;
        if period.is_zero() {
            return Ok(());
        }
        self.send(&ServerMessage::KeepAlive).await?;
        if let Some(start) = Instant::now().checked_add(period) {
            let mut interval = tokio::time::interval_at(start, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            self.keep_alive = Some(interval);
        }
        Ok(())
    }

    /// Handles a graphql-transport-ws message.
    async fn on_transport_message(&mut self, message: TransportMessage) -> Flow {
        match message {
            TransportMessage::ConnectionInit(payload) => {
                if self.init != InitState::AwaitingInit {
                    return Err(Exit::close(
                        code::TOO_MANY_INITS,
                        "Too many initialisation requests",
                    ));
                }
                self.start_init(payload);
                Ok(())
            }
            TransportMessage::Ping(payload) => self.send(&ServerMessage::Pong { payload }).await,
            TransportMessage::Pong => Ok(()),
            TransportMessage::Subscribe { id, request } => {
                let Some(data) = self.data.clone() else {
                    return Err(Exit::close(code::UNAUTHORIZED, "Unauthorized"));
                };
                if self.operations.contains_key(id.as_str()) {
                    return Err(Exit::close(
                        code::SUBSCRIBER_EXISTS,
                        format!("Subscriber for {id} already exists"),
                    ));
                }
                if self.operations.len() >= self.max_operations {
                    return self.refuse_operation(&id).await;
                }
                self.start_operation(id.into(), *request, data);
                Ok(())
            }
            TransportMessage::Complete { id } => {
                // No `complete` goes back: the client asked for it.
                self.stop_operation(&id);
                Ok(())
            }
        }
    }

    /// Handles a legacy message.
    async fn on_legacy_message(&mut self, message: LegacyMessage) -> Flow {
        match (message, self.init) {
            (LegacyMessage::ConnectionInit(payload), InitState::AwaitingInit) => {
                self.start_init(payload);
                Ok(())
            }
            (LegacyMessage::ConnectionInit(_), _) => {
                self.legacy_fatal(code::PROTOCOL_ERROR, "Too many initialisation requests")
                    .await
            }
            (LegacyMessage::ConnectionTerminate, _) => Err(Exit::close(code::NORMAL, "")),
            (LegacyMessage::Start { .. }, InitState::AwaitingInit) => {
                self.legacy_fatal(code::PROTOCOL_ERROR, "Connection not initialised")
                    .await
            }
            (LegacyMessage::Stop { .. }, InitState::AwaitingInit) => Ok(()),
            (message @ (LegacyMessage::Start { .. } | LegacyMessage::Stop { .. }), InitState::Pending) => {
                // Legacy clients send `start` right after `connection_init`,
                // without waiting for the ack: replay them once acknowledged.
                if self.queued.len() >= MAX_QUEUED_LEGACY_MESSAGES {
                    return self
                        .legacy_fatal(code::PROTOCOL_ERROR, "Too many messages before connection_ack")
                        .await;
                }
                self.queued.push_back(message);
                Ok(())
            }
            (LegacyMessage::Start { id, request }, InitState::Acknowledged) => {
                self.legacy_start(id, request).await
            }
            (LegacyMessage::Stop { id }, InitState::Acknowledged) => self.legacy_stop(&id).await,
        }
    }

    /// Sends `connection_error` and closes.
    async fn legacy_fatal(&mut self, code: u16, message: &str) -> Flow {
        self.send(&ServerMessage::ConnectionError {
            payload: MessagePayload { message },
        })
        .await?;
        Err(Exit::close(code, message))
    }

    /// Legacy `start` once acknowledged. A running operation with the same id
    /// is replaced (as the reference server does), without a `complete`.
    async fn legacy_start(&mut self, id: String, request: Result<Box<Request>, String>) -> Flow {
        self.stop_operation(&id);
        let request = match request {
            Ok(request) => request,
            Err(message) => {
                return self
                    .send(&ServerMessage::LegacyError {
                        id: Some(&id),
                        payload: LegacyErrorPayload {
                            message: &message,
                            errors: &[],
                        },
                    })
                    .await;
            }
        };
        if self.operations.len() >= self.max_operations {
            return self.refuse_operation(&id).await;
        }
        if let Some(data) = self.data.clone() {
            self.start_operation(id.into(), *request, data);
        }
        Ok(())
    }

    /// Refuses an operation beyond [`WsSettings::max_operations`].
    async fn refuse_operation(&mut self, id: &str) -> Flow {
        let message = format!(
            "at most {} operations may run at once on one connection; complete one first",
            self.max_operations
        );
        let errors = [crate::graphql::limits::coded_error(
            message.as_str(),
            "TOO_MANY_OPERATIONS",
        )];
        let reply = match self.protocol {
            WsProtocol::GraphqlTransportWs => ServerMessage::Error { id, payload: &errors },
            WsProtocol::GraphqlWs => ServerMessage::LegacyError {
                id: Some(id),
                payload: LegacyErrorPayload {
                    message: &message,
                    errors: &errors,
                },
            },
        };
        self.send(&reply).await
    }

    /// Legacy `stop`: stops the operation and confirms with `complete`.
    async fn legacy_stop(&mut self, id: &str) -> Flow {
        if self.stop_operation(id) {
            self.send(&ServerMessage::Complete { id }).await
        } else {
            Ok(())
        }
    }

    /// Starts executing an operation.
    fn start_operation(&mut self, id: Arc<str>, request: Request, data: Arc<Data>) {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let (results, abort) = stream::abortable(self.executor.execute_stream(request, Some(data)));
        let events = tag_results(results, Arc::clone(&id), generation);
        self.streams.push(events);
        self.operations.insert(
            id,
            Operation {
                generation,
                abort,
                produced: false,
            },
        );
    }

    /// Stops an operation; whether it was running.
    fn stop_operation(&mut self, id: &str) -> bool {
        match self.operations.remove(id) {
            Some(operation) => {
                operation.abort.abort();
                true
            }
            None => false,
        }
    }

    /// Ends the connection from the server's side: the operations get a
    /// moment to end on their own (sending what they still have), those
    /// still running get the closing response and `complete`, then the
    /// socket closes with the closing code.
    async fn on_closing(&mut self, closing: Closing) -> Flow {
        let grace = tokio::time::sleep(CLOSING_GRACE);
        tokio::pin!(grace);
        while !self.operations.is_empty() {
            tokio::select! {
                biased;
                Some(event) = self.streams.next() => self.on_op_event(event).await?,
                () = &mut grace => break,
            }
        }
        let running: Vec<Arc<str>> = self.operations.keys().cloned().collect();
        for id in running {
            self.stop_operation(&id);
            let last = match self.protocol {
                WsProtocol::GraphqlTransportWs => ServerMessage::Next {
                    id: &id,
                    payload: Payload::Response(WireResponse::new(&closing.response)),
                },
                WsProtocol::GraphqlWs => ServerMessage::Data {
                    id: &id,
                    payload: Payload::Response(WireResponse::new(&closing.response)),
                },
            };
            self.send(&last).await?;
            self.send(&ServerMessage::Complete { id: &id }).await?;
        }
        Err(Exit::close(closing.code, closing.reason))
    }

    /// Forwards a result or the end of an operation.
    async fn on_op_event(&mut self, event: OpEvent) -> Flow {
        match event {
            OpEvent::Next {
                id,
                generation,
                outcome,
            } => {
                let Some(operation) = self.operations.get_mut(&id) else {
                    return Ok(());
                };
                if operation.generation != generation {
                    return Ok(());
                }
                let response = match outcome {
                    Outcome::Response(response) => response,
                    Outcome::Shared(payload) => {
                        operation.produced = true;
                        let payload = Payload::Shared(&payload);
                        let message = match self.protocol {
                            WsProtocol::GraphqlTransportWs => ServerMessage::Next { id: &id, payload },
                            WsProtocol::GraphqlWs => ServerMessage::Data { id: &id, payload },
                        };
                        return self.send(&message).await;
                    }
                    Outcome::TooFarBehind => return Err(too_far_behind()),
                };
                if !operation.produced && is_request_error(&response) {
                    // The operation failed before executing: `error`, no `complete`.
                    self.stop_operation(&id);
                    let message = match self.protocol {
                        WsProtocol::GraphqlTransportWs => ServerMessage::Error {
                            id: &id,
                            payload: &response.errors,
                        },
                        WsProtocol::GraphqlWs => ServerMessage::LegacyError {
                            id: Some(&id),
                            payload: LegacyErrorPayload {
                                message: response
                                    .errors
                                    .first()
                                    .map_or("Request error", |error| error.message.as_str()),
                                errors: &response.errors,
                            },
                        },
                    };
                    return self.send(&message).await;
                }
                operation.produced = true;
                let payload = Payload::Response(WireResponse::new(&response));
                let message = match self.protocol {
                    WsProtocol::GraphqlTransportWs => ServerMessage::Next { id: &id, payload },
                    WsProtocol::GraphqlWs => ServerMessage::Data { id: &id, payload },
                };
                self.send(&message).await
            }
            OpEvent::End { id, generation } => {
                let current = self
                    .operations
                    .get(&id)
                    .is_some_and(|operation| operation.generation == generation);
                if !current {
                    // Stopped by the client (or replaced): nothing to say.
                    return Ok(());
                }
                self.operations.remove(&id);
                self.send(&ServerMessage::Complete { id: &id }).await
            }
        }
    }

    /// Sends a message as a text frame.
    async fn send(&mut self, message: &ServerMessage<'_>) -> Flow {
        let text = match serde_json::to_string(message) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(%error, "cannot serialize a websocket message");
                return Err(Exit::close(code::INTERNAL_ERROR, "Internal server error"));
            }
        };
        let sent = self.socket.send(Message::Text(text.into()));
        let sent = if self.send_timeout.is_zero() {
            sent.await
        } else {
            match tokio::time::timeout(self.send_timeout, sent).await {
                Ok(sent) => sent,
                Err(_) => {
                    tracing::info!("websocket client too slow to take its messages: disconnected");
                    return Err(too_far_behind());
                }
            }
        };
        match sent {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::debug!(%error, "websocket write failed");
                Err(Exit::Broken)
            }
        }
    }
}

/// The end of a connection whose client fell too far behind its results.
fn too_far_behind() -> Exit {
    Exit::close(
        code::TRY_AGAIN_LATER,
        "too far behind: reconnect, and resume with `after`",
    )
}

/// Tags the results of an operation and appends an end marker.
fn tag_results(
    results: Abortable<BoxStream<'static, Outcome>>,
    id: Arc<str>,
    generation: u64,
) -> BoxStream<'static, OpEvent> {
    let end_id = Arc::clone(&id);
    results
        .map(move |outcome| OpEvent::Next {
            id: Arc::clone(&id),
            generation,
            outcome,
        })
        .chain(
            async move {
                OpEvent::End {
                    id: end_id,
                    generation,
                }
            }
            .into_stream(),
        )
        .boxed()
}

/// Messages sent to the client.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    /// Both protocols.
    ConnectionAck,
    /// Legacy: connection-level error.
    ConnectionError {
        /// `{message}`.
        payload: MessagePayload<'a>,
    },
    /// Legacy keep-alive.
    #[serde(rename = "ka")]
    KeepAlive,
    /// graphql-transport-ws: answer to `ping`.
    Pong {
        /// Echo of the ping's payload.
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<Map<String, Value>>,
    },
    /// graphql-transport-ws: a result.
    Next {
        /// Operation id.
        id: &'a str,
        /// The GraphQL response.
        payload: Payload<'a>,
    },
    /// Legacy: a result.
    Data {
        /// Operation id.
        id: &'a str,
        /// The GraphQL response.
        payload: Payload<'a>,
    },
    /// graphql-transport-ws: request error.
    Error {
        /// Operation id.
        id: &'a str,
        /// The GraphQL errors.
        payload: &'a [ServerError],
    },
    /// Legacy: operation error.
    #[serde(rename = "error")]
    LegacyError {
        /// Operation id, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        /// `{message, errors?}`.
        payload: LegacyErrorPayload<'a>,
    },
    /// Both protocols: the operation ended.
    Complete {
        /// Operation id.
        id: &'a str,
    },
}

/// A GraphQL response to send: this operation's own, or one serialized
/// once for many.
#[derive(Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    /// Serialized here.
    Response(WireResponse<'a>),
    /// Already JSON.
    Shared(&'a RawValue),
}

/// `{"message": …}`.
#[derive(Serialize)]
struct MessagePayload<'a> {
    /// The message.
    message: &'a str,
}

/// Payload of a legacy `error`: an `Error` object (`message`) that also
/// carries the GraphQL errors, which Apollo's legacy client unwraps.
#[derive(Serialize)]
struct LegacyErrorPayload<'a> {
    /// The first error's message.
    message: &'a str,
    /// All GraphQL errors.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ServerError],
}

/// A valid graphql-transport-ws client message.
enum TransportMessage {
    /// `connection_init` with its payload (`Null` if absent).
    ConnectionInit(Value),
    /// `ping` with its payload.
    Ping(Option<Map<String, Value>>),
    /// `pong`.
    Pong,
    /// `subscribe`.
    Subscribe {
        /// Operation id.
        id: String,
        /// The GraphQL request.
        request: Box<Request>,
    },
    /// `complete`.
    Complete {
        /// Operation id.
        id: String,
    },
}

/// Parses and validates a graphql-transport-ws message; `Err` is the 4400
/// close reason.
fn parse_transport_message(text: &str) -> Result<TransportMessage, String> {
    let mut object = parse_object(text)?;
    let kind = match object.get("type") {
        Some(Value::String(kind)) if !kind.is_empty() => kind.clone(),
        None | Some(Value::Null) => return Err("Message is missing the 'type' property".into()),
        Some(other) => {
            return Err(format!(
                "Message expects the 'type' property to be a string, but got {}",
                json_type(other)
            ));
        }
    };
    match kind.as_str() {
        "connection_init" => Ok(TransportMessage::ConnectionInit(
            optional_object(&mut object, &kind, "payload")?.map_or(Value::Null, Value::Object),
        )),
        "ping" => Ok(TransportMessage::Ping(optional_object(
            &mut object,
            &kind,
            "payload",
        )?)),
        "pong" => {
            optional_object(&mut object, &kind, "payload")?;
            Ok(TransportMessage::Pong)
        }
        "subscribe" => {
            let id = required_id(&object, &kind)?;
            let payload = match object.remove("payload") {
                Some(Value::Object(payload)) => payload,
                other => {
                    return Err(format!(
                        "\"{kind}\" message expects the 'payload' property to be an object, but got {}",
                        json_type_of(other.as_ref())
                    ));
                }
            };
            let request = parse_request(payload, &kind)?;
            Ok(TransportMessage::Subscribe {
                id,
                request: Box::new(request),
            })
        }
        "complete" => Ok(TransportMessage::Complete {
            id: required_id(&object, &kind)?,
        }),
        "connection_ack" | "next" | "error" => Err(format!("Unexpected message of type {kind} received")),
        _ => Err(format!("Invalid message 'type' property \"{kind}\"")),
    }
}

/// A legacy client message.
enum LegacyMessage {
    /// `connection_init` with its payload (`Null` if absent).
    ConnectionInit(Value),
    /// `start`; `Err` describes an invalid payload.
    Start {
        /// Operation id.
        id: String,
        /// The GraphQL request (boxed: requests are large).
        request: Result<Box<Request>, String>,
    },
    /// `stop`.
    Stop {
        /// Operation id.
        id: String,
    },
    /// `connection_terminate`.
    ConnectionTerminate,
}

/// An invalid legacy message, answered without closing (as the reference
/// server does).
enum LegacyInvalid {
    /// Answered with `connection_error`.
    Connection(String),
    /// Answered with `error`.
    Operation {
        /// The message's id, if it had one.
        id: Option<String>,
        /// What is wrong.
        message: String,
    },
}

/// Parses a legacy message.
fn parse_legacy_message(text: &str) -> Result<LegacyMessage, LegacyInvalid> {
    let mut object = parse_object(text).map_err(LegacyInvalid::Connection)?;
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => {
            return Err(LegacyInvalid::Connection(
                "Message is missing a string 'type' property".into(),
            ));
        }
    };
    match kind.as_str() {
        "connection_init" => Ok(LegacyMessage::ConnectionInit(
            object.remove("payload").unwrap_or(Value::Null),
        )),
        "connection_terminate" => Ok(LegacyMessage::ConnectionTerminate),
        "start" => {
            let id = required_id(&object, &kind).map_err(LegacyInvalid::Connection)?;
            let request = match object.remove("payload") {
                Some(Value::Object(payload)) => parse_request(payload, &kind).map(Box::new),
                other => Err(format!(
                    "\"{kind}\" message expects the 'payload' property to be an object, but got {}",
                    json_type_of(other.as_ref())
                )),
            };
            Ok(LegacyMessage::Start { id, request })
        }
        "stop" => Ok(LegacyMessage::Stop {
            id: required_id(&object, &kind).map_err(LegacyInvalid::Connection)?,
        }),
        _ => Err(LegacyInvalid::Operation {
            id: match object.remove("id") {
                Some(Value::String(id)) => Some(id),
                _ => None,
            },
            message: "Invalid message type".into(),
        }),
    }
}

/// Parses a JSON object.
fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(format!(
            "Message is expected to be an object, but got {}",
            json_type(&other)
        )),
        Err(_) => Err("Invalid message received: not valid JSON".into()),
    }
}

/// A non-empty string `id`.
fn required_id(object: &Map<String, Value>, kind: &str) -> Result<String, String> {
    match object.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        Some(Value::String(_)) => Err(format!("\"{kind}\" message requires a non-empty 'id' property")),
        other => Err(format!(
            "\"{kind}\" message expects the 'id' property to be a string, but got {}",
            json_type_of(other)
        )),
    }
}

/// An optional (object, null or missing) property.
fn optional_object(
    object: &mut Map<String, Value>,
    kind: &str,
    field: &str,
) -> Result<Option<Map<String, Value>>, String> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(value)) => Ok(Some(value)),
        Some(other) => Err(format!(
            "\"{kind}\" message expects the '{field}' property to be an object or nullish or missing, but got {}",
            json_type(&other)
        )),
    }
}

/// Validates a `subscribe`/`start` payload and turns it into a [`Request`].
fn parse_request(payload: Map<String, Value>, kind: &str) -> Result<Request, String> {
    let check = |field: &str, ok: fn(&Value) -> bool, expected: &str| match payload.get(field) {
        Some(value) if !ok(value) => Err(format!(
            "\"{kind}\" message expects the '{field}' property to be {expected}, but got {}",
            json_type(value)
        )),
        _ => Ok(()),
    };
    if !matches!(payload.get("query"), Some(Value::String(_))) {
        return Err(format!(
            "\"{kind}\" message expects the 'query' property to be a string, but got {}",
            json_type_of(payload.get("query"))
        ));
    }
    check(
        "variables",
        |value| value.is_null() || value.is_object(),
        "an object or nullish or missing",
    )?;
    check(
        "operationName",
        |value| value.is_null() || value.is_string(),
        "a string or nullish or missing",
    )?;
    check(
        "extensions",
        |value| value.is_null() || value.is_object(),
        "an object or nullish or missing",
    )?;
    serde_json::from_value(Value::Object(payload))
        .map_err(|error| format!("\"{kind}\" message has an invalid payload: {error}"))
}

/// JSON type name of a value.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// JSON type name of a possibly missing value.
fn json_type_of(value: Option<&Value>) -> &'static str {
    value.map_or("undefined", json_type)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use async_graphql::{Context, Data, EmptyMutation, Object, Schema, Subscription};
    use axum::Router;
    use axum::extract::{State, WebSocketUpgrade};
    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::serve::ListenerExt as _;
    use futures_util::{SinkExt as _, Stream, StreamExt as _, stream};
    use serde_json::{Value, json};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};

    use super::*;

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;
    type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;
    type TestSchema = Schema<Query, EmptyMutation, SubscriptionRoot>;

    /// Safety net for every await on the socket; tests never sleep.
    const WAIT: Duration = Duration::from_secs(5);
    const TRANSPORT: &str = "graphql-transport-ws";
    const LEGACY: &str = "graphql-ws";

    /// What `on_init` stores for the resolvers.
    struct Token(String);

    /// Notifies the test when a `forever` stream is dropped.
    struct DropGuard(mpsc::UnboundedSender<()>);

    impl Drop for DropGuard {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    /// Schema data: where `forever` streams report their drop.
    struct Dropped(mpsc::UnboundedSender<()>);

    struct Query;

    #[Object(serial)]
    impl Query {
        async fn hello(&self) -> &str {
            "world"
        }

        async fn token(&self, ctx: &Context<'_>) -> Option<String> {
            ctx.data_opt::<Token>().map(|token| token.0.clone())
        }
    }

    struct SubscriptionRoot;

    #[Subscription]
    impl SubscriptionRoot {
        async fn numbers(&self, count: i32) -> impl Stream<Item = i32> {
            stream::iter(1..=count)
        }

        /// Strings of `size` bytes, without end (until dropped).
        async fn flood(&self, ctx: &Context<'_>, size: usize) -> impl Stream<Item = String> {
            let guard = ctx
                .data_opt::<Dropped>()
                .map(|dropped| DropGuard(dropped.0.clone()));
            let chunk = "x".repeat(size);
            stream::repeat(chunk).map(move |chunk| {
                let _held = &guard;
                chunk
            })
        }

        /// Yields the connection's token once, then never ends.
        async fn forever(&self, ctx: &Context<'_>) -> impl Stream<Item = String> {
            let token = ctx.data_opt::<Token>().map(|token| token.0.clone());
            let guard = ctx
                .data_opt::<Dropped>()
                .map(|dropped| DropGuard(dropped.0.clone()));
            stream::unfold((guard, token), |(guard, token)| async move {
                match token {
                    Some(token) => Some((token, (guard, None))),
                    None => std::future::pending().await,
                }
            })
        }
    }

    /// Runs the schema, except for a subscription named `Shared`, which
    /// gets one result serialized elsewhere and then falls behind.
    struct Sharing(Unshared<TestSchema>);

    impl Operations for Sharing {
        fn execute_stream(&self, request: Request, data: Option<Arc<Data>>) -> BoxStream<'static, Outcome> {
            if !request.query.starts_with("subscription Shared") {
                return self.0.execute_stream(request, data);
            }
            let payload = RawValue::from_string(r#"{"data":{"shared":[1,2]}}"#.to_owned())
                .map(Arc::from)
                .unwrap_or_else(|error| panic!("{error}"));
            stream::iter([Outcome::Shared(payload), Outcome::TooFarBehind]).boxed()
        }
    }

    async fn on_init(payload: Value) -> Result<Data, InitRejected> {
        match payload.get("token").and_then(Value::as_str) {
            Some("ok") => {
                let mut data = Data::default();
                data.insert(Token("ok".to_owned()));
                Ok(data)
            }
            _ => Err(InitRejected::new("invalid token")),
        }
    }

    async fn handler(
        State((schema, settings)): State<(TestSchema, WsSettings)>,
        headers: HeaderMap,
        upgrade: WebSocketUpgrade,
    ) -> Response {
        let Some(protocol) = WsProtocol::negotiate(&headers) else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        upgrade.protocols([protocol.as_str()]).on_upgrade(move |socket| {
            serve(
                socket,
                protocol,
                Sharing(Unshared(schema)),
                settings,
                on_init,
                Box::pin(std::future::pending()),
            )
        })
    }

    struct TestServer {
        addr: SocketAddr,
        dropped: mpsc::UnboundedReceiver<()>,
    }

    impl TestServer {
        async fn start(settings: WsSettings) -> TestResult<Self> {
            let (dropped_tx, dropped) = mpsc::unbounded_channel();
            let schema = Schema::build(Query, EmptyMutation, SubscriptionRoot)
                .data(Dropped(dropped_tx))
                .finish();
            let app = Router::new()
                .route("/ws", get(handler))
                .with_state((schema, settings));
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Ok(Self { addr, dropped })
        }

        async fn default() -> TestResult<Self> {
            Self::start(WsSettings {
                connection_init_timeout: Duration::from_secs(60),
                keep_alive_interval: Duration::from_secs(60),
                max_operations: 100,
                send_timeout: Duration::ZERO,
            })
            .await
        }

        async fn connect(&self, protocol: &str) -> TestResult<Client> {
            let mut request = format!("ws://{}/ws", self.addr).into_client_request()?;
            request
                .headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_str(protocol)?);
            let (client, response) =
                tokio::time::timeout(WAIT, connect_async_with_config(request, None, true)).await??;
            assert_eq!(
                response.headers().get("sec-websocket-protocol"),
                Some(&HeaderValue::from_str(protocol)?)
            );
            Ok(client)
        }

        /// Waits until a `forever` stream has been dropped.
        async fn stream_dropped(&mut self) -> TestResult {
            tokio::time::timeout(WAIT, self.dropped.recv())
                .await?
                .ok_or("drop channel closed")?;
            Ok(())
        }
    }

    async fn send(client: &mut Client, message: Value) -> TestResult {
        client.send(WsMessage::text(message.to_string())).await?;
        Ok(())
    }

    async fn send_raw(client: &mut Client, message: WsMessage) -> TestResult {
        client.send(message).await?;
        Ok(())
    }

    /// The next text message, as JSON.
    async fn recv(client: &mut Client) -> TestResult<Value> {
        loop {
            match tokio::time::timeout(WAIT, client.next()).await? {
                Some(Ok(WsMessage::Text(text))) => return Ok(serde_json::from_str(text.as_str())?),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                other => return Err(format!("expected a text message, got {other:?}").into()),
            }
        }
    }

    /// The close frame's code and reason.
    async fn recv_close(client: &mut Client) -> TestResult<(u16, String)> {
        loop {
            match tokio::time::timeout(WAIT, client.next()).await? {
                Some(Ok(WsMessage::Close(Some(frame)))) => {
                    return Ok((frame.code.into(), frame.reason.as_str().to_owned()));
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                other => return Err(format!("expected a close frame, got {other:?}").into()),
            }
        }
    }

    async fn init(client: &mut Client) -> TestResult {
        send(
            client,
            json!({"type": "connection_init", "payload": {"token": "ok"}}),
        )
        .await?;
        assert_eq!(recv(client).await?, json!({"type": "connection_ack"}));
        Ok(())
    }

    async fn legacy_init(client: &mut Client) -> TestResult {
        send(
            client,
            json!({"type": "connection_init", "payload": {"token": "ok"}}),
        )
        .await?;
        assert_eq!(recv(client).await?, json!({"type": "connection_ack"}));
        assert_eq!(recv(client).await?, json!({"type": "ka"}));
        Ok(())
    }

    fn subscribe(id: &str, query: &str) -> Value {
        json!({"id": id, "type": "subscribe", "payload": {"query": query}})
    }

    fn start(id: &str, query: &str) -> Value {
        json!({"id": id, "type": "start", "payload": {"query": query}})
    }

    /// Asserts nothing else was sent: the answer to a ping comes next.
    async fn assert_quiet(client: &mut Client) -> TestResult {
        send(client, json!({"type": "ping"})).await?;
        assert_eq!(recv(client).await?, json!({"type": "pong"}));
        Ok(())
    }

    #[test]
    fn negotiate_prefers_graphql_transport_ws() -> TestResult {
        let offer = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append("sec-websocket-protocol", HeaderValue::from_static(value));
            }
            WsProtocol::negotiate(&headers)
        };
        assert_eq!(offer(&[]), None);
        assert_eq!(offer(&["soap, wamp"]), None);
        assert_eq!(offer(&["graphql-ws"]), Some(WsProtocol::GraphqlWs));
        assert_eq!(
            offer(&["graphql-ws, graphql-transport-ws"]),
            Some(WsProtocol::GraphqlTransportWs)
        );
        assert_eq!(
            offer(&["graphql-ws", "graphql-transport-ws"]),
            Some(WsProtocol::GraphqlTransportWs)
        );
        assert_eq!(WsProtocol::GraphqlTransportWs.as_str(), TRANSPORT);
        assert_eq!(WsProtocol::GraphqlWs.as_str(), LEGACY);
        let requested = [HeaderValue::from_static("graphql-ws")];
        assert_eq!(
            WsProtocol::negotiate_offers(&requested),
            Some(WsProtocol::GraphqlWs)
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_disconnected_with_1013() -> TestResult {
        let mut server = TestServer::start(WsSettings {
            connection_init_timeout: Duration::from_secs(60),
            keep_alive_interval: Duration::from_secs(60),
            max_operations: 100,
            send_timeout: Duration::from_millis(200),
        })
        .await?;
        let mut client = server.connect(TRANSPORT).await?;
        init(&mut client).await?;
        send(&mut client, subscribe("1", "subscription { flood(size: 65536) }")).await?;
        // Not reading: the socket's buffers fill, a send waits, and the
        // server gives up on the client (the flood would never end).
        server.stream_dropped().await?;
        let mut received = 0_usize;
        let end = loop {
            match tokio::time::timeout(WAIT, client.next()).await? {
                Some(Ok(WsMessage::Text(_))) => received += 1,
                Some(Ok(WsMessage::Close(frame))) => break frame.map(|frame| u16::from(frame.code)),
                Some(Ok(_)) => {}
                // Closed without a handshake: the close frame could not be sent.
                Some(Err(_)) | None => break None,
            }
        };
        assert!(received > 0, "the flood had begun");
        assert!(end.is_none_or(|code| code == 1013), "closed with {end:?}");
        Ok(())
    }

    #[tokio::test]
    async fn a_shared_result_is_sent_as_it_is_and_falling_behind_its_group_closes_1013() -> TestResult {
        let server = TestServer::default().await?;
        let mut client = server.connect(TRANSPORT).await?;
        init(&mut client).await?;
        send(
            &mut client,
            subscribe("7", "subscription Shared { numbers(count: 1) }"),
        )
        .await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"id": "7", "type": "next", "payload": {"data": {"shared": [1, 2]}}})
        );
        let (code, reason) = recv_close(&mut client).await?;
        assert_eq!(code, 1013);
        assert!(reason.contains("after"), "{reason}");
        Ok(())
    }

    #[tokio::test]
    async fn transport_subscription_streams_results_then_completes() -> TestResult {
        let server = TestServer::default().await?;
        let mut client = server.connect(TRANSPORT).await?;
        init(&mut client).await?;
        send(&mut client, subscribe("1", "subscription { numbers(count: 3) }")).await?;
        for n in 1..=3 {
            assert_eq!(
                recv(&mut client).await?,
                json!({"id": "1", "type": "next", "payload": {"data": {"numbers": n}}})
            );
        }
        assert_eq!(recv(&mut client).await?, json!({"id": "1", "type": "complete"}));
        // A finished id can be used again.
        send(&mut client, subscribe("1", "subscription { numbers(count: 1) }")).await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"id": "1", "type": "next", "payload": {"data": {"numbers": 1}}})
        );
        assert_eq!(recv(&mut client).await?, json!({"id": "1", "type": "complete"}));
        Ok(())
    }

    #[tokio::test]
    async fn transport_query_over_socket_sees_connection_data() -> TestResult {
        let server = TestServer::default().await?;
        let mut client = server.connect(TRANSPORT).await?;
        init(&mut client).await?;
        send(&mut client, subscribe("q", "query { hello token }")).await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"id": "q", "type": "next", "payload": {"data": {"hello": "world", "token": "ok"}}})
        );
        assert_eq!(recv(&mut client).await?, json!({"id": "q", "type": "complete"}));
        Ok(())
    }

    #[tokio::test]
    async fn transport_init_timeout_closes_4408() -> TestResult {
        let server = TestServer::start(WsSettings {
            connection_init_timeout: Duration::from_millis(50),
            keep_alive_interval: Duration::from_secs(60),
            max_operations: 100,
            send_timeout: Duration::ZERO,
        })
        .await?;
        let mut client = server.connect(TRANSPORT).await?;
        assert_eq!(
            recv_close(&mut client).await?,
            (4408, "Connection initialisation timeout".to_owned())
        );
        Ok(())
    }

    #[tokio::test]
    async fn transport_subscribe_before_ack_closes_4401() -> TestResult {
        let server = TestServer::default().await?;
        let mut client = server.connect(TRANSPORT).await?;
        send(&mut client, subscribe("1", "subscription { numbers(count: 3) }")).await?;
        assert_eq!(recv_close(&mut client).await?, (4401, "Unauthorized".to_owned()));
        Ok(())
    }

    #[tokio::test]
    async fn transport_refused_init_closes_4403() -> TestResult {
        let server = TestServer::default().await?;
        let mut client = server.connect(TRANSPORT).await?;
        send(
            &mut client,
            json!({"type": "connection_init", "payload": {"token": "bad"}}),
        )
        .await?;
        assert_eq!(
            recv_close(&mut client).await?,
            (4403, "Forbidden: invalid token".to_owned())
        );
        Ok(())
    }

    #[tokio::test]
    async fn transport_duplicate_id_closes_4409_and_drops_streams() -> TestResult {
        let mut server = TestServer::default().await?;
        let mut client = server.connect(TRANSPORT).await?;
        init(&mut client).await?;
        send(&mut client, subscribe("a", "subscription { forever }")).await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"id": "a", "type": "next", "payload": {"data": {"forever": "ok"}}})
        );
        send(&mut client, subscribe("a", "subscription { forever }")).await?;
        assert_eq!(
            recv_close(&mut client).await?,
            (4409, "Subscriber for a already exists".to_owned())
        );
        server.stream_dropped().await
    }

    #[tokio::test]
    async fn transport_second_init_closes_4429() -> TestResult {
        let server = TestServer::default().await?;
        let mut client = server.connect(TRANSPORT).await?;
        init(&mut client).await?;
        send(
            &mut client,
            json!({"type": "connection_init", "payload": {"token": "ok"}}),
        )
        .await?;
        assert_eq!(
            recv_close(&mut client).await?,
            (4429, "Too many initialisation requests".to_owned())
        );
        Ok(())
    }

    #[tokio::test]
    async fn transport_ping_is_answered_before_and_after_init() -> TestResult {
        let server = TestServer::default().await?;
        let mut client = server.connect(TRANSPORT).await?;
        send(&mut client, json!({"type": "ping", "payload": {"at": 1}})).await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"type": "pong", "payload": {"at": 1}})
        );
        send(&mut client, json!({"type": "pong"})).await?;
        init(&mut client).await?;
        assert_quiet(&mut client).await
    }

    #[tokio::test]
    async fn transport_client_complete_stops_the_stream() -> TestResult {
        let mut server = TestServer::default().await?;
        let mut client = server.connect(TRANSPORT).await?;
        init(&mut client).await?;
        send(&mut client, subscribe("s", "subscription { forever }")).await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"id": "s", "type": "next", "payload": {"data": {"forever": "ok"}}})
        );
        send(&mut client, json!({"id": "s", "type": "complete"})).await?;
        server.stream_dropped().await?;
        // No `complete` is sent back for it, and the id is free again.
        assert_quiet(&mut client).await?;
        send(&mut client, subscribe("s", "subscription { numbers(count: 1) }")).await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"id": "s", "type": "next", "payload": {"data": {"numbers": 1}}})
        );
        assert_eq!(recv(&mut client).await?, json!({"id": "s", "type": "complete"}));
        Ok(())
    }

    #[tokio::test]
    async fn transport_client_close_drops_streams() -> TestResult {
        let mut server = TestServer::default().await?;
        let mut client = server.connect(TRANSPORT).await?;
        init(&mut client).await?;
        send(&mut client, subscribe("s", "subscription { forever }")).await?;
        recv(&mut client).await?;
        client.close(None).await?;
        server.stream_dropped().await
    }

    #[tokio::test]
    async fn transport_invalid_query_sends_error_without_complete() -> TestResult {
        let server = TestServer::default().await?;
        let mut client = server.connect(TRANSPORT).await?;
        init(&mut client).await?;
        send(&mut client, subscribe("e", "subscription { nope }")).await?;
        let message = recv(&mut client).await?;
        assert_eq!(message["id"], "e");
        assert_eq!(message["type"], "error");
        let errors = message["payload"].as_array().ok_or("payload is not an array")?;
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]["message"]
                .as_str()
                .is_some_and(|text| text.contains("nope")),
            "{message}"
        );
        assert_quiet(&mut client).await?;
        // The failed id is free again.
        send(&mut client, subscribe("e", "{ hello }")).await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"id": "e", "type": "next", "payload": {"data": {"hello": "world"}}})
        );
        Ok(())
    }

    #[tokio::test]
    async fn transport_invalid_messages_close_4400() -> TestResult {
        let server = TestServer::default().await?;
        let invalid = [
            WsMessage::text("not json"),
            WsMessage::text("[]"),
            WsMessage::text(r#"{"type":"unknown"}"#),
            WsMessage::text(r#"{"payload":{}}"#),
            WsMessage::text(r#"{"type":"subscribe","payload":{"query":"{ hello }"}}"#),
            WsMessage::text(r#"{"type":"subscribe","id":"1","payload":{"query":1}}"#),
            WsMessage::text(r#"{"type":"connection_init","payload":"token"}"#),
            WsMessage::text(r#"{"type":"next","id":"1","payload":{}}"#),
            WsMessage::binary(vec![0xff, 0xfe]),
        ];
        for message in invalid {
            let mut client = server.connect(TRANSPORT).await?;
            send_raw(&mut client, message).await?;
            let (code, reason) = recv_close(&mut client).await?;
            assert_eq!(code, 4400, "{reason}");
            assert!(!reason.is_empty());
        }
        // Binary frames holding JSON are accepted.
        let mut client = server.connect(TRANSPORT).await?;
        send_raw(&mut client, WsMessage::binary(br#"{"type":"ping"}"#.to_vec())).await?;
        assert_eq!(recv(&mut client).await?, json!({"type": "pong"}));
        Ok(())
    }

    #[tokio::test]
    async fn legacy_ack_then_keep_alive() -> TestResult {
        let server = TestServer::start(WsSettings {
            connection_init_timeout: Duration::from_secs(60),
            keep_alive_interval: Duration::from_millis(20),
            max_operations: 100,
            send_timeout: Duration::ZERO,
        })
        .await?;
        let mut client = server.connect(LEGACY).await?;
        legacy_init(&mut client).await?;
        // And again after each interval.
        assert_eq!(recv(&mut client).await?, json!({"type": "ka"}));
        assert_eq!(recv(&mut client).await?, json!({"type": "ka"}));
        Ok(())
    }

    #[tokio::test]
    async fn legacy_start_streams_data_then_completes() -> TestResult {
        let server = TestServer::default().await?;
        let mut client = server.connect(LEGACY).await?;
        // Legacy clients send `start` without waiting for the ack.
        send(
            &mut client,
            json!({"type": "connection_init", "payload": {"token": "ok"}}),
        )
        .await?;
        send(&mut client, start("1", "subscription { numbers(count: 3) }")).await?;
        assert_eq!(recv(&mut client).await?, json!({"type": "connection_ack"}));
        assert_eq!(recv(&mut client).await?, json!({"type": "ka"}));
        for n in 1..=3 {
            assert_eq!(
                recv(&mut client).await?,
                json!({"id": "1", "type": "data", "payload": {"data": {"numbers": n}}})
            );
        }
        assert_eq!(recv(&mut client).await?, json!({"id": "1", "type": "complete"}));
        send(&mut client, start("2", "{ token }")).await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"id": "2", "type": "data", "payload": {"data": {"token": "ok"}}})
        );
        assert_eq!(recv(&mut client).await?, json!({"id": "2", "type": "complete"}));
        Ok(())
    }

    #[tokio::test]
    async fn legacy_stop_sends_complete_and_drops_the_stream() -> TestResult {
        let mut server = TestServer::default().await?;
        let mut client = server.connect(LEGACY).await?;
        legacy_init(&mut client).await?;
        send(&mut client, start("s", "subscription { forever }")).await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"id": "s", "type": "data", "payload": {"data": {"forever": "ok"}}})
        );
        send(&mut client, json!({"id": "s", "type": "stop"})).await?;
        assert_eq!(recv(&mut client).await?, json!({"id": "s", "type": "complete"}));
        server.stream_dropped().await
    }

    #[tokio::test]
    async fn legacy_invalid_query_sends_error() -> TestResult {
        let server = TestServer::default().await?;
        let mut client = server.connect(LEGACY).await?;
        legacy_init(&mut client).await?;
        send(&mut client, start("e", "{ nope }")).await?;
        let message = recv(&mut client).await?;
        assert_eq!(message["id"], "e");
        assert_eq!(message["type"], "error");
        let text = message["payload"]["message"].as_str().ok_or("no message")?;
        assert!(text.contains("nope"), "{message}");
        assert_eq!(message["payload"]["errors"][0]["message"], text);
        send(&mut client, start("q", "{ hello }")).await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"id": "q", "type": "data", "payload": {"data": {"hello": "world"}}})
        );
        Ok(())
    }

    #[tokio::test]
    async fn legacy_refused_init_sends_connection_error_and_closes() -> TestResult {
        let server = TestServer::default().await?;
        let mut client = server.connect(LEGACY).await?;
        send(
            &mut client,
            json!({"type": "connection_init", "payload": {"token": "bad"}}),
        )
        .await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"type": "connection_error", "payload": {"message": "invalid token"}})
        );
        assert_eq!(recv_close(&mut client).await?, (1011, "invalid token".to_owned()));
        Ok(())
    }

    #[tokio::test]
    async fn legacy_start_before_init_closes() -> TestResult {
        let server = TestServer::default().await?;
        let mut client = server.connect(LEGACY).await?;
        send(&mut client, start("1", "{ hello }")).await?;
        assert_eq!(
            recv(&mut client).await?,
            json!({"type": "connection_error", "payload": {"message": "Connection not initialised"}})
        );
        assert_eq!(
            recv_close(&mut client).await?,
            (1002, "Connection not initialised".to_owned())
        );
        Ok(())
    }

    #[tokio::test]
    async fn legacy_connection_terminate_closes() -> TestResult {
        let mut server = TestServer::default().await?;
        let mut client = server.connect(LEGACY).await?;
        legacy_init(&mut client).await?;
        send(&mut client, start("s", "subscription { forever }")).await?;
        recv(&mut client).await?;
        send(&mut client, json!({"type": "connection_terminate"})).await?;
        assert_eq!(recv_close(&mut client).await?.0, 1000);
        server.stream_dropped().await
    }

    #[test]
    fn close_reasons_fit_in_a_frame() {
        let long = "é".repeat(100);
        let reason = truncate_close_reason(&long);
        assert!(reason.len() <= 123);
        assert_eq!(reason.len(), 122);
    }
}
