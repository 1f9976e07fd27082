//! The lock manager's interface: the merged lock state of a user
//! (`lockState`), pushed on every change (`lockStateChanged`), resumable;
//! end records; the notification service's subscription; what service
//! credentials are refused.

use chrono::Duration;
use entity::tenant_membership::MembershipRole;
use pretty_assertions::assert_eq;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::fixtures::{World, add_membership};
use crate::helpers::{Backend, NOTIFICATION_SERVICE_TOKEN, SERVICE_TOKEN, TestApp, error_code, test_epoch};
use crate::ws_client::{WsClient, wait_for_subscribers};

const LOCK_STATE_FIELDS: &str = "userId eventId locked allowedApps nextChangeAt \
    lockedApps { app until lockedBy { sessionId } } sessions { sessionId tenantId endsAt label customMessage }";

fn lock_state_changed() -> String {
    format!(
        "subscription($users: [UUID!]!, $after: String) {{ lockStateChanged(userIds: $users, after: $after) {{ {LOCK_STATE_FIELDS} }} }}"
    )
}

fn lock_state_query() -> String {
    format!("query($u: UUID!) {{ lockState(userId: $u) {{ {LOCK_STATE_FIELDS} }} }}")
}

const START: &str = "mutation($u: UUID!, $input: StartSessionInput) { startSession(userId: $u, input: $input) { id endTime plannedEndTime } }";
const END: &str = "mutation($id: UUID!) { endSession(id: $id) { id } }";
const REVOKE: &str = "mutation($id: UUID!) { revokeSession(id: $id) { id } }";
const NOTIFICATIONS: &str = "subscription($after: String) { notifications(after: $after) { eventId kind tenantId sessionId userId guardianId message } }";
const END_RECORD: &str =
    "query($id: UUID!) { session(id: $id) { status endTime plannedEndTime endedAt endKind endedBy { id } } }";

/// The locked app ids of a pushed or read state.
fn locked(state: &Value) -> Vec<String> {
    state["lockedApps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|app| app["app"].as_str().unwrap().to_owned())
        .collect()
}

/// The log position of a pushed state's `eventId`.
fn cursor(state: &Value) -> i64 {
    state["eventId"]
        .as_str()
        .unwrap()
        .trim_start_matches("ev")
        .parse()
        .unwrap()
}

/// The time `minutes` after the test epoch, as the API writes it.
fn at(minutes: i64) -> Value {
    json!((test_epoch() + Duration::minutes(minutes)).to_rfc3339())
}

/// The error code of the first answer to operation `id`.
async fn refused(client: &mut WsClient, id: &str) -> String {
    let message = client.receive().await;
    assert_eq!(message["id"], id, "{message}");
    let errors = match message["type"].as_str() {
        Some("error") => message["payload"].clone(),
        _ => {
            let complete = client.receive().await;
            assert_eq!(complete, json!({ "id": id, "type": "complete" }));
            message["payload"]["errors"].clone()
        }
    };
    errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn overlapping_sessions_in_every_tenant_merge_and_an_expiry_is_pushed_at_its_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let user = world.users["user"];
    // The user also belongs to beta, where its admin runs a session too.
    add_membership(&app.db, user, world.beta, MembershipRole::Member, false).await;
    let guardian = world.login(&app, "guardian").await;
    let beta_admin = world.login(&app, "other_admin").await;

    let mut lock_manager = WsClient::connect(&app, Some(SERVICE_TOKEN)).await;
    lock_manager
        .subscribe("lock", &lock_state_changed(), json!({ "users": [user] }))
        .await;
    // First the state in force: the fixture's "Study mode" (tiktok locked,
    // duolingo whitelisted, two hours).
    let initial = lock_manager.next_data("lock").await["lockStateChanged"].clone();
    assert_eq!(initial["userId"], json!(user));
    assert_eq!(locked(&initial), ["tiktok"]);
    assert_eq!(initial["allowedApps"], json!(["duolingo"]));
    assert_eq!(initial["nextChangeAt"], at(120));
    wait_for_subscribers(&app, 1).await;

    let homework = app
        .ok_as(
            &guardian,
            START,
            json!({ "u": user, "input": { "name": "Homework hour", "durationMinutes": 30, "config": {
                "lockProfile": { "lockedApps": ["youtube"], "whitelist": ["tiktok", "khan"] } } } }),
        )
        .await["startSession"]["id"]
        .clone();
    let merged = lock_manager.next_data("lock").await["lockStateChanged"].clone();
    assert_eq!(locked(&merged), ["tiktok", "youtube"]);
    assert_eq!(
        merged["allowedApps"],
        json!(["duolingo", "khan"]),
        "tiktok stays locked although Homework hour whitelists it: the most restrictive wins"
    );
    assert_eq!(merged["lockedApps"][0]["until"], at(120));
    assert_eq!(merged["lockedApps"][1]["until"], at(30));
    assert_eq!(
        merged["lockedApps"][1]["lockedBy"],
        json!([{ "sessionId": homework }])
    );
    assert_eq!(merged["nextChangeAt"], at(30));
    assert!(cursor(&merged) > cursor(&initial));

    app.ok_as(
        &beta_admin,
        START,
        json!({ "u": user, "input": { "name": "Beta", "durationMinutes": 60, "config": {
                "lockProfile": { "lockedApps": ["fortnite"] } } } }),
    )
    .await;
    let across = lock_manager.next_data("lock").await["lockStateChanged"].clone();
    assert_eq!(locked(&across), ["fortnite", "tiktok", "youtube"]);
    assert_eq!(across["sessions"].as_array().unwrap().len(), 3, "{across}");
    assert_eq!(across["sessions"][2]["tenantId"], json!(world.beta));

    // The service reads the same; the guardian of alpha sees alpha's part only.
    let read = app
        .ok_as(SERVICE_TOKEN, &lock_state_query(), json!({ "u": user }))
        .await["lockState"]
        .clone();
    assert_eq!(read, across);
    let theirs = app
        .ok_as(&guardian, &lock_state_query(), json!({ "u": user }))
        .await["lockState"]
        .clone();
    assert_eq!(locked(&theirs), ["tiktok", "youtube"]);

    // Homework hour ends by time: announced at that moment (no sweep runs here).
    app.clock.advance(Duration::minutes(30));
    let reduced = lock_manager.next_data("lock").await["lockStateChanged"].clone();
    assert_eq!(locked(&reduced), ["fortnite", "tiktok"]);
    assert_eq!(reduced["allowedApps"], json!(["duolingo"]));
    assert_eq!(reduced["nextChangeAt"], at(60));
    // (The guardian's login has gone idle meanwhile; the service reads it.)
    let record = app
        .ok_as(
            SERVICE_TOKEN,
            "query($id: UUID!) { isSessionActive(sessionId: $id) { active status endKind endedAt plannedEndTime } }",
            json!({ "id": homework }),
        )
        .await["isSessionActive"]
        .clone();
    assert_eq!(
        record,
        json!({ "active": false, "status": "EXPIRED", "endKind": "EXPIRED", "endedAt": at(30), "plannedEndTime": at(30) })
    );
}

async fn a_session_past_its_end_never_counts_even_before_its_expiry_is_recorded(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| settings.jobs.expire_at_deadline = false).await;
    let world = World::create(&app.db).await;
    let query = lock_state_query();
    let user = json!({ "u": world.users["user"] });
    let before = app.ok_as(SERVICE_TOKEN, &query, user.clone()).await;
    assert_eq!(locked(&before["lockState"]), ["tiktok"]);
    app.clock.advance(Duration::hours(2));
    let after = app.ok_as(SERVICE_TOKEN, &query, user).await;
    assert_eq!(after["lockState"]["locked"], false, "{after}");
    assert_eq!(after["lockState"]["lockedApps"], json!([]));
    let stored = entity::session::Entity::find_by_id(world.sessions["user"])
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.status,
        entity::session::SessionStatus::Active,
        "not yet recorded"
    );
}

async fn a_lock_manager_that_missed_two_changes_gets_both_when_it_resumes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let user = world.users["user"];
    let session = world.sessions["user"];
    let guardian = world.login(&app, "guardian").await;
    let mut lock_manager = WsClient::connect(&app, Some(SERVICE_TOKEN)).await;
    lock_manager
        .subscribe("lock", &lock_state_changed(), json!({ "users": [user] }))
        .await;
    let seen = lock_manager.next_data("lock").await["lockStateChanged"]["eventId"].clone();
    drop(lock_manager);

    app.ok_as(
        &guardian,
        "mutation($id: UUID!) { setSessionConfig(sessionId: $id, input: { lockProfile: { lockedApps: [\"tiktok\", \"snapchat\"] } }) { id } }",
        json!({ "id": session }),
    )
    .await;
    // A rename changes nothing the device enforces: no push.
    app.ok_as(
        &guardian,
        "mutation($id: UUID!) { updateSession(id: $id, input: { name: \"Renamed\" }) { id } }",
        json!({ "id": session }),
    )
    .await;
    app.ok_as(&guardian, END, json!({ "id": session })).await;

    let mut lock_manager = WsClient::connect(&app, Some(SERVICE_TOKEN)).await;
    lock_manager
        .subscribe(
            "lock",
            &lock_state_changed(),
            json!({ "users": [user], "after": seen }),
        )
        .await;
    let first = lock_manager.next_data("lock").await["lockStateChanged"].clone();
    assert_eq!(locked(&first), ["snapchat", "tiktok"]);
    assert_eq!(first["allowedApps"], json!([]));
    let second = lock_manager.next_data("lock").await["lockStateChanged"].clone();
    assert_eq!(second["locked"], false);
    assert_eq!(second["sessions"], json!([]));
    assert_eq!(second["nextChangeAt"], Value::Null);
    assert!(cursor(&first) < cursor(&second));

    // Nothing else was pending: the next push is the next change.
    wait_for_subscribers(&app, 1).await;
    app.ok_as(
        &guardian,
        START,
        json!({ "u": user, "input": { "name": "Again", "config": { "lockProfile": { "lockedApps": ["roblox"] } } } }),
    )
    .await;
    let third = lock_manager.next_data("lock").await["lockStateChanged"].clone();
    assert_eq!(locked(&third), ["roblox"]);
    assert_eq!(
        third["lockedApps"][0]["until"],
        Value::Null,
        "an open-ended session"
    );
}

async fn every_end_is_recorded_and_only_an_early_unlock_notifies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let user_id = world.users["user"];
    let guardian_id = world.users["guardian"];
    let guardian = world.login(&app, "guardian").await;
    let user = world.login(&app, "user").await;
    let admin = world.login(&app, "admin").await;
    let mut notification_service = WsClient::connect(&app, Some(NOTIFICATION_SERVICE_TOKEN)).await;
    notification_service
        .subscribe("n", NOTIFICATIONS, json!({}))
        .await;
    wait_for_subscribers(&app, 1).await;
    let start = async |input: Value| {
        app.ok_as(&guardian, START, json!({ "u": user_id, "input": input }))
            .await["startSession"]["id"]
            .clone()
    };

    // The guardian ends her own session: recorded, and nobody is notified.
    let by_guardian = start(json!({ "name": "G", "durationMinutes": 60 })).await;
    app.ok_as(&guardian, END, json!({ "id": by_guardian })).await;
    let record = app
        .ok_as(&guardian, END_RECORD, json!({ "id": by_guardian }))
        .await["session"]
        .clone();
    assert_eq!(
        record,
        json!({ "status": "ENDED", "endTime": at(0), "plannedEndTime": at(60), "endedAt": at(0),
                "endKind": "ENDED_BY_GUARDIAN", "endedBy": { "id": guardian_id } })
    );
    // An administrator ends one; another is revoked.
    let by_admin = start(json!({ "name": "A", "durationMinutes": 60 })).await;
    app.ok_as(&admin, END, json!({ "id": by_admin })).await;
    let record = app.ok_as(&guardian, END_RECORD, json!({ "id": by_admin })).await["session"].clone();
    assert_eq!(record["endKind"], "ENDED_BY_ADMIN");
    assert_eq!(record["endedBy"]["id"], json!(world.users["admin"]));
    let revoked = start(json!({ "name": "R" })).await;
    app.ok_as(&guardian, REVOKE, json!({ "id": revoked })).await;
    let record = app.ok_as(&guardian, END_RECORD, json!({ "id": revoked })).await["session"].clone();
    assert_eq!(record["endKind"], "REVOKED");
    assert_eq!(record["plannedEndTime"], Value::Null, "it had no end");

    // The supervised user unlocks early: the one notification, with its message.
    let unlocked =
        start(json!({ "name": "U", "durationMinutes": 45, "config": { "customMessage": "Back to work!" } }))
            .await;
    app.clock.advance(Duration::minutes(5));
    app.ok_as(&user, END, json!({ "id": unlocked })).await;
    let record = app.ok_as(&guardian, END_RECORD, json!({ "id": unlocked })).await["session"].clone();
    assert_eq!(
        record,
        json!({ "status": "ENDED", "endTime": at(5), "plannedEndTime": at(45), "endedAt": at(5),
                "endKind": "UNLOCKED_EARLY", "endedBy": { "id": user_id } })
    );
    let notification = notification_service.next_data("n").await["notifications"].clone();
    assert_eq!(notification["kind"], "UNLOCK");
    assert_eq!(
        notification["sessionId"], unlocked,
        "not the guardian's own end, nor the admin's"
    );
    assert_eq!(notification["guardianId"], json!(guardian_id));
    assert_eq!(notification["userId"], json!(user_id));
    assert_eq!(notification["tenantId"], json!(world.alpha));
    assert_eq!(notification["message"], "Back to work!");

    // A notification service that reconnects after it resumes from its cursor.
    let mut again = WsClient::connect(&app, Some(NOTIFICATION_SERVICE_TOKEN)).await;
    again
        .subscribe("n", NOTIFICATIONS, json!({ "after": "ev0" }))
        .await;
    assert_eq!(again.next_data("n").await["notifications"], notification);

    // Past unlocks, for guardians and administrators only.
    const UNLOCKS: &str = "{ unlocks { totalCount edges { node { id endKind } } } }";
    let listed = app.ok_as(&guardian, UNLOCKS, json!({})).await;
    assert_eq!(
        listed["unlocks"],
        json!({ "totalCount": 1, "edges": [{ "node": { "id": unlocked, "endKind": "UNLOCKED_EARLY" } }] })
    );
    assert_eq!(app.ok_as(&admin, UNLOCKS, json!({})).await, listed);
    let error = app.error_as(Some(&user), UNLOCKS, json!({})).await;
    assert_eq!(error_code(&error), "FORBIDDEN");
    let filtered = app
        .ok_as(
            &guardian,
            "{ sessions(filter: { endKind: [ENDED_BY_GUARDIAN, REVOKED] }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(filtered["sessions"]["totalCount"], 2);
}

async fn a_service_credential_may_do_what_it_is_granted_and_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let user = world.users["user"];
    let session = world.sessions["user"];
    for (token, query) in [
        (SERVICE_TOKEN, "{ sessions { totalCount } }"),
        (SERVICE_TOKEN, "{ me { user { id } } }"),
        (SERVICE_TOKEN, "{ unlocks { totalCount } }"),
        (
            SERVICE_TOKEN,
            "mutation { createSession(input: { name: \"x\" }) { id } }",
        ),
        (
            NOTIFICATION_SERVICE_TOKEN,
            "query($u: UUID!) { lockState(userId: $u) { locked } }",
        ),
        (
            NOTIFICATION_SERVICE_TOKEN,
            "query($s: UUID!) { isSessionActive(sessionId: $s) { active } }",
        ),
        (NOTIFICATION_SERVICE_TOKEN, "{ sessions { totalCount } }"),
    ] {
        let error = app
            .error_as(Some(token), query, json!({ "u": user, "s": session }))
            .await;
        assert_eq!(error_code(&error), "FORBIDDEN", "{query}: {error}");
    }
    let granted = app
        .ok_as(
            SERVICE_TOKEN,
            "query($u: UUID!) { lockState(userId: $u) { locked } }",
            json!({ "u": user }),
        )
        .await;
    assert_eq!(granted["lockState"]["locked"], true);

    let mut lock_manager = WsClient::connect(&app, Some(SERVICE_TOKEN)).await;
    lock_manager.subscribe("n", NOTIFICATIONS, json!({})).await;
    assert_eq!(refused(&mut lock_manager, "n").await, "FORBIDDEN");
    lock_manager
        .subscribe("s", "subscription { sessionStatusChanged { change } }", json!({}))
        .await;
    assert_eq!(refused(&mut lock_manager, "s").await, "FORBIDDEN");
    lock_manager
        .subscribe(
            "u",
            "subscription { unlockNotifications { sessionId } }",
            json!({}),
        )
        .await;
    assert_eq!(refused(&mut lock_manager, "u").await, "FORBIDDEN");

    let mut notification_service = WsClient::connect(&app, Some(NOTIFICATION_SERVICE_TOKEN)).await;
    notification_service
        .subscribe("l", &lock_state_changed(), json!({ "users": [user] }))
        .await;
    assert_eq!(refused(&mut notification_service, "l").await, "FORBIDDEN");

    // People follow their own subscriptions, not the services'.
    let guardian = world.login(&app, "guardian").await;
    let mut dashboard = WsClient::connect(&app, Some(&guardian)).await;
    dashboard
        .subscribe("l", &lock_state_changed(), json!({ "users": [user] }))
        .await;
    assert_eq!(refused(&mut dashboard, "l").await, "FORBIDDEN");
    dashboard.subscribe("n", NOTIFICATIONS, json!({})).await;
    assert_eq!(refused(&mut dashboard, "n").await, "FORBIDDEN");

    // And the lock manager must name whom it follows, within bounds.
    lock_manager
        .subscribe("l", &lock_state_changed(), json!({ "users": [] }))
        .await;
    assert_eq!(refused(&mut lock_manager, "l").await, "BAD_USER_INPUT");
}

backend_tests!(
    overlapping_sessions_in_every_tenant_merge_and_an_expiry_is_pushed_at_its_end,
    a_session_past_its_end_never_counts_even_before_its_expiry_is_recorded,
    a_lock_manager_that_missed_two_changes_gets_both_when_it_resumes,
    every_end_is_recorded_and_only_an_early_unlock_notifies,
    a_service_credential_may_do_what_it_is_granted_and_nothing_else,
);
