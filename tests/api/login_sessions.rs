//! Logging in and out, the device list, revocation, token validity.

use chrono::Duration;
use entity::session_log;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::fixtures::{PASSWORD, World, email};
use crate::helpers::{Backend, TestApp, error_code, test_epoch};

const LOGIN: &str = "mutation($email: String!, $password: String!, $device: String) {
  login(email: $email, password: $password, deviceInfo: $device) {
    token expiresAt activeTenantId role
    user { email }
    loginSession { id loginAt lastSeenAt userAgent ipAddress deviceInfo isActive }
  }
}";

const ME: &str = "{ me { user { email } isSuperAdmin role activeTenant { name } loginSession { id isCurrent } memberships { tenant { name } role isDefault } } }";

async fn login_records_the_device_and_returns_a_token_bound_to_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("user-agent", "ExampleBrowser/1.0")
        .json(&json!({ "query": LOGIN, "variables": { "email": email("user").to_uppercase(), "password": PASSWORD, "device": "Alex's iPad" } }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let login = &body["data"]["login"];
    assert_eq!(login["user"]["email"], email("user"), "{body}");
    assert_eq!(login["activeTenantId"], json!(world.alpha));
    assert_eq!(login["role"], "MEMBER");
    assert_eq!(login["loginSession"]["userAgent"], "ExampleBrowser/1.0");
    assert_eq!(login["loginSession"]["ipAddress"], "127.0.0.1");
    assert_eq!(login["loginSession"]["deviceInfo"], "Alex's iPad");
    assert_eq!(login["loginSession"]["loginAt"], json!(test_epoch().to_rfc3339()));
    assert_eq!(
        login["expiresAt"],
        json!((test_epoch() + Duration::minutes(480)).to_rfc3339()),
        "the token ends with the absolute timeout (480 minutes by default), before its one-day lifetime"
    );
    let token = login["token"].as_str().unwrap();
    let me = app.ok_as(token, ME, json!({})).await;
    assert_eq!(me["me"]["user"]["email"], email("user"));
    assert_eq!(me["me"]["role"], "MEMBER");
    assert_eq!(me["me"]["activeTenant"]["name"], "Alpha District");
    assert_eq!(me["me"]["loginSession"]["id"], login["loginSession"]["id"]);
    assert_eq!(me["me"]["loginSession"]["isCurrent"], true);
    assert_eq!(
        me["me"]["memberships"],
        json!([{ "tenant": { "name": "Alpha District" }, "role": "MEMBER", "isDefault": true }])
    );
}

async fn a_wrong_password_and_an_unknown_email_are_refused_alike(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    World::create(&app.db).await;
    let wrong = app
        .error_as(
            None,
            LOGIN,
            json!({ "email": email("user"), "password": "wrong password" }),
        )
        .await;
    let unknown = app
        .error_as(
            None,
            LOGIN,
            json!({ "email": "nobody@example.test", "password": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED");
    assert_eq!(wrong["message"], unknown["message"]);
    assert_eq!(error_code(&unknown), "UNAUTHENTICATED");
    assert!(
        session_log::Entity::find().all(&app.db).await.unwrap().is_empty(),
        "no login session was opened"
    );
}

async fn logout_ends_the_login_session_and_its_token_stops_working(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "user").await;
    let other = world.login(&app, "user").await;
    assert_eq!(
        app.ok_as(&token, "mutation { logout }", json!({})).await["logout"],
        true
    );
    let error = app.error_as(Some(&token), ME, json!({})).await;
    assert_eq!(error_code(&error), "UNAUTHENTICATED");
    assert!(
        error["message"].as_str().unwrap().contains("logged out"),
        "{error}"
    );
    app.ok_as(&other, ME, json!({})).await;
    let sessions = app
        .ok_as(
            &other,
            "{ myLoginSessions(activeOnly: false) { isActive endReason isCurrent } }",
            json!({}),
        )
        .await;
    assert_eq!(
        sessions["myLoginSessions"],
        json!([
            { "isActive": true, "endReason": null, "isCurrent": true },
            { "isActive": false, "endReason": "LOGOUT", "isCurrent": false },
        ])
    );
}

async fn revoking_the_other_login_sessions_keeps_the_current_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let first = world.login(&app, "user").await;
    let second = world.login(&app, "user").await;
    let current = world.login(&app, "user").await;
    let revoked = app
        .ok_as(&current, "mutation { revokeOtherLoginSessions }", json!({}))
        .await;
    assert_eq!(revoked["revokeOtherLoginSessions"], 2);
    for token in [&first, &second] {
        let error = app.error_as(Some(token), ME, json!({})).await;
        assert_eq!(error_code(&error), "UNAUTHENTICATED");
    }
    let active = app
        .ok_as(&current, "{ myLoginSessions { isCurrent } }", json!({}))
        .await;
    assert_eq!(active["myLoginSessions"], json!([{ "isCurrent": true }]));
}

async fn a_user_revokes_their_own_login_session_on_another_device(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let phone = world.login(&app, "user").await;
    let laptop = world.login(&app, "user").await;
    let list = app
        .ok_as(&laptop, "{ myLoginSessions { id isCurrent } }", json!({}))
        .await;
    let phone_session = list["myLoginSessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|session| session["isCurrent"] == false)
        .unwrap()["id"]
        .clone();
    let revoked = app
        .ok_as(
            &laptop,
            "mutation($id: UUID!) { revokeLoginSession(id: $id) { endReason isActive } }",
            json!({ "id": phone_session }),
        )
        .await;
    assert_eq!(
        revoked["revokeLoginSession"],
        json!({ "endReason": "REVOKED", "isActive": false })
    );
    assert_eq!(
        error_code(&app.error_as(Some(&phone), ME, json!({})).await),
        "UNAUTHENTICATED"
    );
}

async fn an_expired_or_forged_token_is_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| settings.auth.token_ttl_minutes = 20).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "user").await;
    app.clock.advance(Duration::minutes(20) - Duration::seconds(1));
    app.ok_as(&token, ME, json!({})).await;
    app.clock.advance(Duration::seconds(1));
    let error = app.error_as(Some(&token), ME, json!({})).await;
    assert_eq!(error_code(&error), "UNAUTHENTICATED");
    assert!(error["message"].as_str().unwrap().contains("expired"), "{error}");
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    for bad in [forged.as_str(), "garbage", ""] {
        let (_, body) = app.post_graphql_as(Some(bad), ME, json!({})).await;
        assert_eq!(error_code(&body["errors"][0]), "UNAUTHENTICATED", "{bad}: {body}");
    }
}

async fn a_refused_token_does_not_prevent_logging_in_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    World::create(&app.db).await;
    let (status, body) = app
        .post_graphql_as(
            Some("stale-token"),
            LOGIN,
            json!({ "email": email("user"), "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
}

async fn last_seen_is_written_at_most_once_a_minute(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "user").await;
    let last_seen = || async {
        session_log::Entity::find()
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at
    };
    app.clock.advance(Duration::seconds(59));
    app.ok_as(&token, ME, json!({})).await;
    app.state.identity.settle_activity().await;
    assert_eq!(last_seen().await, test_epoch(), "not written within the minute");
    app.clock.advance(Duration::seconds(1));
    app.ok_as(&token, ME, json!({})).await;
    app.state.identity.settle_activity().await;
    assert_eq!(last_seen().await, test_epoch() + Duration::seconds(60));
}

async fn a_user_without_a_default_tenant_cannot_log_in_but_a_super_admin_can(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    crate::fixtures::new_user(&app.db, "drifter@example.test", false).await;
    let error = app
        .error_as(
            None,
            LOGIN,
            json!({ "email": "drifter@example.test", "password": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&error), "FORBIDDEN");
    assert!(
        error["message"].as_str().unwrap().contains("default tenant"),
        "{error}"
    );
    let token = world.login(&app, "super_admin").await;
    let me = app.ok_as(&token, ME, json!({})).await;
    assert_eq!(me["me"]["isSuperAdmin"], true);
    assert_eq!(me["me"]["activeTenant"], Value::Null);
    let error = app
        .error_as(Some(&token), "{ sessions { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(error_code(&error), "FORBIDDEN");
    assert!(
        error["message"].as_str().unwrap().contains("switchTenant"),
        "{error}"
    );
}

async fn a_new_password_ends_the_other_login_sessions_of_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let here = world.login(&app, "user").await;
    let elsewhere = world.login(&app, "user").await;
    app.ok_as(
        &here,
        "mutation($id: UUID!) { updateUser(id: $id, input: { password: \"a brand new secret\", currentPassword: \"correct horse battery\" }) { id } }",
        json!({ "id": world.users["user"] }),
    )
    .await;
    app.ok_as(&here, ME, json!({})).await;
    assert_eq!(
        error_code(&app.error_as(Some(&elsewhere), ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    let admin = world.login(&app, "admin").await;
    app.ok_as(
        &admin,
        "mutation($id: UUID!) { updateUser(id: $id, input: { password: \"reset by the admin\" }) { id } }",
        json!({ "id": world.users["user"] }),
    )
    .await;
    assert_eq!(
        error_code(&app.error_as(Some(&here), ME, json!({})).await),
        "UNAUTHENTICATED",
        "an admin reset ends every session"
    );
    app.login(&email("user"), "reset by the admin").await;
}

backend_tests!(
    a_new_password_ends_the_other_login_sessions_of_the_account,
    login_records_the_device_and_returns_a_token_bound_to_it,
    a_wrong_password_and_an_unknown_email_are_refused_alike,
    logout_ends_the_login_session_and_its_token_stops_working,
    revoking_the_other_login_sessions_keeps_the_current_one,
    a_user_revokes_their_own_login_session_on_another_device,
    an_expired_or_forged_token_is_refused,
    a_refused_token_does_not_prevent_logging_in_again,
    last_seen_is_written_at_most_once_a_minute,
    a_user_without_a_default_tenant_cannot_log_in_but_a_super_admin_can,
);
