//! Lists of modules and videos written straight into the response.
//!
//! A page of sessions carries hundreds of modules and thousands of videos,
//! every field of which is a column of a prefetched row. The stock executor
//! spends a boxed future, a registry lookup and an extension hook on each of
//! those fields (about 15,000 for the admin portal's main page), which cost
//! several times what the rows cost to fetch. These list types resolve the
//! whole subtree in one pass instead: the selection set is collected once
//! per list (GraphQL's CollectFields: fragments spread in place when their
//! type condition applies, fields merged by response key in the order they
//! first appear, aliases and `__typename` honoured; `@skip`/`@include` were
//! applied by async-graphql before execution), then each row is written by
//! that plan. The rows come from the request's loaders, so they are as
//! scoped as any other nested lookup; a module list loads the videos of all
//! its modules in one call.
//!
//! The schema is unchanged: the types and fields are declared by the
//! `#[Object]` types [`Module`] and [`Video`], which also still resolve
//! single objects (`module(id:)`, mutations). The tests compare both paths
//! on the same selections, and check that every declared field has a step
//! here. Field-level extension hooks do not run for fields of these lists
//! (none is registered: operations are traced as a whole).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, Name, OutputType, Positioned, ServerError, ServerResult, Value};
use chrono::{DateTime, Utc};
use entity::{module, video};
use uuid::Uuid;

use super::{Module, Video};
use crate::error::AppError;
use crate::graphql::loaders::{Loaders, VideosOfModule};

/// The fields of one response key: every field the selection sets ask
/// under that key (more than one when fragments repeat it).
type Group<'a> = (Name, Vec<&'a Positioned<Field>>);

/// GraphQL's CollectFields for an object of type `type_name` over `sets`
/// (the selection sets of every field merged under one key).
fn collect_fields<'a>(
    ctx: &ContextSelectionSet<'a>,
    sets: &[&'a SelectionSet],
    type_name: &str,
) -> ServerResult<Vec<Group<'a>>> {
    fn walk<'a>(
        ctx: &ContextSelectionSet<'a>,
        set: &'a SelectionSet,
        type_name: &str,
        groups: &mut Vec<Group<'a>>,
    ) -> ServerResult<()> {
        for selection in &set.items {
            let (condition, inner) = match &selection.node {
                Selection::Field(field) => {
                    let key = &field.node.response_key().node;
                    match groups.iter_mut().find(|(name, _)| name == key) {
                        Some((_, fields)) => fields.push(field),
                        None => groups.push((key.clone(), vec![field])),
                    }
                    continue;
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    let fragment = ctx.query_env.fragments.get(name).ok_or_else(|| {
                        ServerError::new(format!(r#"Unknown fragment "{name}"."#), Some(spread.pos))
                    })?;
                    (
                        Some(fragment.node.type_condition.node.on.node.as_str()),
                        &fragment.node.selection_set.node,
                    )
                }
                Selection::InlineFragment(fragment) => (
                    fragment
                        .node
                        .type_condition
                        .as_ref()
                        .map(|condition| condition.node.on.node.as_str()),
                    &fragment.node.selection_set.node,
                ),
            };
            let applies = condition.is_none_or(|condition| {
                condition == type_name
                    || ctx
                        .schema_env
                        .registry
                        .implements
                        .get(type_name)
                        .is_some_and(|interfaces| interfaces.contains(condition))
            });
            if applies {
                walk(ctx, inner, type_name, groups)?;
            }
        }
        Ok(())
    }
    let mut groups = Vec::new();
    for set in sets {
        walk(ctx, set, type_name, &mut groups)?;
    }
    Ok(groups)
}

/// The merged selection sets of a group's fields (for an object field).
fn sub_selections<'a>(fields: &[&'a Positioned<Field>]) -> Vec<&'a SelectionSet> {
    fields
        .iter()
        .map(|field| &field.node.selection_set.node)
        .collect()
}

fn unknown_field(field: &Positioned<Field>, type_name: &str) -> ServerError {
    ServerError::new(
        format!(
            r#"Cannot query field "{}" on type "{type_name}"."#,
            field.node.name.node
        ),
        Some(field.pos),
    )
}

fn uuid_value(id: Uuid) -> Value {
    let mut buffer = Uuid::encode_buffer();
    Value::String(id.hyphenated().encode_lower(&mut buffer).to_owned())
}

/// What the `DateTime` scalar writes (RFC 3339).
fn time_value(time: DateTime<Utc>) -> Value {
    Value::String(time.to_rfc3339())
}

/// What fills one response key of a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoStep {
    Typename,
    Id,
    ModuleId,
    FileName,
    FileUrl,
    FileSize,
    MimeType,
    CreatedAt,
    UpdatedAt,
}

impl VideoStep {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "__typename" => Self::Typename,
            "id" => Self::Id,
            "moduleId" => Self::ModuleId,
            "fileName" => Self::FileName,
            "fileUrl" => Self::FileUrl,
            "fileSize" => Self::FileSize,
            "mimeType" => Self::MimeType,
            "createdAt" => Self::CreatedAt,
            "updatedAt" => Self::UpdatedAt,
            _ => return None,
        })
    }

    fn value(self, row: &video::Model) -> Value {
        match self {
            Self::Typename => Value::String(Video::type_name().into_owned()),
            Self::Id => uuid_value(row.id),
            Self::ModuleId => uuid_value(row.module_id),
            Self::FileName => Value::String(row.file_name.clone()),
            Self::FileUrl => Value::String(row.file_url.clone()),
            Self::FileSize => Value::Number(row.file_size.into()),
            Self::MimeType => Value::String(row.mime_type.clone()),
            Self::CreatedAt => time_value(row.created_at),
            Self::UpdatedAt => time_value(row.updated_at),
        }
    }
}

/// How to write each video of a list: its response keys in order.
#[derive(Debug)]
struct VideoPlan(Vec<(Name, VideoStep)>);

impl VideoPlan {
    fn collect(ctx: &ContextSelectionSet<'_>, sets: &[&SelectionSet]) -> ServerResult<Self> {
        let type_name = Video::type_name();
        let groups = collect_fields(ctx, sets, &type_name)?;
        let steps = groups
            .into_iter()
            .map(|(key, fields)| {
                let field = fields[0];
                VideoStep::named(&field.node.name.node)
                    .map(|step| (key, step))
                    .ok_or_else(|| unknown_field(field, &type_name))
            })
            .collect::<ServerResult<_>>()?;
        Ok(Self(steps))
    }

    fn write(&self, rows: &[video::Model]) -> Value {
        Value::List(
            rows.iter()
                .map(|row| {
                    let mut object = IndexMap::with_capacity(self.0.len());
                    for (key, step) in &self.0 {
                        object.insert(key.clone(), step.value(row));
                    }
                    Value::Object(object)
                })
                .collect(),
        )
    }
}

/// A column of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModuleLeaf {
    Typename,
    Id,
    Name,
    OrderIndex,
    CreatedAt,
    UpdatedAt,
}

impl ModuleLeaf {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "__typename" => Self::Typename,
            "id" => Self::Id,
            "name" => Self::Name,
            "orderIndex" => Self::OrderIndex,
            "createdAt" => Self::CreatedAt,
            "updatedAt" => Self::UpdatedAt,
            _ => return None,
        })
    }

    fn value(self, row: &module::Model) -> Value {
        match self {
            Self::Typename => Value::String(Module::type_name().into_owned()),
            Self::Id => uuid_value(row.id),
            Self::Name => Value::String(row.name.clone()),
            Self::OrderIndex => Value::Number(row.order_index.into()),
            Self::CreatedAt => time_value(row.created_at),
            Self::UpdatedAt => time_value(row.updated_at),
        }
    }
}

/// The one field of a module that is a list of its own.
const VIDEOS: &str = "videos";

/// What fills one response key of a module.
#[derive(Debug)]
enum ModuleStep {
    Leaf(ModuleLeaf),
    Videos(VideoPlan),
}

/// How to write each module of a list.
#[derive(Debug)]
struct ModulePlan(Vec<(Name, ModuleStep)>);

impl ModulePlan {
    fn collect(ctx: &ContextSelectionSet<'_>) -> ServerResult<Self> {
        let type_name = Module::type_name();
        let groups = collect_fields(ctx, &[&ctx.item.node], &type_name)?;
        let mut steps = Vec::with_capacity(groups.len());
        for (key, fields) in groups {
            let name = fields[0].node.name.node.as_str();
            let step = if name == VIDEOS {
                ModuleStep::Videos(VideoPlan::collect(ctx, &sub_selections(&fields))?)
            } else {
                ModuleStep::Leaf(ModuleLeaf::named(name).ok_or_else(|| unknown_field(fields[0], &type_name))?)
            };
            steps.push((key, step));
        }
        Ok(Self(steps))
    }

    fn wants_videos(&self) -> bool {
        self.0
            .iter()
            .any(|(_, step)| matches!(step, ModuleStep::Videos(_)))
    }

    fn write(&self, rows: &[module::Model], videos: &HashMap<VideosOfModule, Arc<[video::Model]>>) -> Value {
        Value::List(
            rows.iter()
                .map(|row| {
                    let mut object = IndexMap::with_capacity(self.0.len());
                    for (key, step) in &self.0 {
                        let value = match step {
                            ModuleStep::Leaf(leaf) => leaf.value(row),
                            ModuleStep::Videos(plan) => plan.write(
                                videos
                                    .get(&VideosOfModule(row.id))
                                    .map_or(&[][..], |rows| &rows[..]),
                            ),
                        };
                        object.insert(key.clone(), value);
                    }
                    Value::Object(object)
                })
                .collect(),
        )
    }
}

/// `[Module!]!`, resolved in one pass (see the module docs).
pub struct ModuleList(pub Arc<[module::Model]>);

impl From<Vec<module::Model>> for ModuleList {
    fn from(rows: Vec<module::Model>) -> Self {
        Self(rows.into())
    }
}

impl OutputType for ModuleList {
    fn type_name() -> Cow<'static, str> {
        <Vec<Module> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<Module> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<Module> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let plan = ModulePlan::collect(ctx)?;
        let videos = if plan.wants_videos() && !self.0.is_empty() {
            let keys = self.0.iter().map(|row| VideosOfModule(row.id));
            let loaded = match ctx
                .data::<Loaders>()
                .map_err(|_| AppError::internal(anyhow::anyhow!("loaders missing from request data")))
            {
                Ok(loaders) => loaders
                    .load_many(keys)
                    .await
                    .map_err(|error| AppError::internal(anyhow::anyhow!("batched load failed: {error}"))),
                Err(error) => Err(error),
            };
            loaded.map_err(|error| async_graphql::Error::from(error).into_server_error(ctx.item.pos))?
        } else {
            HashMap::new()
        };
        Ok(plan.write(&self.0, &videos))
    }
}

/// `[Video!]!`, resolved in one pass (see the module docs).
pub struct VideoList(pub Arc<[video::Model]>);

impl OutputType for VideoList {
    fn type_name() -> Cow<'static, str> {
        <Vec<Video> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<Video> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<Video> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        Ok(VideoPlan::collect(ctx, &[&ctx.item.node])?.write(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields the SDL declares on `type NAME`.
    fn declared_fields(name: &str) -> Vec<String> {
        let sdl = crate::graphql::sdl();
        let start = sdl
            .find(&format!("\ntype {name} {{"))
            .unwrap_or_else(|| panic!("type {name} in the SDL"));
        let body = &sdl[start..][..sdl[start..]
            .find("\n}")
            .unwrap_or_else(|| panic!("the end of type {name}"))];
        body.lines()
            .filter_map(|line| line.strip_prefix('\t'))
            .filter(|line| line.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .map(|line| line.split([':', '(']).next().unwrap_or(line).to_owned())
            .collect()
    }

    #[test]
    fn every_field_the_schema_declares_on_a_video_has_a_step() {
        let fields = declared_fields("Video");
        assert!(fields.len() >= 8, "{fields:?}");
        for field in fields {
            assert!(VideoStep::named(&field).is_some(), "Video.{field} has no step");
        }
    }

    #[test]
    fn every_field_the_schema_declares_on_a_module_has_a_step() {
        let fields = declared_fields("Module");
        assert!(fields.len() >= 6, "{fields:?}");
        for field in fields {
            assert!(
                field == VIDEOS || ModuleLeaf::named(&field).is_some(),
                "Module.{field} has no step"
            );
        }
    }
}
