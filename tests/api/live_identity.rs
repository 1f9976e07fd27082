//! Identity kept in memory and kept right by events: what a warm request
//! reads, what counts as activity, subscriptions that end on time (on this
//! instance and on another), staying signed in, and administrators
//! watching a member's login session.

use std::sync::atomic::Ordering;

use chrono::Duration;
use entity::session_context_change::{self, ContextChangeEventType};
use entity::session_log::{self, SessionEndReason};
use entity::tenant_membership::MembershipRole;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::backend_tests;
use crate::fixtures::{World, add_membership};
use crate::helpers::{Backend, TestApp, TestDatabase, error_code, test_epoch};
use crate::ws_client::{WsClient, wait_for_subscribers};

const STATUS: &str = "subscription { sessionStatusChanged { change session { name } } }";
const EVENTS: &str = "subscription($id: UUID) {
  loginSessionEvents(loginSessionId: $id) { kind loginSessionId endReason expiresAt }
}";
const RENAME: &str =
    "mutation($id: UUID!, $name: String!) { updateSession(id: $id, input: { name: $name }) { id } }";
const EXTEND: &str = "mutation {
  extendLoginSession { expiresAt expiryReason loginSession { id lastSeenAt } }
}";
const ME: &str = "{ me { user { id } } }";

/// The newest login session of `handle` (open or not).
async fn login_session_of(app: &TestApp, world: &World, handle: &str) -> session_log::Model {
    session_log::Entity::find()
        .filter(session_log::Column::UserId.eq(world.users[handle]))
        .order_by_desc(session_log::Column::LoginAt)
        .one(&app.db)
        .await
        .unwrap()
        .expect("a login session")
}

/// The id of the newest event in the log.
async fn newest_event(app: &TestApp) -> i64 {
    entity::event::Entity::find()
        .order_by_desc(entity::event::Column::Id)
        .one(&app.db)
        .await
        .unwrap()
        .expect("an event")
        .id
}

/// Waits until `app` has delivered every event logged so far (on any
/// instance): the bound within which a change made elsewhere applies here.
async fn deliver_everything(app: &TestApp) {
    let newest = newest_event(app).await;
    assert!(
        app.state
            .events
            .delivered_through(newest, std::time::Duration::from_secs(10))
            .await,
        "event {newest} delivered"
    );
}

async fn a_warm_request_reads_nothing_about_the_caller_from_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    const EVERYTHING: &str = "{ me {
      user { id email } isSuperAdmin role
      loginSession { id lastSeenAt isCurrent }
      memberships { role isDefault }
    } }";
    let cold = app.ok_as(&admin, EVERYTHING, json!({})).await;
    let before = app.statements.load(Ordering::SeqCst);
    let warm = app.ok_as(&admin, EVERYTHING, json!({})).await;
    assert_eq!(
        app.statements.load(Ordering::SeqCst) - before,
        0,
        "no statement for a warm `me`"
    );
    assert_eq!(cold, warm);
    assert_eq!(warm["me"]["role"], "ADMIN");
    assert_eq!(warm["me"]["loginSession"]["isCurrent"], true);
}

async fn events_delivered_to_a_listener_are_not_activity_but_its_requests_are(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    let admin = world.login(&app, "admin").await;
    let mut dashboard = WsClient::connect(&app, Some(&guardian)).await;
    dashboard.subscribe("live", STATUS, json!({})).await;
    wait_for_subscribers(&app, 1).await;
    for minute in 1..=3 {
        app.clock.advance(Duration::minutes(2));
        let name = format!("renamed at {minute}");
        app.ok_as(
            &admin,
            RENAME,
            json!({ "id": world.sessions["user"], "name": name }),
        )
        .await;
        let event = dashboard.next_data("live").await;
        assert_eq!(event["sessionStatusChanged"]["session"]["name"], name);
    }
    app.state.identity.settle_activity().await;
    let log = login_session_of(&app, &world, "guardian").await;
    assert_eq!(log.last_seen_at, test_epoch(), "delivered events moved nothing");
    app.ok_as(&guardian, ME, json!({})).await;
    app.state.identity.settle_activity().await;
    let log = login_session_of(&app, &world, "guardian").await;
    assert_eq!(log.last_seen_at, test_epoch() + Duration::minutes(6));
}

async fn a_dashboard_that_only_listens_ends_at_its_idle_deadline_with_4401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    let mut dashboard = WsClient::connect(&app, Some(&guardian)).await;
    dashboard.subscribe("live", STATUS, json!({})).await;
    wait_for_subscribers(&app, 1).await;
    // No sweeper runs in the tests: the connection's own timer ends it.
    app.clock.advance(Duration::minutes(30));
    let (last, code, reason) = dashboard.closed().await;
    assert_eq!(code, 4401, "{reason}");
    assert!(reason.contains("inactivity"), "{reason}");
    assert_eq!(last.len(), 2, "{last:?}");
    let error = &last[0]["payload"]["errors"][0];
    assert_eq!(error_code(error), "UNAUTHENTICATED", "{error}");
    assert_eq!(error["extensions"]["reason"], "expired_idle", "{error}");
    assert_eq!(last[1], json!({ "id": "live", "type": "complete" }));
    let log = login_session_of(&app, &world, "guardian").await;
    assert_eq!(log.end_reason, Some(SessionEndReason::ExpiredIdle));
    let refused = app.error_as(Some(&guardian), ME, json!({})).await;
    assert_eq!(refused["extensions"]["reason"], "expired_idle", "{refused}");
}

async fn staying_signed_in_moves_the_deadline_and_tells_every_client_of_the_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "user").await;
    let mut other_tab = WsClient::connect(&app, Some(&token)).await;
    other_tab.subscribe("events", EVENTS, json!({})).await;
    wait_for_subscribers(&app, 1).await;
    app.clock.advance(Duration::minutes(28));
    let extended = app.ok_as(&token, EXTEND, json!({})).await["extendLoginSession"].clone();
    let deadline = test_epoch() + Duration::minutes(58);
    assert_eq!(extended["expiresAt"], json!(deadline.to_rfc3339()));
    assert_eq!(extended["expiryReason"], "expired_idle");
    let now = (test_epoch() + Duration::minutes(28)).to_rfc3339();
    assert_eq!(extended["loginSession"]["lastSeenAt"], json!(now));
    assert_eq!(
        login_session_of(&app, &world, "user").await.last_seen_at,
        test_epoch() + Duration::minutes(28),
        "written at once, not batched"
    );
    let told = other_tab.next_data("events").await["loginSessionEvents"].clone();
    assert_eq!(told["kind"], "EXTENDED");
    assert_eq!(told["expiresAt"], json!(deadline.to_rfc3339()));
    // Past the old deadline, the tab that only listens is still signed in.
    app.clock.advance(Duration::minutes(5));
    other_tab.subscribe("me", ME, json!({})).await;
    assert!(other_tab.next_data("me").await["me"]["user"]["id"].is_string());
}

async fn an_administrator_watches_a_members_login_session_and_nobody_else_may(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let member = world.login(&app, "user").await;
    let watched = login_session_of(&app, &world, "user").await.id;
    for outsider in ["other_admin", "guardian", "other_user"] {
        let token = world.login(&app, outsider).await;
        let mut client = WsClient::connect(&app, Some(&token)).await;
        client.subscribe("watch", EVENTS, json!({ "id": watched })).await;
        let (_, refused) = client.next().await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{outsider}: {refused}"
        );
        assert_eq!(
            client.receive().await,
            json!({ "id": "watch", "type": "complete" })
        );
    }
    let admin = world.login(&app, "admin").await;
    let mut console = WsClient::connect(&app, Some(&admin)).await;
    console.subscribe("watch", EVENTS, json!({ "id": watched })).await;
    wait_for_subscribers(&app, 1).await;
    app.ok_as(&member, EXTEND, json!({})).await;
    let extended = console.next_data("watch").await["loginSessionEvents"].clone();
    assert_eq!(extended["kind"], "EXTENDED");
    assert_eq!(extended["loginSessionId"], json!(watched));
    app.ok_as(
        &admin,
        "mutation($id: UUID!) { revokeLoginSession(id: $id) { id } }",
        json!({ "id": watched }),
    )
    .await;
    let revoked = console.next_data("watch").await["loginSessionEvents"].clone();
    assert_eq!(revoked["kind"], "REVOKED");
    assert_eq!(revoked["endReason"], "revoked");
    assert_eq!(
        console.receive().await,
        json!({ "id": "watch", "type": "complete" })
    );
    console.subscribe("me", ME, json!({})).await;
    assert!(
        console.next_data("me").await["me"]["user"]["id"].is_string(),
        "the administrator's own connection stays open"
    );
}

async fn an_administrators_watch_ends_when_the_login_session_leaves_the_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    add_membership(
        &app.db,
        world.users["user"],
        world.beta,
        MembershipRole::Member,
        false,
    )
    .await;
    let member = world.login(&app, "user").await;
    let watched = login_session_of(&app, &world, "user").await.id;
    let admin = world.login(&app, "admin").await;
    let mut console = WsClient::connect(&app, Some(&admin)).await;
    console.subscribe("watch", EVENTS, json!({ "id": watched })).await;
    wait_for_subscribers(&app, 1).await;
    app.ok_as(
        &member,
        "mutation($t: UUID!) { switchTenant(tenantId: $t) { role } }",
        json!({ "t": world.beta }),
    )
    .await;
    let switched = console.next_data("watch").await["loginSessionEvents"].clone();
    assert_eq!(switched["kind"], "TENANT_SWITCHED");
    assert_eq!(
        console.receive().await,
        json!({ "id": "watch", "type": "complete" }),
        "nothing of what it does in another tenant"
    );
}

async fn a_change_of_role_ends_the_subscriptions_at_once_but_keeps_the_socket(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    let admin = world.login(&app, "admin").await;
    let mut dashboard = WsClient::connect(&app, Some(&guardian)).await;
    dashboard.subscribe("live", STATUS, json!({})).await;
    wait_for_subscribers(&app, 1).await;
    demote(&app, &admin, world.users["guardian"]).await;
    // No event about any session is needed for it to end.
    let (_, payload) = dashboard.next().await;
    assert_eq!(
        payload["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{payload}"
    );
    assert_eq!(
        dashboard.receive().await,
        json!({ "id": "live", "type": "complete" })
    );
    dashboard.subscribe("me", "{ me { role } }", json!({})).await;
    assert_eq!(dashboard.next_data("me").await["me"]["role"], "MEMBER");
}

async fn demote(app: &TestApp, admin: &str, user_id: Uuid) {
    app.ok_as(
        admin,
        "mutation($u: UUID!) { updateMembershipRole(userId: $u, role: MEMBER) { role } }",
        json!({ "u": user_id }),
    )
    .await;
}

async fn delivering_an_event_reads_nothing_per_subscriber(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let session = world.sessions["user"];
    let rename = async |name: &str, dashboards: &mut [WsClient]| {
        let before = app.statements.load(Ordering::SeqCst);
        app.ok_as(&admin, RENAME, json!({ "id": session, "name": name }))
            .await;
        for dashboard in dashboards {
            let event = dashboard.next_data("live").await;
            assert_eq!(event["sessionStatusChanged"]["session"]["name"], name);
        }
        app.statements.load(Ordering::SeqCst) - before
    };
    // Warm: the admin's identity, the statements' first use.
    rename("warm", &mut []).await;
    let alone = rename("no subscriber", &mut []).await;
    let mut dashboards = Vec::new();
    for handle in ["guardian", "admin"] {
        let token = world.login(&app, handle).await;
        let mut dashboard = WsClient::connect(&app, Some(&token)).await;
        dashboard.subscribe("live", STATUS, json!({})).await;
        dashboards.push(dashboard);
    }
    wait_for_subscribers(&app, 2).await;
    rename("first delivery", &mut dashboards).await;
    let watched = rename("watched", &mut dashboards).await;
    assert_eq!(
        watched, alone,
        "the same statements with two subscribers as with none: visibility and \
         `session` come from memory and from the event"
    );
}

backend_tests!(
    delivering_an_event_reads_nothing_per_subscriber,
    a_warm_request_reads_nothing_about_the_caller_from_the_database,
    events_delivered_to_a_listener_are_not_activity_but_its_requests_are,
    a_dashboard_that_only_listens_ends_at_its_idle_deadline_with_4401,
    staying_signed_in_moves_the_deadline_and_tells_every_client_of_the_user,
    an_administrator_watches_a_members_login_session_and_nobody_else_may,
    a_change_of_role_ends_the_subscriptions_at_once_but_keeps_the_socket,
    an_administrators_watch_ends_when_the_login_session_leaves_the_tenant,
);

/// Two instances on one PostgreSQL database.
async fn two_instances() -> Option<(TestApp, TestApp, World)> {
    let Some(backend) = Backend::postgres() else {
        eprintln!("TEST_POSTGRES_URL is not set: skipped");
        return None;
    };
    let database = TestDatabase::create(backend).await;
    let first = TestApp::spawn_on(database.clone(), |_| {}).await;
    let second = TestApp::spawn_on(database, |_| {}).await;
    let world = World::create(&first.db).await;
    Some((first, second, world))
}

/// A revocation made on one instance shuts the token out of the other as
/// soon as the other has delivered its event, and closes its sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_applies_on_another_within_one_delivery() {
    let Some((first, second, world)) = two_instances().await else {
        return;
    };
    let member = world.login(&second, "user").await;
    second.ok_as(&member, ME, json!({})).await;
    let mut tab = WsClient::connect(&second, Some(&member)).await;
    tab.subscribe("live", STATUS, json!({})).await;
    wait_for_subscribers(&second, 1).await;
    let watched = login_session_of(&first, &world, "user").await.id;
    let admin = world.login(&first, "admin").await;
    first
        .ok_as(
            &admin,
            "mutation($id: UUID!) { revokeLoginSession(id: $id) { id } }",
            json!({ "id": watched }),
        )
        .await;
    deliver_everything(&second).await;
    let refused = second.error_as(Some(&member), ME, json!({})).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
    assert_eq!(refused["extensions"]["reason"], "revoked", "{refused}");
    let (last, code, _) = tab.closed().await;
    assert_eq!(code, 4401);
    let error: &Value = &last[0]["payload"]["errors"][0];
    assert_eq!(error["extensions"]["reason"], "revoked", "{error}");
}

/// Losing a membership on one instance resets the context on the other,
/// and a change of role there ends the other's subscriptions at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_on_one_instance_apply_on_another_within_one_delivery() {
    let Some((first, second, world)) = two_instances().await else {
        return;
    };
    let guardian = world.login(&second, "guardian").await;
    let context = "{ me { role activeTenant { id } } }";
    assert_eq!(
        second.ok_as(&guardian, context, json!({})).await["me"]["role"],
        "GUARDIAN"
    );
    let mut dashboard = WsClient::connect(&second, Some(&guardian)).await;
    dashboard.subscribe("live", STATUS, json!({})).await;
    wait_for_subscribers(&second, 1).await;
    let admin = world.login(&first, "admin").await;
    demote(&first, &admin, world.users["guardian"]).await;
    deliver_everything(&second).await;
    assert_eq!(
        second.ok_as(&guardian, context, json!({})).await["me"]["role"],
        "MEMBER"
    );
    let (_, payload) = dashboard.next().await;
    assert_eq!(
        payload["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{payload}"
    );
    first
        .ok_as(
            &admin,
            "mutation($u: UUID!) { removeMembership(userId: $u) }",
            json!({ "u": world.users["guardian"] }),
        )
        .await;
    deliver_everything(&second).await;
    let refused = second.error_as(Some(&guardian), context, json!({})).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
}

/// Losing access to the active tenant on one instance resets the context
/// to the default tenant on the other (document 002), recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_active_tenant_on_one_instance_resets_the_context_on_another() {
    let Some((first, second, world)) = two_instances().await else {
        return;
    };
    add_membership(
        &first.db,
        world.users["user"],
        world.beta,
        MembershipRole::Member,
        false,
    )
    .await;
    let member = world.login(&second, "user").await;
    let context = "{ me { activeTenant { id } } }";
    second
        .ok_as(
            &member,
            "mutation($t: UUID!) { switchTenant(tenantId: $t) { role } }",
            json!({ "t": world.beta }),
        )
        .await;
    assert_eq!(
        second.ok_as(&member, context, json!({})).await["me"]["activeTenant"]["id"],
        json!(world.beta)
    );
    let beta_admin = world.login(&first, "other_admin").await;
    first
        .ok_as(
            &beta_admin,
            "mutation($u: UUID!) { removeMembership(userId: $u) }",
            json!({ "u": world.users["user"] }),
        )
        .await;
    deliver_everything(&second).await;
    assert_eq!(
        second.ok_as(&member, context, json!({})).await["me"]["activeTenant"]["id"],
        json!(world.alpha),
        "reset to the default tenant"
    );
    let resets = session_context_change::Entity::find()
        .filter(session_context_change::Column::UserId.eq(world.users["user"]))
        .filter(session_context_change::Column::EventType.eq(ContextChangeEventType::ResetToDefaultTenant))
        .all(&first.db)
        .await
        .unwrap();
    assert_eq!(resets.len(), 1);
}
