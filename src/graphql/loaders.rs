//! DataLoaders: every nested lookup goes through one of these, so a page of
//! N parents costs a constant number of statements instead of N.

use std::collections::HashMap;
use std::ops::{Deref, Range};
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{guardian_link, module, school, session_config, tenant, tenant_membership, user, video};
use sea_orm::EntityName;
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::services::scope::Scope;
use crate::services::tenancy::visible_tenants;

/// The loader behind every key type below; one per request or connection.
///
/// Every load is filtered by the viewer's [`Scope`] on top of its keys, so a
/// nested field can never reach a row its parent's scope would not: the
/// loaders are the second line of row-level security, not a way around it.
/// Without a scope (anonymous, services) every load comes back empty.
#[derive(Debug, Clone)]
pub(crate) struct DbLoader {
    db: DatabaseConnection,
    scope: Option<Scope>,
}

/// Request data: the batching loader.
pub(crate) type Loaders = DataLoader<DbLoader, HashMapCache>;

/// Builds the loaders for one request or WebSocket connection. Nothing is
/// cached between loads, so a long-lived connection never sees stale rows.
pub(crate) fn loaders(db: DatabaseConnection, scope: Option<Scope>) -> Loaders {
    DataLoader::with_cache(DbLoader { db, scope }, tokio::spawn, HashMapCache::default())
}

/// Loaders for a long-lived WebSocket connection: batching only, no cache,
/// so that every event reads current rows.
pub(crate) fn uncached_loaders(db: DatabaseConnection, scope: Option<Scope>) -> Loaders {
    let loaders = loaders(db, scope);
    loaders.enable_all_cache(false);
    loaders
}

/// The modules of a session, in `order_index` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ModulesOfSession(pub Uuid);

/// The videos of a module, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct VideosOfModule(pub Uuid);

/// The config of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConfigOfSession(pub Uuid);

/// A tenant by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TenantById(pub Uuid);

/// A user by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct UserById(pub Uuid);

/// The schools of a tenant, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SchoolsOfTenant(pub Uuid);

/// A school by id (of a tenant the viewer may see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SchoolById(pub Uuid);

/// The memberships of a user in the tenants the viewer may see, default
/// first, then oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MembershipsOfUser(pub Uuid);

/// The guardians of a user in the active tenant (through the guardian
/// links the viewer may see), by e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct GuardiansOfUser(pub Uuid);

/// The users a guardian supervises in the active tenant (through the
/// guardian links the viewer may see), by e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SupervisedUsersOfUser(pub Uuid);

fn group_by<K, M>(
    keys: &[K],
    rows: Vec<M>,
    key: impl Fn(&M) -> Uuid,
    wrap: impl Fn(Uuid) -> K,
) -> HashMap<K, Vec<M>>
where
    K: Eq + std::hash::Hash + Clone,
{
    // Every key gets an entry, empty when nothing matched, so that a cached
    // loader answers it next time without another statement.
    let mut groups: HashMap<K, Vec<M>> = keys.iter().map(|key| (key.clone(), Vec::new())).collect();
    for row in rows {
        groups.entry(wrap(key(&row))).or_default().push(row);
    }
    groups
}

/// Some rows of one statement, shared: each key's rows are a range of
/// the one list the statement returned, so a prefetched list is never
/// copied, neither per key nor per field that reads it.
pub(crate) struct Rows<M> {
    all: Arc<Vec<M>>,
    range: Range<usize>,
}

impl<M> Clone for Rows<M> {
    fn clone(&self) -> Self {
        Self {
            all: Arc::clone(&self.all),
            range: self.range.clone(),
        }
    }
}

impl<M> Default for Rows<M> {
    fn default() -> Self {
        Vec::new().into()
    }
}

impl<M> Deref for Rows<M> {
    type Target = [M];

    fn deref(&self) -> &[M] {
        self.all.get(self.range.clone()).unwrap_or_default()
    }
}

impl<M> From<Vec<M>> for Rows<M> {
    fn from(rows: Vec<M>) -> Self {
        let range = 0..rows.len();
        Self {
            all: Arc::new(rows),
            range,
        }
    }
}

/// `rows` as each key's run of them, every key with an entry (empty when
/// nothing matched). The statements order by the key first, so the runs are
/// already contiguous; the stable sort only makes sure of it (and keeps
/// each key's rows in the statement's order).
fn runs<K, M>(
    keys: &[K],
    mut rows: Vec<M>,
    key: impl Fn(&M) -> Uuid,
    wrap: impl Fn(Uuid) -> K,
) -> HashMap<K, Rows<M>>
where
    K: Eq + std::hash::Hash + Clone,
{
    rows.sort_by_key(&key);
    let mut spans = Vec::new();
    let mut start = 0;
    for index in 1..=rows.len() {
        let ends = rows
            .get(index)
            .zip(rows.get(start))
            .is_none_or(|(row, first)| key(row) != key(first));
        if ends {
            if let Some(first) = rows.get(start) {
                spans.push((key(first), start..index));
            }
            start = index;
        }
    }
    let all = Arc::new(rows);
    let mut groups: HashMap<K, Rows<M>> = keys
        .iter()
        .map(|key| {
            let empty = Rows {
                all: Arc::clone(&all),
                range: 0..0,
            };
            (key.clone(), empty)
        })
        .collect();
    for (id, range) in spans {
        groups.insert(
            wrap(id),
            Rows {
                all: Arc::clone(&all),
                range,
            },
        );
    }
    groups
}

/// The ids of the tenants the viewer may see (a subquery).
fn visible_tenant_ids(scope: &Scope) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(tenant::Column::Id)
        .from(tenant::Entity.table_ref())
        .cond_where(visible_tenants(scope.user_id, scope.is_super_admin))
        .to_owned()
}

impl Loader<ModulesOfSession> for DbLoader {
    /// Shared, so that a prefetched list is never copied.
    type Value = Rows<module::Model>;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[ModulesOfSession],
    ) -> Result<HashMap<ModulesOfSession, Self::Value>, Self::Error> {
        let Some(scope) = &self.scope else {
            return Ok(HashMap::new());
        };
        let rows = module::Entity::find()
            .filter(module::Column::SessionId.is_in(keys.iter().map(|key| key.0)))
            .filter(
                module::Column::SessionId.in_subquery(scope.session_ids_among(keys.iter().map(|key| key.0))),
            )
            .order_by_asc(module::Column::SessionId)
            .order_by_asc(module::Column::OrderIndex)
            .all(&self.db)
            .await?;
        Ok(runs(keys, rows, |row| row.session_id, ModulesOfSession))
    }
}

impl Loader<VideosOfModule> for DbLoader {
    /// Shared, so that a prefetched list is never copied.
    type Value = Rows<video::Model>;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[VideosOfModule],
    ) -> Result<HashMap<VideosOfModule, Self::Value>, Self::Error> {
        let Some(scope) = &self.scope else {
            return Ok(HashMap::new());
        };
        let ids = || keys.iter().map(|key| key.0);
        // Module by module, as the index on (module_id, created_at, id)
        // hands them out: no sort.
        let rows = video::Entity::find()
            .filter(video::Column::ModuleId.is_in(ids()))
            .filter(video::Column::ModuleId.in_subquery(scope.module_ids_among(ids())))
            .order_by_asc(video::Column::ModuleId)
            .order_by_asc(video::Column::CreatedAt)
            .order_by_asc(video::Column::Id)
            .all(&self.db)
            .await?;
        Ok(runs(keys, rows, |row| row.module_id, VideosOfModule))
    }
}

impl Loader<SchoolsOfTenant> for DbLoader {
    type Value = Vec<school::Model>;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[SchoolsOfTenant],
    ) -> Result<HashMap<SchoolsOfTenant, Self::Value>, Self::Error> {
        let Some(scope) = &self.scope else {
            return Ok(HashMap::new());
        };
        let rows = school::Entity::find()
            .filter(school::Column::TenantId.is_in(keys.iter().map(|key| key.0)))
            .filter(school::Column::TenantId.in_subquery(visible_tenant_ids(scope)))
            .order_by_asc(school::Column::Name)
            .all(&self.db)
            .await?;
        Ok(group_by(keys, rows, |row| row.tenant_id, SchoolsOfTenant))
    }
}

impl Loader<ConfigOfSession> for DbLoader {
    /// `None` for a session without a config (cached like a found one).
    type Value = Option<session_config::Model>;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[ConfigOfSession],
    ) -> Result<HashMap<ConfigOfSession, Self::Value>, Self::Error> {
        let Some(scope) = &self.scope else {
            return Ok(HashMap::new());
        };
        let rows = session_config::Entity::find()
            .filter(session_config::Column::SessionId.is_in(keys.iter().map(|key| key.0)))
            .filter(
                session_config::Column::SessionId
                    .in_subquery(scope.session_ids_among(keys.iter().map(|key| key.0))),
            )
            .all(&self.db)
            .await?;
        let mut configs: HashMap<ConfigOfSession, Self::Value> =
            keys.iter().map(|key| (*key, None)).collect();
        configs.extend(
            rows.into_iter()
                .map(|row| (ConfigOfSession(row.session_id), Some(row))),
        );
        Ok(configs)
    }
}

impl Loader<TenantById> for DbLoader {
    type Value = tenant::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[TenantById]) -> Result<HashMap<TenantById, Self::Value>, Self::Error> {
        let Some(scope) = &self.scope else {
            return Ok(HashMap::new());
        };
        let rows = tenant::Entity::find()
            .filter(tenant::Column::Id.is_in(keys.iter().map(|key| key.0)))
            .filter(visible_tenants(scope.user_id, scope.is_super_admin))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|row| (TenantById(row.id), row)).collect())
    }
}

impl Loader<UserById> for DbLoader {
    type Value = user::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[UserById]) -> Result<HashMap<UserById, Self::Value>, Self::Error> {
        let Some(scope) = &self.scope else {
            return Ok(HashMap::new());
        };
        let rows = user::Entity::find()
            .filter(user::Column::Id.is_in(keys.iter().map(|key| key.0)))
            .filter(scope.visible_people())
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|row| (UserById(row.id), row)).collect())
    }
}

impl Loader<SchoolById> for DbLoader {
    type Value = school::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[SchoolById]) -> Result<HashMap<SchoolById, Self::Value>, Self::Error> {
        let Some(scope) = &self.scope else {
            return Ok(HashMap::new());
        };
        let rows = school::Entity::find()
            .filter(school::Column::Id.is_in(keys.iter().map(|key| key.0)))
            .filter(school::Column::TenantId.in_subquery(visible_tenant_ids(scope)))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|row| (SchoolById(row.id), row)).collect())
    }
}

impl Loader<MembershipsOfUser> for DbLoader {
    type Value = Vec<tenant_membership::Model>;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[MembershipsOfUser],
    ) -> Result<HashMap<MembershipsOfUser, Self::Value>, Self::Error> {
        let Some(scope) = &self.scope else {
            return Ok(HashMap::new());
        };
        let rows = tenant_membership::Entity::find()
            .filter(tenant_membership::Column::UserId.is_in(keys.iter().map(|key| key.0)))
            .filter(tenant_membership::Column::TenantId.in_subquery(visible_tenant_ids(scope)))
            .order_by_desc(tenant_membership::Column::IsDefault)
            .order_by_asc(tenant_membership::Column::CreatedAt)
            .order_by_asc(tenant_membership::Column::Id)
            .all(&self.db)
            .await?;
        Ok(group_by(keys, rows, |row| row.user_id, MembershipsOfUser))
    }
}

/// Which end of a guardian link a lookup starts from.
#[derive(Debug, Clone, Copy)]
enum LinkEnd {
    /// Keys are supervised users; values their guardians.
    Guardians,
    /// Keys are guardians; values the users they supervise.
    Supervised,
}

impl DbLoader {
    /// The people at the other end of the visible guardian links of `ids`,
    /// in two statements (the links, then the people), by e-mail.
    async fn linked_users(
        &self,
        ids: Vec<Uuid>,
        end: LinkEnd,
    ) -> Result<HashMap<Uuid, Vec<user::Model>>, DbErr> {
        let Some(scope) = &self.scope else {
            return Ok(HashMap::new());
        };
        let from = match end {
            LinkEnd::Guardians => guardian_link::Column::UserId,
            LinkEnd::Supervised => guardian_link::Column::GuardianId,
        };
        // Every key gets an entry, empty when nothing matched, so that the
        // cache answers it next time without another statement.
        let mut groups: HashMap<Uuid, Vec<user::Model>> = ids.iter().map(|id| (*id, Vec::new())).collect();
        let links = guardian_link::Entity::find()
            .filter(from.is_in(ids))
            .filter(scope.guardian_links())
            .all(&self.db)
            .await?;
        if links.is_empty() {
            return Ok(groups);
        }
        let pick = |link: &guardian_link::Model| match end {
            LinkEnd::Guardians => (link.user_id, link.guardian_id),
            LinkEnd::Supervised => (link.guardian_id, link.user_id),
        };
        let people: HashMap<Uuid, user::Model> = user::Entity::find()
            .filter(user::Column::Id.is_in(links.iter().map(|link| pick(link).1)))
            .filter(scope.tenant_users())
            .all(&self.db)
            .await?
            .into_iter()
            .map(|person| (person.id, person))
            .collect();
        for link in &links {
            let (key, other) = pick(link);
            if let Some(person) = people.get(&other) {
                groups.entry(key).or_default().push(person.clone());
            }
        }
        for group in groups.values_mut() {
            group.sort_by(|a, b| a.email.cmp(&b.email).then(a.id.cmp(&b.id)));
        }
        Ok(groups)
    }
}

impl Loader<GuardiansOfUser> for DbLoader {
    type Value = Vec<user::Model>;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[GuardiansOfUser],
    ) -> Result<HashMap<GuardiansOfUser, Self::Value>, Self::Error> {
        let groups = self
            .linked_users(keys.iter().map(|key| key.0).collect(), LinkEnd::Guardians)
            .await?;
        Ok(groups
            .into_iter()
            .map(|(id, people)| (GuardiansOfUser(id), people))
            .collect())
    }
}

impl Loader<SupervisedUsersOfUser> for DbLoader {
    type Value = Vec<user::Model>;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[SupervisedUsersOfUser],
    ) -> Result<HashMap<SupervisedUsersOfUser, Self::Value>, Self::Error> {
        let groups = self
            .linked_users(keys.iter().map(|key| key.0).collect(), LinkEnd::Supervised)
            .await?;
        Ok(groups
            .into_iter()
            .map(|(id, people)| (SupervisedUsersOfUser(id), people))
            .collect())
    }
}
