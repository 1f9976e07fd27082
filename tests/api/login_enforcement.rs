//! The effective session settings enforced on login sessions: idle and
//! absolute timeouts, the concurrent-session limit, invalidate-on-login,
//! shared devices, and the live warning before expiry.

use chrono::Duration;
use entity::session_log::{self, SessionEndReason};
use entity::{school, tenant, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::json;
use session_manager::jobs::sweep_login_sessions;
use session_manager::services::login_policy::ConcurrentSessionPolicy;
use uuid::Uuid;

use crate::backend_tests;
use crate::fixtures::{PASSWORD, World, email};
use crate::helpers::{Backend, TestApp, error_code, test_epoch};
use crate::ws_client::{WsClient, wait_for_subscribers};

const ME: &str = "{ me { user { id } } }";

/// District-level settings of a tenant.
async fn district(app: &TestApp, tenant_id: Uuid, apply: impl FnOnce(&mut tenant::ActiveModel)) {
    let mut row: tenant::ActiveModel = tenant::Entity::find_by_id(tenant_id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .into();
    apply(&mut row);
    row.update(&app.db).await.unwrap();
}

async fn open_sessions(app: &TestApp, user_id: Uuid) -> u64 {
    session_log::Entity::find()
        .filter(session_log::Column::UserId.eq(user_id))
        .filter(session_log::Column::LogoutAt.is_null())
        .count(&app.db)
        .await
        .unwrap()
}

async fn end_reasons(app: &TestApp, user_id: Uuid) -> Vec<Option<SessionEndReason>> {
    let mut logs = session_log::Entity::find()
        .filter(session_log::Column::UserId.eq(user_id))
        .all(&app.db)
        .await
        .unwrap();
    logs.sort_by_key(|log| (log.login_at, log.id));
    logs.into_iter().map(|log| log.end_reason).collect()
}

async fn an_idle_login_session_expires_and_activity_keeps_it_alive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "user").await;
    for _ in 0..3 {
        app.clock.advance(Duration::minutes(29));
        app.ok_as(&token, ME, json!({})).await;
    }
    app.clock.advance(Duration::minutes(30));
    let error = app.error_as(Some(&token), ME, json!({})).await;
    assert_eq!(error_code(&error), "UNAUTHENTICATED");
    assert!(
        error["message"].as_str().unwrap().contains("inactivity"),
        "{error}"
    );
    assert_eq!(
        end_reasons(&app, world.users["user"]).await,
        [Some(SessionEndReason::ExpiredIdle)]
    );
}

async fn a_login_session_ends_at_the_absolute_timeout_however_active(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    district(&app, world.alpha, |row| {
        row.session_absolute_timeout_minutes = Set(Some(60))
    })
    .await;
    let token = world.login(&app, "user").await;
    for _ in 0..2 {
        app.clock.advance(Duration::minutes(25));
        app.ok_as(&token, ME, json!({})).await;
    }
    app.clock.advance(Duration::minutes(10));
    let error = app.error_as(Some(&token), ME, json!({})).await;
    assert!(
        error["message"].as_str().unwrap().contains("maximum lifetime"),
        "{error}"
    );
    assert_eq!(
        end_reasons(&app, world.users["user"]).await,
        [Some(SessionEndReason::ExpiredAbsolute)]
    );
}

async fn the_oldest_login_sessions_make_room_beyond_the_concurrent_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    district(&app, world.alpha, |row| {
        row.max_concurrent_sessions = Set(Some(2))
    })
    .await;
    let mut tokens = Vec::new();
    for minute in 0..3 {
        app.clock.set(test_epoch() + Duration::minutes(minute));
        tokens.push(world.login(&app, "user").await);
    }
    let error = app.error_as(Some(&tokens[0]), ME, json!({})).await;
    assert!(
        error["message"].as_str().unwrap().contains("newer login"),
        "{error}"
    );
    app.ok_as(&tokens[1], ME, json!({})).await;
    app.ok_as(&tokens[2], ME, json!({})).await;
    assert_eq!(
        end_reasons(&app, world.users["user"]).await,
        [Some(SessionEndReason::Evicted), None, None]
    );
}

async fn the_reject_policy_refuses_a_login_beyond_the_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.auth.concurrent_session_policy = ConcurrentSessionPolicy::Reject;
    })
    .await;
    let world = World::create(&app.db).await;
    let mut row: user::ActiveModel = user::Entity::find_by_id(world.users["user"])
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .into();
    row.max_concurrent_sessions = Set(Some(1));
    row.update(&app.db).await.unwrap();
    let first = world.login(&app, "user").await;
    let error = app
        .error_as(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": email("user"), "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&error), "CONFLICT");
    app.ok_as(&first, ME, json!({})).await;
    assert_eq!(open_sessions(&app, world.users["user"]).await, 1);
}

async fn invalidate_on_login_ends_every_other_login_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    district(&app, world.alpha, |row| {
        row.invalidate_all_sessions_on_login = Set(Some(true))
    })
    .await;
    let first = world.login(&app, "user").await;
    let second = world.login(&app, "user").await;
    let error = app.error_as(Some(&first), ME, json!({})).await;
    assert!(
        error["message"].as_str().unwrap().contains("invalidated"),
        "{error}"
    );
    app.ok_as(&second, ME, json!({})).await;
    let other = world.login(&app, "other_user").await;
    app.ok_as(&second, ME, json!({})).await;
    app.ok_as(&other, ME, json!({})).await;
}

async fn a_shared_device_school_applies_the_shared_device_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let library = school::ActiveModel {
        tenant_id: Set(world.alpha),
        name: Set("Library".to_owned()),
        is_shared_device_mode: Set(Some(true)),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    crate::fixtures::attend(&app.db, world.users["user"], library.id).await;
    let first = world.login(&app, "user").await;
    let second = world.login(&app, "user").await;
    assert_eq!(
        error_code(&app.error_as(Some(&first), ME, json!({})).await),
        "UNAUTHENTICATED",
        "one session at a time"
    );
    app.clock.advance(Duration::minutes(14));
    app.ok_as(&second, ME, json!({})).await;
    app.clock.advance(Duration::minutes(15));
    assert_eq!(
        error_code(&app.error_as(Some(&second), ME, json!({})).await),
        "UNAUTHENTICATED",
        "the shared-device idle timeout (15 minutes by default) applies"
    );
    let other = world.login(&app, "other_user").await;
    let again = world.login(&app, "other_user").await;
    app.ok_as(&other, ME, json!({})).await;
    app.ok_as(&again, ME, json!({})).await;
}

async fn twenty_parallel_logins_with_a_limit_of_three_leave_exactly_three(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    district(&app, world.alpha, |row| {
        row.max_concurrent_sessions = Set(Some(3))
    })
    .await;
    let logins = (0..20).map(|_| world.login(&app, "user"));
    let tokens = futures_util::future::join_all(logins).await;
    assert_eq!(tokens.len(), 20);
    assert_eq!(open_sessions(&app, world.users["user"]).await, 3);
    let mut working = 0;
    for token in &tokens {
        let (_, body) = app.post_graphql_as(Some(token), ME, json!({})).await;
        if body.get("errors").is_none() {
            working += 1;
        }
    }
    assert_eq!(working, 3, "exactly three tokens still work");
}

async fn the_sweeper_ends_expired_login_sessions_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    world.login(&app, "user").await;
    world.login(&app, "guardian").await;
    app.clock.advance(Duration::minutes(29));
    assert_eq!(sweep_login_sessions(&app.state).await.unwrap(), 0);
    app.clock.advance(Duration::minutes(1));
    assert_eq!(sweep_login_sessions(&app.state).await.unwrap(), 2);
    assert_eq!(sweep_login_sessions(&app.state).await.unwrap(), 0);
    assert_eq!(
        end_reasons(&app, world.users["guardian"]).await,
        [Some(SessionEndReason::ExpiredIdle)]
    );
}

const EVENTS: &str = "subscription { loginSessionEvents { kind loginSessionId endReason expiresAt } }";

async fn a_client_is_warned_before_its_login_session_expires_then_told_it_expired(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "user").await;
    let mut client = WsClient::connect(&app, Some(&token)).await;
    client.subscribe("events", EVENTS, json!({})).await;
    wait_for_subscribers(&app, 1).await;
    app.clock.advance(Duration::minutes(27));
    sweep_login_sessions(&app.state).await.unwrap();
    app.clock.advance(Duration::minutes(1));
    sweep_login_sessions(&app.state).await.unwrap();
    let warning = client.next_data("events").await["loginSessionEvents"].clone();
    assert_eq!(
        warning["kind"], "EXPIRING_SOON",
        "warned two minutes (the warning period) before"
    );
    assert_eq!(
        warning["expiresAt"],
        json!((test_epoch() + Duration::minutes(30)).to_rfc3339())
    );
    app.clock.advance(Duration::minutes(1));
    sweep_login_sessions(&app.state).await.unwrap();
    app.clock.advance(Duration::minutes(1));
    sweep_login_sessions(&app.state).await.unwrap();
    let expired = client.next_data("events").await["loginSessionEvents"].clone();
    assert_eq!(
        expired["kind"], "EXPIRED",
        "warned once per deadline, then expired"
    );
    assert_eq!(expired["endReason"], "expired_idle");
    assert_eq!(
        client.receive().await,
        json!({ "id": "events", "type": "complete" })
    );
}

async fn a_client_is_told_when_its_login_session_is_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "user").await;
    let phone = world.login(&app, "user").await;
    let mut client = WsClient::connect(&app, Some(&token)).await;
    client.subscribe("events", EVENTS, json!({})).await;
    wait_for_subscribers(&app, 1).await;
    app.ok_as(&phone, "mutation { logout }", json!({})).await;
    let other = client.next_data("events").await["loginSessionEvents"].clone();
    assert_eq!(other["kind"], "LOGGED_OUT", "the user's other device logged out");
    let admin = world.login(&app, "admin").await;
    let own = app
        .ok_as(&token, "{ me { loginSession { id } } }", json!({}))
        .await;
    app.ok_as(
        &admin,
        "mutation($id: UUID!) { revokeLoginSession(id: $id) { id } }",
        json!({ "id": own["me"]["loginSession"]["id"] }),
    )
    .await;
    let revoked = client.next_data("events").await["loginSessionEvents"].clone();
    assert_eq!(revoked["kind"], "REVOKED");
    assert_eq!(revoked["loginSessionId"], own["me"]["loginSession"]["id"]);
    assert_eq!(
        client.receive().await,
        json!({ "id": "events", "type": "complete" })
    );
}

backend_tests!(
    an_idle_login_session_expires_and_activity_keeps_it_alive,
    a_login_session_ends_at_the_absolute_timeout_however_active,
    the_oldest_login_sessions_make_room_beyond_the_concurrent_limit,
    the_reject_policy_refuses_a_login_beyond_the_limit,
    invalidate_on_login_ends_every_other_login_session,
    a_shared_device_school_applies_the_shared_device_rules,
    twenty_parallel_logins_with_a_limit_of_three_leave_exactly_three,
    the_sweeper_ends_expired_login_sessions_once,
    a_client_is_warned_before_its_login_session_expires_then_told_it_expired,
    a_client_is_told_when_its_login_session_is_revoked,
);
