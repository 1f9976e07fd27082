//! Runs the migrations up, down and up again, then exercises the schema
//! through the entities: inserts, DB defaults, timestamps, constraints and
//! cascades. Always on in-memory SQLite; on PostgreSQL when
//! `TEST_POSTGRES_URL` is set (a scratch database is created and dropped).

use chrono::Utc;
use entity::session::SessionStatus;
use entity::session_context_change::ContextChangeEventType;
use entity::session_log::SessionEndReason;
use entity::tenant_membership::MembershipRole;
use entity::{
    audit_log, guardian_link, module, school, session, session_config, session_context_change, session_log,
    system_settings, tenant, tenant_membership, user, video,
};
use migration::Migrator;
use migration::sea_orm_migration::MigratorTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, IntoActiveModel, ModelTrait, NotSet, PaginatorTrait, QueryFilter, Set, SqlErr, Statement,
};
use uuid::Uuid;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn fail(msg: String) -> Box<dyn std::error::Error> {
    msg.into()
}

fn ensure(cond: bool, msg: &str) -> TestResult {
    if cond { Ok(()) } else { Err(fail(msg.to_owned())) }
}

/// The operation must fail with a unique-constraint violation.
fn expect_unique<T: std::fmt::Debug>(res: Result<T, DbErr>, what: &str) -> TestResult {
    match res {
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(()),
        other => Err(fail(format!("{what}: expected unique violation, got {other:?}"))),
    }
}

/// The operation must fail with a foreign-key violation.
fn expect_fk<T: std::fmt::Debug>(res: Result<T, DbErr>, what: &str) -> TestResult {
    match res {
        Err(e) if matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_))) => Ok(()),
        other => Err(fail(format!(
            "{what}: expected foreign-key violation, got {other:?}"
        ))),
    }
}

/// The operation must fail with an error naming the constraint `name`.
fn expect_check<T: std::fmt::Debug>(res: Result<T, DbErr>, name: &str) -> TestResult {
    match res {
        Err(e) if e.to_string().contains(name) => Ok(()),
        other => Err(fail(format!("{name}: expected check violation, got {other:?}"))),
    }
}

fn new_user(email: &str) -> user::ActiveModel {
    user::ActiveModel {
        email: Set(email.to_owned()),
        password_hash: Set("$argon2id$dummy".to_owned()),
        ..Default::default()
    }
}

fn new_module(session_id: Uuid, order_index: i32) -> module::ActiveModel {
    module::ActiveModel {
        session_id: Set(session_id),
        name: Set(format!("module {order_index}")),
        order_index: Set(order_index),
        ..Default::default()
    }
}

async fn exercise(db: &DatabaseConnection) -> TestResult {
    Migrator::up(db, None).await?;
    Migrator::down(db, None).await?;
    Migrator::up(db, None).await?;

    if db.get_database_backend() == DbBackend::Sqlite {
        let row = db
            .query_one_raw(Statement::from_string(DbBackend::Sqlite, "PRAGMA foreign_keys"))
            .await?
            .ok_or_else(|| fail("no PRAGMA row".into()))?;
        ensure(row.try_get_by_index::<i32>(0)? == 1, "SQLite foreign_keys is off")?;
    }

    // The single system_settings row, read back through its entity.
    let settings = system_settings::Entity::find_by_id(system_settings::SINGLETON_ID)
        .one(db)
        .await?
        .ok_or_else(|| fail("system_settings row 1 missing".into()))?;
    ensure(
        settings.default_idle_timeout_minutes.is_none(),
        "settings not NULL",
    )?;
    ensure(settings.updated_by.is_none(), "updated_by not NULL")?;
    ensure(
        (Utc::now() - settings.updated_at).num_minutes().abs() < 5,
        "system_settings.updated_at is not now",
    )?;
    expect_check(
        system_settings::ActiveModel {
            id: Set(2),
            ..Default::default()
        }
        .insert(db)
        .await,
        "ck_system_settings_single_row",
    )?;
    expect_unique(
        system_settings::ActiveModel {
            id: Set(1),
            ..Default::default()
        }
        .insert(db)
        .await,
        "second system_settings row 1",
    )?;
    let mut am = settings.clone().into_active_model();
    am.session_warning_minutes = Set(Some(3));
    let updated = am.update(db).await?;
    ensure(updated.session_warning_minutes == Some(3), "settings update")?;
    ensure(
        updated.updated_at >= settings.updated_at,
        "settings updated_at not refreshed",
    )?;

    // Tenants, schools, users, memberships, guardian links.
    let tenant = tenant::ActiveModel {
        name: Set("District 1".to_owned()),
        session_idle_timeout_minutes: Set(Some(30)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    ensure(tenant.id.get_version_num() == 7, "tenant id is not a UUIDv7")?;
    ensure(
        tenant.created_at == tenant.updated_at,
        "tenant timestamps differ on insert",
    )?;
    expect_check(
        tenant::ActiveModel {
            name: Set("Bad".to_owned()),
            session_idle_timeout_minutes: Set(Some(4)),
            ..Default::default()
        }
        .insert(db)
        .await,
        "ck_tenants_session_idle_timeout_minutes",
    )?;

    // updated_at: refreshed when Unchanged, kept when explicitly Set.
    let mut am = tenant.clone().into_active_model();
    am.name = Set("District One".to_owned());
    let renamed = am.update(db).await?;
    ensure(
        renamed.updated_at >= tenant.updated_at,
        "updated_at not refreshed",
    )?;
    ensure(renamed.created_at == tenant.created_at, "created_at changed")?;
    let fixed = chrono::DateTime::from_timestamp(1_700_000_000, 0).ok_or_else(|| fail("timestamp".into()))?;
    let mut am = renamed.clone().into_active_model();
    am.updated_at = Set(fixed);
    ensure(
        am.update(db).await?.updated_at == fixed,
        "explicit updated_at overwritten",
    )?;

    let school = school::ActiveModel {
        tenant_id: Set(tenant.id),
        name: Set("School A".to_owned()),
        max_concurrent_sessions: Set(Some(5)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    expect_unique(
        school::ActiveModel {
            tenant_id: Set(tenant.id),
            name: Set("School A".to_owned()),
            ..Default::default()
        }
        .insert(db)
        .await,
        "duplicate school name",
    )?;

    let guardian = new_user("guardian@example.com").insert(db).await?;
    ensure(!guardian.is_super_admin, "is_super_admin default")?;
    let child = new_user("child@example.com").insert(db).await?;
    expect_unique(new_user("child@example.com").insert(db).await, "duplicate email")?;
    expect_check(
        user::ActiveModel {
            max_concurrent_sessions: Set(Some(11)),
            ..new_user("x@example.com")
        }
        .insert(db)
        .await,
        "ck_users_max_concurrent_sessions",
    )?;

    let membership = tenant_membership::ActiveModel {
        user_id: Set(child.id),
        tenant_id: Set(tenant.id),
        role: Set(MembershipRole::Member),
        is_default: Set(true),
        school_id: Set(Some(school.id)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    ensure(membership.role == MembershipRole::Member, "role round trip")?;
    let guardian_membership = tenant_membership::ActiveModel {
        user_id: Set(guardian.id),
        tenant_id: Set(tenant.id),
        role: Set(MembershipRole::Guardian),
        ..Default::default()
    }
    .insert(db)
    .await?;
    ensure(!guardian_membership.is_default, "is_default default")?;
    let other_tenant = tenant::ActiveModel {
        name: Set("District 2".to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    expect_unique(
        tenant_membership::ActiveModel {
            user_id: Set(child.id),
            tenant_id: Set(other_tenant.id),
            role: Set(MembershipRole::Member),
            is_default: Set(true),
            ..Default::default()
        }
        .insert(db)
        .await,
        "second default tenant",
    )?;
    expect_check(
        db.execute_unprepared("UPDATE tenant_memberships SET role = 'owner'")
            .await,
        "ck_tenant_memberships_role",
    )?;

    let link = guardian_link::ActiveModel {
        tenant_id: Set(tenant.id),
        guardian_id: Set(guardian.id),
        user_id: Set(child.id),
        ..Default::default()
    }
    .insert(db)
    .await?;
    expect_check(
        guardian_link::ActiveModel {
            tenant_id: Set(tenant.id),
            guardian_id: Set(child.id),
            user_id: Set(child.id),
            ..Default::default()
        }
        .insert(db)
        .await,
        "ck_guardian_links_not_self",
    )?;
    expect_fk(
        guardian_link::ActiveModel {
            tenant_id: Set(other_tenant.id),
            guardian_id: Set(guardian.id),
            user_id: Set(child.id),
            ..Default::default()
        }
        .insert(db)
        .await,
        "guardian link outside the members' tenant",
    )?;

    // A session with config, modules and videos; DB defaults for type/status.
    let now = Utc::now();
    let sess = session::ActiveModel {
        tenant_id: Set(tenant.id),
        user_id: Set(child.id),
        guardian_id: Set(Some(guardian.id)),
        name: Set("Study mode".to_owned()),
        session_type: NotSet,
        status: NotSet,
        start_time: Set(now),
        end_time: Set(Some(now + chrono::Duration::hours(1))),
        ..Default::default()
    }
    .insert(db)
    .await?;
    ensure(sess.session_type == "Linear Flow", "session_type default")?;
    ensure(sess.status == SessionStatus::Active, "status default")?;
    // Filtering on string-backed enums works on both backends.
    let active = session::Entity::find()
        .filter(session::Column::Status.eq(SessionStatus::Active))
        .filter(session::Column::Status.is_in([SessionStatus::Active, SessionStatus::Expired]))
        .count(db)
        .await?;
    ensure(active == 1, "filter by status")?;
    let guardians = tenant_membership::Entity::find()
        .filter(tenant_membership::Column::Role.eq(MembershipRole::Guardian))
        .count(db)
        .await?;
    ensure(guardians == 1, "filter by role")?;
    expect_check(
        db.execute_unprepared("UPDATE sessions SET status = 'bogus'")
            .await,
        "ck_sessions_status",
    )?;
    expect_check(
        session::ActiveModel {
            tenant_id: Set(tenant.id),
            user_id: Set(child.id),
            name: Set("Backwards".to_owned()),
            status: Set(SessionStatus::Ended),
            start_time: Set(now),
            end_time: Set(Some(now - chrono::Duration::hours(1))),
            ..Default::default()
        }
        .insert(db)
        .await,
        "ck_sessions_end_after_start",
    )?;

    let config = session_config::ActiveModel {
        session_id: Set(sess.id),
        label: Set(Some("study mode".to_owned())),
        lock_profile: Set(Some(serde_json::json!({
            "lockedApps": ["tiktok", "youtube"],
            "whitelist": ["duolingo"],
        }))),
        ..Default::default()
    }
    .insert(db)
    .await?;
    ensure(config.session_id == sess.id, "config key invented")?;
    ensure(config.notify_on_unlock, "notify_on_unlock default")?;
    ensure(
        config
            .lock_profile
            .as_ref()
            .and_then(|p| p.get("whitelist"))
            .is_some(),
        "lock_profile round trip",
    )?;

    let first = new_module(sess.id, 0).insert(db).await?;
    new_module(sess.id, 1).insert(db).await?;
    expect_unique(
        new_module(sess.id, 1).insert(db).await,
        "duplicate (session_id, order_index)",
    )?;
    expect_check(new_module(sess.id, -1).insert(db).await, "ck_modules_order_index")?;
    expect_fk(
        new_module(Uuid::now_v7(), 0).insert(db).await,
        "dangling module.session_id",
    )?;

    let video = video::ActiveModel {
        module_id: Set(first.id),
        file_name: Set("intro.mp4".to_owned()),
        file_url: Set("https://cdn.example.com/intro.mp4".to_owned()),
        file_size: Set(5_000_000_000),
        mime_type: Set("video/mp4".to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    ensure(video.file_size == 5_000_000_000, "BIGINT file_size")?;

    // Login sessions, context changes, audit log.
    let log = session_log::ActiveModel {
        user_id: Set(child.id),
        tenant_id: Set(Some(tenant.id)),
        login_at: Set(now),
        last_seen_at: Set(now),
        ip_address: Set(Some("127.0.0.1".to_owned())),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let mut am = log.clone().into_active_model();
    am.logout_at = Set(Some(Utc::now()));
    am.end_reason = Set(Some(SessionEndReason::ExpiredIdle));
    let ended = am.update(db).await?;
    ensure(
        ended.end_reason == Some(SessionEndReason::ExpiredIdle),
        "end_reason round trip",
    )?;
    expect_check(
        session_log::ActiveModel {
            user_id: Set(child.id),
            login_at: Set(now),
            last_seen_at: Set(now),
            logout_at: Set(Some(now)),
            ..Default::default()
        }
        .insert(db)
        .await,
        "ck_session_logs_logout_end_reason",
    )?;
    expect_check(
        db.execute_unprepared("UPDATE session_logs SET end_reason = 'crashed'")
            .await,
        "ck_session_logs_end_reason",
    )?;

    let change = session_context_change::ActiveModel {
        user_id: Set(child.id),
        tenant_id: Set(tenant.id),
        event_type: Set(ContextChangeEventType::ApplyDefaultTenant),
        metadata: Set(Some(serde_json::json!({ "previous": null }))),
        ..Default::default()
    }
    .insert(db)
    .await?;
    ensure(
        change.event_type == ContextChangeEventType::ApplyDefaultTenant,
        "event type",
    )?;

    audit_log::ActiveModel {
        tenant_id: Set(Some(tenant.id)),
        actor_id: Set(Some(guardian.id)),
        action: Set("UpdateDistrictSessionSettings".to_owned()),
        resource: Set(format!("District:{}", tenant.id)),
        details: Set("SessionIdleTimeoutMinutes: null → 30".to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await?;

    // Deleting a session cascades to its config, modules and videos.
    sess.delete(db).await?;
    ensure(
        module::Entity::find().count(db).await? == 0,
        "modules not cascaded",
    )?;
    ensure(video::Entity::find().count(db).await? == 0, "videos not cascaded")?;
    ensure(
        session_config::Entity::find().count(db).await? == 0,
        "config not cascaded",
    )?;

    // Deleting a membership cascades to the guardian links that need it.
    guardian_membership.delete(db).await?;
    ensure(
        guardian_link::Entity::find_by_id(link.id)
            .one(db)
            .await?
            .is_none(),
        "guardian link not cascaded",
    )?;

    // Deleting a tenant nulls the SET NULL references.
    tenant::Entity::delete_by_id(tenant.id).exec(db).await?;
    let log = session_log::Entity::find_by_id(log.id)
        .one(db)
        .await?
        .ok_or_else(|| fail("session log gone".into()))?;
    ensure(log.tenant_id.is_none(), "session_logs.tenant_id not nulled")?;
    ensure(
        school::Entity::find_by_id(school.id).one(db).await?.is_none(),
        "school not cascaded",
    )?;
    ensure(
        user::Entity::find_by_id(child.id).one(db).await?.is_some(),
        "the child's account stays",
    )?;
    // The audit trail outlives the tenant, with its id as data.
    let kept = session_context_change::Entity::find_by_id(change.id)
        .one(db)
        .await?
        .ok_or_else(|| fail("context change deleted with its tenant".into()))?;
    ensure(kept.tenant_id == tenant.id, "context change keeps the tenant id")?;
    // ... and the user: their login sessions and context changes stay.
    user::Entity::delete_by_id(child.id).exec(db).await?;
    ensure(
        session_log::Entity::find_by_id(log.id).one(db).await?.is_some(),
        "login session deleted with its user",
    )?;
    ensure(
        session_context_change::Entity::find_by_id(change.id)
            .one(db)
            .await?
            .is_some_and(|row| row.user_id == child.id),
        "context change deleted with its user",
    )?;

    Migrator::down(db, None).await?;
    Ok(())
}

#[tokio::test]
async fn schema_on_sqlite() -> TestResult {
    let db = Database::connect("sqlite::memory:").await?;
    exercise(&db).await
}

#[tokio::test]
async fn schema_on_postgres() -> TestResult {
    let Ok(server_url) = std::env::var("TEST_POSTGRES_URL") else {
        return Ok(());
    };
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server_url.as_str(), String::new()),
    };
    let prefix = base
        .rsplit_once('/')
        .filter(|(scheme, _)| !scheme.ends_with('/'))
        .map_or(base, |(prefix, _)| prefix);
    let name = format!("mig_check_{}", Uuid::new_v4().simple());

    let admin = Database::connect(server_url.as_str()).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    let result = async {
        let db = Database::connect(format!("{prefix}/{name}{query}")).await?;
        let result = exercise(&db).await;
        db.close().await?;
        result
    }
    .await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    result
}
