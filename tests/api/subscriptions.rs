//! Live session status over WebSocket: who receives what, expiry, unlock
//! notifications, and delivery across instances.

use chrono::Duration;
use serde_json::{Value, json};
use session_manager::jobs::sweep_expired_sessions;

use crate::backend_tests;
use crate::fixtures::World;
use crate::helpers::{Backend, TestApp, TestDatabase};
use crate::ws_client::{WsClient, wait_for_subscribers};

const STATUS: &str = "subscription($session: UUID, $user: UUID) {
  sessionStatusChanged(sessionId: $session, userId: $user) {
    change sessionId status userId guardianId occurredAt
    session { name status config { label } }
  }
}";

const RENAME: &str =
    "mutation($id: UUID!, $name: String!) { updateSession(id: $id, input: { name: $name }) { id } }";
const END: &str = "mutation($id: UUID!) { endSession(id: $id) { status } }";

async fn rename(app: &TestApp, token: &str, session: impl serde::Serialize, name: &str) {
    app.ok_as(token, RENAME, json!({ "id": session, "name": name }))
        .await;
}

async fn a_guardian_sees_every_change_of_a_supervised_session_live(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    let user = world.login(&app, "user").await;
    let mut dashboard = WsClient::connect(&app, Some(&guardian)).await;
    dashboard.subscribe("live", STATUS, json!({})).await;
    wait_for_subscribers(&app, 1).await;
    let session = world.sessions["user"];

    rename(&app, &guardian, session, "Deep work").await;
    let event = dashboard.next_data("live").await["sessionStatusChanged"].clone();
    assert_eq!(event["change"], "UPDATED");
    assert_eq!(event["sessionId"], json!(session));
    assert_eq!(event["status"], "ACTIVE");
    assert_eq!(event["session"]["name"], "Deep work");

    app.ok_as(
        &guardian,
        "mutation($id: UUID!) { setSessionConfig(sessionId: $id, input: { label: \"focus\" }) { id } }",
        json!({ "id": session }),
    )
    .await;
    let event = dashboard.next_data("live").await["sessionStatusChanged"].clone();
    assert_eq!(event["change"], "CONFIG_CHANGED");
    assert_eq!(event["session"]["config"]["label"], "focus");

    app.ok_as(&user, END, json!({ "id": session })).await;
    let event = dashboard.next_data("live").await["sessionStatusChanged"].clone();
    assert_eq!(event["change"], "ENDED");
    assert_eq!(event["status"], "ENDED");
    assert_eq!(event["userId"], json!(world.users["user"]));
    assert_eq!(event["guardianId"], json!(world.users["guardian"]));
}

async fn only_subscribers_allowed_to_see_a_session_receive_its_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let super_admin = world.login(&app, "super_admin").await;
    let mut clients = Vec::new();
    for handle in [
        "user",
        "other_user",
        "guardian",
        "other_guardian",
        "admin",
        "other_admin",
    ] {
        let token = world.login(&app, handle).await;
        let mut client = WsClient::connect(&app, Some(&token)).await;
        client.subscribe("s", STATUS, json!({})).await;
        clients.push((handle, client));
    }
    wait_for_subscribers(&app, clients.len()).await;
    // Change each session once, in this order; everyone's first event must be
    // the first change they may see.
    for (session, tenant) in [
        ("other_user", world.alpha),
        ("user", world.alpha),
        ("beta", world.beta),
    ] {
        app.ok_as(
            &super_admin,
            "mutation($t: UUID!) { switchTenant(tenantId: $t) { role } }",
            json!({ "t": tenant }),
        )
        .await;
        rename(
            &app,
            &super_admin,
            world.sessions[session],
            &format!("renamed {session}"),
        )
        .await;
    }
    let expected = [
        ("user", "user"),
        ("other_user", "other_user"),
        ("guardian", "user"),
        ("other_guardian", "other_user"),
        ("admin", "other_user"),
        ("other_admin", "beta"),
    ];
    for ((handle, client), (expected_handle, session)) in clients.iter_mut().zip(expected) {
        assert_eq!(*handle, expected_handle);
        let event = client.next_data("s").await;
        assert_eq!(
            event["sessionStatusChanged"]["sessionId"],
            json!(world.sessions[session]),
            "{handle} first sees the change of {session}"
        );
    }
    let (_, admin) = &mut clients[4];
    let second = admin.next_data("s").await;
    assert_eq!(
        second["sessionStatusChanged"]["sessionId"],
        json!(world.sessions["user"]),
        "the admin sees both alpha sessions"
    );
}

/// Selects only what the event carries: one resolution for the tenant.
const CARRIED: &str = "subscription { sessionStatusChanged { change sessionId session { name status } } }";
/// Reaches the session's config, read in the viewer's scope: one
/// resolution per viewer.
const BEYOND: &str = "subscription { sessionStatusChanged { sessionId session { name config { label } } } }";

async fn an_event_is_resolved_once_for_every_subscriber_of_the_same_document(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let mut clients = Vec::new();
    for handle in ["user", "guardian", "admin", "other_guardian"] {
        let token = world.login(&app, handle).await;
        let mut client = WsClient::connect(&app, Some(&token)).await;
        client.subscribe("s", CARRIED, json!({})).await;
        clients.push((handle, client));
    }
    wait_for_subscribers(&app, clients.len()).await;
    let before = app.state.gate.executed_operations();
    rename(&app, &admin, world.sessions["user"], "Shared").await;
    rename(&app, &admin, world.sessions["other_user"], "Also shared").await;
    for (handle, client) in &mut clients {
        let first = client.next_data("s").await["sessionStatusChanged"].clone();
        let expected = if *handle == "other_guardian" {
            "other_user"
        } else {
            "user"
        };
        assert_eq!(
            first["sessionId"],
            json!(world.sessions[expected]),
            "{handle} first sees the change of {expected}"
        );
    }
    let (_, admin_client) = &mut clients[2];
    let second = admin_client.next_data("s").await["sessionStatusChanged"].clone();
    assert_eq!(second["session"]["name"], "Also shared");
    assert_eq!(
        app.state.gate.executed_operations() - before,
        4,
        "two renames, and one resolution of each for all four subscribers"
    );
}

async fn a_document_that_reaches_beyond_the_event_is_resolved_once_per_viewer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let mut clients = Vec::new();
    // The guardian on two devices, and the admin.
    for handle in ["guardian", "guardian", "admin"] {
        let token = world.login(&app, handle).await;
        let mut client = WsClient::connect(&app, Some(&token)).await;
        client.subscribe("s", BEYOND, json!({})).await;
        clients.push(client);
    }
    wait_for_subscribers(&app, clients.len()).await;
    app.ok_as(
        &admin,
        "mutation($id: UUID!) { setSessionConfig(sessionId: $id, input: { label: \"focus\" }) { id } }",
        json!({ "id": world.sessions["user"] }),
    )
    .await;
    // Counted once every resolution of the config change is done.
    for client in &mut clients {
        client.next_data("s").await;
    }
    let before = app.state.gate.executed_operations();
    rename(&app, &admin, world.sessions["user"], "Scoped").await;
    for client in &mut clients {
        let event = client.next_data("s").await["sessionStatusChanged"].clone();
        assert_eq!(event["session"]["name"], "Scoped");
        assert_eq!(event["session"]["config"]["label"], "focus");
    }
    assert_eq!(
        app.state.gate.executed_operations() - before,
        3,
        "the rename, one resolution for the guardian's two connections and one for the admin"
    );
    // A session the guardian does not supervise: their group does not
    // even resolve it.
    let before = app.state.gate.executed_operations();
    rename(&app, &admin, world.sessions["other_user"], "Not theirs").await;
    let event = clients[2].next_data("s").await["sessionStatusChanged"].clone();
    assert_eq!(event["session"]["name"], "Not theirs");
    assert_eq!(
        app.state.gate.executed_operations() - before,
        2,
        "the rename, and the admin's resolution only"
    );
}

async fn a_subscription_can_be_narrowed_to_one_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let mut client = WsClient::connect(&app, Some(&admin)).await;
    client
        .subscribe("one", STATUS, json!({ "session": world.sessions["user"] }))
        .await;
    client
        .subscribe("other", STATUS, json!({ "user": world.users["other_user"] }))
        .await;
    wait_for_subscribers(&app, 2).await;
    rename(&app, &admin, world.sessions["other_user"], "first").await;
    rename(&app, &admin, world.sessions["user"], "second").await;
    let mut seen = [client.next().await, client.next().await];
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen[0].0, "one");
    assert_eq!(
        seen[0].1["data"]["sessionStatusChanged"]["session"]["name"],
        "second"
    );
    assert_eq!(seen[1].0, "other");
    assert_eq!(
        seen[1].1["data"]["sessionStatusChanged"]["session"]["name"],
        "first"
    );
}

async fn a_session_past_its_end_time_reads_as_expired_and_the_sweeper_announces_it(backend: Backend) {
    // The sweep alone: the deadline scheduler would record it first.
    let app = TestApp::spawn_with(backend, |settings| settings.jobs.expire_at_deadline = false).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    let started = app
        .ok_as(
            &guardian,
            "mutation($u: UUID!) { startSession(userId: $u, input: { name: \"Half hour\", durationMinutes: 30 }) { id status endTime } }",
            json!({ "u": world.users["user"] }),
        )
        .await;
    let id = started["startSession"]["id"].clone();
    let mut dashboard = WsClient::connect(&app, Some(&guardian)).await;
    dashboard
        .subscribe("live", STATUS, json!({ "session": id }))
        .await;
    wait_for_subscribers(&app, 1).await;
    const READ: &str =
        "query($id: UUID!) { session(id: $id) { status } isSessionActive(sessionId: $id) { active status } }";

    app.clock.advance(Duration::minutes(29));
    assert_eq!(sweep_expired_sessions(&app.state).await.unwrap(), 0);
    let read = app.ok_as(&guardian, READ, json!({ "id": id })).await;
    assert_eq!(read["session"]["status"], "ACTIVE");
    assert_eq!(read["isSessionActive"]["active"], true);

    app.clock.advance(Duration::minutes(1));
    let read = app.ok_as(&guardian, READ, json!({ "id": id })).await;
    assert_eq!(
        read["session"]["status"], "EXPIRED",
        "no reader sees an active session past its end time"
    );
    assert_eq!(
        read["isSessionActive"],
        json!({ "active": false, "status": "EXPIRED" })
    );
    let filtered = app
        .ok_as(
            &guardian,
            "{ sessions(filter: { status: [ACTIVE] }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        filtered["sessions"]["totalCount"], 1,
        "only the fixture session is still active"
    );

    assert_eq!(sweep_expired_sessions(&app.state).await.unwrap(), 1);
    let event = dashboard.next_data("live").await["sessionStatusChanged"].clone();
    assert_eq!(event["change"], "EXPIRED");
    assert_eq!(event["status"], "EXPIRED");
    assert_eq!(event["occurredAt"], started["startSession"]["endTime"]);
    assert_eq!(
        sweep_expired_sessions(&app.state).await.unwrap(),
        0,
        "each session expires once"
    );
    let error = app.error_as(Some(&guardian), END, json!({ "id": id })).await;
    assert_eq!(crate::helpers::error_code(&error), "CONFLICT");
}

async fn a_revoked_login_session_stops_its_subscriptions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    let mut dashboard = WsClient::connect(&app, Some(&guardian)).await;
    dashboard.subscribe("live", STATUS, json!({})).await;
    wait_for_subscribers(&app, 1).await;
    app.ok_as(&guardian, "mutation { logout }", json!({})).await;
    let admin = world.login(&app, "admin").await;
    rename(&app, &admin, world.sessions["user"], "after logout").await;
    let (id, payload) = dashboard.next().await;
    assert_eq!(id, "live");
    assert_eq!(
        payload["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{payload}"
    );
    assert_eq!(
        dashboard.receive().await,
        json!({ "id": "live", "type": "complete" })
    );
}

async fn an_early_unlock_notifies_the_guardian_with_the_custom_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    let user = world.login(&app, "user").await;
    const START: &str = "mutation($u: UUID!, $notify: Boolean!) {
      startSession(userId: $u, input: { name: \"Study\", durationMinutes: 60,
        config: { notifyOnUnlock: $notify, customMessage: \"Alex unlocked early\", lockProfile: { lockedApps: [\"tiktok\"] } } }) { id }
    }";
    let quiet = app
        .ok_as(
            &guardian,
            START,
            json!({ "u": world.users["user"], "notify": false }),
        )
        .await;
    let loud = app
        .ok_as(
            &guardian,
            START,
            json!({ "u": world.users["user"], "notify": true }),
        )
        .await;
    let mut inbox = WsClient::connect(&app, Some(&guardian)).await;
    inbox
        .subscribe(
            "inbox",
            "subscription { unlockNotifications { sessionId userId message } }",
            json!({}),
        )
        .await;
    let other_guardian = world.login(&app, "other_guardian").await;
    let mut other_inbox = WsClient::connect(&app, Some(&other_guardian)).await;
    other_inbox
        .subscribe(
            "inbox",
            "subscription { unlockNotifications { sessionId } }",
            json!({}),
        )
        .await;
    wait_for_subscribers(&app, 2).await;
    app.ok_as(&user, END, json!({ "id": quiet["startSession"]["id"] }))
        .await;
    app.ok_as(&user, END, json!({ "id": loud["startSession"]["id"] }))
        .await;
    let notification = inbox.next_data("inbox").await["unlockNotifications"].clone();
    assert_eq!(
        notification,
        json!({ "sessionId": loud["startSession"]["id"], "userId": world.users["user"], "message": "Alex unlocked early" }),
        "only the session with notifyOnUnlock notifies"
    );
    // The other guardian supervises neither session: their first notification
    // is about their own supervised user.
    let own = app
        .ok_as(
            &other_guardian,
            "mutation($u: UUID!) { startSession(userId: $u, input: { durationMinutes: 5 }) { id } }",
            json!({ "u": world.users["other_user"] }),
        )
        .await;
    let other_user = world.login(&app, "other_user").await;
    app.ok_as(&other_user, END, json!({ "id": own["startSession"]["id"] }))
        .await;
    let theirs = other_inbox.next_data("inbox").await;
    assert_eq!(
        theirs["unlockNotifications"]["sessionId"],
        own["startSession"]["id"]
    );
}

async fn an_anonymous_subscription_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = WsClient::connect(&app, None).await;
    client.subscribe("s", STATUS, json!({})).await;
    let message = client.receive().await;
    let errors = match message["type"].as_str() {
        Some("error") => message["payload"].clone(),
        _ => message["payload"]["errors"].clone(),
    };
    assert_eq!(errors[0]["extensions"]["code"], "UNAUTHENTICATED", "{message}");
}

/// Two server instances on one PostgreSQL database: a change made through
/// one reaches a subscriber of the other (LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_instance_reaches_a_subscriber_of_another() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("TEST_POSTGRES_URL is not set: skipped");
        return;
    };
    let database = TestDatabase::create(backend).await;
    let first = TestApp::spawn_on(database.clone(), |_| {}).await;
    let second = TestApp::spawn_on(database, |_| {}).await;
    let world = World::create(&first.db).await;
    let guardian = world.login(&second, "guardian").await;
    let mut dashboard = WsClient::connect(&second, Some(&guardian)).await;
    dashboard.subscribe("live", STATUS, json!({})).await;
    wait_for_subscribers(&second, 1).await;
    let admin = world.login(&first, "admin").await;
    rename(&first, &admin, world.sessions["user"], "from the first instance").await;
    let event: Value = dashboard.next_data("live").await;
    assert_eq!(
        event["sessionStatusChanged"]["session"]["name"],
        "from the first instance"
    );
    assert_eq!(first.state.events.subscriber_count(), first.baseline_subscribers);
}

async fn an_open_connection_is_closed_with_4401_when_its_login_session_ends(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let mut client = WsClient::connect(&app, Some(&admin)).await;
    client
        .subscribe("before", "{ me { user { id } } }", json!({}))
        .await;
    assert!(client.next_data("before").await["me"]["user"]["id"].is_string());
    assert_eq!(client.receive().await["type"], "complete");
    client.subscribe("live", STATUS, json!({})).await;
    wait_for_subscribers(&app, 1).await;
    app.ok_as(&admin, "mutation { logout }", json!({})).await;
    let (last, code, reason) = client.closed().await;
    assert_eq!(code, 4401, "{reason}");
    assert!(reason.contains("log in again"), "{reason}");
    assert_eq!(last.len(), 2, "{last:?}");
    assert_eq!(last[0]["id"], "live");
    let error = &last[0]["payload"]["errors"][0];
    assert_eq!(error["extensions"]["code"], "UNAUTHENTICATED", "{error}");
    assert_eq!(error["extensions"]["reason"], "logout", "{error}");
    assert_eq!(last[1], json!({ "id": "live", "type": "complete" }));
}

async fn a_subscription_ends_when_its_subscriber_loses_their_role(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let super_admin = world.login(&app, "super_admin").await;
    app.ok_as(
        &super_admin,
        "mutation($t: UUID!) { switchTenant(tenantId: $t) { role } }",
        json!({ "t": world.alpha }),
    )
    .await;
    let guardian = world.login(&app, "guardian").await;
    let mut dashboard = WsClient::connect(&app, Some(&guardian)).await;
    dashboard.subscribe("live", STATUS, json!({})).await;
    wait_for_subscribers(&app, 1).await;
    app.ok_as(
        &super_admin,
        "mutation($u: UUID!) { updateMembershipRole(userId: $u, role: MEMBER) { role } }",
        json!({ "u": world.users["guardian"] }),
    )
    .await;
    rename(&app, &super_admin, world.sessions["user"], "after the demotion").await;
    let (_, payload) = dashboard.next().await;
    assert_eq!(
        payload["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{payload}"
    );
    assert_eq!(
        dashboard.receive().await,
        json!({ "id": "live", "type": "complete" })
    );
}

backend_tests!(
    an_open_connection_is_closed_with_4401_when_its_login_session_ends,
    a_subscription_ends_when_its_subscriber_loses_their_role,
    a_guardian_sees_every_change_of_a_supervised_session_live,
    only_subscribers_allowed_to_see_a_session_receive_its_events,
    an_event_is_resolved_once_for_every_subscriber_of_the_same_document,
    a_document_that_reaches_beyond_the_event_is_resolved_once_per_viewer,
    a_subscription_can_be_narrowed_to_one_session,
    a_session_past_its_end_time_reads_as_expired_and_the_sweeper_announces_it,
    a_revoked_login_session_stops_its_subscriptions,
    an_early_unlock_notifies_the_guardian_with_the_custom_message,
    an_anonymous_subscription_is_refused,
);
