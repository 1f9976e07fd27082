//! Bounded work for every request: the request gate, the cost of lists,
//! the error pipeline, NUL bytes, batches, CORS and WebSocket bounds.

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use session_manager::graphql::limits::GateStats;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::backend_tests;
use crate::fixtures::{World, add_membership};
use crate::helpers::{Backend, TestApp, error_code};
use crate::ws_client::{WsClient, wait_for_subscribers};
use entity::tenant_membership::MembershipRole;

/// Each fragment spreads the next twice: 2^n fields once expanded.
fn doubling(n: usize, field: &str) -> String {
    let fragments: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "fragment F{i} on QueryRoot {{ a{i}: {field} ...F{next} ...F{next} }}",
                next = i + 1
            )
        })
        .collect();
    format!(
        "query {{ ...F0 }} {} fragment F{n} on QueryRoot {{ {field} }}",
        fragments.join(" ")
    )
}

/// The same explosion written with inline fragments inside the fragments.
fn doubling_inline(n: usize) -> String {
    let fragments: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "fragment F{i} on QueryRoot {{ ... on QueryRoot {{ a{i}: __typename ...F{next} }} ... on QueryRoot {{ ...F{next} }} }}",
                next = i + 1
            )
        })
        .collect();
    format!(
        "query {{ ...F0 }} {} fragment F{n} on QueryRoot {{ __typename }}",
        fragments.join(" ")
    )
}

/// Doubling spreads with no field at all, ending in a fragment that does not exist.
fn doubling_to_nothing(n: usize) -> String {
    let fragments: String = (0..n)
        .map(|i| {
            format!(
                "fragment F{i} on QueryRoot {{ ...F{next} ...F{next} }} ",
                next = i + 1
            )
        })
        .collect();
    format!("{{ ...F0 }} {fragments} fragment F{n} on QueryRoot {{ ...Missing }}")
}

fn stats(app: &TestApp) -> &GateStats {
    &app.state.gate
}

/// Asserts that `error` is the gate's refusal for `limit`.
fn assert_refused(error: &Value, limit: &str) {
    assert_eq!(error_code(error), "QUERY_TOO_LARGE", "{error:#}");
    assert_eq!(error["extensions"]["limit"], limit, "{error:#}");
    assert!(
        error["message"].as_str().unwrap_or_default().contains(limit),
        "the message names the limit: {error:#}"
    );
}

async fn an_exponential_fragment_document_is_refused_before_it_runs_on_every_transport(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "user").await;
    let executed = stats(&app).executed_operations();
    let documents = [
        doubling(25, "__typename"),
        doubling(60, "__typename"),
        doubling_inline(25),
        doubling(25, "me { id }"),
        doubling(30, "tenants { id name }"),
        doubling_to_nothing(49),
    ];
    for document in &documents {
        for viewer in [None, Some(token.as_str())] {
            // POST
            let (status, body) = app.post_graphql_as(viewer, document, json!({})).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(body.get("data").is_none(), "{body}");
            assert_refused(&body["errors"][0], "graphql.max_fields");
            // GET
            let mut get = app
                .client
                .get(app.url("/graphql"))
                .query(&[("query", document.as_str())])
                .header("accept", "application/graphql-response+json");
            if let Some(token) = viewer {
                get = get.bearer_auth(token);
            }
            let response = get.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            let body: Value = response.json().await.unwrap();
            assert_refused(&body["errors"][0], "graphql.max_fields");
            // A batch item
            let mut batch = app
                .client
                .post(app.url("/graphql"))
                .json(&json!([{ "query": document }, { "query": "{ __typename }" }]));
            if let Some(token) = viewer {
                batch = batch.bearer_auth(token);
            }
            let body: Value = batch.send().await.unwrap().json().await.unwrap();
            assert_refused(&body[0]["errors"][0], "graphql.max_fields");
            assert_eq!(body[1]["data"]["__typename"], "QueryRoot");
            // WebSocket
            let mut socket = WsClient::connect(&app, viewer).await;
            socket.subscribe("big", document, json!({})).await;
            let message = socket.receive().await;
            assert_eq!(message["type"], "error", "{message}");
            assert_refused(&message["payload"][0], "graphql.max_fields");
        }
    }
    // Only the small batch items ran.
    assert_eq!(
        stats(&app).executed_operations(),
        executed + documents.len() as u64 * 2
    );
    assert!(stats(&app).refused_documents() >= documents.len() as u64 * 8);
}

async fn documents_within_the_limits_still_run(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // 2^9 - 1 fields once expanded: well within 2000.
    let data = app.graphql_ok(&doubling(8, "__typename"), json!({})).await;
    assert_eq!(data["a0"], "QueryRoot");
}

async fn a_batch_larger_than_the_limit_is_refused_whole(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let executed = stats(&app).executed_operations();
    let batch: Vec<Value> = (0..2500).map(|_| json!({ "query": "{ __typename }" })).collect();
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body["errors"][0]), "BATCH_TOO_LARGE", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("graphql.max_batch_size")
    );
    assert_eq!(stats(&app).executed_operations(), executed);
}

async fn aliases_directives_spreads_and_operations_are_bounded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let executed = stats(&app).executed_operations();
    let aliases: String = (0..1000).map(|i| format!("a{i}: __typename ")).collect();
    let directives = "__typename @include(if: true) ".repeat(60);
    let spreads = format!(
        "{{ {} }} fragment F on QueryRoot {{ __typename }}",
        "...F ".repeat(150)
    );
    let operations: String = (0..30).map(|i| format!("query Q{i} {{ __typename }} ")).collect();
    for (document, limit) in [
        (format!("{{ {aliases} }}"), "graphql.max_aliases"),
        (format!("{{ {directives} }}"), "graphql.max_directives"),
        (spreads, "graphql.max_fragment_spreads"),
        (operations, "graphql.max_operations"),
    ] {
        let (status, body) = app.post_graphql(&document, json!({})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_refused(&body["errors"][0], limit);
    }
    assert_eq!(stats(&app).executed_operations(), executed);
}

async fn deep_documents_are_refused_before_parsing_and_after_expansion(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let executed = stats(&app).executed_operations();
    // Raw nesting: the parser would recurse 100,000 levels.
    let (_, body) = app.post_graphql(&"{".repeat(100_000), json!({})).await;
    assert_refused(&body["errors"][0], "graphql.max_nesting");
    let (_, body) = app
        .post_graphql(&format!("{{ a(x: {}) }}", "[".repeat(50_000)), json!({}))
        .await;
    assert_refused(&body["errors"][0], "graphql.max_nesting");
    // Selection depth, counted through fragments.
    let nested = format!(
        "{{ __type(name: \"Session\") {{ ...T }} }} fragment T on __Type {{ {}name{} }}",
        "ofType { ".repeat(24),
        " }".repeat(24)
    );
    let (_, body) = app.post_graphql(&nested, json!({})).await;
    assert_refused(&body["errors"][0], "graphql.max_depth");
    assert_eq!(stats(&app).executed_operations(), executed);
}

async fn the_cost_of_a_query_counts_its_page_sizes_and_list_bounds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let page =
        "sessions(first: 100) { nodes { id name modules { id name videos { id fileName fileUrl } } } }";
    // One full page of sessions with their content is accepted.
    app.ok_as(&admin, &format!("{{ {page} }}"), json!({})).await;
    // Five of them in one document are not.
    let aliased: String = (0..5).map(|i| format!("s{i}: {page} ")).collect();
    let executed = stats(&app).executed_operations();
    let error = app
        .error_as(Some(&admin), &format!("{{ {aliased} }}"), json!({}))
        .await;
    assert_eq!(error_code(&error), "QUERY_TOO_COMPLEX", "{error:#}");
    assert_eq!(error["extensions"]["limit"], "graphql.max_complexity");
    assert!(
        error["extensions"]["actual"].as_u64().unwrap() > 500_000,
        "{error:#}"
    );
    // Without lists the same number of fields costs little.
    let flat: String = (0..5).map(|i| format!("t{i}: __typename ")).collect();
    app.ok_as(&admin, &format!("{{ {flat} }}"), json!({})).await;
    // `first` from a variable counts too.
    let error = app
        .error_as(
            Some(&admin),
            &format!(
                "query($n: Int) {{ {} }}",
                (0..5)
                    .map(|i| format!(
                        "s{i}: sessions(first: $n) {{ nodes {{ modules {{ videos {{ id fileName }} }} }} }} "
                    ))
                    .collect::<String>()
            ),
            json!({ "n": 100 }),
        )
        .await;
    assert_eq!(error_code(&error), "QUERY_TOO_COMPLEX", "{error:#}");
    assert_eq!(stats(&app).executed_operations(), executed + 1);
}

async fn a_cost_too_large_to_count_is_refused_rather_than_wrapping_around(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let nested = format!(
        "{{ me {{ isSuperAdmin }} users(first: 100) {{ id {}id{} }} }}",
        "guardians { id ".repeat(17),
        " }".repeat(17)
    );
    let error = app.error_as(Some(&admin), &nested, json!({})).await;
    assert_eq!(error_code(&error), "QUERY_TOO_COMPLEX", "{error:#}");
}

async fn sixty_aliased_pages_of_sessions_are_refused(backend: Backend) {
    // With the alias limit raised, the cost still refuses them.
    let app = TestApp::spawn_with(backend, |settings| settings.graphql.max_aliases = 1000).await;
    let world = World::create(&app.db).await;
    let admin = world.login(&app, "admin").await;
    let aliased: String = (0..60)
        .map(|i| format!("s{i}: sessions(first: 100) {{ nodes {{ id modules {{ id videos {{ id }} }} }} }} "))
        .collect();
    let error = app
        .error_as(Some(&admin), &format!("{{ {aliased} }}"), json!({}))
        .await;
    assert_eq!(error_code(&error), "QUERY_TOO_COMPLEX", "{error:#}");
}

async fn request_errors_carry_codes_over_http_and_websocket(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        ("{ tenants { id ", None, "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query($x: Int) { __typename }", None, "GRAPHQL_VALIDATION_FAILED"),
        (
            "query A { __typename }",
            Some("B"),
            "OPERATION_RESOLUTION_FAILURE",
        ),
        (
            "query A { __typename } query B { __typename }",
            None,
            "OPERATION_RESOLUTION_FAILURE",
        ),
        ("{ __typename }", Some("A"), "OPERATION_RESOLUTION_FAILURE"),
    ];
    let mut socket = WsClient::connect(&app, None).await;
    for (index, (document, operation, code)) in cases.into_iter().enumerate() {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": document, "operationName": operation }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{document}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body["errors"][0]), code, "{document}: {body}");
        let id = format!("op{index}");
        socket
            .send_raw(json!({
                "id": id, "type": "subscribe",
                "payload": { "query": document, "operationName": operation }
            }))
            .await;
        let message = socket.receive().await;
        assert_eq!(message["type"], "error", "{message}");
        assert_eq!(error_code(&message["payload"][0]), code, "{document}: {message}");
    }
}

async fn refusals_below_graphql_carry_codes_too(backend: Backend) {
    let app = TestApp::spawn_with(backend.clone(), |settings| settings.server.max_body_bytes = 1024).await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"query\": \"{{ __typename }}\", \"pad\": \"{}\"}}",
            "x".repeat(4096)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body["errors"][0]), "PAYLOAD_TOO_LARGE", "{body}");
    // A timeout of zero: a login (a password hash) cannot finish first.
    let app = TestApp::spawn_with(backend, |settings| settings.server.request_timeout_secs = 0).await;
    let (status, body) = app
        .post_graphql(
            "mutation { login(email: \"a@example.test\", password: \"whatever-password\") { token } }",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(error_code(&body["errors"][0]), "REQUEST_TIMEOUT", "{body}");
}

async fn a_get_request_honours_operation_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[
            ("query", "query A { a: __typename } query B { b: __typename }"),
            ("operationName", "B"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"], json!({ "b": "QueryRoot" }), "{body}");
}

/// Every argument path of the schema that ends in a string-like scalar,
/// with the argument's type as written in a variable definition.
async fn string_argument_paths(app: &TestApp) -> Vec<(String, String, String, Vec<String>)> {
    const TYPE_REF: &str = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";
    let query = format!(
        "{{ __schema {{ types {{ name kind fields {{ name args {{ name type {{ {TYPE_REF} }} }} }} inputFields {{ name type {{ {TYPE_REF} }} }} }} }} }}"
    );
    let data = app.graphql_ok(&query, json!({})).await;
    let types = data["__schema"]["types"].as_array().unwrap().clone();
    let by_name = |name: &str| types.iter().find(|t| t["name"] == name).cloned();
    fn named(type_ref: &Value) -> &Value {
        if type_ref["ofType"].is_object() {
            named(&type_ref["ofType"])
        } else {
            type_ref
        }
    }
    fn written(type_ref: &Value) -> String {
        match type_ref["kind"].as_str() {
            Some("NON_NULL") => format!("{}!", written(&type_ref["ofType"])),
            Some("LIST") => format!("[{}]", written(&type_ref["ofType"])),
            _ => type_ref["name"].as_str().unwrap().to_owned(),
        }
    }
    let non_string = ["Int", "Float", "Boolean", "FileSize"];
    let mut paths = Vec::new();
    for (root, operation) in [
        ("QueryRoot", "query"),
        ("MutationRoot", "mutation"),
        ("SubscriptionRoot", "subscription"),
    ] {
        let root_type = by_name(root).unwrap();
        for field in root_type["fields"].as_array().unwrap() {
            for argument in field["args"].as_array().unwrap() {
                // Depth-first through input objects, each type once per path.
                let mut pending = vec![(
                    vec![argument["name"].as_str().unwrap().to_owned()],
                    argument["type"].clone(),
                )];
                while let Some((path, type_ref)) = pending.pop() {
                    let leaf = named(&type_ref);
                    let name = leaf["name"].as_str().unwrap();
                    match leaf["kind"].as_str() {
                        Some("SCALAR") if !non_string.contains(&name) => paths.push((
                            operation.to_owned(),
                            field["name"].as_str().unwrap().to_owned(),
                            written(&argument["type"]),
                            path,
                        )),
                        Some("INPUT_OBJECT") if path.len() < 4 => {
                            let input = by_name(name).unwrap();
                            for input_field in input["inputFields"].as_array().unwrap() {
                                let mut deeper = path.clone();
                                deeper.push(input_field["name"].as_str().unwrap().to_owned());
                                pending.push((deeper, input_field["type"].clone()));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    paths
}

/// `{ a: { b: "x\u0000" } }` for the path `[arg, a, b]` (the argument itself left out).
fn nested_value(path: &[String]) -> Value {
    match path.split_first() {
        None => json!("bad\u{0}value"),
        Some((head, rest)) => json!({ head.as_str(): nested_value(rest) }),
    }
}

/// The same value as a GraphQL literal.
fn nested_literal(path: &[String]) -> String {
    match path.split_first() {
        None => "\"bad\\u0000value\"".to_owned(),
        Some((head, rest)) => format!("{{ {head}: {} }}", nested_literal(rest)),
    }
}

async fn a_nul_byte_in_any_string_argument_is_bad_user_input(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "admin").await;
    let paths = string_argument_paths(&app).await;
    assert!(
        paths.len() > 40,
        "the schema has many string arguments: {paths:?}"
    );
    let executed = stats(&app).executed_operations();
    for (operation, field, argument_type, path) in &paths {
        let (argument, inner) = path.split_first().unwrap();
        let leaf = path.last().unwrap();
        let literal = format!(
            "{operation} {{ {field}({argument}: {}) {{ __typename }} }}",
            nested_literal(inner)
        );
        let variable =
            format!("{operation}($v: {argument_type}) {{ {field}({argument}: $v) {{ __typename }} }}");
        for (document, variables) in [
            (literal, json!({})),
            (variable, json!({ "v": nested_value(inner) })),
        ] {
            for viewer in [None, Some(token.as_str())] {
                let (status, body) = app.post_graphql_as(viewer, &document, variables.clone()).await;
                let error = &body["errors"][0];
                assert_eq!(status, StatusCode::BAD_REQUEST, "{document}: {body}");
                assert_eq!(error_code(error), "BAD_USER_INPUT", "{document}: {body}");
                assert_eq!(error["extensions"]["field"], leaf.as_str(), "{document}: {body}");
                assert!(
                    error["message"].as_str().unwrap().contains("NUL"),
                    "{document}: {body}"
                );
            }
        }
    }
    assert_eq!(stats(&app).executed_operations(), executed);
    // A real login with a NUL in the e-mail: refused as input, not an internal error.
    let (_, body) = app
        .post_graphql(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": "user\u{0}@example.test", "p": "whatever-password" }),
        )
        .await;
    assert_eq!(error_code(&body["errors"][0]), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "email");
}

async fn names_with_control_characters_are_bad_user_input(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "super_admin").await;
    for name in ["Alpha\nDistrict", "Esc\u{1b}[31m", "Tab\there"] {
        let error = app
            .error_as(
                Some(&token),
                "mutation($n: String!) { createTenant(input: { name: $n }) { id } }",
                json!({ "n": name }),
            )
            .await;
        assert_eq!(error_code(&error), "BAD_USER_INPUT", "{error:#}");
        assert_eq!(error["extensions"]["field"], "name");
    }
}

async fn an_allowed_origin_gets_cors_headers_and_another_does_not(backend: Backend) {
    let portal = "https://portal.example.org";
    let app = TestApp::spawn_with(backend, |settings| {
        settings.server.cors_allowed_origins = vec![portal.to_owned()];
    })
    .await;
    let preflight = |origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let allowed = preflight(portal).await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], portal);
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed_headers.contains("authorization"), "{allowed_headers}");
    assert!(allowed_headers.contains("content-type"), "{allowed_headers}");
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(headers["access-control-max-age"], "3600");
    assert!(headers.get("access-control-allow-credentials").is_none());
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // The request itself: the allowed origin may read the body and the request id.
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("origin", portal)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], portal);
    assert!(
        response.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-request-id")
    );
}

async fn nothing_is_cross_origin_by_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("origin", "https://portal.example.org")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none());
}

async fn during_a_database_outage_authenticated_and_anonymous_requests_follow_the_same_rules(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "user").await;
    // Closing the pool marks it closed at once (every query then fails)
    // and waits for the connections in use, such as the event listener's:
    // let that wait in the background.
    let db = app.db.clone();
    tokio::spawn(async move { db.close_by_ref().await });
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while app.db.ping().await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the pool closes");
    for viewer in [None, Some(token.as_str())] {
        let query = "mutation { logout }";
        let response = app
            .client
            .post(app.url("/graphql"))
            .header("accept", "application/json")
            .json(&json!({ "query": query }));
        let response = match viewer {
            Some(token) => response.bearer_auth(token),
            None => response.json(&json!({ "query": "mutation { login(email: \"a@b.c\", password: \"whatever-password\") { token } }" })),
        };
        let response = response.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "application/json is always 200"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body["errors"][0]), "INTERNAL", "{body}");
        assert_eq!(body["errors"][0]["message"], "internal error", "{body}");
    }
}

async fn a_websocket_connection_runs_a_bounded_number_of_operations(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| settings.server.ws_max_operations = 2).await;
    let world = World::create(&app.db).await;
    let token = world.login(&app, "guardian").await;
    let mut socket = WsClient::connect(&app, Some(&token)).await;
    let subscription = "subscription { sessionStatusChanged { sessionId } }";
    socket.subscribe("one", subscription, json!({})).await;
    socket.subscribe("two", subscription, json!({})).await;
    wait_for_subscribers(&app, 2).await;
    socket.subscribe("three", subscription, json!({})).await;
    let message = socket.receive().await;
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["id"], "three");
    assert_eq!(
        error_code(&message["payload"][0]),
        "TOO_MANY_OPERATIONS",
        "{message}"
    );
}

async fn an_oversized_websocket_message_closes_the_connection(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| settings.server.ws_max_message_bytes = 4096).await;
    let mut request = app.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let huge = json!({ "type": "connection_init", "payload": { "pad": "x".repeat(10_000) } });
    socket.send(Message::text(huge.to_string())).await.unwrap();
    // The server gives up on the connection: a close frame or the end of the stream.
    loop {
        match socket.next().await {
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(Message::Text(text))) => panic!("no answer is expected: {text}"),
            Some(Ok(_)) => {}
        }
    }
}

async fn a_tenant_admin_sees_only_tenant_ids_of_their_tenant_in_context_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let user = world.users["user"];
    add_membership(&app.db, user, world.beta, MembershipRole::Member, false).await;
    let token = world.login(&app, "user").await;
    let switch = "mutation($t: UUID!) { switchTenant(tenantId: $t) { role } }";
    app.ok_as(&token, switch, json!({ "t": world.beta })).await;
    app.ok_as(&token, switch, json!({ "t": world.alpha })).await;
    let changes = "query($u: UUID) { tenantContextChanges(userId: $u) { eventType tenantId metadata } }";
    let admin = world.login(&app, "admin").await;
    let seen = app.ok_as(&admin, changes, json!({ "u": user })).await;
    let back = seen["tenantContextChanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["eventType"] == "SWITCH_TENANT" && change["tenantId"] == json!(world.alpha))
        .cloned()
        .unwrap_or_else(|| panic!("the switch back is listed: {seen:#}"));
    assert_eq!(back["metadata"]["toTenantId"], json!(world.alpha), "{back:#}");
    assert_eq!(back["metadata"]["fromTenantId"], Value::Null, "{back:#}");
    assert!(back["metadata"].get("loginSessionId").is_none(), "{back:#}");
    // The user sees their own trail whole.
    let own = app.ok_as(&token, changes, json!({ "u": user })).await;
    let back = own["tenantContextChanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["eventType"] == "SWITCH_TENANT" && change["tenantId"] == json!(world.alpha))
        .cloned()
        .unwrap();
    assert_eq!(back["metadata"]["fromTenantId"], json!(world.beta), "{back:#}");
    assert!(back["metadata"]["loginSessionId"].is_string(), "{back:#}");
}

async fn who_changed_the_system_settings_is_shown_to_super_admins_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let world = World::create(&app.db).await;
    let super_admin = world.login(&app, "super_admin").await;
    app.ok_as(
        &super_admin,
        "mutation { updateSystemSessionSettings(input: { idleTimeoutMinutes: 30 }) { __typename } }",
        json!({}),
    )
    .await;
    let query = "{ systemSessionSettings { idleTimeoutMinutes updatedById } }";
    let seen = app.ok_as(&super_admin, query, json!({})).await;
    assert_eq!(
        seen["systemSessionSettings"]["updatedById"],
        json!(world.users["super_admin"])
    );
    let admin = world.login(&app, "admin").await;
    let seen = app.ok_as(&admin, query, json!({})).await;
    assert_eq!(seen["systemSessionSettings"]["idleTimeoutMinutes"], 30);
    assert_eq!(seen["systemSessionSettings"]["updatedById"], Value::Null);
}

backend_tests!(
    an_exponential_fragment_document_is_refused_before_it_runs_on_every_transport,
    documents_within_the_limits_still_run,
    a_batch_larger_than_the_limit_is_refused_whole,
    aliases_directives_spreads_and_operations_are_bounded,
    deep_documents_are_refused_before_parsing_and_after_expansion,
    the_cost_of_a_query_counts_its_page_sizes_and_list_bounds,
    sixty_aliased_pages_of_sessions_are_refused,
    a_cost_too_large_to_count_is_refused_rather_than_wrapping_around,
    request_errors_carry_codes_over_http_and_websocket,
    a_get_request_honours_operation_name,
    refusals_below_graphql_carry_codes_too,
    a_nul_byte_in_any_string_argument_is_bad_user_input,
    names_with_control_characters_are_bad_user_input,
    an_allowed_origin_gets_cors_headers_and_another_does_not,
    nothing_is_cross_origin_by_default,
    during_a_database_outage_authenticated_and_anonymous_requests_follow_the_same_rules,
    a_websocket_connection_runs_a_bounded_number_of_operations,
    an_oversized_websocket_message_closes_the_connection,
    a_tenant_admin_sees_only_tenant_ids_of_their_tenant_in_context_changes,
    who_changed_the_system_settings_is_shown_to_super_admins_only,
);
