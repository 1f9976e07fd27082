//! Builds the application: configuration in, a bound server out. Used by
//! `main` and by the integration tests alike.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::error::AppError;
use crate::events::EventBus;
use crate::graphql::build_schema;
use crate::graphql::fanout::SharedSubscriptions;
use crate::graphql::sessions::SHARED_FIELDS;
use crate::http::{HttpState, router};
use crate::jobs::{DeadlineScheduler, spawn_expiry_sweeper};
use crate::services::auth::Authenticator;
use crate::services::identity::IdentityCache;
use crate::services::passwords::PasswordPool;
use crate::services::settings::SettingsCache;
use crate::services::webhooks::delivery::{self as webhook_delivery, DeliveryWake};
use crate::state::AppState;

/// Observes every SQL statement the application runs (tests count them).
pub(crate) type StatementObserver = Arc<dyn Fn(&sea_orm::metric::Info<'_>) + Send + Sync>;

/// How to build an application beyond its settings.
#[derive(Clone)]
pub struct BuildOptions {
    /// The clock (tests drive time by hand).
    pub clock: SharedClock,
    /// Called for every SQL statement, if set.
    pub statement_observer: Option<StatementObserver>,
    /// Run the background jobs (tests call them directly instead).
    pub background_jobs: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            statement_observer: None,
            background_jobs: true,
        }
    }
}

/// A built application, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    router: axum::Router,
    state: AppState,
    background_jobs: bool,
    deadlines: Option<DeadlineScheduler>,
    webhooks: Option<webhook_delivery::Courier>,
}

impl Application {
    /// Connects to the database, migrates it, and binds the listener, with the real clock.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, BuildOptions::default()).await
    }

    /// Like [`Application::build`], with options (tests drive the clock by
    /// hand and count statements).
    pub async fn build_with(settings: Settings, options: BuildOptions) -> anyhow::Result<Self> {
        let BuildOptions {
            clock,
            statement_observer,
            background_jobs,
        } = options;
        let mut db = crate::db::connect(&settings.database).await?;
        if settings.database.migrate_on_start {
            crate::db::migrate(&db).await?;
        }
        if let Some(observer) = statement_observer.clone() {
            db.set_metric_callback(move |info| observer(info));
        }
        let log_reader =
            crate::db::connect_reader(&settings.database, settings.events.reader_connections, &db).await?;
        let mut reads = crate::db::connect_query_reader(&settings.database, &db).await?;
        if let Some(observer) = &statement_observer
            && !settings.database.is_postgres()
        {
            let observer = observer.clone();
            reads.set_metric_callback(move |info| observer(info));
        }
        let events = EventBus::start(&db, log_reader, &settings.events)
            .await
            .map_err(AppError::into_anyhow)?;
        let listener = TcpListener::bind(settings.server.bind).await?;
        let address = listener.local_addr()?;
        let authenticator = Authenticator::new(&settings.auth);
        let settings_cache = SettingsCache::new(clock.clone(), &settings.session_security);
        settings_cache.listen(&events);
        let identity = IdentityCache::new(&events, db.clone(), settings.auth.identity_cache_entries);
        let passwords = PasswordPool::new(&settings.passwords).map_err(AppError::into_anyhow)?;
        let state = AppState {
            db,
            reads,
            clock,
            settings: Arc::new(settings),
            authenticator,
            events,
            settings_cache,
            identity,
            gate: Arc::default(),
            passwords,
            webhook_wake: DeliveryWake::default(),
        };
        state.webhook_wake.listen(&state.events);
        let deadlines = if state.settings.jobs.expire_at_deadline {
            Some(
                DeadlineScheduler::prepare(&state)
                    .await
                    .map_err(AppError::into_anyhow)?,
            )
        } else {
            None
        };
        let webhooks = if state.settings.webhooks.deliver {
            Some(
                webhook_delivery::prepare(state.clone())
                    .await
                    .map_err(AppError::into_anyhow)?,
            )
        } else {
            None
        };
        let schema = build_schema(state.clone());
        let shared = SharedSubscriptions::new(schema.clone(), state.clone(), &SHARED_FIELDS);
        let router = router(HttpState {
            schema,
            app: state.clone(),
            shared: Arc::new(shared),
        });
        Ok(Self {
            listener,
            address,
            router,
            state,
            background_jobs,
            deadlines,
            webhooks,
        })
    }

    /// The bound address (its port is the real one when 0 was asked for).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The connection pool the application uses.
    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    /// The application state shared by every request.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes; background jobs stop with it.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(address = %self.address, "listening");
        let sweeper = self.background_jobs.then(|| {
            let interval = Duration::from_secs(self.state.settings.jobs.expiry_sweep_interval_secs);
            spawn_expiry_sweeper(self.state.clone(), interval)
        });
        // Not a background job to leave to tests: the lock manager hears of
        // an expiry from it, at the session's end.
        let deadlines = self
            .deadlines
            .map(|deadlines| deadlines.spawn(self.state.clone()));
        let webhooks = self.webhooks.map(webhook_delivery::Courier::spawn);
        // Small frames (subscription events) must not wait for Nagle's algorithm.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(
            listener,
            self.router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        for task in [sweeper, deadlines, webhooks].into_iter().flatten() {
            task.abort();
        }
        // Activity seen but not yet written would otherwise be lost; a
        // database that is down does not hold the shutdown.
        let settled =
            tokio::time::timeout(ACTIVITY_FLUSH_PATIENCE, self.state.identity.settle_activity()).await;
        if settled.is_err() {
            tracing::warn!("recent activity could not be written before shutdown");
        }
        served
    }

    /// Serves until Ctrl-C or SIGTERM.
    pub(crate) async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// How long shutdown waits for the activity not yet written.
const ACTIVITY_FLUSH_PATIENCE: Duration = Duration::from_secs(5);

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
