//! The content of sessions: ordered modules and their videos (document 001).
//!
//! Rules:
//! - Every read and write is inside the viewer's [`Scope`]: whoever has the
//!   session in scope (the user, their guardian, a tenant admin) may manage
//!   its content; anything else reads as `NOT_FOUND`.
//! - The content of a session that has ended, expired or been revoked, or
//!   whose end time has passed, is history: changing it is a `CONFLICT`.
//!   Reading it is always allowed.
//! - The modules of a session are always numbered densely `0..n-1`. Every
//!   change runs in one transaction that first locks the parent session row
//!   (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's single writer already
//!   serializes), so concurrent changes to one session take turns, and
//!   positions are shifted without ever breaking `UNIQUE (session_id,
//!   order_index)` mid-statement: the rows that move are first lifted above
//!   every current and final position, then put in their final places.
//! - Inputs are validated before anything is written; each failure is a
//!   `BAD_USER_INPUT` naming the field.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::session::SessionStatus;
use entity::{module, session, video};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityName,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::config::ContentSettings;
use crate::error::{AppError, AppResult};
use crate::services::scope::Scope;
use crate::services::validation::required_name;

/// Longest accepted module name, in characters.
pub(crate) const MAX_MODULE_NAME: usize = 255;
/// Most modules a session holds (the cost of a query reckons with it).
pub(crate) const MAX_MODULES_PER_SESSION: usize = 50;
/// Most videos a module holds (the cost of a query reckons with it).
pub(crate) const MAX_VIDEOS_PER_MODULE: usize = 20;
/// Longest accepted video file name, in characters.
pub(crate) const MAX_FILE_NAME: usize = 255;
/// Longest accepted video URL, in characters.
pub(crate) const MAX_FILE_URL: usize = 1024;
/// Largest file size the API can carry exactly (2^53 − 1, the largest
/// integer a JSON number holds exactly in every client).
pub(crate) const MAX_EXACT_FILE_SIZE: i64 = (1 << 53) - 1;

/// One module of a session in scope; out of scope reads as not found.
pub(crate) async fn find_module(
    db: &impl ConnectionTrait,
    scope: &Scope,
    id: Uuid,
) -> AppResult<module::Model> {
    module::Entity::find_by_id(id)
        .filter(module::Column::SessionId.in_subquery(scope.session_ids()))
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "module" })
}

/// The ids of the modules in scope (a subquery).
fn module_ids(scope: &Scope) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(module::Column::Id)
        .from(module::Entity.table_ref())
        .and_where(module::Column::SessionId.in_subquery(scope.session_ids()))
        .to_owned()
}

/// One video of a session in scope; out of scope reads as not found.
pub(crate) async fn find_video(
    db: &impl ConnectionTrait,
    scope: &Scope,
    id: Uuid,
) -> AppResult<video::Model> {
    video::Entity::find_by_id(id)
        .filter(video::Column::ModuleId.in_subquery(module_ids(scope)))
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "video" })
}

/// Whether the content of `session` may still change at `now`: not ended,
/// expired or revoked, and not past its end time.
pub(crate) fn is_editable(session: &session::Model, now: DateTime<Utc>) -> bool {
    session.status == SessionStatus::Active && session.end_time.is_none_or(|end| end > now)
}

/// Locks the session (in scope) whose content is about to change, so that
/// concurrent changes to it take turns, and checks that it may still change.
async fn lock_session(
    txn: &DatabaseTransaction,
    scope: &Scope,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<session::Model> {
    let mut query = session::Entity::find_by_id(session_id).filter(scope.sessions());
    // SQLite has no row locks (and rejects FOR UPDATE); its transactions
    // already run one writer at a time.
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        query = query.lock_exclusive();
    }
    let session = query
        .one(txn)
        .await?
        .ok_or(AppError::NotFound { resource: "session" })?;
    scope.require_may_change_session(session.guardian_id)?;
    if !is_editable(&session, now) {
        return Err(AppError::Conflict(
            "the session has ended: the content of an ended, expired or revoked session cannot change"
                .to_owned(),
        ));
    }
    Ok(session)
}

/// The modules of a locked session, in order.
async fn locked_modules(txn: &DatabaseTransaction, session_id: Uuid) -> AppResult<Vec<module::Model>> {
    Ok(module::Entity::find()
        .filter(module::Column::SessionId.eq(session_id))
        .order_by_asc(module::Column::OrderIndex)
        .order_by_asc(module::Column::Id)
        .all(txn)
        .await?)
}

/// Locks the session of a module in scope and returns it with the
/// session's modules in order and the module's index among them.
async fn lock_module(
    txn: &DatabaseTransaction,
    scope: &Scope,
    module_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<(Vec<module::Model>, usize)> {
    // A module never changes session, so its session may be read before the lock.
    let module = find_module(txn, scope, module_id).await?;
    lock_session(txn, scope, module.session_id, now).await?;
    // Read again under the lock: a concurrent change may have moved or deleted it.
    let modules = locked_modules(txn, module.session_id).await?;
    let index = modules
        .iter()
        .position(|row| row.id == module_id)
        .ok_or(AppError::NotFound { resource: "module" })?;
    Ok((modules, index))
}

/// A position as stored (`i32`).
fn stored_position(position: usize) -> AppResult<i32> {
    i32::try_from(position).map_err(|_| AppError::internal(anyhow::anyhow!("module position overflows i32")))
}

/// Gives every module of `current` (one session's modules) the position
/// `targets` assigns it, touching only those whose position changes, without
/// ever having two rows at one position: the rows that move are first
/// lifted above every current and final position, then put in place in one
/// statement.
async fn reposition(
    txn: &DatabaseTransaction,
    current: &[module::Model],
    targets: &HashMap<Uuid, i32>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let moving: Vec<(Uuid, i32)> = current
        .iter()
        .filter_map(|row| {
            targets
                .get(&row.id)
                .filter(|target| **target != row.order_index)
                .map(|target| (row.id, *target))
        })
        .collect();
    if moving.is_empty() {
        return Ok(());
    }
    let highest = current
        .iter()
        .map(|row| row.order_index)
        .chain(targets.values().copied())
        .max()
        .unwrap_or(0);
    let lift = highest
        .checked_add(1)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("module positions overflow i32")))?;
    let ids: Vec<Uuid> = moving.iter().map(|(id, _)| *id).collect();
    module::Entity::update_many()
        .col_expr(
            module::Column::OrderIndex,
            Expr::col(module::Column::OrderIndex).add(lift),
        )
        .col_expr(module::Column::UpdatedAt, Expr::value(now))
        .filter(module::Column::Id.is_in(ids.iter().copied()))
        .exec(txn)
        .await?;
    let placed = moving
        .iter()
        .fold(CaseStatement::new(), |case, (id, target)| {
            case.case(module::Column::Id.eq(*id), Expr::value(*target))
        })
        .finally(Expr::col(module::Column::OrderIndex));
    module::Entity::update_many()
        .col_expr(module::Column::OrderIndex, placed.into())
        .filter(module::Column::Id.is_in(ids))
        .exec(txn)
        .await?;
    Ok(())
}

/// Positions `0..n-1` in the order of `ids`.
fn dense(ids: impl IntoIterator<Item = Uuid>) -> AppResult<HashMap<Uuid, i32>> {
    ids.into_iter()
        .enumerate()
        .map(|(index, id)| Ok((id, stored_position(index)?)))
        .collect()
}

/// Creates a module at `position` (`0..=n`, default `n`: appended); the
/// modules at and after it move down one.
pub(crate) async fn create_module(
    txn: &DatabaseTransaction,
    scope: &Scope,
    now: DateTime<Utc>,
    session_id: Uuid,
    name: &str,
    position: Option<i32>,
) -> AppResult<module::Model> {
    let name = required_name("name", name, MAX_MODULE_NAME)?;
    lock_session(txn, scope, session_id, now).await?;
    let modules = locked_modules(txn, session_id).await?;
    let count = modules.len();
    if count >= MAX_MODULES_PER_SESSION {
        return Err(AppError::Conflict(format!(
            "a session holds at most {MAX_MODULES_PER_SESSION} modules; this one is full"
        )));
    }
    let index = match position {
        None => count,
        Some(position) => usize::try_from(position)
            .ok()
            .filter(|index| *index <= count)
            .ok_or_else(|| {
                AppError::bad_input(
                    "position",
                    format!(
                        "must be between 0 and {count} (the number of modules; omit it to append), got {position}"
                    ),
                )
            })?,
    };
    let mut order: Vec<Option<Uuid>> = modules.iter().map(|row| Some(row.id)).collect();
    order.insert(index, None);
    let targets = order
        .iter()
        .enumerate()
        .filter_map(|(at, id)| id.map(|id| Ok((id, stored_position(at)?))))
        .collect::<AppResult<HashMap<_, _>>>()?;
    reposition(txn, &modules, &targets, now).await?;
    let created = module::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(session_id),
        name: Set(name),
        order_index: Set(stored_position(index)?),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await?;
    Ok(created)
}

/// Renames a module.
pub(crate) async fn rename_module(
    txn: &DatabaseTransaction,
    scope: &Scope,
    now: DateTime<Utc>,
    id: Uuid,
    name: &str,
) -> AppResult<module::Model> {
    let name = required_name("name", name, MAX_MODULE_NAME)?;
    let (modules, index) = lock_module(txn, scope, id, now).await?;
    let Some(module) = modules.into_iter().nth(index) else {
        return Err(AppError::NotFound { resource: "module" });
    };
    let mut active: module::ActiveModel = module.into();
    active.name = Set(name);
    active.updated_at = Set(now);
    Ok(active.update(txn).await?)
}

/// Moves a module to `position` (`0..n-1`); the modules between its old and
/// new place close up. Returns the session's modules in their new order.
pub(crate) async fn move_module(
    txn: &DatabaseTransaction,
    scope: &Scope,
    now: DateTime<Utc>,
    id: Uuid,
    position: i32,
) -> AppResult<Vec<module::Model>> {
    let (modules, index) = lock_module(txn, scope, id, now).await?;
    let count = modules.len();
    let target = usize::try_from(position)
        .ok()
        .filter(|target| *target < count)
        .ok_or_else(|| {
            AppError::bad_input(
                "position",
                format!(
                    "must be between 0 and {} (the session has {count} modules), got {position}",
                    count.saturating_sub(1)
                ),
            )
        })?;
    let mut order: Vec<Uuid> = modules.iter().map(|row| row.id).collect();
    let moved = order.remove(index);
    order.insert(target, moved);
    reposition(txn, &modules, &dense(order)?, now).await?;
    locked_modules(txn, modules[0].session_id).await
}

/// Deletes a module and its videos; the modules after it move up one.
/// Returns the session's remaining modules in order.
pub(crate) async fn delete_module(
    txn: &DatabaseTransaction,
    scope: &Scope,
    now: DateTime<Utc>,
    id: Uuid,
) -> AppResult<Vec<module::Model>> {
    let (mut modules, index) = lock_module(txn, scope, id, now).await?;
    let removed = modules.remove(index);
    module::Entity::delete_by_id(removed.id).exec(txn).await?;
    reposition(txn, &modules, &dense(modules.iter().map(|row| row.id))?, now).await?;
    locked_modules(txn, removed.session_id).await
}

/// Puts the session's modules in the order of `module_ids`, which must name
/// every module of the session exactly once. Returns them in their new order.
pub(crate) async fn reorder_modules(
    txn: &DatabaseTransaction,
    scope: &Scope,
    now: DateTime<Utc>,
    session_id: Uuid,
    module_ids: &[Uuid],
) -> AppResult<Vec<module::Model>> {
    lock_session(txn, scope, session_id, now).await?;
    let modules = locked_modules(txn, session_id).await?;
    check_permutation(&modules, module_ids)?;
    reposition(txn, &modules, &dense(module_ids.iter().copied())?, now).await?;
    locked_modules(txn, session_id).await
}

/// Fails with `BAD_USER_INPUT` on `moduleIds` unless `ids` names every
/// module of `modules` exactly once, saying what is missing, extra or
/// repeated.
fn check_permutation(modules: &[module::Model], ids: &[Uuid]) -> AppResult<()> {
    let existing: HashSet<Uuid> = modules.iter().map(|row| row.id).collect();
    let mut seen = HashSet::new();
    let mut repeated = Vec::new();
    let mut unknown = Vec::new();
    for id in ids {
        if !seen.insert(*id) {
            if !repeated.contains(id) {
                repeated.push(*id);
            }
        } else if !existing.contains(id) {
            unknown.push(*id);
        }
    }
    let missing: Vec<Uuid> = modules
        .iter()
        .map(|row| row.id)
        .filter(|id| !seen.contains(id))
        .collect();
    if missing.is_empty() && unknown.is_empty() && repeated.is_empty() {
        return Ok(());
    }
    let list = |ids: &[Uuid]| ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ");
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("missing {}", list(&missing)));
    }
    if !unknown.is_empty() {
        problems.push(format!("not modules of this session: {}", list(&unknown)));
    }
    if !repeated.is_empty() {
        problems.push(format!("listed more than once: {}", list(&repeated)));
    }
    Err(AppError::bad_input(
        "moduleIds",
        format!(
            "must list each of the session's {} modules exactly once ({})",
            modules.len(),
            problems.join("; ")
        ),
    ))
}

/// A new video, as the client sent it.
#[derive(Debug, Clone)]
pub(crate) struct NewVideo {
    /// File name.
    pub file_name: String,
    /// Where the file is served from.
    pub file_url: String,
    /// Size in bytes.
    pub file_size: i64,
    /// MIME type.
    pub mime_type: String,
}

/// Changes to a video, as the client sent them; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub(crate) struct VideoChanges {
    /// New file name.
    pub file_name: Option<String>,
    /// New URL.
    pub file_url: Option<String>,
    /// New size in bytes.
    pub file_size: Option<i64>,
    /// New MIME type.
    pub mime_type: Option<String>,
}

/// Adds a video to a module.
pub(crate) async fn add_video(
    txn: &DatabaseTransaction,
    scope: &Scope,
    rules: &ContentSettings,
    now: DateTime<Utc>,
    module_id: Uuid,
    input: NewVideo,
) -> AppResult<video::Model> {
    let file_name = file_name(&input.file_name)?;
    let file_url = file_url(&input.file_url)?;
    let file_size = file_size(rules, input.file_size)?;
    let mime_type = mime_type(rules, &input.mime_type)?;
    lock_module(txn, scope, module_id, now).await?;
    let videos = video::Entity::find()
        .filter(video::Column::ModuleId.eq(module_id))
        .count(txn)
        .await?;
    if videos >= MAX_VIDEOS_PER_MODULE as u64 {
        return Err(AppError::Conflict(format!(
            "a module holds at most {MAX_VIDEOS_PER_MODULE} videos; this one is full"
        )));
    }
    Ok(video::ActiveModel {
        id: Set(Uuid::now_v7()),
        module_id: Set(module_id),
        file_name: Set(file_name),
        file_url: Set(file_url),
        file_size: Set(file_size),
        mime_type: Set(mime_type),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await?)
}

/// Changes a video's file name, URL, size or MIME type.
pub(crate) async fn update_video(
    txn: &DatabaseTransaction,
    scope: &Scope,
    rules: &ContentSettings,
    now: DateTime<Utc>,
    id: Uuid,
    changes: VideoChanges,
) -> AppResult<video::Model> {
    let file_name = changes.file_name.as_deref().map(file_name).transpose()?;
    let file_url = changes.file_url.as_deref().map(file_url).transpose()?;
    let file_size = changes.file_size.map(|size| file_size(rules, size)).transpose()?;
    let mime_type = changes
        .mime_type
        .as_deref()
        .map(|mime| mime_type(rules, mime))
        .transpose()?;
    if file_name.is_none() && file_url.is_none() && file_size.is_none() && mime_type.is_none() {
        return Err(AppError::bad_input(
            "input",
            "nothing to change: set at least one of fileName, fileUrl, fileSize, mimeType",
        ));
    }
    let video = locked_video(txn, scope, id, now).await?;
    let mut active: video::ActiveModel = video.into();
    if let Some(file_name) = file_name {
        active.file_name = Set(file_name);
    }
    if let Some(file_url) = file_url {
        active.file_url = Set(file_url);
    }
    if let Some(file_size) = file_size {
        active.file_size = Set(file_size);
    }
    if let Some(mime_type) = mime_type {
        active.mime_type = Set(mime_type);
    }
    active.updated_at = Set(now);
    Ok(active.update(txn).await?)
}

/// Deletes a video; returns it as it was.
pub(crate) async fn delete_video(
    txn: &DatabaseTransaction,
    scope: &Scope,
    now: DateTime<Utc>,
    id: Uuid,
) -> AppResult<video::Model> {
    let video = locked_video(txn, scope, id, now).await?;
    video::Entity::delete_by_id(video.id).exec(txn).await?;
    Ok(video)
}

/// A video in scope, read again after its session is locked.
async fn locked_video(
    txn: &DatabaseTransaction,
    scope: &Scope,
    id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<video::Model> {
    let video = find_video(txn, scope, id).await?;
    lock_module(txn, scope, video.module_id, now)
        .await
        .map_err(|error| match error {
            AppError::NotFound { .. } => AppError::NotFound { resource: "video" },
            other => other,
        })?;
    video::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or(AppError::NotFound { resource: "video" })
}

/// A video file name: 1–255 characters once trimmed, a plain name (no path
/// separators, no control characters, not `.` or `..`).
pub fn file_name(value: &str) -> AppResult<String> {
    let name = required_name("fileName", value, MAX_FILE_NAME)?;
    if name.contains(['/', '\\']) {
        return Err(AppError::bad_input(
            "fileName",
            "must be a plain file name without `/` or `\\`",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            "fileName",
            "must not contain control characters",
        ));
    }
    if name == "." || name == ".." {
        return Err(AppError::bad_input(
            "fileName",
            "must be a file name, not `.` or `..`",
        ));
    }
    Ok(name)
}

/// A video URL: an absolute `http` or `https` URL with a host and without
/// credentials, at most 1024 characters; stored in its normalized form.
pub fn file_url(value: &str) -> AppResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::bad_input("fileUrl", "must not be empty"));
    }
    let length = trimmed.chars().count();
    if length > MAX_FILE_URL {
        return Err(AppError::bad_input(
            "fileUrl",
            format!("must be at most {MAX_FILE_URL} characters (got {length})"),
        ));
    }
    let expected = "must be an absolute http:// or https:// URL, e.g. https://videos.example.com/lesson.mp4";
    let url = url::Url::parse(trimmed).map_err(|_| AppError::bad_input("fileUrl", expected))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(AppError::bad_input("fileUrl", expected));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AppError::bad_input(
            "fileUrl",
            "must not contain a user name or password",
        ));
    }
    let normalized = url.as_str();
    let length = normalized.chars().count();
    if length > MAX_FILE_URL {
        return Err(AppError::bad_input(
            "fileUrl",
            format!("must be at most {MAX_FILE_URL} characters once normalized (got {length})"),
        ));
    }
    Ok(normalized.to_owned())
}

/// The largest accepted file size: the configured one, capped at what the
/// API carries exactly.
pub(crate) fn max_file_size(rules: &ContentSettings) -> i64 {
    std::cmp::min(rules.max_video_file_size_bytes, MAX_EXACT_FILE_SIZE)
}

/// A video size: 1 byte up to the configured maximum.
pub fn file_size(rules: &ContentSettings, value: i64) -> AppResult<i64> {
    let max = max_file_size(rules);
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(AppError::bad_input(
            "fileSize",
            format!("must be between 1 and {max} bytes, got {value}"),
        ))
    }
}

/// A video MIME type: one of the configured types, compared and stored in
/// lower case.
pub fn mime_type(rules: &ContentSettings, value: &str) -> AppResult<String> {
    let mime = value.trim().to_ascii_lowercase();
    if rules
        .allowed_video_mime_types
        .iter()
        .any(|allowed| allowed.trim().eq_ignore_ascii_case(&mime))
    {
        Ok(mime)
    } else {
        Err(AppError::bad_input(
            "mimeType",
            format!(
                "must be one of {} (got {:?})",
                rules.allowed_video_mime_types.join(", "),
                value.trim()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(result: AppResult<impl std::fmt::Debug>) -> String {
        match result {
            Err(AppError::BadUserInput { field, .. }) => field,
            other => format!("not a bad input: {other:?}"),
        }
    }

    #[test]
    fn file_names_are_plain_names() {
        assert_eq!(file_name("  lesson 1.mp4 ").ok(), Some("lesson 1.mp4".to_owned()));
        assert_eq!(file_name(&"a".repeat(255)).ok().map(|name| name.len()), Some(255));
        for bad in [
            "",
            "  ",
            "a/b.mp4",
            "a\\b.mp4",
            "a\u{0}b",
            "a\nb",
            ".",
            "..",
            &"a".repeat(256),
        ] {
            assert_eq!(field(file_name(bad)), "fileName", "{bad:?}");
        }
    }

    #[test]
    fn file_urls_are_absolute_http_urls() {
        assert_eq!(
            file_url("https://videos.example.test/a.mp4").ok(),
            Some("https://videos.example.test/a.mp4".to_owned())
        );
        assert!(file_url("http://videos.example.test/a.mp4").is_ok());
        for bad in [
            "",
            "ftp://videos.example.test/a.mp4",
            "/videos/a.mp4",
            "videos.example.test/a.mp4",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://user:secret@videos.example.test/a.mp4",
            "https://",
        ] {
            assert_eq!(field(file_url(bad)), "fileUrl", "{bad:?}");
        }
    }

    #[test]
    fn file_sizes_are_bounded() {
        let rules = ContentSettings {
            max_video_file_size_bytes: 100,
            ..ContentSettings::default()
        };
        assert_eq!(file_size(&rules, 1).ok(), Some(1));
        assert_eq!(file_size(&rules, 100).ok(), Some(100));
        for bad in [0, -1, 101, i64::MAX] {
            assert_eq!(field(file_size(&rules, bad)), "fileSize", "{bad}");
        }
        let huge = ContentSettings {
            max_video_file_size_bytes: i64::MAX,
            ..ContentSettings::default()
        };
        assert_eq!(max_file_size(&huge), MAX_EXACT_FILE_SIZE);
    }

    #[test]
    fn mime_types_come_from_the_allowlist_in_lower_case() {
        let rules = ContentSettings::default();
        assert_eq!(
            mime_type(&rules, " Video/MP4 ").ok(),
            Some("video/mp4".to_owned())
        );
        for bad in ["image/png", "video/mp4; codecs=avc1", "", "video/"] {
            assert_eq!(field(mime_type(&rules, bad)), "mimeType", "{bad:?}");
        }
    }
}
