//! Administration: tenants, schools, users, memberships and guardian links,
//! managed by a tenant admin within the tenant and a super admin everywhere;
//! validated, scoped, and written whole or not at all.

use entity::session_context_change::{self, ContextChangeEventType};
use entity::tenant_membership::{self, MembershipRole};
use entity::{guardian_link, school, session, session_log, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};
use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::backend_tests;
use crate::fixtures::{PASSWORD, World, add_membership, attend, email, new_user, school_of};
use crate::helpers::{Backend, TestApp, error_code};

const UPDATE_TENANT: &str =
    "mutation($id: UUID!, $name: String!) { updateTenant(id: $id, input: { name: $name }) { id name } }";
const DELETE_TENANT: &str = "mutation($id: UUID!) { deleteTenant(id: $id) }";
const CREATE_SCHOOL: &str =
    "mutation($name: String!) { createSchool(input: { name: $name }) { id name tenantId } }";
const UPDATE_SCHOOL: &str =
    "mutation($id: UUID!, $name: String!) { updateSchool(id: $id, input: { name: $name }) { id name } }";
const DELETE_SCHOOL: &str = "mutation($id: UUID!) { deleteSchool(id: $id) }";
const CREATE_USER: &str = r#"
mutation($input: CreateUserInput!) {
  createUser(input: $input) {
    ... on User {
      id email name isSuperAdmin role
      school { name }
      memberships { tenantId role isDefault }
    }
  }
}"#;
const UPDATE_USER: &str = r#"
mutation($id: UUID!, $input: UpdateUserInput!) {
  updateUser(id: $id, input: $input) { id email name school { id } }
}"#;
const DELETE_USER: &str = "mutation($id: UUID!) { deleteUser(id: $id) }";
const ADD_MEMBERSHIP: &str = r#"
mutation($input: AddMembershipInput!) {
  addMembership(input: $input) { userId tenantId role isDefault }
}"#;
const SET_ROLE: &str =
    "mutation($u: UUID!, $r: MembershipRole!) { updateMembershipRole(userId: $u, role: $r) { userId role } }";
const REMOVE_MEMBERSHIP: &str = "mutation($u: UUID!) { removeMembership(userId: $u) }";
const LINK: &str = r#"
mutation($g: UUID!, $u: UUID!) {
  createGuardianLink(guardianId: $g, userId: $u) { id tenantId guardian { email } user { email } }
}"#;
const UNLINK: &str = "mutation($id: UUID!) { deleteGuardianLink(id: $id) }";
const USERS: &str = r#"
query($role: MembershipRole, $first: Int, $after: String) {
  users(role: $role, first: $first, after: $after) { email }
}"#;
const USER: &str = "query($id: UUID!) { user(id: $id) { id email } }";
const LINKS: &str = r#"
query($g: UUID, $u: UUID) {
  guardianLinks(guardianId: $g, userId: $u) { guardian { email } user { email } }
}"#;
const SWITCH: &str = "mutation($t: UUID!) { switchTenant(tenantId: $t) { role } }";
const CONTEXT: &str = "{ me { activeTenant { id } } }";

/// Asserts that `query` fails with `code` for `token` (anonymous when `None`)
/// and returns the error.
async fn refused(app: &TestApp, token: Option<&str>, query: &str, variables: Value, code: &str) -> Value {
    let error = app.error_as(token, query, variables).await;
    assert_eq!(error_code(&error), code, "{error:#}");
    error
}

/// Asserts a `BAD_USER_INPUT` naming `field`.
async fn bad_input(app: &TestApp, token: &str, query: &str, variables: Value, field: &str) -> Value {
    let error = refused(app, Some(token), query, variables, "BAD_USER_INPUT").await;
    assert_eq!(error["extensions"]["field"], field, "{error:#}");
    error
}

/// The super admin, working in `tenant`.
async fn super_admin_in(app: &TestApp, world: &World, tenant: Uuid) -> String {
    let token = world.login(app, "super_admin").await;
    app.ok_as(&token, SWITCH, json!({ "t": tenant })).await;
    token
}

/// The e-mails of a list of users.
fn emails(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|person| person["email"].as_str().unwrap().to_owned())
        .collect()
}

fn handles_to_emails(handles: &[&str]) -> Vec<String> {
    handles.iter().map(|handle| email(handle)).collect()
}

async fn new_school(app: &TestApp, tenant_id: Uuid, name: &str) -> Uuid {
    school::ActiveModel {
        tenant_id: Set(tenant_id),
        name: Set(name.to_owned()),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap()
    .id
}

async fn account(app: &TestApp, id: Uuid) -> Option<user::Model> {
    user::Entity::find_by_id(id).one(&app.db).await.unwrap()
}

async fn membership_of(app: &TestApp, user_id: Uuid, tenant_id: Uuid) -> Option<tenant_membership::Model> {
    tenant_membership::Entity::find()
        .filter(tenant_membership::Column::UserId.eq(user_id))
        .filter(tenant_membership::Column::TenantId.eq(tenant_id))
        .one(&app.db)
        .await
        .unwrap()
}

async fn links_in(app: &TestApp, tenant_id: Uuid) -> Vec<guardian_link::Model> {
    guardian_link::Entity::find()
        .filter(guardian_link::Column::TenantId.eq(tenant_id))
        .order_by_asc(guardian_link::Column::CreatedAt)
        .all(&app.db)
        .await
        .unwrap()
}

async fn changes_of(app: &TestApp, user_id: Uuid) -> Vec<session_context_change::Model> {
    session_context_change::Entity::find()
        .filter(session_context_change::Column::UserId.eq(user_id))
        .order_by_asc(session_context_change::Column::CreatedAt)
        .order_by_asc(session_context_change::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
}

async fn user_count(app: &TestApp) -> u64 {
    user::Entity::find().count(&app.db).await.unwrap()
}

// ------------------------------------------------------------------- tenants

async fn a_tenant_admin_or_a_super_admin_renames_a_tenant_and_nobody_else_does(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let renamed = app
        .ok_as(
            &admin,
            UPDATE_TENANT,
            json!({ "id": world.alpha, "name": "  Alpha County " }),
        )
        .await;
    assert_eq!(renamed["updateTenant"]["name"], "Alpha County");
    let root = world.login(&app, "super_admin").await;
    let renamed = app
        .ok_as(
            &root,
            UPDATE_TENANT,
            json!({ "id": world.beta, "name": "Beta County" }),
        )
        .await;
    assert_eq!(renamed["updateTenant"]["name"], "Beta County");

    let alpha = json!({ "id": world.alpha, "name": "Taken over" });
    let other_admin = world.login(&app, "other_admin").await;
    refused(
        &app,
        Some(&other_admin),
        UPDATE_TENANT,
        alpha.clone(),
        "NOT_FOUND",
    )
    .await;
    for handle in ["guardian", "user"] {
        let token = world.login(&app, handle).await;
        refused(&app, Some(&token), UPDATE_TENANT, alpha.clone(), "FORBIDDEN").await;
    }
    refused(&app, None, UPDATE_TENANT, alpha, "UNAUTHENTICATED").await;
    for name in ["   ", &"x".repeat(256)] {
        bad_input(
            &app,
            &admin,
            UPDATE_TENANT,
            json!({ "id": world.alpha, "name": name }),
            "name",
        )
        .await;
    }
    let data = app.ok_as(&admin, "{ tenants { name } }", json!({})).await;
    assert_eq!(data["tenants"], json!([{ "name": "Alpha County" }]));
}

async fn only_a_super_admin_deletes_a_tenant_and_everything_in_it_goes_with_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    new_school(&app, world.alpha, "Alpha High").await;
    // The admin of alpha also belongs to beta; alpha is their default.
    add_membership(
        &app.db,
        world.users["admin"],
        world.beta,
        MembershipRole::Member,
        false,
    )
    .await;
    for handle in ["admin", "other_admin", "guardian"] {
        let token = world.login(&app, handle).await;
        refused(
            &app,
            Some(&token),
            DELETE_TENANT,
            json!({ "id": world.alpha }),
            "FORBIDDEN",
        )
        .await;
    }
    refused(
        &app,
        None,
        DELETE_TENANT,
        json!({ "id": world.alpha }),
        "UNAUTHENTICATED",
    )
    .await;
    let admin = world.login(&app, "admin").await;

    let root = world.login(&app, "super_admin").await;
    let data = app
        .ok_as(&root, DELETE_TENANT, json!({ "id": world.alpha }))
        .await;
    assert_eq!(data["deleteTenant"], json!(world.alpha));
    refused(
        &app,
        Some(&root),
        DELETE_TENANT,
        json!({ "id": world.alpha }),
        "NOT_FOUND",
    )
    .await;

    let schools = school::Entity::find()
        .filter(school::Column::TenantId.eq(world.alpha))
        .count(&app.db)
        .await
        .unwrap();
    let memberships = tenant_membership::Entity::find()
        .filter(tenant_membership::Column::TenantId.eq(world.alpha))
        .count(&app.db)
        .await
        .unwrap();
    let sessions = session::Entity::find()
        .filter(session::Column::TenantId.eq(world.alpha))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!((schools, memberships, sessions), (0, 0, 0));
    assert!(links_in(&app, world.alpha).await.is_empty());
    assert!(
        account(&app, world.users["user"]).await.is_some(),
        "accounts stay"
    );
    assert!(
        session::Entity::find_by_id(world.sessions["beta"])
            .one(&app.db)
            .await
            .unwrap()
            .is_some()
    );

    // The admin's remaining membership became their default, and their
    // login session moves there.
    let beta = membership_of(&app, world.users["admin"], world.beta)
        .await
        .unwrap();
    assert!(beta.is_default);
    let last = changes_of(&app, world.users["admin"]).await;
    assert!(last.iter().any(
        |change| change.event_type == ContextChangeEventType::SetDefaultTenant
            && change.tenant_id == world.beta
            && change.metadata.as_ref().unwrap()["reason"] == "default_membership_removed"
    ));
    let me = app.ok_as(&admin, CONTEXT, json!({})).await;
    assert_eq!(me["me"]["activeTenant"]["id"], json!(world.beta));
}

// ------------------------------------------------------------------- schools

async fn a_tenant_admin_creates_renames_and_deletes_schools_of_the_active_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let created = app
        .ok_as(&admin, CREATE_SCHOOL, json!({ "name": "  North High " }))
        .await;
    let school = &created["createSchool"];
    assert_eq!(school["name"], "North High");
    assert_eq!(school["tenantId"], json!(world.alpha));
    let id = school["id"].clone();
    let renamed = app
        .ok_as(
            &admin,
            UPDATE_SCHOOL,
            json!({ "id": id, "name": "North High School" }),
        )
        .await;
    assert_eq!(renamed["updateSchool"]["name"], "North High School");
    app.ok_as(
        &admin,
        UPDATE_USER,
        json!({ "id": world.users["user"], "input": { "schoolId": id } }),
    )
    .await;
    let tenant = app
        .ok_as(
            &admin,
            "query($id: UUID!) { tenant(id: $id) { schools { name } } }",
            json!({ "id": world.alpha }),
        )
        .await;
    assert_eq!(
        tenant["tenant"]["schools"],
        json!([{ "name": "North High School" }])
    );

    let deleted = app.ok_as(&admin, DELETE_SCHOOL, json!({ "id": id })).await;
    assert_eq!(deleted["deleteSchool"], id);
    assert!(
        account(&app, world.users["user"]).await.is_some(),
        "the user stays"
    );
    assert_eq!(
        school_of(&app.db, world.users["user"], world.alpha).await,
        None,
        "without a school"
    );
    refused(
        &app,
        Some(&admin),
        DELETE_SCHOOL,
        json!({ "id": id }),
        "NOT_FOUND",
    )
    .await;
}

async fn school_names_are_validated_and_unique_per_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    for name in ["", "  ", &"x".repeat(256)] {
        bad_input(&app, &admin, CREATE_SCHOOL, json!({ "name": name }), "name").await;
    }
    app.ok_as(&admin, CREATE_SCHOOL, json!({ "name": "North High" }))
        .await;
    let south = app
        .ok_as(&admin, CREATE_SCHOOL, json!({ "name": "South High" }))
        .await;
    let error = refused(
        &app,
        Some(&admin),
        CREATE_SCHOOL,
        json!({ "name": " North High " }),
        "CONFLICT",
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("\"North High\" already exists"),
        "{error}"
    );
    let error = refused(
        &app,
        Some(&admin),
        UPDATE_SCHOOL,
        json!({ "id": south["createSchool"]["id"], "name": "North High" }),
        "CONFLICT",
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("already exists in this tenant")
    );
    let other_admin = world.login(&app, "other_admin").await;
    app.ok_as(&other_admin, CREATE_SCHOOL, json!({ "name": "North High" }))
        .await;
    let names: Vec<String> = school::Entity::find()
        .filter(school::Column::TenantId.eq(world.alpha))
        .order_by_asc(school::Column::Name)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|school| school.name)
        .collect();
    assert_eq!(names, ["North High", "South High"]);
}

async fn school_administration_is_refused_outside_a_tenant_admins_reach(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let school = new_school(&app, world.alpha, "Alpha High").await;
    let other_admin = world.login(&app, "other_admin").await;
    let rename = json!({ "id": school, "name": "Mine now" });
    refused(
        &app,
        Some(&other_admin),
        UPDATE_SCHOOL,
        rename.clone(),
        "NOT_FOUND",
    )
    .await;
    refused(
        &app,
        Some(&other_admin),
        DELETE_SCHOOL,
        json!({ "id": school }),
        "NOT_FOUND",
    )
    .await;
    for handle in ["guardian", "user"] {
        let token = world.login(&app, handle).await;
        refused(
            &app,
            Some(&token),
            CREATE_SCHOOL,
            json!({ "name": "New" }),
            "FORBIDDEN",
        )
        .await;
        refused(&app, Some(&token), UPDATE_SCHOOL, rename.clone(), "FORBIDDEN").await;
        refused(
            &app,
            Some(&token),
            DELETE_SCHOOL,
            json!({ "id": school }),
            "FORBIDDEN",
        )
        .await;
    }
    refused(
        &app,
        None,
        CREATE_SCHOOL,
        json!({ "name": "New" }),
        "UNAUTHENTICATED",
    )
    .await;
    let root = world.login(&app, "super_admin").await;
    let error = refused(
        &app,
        Some(&root),
        CREATE_SCHOOL,
        json!({ "name": "New" }),
        "FORBIDDEN",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("switchTenant"));
    app.ok_as(&root, SWITCH, json!({ "t": world.alpha })).await;
    app.ok_as(&root, UPDATE_SCHOOL, rename).await;
    let created = app.ok_as(&root, CREATE_SCHOOL, json!({ "name": "New" })).await;
    assert_eq!(created["createSchool"]["tenantId"], json!(world.alpha));
    let unchanged = school::Entity::find()
        .filter(school::Column::TenantId.eq(world.beta))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(unchanged, 0);
}

// --------------------------------------------------------------------- users

async fn a_tenant_admin_creates_a_user_whose_membership_becomes_their_default_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let school = new_school(&app, world.alpha, "Alpha High").await;
    let admin = world.login(&app, "admin").await;
    let input = json!({
        "email": "  New.Person@Example.ORG ",
        "name": " New Person ",
        "password": "a long enough password",
        "role": "GUARDIAN",
        "schoolId": school,
    });
    let created = app.ok_as(&admin, CREATE_USER, json!({ "input": input })).await;
    let person = &created["createUser"];
    assert_eq!(person["email"], "new.person@example.org");
    assert_eq!(person["name"], "New Person");
    assert_eq!(person["isSuperAdmin"], false);
    assert_eq!(person["role"], "GUARDIAN");
    assert_eq!(person["school"]["name"], "Alpha High");
    assert_eq!(
        person["memberships"],
        json!([{ "tenantId": world.alpha, "role": "GUARDIAN", "isDefault": true }])
    );
    let id: Uuid = serde_json::from_value(person["id"].clone()).unwrap();
    let stored = account(&app, id).await.unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"));
    let changes = changes_of(&app, id).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].event_type, ContextChangeEventType::SetDefaultTenant);
    assert_eq!(
        changes[0].metadata.as_ref().unwrap()["reason"],
        "first_membership"
    );

    let token = app
        .login(" NEW.person@example.org", "a long enough password")
        .await;
    let me = app
        .ok_as(&token, "{ me { role activeTenant { id } } }", json!({}))
        .await;
    assert_eq!(
        me["me"],
        json!({ "role": "GUARDIAN", "activeTenant": { "id": world.alpha } })
    );
    let listed = app.ok_as(&admin, USERS, json!({ "role": "GUARDIAN" })).await;
    assert!(emails(&listed["users"]).contains(&"new.person@example.org".to_owned()));
}

async fn creating_a_user_validates_every_field_and_writes_nothing_on_failure(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let beta_school = new_school(&app, world.beta, "Beta High").await;
    let admin = world.login(&app, "admin").await;
    let valid = json!({ "email": "fresh@example.org", "name": "Fresh", "password": "long enough" });
    let with = |field: &str, value: Value| {
        let mut input = valid.clone();
        input[field] = value;
        json!({ "input": input })
    };
    let before = user_count(&app).await;
    for bad in [
        "",
        "fresh",
        "fresh@",
        "@example.org",
        "fresh@localhost",
        "Fresh <fresh@example.org>",
        "a b@example.org",
    ] {
        bad_input(&app, &admin, CREATE_USER, with("email", json!(bad)), "email").await;
    }
    let long_email = format!("{}@{}.org", "a".repeat(64), "b".repeat(260));
    bad_input(
        &app,
        &admin,
        CREATE_USER,
        with("email", json!(long_email)),
        "email",
    )
    .await;
    // A member of the tenant already is a conflict (the admin sees them);
    // another tenant's account is invited instead (see `accounts`).
    for taken in ["user@example.test", "  USER@Example.Test "] {
        let error = refused(
            &app,
            Some(&admin),
            CREATE_USER,
            with("email", json!(taken)),
            "CONFLICT",
        )
        .await;
        assert!(error["message"].as_str().unwrap().contains("already a member"));
    }
    bad_input(
        &app,
        &admin,
        CREATE_USER,
        with("name", json!("x".repeat(256))),
        "name",
    )
    .await;
    bad_input(&app, &admin, CREATE_USER, with("name", json!("  ")), "name").await;
    bad_input(
        &app,
        &admin,
        CREATE_USER,
        with("password", json!("7 chars")),
        "password",
    )
    .await;
    bad_input(
        &app,
        &admin,
        CREATE_USER,
        with("password", json!("p".repeat(129))),
        "password",
    )
    .await;
    bad_input(
        &app,
        &admin,
        CREATE_USER,
        with("schoolId", json!(beta_school)),
        "schoolId",
    )
    .await;
    bad_input(
        &app,
        &admin,
        CREATE_USER,
        with("schoolId", json!(Uuid::now_v7())),
        "schoolId",
    )
    .await;
    assert_eq!(user_count(&app).await, before, "no account was written");
    let fresh = user::Entity::find()
        .filter(user::Column::Email.eq("fresh@example.org"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(fresh, 0);
    // Exactly the bounds are accepted.
    let created = app
        .ok_as(
            &admin,
            CREATE_USER,
            json!({ "input": { "email": "fresh@example.org", "name": "é".repeat(255), "password": "8 chars!" } }),
        )
        .await;
    assert_eq!(created["createUser"]["role"], "MEMBER");
}

async fn only_a_super_admin_creates_a_super_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let input = json!({ "input": {
        "email": "root2@example.org", "name": "Root", "password": "long enough", "isSuperAdmin": true
    } });
    let admin = world.login(&app, "admin").await;
    let error = refused(&app, Some(&admin), CREATE_USER, input.clone(), "FORBIDDEN").await;
    assert!(error["message"].as_str().unwrap().contains("super admin"));
    let root = super_admin_in(&app, &world, world.alpha).await;
    let created = app.ok_as(&root, CREATE_USER, input).await;
    assert_eq!(created["createUser"]["isSuperAdmin"], true);
    assert_eq!(created["createUser"]["role"], "MEMBER");
}

async fn creating_users_is_for_the_admins_of_the_active_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let input = |address: &str| json!({ "input": { "email": address, "name": "Someone", "password": "long enough" } });
    for handle in ["guardian", "user"] {
        let token = world.login(&app, handle).await;
        refused(
            &app,
            Some(&token),
            CREATE_USER,
            input("x@example.org"),
            "FORBIDDEN",
        )
        .await;
    }
    refused(&app, None, CREATE_USER, input("x@example.org"), "UNAUTHENTICATED").await;
    let root = world.login(&app, "super_admin").await;
    refused(
        &app,
        Some(&root),
        CREATE_USER,
        input("x@example.org"),
        "FORBIDDEN",
    )
    .await;
    let other_admin = world.login(&app, "other_admin").await;
    let created = app
        .ok_as(&other_admin, CREATE_USER, input("beta.new@example.org"))
        .await;
    assert_eq!(
        created["createUser"]["memberships"][0]["tenantId"],
        json!(world.beta)
    );
    let admin = world.login(&app, "admin").await;
    let id = created["createUser"]["id"].clone();
    refused(&app, Some(&admin), USER, json!({ "id": id }), "NOT_FOUND").await;
}

async fn an_admin_updates_a_member_and_users_out_of_scope_read_as_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let school = new_school(&app, world.alpha, "Alpha High").await;
    let target = world.users["user"];
    let admin = world.login(&app, "admin").await;
    let updated = app
        .ok_as(
            &admin,
            UPDATE_USER,
            json!({ "id": target, "input": {
                "email": " Renamed.User@Example.test", "name": "Renamed", "schoolId": school
            } }),
        )
        .await;
    assert_eq!(
        updated["updateUser"],
        json!({ "id": target, "email": "renamed.user@example.test", "name": "Renamed", "school": { "id": school } })
    );
    let cleared = app
        .ok_as(
            &admin,
            UPDATE_USER,
            json!({ "id": target, "input": { "schoolId": null } }),
        )
        .await;
    assert_eq!(cleared["updateUser"]["school"], Value::Null);
    assert_eq!(cleared["updateUser"]["name"], "Renamed", "omitted fields stay");
    let reset = app
        .ok_as(
            &admin,
            UPDATE_USER,
            json!({ "id": target, "input": { "password": "set by the admin" } }),
        )
        .await;
    assert_eq!(reset["updateUser"]["id"], json!(target));
    app.login("renamed.user@example.test", "set by the admin").await;

    let rename = |id: Uuid| json!({ "id": id, "input": { "name": "Hijacked" } });
    let other_admin = world.login(&app, "other_admin").await;
    refused(&app, Some(&other_admin), UPDATE_USER, rename(target), "NOT_FOUND").await;
    let guardian = world.login(&app, "guardian").await;
    refused(&app, Some(&guardian), UPDATE_USER, rename(target), "FORBIDDEN").await;
    refused(
        &app,
        Some(&guardian),
        UPDATE_USER,
        rename(world.users["other_user"]),
        "NOT_FOUND",
    )
    .await;
    let other_user = world.login(&app, "other_user").await;
    refused(&app, Some(&other_user), UPDATE_USER, rename(target), "NOT_FOUND").await;
    refused(&app, None, UPDATE_USER, rename(target), "UNAUTHENTICATED").await;
    refused(
        &app,
        Some(&admin),
        UPDATE_USER,
        rename(world.users["beta_user"]),
        "NOT_FOUND",
    )
    .await;
    refused(
        &app,
        Some(&admin),
        UPDATE_USER,
        rename(Uuid::now_v7()),
        "NOT_FOUND",
    )
    .await;
    assert_eq!(
        account(&app, target).await.unwrap().name.as_deref(),
        Some("Renamed")
    );

    // A super admin changes any account, without choosing a tenant.
    let root = world.login(&app, "super_admin").await;
    let data = app
        .ok_as(&root, UPDATE_USER, rename(world.users["beta_user"]))
        .await;
    assert_eq!(data["updateUser"]["name"], "Hijacked");
    // A super admin's account is out of a tenant admin's reach, even as a member.
    add_membership(
        &app.db,
        world.users["super_admin"],
        world.alpha,
        MembershipRole::Member,
        true,
    )
    .await;
    refused(
        &app,
        Some(&admin),
        UPDATE_USER,
        rename(world.users["super_admin"]),
        "FORBIDDEN",
    )
    .await;
}

async fn users_change_their_own_name_e_mail_and_password_but_not_their_school(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let school = new_school(&app, world.alpha, "Alpha High").await;
    let me = world.users["user"];
    let token = world.login(&app, "user").await;
    let renamed = app
        .ok_as(
            &token,
            UPDATE_USER,
            json!({ "id": me, "input": { "name": "Me Myself" } }),
        )
        .await;
    assert_eq!(renamed["updateUser"]["name"], "Me Myself");
    // The e-mail address is a credential: the current password confirms it.
    bad_input(
        &app,
        &token,
        UPDATE_USER,
        json!({ "id": me, "input": { "email": "me@example.org" } }),
        "currentPassword",
    )
    .await;
    let moved = app
        .ok_as(
            &token,
            UPDATE_USER,
            json!({ "id": me, "input": { "email": "me@example.org", "currentPassword": PASSWORD } }),
        )
        .await;
    assert_eq!(moved["updateUser"]["email"], "me@example.org");
    app.ok_as(
        &token,
        UPDATE_USER,
        json!({ "id": me, "input": { "email": email("user"), "currentPassword": PASSWORD } }),
    )
    .await;
    refused(
        &app,
        Some(&token),
        UPDATE_USER,
        json!({ "id": me, "input": { "schoolId": school } }),
        "FORBIDDEN",
    )
    .await;
    let change = |input: Value| json!({ "id": me, "input": input });
    bad_input(
        &app,
        &token,
        UPDATE_USER,
        change(json!({ "password": "new password" })),
        "currentPassword",
    )
    .await;
    bad_input(
        &app,
        &token,
        UPDATE_USER,
        change(json!({ "password": "new password", "currentPassword": "wrong password" })),
        "currentPassword",
    )
    .await;
    bad_input(
        &app,
        &token,
        UPDATE_USER,
        change(json!({ "password": "short", "currentPassword": PASSWORD })),
        "password",
    )
    .await;
    app.ok_as(
        &token,
        UPDATE_USER,
        change(json!({ "password": "new password", "currentPassword": PASSWORD })),
    )
    .await;
    app.login(&email("user"), "new password").await;
    let (_, body) = app
        .post_graphql(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": email("user"), "p": PASSWORD }),
        )
        .await;
    assert_eq!(
        error_code(&body["errors"][0]),
        "UNAUTHENTICATED",
        "the old password no longer works"
    );
    // An admin, too, needs their current password for their own.
    let admin = world.login(&app, "admin").await;
    bad_input(
        &app,
        &admin,
        UPDATE_USER,
        json!({ "id": world.users["admin"], "input": { "password": "new password" } }),
        "currentPassword",
    )
    .await;
}

async fn a_tenant_admin_cannot_change_the_credentials_of_someone_in_another_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let shared = world.users["other_admin"];
    add_membership(&app.db, shared, world.alpha, MembershipRole::Member, false).await;
    let admin = world.login(&app, "admin").await;
    for input in [
        json!({ "password": "taken over!" }),
        json!({ "email": "mine@example.org" }),
    ] {
        let error = refused(
            &app,
            Some(&admin),
            UPDATE_USER,
            json!({ "id": shared, "input": input }),
            "FORBIDDEN",
        )
        .await;
        assert!(error["message"].as_str().unwrap().contains("or a super admin"));
    }
    // The name is the account's too, shared by its tenants.
    refused(
        &app,
        Some(&admin),
        UPDATE_USER,
        json!({ "id": shared, "input": { "name": "Shared" } }),
        "FORBIDDEN",
    )
    .await;
    let root = world.login(&app, "super_admin").await;
    app.ok_as(
        &root,
        UPDATE_USER,
        json!({ "id": shared, "input": { "password": "reset by root" } }),
    )
    .await;
    app.login(&email("other_admin"), "reset by root").await;
}

async fn a_failed_update_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let beta_school = new_school(&app, world.beta, "Beta High").await;
    let target = world.users["user"];
    let before = account(&app, target).await.unwrap();
    let admin = world.login(&app, "admin").await;
    let error = refused(
        &app,
        Some(&admin),
        UPDATE_USER,
        json!({ "id": target, "input": { "name": "Renamed", "email": email("guardian") } }),
        "CONFLICT",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("e-mail"));
    bad_input(
        &app,
        &admin,
        UPDATE_USER,
        json!({ "id": target, "input": { "name": "Renamed", "schoolId": beta_school } }),
        "schoolId",
    )
    .await;
    bad_input(
        &app,
        &admin,
        UPDATE_USER,
        json!({ "id": target, "input": { "name": "Renamed", "email": "not an address" } }),
        "email",
    )
    .await;
    assert_eq!(account(&app, target).await.unwrap(), before);
}

async fn only_a_super_admin_deletes_a_user_and_their_rows_go_with_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let target = world.users["user"];
    let victim_token = world.login(&app, "user").await;
    for handle in ["admin", "guardian", "user"] {
        let token = world.login(&app, handle).await;
        refused(
            &app,
            Some(&token),
            DELETE_USER,
            json!({ "id": target }),
            "FORBIDDEN",
        )
        .await;
    }
    refused(
        &app,
        None,
        DELETE_USER,
        json!({ "id": target }),
        "UNAUTHENTICATED",
    )
    .await;
    let root = world.login(&app, "super_admin").await;
    refused(
        &app,
        Some(&root),
        DELETE_USER,
        json!({ "id": world.users["super_admin"] }),
        "CONFLICT",
    )
    .await;
    refused(
        &app,
        Some(&root),
        DELETE_USER,
        json!({ "id": Uuid::now_v7() }),
        "NOT_FOUND",
    )
    .await;
    let data = app.ok_as(&root, DELETE_USER, json!({ "id": target })).await;
    assert_eq!(data["deleteUser"], json!(target));
    assert!(account(&app, target).await.is_none());
    assert!(membership_of(&app, target, world.alpha).await.is_none());
    assert!(
        session::Entity::find_by_id(world.sessions["user"])
            .one(&app.db)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        links_in(&app, world.alpha)
            .await
            .iter()
            .all(|link| link.user_id != target)
    );
    // The login sessions stay, ended, as the record of what the account did.
    let open = session_log::Entity::find()
        .filter(session_log::Column::UserId.eq(target))
        .filter(session_log::Column::LogoutAt.is_null())
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(open, 0);
    refused(&app, Some(&victim_token), CONTEXT, json!({}), "UNAUTHENTICATED").await;
}

// ------------------------------------------------------------- users queries

async fn users_lists_exactly_the_people_each_identity_may_see(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let alpha_members = ["admin", "guardian", "other_guardian", "other_user", "user"];
    for (handle, expected) in [
        ("admin", &alpha_members[..]),
        ("other_admin", &["beta_user", "other_admin"][..]),
        ("guardian", &["guardian", "user"][..]),
        ("other_guardian", &["other_guardian", "other_user"][..]),
        ("user", &["user"][..]),
        ("other_user", &["other_user"][..]),
        ("beta_user", &["beta_user"][..]),
    ] {
        let token = world.login(&app, handle).await;
        let data = app.ok_as(&token, USERS, json!({})).await;
        assert_eq!(emails(&data["users"]), handles_to_emails(expected), "as {handle}");
    }
    refused(&app, None, USERS, json!({}), "UNAUTHENTICATED").await;
    let root = world.login(&app, "super_admin").await;
    refused(&app, Some(&root), USERS, json!({}), "FORBIDDEN").await;
    app.ok_as(&root, SWITCH, json!({ "t": world.alpha })).await;
    let data = app.ok_as(&root, USERS, json!({})).await;
    assert_eq!(emails(&data["users"]), handles_to_emails(&alpha_members));

    let admin = world.login(&app, "admin").await;
    let guardians = app.ok_as(&admin, USERS, json!({ "role": "GUARDIAN" })).await;
    assert_eq!(
        emails(&guardians["users"]),
        handles_to_emails(&["guardian", "other_guardian"])
    );
    let first_two = app.ok_as(&admin, USERS, json!({ "first": 2 })).await;
    assert_eq!(
        emails(&first_two["users"]),
        handles_to_emails(&alpha_members[..2])
    );
    let next = app
        .ok_as(
            &admin,
            USERS,
            json!({ "first": 2, "after": email(alpha_members[1]) }),
        )
        .await;
    assert_eq!(emails(&next["users"]), handles_to_emails(&alpha_members[2..4]));
    let last = app
        .ok_as(
            &admin,
            USERS,
            json!({ "first": 2, "after": email(alpha_members[3]) }),
        )
        .await;
    assert_eq!(emails(&last["users"]), handles_to_emails(&alpha_members[4..]));
    for first in [0, 101] {
        bad_input(&app, &admin, USERS, json!({ "first": first }), "first").await;
    }
    let guardian = world.login(&app, "guardian").await;
    let members = app.ok_as(&guardian, USERS, json!({ "role": "MEMBER" })).await;
    assert_eq!(emails(&members["users"]), handles_to_emails(&["user"]));

    // One user by id: the same scope.
    let found = app
        .ok_as(&guardian, USER, json!({ "id": world.users["user"] }))
        .await;
    assert_eq!(found["user"]["email"], email("user"));
    for hidden in ["other_user", "admin", "beta_user"] {
        refused(
            &app,
            Some(&guardian),
            USER,
            json!({ "id": world.users[hidden] }),
            "NOT_FOUND",
        )
        .await;
    }
}

async fn nested_user_fields_show_school_memberships_and_guardians_within_scope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let school = new_school(&app, world.alpha, "Alpha High").await;
    attend(&app.db, world.users["user"], school).await;
    add_membership(
        &app.db,
        world.users["user"],
        world.beta,
        MembershipRole::Member,
        false,
    )
    .await;
    const NESTED: &str = r#"
    query($id: UUID!) {
      user(id: $id) {
        email isSuperAdmin role school { name }
        memberships { tenantId role isDefault }
        guardians { email }
        supervisedUsers { email }
      }
    }"#;
    let admin = world.login(&app, "admin").await;
    let data = app
        .ok_as(&admin, NESTED, json!({ "id": world.users["user"] }))
        .await;
    assert_eq!(
        data["user"],
        json!({
            "email": email("user"), "isSuperAdmin": false, "role": "MEMBER",
            "school": { "name": "Alpha High" },
            "memberships": [{ "tenantId": world.alpha, "role": "MEMBER", "isDefault": true }],
            "guardians": [{ "email": email("guardian") }],
            "supervisedUsers": [],
        }),
        "an admin of alpha does not see the membership in beta"
    );
    let root = super_admin_in(&app, &world, world.alpha).await;
    let data = app
        .ok_as(&root, NESTED, json!({ "id": world.users["user"] }))
        .await;
    assert_eq!(
        data["user"]["memberships"],
        json!([
            { "tenantId": world.alpha, "role": "MEMBER", "isDefault": true },
            { "tenantId": world.beta, "role": "MEMBER", "isDefault": false },
        ])
    );
    let guardian = world.login(&app, "guardian").await;
    let data = app
        .ok_as(&guardian, NESTED, json!({ "id": world.users["guardian"] }))
        .await;
    assert_eq!(
        data["user"]["supervisedUsers"],
        json!([{ "email": email("user") }])
    );
    assert_eq!(data["user"]["role"], "GUARDIAN");
    let member = world.login(&app, "user").await;
    let data = app
        .ok_as(&member, NESTED, json!({ "id": world.users["user"] }))
        .await;
    assert_eq!(data["user"]["guardians"], json!([{ "email": email("guardian") }]));

    // A page of users with every nested list.
    let page = app
        .ok_as(
            &admin,
            "{ users { email school { name } memberships { role } guardians { email } supervisedUsers { email } } }",
            json!({}),
        )
        .await;
    let other_guardian = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|person| person["email"] == email("other_guardian"))
        .unwrap();
    assert_eq!(
        other_guardian["supervisedUsers"],
        json!([{ "email": email("other_user") }])
    );
    assert_eq!(other_guardian["guardians"], json!([]));
}

async fn a_page_of_users_costs_the_same_statements_whatever_its_size(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let school = new_school(&app, world.alpha, "Alpha High").await;
    for n in 0..40 {
        let id = new_user(&app.db, &format!("pupil{n:02}@example.test"), false).await;
        add_membership(&app.db, id, world.alpha, MembershipRole::Member, true).await;
        attend(&app.db, id, school).await;
        guardian_link::ActiveModel {
            tenant_id: Set(world.alpha),
            guardian_id: Set(world.users["guardian"]),
            user_id: Set(id),
            ..Default::default()
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    let admin = world.login(&app, "admin").await;
    const PAGE: &str = r#"
    query($first: Int!) {
      users(first: $first, after: "pupil") {
        email isSuperAdmin role school { name }
        memberships { role tenant { name schools { name } } }
        guardians { email school { name } }
        supervisedUsers { email }
      }
    }"#;
    // The first request also loads the admin's identity into memory.
    app.ok_as(&admin, PAGE, json!({ "first": 1 })).await;
    let mut costs = Vec::new();
    for size in [1, 10, 40] {
        let before = app.statements.load(Ordering::SeqCst);
        let data = app.ok_as(&admin, PAGE, json!({ "first": size })).await;
        costs.push(app.statements.load(Ordering::SeqCst) - before);
        let page = data["users"].as_array().unwrap();
        assert_eq!(page.len(), size);
        for pupil in page {
            assert!(pupil["email"].as_str().unwrap().starts_with("pupil"));
            assert_eq!(pupil["school"]["name"], "Alpha High");
            assert_eq!(pupil["role"], "MEMBER");
            assert_eq!(
                pupil["guardians"],
                json!([{ "email": email("guardian"), "school": null }])
            );
        }
    }
    assert_eq!(
        costs[0], costs[1],
        "statements for pages of 1, 10 and 40: {costs:?}"
    );
    assert_eq!(
        costs[1], costs[2],
        "statements for pages of 1, 10 and 40: {costs:?}"
    );
    assert!(costs[0] <= 15, "a small constant number of statements: {costs:?}");
}

// --------------------------------------------------------------- memberships

async fn a_super_admin_adds_an_existing_account_which_gets_a_default_tenant_only_if_it_has_none(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    // Tenant admins invite instead (see `accounts`); a super admin may add.
    let other_admin = world.login(&app, "super_admin").await;
    app.ok_as(&other_admin, SWITCH, json!({ "t": world.beta })).await;
    let added = app
        .ok_as(
            &other_admin,
            ADD_MEMBERSHIP,
            json!({ "input": { "email": "  USER@example.test ", "role": "GUARDIAN" } }),
        )
        .await;
    assert_eq!(
        added["addMembership"],
        json!({ "userId": world.users["user"], "tenantId": world.beta, "role": "GUARDIAN", "isDefault": false })
    );
    let error = refused(
        &app,
        Some(&other_admin),
        ADD_MEMBERSHIP,
        json!({ "input": { "userId": world.users["user"] } }),
        "CONFLICT",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("already a member"));

    // An account without any membership cannot log in until it gets one.
    let loner = new_user(&app.db, "loner@example.test", false).await;
    let (_, body) = app
        .post_graphql(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": "loner@example.test", "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&body["errors"][0]), "FORBIDDEN");
    let admin = world.login(&app, "super_admin").await;
    app.ok_as(&admin, SWITCH, json!({ "t": world.alpha })).await;
    let added = app
        .ok_as(&admin, ADD_MEMBERSHIP, json!({ "input": { "userId": loner } }))
        .await;
    assert_eq!(added["addMembership"]["isDefault"], true);
    assert_eq!(added["addMembership"]["role"], "MEMBER");
    let token = app.login("loner@example.test", PASSWORD).await;
    let me = app.ok_as(&token, CONTEXT, json!({})).await;
    assert_eq!(me["me"]["activeTenant"]["id"], json!(world.alpha));

    refused(
        &app,
        Some(&admin),
        ADD_MEMBERSHIP,
        json!({ "input": { "email": "nobody@example.test" } }),
        "NOT_FOUND",
    )
    .await;
    refused(
        &app,
        Some(&admin),
        ADD_MEMBERSHIP,
        json!({ "input": { "userId": Uuid::now_v7() } }),
        "NOT_FOUND",
    )
    .await;
    bad_input(
        &app,
        &admin,
        ADD_MEMBERSHIP,
        json!({ "input": { "email": "not an address" } }),
        "email",
    )
    .await;
    bad_input(&app, &admin, ADD_MEMBERSHIP, json!({ "input": {} }), "userId").await;
    bad_input(
        &app,
        &admin,
        ADD_MEMBERSHIP,
        json!({ "input": { "userId": loner, "email": "loner@example.test" } }),
        "userId",
    )
    .await;
    let guardian = world.login(&app, "guardian").await;
    refused(
        &app,
        Some(&guardian),
        ADD_MEMBERSHIP,
        json!({ "input": { "userId": world.users["beta_user"] } }),
        "FORBIDDEN",
    )
    .await;
    refused(
        &app,
        None,
        ADD_MEMBERSHIP,
        json!({ "input": { "userId": loner } }),
        "UNAUTHENTICATED",
    )
    .await;
    assert!(
        membership_of(&app, world.users["beta_user"], world.alpha)
            .await
            .is_none()
    );
}

async fn roles_change_but_the_last_admin_cannot_demote_themselves(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let me = world.users["admin"];
    let changed = app
        .ok_as(
            &admin,
            SET_ROLE,
            json!({ "u": world.users["user"], "r": "GUARDIAN" }),
        )
        .await;
    assert_eq!(
        changed["updateMembershipRole"],
        json!({ "userId": world.users["user"], "role": "GUARDIAN" })
    );
    let error = refused(
        &app,
        Some(&admin),
        SET_ROLE,
        json!({ "u": me, "r": "MEMBER" }),
        "CONFLICT",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("last administrator"));
    assert_eq!(
        membership_of(&app, me, world.alpha).await.unwrap().role,
        MembershipRole::Admin,
        "nothing changed"
    );
    refused(
        &app,
        Some(&admin),
        SET_ROLE,
        json!({ "u": world.users["beta_user"], "r": "ADMIN" }),
        "NOT_FOUND",
    )
    .await;
    let other_admin = world.login(&app, "other_admin").await;
    refused(
        &app,
        Some(&other_admin),
        SET_ROLE,
        json!({ "u": me, "r": "MEMBER" }),
        "NOT_FOUND",
    )
    .await;
    let guardian = world.login(&app, "guardian").await;
    refused(
        &app,
        Some(&guardian),
        SET_ROLE,
        json!({ "u": world.users["guardian"], "r": "ADMIN" }),
        "FORBIDDEN",
    )
    .await;

    // With a second admin, the first may step down.
    app.ok_as(
        &admin,
        SET_ROLE,
        json!({ "u": world.users["other_guardian"], "r": "ADMIN" }),
    )
    .await;
    app.ok_as(&admin, SET_ROLE, json!({ "u": me, "r": "GUARDIAN" }))
        .await;
    assert_eq!(
        membership_of(&app, me, world.alpha).await.unwrap().role,
        MembershipRole::Guardian
    );

    // Demoting a guardian to member ends the links in which they guard.
    let new_admin = world.login(&app, "other_guardian").await;
    assert_eq!(links_in(&app, world.alpha).await.len(), 2);
    app.ok_as(
        &new_admin,
        SET_ROLE,
        json!({ "u": world.users["guardian"], "r": "MEMBER" }),
    )
    .await;
    let remaining = links_in(&app, world.alpha).await;
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].guardian_id, world.users["other_guardian"]);
}

async fn removing_a_membership_takes_the_users_guardian_links_in_that_tenant_with_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    add_membership(
        &app.db,
        world.users["guardian"],
        world.beta,
        MembershipRole::Guardian,
        false,
    )
    .await;
    let beta_link = guardian_link::ActiveModel {
        tenant_id: Set(world.beta),
        guardian_id: Set(world.users["guardian"]),
        user_id: Set(world.users["beta_user"]),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    let admin = world.login(&app, "admin").await;
    let membership = membership_of(&app, world.users["guardian"], world.alpha)
        .await
        .unwrap();
    let data = app
        .ok_as(&admin, REMOVE_MEMBERSHIP, json!({ "u": world.users["guardian"] }))
        .await;
    assert_eq!(data["removeMembership"], json!(membership.id));
    assert!(
        membership_of(&app, world.users["guardian"], world.alpha)
            .await
            .is_none()
    );
    let alpha_links = links_in(&app, world.alpha).await;
    assert_eq!(alpha_links.len(), 1);
    assert_eq!(alpha_links[0].guardian_id, world.users["other_guardian"]);
    assert_eq!(
        links_in(&app, world.beta).await,
        [beta_link],
        "other tenants keep theirs"
    );
    assert!(
        account(&app, world.users["guardian"]).await.is_some(),
        "the account stays"
    );
    refused(
        &app,
        Some(&admin),
        REMOVE_MEMBERSHIP,
        json!({ "u": world.users["guardian"] }),
        "NOT_FOUND",
    )
    .await;

    let other_admin = world.login(&app, "other_admin").await;
    refused(
        &app,
        Some(&other_admin),
        REMOVE_MEMBERSHIP,
        json!({ "u": world.users["user"] }),
        "NOT_FOUND",
    )
    .await;
    let member = world.login(&app, "user").await;
    refused(
        &app,
        Some(&member),
        REMOVE_MEMBERSHIP,
        json!({ "u": world.users["other_user"] }),
        "FORBIDDEN",
    )
    .await;
    refused(
        &app,
        None,
        REMOVE_MEMBERSHIP,
        json!({ "u": world.users["user"] }),
        "UNAUTHENTICATED",
    )
    .await;
}

async fn an_admin_cannot_remove_their_own_admin_membership_nor_the_last_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let error = refused(
        &app,
        Some(&admin),
        REMOVE_MEMBERSHIP,
        json!({ "u": world.users["admin"] }),
        "CONFLICT",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("your own"));
    let root = super_admin_in(&app, &world, world.alpha).await;
    let error = refused(
        &app,
        Some(&root),
        REMOVE_MEMBERSHIP,
        json!({ "u": world.users["admin"] }),
        "CONFLICT",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("last administrator"));
    assert!(
        membership_of(&app, world.users["admin"], world.alpha)
            .await
            .is_some()
    );
    // With another admin, the super admin may remove the first.
    app.ok_as(
        &root,
        SET_ROLE,
        json!({ "u": world.users["guardian"], "r": "ADMIN" }),
    )
    .await;
    app.ok_as(&root, REMOVE_MEMBERSHIP, json!({ "u": world.users["admin"] }))
        .await;
    assert!(
        membership_of(&app, world.users["admin"], world.alpha)
            .await
            .is_none()
    );
}

async fn removing_a_membership_resets_the_users_login_session_to_their_default_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let user_id = world.users["user"];
    let other_admin = world.login(&app, "other_admin").await;
    add_membership(&app.db, user_id, world.beta, MembershipRole::Member, false).await;
    let token = world.login(&app, "user").await;
    app.ok_as(&token, SWITCH, json!({ "t": world.beta })).await;
    let me = app.ok_as(&token, CONTEXT, json!({})).await;
    assert_eq!(me["me"]["activeTenant"]["id"], json!(world.beta));

    app.ok_as(&other_admin, REMOVE_MEMBERSHIP, json!({ "u": user_id }))
        .await;
    let me = app
        .ok_as(
            &token,
            "{ me { role activeTenant { id } loginSession { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["me"]["activeTenant"]["id"],
        json!(world.alpha),
        "back in the default tenant"
    );
    assert_eq!(me["me"]["role"], "MEMBER");
    let last = changes_of(&app, user_id).await.pop().unwrap();
    assert_eq!(last.event_type, ContextChangeEventType::ResetToDefaultTenant);
    assert_eq!(last.tenant_id, world.alpha);
    let metadata = last.metadata.unwrap();
    assert_eq!(metadata["fromTenantId"], json!(world.beta));
    assert_eq!(metadata["toTenantId"], json!(world.alpha));
    assert_eq!(metadata["reason"], "access_lost");
    assert_eq!(metadata["loginSessionId"], me["me"]["loginSession"]["id"]);
    let log = session_log::Entity::find_by_id(
        serde_json::from_value::<Uuid>(me["me"]["loginSession"]["id"].clone()).unwrap(),
    )
    .one(&app.db)
    .await
    .unwrap()
    .unwrap();
    assert_eq!(log.tenant_id, Some(world.alpha));
    app.ok_as(&token, CONTEXT, json!({})).await;
    let resets = changes_of(&app, user_id)
        .await
        .into_iter()
        .filter(|change| change.event_type == ContextChangeEventType::ResetToDefaultTenant)
        .count();
    assert_eq!(resets, 1, "reset once, not on every request");
    let sessions = app
        .ok_as(&token, "{ sessions { edges { node { name } } } }", json!({}))
        .await;
    assert_eq!(
        sessions["sessions"]["edges"],
        json!([{ "node": { "name": "Study mode" } }])
    );
}

async fn removing_the_default_membership_makes_the_oldest_other_membership_the_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let user_id = world.users["user"];
    add_membership(&app.db, user_id, world.beta, MembershipRole::Member, false).await;
    let token = world.login(&app, "user").await;
    let admin = world.login(&app, "admin").await;
    app.ok_as(&admin, REMOVE_MEMBERSHIP, json!({ "u": user_id }))
        .await;
    let beta = membership_of(&app, user_id, world.beta).await.unwrap();
    assert!(beta.is_default);
    let me = app.ok_as(&token, CONTEXT, json!({})).await;
    assert_eq!(me["me"]["activeTenant"]["id"], json!(world.beta));
    let kinds: Vec<(ContextChangeEventType, Uuid)> = changes_of(&app, user_id)
        .await
        .into_iter()
        .map(|change| (change.event_type, change.tenant_id))
        .collect();
    assert_eq!(
        kinds,
        [
            (ContextChangeEventType::ApplyDefaultTenant, world.alpha),
            (ContextChangeEventType::SetDefaultTenant, world.beta),
            (ContextChangeEventType::ResetToDefaultTenant, world.beta),
        ]
    );
    // A user left without any membership is refused until added again.
    let other_admin = world.login(&app, "other_admin").await;
    app.ok_as(&other_admin, REMOVE_MEMBERSHIP, json!({ "u": user_id }))
        .await;
    refused(&app, Some(&token), CONTEXT, json!({}), "FORBIDDEN").await;
}

// ------------------------------------------------------------ guardian links

async fn an_admin_links_a_guardian_to_a_member_and_unlinks_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let created = app
        .ok_as(
            &admin,
            LINK,
            json!({ "g": world.users["other_guardian"], "u": world.users["user"] }),
        )
        .await;
    let link = &created["createGuardianLink"];
    assert_eq!(link["tenantId"], json!(world.alpha));
    assert_eq!(link["guardian"]["email"], email("other_guardian"));
    assert_eq!(link["user"]["email"], email("user"));
    // An admin may guard, too.
    app.ok_as(
        &admin,
        LINK,
        json!({ "g": world.users["admin"], "u": world.users["other_user"] }),
    )
    .await;
    let guardian = world.login(&app, "other_guardian").await;
    let seen = app.ok_as(&guardian, USERS, json!({})).await;
    assert_eq!(
        emails(&seen["users"]),
        handles_to_emails(&["other_guardian", "other_user", "user"])
    );
    let sessions = app
        .ok_as(&guardian, "{ sessions { edges { node { name } } } }", json!({}))
        .await;
    assert_eq!(sessions["sessions"]["edges"].as_array().unwrap().len(), 2);

    let data = app.ok_as(&admin, UNLINK, json!({ "id": link["id"] })).await;
    assert_eq!(data["deleteGuardianLink"], link["id"]);
    let seen = app.ok_as(&guardian, USERS, json!({})).await;
    assert_eq!(
        emails(&seen["users"]),
        handles_to_emails(&["other_guardian", "other_user"])
    );
    refused(
        &app,
        Some(&admin),
        UNLINK,
        json!({ "id": link["id"] }),
        "NOT_FOUND",
    )
    .await;
}

async fn guardian_links_need_memberships_distinct_people_and_no_duplicate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let before = links_in(&app, world.alpha).await;
    let link = |g: &str, u: &str| json!({ "g": world.users[g], "u": world.users[u] });
    for (guardian, supervised, field) in [
        ("beta_user", "user", "guardianId"),
        ("other_admin", "user", "guardianId"),
        ("guardian", "beta_user", "userId"),
        ("guardian", "super_admin", "userId"),
    ] {
        let error = bad_input(&app, &admin, LINK, link(guardian, supervised), field).await;
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("a membership is needed before a guardian link"),
            "{error}"
        );
    }
    bad_input(
        &app,
        &admin,
        LINK,
        json!({ "g": Uuid::now_v7(), "u": world.users["user"] }),
        "guardianId",
    )
    .await;
    bad_input(&app, &admin, LINK, link("guardian", "guardian"), "userId").await;
    let error = bad_input(&app, &admin, LINK, link("other_user", "user"), "guardianId").await;
    assert!(error["message"].as_str().unwrap().contains("GUARDIAN or ADMIN"));
    let error = refused(&app, Some(&admin), LINK, link("guardian", "user"), "CONFLICT").await;
    assert!(error["message"].as_str().unwrap().contains("already supervises"));
    assert_eq!(links_in(&app, world.alpha).await, before, "nothing was written");
}

async fn guardian_link_administration_is_for_the_tenants_admins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let existing = links_in(&app, world.alpha).await[0].id;
    let new_link = json!({ "g": world.users["guardian"], "u": world.users["other_user"] });
    for handle in ["guardian", "user"] {
        let token = world.login(&app, handle).await;
        refused(&app, Some(&token), LINK, new_link.clone(), "FORBIDDEN").await;
        refused(&app, Some(&token), UNLINK, json!({ "id": existing }), "FORBIDDEN").await;
    }
    refused(&app, None, LINK, new_link.clone(), "UNAUTHENTICATED").await;
    let other_admin = world.login(&app, "other_admin").await;
    refused(
        &app,
        Some(&other_admin),
        UNLINK,
        json!({ "id": existing }),
        "NOT_FOUND",
    )
    .await;
    bad_input(&app, &other_admin, LINK, new_link.clone(), "guardianId").await;
    assert_eq!(links_in(&app, world.alpha).await.len(), 2);
    let root = super_admin_in(&app, &world, world.alpha).await;
    app.ok_as(&root, LINK, new_link).await;
    app.ok_as(&root, UNLINK, json!({ "id": existing })).await;
    assert_eq!(links_in(&app, world.alpha).await.len(), 2);
}

async fn guardian_links_lists_what_each_identity_may_see(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let pair = |guardian: &str, user: &str| json!({ "guardian": { "email": email(guardian) }, "user": { "email": email(user) } });
    for (handle, expected) in [
        (
            "admin",
            json!([pair("guardian", "user"), pair("other_guardian", "other_user")]),
        ),
        ("guardian", json!([pair("guardian", "user")])),
        ("user", json!([pair("guardian", "user")])),
        ("other_user", json!([pair("other_guardian", "other_user")])),
        ("other_admin", json!([])),
        ("beta_user", json!([])),
    ] {
        let token = world.login(&app, handle).await;
        let data = app.ok_as(&token, LINKS, json!({})).await;
        assert_eq!(data["guardianLinks"], expected, "as {handle}");
    }
    let admin = world.login(&app, "admin").await;
    let filtered = app
        .ok_as(&admin, LINKS, json!({ "g": world.users["other_guardian"] }))
        .await;
    assert_eq!(
        filtered["guardianLinks"],
        json!([pair("other_guardian", "other_user")])
    );
    let filtered = app
        .ok_as(&admin, LINKS, json!({ "u": world.users["user"] }))
        .await;
    assert_eq!(filtered["guardianLinks"], json!([pair("guardian", "user")]));
    refused(&app, None, LINKS, json!({}), "UNAUTHENTICATED").await;
}

backend_tests!(
    a_tenant_admin_or_a_super_admin_renames_a_tenant_and_nobody_else_does,
    only_a_super_admin_deletes_a_tenant_and_everything_in_it_goes_with_it,
    a_tenant_admin_creates_renames_and_deletes_schools_of_the_active_tenant,
    school_names_are_validated_and_unique_per_tenant,
    school_administration_is_refused_outside_a_tenant_admins_reach,
    a_tenant_admin_creates_a_user_whose_membership_becomes_their_default_tenant,
    creating_a_user_validates_every_field_and_writes_nothing_on_failure,
    only_a_super_admin_creates_a_super_admin,
    creating_users_is_for_the_admins_of_the_active_tenant,
    an_admin_updates_a_member_and_users_out_of_scope_read_as_not_found,
    users_change_their_own_name_e_mail_and_password_but_not_their_school,
    a_tenant_admin_cannot_change_the_credentials_of_someone_in_another_tenant,
    a_failed_update_changes_nothing,
    only_a_super_admin_deletes_a_user_and_their_rows_go_with_them,
    users_lists_exactly_the_people_each_identity_may_see,
    nested_user_fields_show_school_memberships_and_guardians_within_scope,
    a_page_of_users_costs_the_same_statements_whatever_its_size,
    a_super_admin_adds_an_existing_account_which_gets_a_default_tenant_only_if_it_has_none,
    roles_change_but_the_last_admin_cannot_demote_themselves,
    removing_a_membership_takes_the_users_guardian_links_in_that_tenant_with_it,
    an_admin_cannot_remove_their_own_admin_membership_nor_the_last_admin,
    removing_a_membership_resets_the_users_login_session_to_their_default_tenant,
    removing_the_default_membership_makes_the_oldest_other_membership_the_default,
    an_admin_links_a_guardian_to_a_member_and_unlinks_them,
    guardian_links_need_memberships_distinct_people_and_no_duplicate,
    guardian_link_administration_is_for_the_tenants_admins,
    guardian_links_lists_what_each_identity_may_see,
);
