//! The application state: the long-lived handles every part of the server
//! shares, built once by `startup`. Nothing here knows about GraphQL or
//! HTTP; those layers hold it (as schema data, as router state).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::DatabaseConnection;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::events::EventBus;
use crate::services::auth::Authenticator;
use crate::services::identity::IdentityCache;
use crate::services::passwords::PasswordPool;
use crate::services::settings::SettingsCache;
use crate::services::webhooks::delivery::DeliveryWake;

/// The long-lived handles every resolver may use (schema-level data).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// The pool queries read through outside any unit of work: on SQLite,
    /// read-only connections beside the writer (so reads never wait for a
    /// write); on PostgreSQL, `db` itself.
    pub reads: DatabaseConnection,
    /// The application's clock.
    pub clock: SharedClock,
    /// The loaded configuration.
    pub settings: Arc<Settings>,
    /// Token keys and service credentials.
    pub authenticator: Authenticator,
    /// Where live changes are published.
    pub events: EventBus,
    /// The session settings cache (and the config-file level it resolves against).
    pub settings_cache: SettingsCache,
    /// What authentication needs, in memory (kept right by events).
    pub identity: IdentityCache,
    /// What the request gate let through and refused.
    pub gate: Arc<GateStats>,
    /// Where every Argon2 computation runs, bounded.
    pub passwords: PasswordPool,
    /// Wakes this instance's webhook delivery.
    pub webhook_wake: DeliveryWake,
}

/// Counts what passed through the gate (tests assert that a refused
/// document never ran).
#[derive(Debug, Default)]
pub struct GateStats {
    executed: AtomicU64,
    refused: AtomicU64,
}

impl GateStats {
    /// Counts an operation that reached execution.
    pub(crate) fn count_executed(&self) {
        self.executed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused document.
    pub(crate) fn count_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Operations that reached execution (queries and mutations).
    pub fn executed_operations(&self) -> u64 {
        self.executed.load(Ordering::Relaxed)
    }

    /// Documents the gate refused.
    pub fn refused_documents(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}
