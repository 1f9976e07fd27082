//! The tenant context of document 002: applied at login, switched,
//! defaulted, reset on loss of access, and audited.

use entity::session_context_change::{self, ContextChangeEventType};
use entity::tenant_membership::MembershipRole;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::backend_tests;
use crate::fixtures::{World, add_membership};
use crate::helpers::{Backend, TestApp, error_code};

const CONTEXT: &str = "{ me { role activeTenant { id } loginSession { id } } }";
const SWITCH: &str = "mutation($t: UUID!) { switchTenant(tenantId: $t) { role activeTenant { id } } }";

async fn changes_of(app: &TestApp, user_id: Uuid) -> Vec<session_context_change::Model> {
    session_context_change::Entity::find()
        .filter(session_context_change::Column::UserId.eq(user_id))
        .order_by_asc(session_context_change::Column::CreatedAt)
        .order_by_asc(session_context_change::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
}

/// Removes the membership as that tenant's administrator does, so that the
/// change is announced like any other.
async fn remove_membership(app: &TestApp, world: &World, user_id: Uuid, tenant_id: Uuid) {
    let admin = if tenant_id == world.alpha {
        "admin"
    } else {
        "other_admin"
    };
    let admin = world.login(app, admin).await;
    app.ok_as(
        &admin,
        "mutation($u: UUID!) { removeMembership(userId: $u) }",
        json!({ "u": user_id }),
    )
    .await;
}

async fn login_applies_the_default_tenant_and_records_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "guardian").await;
    let me = app.ok_as(&token, CONTEXT, json!({})).await;
    assert_eq!(me["me"]["activeTenant"]["id"], json!(world.alpha));
    assert_eq!(me["me"]["role"], "GUARDIAN");
    let changes = changes_of(&app, world.users["guardian"]).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].event_type, ContextChangeEventType::ApplyDefaultTenant);
    assert_eq!(changes[0].tenant_id, world.alpha);
    let metadata = changes[0].metadata.clone().unwrap();
    assert_eq!(metadata["reason"], "login");
    assert_eq!(metadata["loginSessionId"], me["me"]["loginSession"]["id"]);
}

async fn switching_to_a_member_tenant_changes_what_is_visible_and_is_recorded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    add_membership(
        &app.db,
        world.users["admin"],
        world.beta,
        MembershipRole::Member,
        false,
    )
    .await;
    let token = world.login(&app, "admin").await;
    let before = app
        .ok_as(&token, "{ sessions { edges { node { name } } } }", json!({}))
        .await;
    assert_eq!(
        before["sessions"]["edges"].as_array().unwrap().len(),
        2,
        "an admin of alpha sees alpha"
    );
    let switched = app.ok_as(&token, SWITCH, json!({ "t": world.beta })).await;
    assert_eq!(
        switched["switchTenant"],
        json!({ "role": "MEMBER", "activeTenant": { "id": world.beta } })
    );
    let after = app
        .ok_as(&token, "{ sessions { edges { node { name } } } }", json!({}))
        .await;
    assert_eq!(
        after["sessions"]["edges"],
        json!([]),
        "a plain member of beta sees only their own sessions there"
    );
    let me = app.ok_as(&token, CONTEXT, json!({})).await;
    assert_eq!(
        me["me"]["activeTenant"]["id"],
        json!(world.beta),
        "the context persists between requests"
    );
    let changes = changes_of(&app, world.users["admin"]).await;
    let last = changes.last().unwrap();
    assert_eq!(last.event_type, ContextChangeEventType::SwitchTenant);
    assert_eq!(last.tenant_id, world.beta);
    let metadata = last.metadata.clone().unwrap();
    assert_eq!(metadata["fromTenantId"], json!(world.alpha));
    assert_eq!(metadata["toTenantId"], json!(world.beta));
    assert_eq!(metadata["loginSessionId"], me["me"]["loginSession"]["id"]);
    let trail = app
        .ok_as(&token, "{ tenantContextChanges { eventType } }", json!({}))
        .await;
    assert_eq!(trail["tenantContextChanges"][0]["eventType"], "SWITCH_TENANT");
}

async fn switching_to_a_tenant_without_membership_is_refused_and_not_recorded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "admin").await;
    let recorded = changes_of(&app, world.users["admin"]).await.len();
    for tenant in [world.beta, Uuid::now_v7()] {
        let error = app.error_as(Some(&token), SWITCH, json!({ "t": tenant })).await;
        assert_eq!(error_code(&error), "NOT_FOUND");
    }
    assert_eq!(changes_of(&app, world.users["admin"]).await.len(), recorded);
    let me = app.ok_as(&token, CONTEXT, json!({})).await;
    assert_eq!(me["me"]["activeTenant"]["id"], json!(world.alpha));
}

async fn a_super_admin_may_switch_to_any_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "super_admin").await;
    let switched = app.ok_as(&token, SWITCH, json!({ "t": world.beta })).await;
    assert_eq!(switched["switchTenant"]["activeTenant"]["id"], json!(world.beta));
    assert_eq!(switched["switchTenant"]["role"], Value::Null);
    let sessions = app
        .ok_as(&token, "{ sessions { edges { node { name } } } }", json!({}))
        .await;
    assert_eq!(
        sessions["sessions"]["edges"],
        json!([{ "node": { "name": "Beta session" } }])
    );
}

async fn setting_the_default_tenant_moves_the_default_and_is_recorded(backend: Backend) {
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
    let token = world.login(&app, "user").await;
    let set = app
        .ok_as(
            &token,
            "mutation($t: UUID!) { setDefaultTenant(tenantId: $t) { tenantId isDefault } }",
            json!({ "t": world.beta }),
        )
        .await;
    assert_eq!(
        set["setDefaultTenant"],
        json!({ "tenantId": world.beta, "isDefault": true })
    );
    let memberships = app
        .ok_as(&token, "{ me { memberships { tenantId isDefault } } }", json!({}))
        .await;
    assert_eq!(
        memberships["me"]["memberships"],
        json!([{ "tenantId": world.beta, "isDefault": true }, { "tenantId": world.alpha, "isDefault": false }])
    );
    let change = changes_of(&app, world.users["user"]).await.pop().unwrap();
    assert_eq!(change.event_type, ContextChangeEventType::SetDefaultTenant);
    assert_eq!(change.metadata.unwrap()["fromTenantId"], json!(world.alpha));
    let fresh = world.login(&app, "user").await;
    let me = app.ok_as(&fresh, CONTEXT, json!({})).await;
    assert_eq!(
        me["me"]["activeTenant"]["id"],
        json!(world.beta),
        "the next login lands in the new default"
    );
    let error = app
        .error_as(
            Some(&token),
            "mutation($t: UUID!) { setDefaultTenant(tenantId: $t) { id } }",
            json!({ "t": Uuid::now_v7() }),
        )
        .await;
    assert_eq!(error_code(&error), "NOT_FOUND");
}

async fn losing_access_resets_the_context_to_the_default_tenant_and_is_recorded(backend: Backend) {
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
    let token = world.login(&app, "user").await;
    app.ok_as(&token, SWITCH, json!({ "t": world.beta })).await;
    remove_membership(&app, &world, world.users["user"], world.beta).await;
    // Two requests at once: the context is reset, and recorded, once.
    let (first, second) = tokio::join!(
        app.ok_as(&token, CONTEXT, json!({})),
        app.ok_as(&token, CONTEXT, json!({}))
    );
    for me in [first, second] {
        assert_eq!(me["me"]["activeTenant"]["id"], json!(world.alpha));
    }
    let resets: Vec<_> = changes_of(&app, world.users["user"])
        .await
        .into_iter()
        .filter(|change| change.event_type == ContextChangeEventType::ResetToDefaultTenant)
        .collect();
    assert_eq!(resets.len(), 1);
    let metadata = resets[0].metadata.clone().unwrap();
    assert_eq!(metadata["fromTenantId"], json!(world.beta));
    assert_eq!(metadata["toTenantId"], json!(world.alpha));
    assert_eq!(metadata["reason"], "access_lost");
}

async fn losing_access_with_no_default_tenant_is_a_clear_access_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "user").await;
    remove_membership(&app, &world, world.users["user"], world.alpha).await;
    let error = app.error_as(Some(&token), CONTEXT, json!({})).await;
    assert_eq!(error_code(&error), "FORBIDDEN");
    assert!(
        error["message"].as_str().unwrap().contains("no default tenant"),
        "{error}"
    );
    let error = app
        .error_as(Some(&token), "{ sessions { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(error_code(&error), "FORBIDDEN");
}

backend_tests!(
    login_applies_the_default_tenant_and_records_it,
    switching_to_a_member_tenant_changes_what_is_visible_and_is_recorded,
    switching_to_a_tenant_without_membership_is_refused_and_not_recorded,
    a_super_admin_may_switch_to_any_tenant,
    setting_the_default_tenant_moves_the_default_and_is_recorded,
    losing_access_resets_the_context_to_the_default_tenant_and_is_recorded,
    losing_access_with_no_default_tenant_is_a_clear_access_error,
);
