//! Session settings (document 003): resolution through every level,
//! validation of the effective settings, the audit trail, reset to inherit,
//! who may do what, and the per-instance cache with its invalidation across
//! instances.

use chrono::Duration;
use entity::tenant_membership::MembershipRole;
use entity::{school, tenant};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use session_manager::config::Settings;
use session_manager::events::{Event, SettingsScope};
use session_manager::services::settings::{self, CacheKey, EffectiveSettings};
use session_manager::unit_of_work::{self, Outcome};
use uuid::Uuid;

use crate::backend_tests;
use crate::fixtures::{World, add_membership};
use crate::helpers::{Backend, SERVICE_TOKEN, TestApp, TestDatabase, error_code, test_epoch};

const FRAGMENTS: &str = "
fragment I on IntSetting { value source candidates { source value } }
fragment B on BooleanSetting { value source candidates { source value } }
fragment All on EffectiveSessionSettings {
  level tenantId schoolId userId
  isSharedDeviceMode { ...B }
  idleTimeoutMinutes { ...I }
  absoluteTimeoutMinutes { ...I }
  maxConcurrentSessions { ...I }
  invalidateAllSessionsOnLogin { ...B }
  sessionWarningMinutes { ...I }
  sharedDeviceIdleTimeoutMinutes { ...I }
  sharedDeviceAbsoluteTimeoutMinutes { ...I }
  sharedDeviceMaxConcurrentSessions { ...I }
  sharedDeviceAlwaysInvalidateAllSessions { ...B }
}";

fn with_fragments(operation: &str) -> String {
    format!("{operation}\n{FRAGMENTS}")
}

fn effective_query() -> String {
    with_fragments(
        "query($s: UUID, $t: UUID, $u: UUID) { effectiveSessionSettings(schoolId: $s, tenantId: $t, userId: $u) { ...All } }",
    )
}

fn update_system() -> String {
    with_fragments(
        "mutation($input: SystemSessionSettingsInput!) { updateSystemSessionSettings(input: $input) { ...All } }",
    )
}

fn update_tenant() -> String {
    with_fragments(
        "mutation($id: UUID!, $input: TenantSessionSettingsInput!) { updateTenantSessionSettings(tenantId: $id, input: $input) { ...All } }",
    )
}

fn update_school() -> String {
    with_fragments(
        "mutation($id: UUID!, $input: SchoolSessionSettingsInput!) { updateSchoolSessionSettings(schoolId: $id, input: $input) { ...All } }",
    )
}

fn set_user_max() -> String {
    with_fragments(
        "mutation($id: UUID!, $value: Int) { setUserMaxConcurrentSessions(userId: $id, value: $value) { ...All } }",
    )
}

fn reset() -> String {
    with_fragments(
        "mutation($level: SettingsLevel!, $id: UUID, $property: SessionSettingProperty!) { resetSessionSettings(scope: { level: $level, id: $id }, property: $property) { ...All } }",
    )
}

const AUDIT_LOG: &str = "query($filter: AuditLogFilter, $first: Int, $after: String) {
  auditLog(filter: $filter, first: $first, after: $after) {
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { node { tenantId actorId action resource details createdAt } }
  }
}";

/// The world plus three schools; `user` attends Lincoln.
struct Fixture {
    app: TestApp,
    world: World,
    /// A school of Alpha.
    lincoln: Uuid,
    /// Another school of Alpha.
    roosevelt: Uuid,
    /// A school of Beta.
    beta_school: Uuid,
    /// Tokens.
    admin: String,
    super_admin: String,
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

async fn attend(app: &TestApp, user_id: Uuid, school_id: Uuid) {
    crate::fixtures::attend(&app.db, user_id, school_id).await;
}

async fn fixture_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Fixture {
    let app = TestApp::spawn_with(backend, adjust).await;
    let world = World::create(&app.db).await;
    let lincoln = new_school(&app, world.alpha, "Lincoln").await;
    let roosevelt = new_school(&app, world.alpha, "Roosevelt").await;
    let beta_school = new_school(&app, world.beta, "Beta School").await;
    attend(&app, world.users["user"], lincoln).await;
    let admin = world.login(&app, "admin").await;
    let super_admin = world.login(&app, "super_admin").await;
    Fixture {
        app,
        world,
        lincoln,
        roosevelt,
        beta_school,
        admin,
        super_admin,
    }
}

async fn fixture(backend: Backend) -> Fixture {
    fixture_with(backend, |_| {}).await
}

impl Fixture {
    async fn effective(&self, token: &str, variables: Value) -> Value {
        self.app.ok_as(token, &effective_query(), variables).await["effectiveSessionSettings"].clone()
    }

    async fn of_school(&self, school: Uuid) -> Value {
        self.effective(&self.super_admin, json!({ "s": school })).await
    }

    async fn of_tenant(&self, tenant: Uuid) -> Value {
        self.effective(&self.super_admin, json!({ "t": tenant })).await
    }

    async fn of_user(&self, token: &str, user: Uuid) -> Value {
        self.effective(token, json!({ "u": user })).await
    }

    async fn system(&self, input: Value) -> Value {
        self.app
            .ok_as(&self.super_admin, &update_system(), json!({ "input": input }))
            .await["updateSystemSessionSettings"]
            .clone()
    }

    async fn tenant(&self, tenant: Uuid, input: Value) -> Value {
        self.app
            .ok_as(
                &self.super_admin,
                &update_tenant(),
                json!({ "id": tenant, "input": input }),
            )
            .await["updateTenantSessionSettings"]
            .clone()
    }

    async fn school(&self, school: Uuid, input: Value) -> Value {
        self.app
            .ok_as(
                &self.super_admin,
                &update_school(),
                json!({ "id": school, "input": input }),
            )
            .await["updateSchoolSessionSettings"]
            .clone()
    }

    /// The first error of a mutation or query run as `token`.
    async fn error(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.app.error_as(token, query, variables).await
    }

    async fn audit(&self, token: &str, filter: Value) -> Vec<Value> {
        let data = self
            .app
            .ok_as(token, AUDIT_LOG, json!({ "filter": filter, "first": 100 }))
            .await;
        data["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| edge["node"].clone())
            .collect()
    }
}

/// `(value, source)` of one effective setting.
fn pick(settings: &Value, field: &str) -> (Value, String) {
    (
        settings[field]["value"].clone(),
        settings[field]["source"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The candidates of one effective setting as `(source, value)` pairs.
fn candidates(settings: &Value, field: &str) -> Vec<(String, Value)> {
    settings[field]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|candidate| {
            (
                candidate["source"].as_str().unwrap().to_owned(),
                candidate["value"].clone(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, Value)]) -> Vec<(String, Value)> {
    expected
        .iter()
        .map(|(source, value)| ((*source).to_owned(), value.clone()))
        .collect()
}

/// Asserts a `BAD_USER_INPUT` error on `field` whose message contains `text`.
fn assert_bad_input(error: &Value, field: &str, text: &str) {
    assert_eq!(error_code(error), "BAD_USER_INPUT", "{error}");
    assert_eq!(error["extensions"]["field"], field, "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(text), "`{message}` should contain `{text}`");
}

// ---------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------

async fn with_nothing_set_every_value_is_a_hard_coded_default(backend: Backend) {
    let f = fixture(backend).await;
    let settings = f.of_school(f.lincoln).await;
    assert_eq!(settings["level"], "SCHOOL");
    assert_eq!(settings["schoolId"], json!(f.lincoln));
    assert_eq!(settings["tenantId"], json!(f.world.alpha));
    for (field, value) in [
        ("idleTimeoutMinutes", json!(30)),
        ("absoluteTimeoutMinutes", json!(480)),
        ("maxConcurrentSessions", json!(5)),
        ("sessionWarningMinutes", json!(2)),
        ("invalidateAllSessionsOnLogin", json!(false)),
        ("isSharedDeviceMode", json!(false)),
    ] {
        assert_eq!(pick(&settings, field), (value, "DEFAULT".to_owned()), "{field}");
    }
    for (field, value) in [
        ("sharedDeviceIdleTimeoutMinutes", json!(15)),
        ("sharedDeviceAbsoluteTimeoutMinutes", json!(60)),
        ("sharedDeviceMaxConcurrentSessions", json!(1)),
        ("sharedDeviceAlwaysInvalidateAllSessions", json!(true)),
    ] {
        assert_eq!(
            pick(&settings, field),
            (value, "SHARED_DEVICE_DEFAULT".to_owned()),
            "{field}"
        );
    }
    assert_eq!(
        candidates(&settings, "idleTimeoutMinutes"),
        pairs(&[
            ("SCHOOL", Value::Null),
            ("DISTRICT", Value::Null),
            ("SYSTEM", Value::Null),
            ("CONFIG", Value::Null),
            ("DEFAULT", json!(30)),
            ("SHARED_DEVICE_SYSTEM", Value::Null),
            ("SHARED_DEVICE_CONFIG", Value::Null),
            ("SHARED_DEVICE_DEFAULT", json!(15)),
        ])
    );
    // Schools store no warning; the system stores neither shared-device
    // mode nor invalidate-on-login.
    assert_eq!(
        candidates(&settings, "sessionWarningMinutes"),
        pairs(&[
            ("DISTRICT", Value::Null),
            ("SYSTEM", Value::Null),
            ("CONFIG", Value::Null),
            ("DEFAULT", json!(2)),
        ])
    );
    assert_eq!(
        candidates(&settings, "isSharedDeviceMode"),
        pairs(&[
            ("SCHOOL", Value::Null),
            ("DISTRICT", Value::Null),
            ("CONFIG", Value::Null),
            ("DEFAULT", json!(false)),
        ])
    );
}

async fn the_idle_timeout_comes_from_the_first_level_that_sets_it_in_every_combination(backend: Backend) {
    for config in [None, Some(40)] {
        let f = fixture_with(backend.clone(), |settings| {
            settings.session_security.idle_timeout_minutes = config;
        })
        .await;
        let user = f.world.users["user"];
        for mask in 0..8 {
            let school = (mask & 1 != 0).then_some(10);
            let district = (mask & 2 != 0).then_some(20);
            let system = (mask & 4 != 0).then_some(25);
            f.school(f.lincoln, json!({ "idleTimeoutMinutes": school })).await;
            f.tenant(f.world.alpha, json!({ "idleTimeoutMinutes": district }))
                .await;
            f.system(json!({ "idleTimeoutMinutes": system })).await;
            let (value, source) = [
                (school, "SCHOOL"),
                (district, "DISTRICT"),
                (system, "SYSTEM"),
                (config, "CONFIG"),
            ]
            .into_iter()
            .find_map(|(value, source)| value.map(|value| (value, source)))
            .unwrap_or((30, "DEFAULT"));
            let expected = (json!(value), source.to_owned());
            let case =
                format!("school {school:?}, district {district:?}, system {system:?}, config {config:?}");
            let of_school = f.of_school(f.lincoln).await;
            assert_eq!(pick(&of_school, "idleTimeoutMinutes"), expected, "{case}");
            assert_eq!(
                candidates(&of_school, "idleTimeoutMinutes")[..5],
                pairs(&[
                    ("SCHOOL", json!(school)),
                    ("DISTRICT", json!(district)),
                    ("SYSTEM", json!(system)),
                    ("CONFIG", json!(config)),
                    ("DEFAULT", json!(30)),
                ])[..],
                "{case}"
            );
            let of_user = f.of_user(&f.super_admin, user).await;
            assert_eq!(pick(&of_user, "idleTimeoutMinutes"), expected, "user: {case}");
            // The district does not see its school's override.
            let district_expected = [(district, "DISTRICT"), (system, "SYSTEM"), (config, "CONFIG")]
                .into_iter()
                .find_map(|(value, source)| value.map(|value| (json!(value), source.to_owned())))
                .unwrap_or((json!(30), "DEFAULT".to_owned()));
            assert_eq!(
                pick(&f.of_tenant(f.world.alpha).await, "idleTimeoutMinutes"),
                district_expected,
                "district: {case}"
            );
        }
    }
}

async fn each_field_comes_from_its_own_most_specific_level(backend: Backend) {
    let f = fixture_with(backend, |settings| {
        settings.session_security.session_warning_minutes = Some(3);
    })
    .await;
    f.system(json!({ "maxConcurrentSessions": 7, "absoluteTimeoutMinutes": 600 }))
        .await;
    f.tenant(
        f.world.alpha,
        json!({ "absoluteTimeoutMinutes": 300, "invalidateAllSessionsOnLogin": true }),
    )
    .await;
    let settings = f.school(f.lincoln, json!({ "idleTimeoutMinutes": 45 })).await;
    assert_eq!(
        pick(&settings, "idleTimeoutMinutes"),
        (json!(45), "SCHOOL".to_owned())
    );
    assert_eq!(
        pick(&settings, "absoluteTimeoutMinutes"),
        (json!(300), "DISTRICT".to_owned())
    );
    assert_eq!(
        pick(&settings, "maxConcurrentSessions"),
        (json!(7), "SYSTEM".to_owned())
    );
    assert_eq!(
        pick(&settings, "sessionWarningMinutes"),
        (json!(3), "CONFIG".to_owned())
    );
    assert_eq!(
        pick(&settings, "invalidateAllSessionsOnLogin"),
        (json!(true), "DISTRICT".to_owned())
    );
    assert_eq!(
        pick(&settings, "isSharedDeviceMode"),
        (json!(false), "DEFAULT".to_owned())
    );
    // Roosevelt has no overrides of its own.
    let roosevelt = f.of_school(f.roosevelt).await;
    assert_eq!(
        pick(&roosevelt, "idleTimeoutMinutes"),
        (json!(30), "DEFAULT".to_owned())
    );
    assert_eq!(
        pick(&roosevelt, "absoluteTimeoutMinutes"),
        (json!(300), "DISTRICT".to_owned())
    );
    // Beta sees only the system, config and defaults.
    let beta = f.of_school(f.beta_school).await;
    assert_eq!(
        pick(&beta, "absoluteTimeoutMinutes"),
        (json!(600), "SYSTEM".to_owned())
    );
}

async fn shared_device_mode_resolves_like_any_field_and_then_its_values_win(backend: Backend) {
    let f = fixture(backend).await;
    f.system(json!({ "sharedDeviceIdleTimeoutMinutes": 12 })).await;
    f.school(
        f.lincoln,
        json!({ "idleTimeoutMinutes": 20, "absoluteTimeoutMinutes": 90, "maxConcurrentSessions": 4 }),
    )
    .await;
    for school in [None, Some(true), Some(false)] {
        for district in [None, Some(true), Some(false)] {
            f.tenant(f.world.alpha, json!({ "isSharedDeviceMode": district }))
                .await;
            let settings = f.school(f.lincoln, json!({ "isSharedDeviceMode": school })).await;
            let (shared, source) = [(school, "SCHOOL"), (district, "DISTRICT")]
                .into_iter()
                .find_map(|(value, source)| value.map(|value| (value, source)))
                .unwrap_or((false, "DEFAULT"));
            let case = format!("school {school:?}, district {district:?}");
            assert_eq!(
                pick(&settings, "isSharedDeviceMode"),
                (json!(shared), source.to_owned()),
                "{case}"
            );
            let expected = if shared {
                [
                    (json!(12), "SHARED_DEVICE_SYSTEM"),
                    (json!(60), "SHARED_DEVICE_DEFAULT"),
                    (json!(1), "SHARED_DEVICE_DEFAULT"),
                    (json!(true), "SHARED_DEVICE_DEFAULT"),
                ]
            } else {
                [
                    (json!(20), "SCHOOL"),
                    (json!(90), "SCHOOL"),
                    (json!(4), "SCHOOL"),
                    (json!(false), "DEFAULT"),
                ]
            };
            for (field, (value, source)) in [
                "idleTimeoutMinutes",
                "absoluteTimeoutMinutes",
                "maxConcurrentSessions",
                "invalidateAllSessionsOnLogin",
            ]
            .into_iter()
            .zip(expected)
            {
                assert_eq!(
                    pick(&settings, field),
                    (value, source.to_owned()),
                    "{field}: {case}"
                );
            }
            // The warning is not a shared-device value.
            assert_eq!(
                pick(&settings, "sessionWarningMinutes"),
                (json!(2), "DEFAULT".to_owned())
            );
        }
    }
}

async fn shared_device_mode_can_come_from_the_config_file(backend: Backend) {
    let f = fixture_with(backend, |settings| {
        settings.session_security.is_shared_device_mode = Some(true);
        settings.session_security.shared_device_absolute_timeout_minutes = Some(45);
    })
    .await;
    let settings = f.of_tenant(f.world.beta).await;
    assert_eq!(
        pick(&settings, "isSharedDeviceMode"),
        (json!(true), "CONFIG".to_owned())
    );
    assert_eq!(
        pick(&settings, "absoluteTimeoutMinutes"),
        (json!(45), "SHARED_DEVICE_CONFIG".to_owned())
    );
    // A district turns it off for itself.
    let settings = f
        .tenant(f.world.beta, json!({ "isSharedDeviceMode": false }))
        .await;
    assert_eq!(
        pick(&settings, "absoluteTimeoutMinutes"),
        (json!(480), "DEFAULT".to_owned())
    );
}

async fn without_forced_invalidation_shared_devices_follow_the_ordinary_invalidate_setting(backend: Backend) {
    let f = fixture(backend).await;
    f.system(json!({ "sharedDeviceAlwaysInvalidateAllSessions": false }))
        .await;
    let settings = f
        .tenant(f.world.alpha, json!({ "isSharedDeviceMode": true }))
        .await;
    assert_eq!(
        pick(&settings, "invalidateAllSessionsOnLogin"),
        (json!(false), "DEFAULT".to_owned())
    );
    let settings = f
        .tenant(f.world.alpha, json!({ "invalidateAllSessionsOnLogin": true }))
        .await;
    assert_eq!(
        pick(&settings, "invalidateAllSessionsOnLogin"),
        (json!(true), "DISTRICT".to_owned())
    );
    assert_eq!(
        candidates(&settings, "invalidateAllSessionsOnLogin"),
        pairs(&[
            ("DISTRICT", json!(true)),
            ("CONFIG", Value::Null),
            ("DEFAULT", json!(false)),
            ("SHARED_DEVICE_SYSTEM", json!(false)),
            ("SHARED_DEVICE_CONFIG", Value::Null),
            ("SHARED_DEVICE_DEFAULT", json!(true)),
        ])
    );
}

async fn a_users_own_limit_replaces_max_concurrent_sessions_except_in_shared_device_mode(backend: Backend) {
    let f = fixture(backend).await;
    let user = f.world.users["user"];
    f.school(f.lincoln, json!({ "maxConcurrentSessions": 4 })).await;
    let settings = f.of_user(&f.admin, user).await;
    assert_eq!(
        pick(&settings, "maxConcurrentSessions"),
        (json!(4), "SCHOOL".to_owned())
    );
    let settings = f
        .app
        .ok_as(&f.admin, &set_user_max(), json!({ "id": user, "value": 3 }))
        .await["setUserMaxConcurrentSessions"]
        .clone();
    assert_eq!(settings["level"], "USER");
    assert_eq!(settings["userId"], json!(user));
    assert_eq!(
        pick(&settings, "maxConcurrentSessions"),
        (json!(3), "USER".to_owned())
    );
    assert_eq!(
        candidates(&settings, "maxConcurrentSessions")[..3],
        pairs(&[
            ("USER", json!(3)),
            ("SCHOOL", json!(4)),
            ("DISTRICT", Value::Null)
        ])[..]
    );
    f.school(f.lincoln, json!({ "isSharedDeviceMode": true })).await;
    let settings = f.of_user(&f.admin, user).await;
    assert_eq!(
        pick(&settings, "maxConcurrentSessions"),
        (json!(1), "SHARED_DEVICE_DEFAULT".to_owned())
    );
    // Null clears the override.
    f.school(f.lincoln, json!({ "isSharedDeviceMode": null })).await;
    let settings = f
        .app
        .ok_as(&f.admin, &set_user_max(), json!({ "id": user, "value": null }))
        .await["setUserMaxConcurrentSessions"]
        .clone();
    assert_eq!(
        pick(&settings, "maxConcurrentSessions"),
        (json!(4), "SCHOOL".to_owned())
    );
}

async fn a_users_school_applies_only_when_it_belongs_to_the_tenant_they_work_in(backend: Backend) {
    let f = fixture(backend).await;
    let user = f.world.users["user"];
    f.school(f.lincoln, json!({ "idleTimeoutMinutes": 11 })).await;
    f.tenant(f.world.beta, json!({ "idleTimeoutMinutes": 22 })).await;
    let own = f.world.login(&f.app, "user").await;
    let settings = f.of_user(&own, user).await;
    assert_eq!(settings["tenantId"], json!(f.world.alpha));
    assert_eq!(settings["schoolId"], json!(f.lincoln));
    assert_eq!(
        pick(&settings, "idleTimeoutMinutes"),
        (json!(11), "SCHOOL".to_owned())
    );
    // The API login sessions build on gives the same values.
    let state = &f.app.state;
    let alpha = settings::effective_for_user(&f.app.db, &state.settings_cache, user, Some(f.world.alpha))
        .await
        .map_err(|error| error.message())
        .unwrap();
    assert_eq!(
        alpha,
        EffectiveSettings {
            idle_timeout_minutes: 11,
            absolute_timeout_minutes: 480,
            max_concurrent_sessions: 5,
            invalidate_all_sessions_on_login: false,
            session_warning_minutes: 2,
            is_shared_device_mode: false,
        }
    );
    // Working in Beta, Lincoln (of Alpha) does not apply; Beta's value does.
    let beta = settings::effective_for_user(&f.app.db, &state.settings_cache, user, Some(f.world.beta))
        .await
        .map_err(|error| error.message())
        .unwrap();
    assert_eq!(beta.idle_timeout_minutes, 22);
    let nowhere = settings::effective_for_user(&f.app.db, &state.settings_cache, user, None)
        .await
        .map_err(|error| error.message())
        .unwrap();
    assert_eq!(nowhere.idle_timeout_minutes, 30);
    let missing = settings::effective_for_user(&f.app.db, &state.settings_cache, Uuid::now_v7(), None).await;
    assert!(matches!(
        missing,
        Err(session_manager::error::AppError::NotFound { .. })
    ));
}

async fn with_no_argument_the_system_wide_view_is_returned(backend: Backend) {
    let f = fixture(backend).await;
    f.system(json!({ "idleTimeoutMinutes": 25 })).await;
    let settings = f.effective(&f.admin, json!({})).await;
    assert_eq!(settings["level"], "SYSTEM");
    assert_eq!(settings["tenantId"], Value::Null);
    assert_eq!(
        pick(&settings, "idleTimeoutMinutes"),
        (json!(25), "SYSTEM".to_owned())
    );
    let error = f
        .error(
            Some(&f.admin),
            &effective_query(),
            json!({ "t": f.world.alpha, "s": f.lincoln }),
        )
        .await;
    assert_bad_input(&error, "tenantId", "at most one");
}

// ---------------------------------------------------------------------------
// Changes and validation
// ---------------------------------------------------------------------------

async fn an_omitted_field_stays_and_an_explicit_null_inherits(backend: Backend) {
    let f = fixture(backend).await;
    f.tenant(
        f.world.alpha,
        json!({ "idleTimeoutMinutes": 40, "maxConcurrentSessions": 3 }),
    )
    .await;
    let settings = f
        .tenant(f.world.alpha, json!({ "maxConcurrentSessions": null }))
        .await;
    assert_eq!(
        pick(&settings, "idleTimeoutMinutes"),
        (json!(40), "DISTRICT".to_owned())
    );
    assert_eq!(
        pick(&settings, "maxConcurrentSessions"),
        (json!(5), "DEFAULT".to_owned())
    );
    let row = tenant::Entity::find_by_id(f.world.alpha)
        .one(&f.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.session_idle_timeout_minutes, Some(40));
    assert_eq!(row.max_concurrent_sessions, None);
}

/// Each value at its boundaries: `(field, below, min, max, above)`.
const RANGES: [(&str, i32, i32, i32, i32); 4] = [
    ("idleTimeoutMinutes", 4, 5, 120, 121),
    ("absoluteTimeoutMinutes", 29, 30, 1440, 1441),
    ("maxConcurrentSessions", 0, 1, 10, 11),
    ("sessionWarningMinutes", 0, 1, 10, 11),
];

async fn each_value_is_accepted_exactly_within_its_range(backend: Backend) {
    let f = fixture(backend).await;
    for (field, below, min, max, above) in RANGES {
        for rejected in [below, above] {
            let error = f
                .error(
                    Some(&f.super_admin),
                    &update_tenant(),
                    json!({ "id": f.world.alpha, "input": { field: rejected } }),
                )
                .await;
            assert_bad_input(&error, field, &format!("must be between {min} and {max}"));
            let error = f
                .error(
                    Some(&f.super_admin),
                    &update_system(),
                    json!({ "input": { field: rejected } }),
                )
                .await;
            assert_bad_input(&error, field, "must be between");
        }
        for accepted in [min, max] {
            // Keep the other values out of the way of the cross-field rules.
            let input = match field {
                "idleTimeoutMinutes" => json!({ field: accepted, "absoluteTimeoutMinutes": 1440 }),
                "absoluteTimeoutMinutes" => json!({ field: accepted, "idleTimeoutMinutes": 30 }),
                "sessionWarningMinutes" => json!({ field: accepted, "idleTimeoutMinutes": 30 }),
                _ => json!({ field: accepted }),
            };
            let settings = f.tenant(f.world.alpha, input.clone()).await;
            assert_eq!(pick(&settings, field), (json!(accepted), "DISTRICT".to_owned()));
            let settings = f.system(input).await;
            assert_eq!(pick(&settings, field), (json!(accepted), "SYSTEM".to_owned()));
            f.tenant(
                f.world.alpha,
                json!({ field: null, "idleTimeoutMinutes": null, "absoluteTimeoutMinutes": null }),
            )
            .await;
            f.system(json!({ field: null, "idleTimeoutMinutes": null, "absoluteTimeoutMinutes": null }))
                .await;
        }
    }
    // Schools and shared-device values have the same ranges.
    for (field, rejected) in [("idleTimeoutMinutes", 121), ("maxConcurrentSessions", 0)] {
        let error = f
            .error(
                Some(&f.super_admin),
                &update_school(),
                json!({ "id": f.lincoln, "input": { field: rejected } }),
            )
            .await;
        assert_bad_input(&error, field, "must be between");
    }
    for (field, rejected, accepted) in [
        ("sharedDeviceIdleTimeoutMinutes", 4, 5),
        ("sharedDeviceAbsoluteTimeoutMinutes", 1441, 1440),
        ("sharedDeviceMaxConcurrentSessions", 11, 10),
    ] {
        let error = f
            .error(
                Some(&f.super_admin),
                &update_system(),
                json!({ "input": { field: rejected } }),
            )
            .await;
        assert_bad_input(&error, field, "must be between");
        let settings = f.system(json!({ field: accepted })).await;
        assert_eq!(settings[field]["value"], json!(accepted));
    }
    for rejected in [0, 11] {
        let error = f
            .error(
                Some(&f.admin),
                &set_user_max(),
                json!({ "id": f.world.users["user"], "value": rejected }),
            )
            .await;
        assert_bad_input(&error, "value", "must be between 1 and 10");
    }
}

async fn the_warning_must_stay_below_the_idle_timeout(backend: Backend) {
    let f = fixture(backend).await;
    f.tenant(f.world.alpha, json!({ "idleTimeoutMinutes": 10 })).await;
    let error = f
        .error(
            Some(&f.super_admin),
            &update_tenant(),
            json!({ "id": f.world.alpha, "input": { "sessionWarningMinutes": 10 } }),
        )
        .await;
    assert_bad_input(
        &error,
        "sessionWarningMinutes",
        &format!(
            "this change would make District Alpha District ({}): session warning 10 >= idle timeout 10",
            f.world.alpha
        ),
    );
    let settings = f
        .tenant(f.world.alpha, json!({ "sessionWarningMinutes": 9 }))
        .await;
    assert_eq!(settings["sessionWarningMinutes"]["value"], 9);
    // A school's idle timeout may not drop to the district's warning.
    let error = f
        .error(
            Some(&f.super_admin),
            &update_school(),
            json!({ "id": f.lincoln, "input": { "idleTimeoutMinutes": 9 } }),
        )
        .await;
    assert_bad_input(
        &error,
        "idleTimeoutMinutes",
        &format!(
            "would make School Lincoln ({}): session warning 9 >= idle timeout 9",
            f.lincoln
        ),
    );
}

async fn the_idle_timeout_may_not_exceed_the_absolute_timeout(backend: Backend) {
    let f = fixture(backend).await;
    let error = f
        .error(
            Some(&f.super_admin),
            &update_school(),
            json!({ "id": f.lincoln, "input": { "idleTimeoutMinutes": 100, "absoluteTimeoutMinutes": 60 } }),
        )
        .await;
    assert_bad_input(
        &error,
        "idleTimeoutMinutes",
        &format!(
            "School Lincoln ({}): idle timeout 100 > absolute timeout 60",
            f.lincoln
        ),
    );
    // Equal is fine.
    let settings = f
        .school(
            f.lincoln,
            json!({ "idleTimeoutMinutes": 60, "absoluteTimeoutMinutes": 60 }),
        )
        .await;
    assert_eq!(settings["idleTimeoutMinutes"]["value"], 60);
    // The rule holds on the effective values: lowering only the absolute
    // timeout below the inherited idle timeout is rejected too.
    f.tenant(f.world.alpha, json!({ "idleTimeoutMinutes": 50 })).await;
    let error = f
        .error(
            Some(&f.super_admin),
            &update_school(),
            json!({ "id": f.roosevelt, "input": { "absoluteTimeoutMinutes": 40 } }),
        )
        .await;
    assert_bad_input(
        &error,
        "absoluteTimeoutMinutes",
        &format!(
            "School Roosevelt ({}): idle timeout 50 > absolute timeout 40",
            f.roosevelt
        ),
    );
}

async fn a_district_change_is_rejected_when_it_would_break_a_school_beneath_it(backend: Backend) {
    let f = fixture(backend).await;
    f.school(f.lincoln, json!({ "absoluteTimeoutMinutes": 60 })).await;
    let error = f
        .error(
            Some(&f.admin),
            &update_tenant(),
            json!({ "id": f.world.alpha, "input": { "idleTimeoutMinutes": 100 } }),
        )
        .await;
    assert_eq!(
        error["message"],
        format!(
            "idleTimeoutMinutes: this change would make School Lincoln ({}): idle timeout 100 > absolute timeout 60",
            f.lincoln
        )
    );
    assert_bad_input(&error, "idleTimeoutMinutes", "School Lincoln");
    // Nothing changed: no row, no audit record.
    let row = tenant::Entity::find_by_id(f.world.alpha)
        .one(&f.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.session_idle_timeout_minutes, None);
    assert_eq!(
        f.audit(&f.super_admin, json!({})).await.len(),
        1,
        "the school's change only"
    );
    // Beta's schools are not Alpha's business.
    f.tenant(f.world.beta, json!({ "idleTimeoutMinutes": 100 })).await;
}

async fn a_system_change_is_rejected_when_it_would_break_a_district_or_school(backend: Backend) {
    let f = fixture(backend).await;
    f.tenant(f.world.beta, json!({ "absoluteTimeoutMinutes": 60 }))
        .await;
    let error = f
        .error(
            Some(&f.super_admin),
            &update_system(),
            json!({ "input": { "idleTimeoutMinutes": 100 } }),
        )
        .await;
    assert_bad_input(
        &error,
        "idleTimeoutMinutes",
        &format!(
            "this change would make District Beta District ({}): idle timeout 100 > absolute timeout 60",
            f.world.beta
        ),
    );
    f.school(f.lincoln, json!({ "idleTimeoutMinutes": 8 })).await;
    let error = f
        .error(
            Some(&f.super_admin),
            &update_system(),
            json!({ "input": { "sessionWarningMinutes": 8 } }),
        )
        .await;
    assert_bad_input(
        &error,
        "sessionWarningMinutes",
        &format!(
            "School Lincoln ({}): session warning 8 >= idle timeout 8",
            f.lincoln
        ),
    );
    // The shared-device values are checked as the system's shared-device view.
    let error = f
        .error(
            Some(&f.super_admin),
            &update_system(),
            json!({ "input": { "sharedDeviceIdleTimeoutMinutes": 100, "sharedDeviceAbsoluteTimeoutMinutes": 60 } }),
        )
        .await;
    assert_bad_input(
        &error,
        "sharedDeviceIdleTimeoutMinutes",
        "System in shared-device mode: idle timeout 100 > absolute timeout 60",
    );
}

async fn turning_on_shared_device_mode_is_checked_against_the_shared_device_values(backend: Backend) {
    let f = fixture(backend).await;
    f.tenant(f.world.alpha, json!({ "sessionWarningMinutes": 8 }))
        .await;
    f.system(json!({ "sharedDeviceIdleTimeoutMinutes": 8 })).await;
    let error = f
        .error(
            Some(&f.admin),
            &update_school(),
            json!({ "id": f.roosevelt, "input": { "isSharedDeviceMode": true } }),
        )
        .await;
    assert_bad_input(
        &error,
        "isSharedDeviceMode",
        &format!(
            "School Roosevelt ({}): session warning 8 >= idle timeout 8",
            f.roosevelt
        ),
    );
}

async fn a_scope_already_invalid_does_not_block_unrelated_changes(backend: Backend) {
    // The configuration file changed after the district was set up.
    let f = fixture_with(backend, |settings| {
        settings.session_security.absolute_timeout_minutes = Some(40);
    })
    .await;
    tenant::Entity::update_many()
        .col_expr(tenant::Column::SessionIdleTimeoutMinutes, 60.into())
        .filter(tenant::Column::Id.eq(f.world.alpha))
        .exec(&f.app.db)
        .await
        .unwrap();
    let settings = f
        .tenant(f.world.alpha, json!({ "maxConcurrentSessions": 2 }))
        .await;
    assert_eq!(settings["maxConcurrentSessions"]["value"], 2);
    // Making it worse is still rejected.
    let error = f
        .error(
            Some(&f.admin),
            &update_tenant(),
            json!({ "id": f.world.alpha, "input": { "idleTimeoutMinutes": 70 } }),
        )
        .await;
    assert_bad_input(
        &error,
        "idleTimeoutMinutes",
        "idle timeout 70 > absolute timeout 40",
    );
}

// ---------------------------------------------------------------------------
// Reset, audit
// ---------------------------------------------------------------------------

async fn reset_returns_one_property_to_inheritance(backend: Backend) {
    let f = fixture(backend).await;
    f.tenant(f.world.alpha, json!({ "idleTimeoutMinutes": 40 })).await;
    f.school(
        f.lincoln,
        json!({ "idleTimeoutMinutes": 20, "maxConcurrentSessions": 2 }),
    )
    .await;
    let settings = f
        .app
        .ok_as(
            &f.admin,
            &reset(),
            json!({ "level": "SCHOOL", "id": f.lincoln, "property": "IDLE_TIMEOUT_MINUTES" }),
        )
        .await["resetSessionSettings"]
        .clone();
    assert_eq!(
        pick(&settings, "idleTimeoutMinutes"),
        (json!(40), "DISTRICT".to_owned())
    );
    assert_eq!(
        pick(&settings, "maxConcurrentSessions"),
        (json!(2), "SCHOOL".to_owned())
    );
    // A property the level does not store.
    let error = f
        .error(
            Some(&f.admin),
            &reset(),
            json!({ "level": "SCHOOL", "id": f.lincoln, "property": "SESSION_WARNING_MINUTES" }),
        )
        .await;
    assert_bad_input(
        &error,
        "property",
        "SessionWarningMinutes is not stored per school",
    );
    let error = f
        .error(
            Some(&f.admin),
            &reset(),
            json!({ "level": "DISTRICT", "property": "IDLE_TIMEOUT_MINUTES" }),
        )
        .await;
    assert_bad_input(&error, "scope.id", "required");
    // A reset that would break a school is rejected like any change.
    f.tenant(f.world.alpha, json!({ "absoluteTimeoutMinutes": 60 }))
        .await;
    f.school(
        f.lincoln,
        json!({ "idleTimeoutMinutes": 100, "absoluteTimeoutMinutes": 200 }),
    )
    .await;
    let error = f
        .error(
            Some(&f.admin),
            &reset(),
            json!({ "level": "SCHOOL", "id": f.lincoln, "property": "ABSOLUTE_TIMEOUT_MINUTES" }),
        )
        .await;
    assert_bad_input(
        &error,
        "property",
        &format!(
            "this change would make School Lincoln ({}): idle timeout 100 > absolute timeout 60",
            f.lincoln
        ),
    );
}

async fn every_changed_property_is_audited_in_the_documents_format(backend: Backend) {
    let f = fixture(backend).await;
    let (admin, super_admin) = (f.world.users["admin"], f.world.users["super_admin"]);
    let user = f.world.users["user"];
    f.app.clock.advance(Duration::minutes(1));
    f.app
        .ok_as(
            &f.admin,
            &update_tenant(),
            json!({ "id": f.world.alpha, "input": { "idleTimeoutMinutes": 45, "isSharedDeviceMode": false } }),
        )
        .await;
    f.app.clock.advance(Duration::minutes(1));
    // Unchanged values are not recorded.
    f.app
        .ok_as(
            &f.admin,
            &update_tenant(),
            json!({ "id": f.world.alpha, "input": { "idleTimeoutMinutes": 50, "isSharedDeviceMode": false, "sessionWarningMinutes": null } }),
        )
        .await;
    f.app.clock.advance(Duration::minutes(1));
    f.app
        .ok_as(
            &f.admin,
            &update_school(),
            json!({ "id": f.lincoln, "input": { "invalidateAllSessionsOnLogin": true } }),
        )
        .await;
    f.app.clock.advance(Duration::minutes(1));
    f.system(json!({ "idleTimeoutMinutes": 45, "sharedDeviceMaxConcurrentSessions": 2 }))
        .await;
    f.app.clock.advance(Duration::minutes(1));
    f.app
        .ok_as(&f.admin, &set_user_max(), json!({ "id": user, "value": 3 }))
        .await;
    let rows = f.audit(&f.super_admin, json!({})).await;
    let at = |minutes: i64| json!(test_epoch() + Duration::minutes(minutes));
    let alpha = json!(f.world.alpha);
    let expected = [
        (
            alpha.clone(),
            json!(admin),
            "UpdateUserSessionSettings",
            format!("User:{user}"),
            "MaxConcurrentSessions: null → 3",
            at(5),
        ),
        (
            Value::Null,
            json!(super_admin),
            "UpdateSystemSessionSettings",
            "System".to_owned(),
            "SharedDeviceMaxConcurrentSessions: null → 2",
            at(4),
        ),
        (
            Value::Null,
            json!(super_admin),
            "UpdateSystemSessionSettings",
            "System".to_owned(),
            "DefaultIdleTimeoutMinutes: null → 45",
            at(4),
        ),
        (
            alpha.clone(),
            json!(admin),
            "UpdateSchoolSessionSettings",
            format!("School:{}", f.lincoln),
            "InvalidateAllSessionsOnLogin: null → true",
            at(3),
        ),
        (
            alpha.clone(),
            json!(admin),
            "UpdateDistrictSessionSettings",
            format!("District:{}", f.world.alpha),
            "SessionIdleTimeoutMinutes: 45 → 50",
            at(2),
        ),
        (
            alpha.clone(),
            json!(admin),
            "UpdateDistrictSessionSettings",
            format!("District:{}", f.world.alpha),
            "IsSharedDeviceMode: null → false",
            at(1),
        ),
        (
            alpha.clone(),
            json!(admin),
            "UpdateDistrictSessionSettings",
            format!("District:{}", f.world.alpha),
            "SessionIdleTimeoutMinutes: null → 45",
            at(1),
        ),
    ];
    let actual: Vec<(Value, Value, String, String, String, Value)> = rows
        .iter()
        .map(|row| {
            (
                row["tenantId"].clone(),
                row["actorId"].clone(),
                row["action"].as_str().unwrap().to_owned(),
                row["resource"].as_str().unwrap().to_owned(),
                row["details"].as_str().unwrap().to_owned(),
                json!(
                    chrono::DateTime::parse_from_rfc3339(row["createdAt"].as_str().unwrap())
                        .unwrap()
                        .with_timezone(&chrono::Utc)
                ),
            )
        })
        .collect();
    let expected: Vec<(Value, Value, String, String, String, Value)> = expected
        .into_iter()
        .map(|(tenant, actor, action, resource, details, at)| {
            (tenant, actor, action.to_owned(), resource, details.to_owned(), at)
        })
        .collect();
    // Rows of one change share their instant; compare them as sets.
    let sorted = |mut rows: Vec<(Value, Value, String, String, String, Value)>| {
        rows.sort_by(|a, b| (a.5.to_string(), &a.4).cmp(&(b.5.to_string(), &b.4)));
        rows
    };
    assert_eq!(sorted(actual.clone()), sorted(expected));
    // Newest first.
    let times: Vec<String> = actual.iter().map(|row| row.5.to_string()).collect();
    let mut descending = times.clone();
    descending.sort();
    descending.reverse();
    assert_eq!(times, descending);
    // The system row records who changed it and when.
    let system = f
        .app
        .ok_as(
            &f.super_admin,
            "{ systemSessionSettings { idleTimeoutMinutes updatedAt updatedById } }",
            json!({}),
        )
        .await;
    assert_eq!(system["systemSessionSettings"]["idleTimeoutMinutes"], 45);
    assert_eq!(system["systemSessionSettings"]["updatedById"], json!(super_admin));
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(system["systemSessionSettings"]["updatedAt"].as_str().unwrap())
            .unwrap(),
        test_epoch() + Duration::minutes(4)
    );
}

async fn resets_are_audited_with_the_scope_they_inherit_from(backend: Backend) {
    let f = fixture(backend).await;
    let user = f.world.users["user"];
    f.system(json!({ "idleTimeoutMinutes": 40 })).await;
    f.tenant(
        f.world.alpha,
        json!({ "idleTimeoutMinutes": 40, "isSharedDeviceMode": false }),
    )
    .await;
    f.school(f.lincoln, json!({ "idleTimeoutMinutes": 40 })).await;
    f.app
        .ok_as(&f.admin, &set_user_max(), json!({ "id": user, "value": 3 }))
        .await;
    for (level, id, property) in [
        ("SCHOOL", json!(f.lincoln), "IDLE_TIMEOUT_MINUTES"),
        ("DISTRICT", json!(f.world.alpha), "IDLE_TIMEOUT_MINUTES"),
        ("DISTRICT", json!(f.world.alpha), "IS_SHARED_DEVICE_MODE"),
        ("SYSTEM", Value::Null, "IDLE_TIMEOUT_MINUTES"),
        ("USER", json!(user), "MAX_CONCURRENT_SESSIONS"),
        // Already inherited: nothing to record.
        ("SCHOOL", json!(f.lincoln), "IDLE_TIMEOUT_MINUTES"),
    ] {
        f.app
            .ok_as(
                &f.super_admin,
                &reset(),
                json!({ "level": level, "id": id, "property": property }),
            )
            .await;
    }
    let rows = f
        .audit(
            &f.super_admin,
            json!({ "action": "ResetSessionSettingsToDefault" }),
        )
        .await;
    let mut details: Vec<(String, String)> = rows
        .iter()
        .map(|row| {
            (
                row["resource"].as_str().unwrap().to_owned(),
                row["details"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    details.sort();
    let mut expected = vec![
        (
            format!("School:{}", f.lincoln),
            "Reset SessionIdleTimeoutMinutes to inherit from District".to_owned(),
        ),
        (
            format!("District:{}", f.world.alpha),
            "Reset SessionIdleTimeoutMinutes to inherit from System".to_owned(),
        ),
        (
            format!("District:{}", f.world.alpha),
            "Reset IsSharedDeviceMode to inherit from Config".to_owned(),
        ),
        (
            "System".to_owned(),
            "Reset DefaultIdleTimeoutMinutes to inherit from Config".to_owned(),
        ),
        (
            format!("User:{user}"),
            "Reset MaxConcurrentSessions to inherit from School".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(details, expected);
    let settings = f.of_school(f.lincoln).await;
    assert_eq!(
        pick(&settings, "idleTimeoutMinutes"),
        (json!(30), "DEFAULT".to_owned())
    );
}

async fn the_audit_log_shows_administrators_their_tenants_and_super_admins_everything(backend: Backend) {
    let f = fixture(backend).await;
    let other_admin = f.world.login(&f.app, "other_admin").await;
    f.app
        .ok_as(
            &f.admin,
            &update_tenant(),
            json!({ "id": f.world.alpha, "input": { "idleTimeoutMinutes": 40 } }),
        )
        .await;
    f.app.clock.advance(Duration::minutes(10));
    f.app
        .ok_as(
            &other_admin,
            &update_tenant(),
            json!({ "id": f.world.beta, "input": { "idleTimeoutMinutes": 41 } }),
        )
        .await;
    f.app.clock.advance(Duration::minutes(10));
    f.system(json!({ "idleTimeoutMinutes": 42 })).await;
    let resources = |rows: Vec<Value>| -> Vec<String> {
        rows.iter()
            .map(|row| row["resource"].as_str().unwrap().to_owned())
            .collect()
    };
    let (alpha, beta) = (
        format!("District:{}", f.world.alpha),
        format!("District:{}", f.world.beta),
    );
    assert_eq!(resources(f.audit(&f.admin, json!({})).await), [alpha.as_str()]);
    assert_eq!(resources(f.audit(&other_admin, json!({})).await), [beta.as_str()]);
    assert_eq!(
        resources(f.audit(&f.super_admin, json!({})).await),
        ["System", beta.as_str(), alpha.as_str()]
    );
    // Filters.
    let super_admin = &f.super_admin;
    assert_eq!(
        resources(f.audit(super_admin, json!({ "resource": beta })).await),
        [beta.as_str()]
    );
    assert_eq!(
        resources(
            f.audit(super_admin, json!({ "action": "UpdateSystemSessionSettings" }))
                .await
        ),
        ["System"]
    );
    assert_eq!(
        resources(
            f.audit(super_admin, json!({ "actorId": f.world.users["admin"] }))
                .await
        ),
        [alpha.as_str()]
    );
    let from = test_epoch() + Duration::minutes(10);
    assert_eq!(
        resources(
            f.audit(
                super_admin,
                json!({ "from": from, "to": from + Duration::minutes(10) })
            )
            .await
        ),
        [beta.as_str()]
    );
    // Paging.
    let first = f.app.ok_as(super_admin, AUDIT_LOG, json!({ "first": 2 })).await;
    let page = &first["auditLog"];
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    assert_eq!(page["edges"].as_array().unwrap().len(), 2);
    let second = f
        .app
        .ok_as(
            super_admin,
            AUDIT_LOG,
            json!({ "first": 2, "after": page["pageInfo"]["endCursor"] }),
        )
        .await;
    let page = &second["auditLog"];
    assert_eq!(page["pageInfo"]["hasNextPage"], false);
    assert_eq!(page["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(page["edges"][0]["node"]["resource"], json!(alpha));
    // Nobody else.
    for handle in ["user", "guardian"] {
        let token = f.world.login(&f.app, handle).await;
        let error = f.error(Some(&token), AUDIT_LOG, json!({})).await;
        assert_eq!(error_code(&error), "FORBIDDEN", "{handle}");
    }
    assert_eq!(
        error_code(&f.error(None, AUDIT_LOG, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&f.error(Some(SERVICE_TOKEN), AUDIT_LOG, json!({})).await),
        "FORBIDDEN"
    );
}

// ---------------------------------------------------------------------------
// Who may do what
// ---------------------------------------------------------------------------

/// Tokens of every identity (None: anonymous).
async fn identities(f: &Fixture) -> Vec<(&'static str, Option<String>)> {
    let mut tokens = Vec::new();
    for handle in [
        "admin",
        "other_admin",
        "user",
        "other_user",
        "guardian",
        "super_admin",
    ] {
        tokens.push((handle, Some(f.world.login(&f.app, handle).await)));
    }
    tokens.push(("anonymous", None));
    tokens.push(("service", Some(SERVICE_TOKEN.to_owned())));
    tokens
}

/// What an operation returned: `OK` or the error code.
async fn outcome(f: &Fixture, token: Option<&str>, query: &str, variables: Value) -> String {
    let (_, body) = f.app.post_graphql_as(token, query, variables).await;
    match body["errors"].get(0) {
        Some(error) => error_code(error).to_owned(),
        None => "OK".to_owned(),
    }
}

async fn who_may_read_effective_settings(backend: Backend) {
    let f = fixture(backend).await;
    let identities = identities(&f).await;
    let user = f.world.users["user"];
    let cases: [(&str, Value, [&str; 8]); 4] = [
        // admin, other_admin, user, other_user, guardian, super_admin, anonymous, service
        (
            "district",
            json!({ "t": f.world.alpha }),
            [
                "OK",
                "NOT_FOUND",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
                "UNAUTHENTICATED",
                "FORBIDDEN",
            ],
        ),
        (
            "school",
            json!({ "s": f.lincoln }),
            [
                "OK",
                "NOT_FOUND",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
                "UNAUTHENTICATED",
                "FORBIDDEN",
            ],
        ),
        (
            "user",
            json!({ "u": user }),
            [
                "OK",
                "NOT_FOUND",
                "OK",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
                "UNAUTHENTICATED",
                "FORBIDDEN",
            ],
        ),
        (
            "system",
            json!({}),
            [
                "OK",
                "OK",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
                "UNAUTHENTICATED",
                "FORBIDDEN",
            ],
        ),
    ];
    for (target, variables, expected) in cases {
        for ((handle, token), expected) in identities.iter().zip(expected) {
            assert_eq!(
                outcome(&f, token.as_deref(), &effective_query(), variables.clone()).await,
                expected,
                "{handle} reading the {target}"
            );
        }
    }
    // A school or user that does not exist.
    assert_eq!(
        outcome(
            &f,
            Some(&f.super_admin),
            &effective_query(),
            json!({ "s": Uuid::now_v7() })
        )
        .await,
        "NOT_FOUND"
    );
}

async fn who_may_change_settings(backend: Backend) {
    let f = fixture(backend).await;
    let identities = identities(&f).await;
    let user = f.world.users["user"];
    let cases: [(&str, String, Value, [&str; 8]); 5] = [
        // admin, other_admin, user, other_user, guardian, super_admin, anonymous, service
        (
            "the district",
            update_tenant(),
            json!({ "id": f.world.alpha, "input": { "maxConcurrentSessions": 3 } }),
            [
                "OK",
                "NOT_FOUND",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
                "UNAUTHENTICATED",
                "FORBIDDEN",
            ],
        ),
        (
            "a school",
            update_school(),
            json!({ "id": f.lincoln, "input": { "maxConcurrentSessions": 3 } }),
            [
                "OK",
                "NOT_FOUND",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
                "UNAUTHENTICATED",
                "FORBIDDEN",
            ],
        ),
        (
            "the system",
            update_system(),
            json!({ "input": { "maxConcurrentSessions": 3 } }),
            [
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
                "UNAUTHENTICATED",
                "FORBIDDEN",
            ],
        ),
        (
            "a user's limit",
            set_user_max(),
            json!({ "id": user, "value": 3 }),
            [
                "OK",
                "NOT_FOUND",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
                "UNAUTHENTICATED",
                "FORBIDDEN",
            ],
        ),
        (
            "a reset",
            reset(),
            json!({ "level": "DISTRICT", "id": f.world.alpha, "property": "MAX_CONCURRENT_SESSIONS" }),
            [
                "OK",
                "NOT_FOUND",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
                "UNAUTHENTICATED",
                "FORBIDDEN",
            ],
        ),
    ];
    for (target, query, variables, expected) in cases {
        for ((handle, token), expected) in identities.iter().zip(expected) {
            assert_eq!(
                outcome(&f, token.as_deref(), &query, variables.clone()).await,
                expected,
                "{handle} changing {target}"
            );
        }
    }
    // Beta's administrator manages Beta and its schools.
    let other_admin = identities[1].1.as_deref();
    assert_eq!(
        outcome(
            &f,
            other_admin,
            &update_school(),
            json!({ "id": f.beta_school, "input": { "idleTimeoutMinutes": 20 } })
        )
        .await,
        "OK"
    );
    // Only a super admin changes a super admin's limit.
    let super_admin = f.world.users["super_admin"];
    add_membership(
        &f.app.db,
        super_admin,
        f.world.alpha,
        MembershipRole::Member,
        true,
    )
    .await;
    let variables = json!({ "id": super_admin, "value": 2 });
    assert_eq!(
        outcome(&f, Some(&f.admin), &set_user_max(), variables.clone()).await,
        "FORBIDDEN"
    );
    assert_eq!(
        outcome(&f, Some(&f.super_admin), &set_user_max(), variables).await,
        "OK"
    );
}

// ---------------------------------------------------------------------------
// The cache
// ---------------------------------------------------------------------------

async fn set_district_idle_behind_the_apis_back(app: &TestApp, tenant_id: Uuid, minutes: i32) {
    tenant::Entity::update_many()
        .col_expr(tenant::Column::SessionIdleTimeoutMinutes, minutes.into())
        .filter(tenant::Column::Id.eq(tenant_id))
        .exec(&app.db)
        .await
        .unwrap();
}

async fn cached_settings_expire_after_five_minutes_unread_and_each_read_slides_the_expiry(backend: Backend) {
    let f = fixture(backend).await;
    let alpha = f.world.alpha;
    let idle = |settings: Value| settings["idleTimeoutMinutes"]["value"].clone();
    assert_eq!(idle(f.of_tenant(alpha).await), 30);
    let cache = &f.app.state.settings_cache;
    assert!(cache.contains(CacheKey::District(alpha)));
    assert!(cache.contains(CacheKey::System));
    set_district_idle_behind_the_apis_back(&f.app, alpha, 45).await;
    for _ in 0..3 {
        f.app.clock.advance(Duration::minutes(4));
        assert_eq!(
            idle(f.of_tenant(alpha).await),
            30,
            "read within the sliding window"
        );
    }
    f.app.clock.advance(Duration::minutes(5) - Duration::seconds(1));
    assert_eq!(idle(f.of_tenant(alpha).await), 30, "4:59 after the last read");
    f.app.clock.advance(Duration::minutes(5));
    assert_eq!(idle(f.of_tenant(alpha).await), 45, "5 minutes unread: reloaded");
}

async fn a_change_through_the_api_is_seen_at_once_by_its_scope_and_everything_beneath(backend: Backend) {
    let f = fixture(backend).await;
    let cache = &f.app.state.settings_cache;
    let idle = |settings: Value| settings["idleTimeoutMinutes"]["value"].clone();
    // Cache the system, both districts and two schools.
    f.of_school(f.lincoln).await;
    f.of_school(f.beta_school).await;
    f.of_tenant(f.world.alpha).await;
    for key in [
        CacheKey::System,
        CacheKey::District(f.world.alpha),
        CacheKey::District(f.world.beta),
        CacheKey::School(f.lincoln),
        CacheKey::School(f.beta_school),
    ] {
        assert!(cache.contains(key), "{key}");
    }
    // A school change drops that school only.
    let lincoln = f.school(f.lincoln, json!({ "idleTimeoutMinutes": 20 })).await;
    assert_eq!(idle(lincoln), 20);
    assert!(cache.contains(CacheKey::District(f.world.alpha)));
    // A district change drops its schools' entries, not Beta's.
    f.of_school(f.lincoln).await;
    f.tenant(f.world.alpha, json!({ "absoluteTimeoutMinutes": 300 }))
        .await;
    assert!(!cache.contains(CacheKey::School(f.lincoln)));
    assert!(cache.contains(CacheKey::School(f.beta_school)));
    assert!(cache.contains(CacheKey::District(f.world.beta)));
    // Proof it was dropped: a change made behind the API's back shows.
    f.of_school(f.lincoln).await;
    school::Entity::update_many()
        .col_expr(school::Column::SessionIdleTimeoutMinutes, 25.into())
        .filter(school::Column::Id.eq(f.lincoln))
        .exec(&f.app.db)
        .await
        .unwrap();
    assert_eq!(idle(f.of_school(f.lincoln).await), 20, "still cached");
    f.tenant(f.world.alpha, json!({ "maxConcurrentSessions": 4 }))
        .await;
    assert_eq!(
        idle(f.of_school(f.lincoln).await),
        25,
        "dropped with its district"
    );
    // A system change drops everything.
    f.system(json!({ "maxConcurrentSessions": 6 })).await;
    for key in [
        CacheKey::District(f.world.beta),
        CacheKey::School(f.beta_school),
        CacheKey::School(f.lincoln),
    ] {
        assert!(!cache.contains(key), "{key}");
    }
    assert_eq!(
        f.of_school(f.beta_school).await["maxConcurrentSessions"]["value"],
        6
    );
}

async fn a_settings_event_in_the_log_invalidates_the_cache(backend: Backend) {
    let f = fixture(backend).await;
    let alpha = f.world.alpha;
    f.of_tenant(alpha).await;
    set_district_idle_behind_the_apis_back(&f.app, alpha, 45).await;
    assert_eq!(f.of_tenant(alpha).await["idleTimeoutMinutes"]["value"], 30);
    let cache = &f.app.state.settings_cache;
    let mut invalidations = cache.invalidations();
    let before = *invalidations.borrow();
    // Only the event, as another instance's settings write would log it.
    let changed = Event::SettingsChanged(SettingsScope::Tenant(alpha));
    unit_of_work::write(&f.app.state, async |_txn| {
        Ok(Outcome::announcing((), vec![changed]))
    })
    .await
    .unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        invalidations.wait_for(|count| *count > before),
    )
    .await
    .expect("the cache heard the event")
    .unwrap();
    assert_eq!(f.of_tenant(alpha).await["idleTimeoutMinutes"]["value"], 45);
}

/// The effective idle timeout of a district, read on `app`.
async fn idle_of(app: &TestApp, token: &str, tenant: Uuid) -> Value {
    app.ok_as(token, &effective_query(), json!({ "t": tenant })).await["effectiveSessionSettings"]
        ["idleTimeoutMinutes"]["value"]
        .clone()
}

/// Two server instances on one PostgreSQL database: the second caches, a
/// change made behind the API's back stays invisible to it until its
/// sliding expiry, and a change through the first instance reaches it at
/// once through the `SettingsChanged` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_instance_invalidates_the_cached_settings_of_another() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("TEST_POSTGRES_URL is not set: skipped");
        return;
    };
    let database = TestDatabase::create(backend).await;
    let first = TestApp::spawn_on(database.clone(), |_| {}).await;
    let second = TestApp::spawn_on(database, |_| {}).await;
    let world = World::create(&first.db).await;
    let admin = world.login(&first, "admin").await;
    let alpha = world.alpha;
    let idle_on = |app| idle_of(app, &admin, alpha);
    assert_eq!(idle_on(&first).await, 30);
    assert_eq!(idle_on(&second).await, 30);
    assert!(second.state.settings_cache.contains(CacheKey::District(alpha)));

    // Without an event, the second instance serves its cached value until
    // it has gone 5 minutes unread.
    set_district_idle_behind_the_apis_back(&first, alpha, 40).await;
    assert_eq!(idle_on(&first).await, 30, "the first instance cached it too");
    second.clock.advance(Duration::minutes(4));
    assert_eq!(idle_on(&second).await, 30);
    second.clock.advance(Duration::minutes(4));
    assert_eq!(
        idle_on(&second).await,
        30,
        "the read at 4 minutes slid the expiry"
    );
    second.clock.advance(Duration::minutes(5));
    assert_eq!(idle_on(&second).await, 40, "5 minutes unread");

    // A change through the first instance invalidates the second at once.
    let mut invalidations = second.state.settings_cache.invalidations();
    let before = *invalidations.borrow();
    let changed = first
        .ok_as(
            &admin,
            &update_tenant(),
            json!({ "id": alpha, "input": { "idleTimeoutMinutes": 45 } }),
        )
        .await;
    assert_eq!(
        changed["updateTenantSessionSettings"]["idleTimeoutMinutes"]["value"],
        45
    );
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        invalidations.wait_for(|count| *count > before),
    )
    .await
    .expect("the second instance heard of the change")
    .unwrap();
    assert_eq!(idle_on(&second).await, 45);
    assert_eq!(idle_on(&first).await, 45);
}

backend_tests!(
    with_nothing_set_every_value_is_a_hard_coded_default,
    the_idle_timeout_comes_from_the_first_level_that_sets_it_in_every_combination,
    each_field_comes_from_its_own_most_specific_level,
    shared_device_mode_resolves_like_any_field_and_then_its_values_win,
    shared_device_mode_can_come_from_the_config_file,
    without_forced_invalidation_shared_devices_follow_the_ordinary_invalidate_setting,
    a_users_own_limit_replaces_max_concurrent_sessions_except_in_shared_device_mode,
    a_users_school_applies_only_when_it_belongs_to_the_tenant_they_work_in,
    with_no_argument_the_system_wide_view_is_returned,
    an_omitted_field_stays_and_an_explicit_null_inherits,
    each_value_is_accepted_exactly_within_its_range,
    the_warning_must_stay_below_the_idle_timeout,
    the_idle_timeout_may_not_exceed_the_absolute_timeout,
    a_district_change_is_rejected_when_it_would_break_a_school_beneath_it,
    a_system_change_is_rejected_when_it_would_break_a_district_or_school,
    turning_on_shared_device_mode_is_checked_against_the_shared_device_values,
    a_scope_already_invalid_does_not_block_unrelated_changes,
    reset_returns_one_property_to_inheritance,
    every_changed_property_is_audited_in_the_documents_format,
    resets_are_audited_with_the_scope_they_inherit_from,
    the_audit_log_shows_administrators_their_tenants_and_super_admins_everything,
    who_may_read_effective_settings,
    who_may_change_settings,
    cached_settings_expire_after_five_minutes_unread_and_each_read_slides_the_expiry,
    a_change_through_the_api_is_seen_at_once_by_its_scope_and_everything_beneath,
    a_settings_event_in_the_log_invalidates_the_cache,
);
