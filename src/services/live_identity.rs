//! The identity of a long-lived connection, kept current: one watcher per
//! WebSocket connection looks at it again whenever an event says something
//! it rests on changed (its login session, account, memberships, settings)
//! and when its deadline (idle or absolute timeout, token expiry) comes, so
//! that its subscriptions end on time and not at their next event.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::session_log::SessionEndReason;
use tokio::sync::watch;

use crate::auth::{Identity, UserIdentity, bearer_token};
use crate::error::AppError;
use crate::services::auth::{Activity, authenticate, next_deadline};
use crate::services::identity::IdentitySignal;
use crate::services::scope::Scope;
use crate::state::AppState;

/// Where a connection's identity stands.
#[derive(Debug, Clone)]
pub(crate) enum Standing {
    /// Not watched: before `connection_init`, or not a logged-in user.
    Unwatched,
    /// A logged-in user, until `deadline` at the latest.
    Valid {
        /// Who, in which tenant, with which role.
        viewer: Arc<UserIdentity>,
        /// When it is to be looked at again without any event.
        deadline: Option<DateTime<Utc>>,
        /// The signal version this standing accounts for.
        version: (u64, u64),
    },
    /// Logged in, but without access to any tenant.
    NoAccess {
        /// Why.
        reason: String,
        /// The signal version this standing accounts for.
        version: (u64, u64),
    },
    /// The login session (or the credentials) no longer work: the end.
    Ended(Ending),
}

/// Why a connection's credentials stopped working.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    /// Its login session ended.
    LoginSession(SessionEndReason),
    /// The credentials were refused (token expired, account gone).
    Refused(String),
}

impl Ending {
    /// The error its subscriptions end with.
    pub(crate) fn error(&self) -> AppError {
        match self {
            Self::LoginSession(reason) => AppError::LoginSessionEnded(*reason),
            Self::Refused(reason) => AppError::Unauthenticated(reason.clone()),
        }
    }
}

impl Standing {
    fn version(&self) -> Option<(u64, u64)> {
        match self {
            Self::Valid { version, .. } | Self::NoAccess { version, .. } => Some(*version),
            Self::Unwatched | Self::Ended(_) => None,
        }
    }
}

/// A connection's view of its standing: what its subscriptions consult
/// before each event they deliver.
#[derive(Debug, Clone)]
pub(crate) struct LiveIdentity {
    standing: watch::Receiver<Standing>,
    signal: IdentitySignal,
    state: AppState,
}

impl LiveIdentity {
    /// The standing as of every change signalled so far and the clock:
    /// waits (for the watcher) while a signalled change or a reached
    /// deadline is not yet accounted for.
    pub(crate) async fn current(&mut self) -> Standing {
        loop {
            let wanted = self.signal.version();
            let standing = self.standing.borrow_and_update().clone();
            let settled = match &standing {
                Standing::Ended(_) | Standing::Unwatched => true,
                Standing::Valid {
                    deadline, version, ..
                } => *version >= wanted && deadline.is_none_or(|at| self.state.clock.now() < at),
                Standing::NoAccess { version, .. } => *version >= wanted,
            };
            if settled {
                return standing;
            }
            if self.standing.changed().await.is_err() {
                // The watcher is gone: so is the connection.
                return Standing::Ended(Ending::Refused("the connection has closed".to_owned()));
            }
        }
    }

    /// Resolves when the standing changes.
    pub(crate) async fn changed(&mut self) {
        if self.standing.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether a subscription made in `scope` may go on: the error it ends
    /// with if not (UNAUTHENTICATED with the reason when the login session
    /// ended, FORBIDDEN when the tenant or role changed).
    pub(crate) async fn admits(&mut self, scope: &Scope) -> Result<(), AppError> {
        match self.current().await {
            Standing::Valid { viewer, .. } => match Scope::of_user(&viewer) {
                Ok(now) if now == *scope => Ok(()),
                Ok(_) | Err(_) => Err(changed()),
            },
            Standing::NoAccess { reason, .. } => Err(AppError::Forbidden(reason)),
            Standing::Ended(ending) => Err(ending.error()),
            // Nothing watches an identity that is not a user's: nothing to end.
            Standing::Unwatched => Ok(()),
        }
    }
}

fn changed() -> AppError {
    AppError::forbidden("your tenant or role changed since you subscribed: subscribe again")
}

/// The watcher of one connection, started when it is initialised.
pub(crate) struct Watcher {
    sender: Arc<watch::Sender<Standing>>,
    state: AppState,
}

impl Watcher {
    /// A watcher not yet watching anything, and the receiving end of its
    /// standing (which the connection's close signal waits on).
    pub(crate) fn new(state: AppState) -> (Self, watch::Receiver<Standing>) {
        let (sender, receiver) = watch::channel(Standing::Unwatched);
        (
            Self {
                sender: Arc::new(sender),
                state,
            },
            receiver,
        )
    }

    /// The view an operation of the connection gets.
    pub(crate) fn live(&self, user_id: uuid::Uuid) -> LiveIdentity {
        LiveIdentity {
            standing: self.sender.subscribe(),
            signal: self.state.identity.signal(user_id),
            state: self.state.clone(),
        }
    }

    /// Starts watching a connection initialised as `identity` with
    /// `authorization`. Only a logged-in user's identity is watched.
    pub(crate) fn start(&self, identity: &Identity, authorization: String) {
        let Identity::User(viewer) = identity else {
            return;
        };
        let Some(claims) = bearer_token(&authorization)
            .and_then(|token| self.state.authenticator.keys.verify_signature(token).ok())
        else {
            return;
        };
        let token_expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let state = self.state.clone();
        let sender = self.sender.clone();
        let signal = state.identity.signal(viewer.user_id);
        // As authenticated a moment ago, until the watcher has looked.
        sender.send_replace(Standing::Valid {
            viewer: viewer.clone(),
            deadline: None,
            version: signal.version(),
        });
        tokio::spawn(watch_connection(
            state,
            sender,
            signal,
            authorization,
            token_expires_at,
        ));
    }
}

/// Looks at the identity again on every signal and at every deadline,
/// until it ends or nobody listens.
async fn watch_connection(
    state: AppState,
    sender: Arc<watch::Sender<Standing>>,
    mut signal: IdentitySignal,
    authorization: String,
    token_expires_at: DateTime<Utc>,
) {
    loop {
        let version = signal.mark_seen();
        let now = state.clock.now();
        // Boxed: the task waits far longer than it authenticates, and its
        // waiting state should not carry an authentication's.
        let identity = Box::pin(authenticate(&state, now, Some(&authorization), Activity::Ignore)).await;
        let standing = match identity {
            Ok(Identity::User(viewer)) => {
                match Box::pin(next_deadline(&state, &viewer, token_expires_at)).await {
                    Ok(deadline) => Standing::Valid {
                        viewer,
                        deadline: Some(deadline),
                        version,
                    },
                    Err(error) => {
                        if !retry_later(&error, &sender).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            Ok(Identity::NoAccess(reason)) => Standing::NoAccess { reason, version },
            Ok(Identity::Ended(reason)) => Standing::Ended(Ending::LoginSession(reason)),
            Ok(Identity::Rejected(reason)) => Standing::Ended(Ending::Refused(reason)),
            Ok(Identity::Anonymous | Identity::Service(_)) => {
                Standing::Ended(Ending::Refused("the credentials changed".to_owned()))
            }
            Err(error) => {
                if !retry_later(&error, &sender).await {
                    return;
                }
                continue;
            }
        };
        let deadline = match &standing {
            Standing::Valid { deadline, .. } => *deadline,
            _ => None,
        };
        let ended = matches!(standing, Standing::Ended(_));
        debug_assert!(ended || standing.version().is_some());
        sender.send_replace(standing);
        if ended {
            return;
        }
        let timer = async {
            match deadline {
                Some(at) => state.clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = signal.changed() => {}
            () = timer => {}
            () = sender.closed() => return,
        }
    }
}

/// A transient failure (the database): look again shortly.
/// Whether to try again: false once the connection has closed meanwhile.
async fn retry_later(error: &AppError, sender: &watch::Sender<Standing>) -> bool {
    tracing::warn!(
        code = error.code(),
        "could not check a connection's identity; retrying"
    );
    tokio::select! {
        () = tokio::time::sleep(std::time::Duration::from_secs(1)) => true,
        () = sender.closed() => false,
    }
}
