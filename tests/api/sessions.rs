use serde_json::{Value, json};
use session_manager::seed::seed_demo;

use crate::backend_tests;
use crate::fixtures::World;
use crate::helpers::{Backend, TestApp, error_code};

const NESTED: &str = r#"
query Sessions($first: Int, $after: String) {
  sessions(first: $first, after: $after) {
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges {
      node {
        id name sessionType status startTime endTime
        tenant { name schools { name } }
        user { email }
        guardian { email }
        config { label notifyOnUnlock customMessage lockProfile { lockedApps whitelist } }
        modules { name orderIndex videos { fileName fileSize mimeType fileUrl } }
      }
    }
  }
}"#;

async fn a_nested_query_returns_sessions_with_ordered_modules_and_videos(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    seed_demo(&app.db).await.unwrap();
    let admin = app.login("admin@demo.example", "demo-admin-pass").await;
    let data = app.ok_as(&admin, NESTED, json!({})).await;
    let edges = data["sessions"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 3);
    let study = edges
        .iter()
        .map(|edge| &edge["node"])
        .find(|node| node["name"] == "Study mode")
        .expect("the study mode session");
    assert_eq!(study["status"], "ACTIVE");
    assert_eq!(study["sessionType"], "Linear Flow");
    assert_eq!(study["tenant"]["name"], "Demo District");
    assert_eq!(
        study["tenant"]["schools"],
        json!([{ "name": "North High School" }, { "name": "South Middle School" }])
    );
    assert_eq!(study["user"]["email"], "alex@demo.example");
    assert_eq!(study["guardian"]["email"], "guardian@demo.example");
    assert_eq!(study["config"]["notifyOnUnlock"], true);
    assert_eq!(
        study["config"]["lockProfile"],
        json!({ "lockedApps": ["tiktok", "youtube"], "whitelist": ["duolingo"] })
    );
    let modules: Vec<&Value> = study["modules"].as_array().unwrap().iter().collect();
    let order: Vec<(&str, i64)> = modules
        .iter()
        .map(|module| {
            (
                module["name"].as_str().unwrap(),
                module["orderIndex"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(order, [("Warm-up", 0), ("Lesson", 1), ("Quiz", 2)]);
    assert_eq!(modules[0]["videos"][0]["fileName"], "warm-up-1.mp4");
    assert_eq!(modules[0]["videos"][0]["mimeType"], "video/mp4");
    assert_eq!(modules[0]["videos"].as_array().unwrap().len(), 2);
}

async fn sessions_page_newest_first_with_cursors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    seed_demo(&app.db).await.unwrap();
    let admin = app.login("admin@demo.example", "demo-admin-pass").await;
    let all = app.ok_as(&admin, NESTED, json!({ "first": 10 })).await;
    let all_ids: Vec<Value> = all["sessions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["id"].clone())
        .collect();
    let first = app.ok_as(&admin, NESTED, json!({ "first": 2 })).await;
    assert_eq!(first["sessions"]["pageInfo"]["hasNextPage"], true);
    let cursor = first["sessions"]["pageInfo"]["endCursor"].clone();
    let second = app
        .ok_as(&admin, NESTED, json!({ "first": 2, "after": cursor }))
        .await;
    assert_eq!(second["sessions"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(second["sessions"]["pageInfo"]["hasPreviousPage"], true);
    let paged: Vec<Value> = first["sessions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["sessions"]["edges"].as_array().unwrap())
        .map(|edge| edge["node"]["id"].clone())
        .collect();
    assert_eq!(paged, all_ids);
}

async fn page_sizes_and_cursors_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    seed_demo(&app.db).await.unwrap();
    let admin = app.login("admin@demo.example", "demo-admin-pass").await;
    for (variables, field) in [
        (json!({ "first": 0 }), "first"),
        (json!({ "first": 101 }), "first"),
        (json!({ "after": "not-a-cursor" }), "after"),
    ] {
        let error = app.error_as(Some(&admin), NESTED, variables).await;
        assert_eq!(error_code(&error), "BAD_USER_INPUT", "{error}");
        assert_eq!(error["extensions"]["field"], field);
    }
}

async fn a_single_session_is_found_by_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    seed_demo(&app.db).await.unwrap();
    let admin = app.login("admin@demo.example", "demo-admin-pass").await;
    let data = app
        .ok_as(
            &admin,
            "{ sessions(first: 1) { edges { node { id name } } } }",
            json!({}),
        )
        .await;
    let node = &data["sessions"]["edges"][0]["node"];
    let found = app
        .ok_as(
            &admin,
            "query($id: UUID!) { session(id: $id) { id name } }",
            json!({ "id": node["id"] }),
        )
        .await;
    assert_eq!(&found["session"], node);
}

async fn a_created_tenant_is_listed_for_the_super_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "super_admin").await;
    let created = app
        .ok_as(
            &admin,
            "mutation { createTenant(input: { name: \"  Springfield  \" }) { id name } }",
            json!({}),
        )
        .await;
    assert_eq!(created["createTenant"]["name"], "Springfield");
    let data = app
        .ok_as(&admin, "{ tenants { id name schools { id } } }", json!({}))
        .await;
    let names: Vec<&str> = data["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Alpha District", "Beta District", "Springfield"]);
}

async fn two_instances_on_one_database_serve_the_same_data(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = TestApp::spawn_on(first.database.clone(), |_| {}).await;
    let world = World::create(&first.db).await;
    let token = world.login(&first, "super_admin").await;
    first
        .ok_as(
            &token,
            "mutation { createTenant(input: { name: \"Shared\" }) { id } }",
            json!({}),
        )
        .await;
    let data = second.ok_as(&token, "{ tenants { name } }", json!({})).await;
    assert_eq!(
        data["tenants"].as_array().unwrap().len(),
        3,
        "a token of one instance works on the other"
    );
}

backend_tests!(
    two_instances_on_one_database_serve_the_same_data,
    a_nested_query_returns_sessions_with_ordered_modules_and_videos,
    sessions_page_newest_first_with_cursors,
    page_sizes_and_cursors_are_validated,
    a_single_session_is_found_by_id,
    a_created_tenant_is_listed_for_the_super_admin,
);
