//! Nested lookups are batched: the statements a page costs do not grow with
//! the page.

use std::sync::atomic::Ordering;

use serde_json::json;

use crate::backend_tests;
use crate::fixtures::World;
use crate::helpers::{Backend, TestApp};

const PAGE: &str = "query($first: Int!) {
  sessions(first: $first) {
    edges { node {
      id name status
      tenant { name schools { name } }
      user { email } guardian { email }
      config { label lockProfile { lockedApps } }
      modules { name videos { fileName } }
    } }
  }
}";

async fn a_page_of_sessions_costs_the_same_statements_whatever_its_size(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let guardian = world.login(&app, "guardian").await;
    for n in 0..50 {
        let started = app
            .ok_as(
                &guardian,
                "mutation($u: UUID!, $name: String!) { startSession(userId: $u, input: { name: $name, config: { label: \"l\", lockProfile: { lockedApps: [\"tiktok\"] } } }) { id } }",
                json!({ "u": world.users["user"], "name": format!("Session {n}") }),
            )
            .await;
        assert!(started["startSession"]["id"].is_string());
    }
    let mut costs = Vec::new();
    for size in [1, 10, 50] {
        let before = app.statements.load(Ordering::SeqCst);
        let data = app.ok_as(&guardian, PAGE, json!({ "first": size })).await;
        let after = app.statements.load(Ordering::SeqCst);
        assert_eq!(data["sessions"]["edges"].as_array().unwrap().len(), size);
        costs.push(after - before);
    }
    assert_eq!(
        costs[0], costs[1],
        "statements for pages of 1, 10 and 50: {costs:?}"
    );
    assert_eq!(
        costs[1], costs[2],
        "statements for pages of 1, 10 and 50: {costs:?}"
    );
    assert!(costs[0] <= 15, "a small constant number of statements: {costs:?}");
}

backend_tests!(a_page_of_sessions_costs_the_same_statements_whatever_its_size);
