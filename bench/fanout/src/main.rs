//! Fan-out benchmark client (see `bench/README.md`): opens N
//! graphql-transport-ws connections, each subscribed to
//! `sessionStatusChanged` of one session, then renames that session with
//! one `updateSession` and times every delivery from the moment the
//! mutation is sent. It grows N in steps (e.g. 1,000, 5,000, 10,000) on the
//! same server, and reads the server's resident memory at each step.
//!
//! Tokens are signed here with the server's secret, for login sessions the
//! setup script inserted, so that hashing, login limits and throttling stay
//! out of the measurement.
//!
//! Usage: `fanout --ws URL --http URL --subjects FILE --session ID
//! --server-pid PID [--steps 1000,5000,10000] [--rounds 5]`, with
//! `FANOUT_TOKEN_SECRET` (the server's `auth.token_secret`) and
//! `FANOUT_ADMIN_TOKEN` (a token that may rename the session) set.

#![expect(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

use std::borrow::Cow;
use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

type Failure = Box<dyn Error + Send + Sync>;

const SUBSCRIPTION: &str = "subscription($id: UUID) {
  sessionStatusChanged(sessionId: $id) { change sessionId status session { name status } }
}";
const RENAME: &str =
    "mutation($id: UUID!, $name: String!) { updateSession(id: $id, input: { name: $name }) { id } }";
/// Each connection's read buffer: the server's messages are small.
const CLIENT_READ_BUFFER_BYTES: usize = 4096;
/// Connections opened at once.
const OPENING_CONCURRENCY: usize = 200;
/// How long a step waits for every delivery before it reports what arrived.
const DELIVERY_PATIENCE: Duration = Duration::from_secs(60);

/// The command line.
struct Options {
    ws: String,
    http: String,
    subjects: String,
    session: Uuid,
    server_pid: u32,
    steps: Vec<usize>,
    rounds: usize,
    secret: String,
    admin_token: String,
}

impl Options {
    fn parse() -> Result<Self, Failure> {
        let mut args: HashMap<String, String> = HashMap::new();
        let mut raw = std::env::args().skip(1);
        while let Some(key) = raw.next() {
            let value = raw.next().ok_or_else(|| format!("{key} needs a value"))?;
            args.insert(key.trim_start_matches("--").to_owned(), value);
        }
        let take = |key: &str| {
            args.get(key)
                .cloned()
                .ok_or_else(|| format!("--{key} is required"))
        };
        let steps = args
            .get("steps")
            .map_or("1000,5000,10000", String::as_str)
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<usize>, _>>()?;
        Ok(Self {
            ws: take("ws")?,
            http: take("http")?,
            subjects: take("subjects")?,
            session: take("session")?.parse()?,
            server_pid: take("server-pid")?.parse()?,
            steps,
            rounds: args.get("rounds").map_or(Ok(5), |rounds| rounds.parse())?,
            secret: std::env::var("FANOUT_TOKEN_SECRET").map_err(|_| "set FANOUT_TOKEN_SECRET")?,
            admin_token: std::env::var("FANOUT_ADMIN_TOKEN").map_err(|_| "set FANOUT_ADMIN_TOKEN")?,
        })
    }
}

/// The claims the server checks.
#[derive(Serialize)]
struct Claims {
    sub: Uuid,
    sid: Uuid,
    iat: i64,
    exp: i64,
    iss: &'static str,
}

/// A signed token for each `user_id login_session_id` line of the file.
async fn tokens(options: &Options) -> Result<Vec<String>, Failure> {
    let text = tokio::fs::read_to_string(&options.subjects).await?;
    let key = jsonwebtoken::EncodingKey::from_secret(options.secret.as_bytes());
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let now = chrono::Utc::now().timestamp();
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut ids = line.split_whitespace().map(str::parse::<Uuid>);
            let (Some(Ok(sub)), Some(Ok(sid))) = (ids.next(), ids.next()) else {
                return Err(format!("not `user_id login_session_id`: {line}").into());
            };
            let claims = Claims {
                sub,
                sid,
                iat: now,
                exp: now + 3600,
                iss: "session-manager",
            };
            Ok(jsonwebtoken::encode(&header, &claims, &key)?)
        })
        .collect()
}

/// A server message, read as far as the client needs: borrowed from the
/// frame, so that the client's own cost per message stays small (it runs
/// on the same cores as the server it measures).
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow, default)]
    payload: Option<NextPayload<'a>>,
}

#[derive(Deserialize)]
struct NextPayload<'a> {
    #[serde(borrow, default)]
    data: Option<NextData<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NextData<'a> {
    #[serde(borrow, default)]
    session_status_changed: Option<StatusEvent<'a>>,
}

#[derive(Deserialize)]
struct StatusEvent<'a> {
    #[serde(borrow, default)]
    session: Option<NamedSession<'a>>,
}

#[derive(Deserialize)]
struct NamedSession<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

/// One delivery: the session name it carried, and when it arrived.
struct Delivery {
    name: String,
    at: Instant,
}

/// Opens one subscribed connection; its messages are read by a task of its
/// own, which reports every delivery.
async fn open(
    options: Arc<Options>,
    token: String,
    deliveries: mpsc::UnboundedSender<Delivery>,
) -> Result<(), Failure> {
    let mut request = options.ws.as_str().into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    // tungstenite zeroes its whole read buffer before every read: at the
    // default 128 KiB that was most of the client's time, on the cores the
    // server it measures runs on.
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER_BYTES);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    let init =
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text)?;
                if message["type"] == "connection_ack" {
                    break;
                }
                return Err(format!("expected connection_ack: {text}").into());
            }
            Some(Ok(Message::Close(frame))) => return Err(format!("closed before the ack: {frame:?}").into()),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => return Err("closed before the ack".into()),
        }
    }
    let subscribe = json!({
        "id": "1",
        "type": "subscribe",
        "payload": { "query": SUBSCRIPTION, "variables": { "id": options.session } }
    });
    socket.send(Message::text(subscribe.to_string())).await?;
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else { continue };
            let at = Instant::now();
            let Ok(message) = serde_json::from_str::<Incoming<'_>>(&text) else {
                continue;
            };
            match message.kind {
                "next" => {
                    let name = message
                        .payload
                        .and_then(|payload| payload.data)
                        .and_then(|data| data.session_status_changed)
                        .and_then(|event| event.session)
                        .map_or_else(|| "<an error>".to_owned(), |session| session.name.into_owned());
                    let _gone = deliveries.send(Delivery { name, at });
                }
                "ping" => {
                    let _closed = socket.send(Message::text(r#"{"type":"pong"}"#)).await;
                }
                _ => {}
            }
        }
    });
    Ok(())
}

/// Renames the session to `name`; returns when the request was sent.
async fn rename(client: &reqwest::Client, options: &Options, name: &str) -> Result<Instant, Failure> {
    let sent = Instant::now();
    let body: Value = client
        .post(&options.http)
        .bearer_auth(&options.admin_token)
        .json(&json!({ "query": RENAME, "variables": { "id": options.session, "name": name } }))
        .send()
        .await?
        .json()
        .await?;
    if body.get("errors").is_some() {
        return Err(format!("updateSession failed: {body}").into());
    }
    Ok(sent)
}

/// Collects the deliveries of `name` until `expected` arrived or patience ran out.
async fn collect(
    deliveries: &mut mpsc::UnboundedReceiver<Delivery>,
    name: &str,
    expected: usize,
) -> Vec<Instant> {
    let mut arrived = Vec::with_capacity(expected);
    let deadline = tokio::time::Instant::now() + DELIVERY_PATIENCE;
    while arrived.len() < expected {
        match tokio::time::timeout_at(deadline, deliveries.recv()).await {
            Ok(Some(delivery)) if delivery.name == name => arrived.push(delivery.at),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    arrived
}

/// The server's resident memory, in KiB.
fn resident_kib(pid: u32) -> Result<u64, Failure> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .ok_or_else(|| "no VmRSS".into())
        .and_then(|value| Ok(value.parse()?))
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let options = Arc::new(Options::parse()?);
    let tokens = tokens(&options).await?;
    let most = options.steps.iter().copied().max().unwrap_or(0);
    if tokens.len() < most {
        return Err(format!("{} subjects for {most} subscribers", tokens.len()).into());
    }
    let client = reqwest::Client::new();
    let (sender, mut deliveries) = mpsc::unbounded_channel();
    let baseline = resident_kib(options.server_pid)?;
    println!(
        "server resident memory before any subscriber: {:.1} MiB",
        baseline as f64 / 1024.0
    );
    let mut open_count = 0;
    let mut tokens = tokens.into_iter();
    for &step in &options.steps {
        let opening = stream::iter(tokens.by_ref().take(step.saturating_sub(open_count)))
            .map(|token| open(options.clone(), token, sender.clone()))
            .buffer_unordered(OPENING_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let failures = opening.iter().filter(|opened| opened.is_err()).count();
        if let Some(Err(error)) = opening.iter().find(|opened| opened.is_err()) {
            println!("  {failures} connections failed to open, e.g.: {error}");
        }
        open_count += opening.len() - failures;
        // A first rename proves every subscription is in place.
        let warm = format!("warm-up {step}");
        rename(&client, &options, &warm).await?;
        let ready = collect(&mut deliveries, &warm, open_count).await.len();
        let resident = resident_kib(options.server_pid)?;
        let mut latencies = Vec::new();
        let mut lasts = Vec::new();
        let mut delivered = Vec::new();
        for round in 0..options.rounds {
            let name = format!("step {step} round {round}");
            let sent = rename(&client, &options, &name).await?;
            let arrived = collect(&mut deliveries, &name, open_count).await;
            delivered.push(arrived.len());
            let round_ms: Vec<f64> = arrived
                .iter()
                .map(|at| at.duration_since(sent).as_secs_f64() * 1000.0)
                .collect();
            lasts.push(round_ms.iter().copied().fold(0.0, f64::max));
            latencies.extend(round_ms);
        }
        latencies.sort_by(f64::total_cmp);
        lasts.sort_by(f64::total_cmp);
        let growth = resident.saturating_sub(baseline) as f64 / open_count.max(1) as f64;
        println!(
            "N={step}: {open_count} subscribed ({ready} ready), delivered per round {delivered:?}; \
             latency ms p50 {:.1} p99 {:.1} max {:.1}; last delivery ms median {:.1}; \
             server RSS {:.1} MiB, growth per subscriber {growth:.1} KiB",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(f64::NAN),
            percentile(&lasts, 0.5),
            resident as f64 / 1024.0,
        );
    }
    Ok(())
}
