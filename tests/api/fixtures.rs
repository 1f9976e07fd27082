//! A small world for authorization tests: two tenants, every kind of person,
//! and sessions with content.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::Duration;
use entity::session::SessionStatus;
use entity::tenant_membership::MembershipRole;
use entity::{
    guardian_link, module, school, session, session_config, tenant, tenant_membership, user, video,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, test_epoch};

/// Every fixture account's password.
pub const PASSWORD: &str = "correct horse battery";

/// Who is who.
pub struct World {
    /// Tenant "Alpha District".
    pub alpha: Uuid,
    /// Tenant "Beta District".
    pub beta: Uuid,
    /// Users by handle: `user`, `other_user`, `guardian`, `other_guardian`,
    /// `admin`, `other_admin` (of beta), `beta_user`, `super_admin`.
    pub users: HashMap<&'static str, Uuid>,
    /// Sessions by handle: `user` (of `user`, supervised by `guardian`),
    /// `other_user` (supervised by `other_guardian`), `beta` (in beta).
    pub sessions: HashMap<&'static str, Uuid>,
}

fn password_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| session_manager::services::passwords::hash_password(PASSWORD).unwrap())
        .clone()
}

/// The e-mail of a fixture handle.
pub fn email(handle: &str) -> String {
    format!("{}@example.test", handle.replace('_', "."))
}

impl World {
    /// Creates the world in `db`.
    pub async fn create(db: &DatabaseConnection) -> Self {
        let alpha = new_tenant(db, "Alpha District").await;
        let beta = new_tenant(db, "Beta District").await;
        let mut users = HashMap::new();
        for (handle, tenant, role, is_super_admin) in [
            ("user", Some(alpha), MembershipRole::Member, false),
            ("other_user", Some(alpha), MembershipRole::Member, false),
            ("guardian", Some(alpha), MembershipRole::Guardian, false),
            ("other_guardian", Some(alpha), MembershipRole::Guardian, false),
            ("admin", Some(alpha), MembershipRole::Admin, false),
            ("other_admin", Some(beta), MembershipRole::Admin, false),
            ("beta_user", Some(beta), MembershipRole::Member, false),
            ("super_admin", None, MembershipRole::Member, true),
        ] {
            let id = new_user(db, &email(handle), is_super_admin).await;
            if let Some(tenant) = tenant {
                add_membership(db, id, tenant, role, true).await;
            }
            users.insert(handle, id);
        }
        link(db, alpha, users["guardian"], users["user"]).await;
        link(db, alpha, users["other_guardian"], users["other_user"]).await;
        let mut sessions = HashMap::new();
        sessions.insert(
            "user",
            new_session(db, alpha, users["user"], Some(users["guardian"]), "Study mode").await,
        );
        sessions.insert(
            "other_user",
            new_session(
                db,
                alpha,
                users["other_user"],
                Some(users["other_guardian"]),
                "Reading",
            )
            .await,
        );
        sessions.insert(
            "beta",
            new_session(db, beta, users["beta_user"], None, "Beta session").await,
        );
        Self {
            alpha,
            beta,
            users,
            sessions,
        }
    }

    /// Logs `handle` in and returns the token.
    pub async fn login(&self, app: &TestApp, handle: &str) -> String {
        app.login(&email(handle), PASSWORD).await
    }
}

async fn new_tenant(db: &DatabaseConnection, name: &str) -> Uuid {
    tenant::ActiveModel {
        name: Set(name.to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
    .id
}

/// Creates an account with the fixture password.
pub async fn new_user(db: &DatabaseConnection, email: &str, is_super_admin: bool) -> Uuid {
    user::ActiveModel {
        email: Set(email.to_owned()),
        name: Set(Some(email.split('@').next().unwrap_or_default().to_owned())),
        password_hash: Set(password_hash()),
        is_super_admin: Set(is_super_admin),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
    .id
}

/// Adds a membership.
pub async fn add_membership(
    db: &DatabaseConnection,
    user_id: Uuid,
    tenant_id: Uuid,
    role: MembershipRole,
    is_default: bool,
) -> Uuid {
    tenant_membership::ActiveModel {
        user_id: Set(user_id),
        tenant_id: Set(tenant_id),
        role: Set(role),
        is_default: Set(is_default),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
    .id
}

/// Makes `school_id` the school of `user_id` in the school's tenant (the
/// membership must exist).
pub async fn attend(db: &DatabaseConnection, user_id: Uuid, school_id: Uuid) {
    let school = school::Entity::find_by_id(school_id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let updated = tenant_membership::Entity::update_many()
        .col_expr(tenant_membership::Column::SchoolId, Expr::value(Some(school_id)))
        .filter(tenant_membership::Column::UserId.eq(user_id))
        .filter(tenant_membership::Column::TenantId.eq(school.tenant_id))
        .exec(db)
        .await
        .unwrap();
    assert_eq!(
        updated.rows_affected, 1,
        "the user is a member of the school's tenant"
    );
}

/// The school of `user_id` in `tenant_id`, as stored.
pub async fn school_of(db: &DatabaseConnection, user_id: Uuid, tenant_id: Uuid) -> Option<Uuid> {
    tenant_membership::Entity::find()
        .filter(tenant_membership::Column::UserId.eq(user_id))
        .filter(tenant_membership::Column::TenantId.eq(tenant_id))
        .one(db)
        .await
        .unwrap()
        .and_then(|membership| membership.school_id)
}

async fn link(db: &DatabaseConnection, tenant_id: Uuid, guardian_id: Uuid, user_id: Uuid) {
    guardian_link::ActiveModel {
        tenant_id: Set(tenant_id),
        guardian_id: Set(guardian_id),
        user_id: Set(user_id),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
}

async fn new_session(
    db: &DatabaseConnection,
    tenant_id: Uuid,
    user_id: Uuid,
    guardian_id: Option<Uuid>,
    name: &str,
) -> Uuid {
    let start = test_epoch();
    let row = session::ActiveModel {
        tenant_id: Set(tenant_id),
        user_id: Set(user_id),
        guardian_id: Set(guardian_id),
        name: Set(name.to_owned()),
        session_type: Set("Linear Flow".to_owned()),
        status: Set(SessionStatus::Active),
        start_time: Set(start),
        end_time: Set(Some(start + Duration::hours(2))),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    session_config::ActiveModel {
        session_id: Set(row.id),
        label: Set(Some(name.to_lowercase())),
        lock_profile: Set(Some(
            json!({ "lockedApps": ["tiktok"], "whitelist": ["duolingo"] }),
        )),
        notify_on_unlock: Set(true),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    let part = module::ActiveModel {
        session_id: Set(row.id),
        name: Set("Lesson".to_owned()),
        order_index: Set(0),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    video::ActiveModel {
        module_id: Set(part.id),
        file_name: Set("lesson.mp4".to_owned()),
        file_url: Set("https://videos.example.test/lesson.mp4".to_owned()),
        file_size: Set(1024),
        mime_type: Set("video/mp4".to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    row.id
}
