//! The isolation matrix: for each identity, exactly the allowed rows are
//! visible and changeable.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::backend_tests;
use crate::fixtures::{World, add_membership};
use crate::helpers::{Backend, SERVICE_TOKEN, TestApp, error_code};
use entity::tenant_membership::{self, MembershipRole};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

/// Every identity of the matrix.
const IDENTITIES: [&str; 9] = [
    "user",
    "other_user",
    "guardian",
    "other_guardian",
    "admin",
    "other_admin",
    "super_admin",
    "anonymous",
    "service",
];

/// Tokens by identity (`None` for anonymous).
async fn tokens(app: &TestApp, world: &World) -> HashMap<&'static str, Option<String>> {
    let mut tokens = HashMap::new();
    for handle in IDENTITIES {
        let token = match handle {
            "anonymous" => None,
            "service" => Some(SERVICE_TOKEN.to_owned()),
            "super_admin" => {
                let token = world.login(app, handle).await;
                app.ok_as(
                    &token,
                    "mutation($t: UUID!) { switchTenant(tenantId: $t) { activeTenant { id } } }",
                    json!({ "t": world.alpha }),
                )
                .await;
                Some(token)
            }
            _ => Some(world.login(app, handle).await),
        };
        tokens.insert(handle, token);
    }
    tokens
}

/// What a query returned for one identity: the visible session handles, or an error code.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Sees(BTreeSet<&'static str>),
    Error(String),
}

fn sees(handles: &[&'static str]) -> Outcome {
    Outcome::Sees(handles.iter().copied().collect())
}

fn error(code: &str) -> Outcome {
    Outcome::Error(code.to_owned())
}

fn handle_of(world: &World, id: &Value) -> &'static str {
    world
        .sessions
        .iter()
        .find(|(_, session)| id.as_str() == Some(session.to_string().as_str()))
        .map(|(handle, _)| *handle)
        .expect("a known session")
}

async fn each_identity_lists_exactly_the_sessions_it_may_see(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let tokens = tokens(&app, &world).await;
    let expected: HashMap<&str, Outcome> = HashMap::from([
        ("user", sees(&["user"])),
        ("other_user", sees(&["other_user"])),
        ("guardian", sees(&["user"])),
        ("other_guardian", sees(&["other_user"])),
        ("admin", sees(&["user", "other_user"])),
        ("other_admin", sees(&["beta"])),
        ("super_admin", sees(&["user", "other_user"])),
        ("anonymous", error("UNAUTHENTICATED")),
        ("service", error("FORBIDDEN")),
    ]);
    const QUERY: &str = "{ sessions(first: 100) { edges { node { id modules { videos { id } } config { label } user { id } guardian { id } tenant { id } } } } }";
    for handle in IDENTITIES {
        let (_, body) = app
            .post_graphql_as(tokens[handle].as_deref(), QUERY, json!({}))
            .await;
        let outcome = match body["errors"].get(0) {
            Some(error) => Outcome::Error(error_code(error).to_owned()),
            None => {
                let nodes: Vec<&Value> = body["data"]["sessions"]["edges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|edge| &edge["node"])
                    .collect();
                for node in &nodes {
                    assert_eq!(
                        node["modules"][0]["videos"].as_array().unwrap().len(),
                        1,
                        "{handle}: nested content"
                    );
                    assert!(node["config"]["label"].is_string(), "{handle}: config");
                    assert!(node["user"]["id"].is_string(), "{handle}: user");
                }
                Outcome::Sees(nodes.iter().map(|node| handle_of(&world, &node["id"])).collect())
            }
        };
        assert_eq!(outcome, expected[handle], "sessions as {handle}");
    }
}

async fn a_session_out_of_scope_reads_as_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let tokens = tokens(&app, &world).await;
    let visible: HashMap<&str, &[&str]> = HashMap::from([
        ("user", &["user"][..]),
        ("other_user", &["other_user"][..]),
        ("guardian", &["user"][..]),
        ("other_guardian", &["other_user"][..]),
        ("admin", &["user", "other_user"][..]),
        ("other_admin", &["beta"][..]),
        ("super_admin", &["user", "other_user"][..]),
    ]);
    for (handle, allowed) in visible {
        for (session, id) in &world.sessions {
            let (_, body) = app
                .post_graphql_as(
                    tokens[handle].as_deref(),
                    "query($id: UUID!) { session(id: $id) { id modules { name } } }",
                    json!({ "id": id }),
                )
                .await;
            if allowed.contains(session) {
                assert_eq!(
                    body["data"]["session"]["id"],
                    json!(id),
                    "{handle} sees {session}"
                );
            } else {
                assert_eq!(
                    error_code(&body["errors"][0]),
                    "NOT_FOUND",
                    "{handle} must not see {session}: {body}"
                );
            }
        }
    }
    for handle in ["anonymous", "service"] {
        let (_, body) = app
            .post_graphql_as(
                tokens[handle].as_deref(),
                "query($id: UUID!) { session(id: $id) { id } }",
                json!({ "id": world.sessions["user"] }),
            )
            .await;
        let expected = if handle == "anonymous" {
            "UNAUTHENTICATED"
        } else {
            "FORBIDDEN"
        };
        assert_eq!(error_code(&body["errors"][0]), expected, "{handle}");
    }
}

async fn services_may_ask_whether_any_session_is_active_and_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let service = Some(SERVICE_TOKEN);
    for (handle, id) in &world.sessions {
        let (_, body) = app
            .post_graphql_as(
                service,
                "query($id: UUID!) { isSessionActive(sessionId: $id) { sessionId active status lockProfile { lockedApps whitelist } notifyOnUnlock } }",
                json!({ "id": id }),
            )
            .await;
        let state = &body["data"]["isSessionActive"];
        assert_eq!(state["active"], true, "{handle}: {body}");
        assert_eq!(state["status"], "ACTIVE");
        assert_eq!(state["lockProfile"]["lockedApps"], json!(["tiktok"]));
    }
    let data = app
        .post_graphql_as(
            service,
            "query($u: UUID!) { activeSession(userId: $u) { sessionId } }",
            json!({ "u": world.users["user"] }),
        )
        .await
        .1;
    assert_eq!(
        data["data"]["activeSession"]["sessionId"],
        json!(world.sessions["user"])
    );
    for query in [
        "{ me { user { id } } }",
        "{ tenants { id } }",
        "{ myLoginSessions { id } }",
        "{ tenantContextChanges { id } }",
    ] {
        let error = app.error_as(service, query, json!({})).await;
        assert_eq!(error_code(&error), "FORBIDDEN", "{query}");
    }
    let error = app
        .error_as(
            Some("not-a-service-token"),
            "query($id: UUID!) { isSessionActive(sessionId: $id) { active } }",
            json!({ "id": world.sessions["user"] }),
        )
        .await;
    assert_eq!(error_code(&error), "UNAUTHENTICATED");
}

async fn users_ask_about_session_state_only_within_their_scope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    const QUERY: &str = "query($id: UUID!) { isSessionActive(sessionId: $id) { active } }";
    let own = app
        .ok_as(&guardian, QUERY, json!({ "id": world.sessions["user"] }))
        .await;
    assert_eq!(own["isSessionActive"]["active"], true);
    for other in ["other_user", "beta"] {
        let error = app
            .error_as(Some(&guardian), QUERY, json!({ "id": world.sessions[other] }))
            .await;
        assert_eq!(error_code(&error), "NOT_FOUND", "{other}");
    }
    let none = app
        .ok_as(
            &guardian,
            "query($u: UUID!) { activeSession(userId: $u) { sessionId } }",
            json!({ "u": world.users["other_user"] }),
        )
        .await;
    assert_eq!(none["activeSession"], Value::Null);
    let error = app
        .error_as(None, QUERY, json!({ "id": world.sessions["user"] }))
        .await;
    assert_eq!(error_code(&error), "UNAUTHENTICATED");
}

async fn tenants_are_visible_to_members_and_super_admins_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let tokens = tokens(&app, &world).await;
    for (handle, expected) in [
        ("user", vec!["Alpha District"]),
        ("admin", vec!["Alpha District"]),
        ("other_admin", vec!["Beta District"]),
        ("super_admin", vec!["Alpha District", "Beta District"]),
    ] {
        let data = app
            .ok_as(
                tokens[handle].as_deref().unwrap(),
                "{ tenants { name } }",
                json!({}),
            )
            .await;
        let names: Vec<&str> = data["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, expected, "{handle}");
    }
    let error = app
        .error_as(
            tokens["user"].as_deref(),
            "query($id: UUID!) { tenant(id: $id) { name } }",
            json!({ "id": world.beta }),
        )
        .await;
    assert_eq!(error_code(&error), "NOT_FOUND");
    for handle in ["admin", "user"] {
        let error = app
            .error_as(
                tokens[handle].as_deref(),
                "mutation { createTenant(input: { name: \"Rogue\" }) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(error_code(&error), "FORBIDDEN", "{handle}");
    }
}

async fn login_sessions_of_other_people_are_reachable_only_by_their_tenant_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let tokens = tokens(&app, &world).await;
    let user_sessions = app
        .ok_as(
            tokens["user"].as_deref().unwrap(),
            "{ myLoginSessions { id isCurrent } }",
            json!({}),
        )
        .await;
    let user_login_session = user_sessions["myLoginSessions"][0]["id"].clone();
    assert_eq!(user_sessions["myLoginSessions"][0]["isCurrent"], true);

    const LIST: &str = "{ loginSessions(first: 200) { id user { id } } }";
    let admin_list = app
        .ok_as(tokens["admin"].as_deref().unwrap(), LIST, json!({}))
        .await;
    let listed: Vec<&Value> = admin_list["loginSessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert!(
        listed.contains(&&user_login_session),
        "the tenant admin lists the member's login session"
    );
    let other_list = app
        .ok_as(tokens["other_admin"].as_deref().unwrap(), LIST, json!({}))
        .await;
    let listed: Vec<&Value> = other_list["loginSessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert!(
        !listed.contains(&&user_login_session),
        "another tenant's admin does not"
    );
    for handle in ["user", "guardian"] {
        let error = app.error_as(tokens[handle].as_deref(), LIST, json!({})).await;
        assert_eq!(error_code(&error), "FORBIDDEN", "{handle}");
    }

    const REVOKE: &str = "mutation($id: UUID!) { revokeLoginSession(id: $id) { id endReason } }";
    for handle in ["other_user", "guardian", "other_admin"] {
        let error = app
            .error_as(
                tokens[handle].as_deref(),
                REVOKE,
                json!({ "id": user_login_session }),
            )
            .await;
        assert_eq!(error_code(&error), "NOT_FOUND", "{handle} must not revoke it");
    }
    let error = app
        .error_as(None, REVOKE, json!({ "id": user_login_session }))
        .await;
    assert_eq!(error_code(&error), "UNAUTHENTICATED");
    app.ok_as(
        tokens["user"].as_deref().unwrap(),
        "{ me { user { id } } }",
        json!({}),
    )
    .await;
    let revoked = app
        .ok_as(
            tokens["admin"].as_deref().unwrap(),
            REVOKE,
            json!({ "id": user_login_session }),
        )
        .await;
    assert_eq!(revoked["revokeLoginSession"]["endReason"], "REVOKED");
    let error = app
        .error_as(tokens["user"].as_deref(), "{ me { user { id } } }", json!({}))
        .await;
    assert_eq!(
        error_code(&error),
        "UNAUTHENTICATED",
        "the revoked token stops working at once"
    );
}

async fn context_changes_are_read_by_their_user_and_their_tenant_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let tokens = tokens(&app, &world).await;
    const QUERY: &str = "{ tenantContextChanges(first: 200) { userId tenantId eventType } }";
    let users_of = |data: &Value| -> BTreeSet<String> {
        data["tenantContextChanges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|change| change["userId"].as_str().unwrap().to_owned())
            .collect()
    };
    let own = app
        .ok_as(tokens["user"].as_deref().unwrap(), QUERY, json!({}))
        .await;
    assert_eq!(users_of(&own), BTreeSet::from([world.users["user"].to_string()]));
    let admin = app
        .ok_as(tokens["admin"].as_deref().unwrap(), QUERY, json!({}))
        .await;
    let seen = users_of(&admin);
    for handle in [
        "user",
        "other_user",
        "guardian",
        "other_guardian",
        "admin",
        "super_admin",
    ] {
        assert!(
            seen.contains(&world.users[handle].to_string()),
            "the alpha admin sees {handle}'s changes in alpha"
        );
    }
    assert!(!seen.contains(&world.users["beta_user"].to_string()));
    assert!(!seen.contains(&world.users["other_admin"].to_string()));
}

async fn a_tenant_admin_reaches_only_login_sessions_working_in_their_tenant(backend: Backend) {
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
    add_membership(
        &app.db,
        world.users["super_admin"],
        world.alpha,
        MembershipRole::Member,
        true,
    )
    .await;
    let user = world.login(&app, "user").await;
    app.ok_as(
        &user,
        "mutation($t: UUID!) { switchTenant(tenantId: $t) { role } }",
        json!({ "t": world.beta }),
    )
    .await;
    let super_admin = world.login(&app, "super_admin").await;
    let mine = |token: String| {
        let app = &app;
        async move {
            app.ok_as(&token, "{ me { loginSession { id } } }", json!({}))
                .await["me"]["loginSession"]["id"]
                .clone()
        }
    };
    let in_beta = mine(user.clone()).await;
    let super_session = mine(super_admin.clone()).await;
    let admin = world.login(&app, "admin").await;
    let listed = app
        .ok_as(&admin, "{ loginSessions(first: 200) { id } }", json!({}))
        .await;
    let ids: Vec<&Value> = listed["loginSessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert!(
        !ids.contains(&&in_beta),
        "the member's login session works in another tenant"
    );
    assert!(
        !ids.contains(&&super_session),
        "a super admin's login sessions are not a tenant admin's to see"
    );
    for id in [in_beta, super_session] {
        let error = app
            .error_as(
                Some(&admin),
                "mutation($id: UUID!) { revokeLoginSession(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(error_code(&error), "NOT_FOUND");
    }
    app.ok_as(&user, "{ me { user { id } } }", json!({})).await;
}

async fn the_people_of_a_visible_session_stay_visible_after_they_leave_the_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    tenant_membership::Entity::delete_many()
        .filter(tenant_membership::Column::UserId.eq(world.users["other_user"]))
        .exec(&app.db)
        .await
        .unwrap();
    let data = app
        .ok_as(
            &admin,
            "query($id: UUID!) { session(id: $id) { user { email } guardian { email } } }",
            json!({ "id": world.sessions["other_user"] }),
        )
        .await;
    assert_eq!(
        data["session"]["user"]["email"],
        crate::fixtures::email("other_user")
    );
}

backend_tests!(
    a_tenant_admin_reaches_only_login_sessions_working_in_their_tenant,
    the_people_of_a_visible_session_stay_visible_after_they_leave_the_tenant,
    each_identity_lists_exactly_the_sessions_it_may_see,
    a_session_out_of_scope_reads_as_not_found,
    services_may_ask_whether_any_session_is_active_and_nothing_else,
    users_ask_about_session_state_only_within_their_scope,
    tenants_are_visible_to_members_and_super_admins_only,
    login_sessions_of_other_people_are_reachable_only_by_their_tenant_admin,
    context_changes_are_read_by_their_user_and_their_tenant_admin,
);
