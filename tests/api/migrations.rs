use chrono::Utc;
use entity::{module, session, session_config, system_settings, video};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use session_manager::seed::seed_demo;

use crate::backend_tests;
use crate::helpers::{Backend, TestDatabase};

async fn migrations_go_down_and_up_again(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let applied = Migrator::get_applied_migrations(&db).await.unwrap().len();
    assert_eq!(applied, Migrator::migrations().len());
    Migrator::down(&db, None).await.unwrap();
    assert!(Migrator::get_applied_migrations(&db).await.unwrap().is_empty());
    assert!(
        session::Entity::find().count(&db).await.is_err(),
        "tables are gone"
    );
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(Migrator::get_pending_migrations(&db).await.unwrap().len(), 0);
    let settings = system_settings::Entity::find().all(&db).await.unwrap();
    assert_eq!(settings.len(), 1, "the singleton row is created by the migration");
    assert_eq!(settings[0].id, 1);
    assert_eq!(settings[0].default_idle_timeout_minutes, None);
    seed_demo(&db).await.unwrap();
}

/// Several instances starting at once on one PostgreSQL database take turns
/// (an advisory lock); SQLite is a single-process embedded database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_migrating_one_postgres_database_at_once_do_not_collide() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("TEST_POSTGRES_URL is not set: skipped");
        return;
    };
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    Migrator::down(&db, None).await.unwrap();
    let (a, b) = (database.connect().await, database.connect().await);
    let (first, second) = tokio::join!(session_manager::db::migrate(&a), session_manager::db::migrate(&b));
    first.unwrap();
    second.unwrap();
    assert_eq!(Migrator::get_pending_migrations(&db).await.unwrap().len(), 0);
}

async fn a_duplicate_module_position_is_rejected(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    seed_demo(&db).await.unwrap();
    let existing = module::Entity::find().one(&db).await.unwrap().unwrap();
    let duplicate = module::ActiveModel {
        session_id: Set(existing.session_id),
        name: Set("Twin".to_owned()),
        order_index: Set(existing.order_index),
        ..Default::default()
    };
    assert!(duplicate.insert(&db).await.is_err());
    let negative = module::ActiveModel {
        session_id: Set(existing.session_id),
        name: Set("Negative".to_owned()),
        order_index: Set(-1),
        ..Default::default()
    };
    assert!(negative.insert(&db).await.is_err());
}

async fn an_unknown_status_is_rejected(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    seed_demo(&db).await.unwrap();
    let result = db
        .execute_unprepared("UPDATE sessions SET status = 'paused'")
        .await;
    assert!(result.is_err(), "the status CHECK holds");
}

async fn a_second_system_settings_row_is_rejected(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    for id in [1, 2] {
        let row = system_settings::ActiveModel {
            id: Set(id),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        assert!(row.insert(&db).await.is_err(), "row {id} must be rejected");
    }
    assert_eq!(system_settings::Entity::find().count(&db).await.unwrap(), 1);
}

async fn out_of_range_settings_are_rejected(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    for (column, value) in [
        ("default_idle_timeout_minutes", 4),
        ("default_idle_timeout_minutes", 121),
        ("default_absolute_timeout_minutes", 29),
        ("default_max_concurrent_sessions", 11),
        ("session_warning_minutes", 0),
    ] {
        let result = db
            .execute_unprepared(&format!(
                "UPDATE system_settings SET {column} = {value} WHERE id = 1"
            ))
            .await;
        assert!(result.is_err(), "{column} = {value} must be rejected");
    }
    db.execute_unprepared("UPDATE system_settings SET default_idle_timeout_minutes = 5 WHERE id = 1")
        .await
        .unwrap();
}

async fn a_dangling_foreign_key_is_rejected(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let orphan = module::ActiveModel {
        session_id: Set(uuid::Uuid::now_v7()),
        name: Set("Orphan".to_owned()),
        order_index: Set(0),
        ..Default::default()
    };
    assert!(orphan.insert(&db).await.is_err());
}

async fn deleting_a_session_cascades_to_its_content(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    seed_demo(&db).await.unwrap();
    let target = session::Entity::find().one(&db).await.unwrap().unwrap();
    let modules: Vec<uuid::Uuid> = module::Entity::find()
        .filter(module::Column::SessionId.eq(target.id))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|module| module.id)
        .collect();
    assert_eq!(modules.len(), 3);
    session::Entity::delete_by_id(target.id).exec(&db).await.unwrap();
    assert_eq!(
        module::Entity::find()
            .filter(module::Column::SessionId.eq(target.id))
            .count(&db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        video::Entity::find()
            .filter(video::Column::ModuleId.is_in(modules))
            .count(&db)
            .await
            .unwrap(),
        0
    );
    assert!(
        session_config::Entity::find_by_id(target.id)
            .one(&db)
            .await
            .unwrap()
            .is_none()
    );
}

async fn timestamps_are_set_on_insert_and_moved_on_update(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    seed_demo(&db).await.unwrap();
    let before = session::Entity::find().one(&db).await.unwrap().unwrap();
    assert!(before.updated_at >= before.created_at);
    let mut change: session::ActiveModel = before.clone().into();
    change.name = Set("Renamed".to_owned());
    let after = change.update(&db).await.unwrap();
    assert_eq!(after.created_at, before.created_at);
    assert!(after.updated_at > before.updated_at);
}

/// The school moves from the account to its membership in the school's own
/// tenant (`m20261202_000014`), and back on the way down.
async fn the_school_of_an_account_moves_to_its_membership_in_that_schools_tenant(backend: Backend) {
    use entity::tenant_membership::MembershipRole;
    use entity::{school, tenant, tenant_membership, user};

    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    // Back to just before the move (the 13 tables of the first release).
    let since = u32::try_from(Migrator::migrations().len() - 13).unwrap();
    Migrator::down(&db, Some(since)).await.unwrap();
    let district = tenant::ActiveModel {
        name: Set("District".to_owned()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    let other = tenant::ActiveModel {
        name: Set("Other".to_owned()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    let north = school::ActiveModel {
        tenant_id: Set(district.id),
        name: Set("North".to_owned()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    // The entity no longer has `users.school_id`: insert, then set it.
    let pupil = user::ActiveModel {
        email: Set("pupil@example.test".to_owned()),
        password_hash: Set("x".to_owned()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    db.execute_unprepared("UPDATE users SET school_id = (SELECT id FROM schools)")
        .await
        .unwrap();
    // Raw SQL, because the entity now has a column the old table lacks;
    // each membership borrows its tenant's id as its own (unique, and
    // portable across both backends' UUID storage).
    for (tenant_id, is_default) in [(district.id, true), (other.id, false)] {
        db.execute_unprepared(&format!(
            "INSERT INTO tenant_memberships (id, user_id, tenant_id, role, is_default, created_at, updated_at) \
             SELECT (SELECT id FROM tenants WHERE name = '{name}'), users.id, tenants.id, 'member', {is_default}, \
             users.created_at, users.created_at FROM users, tenants WHERE tenants.name = '{name}'",
            name = if tenant_id == district.id { "District" } else { "Other" },
        ))
        .await
        .unwrap();
    }
    Migrator::up(&db, None).await.unwrap();
    let memberships = tenant_membership::Entity::find()
        .filter(tenant_membership::Column::UserId.eq(pupil.id))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(memberships.len(), 2);
    for membership in memberships {
        let expected = (membership.tenant_id == district.id).then_some(north.id);
        assert_eq!(
            membership.school_id, expected,
            "only the school's own tenant gets it"
        );
        assert_eq!(membership.role, MembershipRole::Member);
    }
}

async fn the_end_records_of_existing_sessions_are_filled_where_they_are_known(backend: Backend) {
    use chrono::{Duration, TimeZone};
    use entity::session::{SessionEndKind, SessionStatus};
    use entity::{tenant, user};

    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    // Back to just before end records (the 20 migrations before them).
    let since = u32::try_from(Migrator::migrations().len() - 20).unwrap();
    Migrator::down(&db, Some(since)).await.unwrap();
    let district = tenant::ActiveModel {
        name: Set("District".to_owned()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    let pupil = user::ActiveModel {
        email: Set("pupil@example.test".to_owned()),
        password_hash: Set("x".to_owned()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    let start = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
    let end = start + Duration::hours(1);
    let mut ids = Vec::new();
    for status in [
        SessionStatus::Active,
        SessionStatus::Expired,
        SessionStatus::Revoked,
        SessionStatus::Ended,
    ] {
        let id = uuid::Uuid::now_v7();
        // Only the columns of the time (no `RETURNING` of the new ones).
        session::Entity::insert(session::ActiveModel {
            id: Set(id),
            tenant_id: Set(district.id),
            user_id: Set(pupil.id),
            name: Set(format!("{status:?}")),
            session_type: Set("Linear Flow".to_owned()),
            status: Set(status),
            start_time: Set(start),
            end_time: Set(Some(end)),
            created_at: Set(start),
            updated_at: Set(start),
            ..Default::default()
        })
        .exec_without_returning(&db)
        .await
        .unwrap();
        ids.push(id);
    }
    Migrator::up(&db, None).await.unwrap();
    let mut records = Vec::new();
    for id in ids {
        let row = session::Entity::find_by_id(id).one(&db).await.unwrap().unwrap();
        records.push((row.planned_end_time, row.ended_at, row.end_kind, row.ended_by));
    }
    assert_eq!(
        records,
        [
            (Some(end), None, None, None),
            (Some(end), Some(end), Some(SessionEndKind::Expired), None),
            // Revoking and ending overwrote the end time: only the end is known.
            (None, Some(end), Some(SessionEndKind::Revoked), None),
            (None, Some(end), None, None),
        ]
    );
}

backend_tests!(
    the_school_of_an_account_moves_to_its_membership_in_that_schools_tenant,
    the_end_records_of_existing_sessions_are_filled_where_they_are_known,
    migrations_go_down_and_up_again,
    a_duplicate_module_position_is_rejected,
    an_unknown_status_is_rejected,
    a_second_system_settings_row_is_rejected,
    out_of_range_settings_are_rejected,
    a_dangling_foreign_key_is_rejected,
    deleting_a_session_cascades_to_its_content,
    timestamps_are_set_on_insert_and_moved_on_update,
);
