//! Subscriptions resume from the event log: every event carries its cursor,
//! `after` replays what was missed and continues live without a gap or a
//! duplicate, across a lost listener connection and a restarted instance.

use chrono::Duration;
use pretty_assertions::assert_eq;
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DatabaseBackend, Set, Statement};
use serde_json::{Value, json};
use session_manager::event_log;
use session_manager::events::{Event, OrganisationChange};
use session_manager::unit_of_work::{self, Outcome};

use crate::backend_tests;
use crate::fixtures::World;
use crate::helpers::{Backend, TestApp, TestDatabase};
use crate::ws_client::{WsClient, wait_for_subscribers};

const LIVE: &str = "subscription($after: String) {
  sessionStatusChanged(after: $after) { eventId change occurredAt }
}";

const RENAME: &str =
    "mutation($id: UUID!, $name: String!) { updateSession(id: $id, input: { name: $name }) { id } }";

/// Renames the user's session `times` times on `app`, a minute apart.
async fn renames(app: &TestApp, world: &World, token: &str, times: usize) {
    for round in 0..times {
        app.clock.advance(Duration::minutes(1));
        app.ok_as(
            token,
            RENAME,
            json!({ "id": world.sessions["user"], "name": format!("round {round}") }),
        )
        .await;
    }
}

/// The next `count` events of operation `id`, as (eventId, occurredAt).
async fn events(client: &mut WsClient, id: &str, count: usize) -> Vec<(String, String)> {
    let mut received = Vec::new();
    for _ in 0..count {
        let event = client.next_data(id).await["sessionStatusChanged"].clone();
        received.push((
            event["eventId"].as_str().unwrap().to_owned(),
            event["occurredAt"].as_str().unwrap().to_owned(),
        ));
    }
    received
}

/// The numeric order of cursors (opaque to clients; the tests know them).
fn position(cursor: &str) -> i64 {
    cursor.trim_start_matches("ev").parse().unwrap()
}

fn assert_in_order(received: &[(String, String)]) {
    let positions: Vec<i64> = received.iter().map(|(cursor, _)| position(cursor)).collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(positions, sorted, "in order, each once");
}

/// The error code a subscription was refused with, whichever way the
/// protocol carries it.
async fn refusal(client: &mut WsClient, id: &str) -> String {
    let message = client.receive().await;
    assert_eq!(message["id"], id, "{message}");
    let error: &Value = match message["type"].as_str() {
        Some("error") => &message["payload"][0],
        Some("next") => &message["payload"]["errors"][0],
        _ => panic!("expected a refusal: {message}"),
    };
    let code = error["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if message["type"] == "next" {
        let complete = client.receive().await;
        assert_eq!(complete, json!({ "id": id, "type": "complete" }));
    }
    code
}

async fn a_subscriber_that_resumes_with_its_last_event_id_gets_exactly_the_missed_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    let admin = world.login(&app, "admin").await;
    let mut dashboard = WsClient::connect(&app, Some(&guardian)).await;
    dashboard.subscribe("live", LIVE, json!({})).await;
    wait_for_subscribers(&app, 1).await;
    renames(&app, &world, &admin, 1).await;
    let seen = events(&mut dashboard, "live", 1).await;
    drop(dashboard);

    // Missed while disconnected.
    renames(&app, &world, &admin, 3).await;
    let mut dashboard = WsClient::connect(&app, Some(&guardian)).await;
    dashboard
        .subscribe("resumed", LIVE, json!({ "after": seen[0].0 }))
        .await;
    let replayed = events(&mut dashboard, "resumed", 3).await;
    assert_in_order(&replayed);
    assert!(position(&replayed[0].0) > position(&seen[0].0));
    let times: Vec<chrono::DateTime<chrono::Utc>> = replayed
        .iter()
        .map(|(_, at)| chrono::DateTime::parse_from_rfc3339(at).unwrap().to_utc())
        .collect();
    let expected: Vec<chrono::DateTime<chrono::Utc>> = (2..=4)
        .map(|minutes| crate::helpers::test_epoch() + Duration::minutes(minutes))
        .collect();
    assert_eq!(times, expected, "exactly the three missed changes");

    // Then live, with nothing repeated at the seam.
    wait_for_subscribers(&app, 1).await;
    renames(&app, &world, &admin, 1).await;
    let live = events(&mut dashboard, "resumed", 1).await;
    assert!(
        position(&live[0].0) > position(&replayed[2].0),
        "{live:?} after {replayed:?}"
    );
}

async fn a_cursor_older_than_retention_is_cursor_expired_and_a_forged_one_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    let admin = world.login(&app, "admin").await;
    let mut dashboard = WsClient::connect(&app, Some(&guardian)).await;
    dashboard.subscribe("live", LIVE, json!({})).await;
    wait_for_subscribers(&app, 1).await;
    renames(&app, &world, &admin, 2).await;
    let seen = events(&mut dashboard, "live", 2).await;

    // Still retained: resuming works.
    dashboard
        .subscribe("kept", LIVE, json!({ "after": seen[0].0 }))
        .await;
    assert_eq!(events(&mut dashboard, "kept", 1).await[0].0, seen[1].0);

    // Eight days on, retention sweeps both: the one after the cursor is gone.
    // (Swept as of then, so that the dashboard's login stays fresh.)
    let later = app.state.clock.now() + Duration::days(8);
    let swept = event_log::sweep(&app.db, later, Duration::days(7)).await.unwrap();
    assert!(swept >= 2, "{swept}");
    dashboard
        .subscribe("expired", LIVE, json!({ "after": seen[0].0 }))
        .await;
    assert_eq!(refusal(&mut dashboard, "expired").await, "CURSOR_EXPIRED");
    // The newest swept cursor missed nothing: it resumes.
    dashboard
        .subscribe("latest", LIVE, json!({ "after": seen[1].0 }))
        .await;
    wait_for_subscribers(&app, 3).await;
    renames(&app, &world, &admin, 1).await;
    let next = dashboard.next().await;
    assert!(
        next.0 == "latest" || next.0 == "live" || next.0 == "kept",
        "{next:?}"
    );

    let mut other = WsClient::connect(&app, Some(&guardian)).await;
    other
        .subscribe("forged", LIVE, json!({ "after": "ev1\u{0}" }))
        .await;
    assert_eq!(refusal(&mut other, "forged").await, "BAD_USER_INPUT");
    other
        .subscribe("future", LIVE, json!({ "after": "ev999999999" }))
        .await;
    assert_eq!(
        refusal(&mut other, "future").await,
        "BAD_USER_INPUT",
        "a cursor past the end was never handed out"
    );
}

async fn a_write_that_fails_midway_leaves_no_event_and_no_row(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let before = event_log::last_id(&app.db).await.unwrap();
    let now = app.state.clock.now();
    let tenant = world.alpha;
    let result = unit_of_work::write(&app.state, async |txn| {
        let school = entity::school::ActiveModel {
            tenant_id: Set(tenant),
            name: Set("Half-written".to_owned()),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        let created = Event::organisation(OrganisationChange::Created, tenant, Some(school.id), now);
        // The same name in the same tenant: the unique index refuses it.
        entity::school::ActiveModel {
            tenant_id: Set(tenant),
            name: Set("Half-written".to_owned()),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        Ok(Outcome::announcing((), vec![created]))
    })
    .await;
    assert_eq!(result.err().map(|error| error.code()), Some("CONFLICT"));
    assert_eq!(event_log::last_id(&app.db).await.unwrap(), before, "no event");
    let schools = entity::school::Entity::find()
        .filter(entity::school::Column::Name.eq("Half-written"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(schools, 0, "no row");

    // A refusal that keeps its writes commits them with their events, and
    // still answers the error.
    let refused = unit_of_work::write(&app.state, async |txn| {
        let school = entity::school::ActiveModel {
            tenant_id: Set(tenant),
            name: Set("Kept".to_owned()),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        Ok(Outcome::<()>::Refused {
            error: session_manager::error::AppError::forbidden("recorded, then refused"),
            events: vec![Event::organisation(
                OrganisationChange::Created,
                tenant,
                Some(school.id),
                now,
            )],
        })
    })
    .await;
    assert_eq!(refused.err().map(|error| error.code()), Some("FORBIDDEN"));
    assert!(
        event_log::last_id(&app.db).await.unwrap() > before,
        "its event is logged"
    );
    let kept = entity::school::Entity::find()
        .filter(entity::school::Column::Name.eq("Kept"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(kept, 1, "its row is kept");
}

backend_tests!(
    a_subscriber_that_resumes_with_its_last_event_id_gets_exactly_the_missed_events,
    a_cursor_older_than_retention_is_cursor_expired_and_a_forged_one_is_refused,
    a_write_that_fails_midway_leaves_no_event_and_no_row,
);

/// Terminates every `LISTEN` connection of the test database but ours;
/// returns how many.
async fn kill_listeners(db: &DatabaseConnection) -> usize {
    let rows = db
        .query_all_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
        ))
        .await
        .unwrap();
    rows.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_another_instance_once_and_in_order_though_its_listener_was_killed() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("TEST_POSTGRES_URL is not set: skipped");
        return;
    };
    let database = TestDatabase::create(backend).await;
    let writer = TestApp::spawn_on(database.clone(), |_| {}).await;
    let reader = TestApp::spawn_on(database, |_| {}).await;
    let world = World::create(&writer.db).await;
    let guardian = world.login(&reader, "guardian").await;
    let admin = world.login(&writer, "admin").await;
    let mut dashboard = WsClient::connect(&reader, Some(&guardian)).await;
    dashboard.subscribe("live", LIVE, json!({})).await;
    wait_for_subscribers(&reader, 1).await;

    assert!(kill_listeners(&writer.db).await >= 2, "both instances listen");
    renames(&writer, &world, &admin, 5).await;
    let received = events(&mut dashboard, "live", 5).await;
    assert_in_order(&received);
    // And nothing twice: the next one is the next change.
    renames(&writer, &world, &admin, 1).await;
    let next = events(&mut dashboard, "live", 1).await;
    assert!(
        position(&next[0].0) > position(&received[4].0),
        "{next:?} after {received:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_of_a_restarted_instance_resumes_with_everything_written_meanwhile() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("TEST_POSTGRES_URL is not set: skipped");
        return;
    };
    let database = TestDatabase::create(backend).await;
    let first = TestApp::spawn_on(database.clone(), |_| {}).await;
    let mut second = TestApp::spawn_on(database.clone(), |_| {}).await;
    let world = World::create(&first.db).await;
    let guardian = world.login(&second, "guardian").await;
    let admin = world.login(&first, "admin").await;
    let mut dashboard = WsClient::connect(&second, Some(&guardian)).await;
    dashboard.subscribe("live", LIVE, json!({})).await;
    wait_for_subscribers(&second, 1).await;
    renames(&first, &world, &admin, 1).await;
    let seen = events(&mut dashboard, "live", 1).await;

    drop(dashboard);
    second.stop();
    drop(second);
    renames(&first, &world, &admin, 3).await;

    let restarted = TestApp::spawn_on(database, |_| {}).await;
    let mut dashboard = WsClient::connect(&restarted, Some(&guardian)).await;
    dashboard
        .subscribe("resumed", LIVE, json!({ "after": seen[0].0 }))
        .await;
    let replayed = events(&mut dashboard, "resumed", 3).await;
    assert_in_order(&replayed);
    assert!(position(&replayed[0].0) > position(&seen[0].0));
}
