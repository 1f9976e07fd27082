//! The test harness: a fresh database and a running application per test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use secrecy::SecretString;
use serde_json::{Value, json};
use session_manager::Application;
use session_manager::clock::ManualClock;
use session_manager::config::{ServiceCredential, ServiceGrant, Settings};
use session_manager::graphql::AppState;
use session_manager::startup::BuildOptions;
use session_manager::telemetry::{self, LogSink};
use tokio::sync::{Mutex, OnceCell, oneshot};

/// Which database a test runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file copied from a migrated template.
    Sqlite,
    /// A PostgreSQL database cloned from a migrated template; the server URL.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL when `TEST_POSTGRES_URL` is set.
    pub fn postgres() -> Option<Self> {
        std::env::var("TEST_POSTGRES_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(Self::Postgres)
    }
}

/// Generates one `#[tokio::test]` per backend for each listed
/// `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    match $crate::helpers::Backend::postgres() {
                        Some(backend) => super::$name(backend).await,
                        None => eprintln!("TEST_POSTGRES_URL is not set: skipped on PostgreSQL"),
                    }
                }
            )*
        }
    };
}

/// The token secret every test instance shares (so instances accept each
/// other's tokens).
pub const TEST_TOKEN_SECRET: &str = "test-token-secret-test-token-secret-0123";

/// The credential of the `lock-manager` service in tests (granted `lock_state`).
pub const SERVICE_TOKEN: &str = "lock-manager-service-token-0123456789abcdef";

/// The credential of the `notification-service` in tests (granted `notifications`).
pub const NOTIFICATION_SERVICE_TOKEN: &str = "notification-service-token-0123456789abcdef";

/// The instant the test clock starts at.
pub fn test_epoch() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
        .single()
        .expect("valid date")
}

/// A running application on its own database.
pub struct TestApp {
    /// Where the server listens.
    pub address: SocketAddr,
    /// A connection to the test's database (the application's own pool).
    pub db: DatabaseConnection,
    /// The application's clock.
    pub clock: Arc<ManualClock>,
    /// How many SQL statements the application has run so far.
    pub statements: Arc<AtomicUsize>,
    /// The application's state (to run its jobs by hand).
    pub state: AppState,
    /// Event-bus subscribers the application has of its own (e.g. caches).
    pub baseline_subscribers: usize,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The database, dropped with the app.
    pub database: TestDatabase,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestApp {
    /// Spawns the application on a fresh database.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns the application on a fresh database with adjusted settings.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Self {
        let database = TestDatabase::create(backend).await;
        Self::spawn_on(database, adjust).await
    }

    /// Spawns the application on an existing test database (several
    /// instances may share one).
    pub async fn spawn_on(database: TestDatabase, adjust: impl FnOnce(&mut Settings)) -> Self {
        init_logs();
        let mut settings = Settings::default();
        settings.server.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        settings.database.url = SecretString::from(database.url.clone());
        settings.database.max_connections = 5;
        // Tests fire bursts of logins; the pool still runs one hash per core.
        settings.passwords.hashing_queue = 256;
        // Delivery must come from wake-ups alone: a poll would hide a lost one.
        settings.events.poll_interval_secs = 0;
        settings.auth.token_secret = Some(SecretString::from(TEST_TOKEN_SECRET));
        // The webhook receivers of the tests listen on loopback.
        settings.webhooks.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        settings.auth.services = vec![
            ServiceCredential {
                name: "lock-manager".to_owned(),
                token: SecretString::from(SERVICE_TOKEN),
                grants: vec![ServiceGrant::LockState],
            },
            ServiceCredential {
                name: "notification-service".to_owned(),
                token: SecretString::from(NOTIFICATION_SERVICE_TOKEN),
                grants: vec![ServiceGrant::Notifications],
            },
        ];
        adjust(&mut settings);
        let clock = Arc::new(ManualClock::new(test_epoch()));
        let statements = Arc::new(AtomicUsize::new(0));
        let counter = statements.clone();
        let options = BuildOptions {
            clock: clock.clone(),
            statement_observer: Some(Arc::new(move |_info: &sea_orm::metric::Info<'_>| {
                counter.fetch_add(1, Ordering::SeqCst);
            })),
            background_jobs: false,
        };
        let application = Application::build_with(settings, options)
            .await
            .expect("application builds");
        let state = application.state().clone();
        let baseline_subscribers = state.events.subscriber_count();
        let address = application.address();
        let db = application.db().clone();
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(application.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            address,
            db,
            clock,
            statements,
            state,
            baseline_subscribers,
            client: reqwest::Client::new(),
            database,
            shutdown: Some(shutdown),
        }
    }

    /// `http://ADDRESS{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// `ws://ADDRESS/graphql/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.address)
    }

    /// POSTs a GraphQL request (accepting `application/graphql-response+json`)
    /// and returns the status and body.
    pub async fn post_graphql(&self, query: &str, variables: Value) -> (StatusCode, Value) {
        self.post_graphql_as(None, query, variables).await
    }

    /// POSTs a GraphQL request with `Authorization: Bearer <token>`.
    pub async fn post_graphql_as(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    /// The body of a POST of `query` with `variables` as `token`, as text
    /// (for what parsing would hide: the order of keys, exact bytes).
    pub async fn raw_as(&self, token: &str, query: &str, variables: Value) -> String {
        self.client
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("text body")
    }

    /// Runs a GraphQL operation that must succeed and returns its `data`.
    pub async fn graphql_ok(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.post_graphql(query, variables).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Runs an operation as `token`; it must succeed. Returns its `data`.
    pub async fn ok_as(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.post_graphql_as(Some(token), query, variables).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Runs an operation as `token` (or anonymously); it must fail. Returns
    /// its first error.
    pub async fn error_as(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let (_, body) = self.post_graphql_as(token, query, variables).await;
        assert!(body["errors"][0].is_object(), "expected an error: {body:#}");
        body["errors"][0].clone()
    }

    /// Logs in and returns the token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let data = self
            .graphql_ok(
                "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }",
                json!({ "email": email, "password": password }),
            )
            .await;
        data["login"]["token"].as_str().expect("a token").to_owned()
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The code in an error's extensions.
pub fn error_code(error: &Value) -> &str {
    error["extensions"]["code"].as_str().unwrap_or_default()
}

fn init_logs() {
    let sink = if std::env::var_os("TEST_LOG").is_some() {
        LogSink::Stdout
    } else {
        LogSink::Discard
    };
    let settings = session_manager::config::TelemetrySettings {
        filter: "debug".to_owned(),
        ..Default::default()
    };
    telemetry::init(&settings, sink);
}

/// A database of its own for one test, removed when dropped.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// The connection URL.
    pub url: String,
    _cleanup: Arc<Cleanup>,
}

#[derive(Debug)]
enum Cleanup {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { server_url: String, name: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Self::Postgres { server_url, name } = self {
            let (server_url, name) = (server_url.clone(), name.clone());
            // Drop is synchronous: do the async work on a runtime of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    if let Ok(admin) = Database::connect(&server_url).await {
                        let _ = admin
                            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .await;
                        let _ = admin.close().await;
                    }
                });
                Ok::<_, std::io::Error>(())
            })
            .join();
        }
    }
}

static SQLITE_TEMPLATE: OnceCell<(tempfile::TempDir, PathBuf)> = OnceCell::const_new();
static POSTGRES_TEMPLATE: OnceCell<String> = OnceCell::const_new();
/// PostgreSQL refuses to copy a template that another copy is reading.
static POSTGRES_CLONE_LOCK: Mutex<()> = Mutex::const_new(());
static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDatabase {
    /// A fresh, migrated database.
    pub async fn create(backend: Backend) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        match &backend {
            Backend::Sqlite => {
                let (_, template) = SQLITE_TEMPLATE
                    .get_or_init(|| async {
                        let dir = tempfile::tempdir().expect("temp dir");
                        let path = dir.path().join("template.db");
                        let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
                            .await
                            .expect("template connects");
                        session_manager::db::migrate(&db)
                            .await
                            .expect("template migrates");
                        db.close().await.expect("template closes");
                        (dir, path)
                    })
                    .await;
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join(format!("test-{n}.db"));
                std::fs::copy(template, &path).expect("template copied");
                Self {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    _cleanup: Arc::new(Cleanup::Sqlite { _dir: dir }),
                }
            }
            Backend::Postgres(server_url) => {
                let template = POSTGRES_TEMPLATE
                    .get_or_init(|| create_postgres_template(server_url.clone()))
                    .await;
                let name = format!("sm_test_{}_{n}", std::process::id());
                {
                    let _guard = POSTGRES_CLONE_LOCK.lock().await;
                    let admin = Database::connect(server_url)
                        .await
                        .expect("postgres server reachable");
                    admin
                        .execute_unprepared(&format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""))
                        .await
                        .expect("database cloned from template");
                    admin.close().await.expect("admin connection closes");
                }
                Self {
                    url: database_url(server_url, &name),
                    _cleanup: Arc::new(Cleanup::Postgres {
                        server_url: server_url.clone(),
                        name,
                    }),
                }
            }
        }
    }

    /// A new connection to this database.
    pub async fn connect(&self) -> DatabaseConnection {
        Database::connect(&self.url)
            .await
            .expect("test database connects")
    }
}

/// `server_url` with its database name replaced by `name`.
fn database_url(server_url: &str, name: &str) -> String {
    let (base, query) = server_url
        .split_once('?')
        .map_or((server_url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

async fn create_postgres_template(server_url: String) -> String {
    let admin = Database::connect(&server_url)
        .await
        .expect("postgres server reachable");
    drop_stale_databases(&admin).await;
    let name = format!("sm_tpl_{}", std::process::id());
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .expect("old template dropped");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("template created");
    let template = Database::connect(database_url(&server_url, &name))
        .await
        .expect("template connects");
    session_manager::db::migrate(&template)
        .await
        .expect("template migrates");
    template.close().await.expect("template closes");
    admin.close().await.expect("admin connection closes");
    name
}

/// Removes databases left behind by test processes that no longer run.
async fn drop_stale_databases(admin: &DatabaseConnection) {
    let rows = admin
        .query_all_raw(Statement::from_string(
            admin.get_database_backend(),
            "SELECT datname FROM pg_database WHERE datname LIKE 'sm\\_test\\_%' OR datname LIKE 'sm\\_tpl\\_%'",
        ))
        .await
        .unwrap_or_default();
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "datname") else {
            continue;
        };
        let pid = name.split('_').nth(2).and_then(|pid| pid.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

#[test]
fn database_urls_keep_the_server_and_swap_the_name() {
    assert_eq!(
        database_url("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        database_url("postgres://u@h/db?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    assert_eq!(database_url("postgres://u@h", "x"), "postgres://u@h/x");
}
