//! Lists of modules and videos are written in one pass (not field by field
//! by the stock executor): they answer exactly what the stock path answers
//! for the same selection, byte for byte, in the same order.

use serde_json::json;
use uuid::Uuid;

use crate::backend_tests;
use crate::fixtures::World;
use crate::helpers::{Backend, TestApp};

/// Module-level selections, each with the fragments it uses: aliases,
/// `__typename`, fragments and inline fragments (with and without a type
/// condition), `@skip`/`@include` on variables, repeated keys, and a nested
/// `videos` merged from several places.
const MODULE_SELECTIONS: [&str; 6] = [
    "id name orderIndex createdAt updatedAt videos { id moduleId fileName fileUrl fileSize mimeType createdAt updatedAt }",
    "kind: __typename position: orderIndex id label: name __typename",
    "...M ... on Module { orderIndex } ... { createdAt } videos { id } fragment M on Module { name videos { ...V } } fragment V on Video { fileName t: __typename }",
    "name @skip(if: $yes) orderIndex @include(if: $yes) id @skip(if: $no) videos @include(if: $no) { id }",
    "id name id videos { mimeType } all: videos { id fileSize } videos { fileName ... on Video { fileSize } }",
    "first: videos { id } ...Later fragment Later on Module { first: videos { fileUrl } name }",
];

/// Video-level selections.
const VIDEO_SELECTIONS: [&str; 3] = [
    "id moduleId fileName fileUrl fileSize mimeType createdAt updatedAt __typename",
    "size: fileSize ...V ... on Video { id } fragment V on Video { fileName size: fileSize }",
    "fileName @skip(if: $yes) mimeType @include(if: $yes) id @skip(if: $no)",
];

/// Splits "selection fragment …" into the selection and its fragments.
fn split(selection: &str) -> (&str, &str) {
    selection
        .find("fragment ")
        .map_or((selection, ""), |at| (&selection[..at], &selection[at..]))
}

/// The declarations of the flags `selection` uses (an unused variable
/// fails validation).
fn declared(selection: &str) -> &'static str {
    if selection.contains("$yes") {
        ", $yes: Boolean!, $no: Boolean!"
    } else {
        ""
    }
}

/// The `FIELD` value of a `{"data":{"FIELD":…}}` body, as text.
fn data_of<'a>(body: &'a str, field: &str) -> &'a str {
    body.strip_prefix(&format!(r#"{{"data":{{"{field}":"#))
        .and_then(|rest| rest.strip_suffix("}}"))
        .unwrap_or_else(|| panic!("a `{field}` answer without errors: {body}"))
}

async fn lists_of_modules_and_videos_answer_exactly_what_single_objects_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "guardian").await;
    let session = world.sessions["user"];
    let mut created_modules = Vec::new();
    let mut created_videos = Vec::new();
    for m in 0..3 {
        let created = app
            .ok_as(
                &token,
                "mutation($s: UUID!, $name: String!) { createModule(sessionId: $s, input: { name: $name }) { id } }",
                json!({ "s": session, "name": format!("Module \"{m}\" ünïcode") }),
            )
            .await;
        let module: Uuid = serde_json::from_value(created["createModule"]["id"].clone()).unwrap();
        created_modules.push(module);
        // The last module has no videos: an empty list.
        for v in 0..(2 - m) {
            let added = app
                .ok_as(
                    &token,
                    "mutation($m: UUID!, $input: AddVideoInput!) { addVideo(moduleId: $m, input: $input) { id } }",
                    json!({ "m": module, "input": {
                        "fileName": format!("clip-{m}-{v}.mp4"),
                        "fileUrl": format!("https://videos.example.test/{m}/{v}.mp4"),
                        "fileSize": 2_147_483_647_i64 + v, // past i32, up to the 2 GiB limit
                        "mimeType": "video/mp4",
                    } }),
                )
                .await;
            created_videos.push((module, added["addVideo"]["id"].as_str().unwrap().to_owned()));
        }
    }
    // The world's own content comes first: every module of the session, as
    // the list has them.
    let listed = app
        .ok_as(
            &token,
            "query($s: UUID!) { session(id: $s) { modules { id videos { id } } } }",
            json!({ "s": session }),
        )
        .await;
    let modules: Vec<Uuid> = listed["session"]["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|module| serde_json::from_value(module["id"].clone()).unwrap())
        .collect();
    let listed_videos: Vec<(Uuid, String)> = listed["session"]["modules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|module| {
            let owner: Uuid = serde_json::from_value(module["id"].clone()).unwrap();
            module["videos"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |video| (owner, video["id"].as_str().unwrap().to_owned()))
        })
        .collect();
    assert_eq!(
        modules.len(),
        created_modules.len() + 1,
        "the world's module and ours"
    );
    assert!(created_videos.iter().all(|video| listed_videos.contains(video)));
    let videos = listed_videos;
    let flags = json!({ "yes": true, "no": false });
    for selection in MODULE_SELECTIONS {
        let (fields, fragments) = split(selection);
        let list = app
            .raw_as(
                &token,
                &format!(
                    "query($s: UUID!{flags}) {{ session(id: $s) {{ modules {{ {fields} }} }} }} {fragments}",
                    flags = declared(selection)
                ),
                json!({ "s": session, "yes": true, "no": false }),
            )
            .await;
        let mut singles = Vec::new();
        for module in &modules {
            let mut variables = flags.clone();
            variables["id"] = json!(module);
            let single = app
                .raw_as(
                    &token,
                    &format!(
                        "query($id: UUID!{flags}) {{ module(id: $id) {{ {fields} }} }} {fragments}",
                        flags = declared(selection)
                    ),
                    variables,
                )
                .await;
            singles.push(data_of(&single, "module").to_owned());
        }
        assert_eq!(
            data_of(&list, "session"),
            format!(r#"{{"modules":[{}]}}"#, singles.join(",")),
            "{selection}"
        );
    }
    for selection in VIDEO_SELECTIONS {
        let (fields, fragments) = split(selection);
        for module in &modules {
            let mut variables = flags.clone();
            variables["id"] = json!(module);
            let list = app.raw_as(&token,
                &format!(
                    "query($id: UUID!{flags}) {{ module(id: $id) {{ videos {{ {fields} }} }} }} {fragments}",
                    flags = declared(selection)
                ),
                variables,
            )
            .await;
            let mut singles = Vec::new();
            for (_, video) in videos.iter().filter(|(owner, _)| owner == module) {
                let mut variables = flags.clone();
                variables["id"] = json!(video);
                let single = app
                    .raw_as(
                        &token,
                        &format!(
                            "query($id: UUID!{flags}) {{ video(id: $id) {{ {fields} }} }} {fragments}",
                            flags = declared(selection)
                        ),
                        variables,
                    )
                    .await;
                singles.push(data_of(&single, "video").to_owned());
            }
            assert_eq!(
                data_of(&list, "module"),
                format!(r#"{{"videos":[{}]}}"#, singles.join(",")),
                "{selection}"
            );
        }
    }
}

async fn a_warm_page_of_sessions_with_their_content_costs_three_statements(backend: Backend) {
    use std::sync::atomic::Ordering;
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "guardian").await;
    let session = world.sessions["user"];
    app.ok_as(
        &token,
        "mutation($s: UUID!) { createModule(sessionId: $s, input: { name: \"One\" }) { id } }",
        json!({ "s": session }),
    )
    .await;
    const PAGE: &str = "{ sessions(first: 50, orderBy: { field: CREATED_AT, direction: ASC }) {
      nodes { id name status startTime endTime createdAt
        modules { id name orderIndex videos { id fileName fileUrl fileSize mimeType createdAt } } } } }";
    let cold = app.ok_as(&token, PAGE, json!({})).await;
    let before = app.statements.load(Ordering::SeqCst);
    let warm = app.ok_as(&token, PAGE, json!({})).await;
    assert_eq!(
        app.statements.load(Ordering::SeqCst) - before,
        3,
        "the sessions, their modules and the modules' videos, nothing else"
    );
    assert_eq!(cold, warm);
    assert!(!warm["sessions"]["nodes"].as_array().unwrap().is_empty());
}

/// Fragments that each ask for a list under one key get one list with
/// every field any of them asked, in CollectFields order.
async fn a_list_asked_for_by_several_fragments_answers_their_merged_selection(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "guardian").await;
    let session = world.sessions["user"];
    let variables = json!({ "s": session });
    let merged = app
        .raw_as(
            &token,
            "query($s: UUID!) { session(id: $s) { ...A ...B } }
         fragment A on Session { modules { id videos { id } } }
         fragment B on Session { modules { name videos { fileName } } }",
            variables.clone(),
        )
        .await;
    let written_out = app
        .raw_as(
            &token,
            "query($s: UUID!) { session(id: $s) { modules { id videos { id fileName } name } } }",
            variables.clone(),
        )
        .await;
    assert!(merged.contains("fileName"), "{merged}");
    assert_eq!(merged, written_out);
    let module = app
        .ok_as(
            &token,
            "query($s: UUID!) { session(id: $s) { modules { id } } }",
            variables,
        )
        .await["session"]["modules"][0]["id"]
        .clone();
    let variables = json!({ "m": module });
    let merged = app
        .raw_as(
            &token,
            "query($m: UUID!) { module(id: $m) { videos { id } ... on Module { videos { mimeType } } } }",
            variables.clone(),
        )
        .await;
    let written_out = app
        .raw_as(
            &token,
            "query($m: UUID!) { module(id: $m) { videos { id mimeType } } }",
            variables,
        )
        .await;
    assert!(merged.contains("mimeType"), "{merged}");
    assert_eq!(merged, written_out);
}

backend_tests!(
    a_list_asked_for_by_several_fragments_answers_their_merged_selection,
    lists_of_modules_and_videos_answer_exactly_what_single_objects_answer,
    a_warm_page_of_sessions_with_their_content_costs_three_statements,
);
