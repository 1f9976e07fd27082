//! The durable event log: what a transaction appends is there exactly when
//! it commits, read in order from a cursor, ids in commit order, kept for
//! the retention period, and never reused.

use chrono::{Duration, Utc};
use pretty_assertions::assert_eq;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait};
use serde_json::json;
use session_manager::event_log;
use session_manager::events::{Event, SettingsScope};
use uuid::Uuid;

use crate::backend_tests;
use crate::fixtures::World;
use crate::helpers::{Backend, TestApp, TestDatabase, error_code};

fn settings_changed() -> Event {
    Event::SettingsChanged(SettingsScope::Tenant(Uuid::now_v7()))
}

async fn what_a_transaction_appends_is_there_exactly_when_it_commits(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let now = Utc::now();
    let txn = db.begin().await.unwrap();
    event_log::append(&txn, now, &[settings_changed()]).await.unwrap();
    txn.rollback().await.unwrap();
    assert!(
        event_log::read_after(&db, 0, 10).await.unwrap().is_empty(),
        "a rollback leaves nothing"
    );

    let events = [settings_changed(), settings_changed()];
    let txn = db.begin().await.unwrap();
    let ids = event_log::append(&txn, now, &events).await.unwrap();
    assert_eq!(ids.len(), 2);
    txn.commit().await.unwrap();
    let read = event_log::read_after(&db, 0, 10).await.unwrap();
    assert_eq!(
        read,
        vec![(ids[0], events[0].clone()), (ids[1], events[1].clone())]
    );
    let after_first = event_log::read_after(&db, ids[0], 10).await.unwrap();
    assert_eq!(after_first, vec![(ids[1], events[1].clone())]);
}

async fn retention_empties_the_log_but_ids_never_start_again(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let then = Utc::now() - Duration::days(8);
    let txn = db.begin().await.unwrap();
    let old = event_log::append(&txn, then, &[settings_changed(), settings_changed()])
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(event_log::first_id(&db).await.unwrap(), Some(old[0]));
    let swept = event_log::sweep(&db, Utc::now(), Duration::days(7))
        .await
        .unwrap();
    assert_eq!(swept, 2);
    assert_eq!(event_log::last_id(&db).await.unwrap(), None);
    assert_eq!(
        event_log::swept_through(&db).await.unwrap(),
        old[1],
        "the horizon records how far retention swept"
    );
    let txn = db.begin().await.unwrap();
    let new = event_log::append(&txn, Utc::now(), &[settings_changed()])
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert!(new[0] > old[1], "ids only grow: {new:?} after {old:?}");
    assert_eq!(event_log::first_id(&db).await.unwrap(), Some(new[0]));
}

/// Two transactions interleave: the first appends and holds its
/// transaction open; the second's append waits for it, so it takes the
/// higher id *and* commits later. A reader never sees a higher id before a
/// lower one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_become_visible_in_commit_order_on_postgres() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("TEST_POSTGRES_URL is not set: skipped");
        return;
    };
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let other = database.connect().await;
    let now = Utc::now();
    let first = db.begin().await.unwrap();
    let first_ids = event_log::append(&first, now, &[settings_changed()])
        .await
        .unwrap();

    let second = tokio::spawn(async move {
        let txn = other.begin().await.unwrap();
        let ids = event_log::append(&txn, now, &[settings_changed()]).await.unwrap();
        txn.commit().await.unwrap();
        ids
    });
    // Wait until the second append is queued behind the first's lock.
    loop {
        let waiting = db
            .query_one_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                "SELECT count(*)::bigint AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(
        event_log::read_after(&db, 0, 10).await.unwrap().is_empty(),
        "nothing is visible before the first commit"
    );
    first.commit().await.unwrap();
    let second_ids = second.await.unwrap();
    assert!(second_ids[0] > first_ids[0]);
    let read: Vec<i64> = event_log::read_after(&db, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(read, vec![first_ids[0], second_ids[0]]);
}

/// What a mutation announces is in the log, written with it; a mutation
/// that fails leaves nothing.
async fn a_mutation_logs_what_it_announces_and_a_failed_one_logs_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    let started = app
        .ok_as(
            &guardian,
            "mutation($u: UUID!) { startSession(userId: $u) { id } }",
            json!({ "u": world.users["user"] }),
        )
        .await;
    let session_id = started["startSession"]["id"].as_str().unwrap().to_owned();
    let logged = event_log::read_after(&app.db, 0, 100).await.unwrap();
    let sessions: Vec<&Event> = logged
        .iter()
        .map(|(_, event)| event)
        .filter(|event| matches!(event, Event::Session(_)))
        .collect();
    assert_eq!(sessions.len(), 1, "{logged:?}");
    let Event::Session(event) = sessions[0] else {
        unreachable!()
    };
    assert_eq!(event.session_id.to_string(), session_id);
    assert_eq!(event.tenant_id, world.alpha);

    let before = event_log::last_id(&app.db).await.unwrap();
    let error = app
        .error_as(
            Some(&guardian),
            "mutation($id: UUID!) { updateSession(id: $id, input: { name: \"\" }) { id } }",
            json!({ "id": session_id }),
        )
        .await;
    assert_eq!(error_code(&error), "BAD_USER_INPUT");
    assert_eq!(
        event_log::last_id(&app.db).await.unwrap(),
        before,
        "a refused change logs nothing"
    );
    app.ok_as(
        &guardian,
        "mutation($id: UUID!) { endSession(id: $id) { id } }",
        json!({ "id": session_id }),
    )
    .await;
    let ended = event_log::last_id(&app.db).await.unwrap();
    assert!(ended > before, "the end is logged");
    let error = app
        .error_as(
            Some(&guardian),
            "mutation($id: UUID!) { endSession(id: $id) { id } }",
            json!({ "id": session_id }),
        )
        .await;
    assert_eq!(error_code(&error), "CONFLICT");
    assert_eq!(
        event_log::last_id(&app.db).await.unwrap(),
        ended,
        "a failed end logs nothing"
    );
}

backend_tests!(
    a_login_session_without_any_tenant_is_announced_once_not_per_request,
    every_change_of_identity_is_an_event_in_the_log,
    a_mutation_logs_what_it_announces_and_a_failed_one_logs_nothing,
    what_a_transaction_appends_is_there_exactly_when_it_commits,
    retention_empties_the_log_but_ids_never_start_again,
);

/// The events appended since `since` (a log id), oldest first, and the new
/// end of the log.
async fn logged_since(app: &TestApp, since: i64) -> (Vec<Event>, i64) {
    let read = event_log::read_after(&app.db, since, 100).await.unwrap();
    let end = read.last().map_or(since, |(id, _)| *id);
    (read.into_iter().map(|(_, event)| event).collect(), end)
}

/// Every change a cache of identity would have to follow is an event of
/// the log: memberships and roles, links, schools, tenant context, default
/// tenant, deletions and promotions.
async fn every_change_of_identity_is_an_event_in_the_log(backend: Backend) {
    use session_manager::events::{
        AccountChange, GuardianLinkEvent, LoginSessionChange, MembershipChange, OrganisationChange,
        SessionChange,
    };
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let (alpha, beta) = (world.alpha, world.beta);
    let member = world.users["beta_user"];
    let root = world.login(&app, "super_admin").await;
    let mut at = event_log::last_id(&app.db).await.unwrap().unwrap_or(0);
    let mut step = async |query: &str, variables: serde_json::Value| {
        app.ok_as(&root, query, variables).await;
        let (events, end) = logged_since(&app, at).await;
        at = end;
        events
    };

    let events = step(
        "mutation($t: UUID!) { switchTenant(tenantId: $t) { activeTenant { id } } }",
        json!({ "t": alpha }),
    )
    .await;
    assert!(
        matches!(&events[..], [Event::LoginSession(e)] if e.change == LoginSessionChange::TenantSwitched),
        "{events:?}"
    );
    let events = step(
        "mutation($u: UUID!) { addMembership(input: { userId: $u, role: MEMBER }) { id } }",
        json!({ "u": member }),
    )
    .await;
    assert!(
        matches!(&events[..], [Event::Membership(e)] if e.change == MembershipChange::Added && e.user_id == member && e.tenant_id == alpha),
        "{events:?}"
    );
    let events = step(
        "mutation($u: UUID!) { updateMembershipRole(userId: $u, role: GUARDIAN) { id } }",
        json!({ "u": member }),
    )
    .await;
    assert!(
        matches!(&events[..], [Event::Membership(e)] if e.change == MembershipChange::RoleChanged),
        "{events:?}"
    );
    let link = app
        .ok_as(
            &root,
            "mutation($g: UUID!, $u: UUID!) { createGuardianLink(guardianId: $g, userId: $u) { id } }",
            json!({ "g": member, "u": world.users["other_user"] }),
        )
        .await["createGuardianLink"]["id"]
        .clone();
    let (events, end) = logged_since(&app, at).await;
    at = end;
    assert!(
        matches!(&events[..], [Event::GuardianLink(GuardianLinkEvent { linked: true, guardian_id, .. })] if *guardian_id == member),
        "{events:?}"
    );
    let mut step = async |query: &str, variables: serde_json::Value| {
        app.ok_as(&root, query, variables).await;
        let (events, end) = logged_since(&app, at).await;
        at = end;
        events
    };
    let events = step(
        "mutation($id: UUID!) { deleteGuardianLink(id: $id) }",
        json!({ "id": link }),
    )
    .await;
    assert!(
        matches!(
            &events[..],
            [Event::GuardianLink(GuardianLinkEvent { linked: false, .. })]
        ),
        "{events:?}"
    );
    let events = step(
        "mutation { createSchool(input: { name: \"North\" }) { id } }",
        json!({}),
    )
    .await;
    let [Event::Organisation(created)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (created.change, created.tenant_id),
        (OrganisationChange::Created, alpha)
    );
    let school = created.school_id.unwrap();
    let events = step(
        "mutation($u: UUID!, $s: UUID!) { updateUser(id: $u, input: { schoolId: $s }) { id } }",
        json!({ "u": member, "s": school }),
    )
    .await;
    assert!(
        matches!(&events[..], [Event::Membership(e)] if e.change == MembershipChange::SchoolChanged),
        "{events:?}"
    );
    let events = step(
        "mutation($s: UUID!) { deleteSchool(id: $s) }",
        json!({ "s": school }),
    )
    .await;
    assert!(
        matches!(&events[..], [Event::Organisation(e)] if e.change == OrganisationChange::Deleted && e.school_id == Some(school)),
        "{events:?}"
    );
    let events = step(
        "mutation($u: UUID!) { removeMembership(userId: $u) }",
        json!({ "u": member }),
    )
    .await;
    assert!(
        matches!(&events[..], [Event::Membership(e)] if e.change == MembershipChange::Removed),
        "{events:?}"
    );
    let events = step(
        "mutation($u: UUID!) { deleteUser(id: $u) }",
        json!({ "u": world.users["other_user"] }),
    )
    .await;
    assert!(
        events
            .iter()
            .any(|event| matches!(event, Event::Account(e) if e.change == AccountChange::Deleted)),
        "{events:?}"
    );
    // Its session went with it: announced, and so is its empty lock state.
    assert!(
        events.iter().any(|event| matches!(event, Event::Session(e) if e.change == SessionChange::Deleted && e.user_id == world.users["other_user"])),
        "{events:?}"
    );
    assert!(
        matches!(events.last(), Some(Event::LockState(e)) if e.user_id == world.users["other_user"] && e.state.sessions.is_empty()),
        "{events:?}"
    );
    let events = step(
        "mutation($t: UUID!) { deleteTenant(id: $t) }",
        json!({ "t": beta }),
    )
    .await;
    assert!(
        matches!(&events[..], [Event::Session(gone), Event::Organisation(e), Event::LockState(lock)]
            if gone.change == SessionChange::Deleted && gone.tenant_id == beta
                && e.change == OrganisationChange::Deleted && e.tenant_id == beta && e.school_id.is_none()
                && lock.user_id == world.users["beta_user"] && lock.state.sessions.is_empty()),
        "{events:?}"
    );

    // From the command line too.
    let now = app.state.clock.now();
    let email = crate::fixtures::email("admin");
    session_manager::unit_of_work::write_detached(&app.db, now, async |txn| {
        session_manager::services::super_admins::promote(txn, now, &email).await
    })
    .await
    .unwrap();
    let (events, _) = logged_since(&app, at).await;
    assert!(
        matches!(&events[..], [Event::Account(e)] if e.change == AccountChange::Promoted && e.user_id == world.users["admin"]),
        "{events:?}"
    );
}

/// A login session left without any tenant is moved (and announced) once;
/// its refused requests after that write nothing.
async fn a_login_session_without_any_tenant_is_announced_once_not_per_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let member = world.login(&app, "beta_user").await;
    let admin = world.login(&app, "other_admin").await;
    app.ok_as(
        &admin,
        "mutation($u: UUID!) { removeMembership(userId: $u) }",
        json!({ "u": world.users["beta_user"] }),
    )
    .await;
    let before = event_log::last_id(&app.db).await.unwrap().unwrap_or(0);
    let mut codes = Vec::new();
    for _ in 0..3 {
        let error = app
            .error_as(Some(&member), "{ me { user { id } } }", json!({}))
            .await;
        codes.push(error_code(&error).to_owned());
    }
    assert_eq!(codes, ["FORBIDDEN"; 3]);
    let (events, _) = logged_since(&app, before).await;
    assert_eq!(events.len(), 1, "one move to no tenant, then nothing: {events:?}");
}
