//! The one error type of the application and its stable client-facing codes.
//!
//! Resolvers return `async_graphql::Result`; every error reaches the client
//! through [`AppError`] so that it carries `extensions.code`. Internal
//! failures are logged here and reach the client only as a generic message.
//!
//! `AppError` deliberately does not implement `Display`: async-graphql
//! converts any `Display` type into an error *without* extensions, so a bare
//! `?` would silently drop the code. Without `Display`, the only conversion
//! is ours.

use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr};

/// Everything that can go wrong while serving a request.
#[derive(Debug)]
pub enum AppError {
    /// No valid credentials were presented; the text says what to do.
    Unauthenticated(String),
    /// The login session the credentials are bound to has ended (logged
    /// out, revoked, evicted, invalidated or expired): log in again.
    /// `UNAUTHENTICATED`, with the reason in `extensions.reason`.
    LoginSessionEnded(entity::session_log::SessionEndReason),
    /// The caller is known but may not do this.
    Forbidden(String),
    /// The row does not exist or is outside the caller's scope.
    NotFound {
        /// What was looked for, e.g. `session`.
        resource: &'static str,
    },
    /// An argument is invalid; `field` names it.
    BadUserInput {
        /// The argument or input field at fault, as the client spelt it.
        field: String,
        /// What is wrong and what is accepted instead.
        message: String,
    },
    /// The change clashes with existing data (a duplicate, a stale state).
    Conflict(String),
    /// Too many failed password checks for this e-mail address or from this
    /// client address: nothing is checked before `retry_at`.
    TooManyAttempts {
        /// When the next attempt will be considered.
        retry_at: chrono::DateTime<chrono::Utc>,
        /// Whole seconds from now until `retry_at` (at least 1).
        retry_after_secs: i64,
    },
    /// The request asks for more than one login; the text says what is allowed.
    OneLoginPerRequest,
    /// The server is at capacity for this kind of work (password hashing);
    /// trying again shortly will do.
    Busy(String),
    /// A subscription's `after` cursor points before what the event log
    /// still keeps: the events after it are gone.
    CursorExpired {
        /// How many days the log keeps events.
        retention_days: i64,
    },
    /// Anything else: a bug or an unavailable dependency. Details go to the log only.
    Internal(anyhow::Error),
}

impl AppError {
    /// The stable `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) | Self::LoginSessionEnded(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::TooManyAttempts { .. } => "TOO_MANY_ATTEMPTS",
            Self::OneLoginPerRequest => "ONE_LOGIN_PER_REQUEST",
            Self::Busy(_) => "SERVER_BUSY",
            Self::CursorExpired { .. } => "CURSOR_EXPIRED",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// The message shown to the client: actionable, never internal details.
    pub fn message(&self) -> String {
        match self {
            Self::Forbidden(message)
            | Self::Conflict(message)
            | Self::Unauthenticated(message)
            | Self::Busy(message) => message.clone(),
            Self::TooManyAttempts { retry_after_secs, .. } => {
                format!("too many failed attempts: try again in {retry_after_secs} s")
            }
            Self::OneLoginPerRequest => {
                "a request may log in only once: send one `login` per request".to_owned()
            }
            Self::LoginSessionEnded(reason) => format!(
                "the login session has ended ({}): log in again",
                crate::services::auth::end_reason_text(*reason)
            ),
            Self::NotFound { resource } => format!("{resource} not found"),
            Self::BadUserInput { field, message } => format!("{field}: {message}"),
            Self::CursorExpired { retention_days } => format!(
                "after: the events after this cursor are gone (the log keeps {retention_days} days): \
                 reload the current state, then subscribe again without `after`"
            ),
            Self::Internal(_) => "internal error".to_owned(),
        }
    }

    /// `UNAUTHENTICATED` for a request that carried no credentials.
    pub(crate) fn login_required() -> Self {
        Self::Unauthenticated(
            "authentication required: log in and send the token as `Authorization: Bearer <token>`"
                .to_owned(),
        )
    }

    /// `FORBIDDEN` with an explanation.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    /// Converts into an `anyhow::Error` for command-line output, keeping the
    /// internal cause (the operator may see it; a client never does).
    pub(crate) fn into_anyhow(self) -> anyhow::Error {
        match self {
            Self::Internal(source) => source,
            other => anyhow::anyhow!(other.message()),
        }
    }

    /// A `BAD_USER_INPUT` error for `field`.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Wraps an unexpected failure.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }
}

impl AppError {
    /// `TOO_MANY_ATTEMPTS` until `retry_at`, as seen at `now`.
    pub(crate) fn too_many_attempts(
        now: chrono::DateTime<chrono::Utc>,
        retry_at: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let millis = (retry_at - now).num_milliseconds().max(1);
        Self::TooManyAttempts {
            retry_at,
            retry_after_secs: (millis + 999) / 1000,
        }
    }
}

impl From<DbErr> for AppError {
    fn from(error: DbErr) -> Self {
        match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Self::Conflict("a record with the same unique values already exists".to_owned())
            }
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                Self::Conflict("a referenced record does not exist or is still referenced".to_owned())
            }
            _ => Self::Internal(error.into()),
        }
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        if let Self::Internal(source) = self {
            tracing::error!(error = ?source, "internal error");
        }
        async_graphql::Error::new(self.message()).extend_with(|_, extensions| {
            extensions.set("code", self.code());
            match self {
                Self::BadUserInput { field, .. } => extensions.set("field", field.as_str()),
                Self::LoginSessionEnded(reason) => {
                    extensions.set("reason", crate::services::login_policy::end_reason_name(*reason))
                }
                Self::TooManyAttempts {
                    retry_at,
                    retry_after_secs,
                } => {
                    extensions.set("retryAfter", *retry_after_secs);
                    extensions.set(
                        "retryAt",
                        retry_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    );
                }
                _ => {}
            }
        })
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(error: AppError) -> Self {
        error.extend()
    }
}

/// The result type of services.
pub(crate) type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_details() {
        let error = AppError::internal(anyhow::anyhow!("relation \"x\" does not exist")).extend();
        assert_eq!(error.message, "internal error");
        let code = error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code"))
            .cloned();
        assert_eq!(code, Some(async_graphql::Value::from("INTERNAL")));
    }

    #[test]
    fn bad_input_names_the_field() {
        let error = AppError::bad_input("name", "must not be empty").extend();
        assert_eq!(error.message, "name: must not be empty");
        let field = error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("field"))
            .cloned();
        assert_eq!(field, Some(async_graphql::Value::from("name")));
    }
}
