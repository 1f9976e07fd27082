//! Builds the application: configuration in, a bound server out. Used by
//! `main` and by the integration tests alike.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::graphql::{AppState, build_schema};
use crate::http::{HttpState, router};
use crate::services::auth::Authenticator;

/// A built application, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    router: axum::Router,
    state: AppState,
}

impl Application {
    /// Connects to the database, migrates it, and binds the listener, with the real clock.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Like [`Application::build`], with a given clock (tests drive time by hand).
    pub async fn build_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let db = crate::db::connect(&settings.database).await?;
        if settings.database.migrate_on_start {
            crate::db::migrate(&db).await?;
        }
        let listener = TcpListener::bind(settings.server.bind).await?;
        let address = listener.local_addr()?;
        let authenticator = Authenticator::new(&settings.auth);
        let state = AppState {
            db,
            clock,
            settings: Arc::new(settings),
            authenticator,
        };
        let schema = build_schema(state.clone());
        let router = router(HttpState {
            schema,
            app: state.clone(),
        });
        Ok(Self {
            listener,
            address,
            router,
            state,
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

    /// Serves until `shutdown` completes.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(address = %self.address, "listening");
        // Small frames (subscription events) must not wait for Nagle's algorithm.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(
            listener,
            self.router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }

    /// Serves until Ctrl-C or SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

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
