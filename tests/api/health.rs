use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

async fn liveness_answers_ok(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.client.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

async fn readiness_checks_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.client.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["database"], "ok");
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let generated = app.client.get(app.url("/health/live")).send().await.unwrap();
    let id = generated.headers().get("x-request-id").expect("generated id");
    assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok());
    let echoed = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
}

async fn graphiql_is_served_without_external_assets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(!html.contains("https://"), "the page must not load remote assets");
    let script = app
        .client
        .get(app.url("/graphiql/graphiql-3.8.3.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
}

backend_tests!(
    liveness_answers_ok,
    readiness_checks_the_database,
    every_response_carries_a_request_id,
    graphiql_is_served_without_external_assets,
);
