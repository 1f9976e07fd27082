use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::fixtures::World;
use crate::helpers::{Backend, TestApp, error_code};

const QUERY: &str = "query Hello { __typename }";

async fn a_post_query_answers_with_the_negotiated_media_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (accept, expected) in [
        (
            "application/graphql-response+json",
            "application/graphql-response+json",
        ),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
    ] {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header("accept", accept)
            .json(&json!({ "query": QUERY }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with(expected), "{accept} → {content_type}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["__typename"], "QueryRoot");
    }
}

async fn an_invalid_document_is_400_under_graphql_response_json_and_200_under_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (accept, status) in [
        ("application/graphql-response+json", StatusCode::BAD_REQUEST),
        ("application/json", StatusCode::OK),
    ] {
        for document in ["{ tenants { id ", "{ noSuchField }"] {
            let response = app
                .client
                .post(app.url("/graphql"))
                .header("accept", accept)
                .json(&json!({ "query": document }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{accept}: {document}");
            let body: Value = response.json().await.unwrap();
            assert!(body["errors"][0]["message"].is_string(), "{body}");
            if status == StatusCode::BAD_REQUEST {
                assert!(
                    body.get("data").is_none(),
                    "a request error has no data entry: {body}"
                );
            }
        }
    }
}

async fn a_query_over_get_is_answered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", QUERY), ("operationName", "Hello")])
        .header("accept", "application/graphql-response+json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["__typename"], "QueryRoot");
}

async fn a_mutation_over_get_is_refused_with_405(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[(
            "query",
            "mutation { createTenant(input: { name: \"x\" }) { id } }",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
}

async fn malformed_requests_are_rejected_with_clear_statuses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let not_json = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let wrong_type = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "text/plain")
        .body(QUERY)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let not_acceptable = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "text/html")
        .json(&json!({ "query": QUERY }))
        .send()
        .await
        .unwrap();
    assert_eq!(not_acceptable.status(), StatusCode::NOT_ACCEPTABLE);
    let no_query = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(no_query.status(), StatusCode::BAD_REQUEST);
}

async fn bad_input_carries_a_code_and_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "super_admin").await;
    const CREATE: &str = "mutation($name: String!) { createTenant(input: { name: $name }) { id } }";
    let error = app.error_as(Some(&token), CREATE, json!({ "name": "   " })).await;
    assert_eq!(error_code(&error), "BAD_USER_INPUT");
    assert_eq!(error["extensions"]["field"], "name");
    let error = app
        .error_as(Some(&token), CREATE, json!({ "name": "x".repeat(256) }))
        .await;
    assert_eq!(error_code(&error), "BAD_USER_INPUT");
}

async fn an_unknown_id_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "admin").await;
    let error = app
        .error_as(
            Some(&token),
            "query($id: UUID!) { session(id: $id) { id } }",
            json!({ "id": uuid::Uuid::nil() }),
        )
        .await;
    assert_eq!(error_code(&error), "NOT_FOUND", "{error}");
}

async fn a_batch_of_requests_is_answered_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[1]["data"]["__typename"], "QueryRoot");
}

async fn overly_deep_queries_are_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| settings.graphql.max_depth = 3).await;
    let (status, body) = app
        .post_graphql(
            "{ sessions { edges { node { modules { videos { id } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// The introspection query GraphiQL sends (graphql-js `getIntrospectionQuery`
/// with its ten levels of `ofType`): the explorer needs it to answer.
const INTROSPECTION: &str = "query IntrospectionQuery { __schema { queryType { name } mutationType { name } subscriptionType { name }
  types { ...FullType } directives { name description locations args { ...InputValue } } } }
fragment FullType on __Type { kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue } interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } } } }";

async fn graphiql_can_introspect_the_schema(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app.post_graphql(INTROSPECTION, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["__schema"]["subscriptionType"]["name"],
        "SubscriptionRoot"
    );
}

async fn responses_keep_the_field_order_of_the_query_single_and_batched(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let query = "{ zeta: __typename __type(name: \"Session\") { name kind description } alpha: __typename }";
    let post = async |body: Value| {
        app.client
            .post(app.url("/graphql"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let expected = r#"{"data":{"zeta":"QueryRoot","__type":{"name":"Session","kind":"OBJECT","description":"#;
    let single = post(json!({ "query": query })).await;
    assert!(single.starts_with(expected), "{single}");
    assert!(single.ends_with(r#"},"alpha":"QueryRoot"}}"#), "{single}");
    let batched = post(json!([{ "query": query }, { "query": "{ b: __typename a: __typename }" }])).await;
    assert!(batched.starts_with(&format!("[{expected}")), "{batched}");
    assert!(
        batched.ends_with(r#"{"data":{"b":"QueryRoot","a":"QueryRoot"}}]"#),
        "{batched}"
    );
    // Errors come first, and a request error carries no `data`.
    let refused = post(json!({ "query": "{ nope }" })).await;
    assert!(refused.starts_with(r#"{"errors":[{"message":"#), "{refused}");
    assert!(!refused.contains(r#""data""#), "{refused}");
}

/// Fields that wait on the database complete after those that do not:
/// they still come where the query puts them, at the root and below.
async fn fields_that_wait_on_the_database_keep_their_place_in_the_response(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "guardian").await;
    let query = "query($s: UUID!) {
        first: session(id: $s) { modules { name videos { fileName } } name guardian { id } status }
        ...Later
        last: __typename
    } fragment Later on QueryRoot { second: session(id: $s) { status } }";
    let body = app
        .raw_as(&token, query, json!({ "s": world.sessions["user"] }))
        .await;
    let at = |needle: &str| body.find(needle).unwrap_or_else(|| panic!("{needle} in {body}"));
    assert!(
        body.starts_with(r#"{"data":{"first":{"modules":[{"name":"#),
        "{body}"
    );
    assert!(at(r#""modules""#) < at(r#""name":"#), "{body}");
    assert!(at(r#"}],"name":"#) < at(r#""guardian""#), "{body}");
    assert!(at(r#""guardian""#) < at(r#""status""#), "{body}");
    assert!(at(r#""second""#) < at(r#""last""#), "{body}");
    assert!(body.ends_with(r#""last":"QueryRoot"}}"#), "{body}");
    // async-graphql's connection and edge types too.
    let page = "{ sessions(first: 5) {
        nodes { modules { id } id } edges { node { guardian { id } name } cursor } pageInfo { hasNextPage } totalCount
    } }";
    let body = app.raw_as(&token, page, json!({})).await;
    let at = |needle: &str| body.find(needle).unwrap_or_else(|| panic!("{needle} in {body}"));
    assert!(
        body.starts_with(r#"{"data":{"sessions":{"nodes":[{"modules":"#),
        "{body}"
    );
    assert!(
        at(r#""edges":[{"node":{"guardian""#) < at(r#""cursor""#),
        "{body}"
    );
    assert!(at(r#""cursor""#) < at(r#""pageInfo""#), "{body}");
    assert!(at(r#""pageInfo""#) < at(r#""totalCount""#), "{body}");
}

backend_tests!(
    responses_keep_the_field_order_of_the_query_single_and_batched,
    fields_that_wait_on_the_database_keep_their_place_in_the_response,
    graphiql_can_introspect_the_schema,
    a_post_query_answers_with_the_negotiated_media_type,
    an_invalid_document_is_400_under_graphql_response_json_and_200_under_json,
    a_query_over_get_is_answered,
    a_mutation_over_get_is_refused_with_405,
    malformed_requests_are_rejected_with_clear_statuses,
    bad_input_carries_a_code_and_the_field,
    an_unknown_id_is_not_found,
    a_batch_of_requests_is_answered_in_order,
    overly_deep_queries_are_refused,
);
