//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::HttpState;

/// The process is up.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The process can serve: the database answers.
pub async fn ready(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    match crate::db::ping(&state.app.db).await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok", "database": "ok" }))),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": "unreachable" })),
            )
        }
    }
}
