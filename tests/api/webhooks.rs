//! Webhooks: signed deliveries of notifications to a tenant's endpoints,
//! at least once, retried with backoff on the controllable clock, in order
//! per user, given up and redelivered; test pings, secret rotation, and
//! the refusal of private addresses.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Duration;
use hmac::{Hmac, Mac};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use session_manager::clock::Clock;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::backend_tests;
use crate::fixtures::World;
use crate::helpers::{Backend, TestApp, TestDatabase, error_code};

/// What a test receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A webhook receiver on loopback answering with scripted statuses (then 200).
struct Receiver {
    url: String,
    requests: mpsc::UnboundedReceiver<Received>,
}

#[derive(Clone)]
struct Script {
    statuses: Arc<Mutex<VecDeque<u16>>>,
    sender: mpsc::UnboundedSender<Received>,
}

async fn receive(State(script): State<Script>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let _ = script.sender.send(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
    });
    let status = script.statuses.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    async fn spawn(statuses: &[u16]) -> Self {
        let (sender, requests) = mpsc::unbounded_channel();
        let script = Script {
            statuses: Arc::new(Mutex::new(statuses.iter().copied().collect())),
            sender,
        };
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, requests }
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(std::time::Duration::from_secs(10), self.requests.recv())
            .await
            .expect("a delivery in time")
            .expect("the receiver runs")
    }

    fn nothing_more(&mut self) -> bool {
        self.requests.try_recv().is_err()
    }
}

/// Whether `signature` (the header) holds a valid `v1` signature by `secret`.
fn signed_by(received: &Received, secret: &str) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", received.id, received.timestamp, received.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    received.signature.split(' ').any(|part| part == expected)
}

const CREATE: &str = "mutation($url: String!) { createWebhookEndpoint(input: { url: $url, description: \"Notifications\" }) { secret endpoint { id url kinds enabled } } }";
const DELIVERIES: &str = "query($id: UUID!) { webhookEndpoint(id: $id) { deliveries { edges { node { id webhookId kind status attemptCount nextAttemptAt lastStatusCode lastError attempts { attempt statusCode error } } } } } }";
const END: &str = "mutation($id: UUID!) { endSession(id: $id) { id } }";

/// The deliveries of an endpoint, newest first.
async fn deliveries(app: &TestApp, admin: &str, endpoint: &Value) -> Vec<Value> {
    app.ok_as(admin, DELIVERIES, json!({ "id": endpoint })).await["webhookEndpoint"]["deliveries"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect()
}

/// Waits until the delivery log of `endpoint` satisfies `done` (each
/// attempt is recorded after its answer).
async fn wait_for_log(
    app: &TestApp,
    admin: &str,
    endpoint: &Value,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let log = deliveries(app, admin, endpoint).await;
            if done(&log) {
                return log;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the delivery log in time")
}

fn seconds_after(later: &Value, earlier: chrono::DateTime<chrono::Utc>) -> i64 {
    let later: chrono::DateTime<chrono::Utc> = later.as_str().unwrap().parse().unwrap();
    (later - earlier).num_seconds()
}

async fn a_receiver_failing_twice_gets_one_signed_delivery_after_backoff(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let user = world.login(&app, "user").await;
    let mut receiver = Receiver::spawn(&[500, 500]).await;
    let created =
        app.ok_as(&admin, CREATE, json!({ "url": receiver.url })).await["createWebhookEndpoint"].clone();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let endpoint = created["endpoint"]["id"].clone();
    assert_eq!(created["endpoint"]["kinds"], json!(["UNLOCK"]));

    app.ok_as(&user, END, json!({ "id": world.sessions["user"] }))
        .await;
    let first = receiver.next().await;
    assert!(signed_by(&first, &secret), "{first:?}");
    assert_eq!(first.timestamp, app.clock.now().timestamp().to_string());
    let body: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(body["type"], "session.unlocked");
    assert_eq!(body["data"]["eventId"], first.id.as_str());
    assert_eq!(body["data"]["sessionId"], json!(world.sessions["user"]));
    assert_eq!(body["data"]["guardianId"], json!(world.users["guardian"]));

    let log = wait_for_log(&app, &admin, &endpoint, |log| log[0]["attemptCount"] == 1).await;
    assert_eq!(log[0]["status"], "PENDING");
    assert_eq!(log[0]["lastStatusCode"], 500);
    let wait = seconds_after(&log[0]["nextAttemptAt"], app.clock.now());
    assert!(
        (10..=13).contains(&wait),
        "10 s and up to a quarter of jitter: {wait}"
    );
    app.clock.advance(Duration::seconds(wait - 1));
    assert!(receiver.nothing_more(), "not before its time");
    app.clock.advance(Duration::seconds(1));
    let second = receiver.next().await;
    assert_eq!(second.id, first.id, "the same webhook-id");
    assert_eq!(second.body, first.body, "the same body");
    assert!(signed_by(&second, &secret));

    let log = wait_for_log(&app, &admin, &endpoint, |log| log[0]["attemptCount"] == 2).await;
    let wait = seconds_after(&log[0]["nextAttemptAt"], app.clock.now());
    assert!((20..=25).contains(&wait), "doubled: {wait}");
    app.clock.advance(Duration::seconds(wait));
    let third = receiver.next().await;
    assert_eq!(third.id, first.id);
    assert!(signed_by(&third, &secret));
    let log = wait_for_log(&app, &admin, &endpoint, |log| log[0]["status"] == "SUCCEEDED").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["webhookId"], first.id.as_str());
    assert_eq!(log[0]["nextAttemptAt"], Value::Null);
    let codes: Vec<&Value> = log[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| &attempt["statusCode"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(500), &json!(200)]);

    // Never resent after its 2xx: the next thing the receiver gets is a ping.
    app.clock.advance(Duration::hours(2));
    let admin = world.login(&app, "admin").await;
    let ping = app
        .ok_as(
            &admin,
            "mutation($id: UUID!) { pingWebhookEndpoint(id: $id) { kind status webhookId } }",
            json!({ "id": endpoint }),
        )
        .await["pingWebhookEndpoint"]
        .clone();
    assert_eq!(ping["kind"], "PING");
    let pinged = receiver.next().await;
    assert_eq!(pinged.id, ping["webhookId"].as_str().unwrap());
    assert!(signed_by(&pinged, &secret));
    assert_eq!(
        serde_json::from_str::<Value>(&pinged.body).unwrap()["type"],
        "webhook.ping"
    );
}

async fn a_receiver_down_too_long_fails_the_delivery_which_holds_back_the_next_until_given_up(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |settings| settings.webhooks.max_attempts = 3).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let guardian = world.login(&app, "guardian").await;
    let user = world.login(&app, "user").await;
    let mut receiver = Receiver::spawn(&[503, 503, 503]).await;
    let created =
        app.ok_as(&admin, CREATE, json!({ "url": receiver.url })).await["createWebhookEndpoint"].clone();
    let endpoint = created["endpoint"]["id"].clone();

    app.ok_as(&user, END, json!({ "id": world.sessions["user"] }))
        .await;
    let first = receiver.next().await;
    wait_for_log(&app, &admin, &endpoint, |log| log[0]["attemptCount"] == 1).await;
    // A second unlock of the same user waits behind the first.
    let second_session = app
        .ok_as(
            &guardian,
            "mutation($u: UUID!) { startSession(userId: $u, input: { name: \"Again\" }) { id } }",
            json!({ "u": world.users["user"] }),
        )
        .await["startSession"]["id"]
        .clone();
    app.ok_as(&user, END, json!({ "id": second_session })).await;
    let log = wait_for_log(&app, &admin, &endpoint, |log| log.len() == 2).await;
    assert_eq!(log[0]["attemptCount"], 0, "held back: {log:?}");

    for attempt in [2, 3] {
        let log = deliveries(&app, &admin, &endpoint).await;
        let wait = seconds_after(&log[1]["nextAttemptAt"], app.clock.now());
        app.clock.advance(Duration::seconds(wait));
        assert_eq!(
            receiver.next().await.id,
            first.id,
            "attempt {attempt} of the first"
        );
        wait_for_log(&app, &admin, &endpoint, |log| log[1]["attemptCount"] == attempt).await;
    }
    // Given up: visible as failed; the second goes at once, and succeeds.
    let second = receiver.next().await;
    assert_ne!(second.id, first.id);
    let log = wait_for_log(&app, &admin, &endpoint, |log| log[0]["status"] == "SUCCEEDED").await;
    let failed = &log[1];
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["lastStatusCode"], 503);
    assert_eq!(failed["lastError"], "answered 503 Service Unavailable");
    assert_eq!(failed["nextAttemptAt"], Value::Null);
    assert_eq!(failed["attempts"].as_array().unwrap().len(), 3);

    // Redelivered by an administrator: the same message, a fourth attempt.
    let redelivered = app
        .ok_as(
            &admin,
            "mutation($id: UUID!) { redeliverWebhookDelivery(id: $id) { status attemptCount } }",
            json!({ "id": failed["id"] }),
        )
        .await;
    assert_eq!(
        redelivered["redeliverWebhookDelivery"],
        json!({ "status": "PENDING", "attemptCount": 0 })
    );
    let again = receiver.next().await;
    assert_eq!(
        (again.id.as_str(), again.body.as_str()),
        (first.id.as_str(), first.body.as_str())
    );
    let log = wait_for_log(&app, &admin, &endpoint, |log| log[1]["status"] == "SUCCEEDED").await;
    assert_eq!(log[1]["attempts"][3]["attempt"], 4);
    let error = app
        .error_as(
            Some(&admin),
            "mutation($id: UUID!) { redeliverWebhookDelivery(id: $id) { status } }",
            json!({ "id": log[1]["id"] }),
        )
        .await;
    assert_eq!(
        error_code(&error),
        "CONFLICT",
        "only a failed delivery is redelivered"
    );
}

async fn a_rotated_secret_signs_beside_the_new_one_during_the_overlap(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let mut receiver = Receiver::spawn(&[]).await;
    let created =
        app.ok_as(&admin, CREATE, json!({ "url": receiver.url })).await["createWebhookEndpoint"].clone();
    let old = created["secret"].as_str().unwrap().to_owned();
    let endpoint = created["endpoint"]["id"].clone();
    let rotated = app
        .ok_as(
            &admin,
            "mutation($id: UUID!) { rotateWebhookSecret(id: $id, overlapMinutes: 10) { secret endpoint { previousSecretExpiresAt } } }",
            json!({ "id": endpoint }),
        )
        .await["rotateWebhookSecret"]
        .clone();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    const PING: &str = "mutation($id: UUID!) { pingWebhookEndpoint(id: $id) { id } }";
    app.ok_as(&admin, PING, json!({ "id": endpoint })).await;
    let during = receiver.next().await;
    assert!(signed_by(&during, &new) && signed_by(&during, &old), "{during:?}");
    // One ping at a time: the next once this one is recorded.
    wait_for_log(&app, &admin, &endpoint, |log| log[0]["status"] == "SUCCEEDED").await;
    app.clock.advance(Duration::minutes(10));
    app.ok_as(&admin, PING, json!({ "id": endpoint })).await;
    let after = receiver.next().await;
    assert!(signed_by(&after, &new));
    assert!(!signed_by(&after, &old), "the overlap is over");
}

async fn endpoints_refuse_private_addresses_and_belong_to_their_tenants_admins(backend: Backend) {
    // Without the tests' loopback allowance.
    let app = TestApp::spawn_with(backend, |settings| {
        settings.webhooks.allowed_networks = Vec::new()
    })
    .await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let mut receiver = Receiver::spawn(&[]).await;
    for url in [
        receiver.url.clone(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::1]:8080/".to_owned(),
        "ftp://example.org/".to_owned(),
        "https://user:secret@example.org/".to_owned(),
    ] {
        let error = app.error_as(Some(&admin), CREATE, json!({ "url": url })).await;
        assert_eq!(error_code(&error), "BAD_USER_INPUT", "{url}: {error}");
    }
    // A host name is checked where it resolves, at delivery.
    let port = receiver.url.rsplit(':').next().unwrap().to_owned();
    let by_name = format!("http://localhost:{port}");
    let created = app.ok_as(&admin, CREATE, json!({ "url": by_name })).await["createWebhookEndpoint"].clone();
    let endpoint = created["endpoint"]["id"].clone();
    app.ok_as(
        &admin,
        "mutation($id: UUID!) { pingWebhookEndpoint(id: $id) { id } }",
        json!({ "id": endpoint }),
    )
    .await;
    let log = wait_for_log(&app, &admin, &endpoint, |log| log[0]["attemptCount"] == 1).await;
    assert_eq!(
        log[0]["lastError"],
        "the endpoint's address is private, loopback or link-local, and not in webhooks.allowed_networks"
    );
    assert_eq!(log[0]["lastStatusCode"], Value::Null);
    assert!(receiver.nothing_more(), "nothing reached the loopback receiver");

    // Other tenants' administrators and other roles see nothing of it.
    let other_admin = world.login(&app, "other_admin").await;
    let error = app
        .error_as(Some(&other_admin), DELIVERIES, json!({ "id": endpoint }))
        .await;
    assert_eq!(error_code(&error), "NOT_FOUND");
    let guardian = world.login(&app, "guardian").await;
    let error = app
        .error_as(Some(&guardian), "{ webhookEndpoints { id } }", json!({}))
        .await;
    assert_eq!(error_code(&error), "FORBIDDEN");
}

/// Two instances on one PostgreSQL database both wake for every
/// notification: each delivery is still attempted once (leases).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_instances_each_delivery_is_attempted_by_one() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("TEST_POSTGRES_URL is not set: skipped");
        return;
    };
    let database = TestDatabase::create(backend).await;
    let first = TestApp::spawn_on(database.clone(), |_| {}).await;
    let second = TestApp::spawn_on(database, |_| {}).await;
    let world = World::create(&first.db).await;
    let admin = world.login(&first, "admin").await;
    let mut receivers = [Receiver::spawn(&[]).await, Receiver::spawn(&[]).await];
    let mut endpoints = Vec::new();
    for receiver in &receivers {
        let created = first.ok_as(&admin, CREATE, json!({ "url": receiver.url })).await;
        endpoints.push(created["createWebhookEndpoint"]["endpoint"]["id"].clone());
    }
    let user = world.login(&second, "user").await;
    let other_user = world.login(&first, "other_user").await;
    second
        .ok_as(&user, END, json!({ "id": world.sessions["user"] }))
        .await;
    first
        .ok_as(&other_user, END, json!({ "id": world.sessions["other_user"] }))
        .await;
    for (receiver, endpoint) in receivers.iter_mut().zip(&endpoints) {
        let ids = [receiver.next().await.id, receiver.next().await.id];
        assert_ne!(ids[0], ids[1]);
        let log = wait_for_log(&first, &admin, endpoint, |log| {
            log.len() == 2 && log.iter().all(|delivery| delivery["status"] == "SUCCEEDED")
        })
        .await;
        for delivery in &log {
            assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1, "{delivery}");
        }
        assert!(receiver.nothing_more());
    }
}

backend_tests!(
    a_receiver_failing_twice_gets_one_signed_delivery_after_backoff,
    a_receiver_down_too_long_fails_the_delivery_which_holds_back_the_next_until_given_up,
    a_rotated_secret_signs_beside_the_new_one_during_the_overlap,
    endpoints_refuse_private_addresses_and_belong_to_their_tenants_admins,
);
