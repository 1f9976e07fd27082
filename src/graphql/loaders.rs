//! DataLoaders: every nested lookup goes through one of these, so a page of
//! N parents costs a constant number of statements instead of N.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use entity::{module, school, session_config, tenant, user, video};
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
pub struct DbLoader {
    db: DatabaseConnection,
    scope: Option<Scope>,
}

/// Request data: the batching loader.
pub type Loaders = DataLoader<DbLoader>;

/// Builds the loaders for one request or WebSocket connection. Nothing is
/// cached between loads, so a long-lived connection never sees stale rows.
pub fn loaders(db: DatabaseConnection, scope: Option<Scope>) -> Loaders {
    DataLoader::new(DbLoader { db, scope }, tokio::spawn)
}

/// The modules of a session, in `order_index` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModulesOfSession(pub Uuid);

/// The videos of a module, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VideosOfModule(pub Uuid);

/// The config of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigOfSession(pub Uuid);

/// A tenant by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantById(pub Uuid);

/// A user by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserById(pub Uuid);

/// The schools of a tenant, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SchoolsOfTenant(pub Uuid);

fn group_by<K, M>(rows: Vec<M>, key: impl Fn(&M) -> Uuid, wrap: impl Fn(Uuid) -> K) -> HashMap<K, Vec<M>>
where
    K: Eq + std::hash::Hash,
{
    let mut groups: HashMap<K, Vec<M>> = HashMap::new();
    for row in rows {
        groups.entry(wrap(key(&row))).or_default().push(row);
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
    type Value = Vec<module::Model>;
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
            .filter(module::Column::SessionId.in_subquery(scope.session_ids()))
            .order_by_asc(module::Column::SessionId)
            .order_by_asc(module::Column::OrderIndex)
            .all(&self.db)
            .await?;
        Ok(group_by(rows, |row| row.session_id, ModulesOfSession))
    }
}

impl Loader<VideosOfModule> for DbLoader {
    type Value = Vec<video::Model>;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[VideosOfModule],
    ) -> Result<HashMap<VideosOfModule, Self::Value>, Self::Error> {
        let Some(scope) = &self.scope else {
            return Ok(HashMap::new());
        };
        let modules_in_scope = Query::select()
            .column(module::Column::Id)
            .from(module::Entity.table_ref())
            .and_where(module::Column::SessionId.in_subquery(scope.session_ids()))
            .to_owned();
        let rows = video::Entity::find()
            .filter(video::Column::ModuleId.is_in(keys.iter().map(|key| key.0)))
            .filter(video::Column::ModuleId.in_subquery(modules_in_scope))
            .order_by_asc(video::Column::CreatedAt)
            .order_by_asc(video::Column::Id)
            .all(&self.db)
            .await?;
        Ok(group_by(rows, |row| row.module_id, VideosOfModule))
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
        Ok(group_by(rows, |row| row.tenant_id, SchoolsOfTenant))
    }
}

impl Loader<ConfigOfSession> for DbLoader {
    type Value = session_config::Model;
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
            .filter(session_config::Column::SessionId.in_subquery(scope.session_ids()))
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| (ConfigOfSession(row.session_id), row))
            .collect())
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
            .filter(scope.tenant_users())
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|row| (UserById(row.id), row)).collect())
    }
}
