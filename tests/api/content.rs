//! Modules and videos: ordering, validation, row-level security, atomicity
//! and concurrency.

use std::collections::{BTreeSet, HashMap};

use chrono::Duration;
use entity::session::SessionStatus;
use entity::{module, session, video};
use futures_util::future::join_all;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::backend_tests;
use crate::fixtures::World;
use crate::helpers::{Backend, SERVICE_TOKEN, TestApp, error_code};

const CREATE: &str = "mutation($s: UUID!, $input: CreateModuleInput!) { createModule(sessionId: $s, input: $input) { id name orderIndex createdAt updatedAt } }";
const RENAME: &str =
    "mutation($id: UUID!, $name: String!) { renameModule(id: $id, name: $name) { id name orderIndex } }";
const MOVE: &str =
    "mutation($id: UUID!, $p: Int!) { moveModule(id: $id, position: $p) { id name orderIndex updatedAt } }";
const DELETE: &str = "mutation($id: UUID!) { deleteModule(id: $id) { id name orderIndex } }";
const REORDER: &str = "mutation($s: UUID!, $ids: [UUID!]!) { reorderModules(sessionId: $s, moduleIds: $ids) { id name orderIndex } }";
const ADD_VIDEO: &str = "mutation($m: UUID!, $input: AddVideoInput!) { addVideo(moduleId: $m, input: $input) { id moduleId fileName fileUrl fileSize mimeType } }";
const UPDATE_VIDEO: &str = "mutation($id: UUID!, $input: UpdateVideoInput!) { updateVideo(id: $id, input: $input) { id fileName fileUrl fileSize mimeType updatedAt } }";
const DELETE_VIDEO: &str = "mutation($id: UUID!) { deleteVideo(id: $id) { id fileName } }";
const MODULE: &str =
    "query($id: UUID!) { module(id: $id) { id name orderIndex videos { id fileName fileSize } } }";
const VIDEO: &str = "query($id: UUID!) { video(id: $id) { id moduleId fileName fileUrl fileSize mimeType } }";

/// 2 GiB, the default largest video.
const TWO_GIB: i64 = 2 * 1024 * 1024 * 1024;

/// The application, the fixture world, and `user`'s token.
async fn start(backend: Backend) -> (TestApp, World, String) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "guardian").await;
    (app, world, token)
}

/// The modules of a session as stored: (name, position), in order.
async fn stored_order(app: &TestApp, session_id: Uuid) -> Vec<(String, i32)> {
    module::Entity::find()
        .filter(module::Column::SessionId.eq(session_id))
        .order_by_asc(module::Column::OrderIndex)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.name, row.order_index))
        .collect()
}

/// The names of a session's modules in order, after checking that the
/// positions are exactly `0..n-1`.
async fn names_in_order(app: &TestApp, session_id: Uuid) -> Vec<String> {
    let order = stored_order(app, session_id).await;
    let positions: Vec<i32> = order.iter().map(|(_, position)| *position).collect();
    let dense: Vec<i32> = (0..).take(order.len()).collect();
    assert_eq!(positions, dense, "positions must be dense: {order:?}");
    order.into_iter().map(|(name, _)| name).collect()
}

/// The id of a session's module named `name`.
async fn module_id(app: &TestApp, session_id: Uuid, name: &str) -> Uuid {
    module::Entity::find()
        .filter(module::Column::SessionId.eq(session_id))
        .filter(module::Column::Name.eq(name))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("a module named {name}"))
        .id
}

/// The id of the one video of a module.
async fn video_of(app: &TestApp, module_id: Uuid) -> Uuid {
    video::Entity::find()
        .filter(video::Column::ModuleId.eq(module_id))
        .one(&app.db)
        .await
        .unwrap()
        .expect("a video")
        .id
}

/// Creates modules named `names`, appended, as `token`.
async fn append(app: &TestApp, token: &str, session_id: Uuid, names: &[&str]) {
    for name in names {
        app.ok_as(
            token,
            CREATE,
            json!({ "s": session_id, "input": { "name": name } }),
        )
        .await;
    }
}

/// The names of a list of modules returned by a mutation, checking their positions are `0..n-1`.
fn names(modules: &Value) -> Vec<String> {
    let modules = modules.as_array().expect("a list of modules");
    for (index, module) in modules.iter().enumerate() {
        assert_eq!(module["orderIndex"], json!(index), "{modules:?}");
    }
    modules
        .iter()
        .map(|module| module["name"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_bad_input(error: &Value, field: &str) {
    assert_eq!(error_code(error), "BAD_USER_INPUT", "{error:#}");
    assert_eq!(error["extensions"]["field"], field, "{error:#}");
}

fn a_video() -> Value {
    json!({
        "fileName": "intro.mp4",
        "fileUrl": "https://videos.example.test/intro.mp4",
        "fileSize": 1_048_576,
        "mimeType": "video/mp4",
    })
}

/// `a_video()` with `field` set to `value`.
fn a_video_with(field: &str, value: Value) -> Value {
    let mut input = a_video();
    input[field] = value;
    input
}

async fn modules_are_appended_by_default_and_inserted_at_a_position(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let session = world.sessions["user"];
    let data = app
        .ok_as(
            &token,
            CREATE,
            json!({ "s": session, "input": { "name": "  Fractions  " } }),
        )
        .await;
    assert_eq!(data["createModule"]["name"], "Fractions", "names are trimmed");
    assert_eq!(data["createModule"]["orderIndex"], 1, "appended after Lesson");
    assert_eq!(data["createModule"]["createdAt"], "2026-01-05T09:00:00+00:00");
    let data = app
        .ok_as(
            &token,
            CREATE,
            json!({ "s": session, "input": { "name": "Warm-up", "position": 0 } }),
        )
        .await;
    assert_eq!(data["createModule"]["orderIndex"], 0);
    let data = app
        .ok_as(
            &token,
            CREATE,
            json!({ "s": session, "input": { "name": "Practice", "position": 2 } }),
        )
        .await;
    assert_eq!(data["createModule"]["orderIndex"], 2);
    let data = app
        .ok_as(
            &token,
            CREATE,
            json!({ "s": session, "input": { "name": "Quiz", "position": 4 } }),
        )
        .await;
    assert_eq!(data["createModule"]["orderIndex"], 4, "position n appends");
    assert_eq!(
        names_in_order(&app, session).await,
        ["Warm-up", "Lesson", "Practice", "Fractions", "Quiz"]
    );
    let session_view = app
        .ok_as(
            &token,
            "query($id: UUID!) { session(id: $id) { modules { name orderIndex } } }",
            json!({ "id": session }),
        )
        .await;
    assert_eq!(
        names(&session_view["session"]["modules"]),
        ["Warm-up", "Lesson", "Practice", "Fractions", "Quiz"]
    );
}

async fn a_position_outside_the_session_is_rejected_and_changes_nothing(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let session = world.sessions["user"];
    append(&app, &token, session, &["Two", "Three"]).await;
    let before = stored_order(&app, session).await;
    for position in [-1, 4, i32::MAX, i32::MIN] {
        let error = app
            .error_as(
                Some(&token),
                CREATE,
                json!({ "s": session, "input": { "name": "Nope", "position": position } }),
            )
            .await;
        assert_bad_input(&error, "position");
        assert!(
            error["message"].as_str().unwrap().contains("between 0 and 3"),
            "{error}"
        );
    }
    let two = module_id(&app, session, "Two").await;
    for position in [-1, 3, i32::MAX] {
        let error = app
            .error_as(Some(&token), MOVE, json!({ "id": two, "p": position }))
            .await;
        assert_bad_input(&error, "position");
        assert!(
            error["message"].as_str().unwrap().contains("between 0 and 2"),
            "{error}"
        );
    }
    assert_eq!(stored_order(&app, session).await, before);
}

async fn a_module_is_renamed_within_the_name_limits(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let session = world.sessions["user"];
    let lesson = module_id(&app, session, "Lesson").await;
    let data = app
        .ok_as(&token, RENAME, json!({ "id": lesson, "name": " Lesson one " }))
        .await;
    assert_eq!(
        data["renameModule"],
        json!({ "id": lesson, "name": "Lesson one", "orderIndex": 0 })
    );
    let longest = "é".repeat(255);
    let data = app
        .ok_as(&token, RENAME, json!({ "id": lesson, "name": longest }))
        .await;
    assert_eq!(data["renameModule"]["name"], longest.as_str());
    for bad in ["".to_owned(), "   ".to_owned(), "é".repeat(256)] {
        let error = app
            .error_as(Some(&token), RENAME, json!({ "id": lesson, "name": bad }))
            .await;
        assert_bad_input(&error, "name");
        let error = app
            .error_as(
                Some(&token),
                CREATE,
                json!({ "s": session, "input": { "name": bad } }),
            )
            .await;
        assert_bad_input(&error, "name");
    }
    let data = app
        .ok_as(
            &token,
            CREATE,
            json!({ "s": session, "input": { "name": "x".repeat(255) } }),
        )
        .await;
    assert_eq!(data["createModule"]["orderIndex"], 1);
    assert_eq!(stored_order(&app, session).await.len(), 2);
}

async fn moving_a_module_shifts_the_ones_in_between(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let session = world.sessions["user"];
    append(&app, &token, session, &["B", "C", "D"]).await;
    let lesson = module_id(&app, session, "Lesson").await;
    app.clock.advance(Duration::minutes(5));
    let data = app.ok_as(&token, MOVE, json!({ "id": lesson, "p": 2 })).await;
    assert_eq!(names(&data["moveModule"]), ["B", "C", "Lesson", "D"]);
    let updated: Vec<&str> = data["moveModule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|module| module["updatedAt"].as_str().unwrap())
        .collect();
    assert_eq!(
        updated,
        [
            "2026-01-05T09:05:00+00:00",
            "2026-01-05T09:05:00+00:00",
            "2026-01-05T09:05:00+00:00",
            "2026-01-05T09:00:00+00:00",
        ],
        "the moved modules are touched, D is not"
    );
    let d = module_id(&app, session, "D").await;
    let data = app.ok_as(&token, MOVE, json!({ "id": d, "p": 0 })).await;
    assert_eq!(names(&data["moveModule"]), ["D", "B", "C", "Lesson"]);
    let data = app.ok_as(&token, MOVE, json!({ "id": d, "p": 0 })).await;
    assert_eq!(
        names(&data["moveModule"]),
        ["D", "B", "C", "Lesson"],
        "a move in place"
    );
    let data = app.ok_as(&token, MOVE, json!({ "id": d, "p": 3 })).await;
    assert_eq!(names(&data["moveModule"]), ["B", "C", "Lesson", "D"]);
    assert_eq!(names_in_order(&app, session).await, ["B", "C", "Lesson", "D"]);
}

async fn deleting_a_module_closes_the_gap_and_removes_its_videos(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let session = world.sessions["user"];
    append(&app, &token, session, &["B", "C"]).await;
    let lesson = module_id(&app, session, "Lesson").await;
    let video = video_of(&app, lesson).await;
    let data = app.ok_as(&token, DELETE, json!({ "id": lesson })).await;
    assert_eq!(names(&data["deleteModule"]), ["B", "C"]);
    assert_eq!(names_in_order(&app, session).await, ["B", "C"]);
    let error = app.error_as(Some(&token), VIDEO, json!({ "id": video })).await;
    assert_eq!(error_code(&error), "NOT_FOUND");
    let error = app.error_as(Some(&token), MODULE, json!({ "id": lesson })).await;
    assert_eq!(error_code(&error), "NOT_FOUND");
    let error = app.error_as(Some(&token), DELETE, json!({ "id": lesson })).await;
    assert_eq!(error_code(&error), "NOT_FOUND", "deleting twice");
    let c = module_id(&app, session, "C").await;
    let data = app.ok_as(&token, DELETE, json!({ "id": c })).await;
    assert_eq!(names(&data["deleteModule"]), ["B"]);
    let b = module_id(&app, session, "B").await;
    let data = app.ok_as(&token, DELETE, json!({ "id": b })).await;
    assert_eq!(data["deleteModule"], json!([]));
    let data = app
        .ok_as(&token, REORDER, json!({ "s": session, "ids": [] }))
        .await;
    assert_eq!(
        data["reorderModules"],
        json!([]),
        "an empty session reorders to nothing"
    );
}

async fn reordering_puts_every_module_in_the_given_order(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let session = world.sessions["user"];
    append(&app, &token, session, &["B", "C", "D"]).await;
    let mut ids = HashMap::new();
    for name in ["Lesson", "B", "C", "D"] {
        ids.insert(name, module_id(&app, session, name).await);
    }
    let data = app
        .ok_as(
            &token,
            REORDER,
            json!({ "s": session, "ids": [ids["D"], ids["Lesson"], ids["C"], ids["B"]] }),
        )
        .await;
    assert_eq!(names(&data["reorderModules"]), ["D", "Lesson", "C", "B"]);
    assert_eq!(names_in_order(&app, session).await, ["D", "Lesson", "C", "B"]);
    let data = app
        .ok_as(
            &token,
            REORDER,
            json!({ "s": session, "ids": [ids["D"], ids["Lesson"], ids["C"], ids["B"]] }),
        )
        .await;
    assert_eq!(
        names(&data["reorderModules"]),
        ["D", "Lesson", "C", "B"],
        "the same order again"
    );
}

async fn a_reorder_must_name_every_module_exactly_once(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let session = world.sessions["user"];
    append(&app, &token, session, &["B", "C"]).await;
    let lesson = module_id(&app, session, "Lesson").await;
    let b = module_id(&app, session, "B").await;
    let c = module_id(&app, session, "C").await;
    let foreign = module_id(&app, world.sessions["other_user"], "Lesson").await;
    let unknown = Uuid::now_v7();
    let before = stored_order(&app, session).await;
    let cases = [
        (json!([c, b]), vec![format!("missing {lesson}")]),
        (
            json!([c, b, lesson, foreign]),
            vec![format!("not modules of this session: {foreign}")],
        ),
        (
            json!([c, b, lesson, unknown]),
            vec![format!("not modules of this session: {unknown}")],
        ),
        (
            json!([c, b, b, lesson]),
            vec![format!("listed more than once: {b}")],
        ),
        (
            json!([c, c, unknown]),
            vec![
                format!("missing {lesson}, {b}"),
                format!("listed more than once: {c}"),
                format!("not modules of this session: {unknown}"),
            ],
        ),
        (json!([]), vec![format!("missing {lesson}, {b}, {c}")]),
    ];
    for (ids, expected) in cases {
        let error = app
            .error_as(Some(&token), REORDER, json!({ "s": session, "ids": ids }))
            .await;
        assert_bad_input(&error, "moduleIds");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("each of the session's 3 modules exactly once"),
            "{message}"
        );
        for part in expected {
            assert!(message.contains(&part), "{message} should say {part}");
        }
    }
    assert_eq!(stored_order(&app, session).await, before);
}

async fn videos_are_added_updated_and_deleted(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let lesson = module_id(&app, world.sessions["user"], "Lesson").await;
    let data = app
        .ok_as(&token, ADD_VIDEO, json!({ "m": lesson, "input": a_video() }))
        .await;
    let added = &data["addVideo"];
    assert_eq!(added["moduleId"], json!(lesson));
    assert_eq!(added["fileName"], "intro.mp4");
    assert_eq!(added["fileUrl"], "https://videos.example.test/intro.mp4");
    assert_eq!(added["fileSize"], 1_048_576);
    assert_eq!(added["mimeType"], "video/mp4");
    let id = added["id"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::seconds(1));
    app.ok_as(
        &token,
        ADD_VIDEO,
        json!({ "m": lesson, "input": a_video_with("fileName", json!("outro.mp4")) }),
    )
    .await;
    let data = app.ok_as(&token, MODULE, json!({ "id": lesson })).await;
    let files: Vec<&str> = data["module"]["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|video| video["fileName"].as_str().unwrap())
        .filter(|name| *name != "lesson.mp4")
        .collect();
    assert_eq!(files, ["intro.mp4", "outro.mp4"], "oldest first");

    app.clock.advance(Duration::minutes(1));
    let data = app
        .ok_as(
            &token,
            UPDATE_VIDEO,
            json!({ "id": id, "input": { "fileName": "intro-v2.webm", "mimeType": "VIDEO/WEBM" } }),
        )
        .await;
    assert_eq!(
        data["updateVideo"],
        json!({
            "id": id,
            "fileName": "intro-v2.webm",
            "fileUrl": "https://videos.example.test/intro.mp4",
            "fileSize": 1_048_576,
            "mimeType": "video/webm",
            "updatedAt": "2026-01-05T09:01:01+00:00",
        })
    );
    let data = app
        .ok_as(
            &token,
            UPDATE_VIDEO,
            json!({ "id": id, "input": { "fileUrl": "http://cdn.example.test/v2.webm", "fileSize": TWO_GIB } }),
        )
        .await;
    assert_eq!(data["updateVideo"]["fileUrl"], "http://cdn.example.test/v2.webm");
    assert_eq!(data["updateVideo"]["fileSize"], TWO_GIB);
    let data = app.ok_as(&token, VIDEO, json!({ "id": id })).await;
    assert_eq!(data["video"]["fileName"], "intro-v2.webm");

    let data = app.ok_as(&token, DELETE_VIDEO, json!({ "id": id })).await;
    assert_eq!(
        data["deleteVideo"],
        json!({ "id": id, "fileName": "intro-v2.webm" })
    );
    let error = app.error_as(Some(&token), VIDEO, json!({ "id": id })).await;
    assert_eq!(error_code(&error), "NOT_FOUND");
    let error = app
        .error_as(Some(&token), DELETE_VIDEO, json!({ "id": id }))
        .await;
    assert_eq!(error_code(&error), "NOT_FOUND");
    let error = app
        .error_as(
            Some(&token),
            ADD_VIDEO,
            json!({ "m": Uuid::now_v7(), "input": a_video() }),
        )
        .await;
    assert_eq!(error_code(&error), "NOT_FOUND");
}

async fn video_sizes_are_accepted_from_one_byte_to_the_maximum(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let lesson = module_id(&app, world.sessions["user"], "Lesson").await;
    for size in [1, TWO_GIB] {
        let data = app
            .ok_as(
                &token,
                ADD_VIDEO,
                json!({ "m": lesson, "input": a_video_with("fileSize", json!(size)) }),
            )
            .await;
        assert_eq!(
            data["addVideo"]["fileSize"], size,
            "sizes beyond 32 bits are exact"
        );
    }
    for size in [0, -1, TWO_GIB + 1, i64::MAX] {
        let error = app
            .error_as(
                Some(&token),
                ADD_VIDEO,
                json!({ "m": lesson, "input": a_video_with("fileSize", json!(size)) }),
            )
            .await;
        assert_bad_input(&error, "fileSize");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("between 1 and 2147483648 bytes"),
            "{error}"
        );
    }
    for not_a_size in [json!(1.5), json!("1024")] {
        let error = app
            .error_as(
                Some(&token),
                ADD_VIDEO,
                json!({ "m": lesson, "input": a_video_with("fileSize", not_a_size) }),
            )
            .await;
        assert!(error["message"].as_str().unwrap().contains("FileSize"), "{error}");
    }
    let video = video_of(
        &app,
        module_id(&app, world.sessions["other_user"], "Lesson").await,
    )
    .await;
    let admin = world.login(&app, "admin").await;
    let error = app
        .error_as(
            Some(&admin),
            UPDATE_VIDEO,
            json!({ "id": video, "input": { "fileSize": 0 } }),
        )
        .await;
    assert_bad_input(&error, "fileSize");
    assert_eq!(
        video::Entity::find_by_id(video)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .file_size,
        1024
    );
}

async fn the_size_limit_and_the_mime_types_are_configurable(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.content.max_video_file_size_bytes = 1000;
        settings.content.allowed_video_mime_types = vec!["video/mp4".to_owned(), "Video/X-Custom".to_owned()];
    })
    .await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "guardian").await;
    let lesson = module_id(&app, world.sessions["user"], "Lesson").await;
    let mut input = a_video_with("fileSize", json!(1000));
    input["mimeType"] = json!("video/x-custom");
    app.ok_as(&token, ADD_VIDEO, json!({ "m": lesson, "input": input }))
        .await;
    let error = app
        .error_as(
            Some(&token),
            ADD_VIDEO,
            json!({ "m": lesson, "input": a_video_with("fileSize", json!(1001)) }),
        )
        .await;
    assert_bad_input(&error, "fileSize");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("between 1 and 1000 bytes")
    );
    let mut input = a_video_with("mimeType", json!("video/webm"));
    input["fileSize"] = json!(10);
    let error = app
        .error_as(Some(&token), ADD_VIDEO, json!({ "m": lesson, "input": input }))
        .await;
    assert_bad_input(&error, "mimeType");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("must be one of video/mp4, Video/X-Custom"),
        "{error}"
    );
}

async fn only_allowed_video_mime_types_are_accepted_in_any_case(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let lesson = module_id(&app, world.sessions["user"], "Lesson").await;
    for (given, stored) in [
        ("video/mp4", "video/mp4"),
        ("video/webm", "video/webm"),
        ("video/quicktime", "video/quicktime"),
        ("video/ogg", "video/ogg"),
        ("video/x-matroska", "video/x-matroska"),
        ("video/mpeg", "video/mpeg"),
        ("VIDEO/MP4", "video/mp4"),
        (" Video/QuickTime ", "video/quicktime"),
    ] {
        let data = app
            .ok_as(
                &token,
                ADD_VIDEO,
                json!({ "m": lesson, "input": a_video_with("mimeType", json!(given)) }),
            )
            .await;
        assert_eq!(data["addVideo"]["mimeType"], stored, "{given}");
    }
    for bad in [
        "image/png",
        "video/avi",
        "video/mp4; codecs=avc1",
        "video",
        "",
        "application/octet-stream",
    ] {
        let error = app
            .error_as(
                Some(&token),
                ADD_VIDEO,
                json!({ "m": lesson, "input": a_video_with("mimeType", json!(bad)) }),
            )
            .await;
        assert_bad_input(&error, "mimeType");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("video/mp4, video/webm, video/quicktime"),
            "{error}"
        );
    }
    let count = video::Entity::find()
        .filter(video::Column::ModuleId.eq(lesson))
        .all(&app.db)
        .await
        .unwrap()
        .len();
    assert_eq!(count, 1 + 8);
}

async fn video_urls_must_be_absolute_http_urls_of_at_most_1024_characters(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let lesson = module_id(&app, world.sessions["user"], "Lesson").await;
    let base = "https://videos.example.test/";
    let longest = format!("{base}{}", "a".repeat(1024 - base.len()));
    for good in [
        "https://videos.example.test/a.mp4",
        "http://videos.example.test:8080/a.mp4?token=x#t=10",
        "HTTPS://Videos.Example.Test/a.mp4",
        longest.as_str(),
    ] {
        let data = app
            .ok_as(
                &token,
                ADD_VIDEO,
                json!({ "m": lesson, "input": a_video_with("fileUrl", json!(good)) }),
            )
            .await;
        assert_eq!(
            data["addVideo"]["fileUrl"].as_str().unwrap().to_lowercase(),
            good.to_lowercase()
        );
    }
    let too_long = format!("{longest}a");
    for bad in [
        "ftp://videos.example.test/a.mp4",
        "/videos/a.mp4",
        "a.mp4",
        "videos.example.test/a.mp4",
        "file:///videos/a.mp4",
        "javascript:alert(1)",
        "data:video/mp4;base64,AAAA",
        "https://",
        "https://user:secret@videos.example.test/a.mp4",
        "",
        too_long.as_str(),
    ] {
        let error = app
            .error_as(
                Some(&token),
                ADD_VIDEO,
                json!({ "m": lesson, "input": a_video_with("fileUrl", json!(bad)) }),
            )
            .await;
        assert_bad_input(&error, "fileUrl");
    }
    let error = app
        .error_as(
            Some(&token),
            ADD_VIDEO,
            json!({ "m": lesson, "input": a_video_with("fileUrl", json!(too_long)) }),
        )
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("at most 1024 characters (got 1025)"),
        "{error}"
    );
}

async fn video_file_names_are_plain_names_of_at_most_255_characters(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let lesson = module_id(&app, world.sessions["user"], "Lesson").await;
    let longest = format!("{}.mp4", "é".repeat(251));
    for good in [" lesson 2.mp4 ", "Lektion_ü.webm", longest.as_str()] {
        let data = app
            .ok_as(
                &token,
                ADD_VIDEO,
                json!({ "m": lesson, "input": a_video_with("fileName", json!(good)) }),
            )
            .await;
        assert_eq!(data["addVideo"]["fileName"], good.trim());
    }
    let too_long = format!("{}.mp4", "é".repeat(252));
    for bad in [
        "",
        "   ",
        "videos/a.mp4",
        "..\\a.mp4",
        "a\u{0}.mp4",
        "a\n.mp4",
        "..",
        too_long.as_str(),
    ] {
        let error = app
            .error_as(
                Some(&token),
                ADD_VIDEO,
                json!({ "m": lesson, "input": a_video_with("fileName", json!(bad)) }),
            )
            .await;
        assert_bad_input(&error, "fileName");
    }
}

async fn an_update_checks_each_given_field_and_needs_at_least_one(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let video = video_of(&app, module_id(&app, world.sessions["user"], "Lesson").await).await;
    let before = video::Entity::find_by_id(video)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    for (field, value) in [
        ("fileName", json!("a/b.mp4")),
        ("fileUrl", json!("ftp://x.test/a.mp4")),
        ("fileSize", json!(0)),
        ("mimeType", json!("image/gif")),
    ] {
        let error = app
            .error_as(
                Some(&token),
                UPDATE_VIDEO,
                json!({ "id": video, "input": { "fileName": "fine.mp4", field: value } }),
            )
            .await;
        assert_bad_input(&error, field);
    }
    for empty in [json!({}), json!({ "fileName": null })] {
        let error = app
            .error_as(Some(&token), UPDATE_VIDEO, json!({ "id": video, "input": empty }))
            .await;
        assert_bad_input(&error, "input");
    }
    let after = video::Entity::find_by_id(video)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, before, "nothing was written");
}

async fn a_failure_inside_a_mutation_leaves_the_order_as_it_was(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let session = world.sessions["user"];
    append(&app, &token, session, &["B", "C"]).await;
    // Make the database refuse a module named "boom", after the other
    // modules were already shifted down to make room for it.
    let statements: &[&str] = match app.db.get_database_backend() {
        DatabaseBackend::Postgres => &[
            "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.name = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER refuse_boom BEFORE INSERT OR UPDATE ON modules FOR EACH ROW EXECUTE FUNCTION refuse_boom()",
        ],
        _ => &[
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON modules WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END",
        ],
    };
    for statement in statements {
        app.db.execute_unprepared(statement).await.unwrap();
    }
    let before = stored_order(&app, session).await;
    let updated_before: Vec<_> = module::Entity::find()
        .filter(module::Column::SessionId.eq(session))
        .order_by_asc(module::Column::OrderIndex)
        .all(&app.db)
        .await
        .unwrap();
    app.clock.advance(Duration::minutes(1));
    let error = app
        .error_as(
            Some(&token),
            CREATE,
            json!({ "s": session, "input": { "name": "boom", "position": 0 } }),
        )
        .await;
    assert_eq!(error_code(&error), "INTERNAL");
    assert_eq!(error["message"], "internal error", "no details leak");
    assert_eq!(stored_order(&app, session).await, before);
    let updated_after: Vec<_> = module::Entity::find()
        .filter(module::Column::SessionId.eq(session))
        .order_by_asc(module::Column::OrderIndex)
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(updated_after, updated_before, "not even a timestamp moved");
    let data = app
        .ok_as(
            &token,
            CREATE,
            json!({ "s": session, "input": { "name": "fine", "position": 0 } }),
        )
        .await;
    assert_eq!(
        data["createModule"]["orderIndex"], 0,
        "the session is usable afterwards"
    );
    assert_eq!(names_in_order(&app, session).await, ["fine", "Lesson", "B", "C"]);
}

/// Runs every content query and mutation against the `user` session's
/// content as `token`; returns the error code of each (or `OK`).
async fn every_operation(app: &TestApp, world: &World, token: Option<&str>) -> Vec<(&'static str, String)> {
    let session = world.sessions["user"];
    let lesson = module_id(app, session, "Lesson").await;
    let video = video_of(app, lesson).await;
    let operations: Vec<(&'static str, &str, Value)> = vec![
        ("module", MODULE, json!({ "id": lesson })),
        ("video", VIDEO, json!({ "id": video })),
        (
            "createModule",
            CREATE,
            json!({ "s": session, "input": { "name": "New", "position": 0 } }),
        ),
        ("renameModule", RENAME, json!({ "id": lesson, "name": "Renamed" })),
        ("moveModule", MOVE, json!({ "id": lesson, "p": 0 })),
        (
            "reorderModules",
            REORDER,
            json!({ "s": session, "ids": [lesson] }),
        ),
        ("addVideo", ADD_VIDEO, json!({ "m": lesson, "input": a_video() })),
        (
            "updateVideo",
            UPDATE_VIDEO,
            json!({ "id": video, "input": { "fileName": "renamed.mp4" } }),
        ),
        ("deleteVideo", DELETE_VIDEO, json!({ "id": video })),
        ("deleteModule", DELETE, json!({ "id": lesson })),
    ];
    let mut outcomes = Vec::new();
    for (name, query, variables) in operations {
        let (_, body) = app.post_graphql_as(token, query, variables).await;
        let outcome = match body["errors"].get(0) {
            Some(error) => error_code(error).to_owned(),
            None => "OK".to_owned(),
        };
        outcomes.push((name, outcome));
    }
    outcomes
}

async fn the_guardian_and_the_tenant_admin_may_manage_the_content(backend: Backend) {
    for handle in ["guardian", "admin", "super_admin"] {
        let app = TestApp::spawn(backend.clone()).await;
        let world = World::create(&app.db).await;
        let token = world.login(&app, handle).await;
        if handle == "super_admin" {
            app.ok_as(
                &token,
                "mutation($t: UUID!) { switchTenant(tenantId: $t) { activeTenant { id } } }",
                json!({ "t": world.alpha }),
            )
            .await;
        }
        // reorderModules runs after createModule, so its list is
        // incomplete: it proves access by reaching the permutation check.
        for (operation, outcome) in every_operation(&app, &world, Some(&token)).await {
            let expected = if operation == "reorderModules" {
                "BAD_USER_INPUT"
            } else {
                "OK"
            };
            assert_eq!(outcome, expected, "{handle}: {operation}");
        }
        assert_eq!(
            names_in_order(&app, world.sessions["user"]).await,
            ["New"],
            "{handle}"
        );
    }
}

async fn a_supervised_user_reads_but_cannot_rewrite_a_guardians_session_content(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "user").await;
    for (operation, outcome) in every_operation(&app, &world, Some(&token)).await {
        let expected = if operation == "module" || operation == "video" {
            "OK"
        } else {
            "FORBIDDEN"
        };
        assert_eq!(outcome, expected, "{operation}");
    }
    assert_eq!(names_in_order(&app, world.sessions["user"]).await, ["Lesson"]);
    let own = app
        .ok_as(
            &token,
            "mutation { createSession(input: { name: \"Mine\" }) { id } }",
            json!({}),
        )
        .await;
    let created = app
        .ok_as(
            &token,
            "mutation($s: UUID!) { createModule(sessionId: $s, input: { name: \"Chapter 1\" }) { orderIndex } }",
            json!({ "s": own["createSession"]["id"] }),
        )
        .await;
    assert_eq!(
        created["createModule"]["orderIndex"], 0,
        "their own sessions are theirs to manage"
    );
}

async fn content_out_of_scope_reads_as_not_found_and_stays_untouched(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let session = world.sessions["user"];
    let lesson = module_id(&app, session, "Lesson").await;
    let video = video_of(&app, lesson).await;
    let module_before = module::Entity::find_by_id(lesson).one(&app.db).await.unwrap();
    let video_before = video::Entity::find_by_id(video).one(&app.db).await.unwrap();
    for handle in ["other_user", "other_guardian", "other_admin", "beta_user"] {
        let token = world.login(&app, handle).await;
        for (operation, outcome) in every_operation(&app, &world, Some(&token)).await {
            assert_eq!(outcome, "NOT_FOUND", "{handle}: {operation}");
        }
    }
    assert_eq!(stored_order(&app, session).await, [("Lesson".to_owned(), 0)]);
    assert_eq!(
        module::Entity::find_by_id(lesson).one(&app.db).await.unwrap(),
        module_before
    );
    assert_eq!(
        video::Entity::find_by_id(video).one(&app.db).await.unwrap(),
        video_before
    );
    let count = video::Entity::find().all(&app.db).await.unwrap().len();
    assert_eq!(count, 3, "no video was added anywhere");
}

async fn anonymous_requests_and_services_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    for (token, expected) in [(None, "UNAUTHENTICATED"), (Some(SERVICE_TOKEN), "FORBIDDEN")] {
        for (operation, outcome) in every_operation(&app, &world, token).await {
            assert_eq!(outcome, expected, "{operation}");
        }
    }
    assert_eq!(
        stored_order(&app, world.sessions["user"]).await,
        [("Lesson".to_owned(), 0)]
    );
}

async fn the_content_of_a_session_that_has_ended_cannot_change(backend: Backend) {
    for ending in ["ended", "expired", "revoked", "past its end time"] {
        let (app, world, _) = start(backend.clone()).await;
        let session = world.sessions["user"];
        let status = match ending {
            "ended" => Some(SessionStatus::Ended),
            "expired" => Some(SessionStatus::Expired),
            "revoked" => Some(SessionStatus::Revoked),
            _ => None,
        };
        match status {
            Some(status) => {
                session::ActiveModel {
                    id: Set(session),
                    status: Set(status),
                    ..Default::default()
                }
                .update(&app.db)
                .await
                .unwrap();
            }
            None => app.clock.advance(Duration::hours(2)),
        }
        // Two idle hours also ended the login session: log in again.
        let token = world.login(&app, "guardian").await;
        let mut reads = BTreeSet::new();
        for (operation, outcome) in every_operation(&app, &world, Some(&token)).await {
            if operation == "module" || operation == "video" {
                reads.insert(outcome);
            } else {
                assert_eq!(outcome, "CONFLICT", "{ending}: {operation}");
            }
        }
        assert_eq!(
            reads,
            BTreeSet::from(["OK".to_owned()]),
            "{ending}: history stays readable"
        );
        assert_eq!(stored_order(&app, session).await, [("Lesson".to_owned(), 0)]);
        let error = app
            .error_as(
                Some(&token),
                CREATE,
                json!({ "s": session, "input": { "name": "Late" } }),
            )
            .await;
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("the session has ended"),
            "{error}"
        );
    }
}

async fn concurrent_changes_to_one_session_keep_a_dense_order(backend: Backend) {
    let (app, world, token) = start(backend).await;
    let session = world.sessions["user"];
    append(&app, &token, session, &["B", "C", "D", "E", "F"]).await;
    let mut ids = HashMap::new();
    for name in ["Lesson", "B", "C", "D", "E", "F"] {
        ids.insert(name, module_id(&app, session, name).await);
    }
    let snapshot: Vec<Uuid> = ["F", "E", "D", "C", "B", "Lesson"]
        .iter()
        .map(|name| ids[name])
        .collect();
    // 10 creates (first, second, appended), 5 moves, 3 reorders of a
    // snapshot (valid only until the first create or delete lands) and 2
    // deletes, all at once.
    let mut requests: Vec<(&str, &str, Value)> = Vec::new();
    for n in 0..10 {
        let input = match n % 3 {
            0 => json!({ "name": format!("new {n}"), "position": 0 }),
            1 => json!({ "name": format!("new {n}"), "position": 1 }),
            _ => json!({ "name": format!("new {n}") }),
        };
        requests.push(("create", CREATE, json!({ "s": session, "input": input })));
    }
    for (name, position) in [("Lesson", 0), ("B", 1), ("C", 0), ("Lesson", 2), ("B", 0)] {
        requests.push(("move", MOVE, json!({ "id": ids[name], "p": position })));
    }
    for _ in 0..3 {
        requests.push(("reorder", REORDER, json!({ "s": session, "ids": snapshot })));
    }
    for name in ["E", "F"] {
        requests.push(("delete", DELETE, json!({ "id": ids[name] })));
    }
    assert_eq!(requests.len(), 20);
    let responses = join_all(
        requests
            .iter()
            .map(|(_, query, variables)| app.post_graphql_as(Some(&token), query, variables.clone())),
    )
    .await;
    for ((kind, _, _), (status, body)) in requests.iter().zip(&responses) {
        assert_eq!(status.as_u16(), 200, "{body}");
        match body["errors"].get(0) {
            None => {}
            Some(error) if *kind == "reorder" => assert_bad_input(error, "moduleIds"),
            Some(error) => panic!("{kind} failed: {error}"),
        }
    }
    let order = names_in_order(&app, session).await;
    assert_eq!(order.len(), 6 + 10 - 2, "{order:?}");
    let unique: BTreeSet<&String> = order.iter().collect();
    assert_eq!(unique.len(), order.len(), "{order:?}");
    for name in ["Lesson", "B", "C", "D"] {
        assert!(
            order.iter().any(|module| module == name),
            "{name} survives: {order:?}"
        );
    }
    for name in ["E", "F"] {
        assert!(
            !order.iter().any(|module| module == name),
            "{name} is deleted: {order:?}"
        );
    }
    let data = app
        .ok_as(
            &token,
            "query($id: UUID!) { session(id: $id) { modules { name orderIndex } } }",
            json!({ "id": session }),
        )
        .await;
    assert_eq!(names(&data["session"]["modules"]), order);
}

backend_tests!(
    modules_are_appended_by_default_and_inserted_at_a_position,
    a_position_outside_the_session_is_rejected_and_changes_nothing,
    a_module_is_renamed_within_the_name_limits,
    moving_a_module_shifts_the_ones_in_between,
    deleting_a_module_closes_the_gap_and_removes_its_videos,
    reordering_puts_every_module_in_the_given_order,
    a_reorder_must_name_every_module_exactly_once,
    videos_are_added_updated_and_deleted,
    video_sizes_are_accepted_from_one_byte_to_the_maximum,
    the_size_limit_and_the_mime_types_are_configurable,
    only_allowed_video_mime_types_are_accepted_in_any_case,
    video_urls_must_be_absolute_http_urls_of_at_most_1024_characters,
    video_file_names_are_plain_names_of_at_most_255_characters,
    an_update_checks_each_given_field_and_needs_at_least_one,
    a_failure_inside_a_mutation_leaves_the_order_as_it_was,
    the_guardian_and_the_tenant_admin_may_manage_the_content,
    a_supervised_user_reads_but_cannot_rewrite_a_guardians_session_content,
    content_out_of_scope_reads_as_not_found_and_stays_untouched,
    anonymous_requests_and_services_are_refused,
    the_content_of_a_session_that_has_ended_cannot_change,
    concurrent_changes_to_one_session_keep_a_dense_order,
);
