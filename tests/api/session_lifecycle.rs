//! Starting, creating, updating, ending, revoking and deleting sessions; the
//! state machine; configs; filters and ordering.

use chrono::Duration;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::fixtures::World;
use crate::helpers::{Backend, TestApp, error_code, test_epoch};

const START: &str = "mutation($u: UUID!, $g: UUID, $input: StartSessionInput) {
  startSession(userId: $u, guardianId: $g, input: $input) {
    id name sessionType status startTime endTime
    user { id } guardian { id }
    config { label notifyOnUnlock customMessage lockProfile { lockedApps whitelist } }
  }
}";

fn code_and_field(error: &Value) -> (&str, &str) {
    (
        error_code(error),
        error["extensions"]["field"].as_str().unwrap_or_default(),
    )
}

async fn a_guardian_starts_a_session_with_a_config_for_a_supervised_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    let input = json!({
        "name": "Study mode",
        "durationMinutes": 90,
        "config": {
            "label": "study mode",
            "lockProfile": { "lockedApps": ["TikTok", "youtube"], "whitelist": ["duolingo"] },
            "customMessage": "Alex stopped studying",
        },
    });
    let data = app
        .ok_as(
            &guardian,
            START,
            json!({ "u": world.users["user"], "input": input }),
        )
        .await;
    let session = &data["startSession"];
    assert_eq!(session["name"], "Study mode");
    assert_eq!(session["sessionType"], "Linear Flow");
    assert_eq!(session["status"], "ACTIVE");
    assert_eq!(session["startTime"], json!(test_epoch().to_rfc3339()));
    assert_eq!(
        session["endTime"],
        json!((test_epoch() + Duration::minutes(90)).to_rfc3339())
    );
    assert_eq!(session["user"]["id"], json!(world.users["user"]));
    assert_eq!(session["guardian"]["id"], json!(world.users["guardian"]));
    assert_eq!(
        session["config"],
        json!({
            "label": "study mode",
            "notifyOnUnlock": true,
            "customMessage": "Alex stopped studying",
            "lockProfile": { "lockedApps": ["tiktok", "youtube"], "whitelist": ["duolingo"] },
        })
    );
    let active = app
        .ok_as(
            &guardian,
            "query($u: UUID!) { activeSession(userId: $u) { sessionId lockProfile { lockedApps } } }",
            json!({ "u": world.users["user"] }),
        )
        .await;
    assert_eq!(
        active["activeSession"]["sessionId"], session["id"],
        "the newest session is the one in force"
    );
}

async fn who_may_start_a_session_for_whom(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let tokens: Vec<(&str, String)> = {
        let mut tokens = Vec::new();
        for handle in ["user", "other_guardian", "admin", "other_admin"] {
            tokens.push((handle, world.login(&app, handle).await));
        }
        tokens
    };
    let token = |handle: &str| {
        tokens
            .iter()
            .find(|(h, _)| *h == handle)
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    let user = world.users["user"];
    let error = app
        .error_as(
            Some(&token("user")),
            START,
            json!({ "u": world.users["other_user"] }),
        )
        .await;
    assert_eq!(
        error_code(&error),
        "FORBIDDEN",
        "a supervised user starts no sessions for others"
    );
    let error = app
        .error_as(Some(&token("other_guardian")), START, json!({ "u": user }))
        .await;
    assert_eq!(
        error_code(&error),
        "NOT_FOUND",
        "a guardian reaches only the users they supervise"
    );
    let error = app
        .error_as(Some(&token("other_admin")), START, json!({ "u": user }))
        .await;
    assert_eq!(
        error_code(&error),
        "NOT_FOUND",
        "another tenant's admin does not see the user"
    );
    let error = app
        .error_as(
            Some(&token("admin")),
            START,
            json!({ "u": user, "g": world.users["other_guardian"] }),
        )
        .await;
    assert_eq!(code_and_field(&error), ("BAD_USER_INPUT", "guardianId"));
    let data = app
        .ok_as(
            &token("admin"),
            START,
            json!({ "u": user, "g": world.users["guardian"] }),
        )
        .await;
    assert_eq!(
        data["startSession"]["guardian"]["id"],
        json!(world.users["guardian"])
    );
    let data = app.ok_as(&token("admin"), START, json!({ "u": user })).await;
    assert_eq!(data["startSession"]["guardian"], Value::Null);
}

async fn start_inputs_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    let user = world.users["user"];
    let past = (test_epoch() - Duration::minutes(1)).to_rfc3339();
    let far = (test_epoch() + Duration::minutes(7 * 24 * 60 + 1)).to_rfc3339();
    for (input, field) in [
        (json!({ "durationMinutes": 0 }), "durationMinutes"),
        (json!({ "durationMinutes": 10081 }), "durationMinutes"),
        (
            json!({ "durationMinutes": 10, "endTime": far }),
            "durationMinutes",
        ),
        (json!({ "endTime": past }), "endTime"),
        (json!({ "endTime": far }), "endTime"),
        (json!({ "name": "   " }), "name"),
        (json!({ "name": "x".repeat(256) }), "name"),
        (json!({ "sessionType": "x".repeat(51) }), "sessionType"),
        (
            json!({ "config": { "lockProfile": { "lockedApps": ["tiktok"], "whitelist": ["TikTok"] } } }),
            "lockProfile",
        ),
        (
            json!({ "config": { "lockProfile": { "lockedApps": ["not an app"] } } }),
            "lockProfile.lockedApps",
        ),
        (
            json!({ "config": { "lockProfile": { "lockedApps": [], "whitelist": ["a", "a"] } } }),
            "lockProfile.whitelist",
        ),
        (json!({ "config": { "label": "x".repeat(256) } }), "label"),
        (
            json!({ "config": { "customMessage": "x".repeat(1001) } }),
            "customMessage",
        ),
    ] {
        let error = app
            .error_as(Some(&guardian), START, json!({ "u": user, "input": input }))
            .await;
        assert_eq!(
            code_and_field(&error),
            ("BAD_USER_INPUT", field),
            "{input}: {error}"
        );
    }
    let boundary =
        json!({ "name": "x".repeat(255), "durationMinutes": 10080, "config": { "label": "x".repeat(255) } });
    app.ok_as(&guardian, START, json!({ "u": user, "input": boundary }))
        .await;
    let count = app
        .ok_as(&guardian, "{ sessions { totalCount } }", json!({}))
        .await;
    assert_eq!(
        count["sessions"]["totalCount"], 2,
        "nothing of the rejected starts was written"
    );
}

async fn a_user_creates_updates_and_deletes_their_own_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let user = world.login(&app, "user").await;
    let created = app
        .ok_as(&user, "mutation { createSession(input: { name: \"Reading\", sessionType: \"Free Flow\" }) { id sessionType guardian { id } endTime } }", json!({}))
        .await;
    let id = created["createSession"]["id"].clone();
    assert_eq!(created["createSession"]["sessionType"], "Free Flow");
    assert_eq!(created["createSession"]["guardian"], Value::Null);
    let end = (test_epoch() + Duration::hours(1)).to_rfc3339();
    let updated = app
        .ok_as(&user, "mutation($id: UUID!, $end: DateTime!) { updateSession(id: $id, input: { name: \"Reading 2\", endTime: $end }) { name endTime } }", json!({ "id": id, "end": end }))
        .await;
    assert_eq!(
        updated["updateSession"],
        json!({ "name": "Reading 2", "endTime": end })
    );
    let deleted = app
        .ok_as(
            &user,
            "mutation($id: UUID!) { deleteSession(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(deleted["deleteSession"], id);
    let error = app
        .error_as(
            Some(&user),
            "query($id: UUID!) { session(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&error), "NOT_FOUND");
    let error = app
        .error_as(
            Some(&user),
            "mutation($id: UUID!) { deleteSession(id: $id) }",
            json!({ "id": world.sessions["user"] }),
        )
        .await;
    assert_eq!(
        error_code(&error),
        "FORBIDDEN",
        "a guardian's session is not the user's to delete"
    );
    let guardian = world.login(&app, "guardian").await;
    app.ok_as(
        &guardian,
        "mutation($id: UUID!) { deleteSession(id: $id) }",
        json!({ "id": world.sessions["user"] }),
    )
    .await;
}

async fn nothing_leaves_a_final_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let user = world.login(&app, "user").await;
    let guardian = world.login(&app, "guardian").await;
    let id = world.sessions["user"];
    let error = app
        .error_as(
            Some(&user),
            "mutation($id: UUID!) { revokeSession(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&error), "FORBIDDEN", "a supervised user cannot revoke");
    let revoked = app
        .ok_as(
            &guardian,
            "mutation($id: UUID!) { revokeSession(id: $id) { status endTime } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        revoked["revokeSession"],
        json!({ "status": "REVOKED", "endTime": test_epoch().to_rfc3339() })
    );
    for mutation in [
        "mutation($id: UUID!) { endSession(id: $id) { id } }",
        "mutation($id: UUID!) { revokeSession(id: $id) { id } }",
        "mutation($id: UUID!) { updateSession(id: $id, input: { name: \"x\" }) { id } }",
        "mutation($id: UUID!) { setSessionConfig(sessionId: $id, input: { label: \"x\" }) { id } }",
    ] {
        let error = app.error_as(Some(&guardian), mutation, json!({ "id": id })).await;
        assert_eq!(error_code(&error), "CONFLICT", "{mutation}");
        assert!(error["message"].as_str().unwrap().contains("revoked"), "{error}");
    }
    let state = app
        .ok_as(
            &guardian,
            "query($id: UUID!) { isSessionActive(sessionId: $id) { active status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        state["isSessionActive"],
        json!({ "active": false, "status": "REVOKED" })
    );
}

async fn sessions_filter_by_status_people_type_and_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let guardian = world.login(&app, "guardian").await;
    let short = app
        .ok_as(&guardian, START, json!({ "u": world.users["user"], "input": { "name": "Short", "durationMinutes": 10, "sessionType": "Quiz" } }))
        .await;
    app.clock.advance(Duration::minutes(20));
    let ended = app
        .ok_as(
            &guardian,
            START,
            json!({ "u": world.users["user"], "input": { "name": "Ended" } }),
        )
        .await;
    app.ok_as(
        &guardian,
        "mutation($id: UUID!) { endSession(id: $id) { id } }",
        json!({ "id": ended["startSession"]["id"] }),
    )
    .await;
    const LIST: &str = "query($filter: SessionFilterInput) { sessions(filter: $filter, orderBy: { field: NAME, direction: ASC }) { totalCount edges { node { name status } } } }";
    let names = |data: &Value| -> Vec<String> {
        data["sessions"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for (filter, expected) in [
        (json!({}), vec!["Ended", "Reading", "Short", "Study mode"]),
        (json!({ "status": ["ACTIVE"] }), vec!["Reading", "Study mode"]),
        (json!({ "status": ["EXPIRED"] }), vec!["Short"]),
        (json!({ "status": ["ENDED", "EXPIRED"] }), vec!["Ended", "Short"]),
        (json!({ "userId": world.users["other_user"] }), vec!["Reading"]),
        (
            json!({ "guardianId": world.users["guardian"] }),
            vec!["Ended", "Short", "Study mode"],
        ),
        (json!({ "sessionType": "Quiz" }), vec!["Short"]),
        (
            json!({ "startedAfter": (test_epoch() + Duration::minutes(1)).to_rfc3339() }),
            vec!["Ended"],
        ),
        (
            json!({ "startedBefore": (test_epoch() + Duration::minutes(1)).to_rfc3339() }),
            vec!["Reading", "Short", "Study mode"],
        ),
        (
            json!({ "endingBefore": (test_epoch() + Duration::minutes(30)).to_rfc3339() }),
            vec!["Ended", "Short"],
        ),
    ] {
        let data = app.ok_as(&admin, LIST, json!({ "filter": filter })).await;
        assert_eq!(names(&data), expected, "{filter}");
        assert_eq!(data["sessions"]["totalCount"], expected.len(), "{filter}");
    }
    let error = app
        .error_as(Some(&admin), LIST, json!({ "filter": { "startedAfter": test_epoch().to_rfc3339(), "startedBefore": test_epoch().to_rfc3339() } }))
        .await;
    assert_eq!(code_and_field(&error), ("BAD_USER_INPUT", "filter.startedBefore"));
    assert!(short["startSession"]["id"].is_string());
}

async fn every_order_pages_through_all_sessions_exactly_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    for (minute, name) in [(1, "b"), (1, "a"), (2, "c"), (3, "a"), (3, "d")] {
        app.clock.set(test_epoch() + Duration::minutes(minute));
        app.ok_as(
            &guardian,
            START,
            json!({ "u": world.users["user"], "input": { "name": name } }),
        )
        .await;
    }
    const PAGE: &str = "query($order: SessionOrderBy, $after: String) {
      sessions(orderBy: $order, first: 2, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id name startTime createdAt } } }
    }";
    for field in ["CREATED_AT", "START_TIME", "NAME"] {
        for direction in ["ASC", "DESC"] {
            let order = json!({ "field": field, "direction": direction });
            let mut seen: Vec<Value> = Vec::new();
            let mut after = Value::Null;
            loop {
                let data = app
                    .ok_as(&guardian, PAGE, json!({ "order": order, "after": after }))
                    .await;
                seen.extend(
                    data["sessions"]["edges"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|edge| edge["node"].clone()),
                );
                if data["sessions"]["pageInfo"]["hasNextPage"] == false {
                    break;
                }
                after = data["sessions"]["pageInfo"]["endCursor"].clone();
            }
            assert_eq!(seen.len(), 6, "{order}: every session once");
            let key = |node: &Value| match field {
                "NAME" => node["name"].as_str().unwrap().to_owned(),
                "START_TIME" => node["startTime"].as_str().unwrap().to_owned(),
                _ => node["createdAt"].as_str().unwrap().to_owned(),
            };
            let keys: Vec<String> = seen.iter().map(key).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            if direction == "DESC" {
                sorted.reverse();
            }
            assert_eq!(keys, sorted, "{order}");
            let mut ids: Vec<&str> = seen.iter().map(|node| node["id"].as_str().unwrap()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 6, "{order}: no session twice");
        }
    }
    let first = app
        .ok_as(&guardian, PAGE, json!({ "order": { "field": "NAME" } }))
        .await;
    let error = app
        .error_as(Some(&guardian), PAGE, json!({ "order": { "field": "START_TIME" }, "after": first["sessions"]["pageInfo"]["endCursor"] }))
        .await;
    assert_eq!(
        code_and_field(&error),
        ("BAD_USER_INPUT", "after"),
        "a cursor of another order is refused"
    );
}

backend_tests!(
    a_guardian_starts_a_session_with_a_config_for_a_supervised_user,
    who_may_start_a_session_for_whom,
    start_inputs_are_validated,
    a_user_creates_updates_and_deletes_their_own_session,
    nothing_leaves_a_final_state,
    sessions_filter_by_status_people_type_and_time,
    every_order_pages_through_all_sessions_exactly_once,
);
