//! Accounts across tenants: invitations instead of reaching into another
//! tenant, who may change an account that belongs to several tenants, the
//! school of each membership, and the audit trail of deletions.

use chrono::Duration;
use entity::{audit_log, session_context_change, session_log, tenant_membership};
use pretty_assertions::assert_eq;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::backend_tests;
use crate::fixtures::{PASSWORD, World, email, new_user, school_of};
use crate::helpers::{Backend, TestApp, error_code};

const INVITE: &str = r#"
mutation($input: InviteMemberInput!) {
  inviteMember(input: $input) { __typename id tenantId tenantName email role schoolId expiresAt }
}"#;
const CREATE_USER: &str = r#"
mutation($input: CreateUserInput!) {
  createUser(input: $input) {
    __typename
    ... on User { id email }
    ... on Invitation { id tenantId tenantName email role schoolId expiresAt }
  }
}"#;
const ADD_MEMBERSHIP: &str = r#"
mutation($input: AddMembershipInput!) { addMembership(input: $input) { userId tenantId role } }"#;
const MY_INVITATIONS: &str = "{ myInvitations { id tenantId tenantName role } }";
const INVITATIONS: &str = "{ invitations { id email role } }";
const ACCEPT: &str =
    "mutation($id: UUID!) { acceptInvitation(id: $id) { tenantId role isDefault schoolId } }";
const DECLINE: &str = "mutation($id: UUID!) { declineInvitation(id: $id) }";
const REVOKE: &str = "mutation($id: UUID!) { revokeInvitation(id: $id) }";
const USER: &str = "query($id: UUID!) { user(id: $id) { id name school { id } } }";
const UPDATE_USER: &str = r#"
mutation($id: UUID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id name email } }"#;
const LINK: &str = r#"
mutation($g: UUID!, $u: UUID!) { createGuardianLink(guardianId: $g, userId: $u) { id } }"#;
const SET_USER_LIMIT: &str = r#"
mutation($id: UUID!) { setUserMaxConcurrentSessions(userId: $id, value: 2) { __typename } }"#;
const CREATE_SCHOOL: &str = "mutation($n: String!) { createSchool(input: { name: $n }) { id } }";
const START_SESSION: &str = "mutation($u: UUID!) { startSession(userId: $u) { id } }";
const SWITCH: &str = "mutation($t: UUID!) { switchTenant(tenantId: $t) { role } }";

/// The first error's code, asserting there is one.
async fn code_of(app: &TestApp, token: &str, query: &str, variables: Value) -> String {
    error_code(&app.error_as(Some(token), query, variables).await).to_owned()
}

/// The shape of an invitation answer, without what differs per address.
fn shape(invitation: &Value) -> Value {
    let mut shape = invitation.clone();
    for key in ["id", "email", "expiresAt"] {
        shape[key] = json!("…");
    }
    shape
}

async fn an_admin_reaches_an_account_of_another_tenant_only_through_an_invitation_it_accepts(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let beta_user = world.users["beta_user"];
    let target = email("beta_user");

    // Adding the account directly is a super admin's alone.
    let refused = app
        .error_as(
            Some(&admin),
            ADD_MEMBERSHIP,
            json!({ "input": { "email": target } }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    assert!(refused["message"].as_str().unwrap().contains("inviteMember"));

    // Until it accepts, the account is out of the admin's reach.
    assert_eq!(
        code_of(&app, &admin, USER, json!({ "id": beta_user })).await,
        "NOT_FOUND"
    );
    assert_eq!(
        code_of(
            &app,
            &admin,
            UPDATE_USER,
            json!({ "id": beta_user, "input": { "name": "Renamed" } })
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        code_of(
            &app,
            &admin,
            LINK,
            json!({ "g": world.users["guardian"], "u": beta_user })
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code_of(&app, &admin, SET_USER_LIMIT, json!({ "id": beta_user })).await,
        "NOT_FOUND"
    );
    assert_eq!(
        code_of(&app, &admin, START_SESSION, json!({ "u": beta_user })).await,
        "NOT_FOUND",
        "no session for someone who is not a member"
    );

    // An invitation answers the same whether or not the address has an account.
    let invited = app
        .ok_as(
            &admin,
            INVITE,
            json!({ "input": { "email": target, "role": "MEMBER" } }),
        )
        .await["inviteMember"]
        .clone();
    let nobody = app
        .ok_as(
            &admin,
            INVITE,
            json!({ "input": { "email": "nobody@example.test", "role": "MEMBER" } }),
        )
        .await["inviteMember"]
        .clone();
    assert_eq!(shape(&invited), shape(&nobody));
    assert_eq!(invited["tenantName"], "Alpha District");
    let listed = app.ok_as(&admin, INVITATIONS, json!({})).await;
    assert_eq!(listed["invitations"].as_array().unwrap().len(), 2);

    // createUser with the taken address invites it too, with the same answer,
    // and leaves the account as it was.
    let created = app
        .ok_as(
            &admin,
            CREATE_USER,
            json!({ "input": { "email": target, "name": "Hijacked", "password": "taken over by alpha", "role": "GUARDIAN" } }),
        )
        .await["createUser"]
        .clone();
    assert_eq!(created["__typename"], "Invitation");
    assert_eq!(created["id"], invited["id"], "the open invitation is refreshed");
    assert_eq!(created["role"], "GUARDIAN");
    let fresh = app
        .ok_as(
            &admin,
            CREATE_USER,
            json!({ "input": { "email": "someone.new@example.test", "name": "New", "password": "a fine new password" } }),
        )
        .await["createUser"]
        .clone();
    assert_eq!(fresh["__typename"], "User");
    let beta_token = world.login(&app, "beta_user").await;
    let me = app
        .ok_as(&beta_token, "{ me { user { name } } }", json!({}))
        .await;
    assert_ne!(me["me"]["user"]["name"], "Hijacked");

    // The invitee sees it whatever their active tenant, and only they may answer.
    let mine = app.ok_as(&beta_token, MY_INVITATIONS, json!({})).await;
    assert_eq!(
        mine["myInvitations"],
        json!([{ "id": invited["id"], "tenantId": world.alpha, "tenantName": "Alpha District", "role": "GUARDIAN" }])
    );
    let other = world.login(&app, "other_user").await;
    assert_eq!(
        code_of(&app, &other, ACCEPT, json!({ "id": invited["id"] })).await,
        "NOT_FOUND"
    );
    let joined = app
        .ok_as(&beta_token, ACCEPT, json!({ "id": invited["id"] }))
        .await;
    assert_eq!(
        joined["acceptInvitation"],
        json!({ "tenantId": world.alpha, "role": "GUARDIAN", "isDefault": false, "schoolId": null })
    );
    assert_eq!(
        code_of(&app, &beta_token, ACCEPT, json!({ "id": invited["id"] })).await,
        "NOT_FOUND",
        "an answered invitation is gone"
    );

    // Now a member of both: the alpha admin sees it and may link it, but the
    // account's own fields are the account's and a super admin's.
    let seen = app.ok_as(&admin, USER, json!({ "id": beta_user })).await;
    assert_eq!(seen["user"]["id"], json!(beta_user));
    app.ok_as(&admin, LINK, json!({ "g": beta_user, "u": world.users["user"] }))
        .await;
    for input in [
        json!({ "name": "Renamed" }),
        json!({ "email": "stolen@example.test" }),
        json!({ "password": "a new password for you" }),
    ] {
        let error = app
            .error_as(
                Some(&admin),
                UPDATE_USER,
                json!({ "id": beta_user, "input": input }),
            )
            .await;
        assert_eq!(error_code(&error), "FORBIDDEN", "{input}");
        assert!(
            error["message"].as_str().unwrap().contains("do not administer"),
            "{error}"
        );
    }
    assert_eq!(
        code_of(&app, &admin, SET_USER_LIMIT, json!({ "id": beta_user })).await,
        "FORBIDDEN"
    );
    let renamed = app
        .ok_as(
            &beta_token,
            UPDATE_USER,
            json!({ "id": beta_user, "input": { "name": "Still Mine" } }),
        )
        .await;
    assert_eq!(renamed["updateUser"]["name"], "Still Mine");
    let super_admin = world.login(&app, "super_admin").await;
    app.ok_as(&super_admin, SET_USER_LIMIT, json!({ "id": beta_user }))
        .await;

    // Each tenant sets its own school: neither overwrites the other.
    let north = app.ok_as(&admin, CREATE_SCHOOL, json!({ "n": "North" })).await["createSchool"]["id"].clone();
    let other_admin = world.login(&app, "other_admin").await;
    let south = app
        .ok_as(&other_admin, CREATE_SCHOOL, json!({ "n": "South" }))
        .await["createSchool"]["id"]
        .clone();
    app.ok_as(
        &admin,
        UPDATE_USER,
        json!({ "id": beta_user, "input": { "schoolId": north } }),
    )
    .await;
    app.ok_as(
        &other_admin,
        UPDATE_USER,
        json!({ "id": beta_user, "input": { "schoolId": south } }),
    )
    .await;
    let north_id: Uuid = serde_json::from_value(north.clone()).unwrap();
    let south_id: Uuid = serde_json::from_value(south.clone()).unwrap();
    assert_eq!(school_of(&app.db, beta_user, world.alpha).await, Some(north_id));
    assert_eq!(school_of(&app.db, beta_user, world.beta).await, Some(south_id));
    let seen = app.ok_as(&admin, USER, json!({ "id": beta_user })).await;
    assert_eq!(seen["user"]["school"]["id"], north);
    assert_eq!(
        code_of(
            &app,
            &admin,
            UPDATE_USER,
            json!({ "id": beta_user, "input": { "schoolId": south } })
        )
        .await,
        "BAD_USER_INPUT",
        "another tenant's school"
    );

    // The whole story is in the audit log.
    let actions: Vec<String> = audit_log::Entity::find()
        .filter(audit_log::Column::TenantId.eq(world.alpha))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.action)
        .collect();
    for action in ["InviteMember", "AcceptInvitation"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} missing from {actions:?}"
        );
    }
}

async fn invitations_can_be_declined_revoked_or_left_to_expire(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let other_admin = world.login(&app, "other_admin").await;
    let beta_token = world.login(&app, "beta_user").await;
    let invite = |role: &'static str| json!({ "input": { "email": email("beta_user"), "role": role } });

    let first = app.ok_as(&admin, INVITE, invite("MEMBER")).await["inviteMember"]["id"].clone();
    let declined = app.ok_as(&beta_token, DECLINE, json!({ "id": first })).await;
    assert_eq!(declined["declineInvitation"], first);
    let mine = app.ok_as(&beta_token, MY_INVITATIONS, json!({})).await;
    assert_eq!(mine["myInvitations"], json!([]));

    let second = app.ok_as(&admin, INVITE, invite("MEMBER")).await["inviteMember"]["id"].clone();
    assert_eq!(
        code_of(&app, &other_admin, REVOKE, json!({ "id": second })).await,
        "NOT_FOUND",
        "another tenant's invitation"
    );
    let member = world.login(&app, "user").await;
    assert_eq!(
        code_of(&app, &member, REVOKE, json!({ "id": second })).await,
        "FORBIDDEN"
    );
    assert_eq!(code_of(&app, &member, INVITATIONS, json!({})).await, "FORBIDDEN");
    app.ok_as(&admin, REVOKE, json!({ "id": second })).await;
    assert_eq!(
        code_of(&app, &beta_token, ACCEPT, json!({ "id": second })).await,
        "NOT_FOUND"
    );

    let third = app.ok_as(&admin, INVITE, invite("MEMBER")).await["inviteMember"]["id"].clone();
    app.clock.advance(Duration::hours(168) + Duration::seconds(1));
    let beta_token = world.login(&app, "beta_user").await;
    let admin = world.login(&app, "admin").await;
    let mine = app.ok_as(&beta_token, MY_INVITATIONS, json!({})).await;
    assert_eq!(mine["myInvitations"], json!([]), "expired");
    assert_eq!(
        code_of(&app, &beta_token, ACCEPT, json!({ "id": third })).await,
        "NOT_FOUND"
    );
    let swept = session_manager::jobs::sweep_account_records(&app.state)
        .await
        .unwrap();
    assert!(swept >= 1);

    // Inviting a member of the tenant is a conflict the admin can see anyway.
    assert_eq!(
        code_of(
            &app,
            &admin,
            INVITE,
            json!({ "input": { "email": email("user") } })
        )
        .await,
        "CONFLICT"
    );
    let actions: Vec<String> = audit_log::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.action)
        .collect();
    for action in ["DeclineInvitation", "RevokeInvitation"] {
        assert!(actions.iter().any(|a| a == action), "{action} missing");
    }
}

async fn an_account_left_without_a_tenant_can_still_log_in_to_answer_its_invitation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let loner = new_user(&app.db, "loner@example.test", false).await;
    let (_, body) = app
        .post_graphql(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": "loner@example.test", "p": PASSWORD }),
        )
        .await;
    assert_eq!(
        error_code(&body["errors"][0]),
        "FORBIDDEN",
        "no tenant, no invitation"
    );
    let admin = world.login(&app, "admin").await;
    let invited = app
        .ok_as(
            &admin,
            INVITE,
            json!({ "input": { "email": "loner@example.test" } }),
        )
        .await["inviteMember"]["id"]
        .clone();
    let token = app.login("loner@example.test", PASSWORD).await;
    assert_eq!(
        code_of(&app, &token, "{ sessions(first: 1) { nodes { id } } }", json!({})).await,
        "FORBIDDEN",
        "without a tenant nothing but the invitation is reachable"
    );
    let joined = app.ok_as(&token, ACCEPT, json!({ "id": invited })).await;
    assert_eq!(joined["acceptInvitation"]["isDefault"], true);
    let context = app
        .ok_as(&token, "{ me { activeTenant { id } } }", json!({}))
        .await;
    assert_eq!(context["me"]["activeTenant"]["id"], json!(world.alpha));
    assert_eq!(
        tenant_membership::Entity::find()
            .filter(tenant_membership::Column::UserId.eq(loner))
            .count(&app.db)
            .await
            .unwrap(),
        1
    );
}

async fn a_super_admin_still_adds_accounts_directly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let super_admin = world.login(&app, "super_admin").await;
    app.ok_as(&super_admin, SWITCH, json!({ "t": world.alpha })).await;
    let added = app
        .ok_as(
            &super_admin,
            ADD_MEMBERSHIP,
            json!({ "input": { "email": email("beta_user"), "role": "MEMBER" } }),
        )
        .await;
    assert_eq!(added["addMembership"]["tenantId"], json!(world.alpha));
}

async fn deleting_an_account_or_a_tenant_keeps_the_trail_and_is_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let victim = world.users["beta_user"];
    let _victim_token = world.login(&app, "beta_user").await;
    let super_admin = world.login(&app, "super_admin").await;
    let trail_before = session_context_change::Entity::find()
        .filter(session_context_change::Column::UserId.eq(victim))
        .count(&app.db)
        .await
        .unwrap();
    assert!(trail_before > 0, "logging in recorded the default tenant");

    app.ok_as(
        &super_admin,
        "mutation($id: UUID!) { deleteUser(id: $id) }",
        json!({ "id": victim }),
    )
    .await;
    let trail_after = session_context_change::Entity::find()
        .filter(session_context_change::Column::UserId.eq(victim))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(trail_after, trail_before, "the context-change trail stays");
    let logs = session_log::Entity::find()
        .filter(session_log::Column::UserId.eq(victim))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(logs.len(), 1, "the login session stays");
    assert!(logs[0].logout_at.is_some(), "and is ended");

    app.ok_as(
        &super_admin,
        "mutation($id: UUID!) { deleteTenant(id: $id) }",
        json!({ "id": world.beta }),
    )
    .await;
    let in_beta = session_context_change::Entity::find()
        .filter(session_context_change::Column::TenantId.eq(world.beta))
        .count(&app.db)
        .await
        .unwrap();
    assert!(in_beta > 0, "the deleted tenant's trail stays");

    let audited: Vec<(String, String)> = audit_log::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.action, row.resource))
        .collect();
    assert!(
        audited.contains(&("DeleteUser".to_owned(), format!("User:{victim}"))),
        "{audited:?}"
    );
    assert!(
        audited.contains(&("DeleteTenant".to_owned(), format!("District:{}", world.beta))),
        "{audited:?}"
    );
}

async fn new_passwords_must_not_be_common_or_the_accounts_own_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    for password in [
        "password123",
        "Iloveyou1",
        "pat.person@example.test",
        "Pat Person",
    ] {
        let error = app
            .error_as(
                Some(&admin),
                CREATE_USER,
                json!({ "input": { "email": "pat.person@example.test", "name": "Pat Person", "password": password } }),
            )
            .await;
        assert_eq!(error_code(&error), "BAD_USER_INPUT", "{password}");
        assert_eq!(error["extensions"]["field"], "password", "{password}");
    }
    let user = world.login(&app, "user").await;
    let error = app
        .error_as(
            Some(&user),
            UPDATE_USER,
            json!({ "id": world.users["user"], "input": { "password": "qwerty123", "currentPassword": PASSWORD } }),
        )
        .await;
    assert_eq!(error["extensions"]["field"], "password");
}

async fn an_invitation_belongs_to_the_account_that_had_the_address_not_to_the_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let other_admin = world.login(&app, "other_admin").await;

    // Invited while the address has no account: whoever creates one later
    // cannot answer it.
    let unclaimed = app
        .ok_as(
            &admin,
            INVITE,
            json!({ "input": { "email": "head@example.test", "role": "ADMIN" } }),
        )
        .await["inviteMember"]["id"]
        .clone();
    let created = app
        .ok_as(
            &other_admin,
            CREATE_USER,
            json!({ "input": { "email": "head@example.test", "name": "Late", "password": "a password of mine" } }),
        )
        .await;
    assert_eq!(created["createUser"]["__typename"], "User");
    let late = app.login("head@example.test", "a password of mine").await;
    assert_eq!(
        app.ok_as(&late, MY_INVITATIONS, json!({})).await["myInvitations"],
        json!([])
    );
    assert_eq!(
        code_of(&app, &late, ACCEPT, json!({ "id": unclaimed })).await,
        "NOT_FOUND"
    );

    // Invited with an account: it stays that account's when the address moves.
    let invited = app
        .ok_as(
            &admin,
            INVITE,
            json!({ "input": { "email": email("beta_user") } }),
        )
        .await["inviteMember"]["id"]
        .clone();
    let beta_token = world.login(&app, "beta_user").await;
    app.ok_as(
        &beta_token,
        UPDATE_USER,
        json!({ "id": world.users["beta_user"], "input": { "email": "moved@example.test", "currentPassword": PASSWORD } }),
    )
    .await;
    let newcomer = app
        .ok_as(
            &other_admin,
            CREATE_USER,
            json!({ "input": { "email": email("beta_user"), "name": "Newcomer", "password": "another password" } }),
        )
        .await;
    assert_eq!(newcomer["createUser"]["__typename"], "User");
    let newcomer = app.login(&email("beta_user"), "another password").await;
    assert_eq!(
        code_of(&app, &newcomer, ACCEPT, json!({ "id": invited })).await,
        "NOT_FOUND"
    );
    app.ok_as(&beta_token, ACCEPT, json!({ "id": invited })).await;
}

backend_tests!(
    an_invitation_belongs_to_the_account_that_had_the_address_not_to_the_address,
    an_admin_reaches_an_account_of_another_tenant_only_through_an_invitation_it_accepts,
    invitations_can_be_declined_revoked_or_left_to_expire,
    an_account_left_without_a_tenant_can_still_log_in_to_answer_its_invitation,
    a_super_admin_still_adds_accounts_directly,
    deleting_an_account_or_a_tenant_keeps_the_trail_and_is_audited,
    new_passwords_must_not_be_common_or_the_accounts_own_name,
);
