//! The integration tests: every test spawns the real application on a fresh
//! database, once on SQLite and, when `TEST_POSTGRES_URL` is set, once on
//! PostgreSQL.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
#![expect(
    clippy::print_stderr,
    reason = "tests say when the PostgreSQL half is skipped"
)]

mod fixtures;
mod helpers;

mod accounts;
mod administration;
mod authorization;
mod cli;
mod content;
mod content_lists;
mod dataloaders;
mod event_log;
mod graphql_http;
mod health;
mod layers;
mod limits;
mod live_identity;
mod lock_manager;
mod login_enforcement;
mod login_sessions;
mod migrations;
mod resume;
mod schema;
mod session_lifecycle;
mod sessions;
mod settings;
mod subscriptions;
mod tenant_context;
mod throttling;
mod webhooks;
mod websocket;
mod ws_client;
