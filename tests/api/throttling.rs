//! Login throttling (per e-mail address and per client address, shared by
//! instances), one login per request, and the bounded hashing pool.

use std::sync::mpsc;

use chrono::Duration;
use entity::audit_log;
use entity::tenant_membership::MembershipRole;
use futures_util::future::join_all;
use pretty_assertions::assert_eq;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::fixtures::{PASSWORD, World, add_membership, email};
use crate::helpers::{Backend, TestApp, TestDatabase, error_code};

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
const UNLOCK: &str = "mutation($e: String!) { unlockLogin(email: $e) }";
const UPDATE_USER: &str = r#"
mutation($id: UUID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id } }"#;

/// One login attempt's answer.
async fn attempt(app: &TestApp, email: &str, password: &str) -> Value {
    app.post_graphql(LOGIN, json!({ "e": email, "p": password }))
        .await
        .1
}

/// The code of an attempt ("" when it logged in).
async fn attempt_code(app: &TestApp, email: &str, password: &str) -> String {
    let body = attempt(app, email, password).await;
    error_code(&body["errors"][0]).to_owned()
}

async fn fail_times(app: &TestApp, email: &str, times: usize) {
    for n in 0..times {
        assert_eq!(
            attempt_code(app, email, "not the password").await,
            "UNAUTHENTICATED",
            "failure {n} of {email}"
        );
    }
}

async fn an_e_mail_address_is_locked_after_five_failures_for_longer_each_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    World::create(&app.db).await;
    let user = email("user");
    fail_times(&app, &user, 5).await;
    let locked = attempt(&app, &user, PASSWORD).await;
    let error = &locked["errors"][0];
    assert_eq!(error_code(error), "TOO_MANY_ATTEMPTS", "{locked}");
    assert_eq!(error["extensions"]["retryAfter"], 30);
    assert_eq!(error["extensions"]["retryAt"], "2026-01-05T09:00:30Z");
    assert!(error["message"].as_str().unwrap().contains("30 s"));

    // Each further failure doubles the lockout.
    app.clock.advance(Duration::seconds(30));
    fail_times(&app, &user, 1).await;
    let error = attempt(&app, &user, PASSWORD).await["errors"][0].clone();
    assert_eq!(error["extensions"]["retryAfter"], 60);
    app.clock.advance(Duration::seconds(60));
    fail_times(&app, &user, 1).await;
    let error = attempt(&app, &user, PASSWORD).await["errors"][0].clone();
    assert_eq!(error["extensions"]["retryAfter"], 120);

    // Once it has passed, the right password works and resets the count.
    app.clock.advance(Duration::seconds(120));
    app.login(&user, PASSWORD).await;
    fail_times(&app, &user, 4).await;
    app.login(&user, PASSWORD).await;
    fail_times(&app, &user, 4).await;
    assert_eq!(
        attempt_code(&app, &user, PASSWORD).await,
        "",
        "four failures lock nothing"
    );

    let lockouts = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("LoginLockout"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(lockouts, 3, "each lockout is audited once");
}

async fn an_address_without_an_account_is_throttled_exactly_like_one_with(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    World::create(&app.db).await;
    for address in [email("user"), "nobody@example.test".to_owned()] {
        fail_times(&app, &address, 5).await;
        let locked = attempt(&app, &address, PASSWORD).await;
        assert_eq!(
            locked["errors"][0]["extensions"],
            json!({ "code": "TOO_MANY_ATTEMPTS", "retryAfter": 30, "retryAt": "2026-01-05T09:00:30Z" })
        );
    }
    // The normalised address counts: case and spaces do not help.
    assert_eq!(
        attempt_code(&app, "  NOBODY@Example.TEST ", PASSWORD).await,
        "TOO_MANY_ATTEMPTS"
    );
}

async fn an_administrator_lifts_a_lockout_of_their_own_members(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let other_admin = world.login(&app, "other_admin").await;
    let user = email("user");
    fail_times(&app, &user, 5).await;
    assert_eq!(attempt_code(&app, &user, PASSWORD).await, "TOO_MANY_ATTEMPTS");
    assert_eq!(
        error_code(
            &app.error_as(Some(&other_admin), UNLOCK, json!({ "e": user }))
                .await
        ),
        "NOT_FOUND",
        "not a member of beta"
    );
    let member = world.login(&app, "other_user").await;
    assert_eq!(
        error_code(&app.error_as(Some(&member), UNLOCK, json!({ "e": user })).await),
        "FORBIDDEN"
    );
    app.ok_as(&admin, UNLOCK, json!({ "e": user })).await;
    app.login(&user, PASSWORD).await;

    // An account that also belongs to a tenant the admin does not
    // administer is a super admin's to unlock: otherwise the admin could
    // wipe its count between guesses.
    let shared = email("beta_user");
    add_membership(
        &app.db,
        world.users["beta_user"],
        world.alpha,
        MembershipRole::Member,
        false,
    )
    .await;
    fail_times(&app, &shared, 5).await;
    assert_eq!(
        error_code(&app.error_as(Some(&admin), UNLOCK, json!({ "e": shared })).await),
        "FORBIDDEN"
    );
    let super_admin = world.login(&app, "super_admin").await;
    app.ok_as(&super_admin, UNLOCK, json!({ "e": shared })).await;
    app.login(&shared, PASSWORD).await;
    let unlocks = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("UnlockLogin"))
        .filter(audit_log::Column::TenantId.eq(world.alpha))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(unlocks, 1);
}

async fn one_client_address_is_slowed_down_after_many_failures_but_never_locked_out(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.login_throttle.address_max_failures = 3;
        settings.server.trust_forwarded_headers = true;
    })
    .await;
    let world = World::create(&app.db).await;
    let super_admin = world.login(&app, "super_admin").await;
    let admin = world.login(&app, "admin").await;
    // A different e-mail each time: only the client address adds up.
    for n in 0..3 {
        assert_eq!(
            attempt_code(&app, &format!("guess{n}@example.test"), "x").await,
            "UNAUTHENTICATED"
        );
    }
    // Slowed down: one check per second from the address, right or wrong.
    app.login(&email("user"), PASSWORD).await;
    let slowed = attempt(&app, &email("user"), PASSWORD).await;
    assert_eq!(slowed["errors"][0]["extensions"]["retryAfter"], 1, "{slowed}");

    // Another client (behind the trusted proxy) is not affected.
    let other_client = app
        .client
        .post(app.url("/graphql"))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({ "query": LOGIN, "variables": { "e": email("user"), "p": PASSWORD } }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(
        other_client["data"]["login"]["token"].is_string(),
        "{other_client}"
    );

    // More failures do not lengthen the interval: the school is slowed, not
    // locked out.
    for n in 10..15 {
        app.clock.advance(Duration::seconds(1));
        assert_eq!(
            attempt_code(&app, &format!("guess{n}@example.test"), "x").await,
            "UNAUTHENTICATED"
        );
    }
    let slowed = attempt(&app, &email("user"), PASSWORD).await;
    assert_eq!(slowed["errors"][0]["extensions"]["retryAfter"], 1);
    app.clock.advance(Duration::seconds(1));
    app.login(&email("user"), PASSWORD).await;

    let audited: Vec<String> = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("LoginLockout"))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.details)
        .collect();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert!(
        audited[0].contains("127.0.0.1"),
        "the audit names the address: {audited:?}"
    );

    // A super admin lifts the slow-down; a tenant admin may not.
    assert_eq!(
        attempt_code(&app, &email("user"), PASSWORD).await,
        "TOO_MANY_ATTEMPTS"
    );
    let unlock = "mutation($a: String!) { unlockLoginAddress(address: $a) }";
    assert_eq!(
        error_code(
            &app.error_as(Some(&admin), unlock, json!({ "a": "127.0.0.1" }))
                .await
        ),
        "FORBIDDEN"
    );
    app.ok_as(&super_admin, unlock, json!({ "a": "127.0.0.1" })).await;
    app.login(&email("user"), PASSWORD).await;
    app.login(&email("user"), PASSWORD).await;
}

async fn a_request_logs_in_at_most_once_however_it_asks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    World::create(&app.db).await;
    let aliases = format!(
        r#"mutation {{
          a: login(email: "{0}", password: "wrong one") {{ token }}
          b: login(email: "{0}", password: "wrong two") {{ token }}
          c: login(email: "{0}", password: "{1}") {{ token }}
        }}"#,
        email("user"),
        PASSWORD
    );
    let (_, body) = app.post_graphql(&aliases, json!({})).await;
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{body}");
    assert_eq!(error_code(&errors[0]), "UNAUTHENTICATED");
    for error in &errors[1..] {
        assert_eq!(error_code(error), "ONE_LOGIN_PER_REQUEST", "{body}");
    }

    let one = json!({ "query": LOGIN, "variables": { "e": email("user"), "p": "wrong" } });
    let batch = app
        .client
        .post(app.url("/graphql"))
        .json(&json!([one, one, one]))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let answers = batch.as_array().unwrap();
    assert_eq!(error_code(&answers[0]["errors"][0]), "UNAUTHENTICATED");
    assert_eq!(error_code(&answers[1]["errors"][0]), "ONE_LOGIN_PER_REQUEST");
    assert_eq!(error_code(&answers[2]["errors"][0]), "ONE_LOGIN_PER_REQUEST");
    // Two failures counted, not four: a fourth and a fifth still answer.
    fail_times(&app, &email("user"), 3).await;
    assert_eq!(
        attempt_code(&app, &email("user"), PASSWORD).await,
        "TOO_MANY_ATTEMPTS"
    );
}

async fn guessing_the_current_password_in_update_user_counts_as_guessing_the_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "user").await;
    let change = |current: &str| json!({ "id": world.users["user"], "input": { "password": "a brand new password", "currentPassword": current } });
    for _ in 0..5 {
        let error = app.error_as(Some(&token), UPDATE_USER, change("a guess")).await;
        assert_eq!(error["extensions"]["field"], "currentPassword");
    }
    let error = app.error_as(Some(&token), UPDATE_USER, change(PASSWORD)).await;
    assert_eq!(error_code(&error), "TOO_MANY_ATTEMPTS");
    assert_eq!(
        attempt_code(&app, &email("user"), PASSWORD).await,
        "TOO_MANY_ATTEMPTS"
    );
}

async fn two_instances_share_the_counts(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let first = TestApp::spawn_on(database.clone(), |_| {}).await;
    let second = TestApp::spawn_on(database, |_| {}).await;
    World::create(&first.db).await;
    let user = email("user");
    fail_times(&first, &user, 3).await;
    fail_times(&second, &user, 2).await;
    assert_eq!(attempt_code(&first, &user, PASSWORD).await, "TOO_MANY_ATTEMPTS");
    assert_eq!(attempt_code(&second, &user, PASSWORD).await, "TOO_MANY_ATTEMPTS");
}

async fn old_counts_are_forgotten_after_the_window(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    World::create(&app.db).await;
    let user = email("user");
    fail_times(&app, &user, 4).await;
    app.clock.advance(Duration::seconds(3601));
    fail_times(&app, &user, 4).await;
    assert_eq!(
        attempt_code(&app, &user, PASSWORD).await,
        "",
        "the first four were forgotten"
    );
    fail_times(&app, &user, 1).await;
    app.clock.advance(Duration::seconds(3601));
    let swept = session_manager::jobs::sweep_account_records(&app.state)
        .await
        .unwrap();
    assert_eq!(swept, 2, "the e-mail's and the address's rows");
}

async fn password_checks_beyond_the_pool_and_its_queue_are_refused_at_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.passwords.hashing_workers = 1;
        settings.passwords.hashing_queue = 0;
    })
    .await;
    World::create(&app.db).await;
    let pool = app.state.passwords.clone();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let busy = pool
        .submit(move || {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
        })
        .unwrap();
    started_rx.recv().unwrap();
    let refused = attempt(&app, &email("user"), PASSWORD).await;
    assert_eq!(error_code(&refused["errors"][0]), "SERVER_BUSY", "{refused}");
    release_tx.send(()).unwrap();
    busy.await.unwrap();
    app.login(&email("user"), PASSWORD).await;
    assert_eq!(pool.stats().peak_in_flight(), 1);
    assert_eq!(pool.stats().refused(), 1);
}

async fn a_login_flood_never_runs_more_hashes_at_once_than_there_are_workers(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.passwords.hashing_workers = 2;
        settings.passwords.hashing_queue = 64;
    })
    .await;
    World::create(&app.db).await;
    let attempts = (0..24).map(|n| {
        let app = &app;
        async move {
            let (address, password) = if n % 2 == 0 {
                (email("user"), PASSWORD.to_owned())
            } else {
                (format!("flood{n}@example.test"), "wrong".to_owned())
            };
            attempt_code(app, &address, &password).await
        }
    });
    let codes = join_all(attempts).await;
    for (n, code) in codes.iter().enumerate() {
        let expected = if n % 2 == 0 { "" } else { "UNAUTHENTICATED" };
        assert_eq!(code, expected, "attempt {n}");
    }
    let stats = app.state.passwords.stats();
    assert!(stats.peak_in_flight() <= 2, "peak {}", stats.peak_in_flight());
    assert!(stats.completed() >= 24);
    assert_eq!(stats.refused(), 0);
    assert_eq!(stats.in_flight(), 0);
}

backend_tests!(
    an_e_mail_address_is_locked_after_five_failures_for_longer_each_time,
    an_address_without_an_account_is_throttled_exactly_like_one_with,
    an_administrator_lifts_a_lockout_of_their_own_members,
    one_client_address_is_slowed_down_after_many_failures_but_never_locked_out,
    a_request_logs_in_at_most_once_however_it_asks,
    guessing_the_current_password_in_update_user_counts_as_guessing_the_login,
    two_instances_share_the_counts,
    old_counts_are_forgotten_after_the_window,
    password_checks_beyond_the_pool_and_its_queue_are_refused_at_once,
    a_login_flood_never_runs_more_hashes_at_once_than_there_are_workers,
);
