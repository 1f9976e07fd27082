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
//! that plan, straight to JSON (see `graphql::wire`: no `Value` tree is
//! built for them). The rows come from the request's loaders, so they are as
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

use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, QueryPathSegment, ServerError, ServerResult, Value,
};
use chrono::{DateTime, Utc};
use entity::{module, video};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use uuid::Uuid;

use super::{Module, Video};
use crate::error::AppError;
use crate::graphql::loaders::{Loaders, VideosOfModule};
use crate::graphql::wire;

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

/// One field's value, written as the schema's scalar writes it.
enum Scalar<'a> {
    Text(&'a str),
    /// `UUID`: lower-case, hyphenated.
    Id(Uuid),
    Int(i64),
    /// `DateTime`: RFC 3339, as async-graphql's `DateTime<Utc>` scalar.
    Time(DateTime<Utc>),
}

impl Serialize for Scalar<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Id(id) => {
                serializer.serialize_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()))
            }
            Self::Int(value) => serializer.serialize_i64(value),
            Self::Time(time) => serializer.serialize_str(&time.to_rfc3339()),
        }
    }
}

/// A list's value: its JSON, prewritten, when this list is the only field
/// of its response key in the parent's selection; otherwise that JSON read
/// back into a `Value`, which async-graphql merges with the values of the
/// other fields of the key (it resolves each on its own, and cannot merge
/// prewritten JSON). The buffer starts at `estimate` bytes so that it
/// seldom grows (each growth copies it).
fn list_value(ctx: &ContextSelectionSet<'_>, list: &impl Serialize, estimate: usize) -> ServerResult<Value> {
    let internal = |error: serde_json::Error| {
        async_graphql::Error::from(AppError::internal(anyhow::anyhow!(
            "a list could not be written: {error}"
        )))
        .into_server_error(ctx.item.pos)
    };
    let mut json = Vec::with_capacity(estimate);
    serde_json::to_writer(&mut json, list).map_err(internal)?;
    if sole_field_of_its_key(ctx) {
        Ok(wire::prewritten(json))
    } else {
        serde_json::from_slice(&json).map_err(internal)
    }
}

/// Whether no other field of the parent's selection shares the response key
/// of the field being resolved. The parent's selection is found by walking
/// the operation down the path's response keys; fragments are entered
/// whatever their type condition, so a field that only might share its key
/// counts as sharing it (the slower, always right answer).
fn sole_field_of_its_key(ctx: &ContextSelectionSet<'_>) -> bool {
    let mut keys = Vec::new();
    let mut node = ctx.path_node.as_ref();
    while let Some(current) = node {
        if let QueryPathSegment::Name(key) = current.segment {
            keys.push(key);
        }
        node = current.parent;
    }
    keys.reverse();
    let Some((key, ancestors)) = keys.split_last() else {
        return false;
    };
    let mut sets = vec![&ctx.query_env.operation.node.selection_set.node];
    for ancestor in ancestors {
        let mut inner = Vec::new();
        for set in &sets {
            fields_of_key(ctx, set, ancestor, &mut |field| {
                inner.push(&field.node.selection_set.node)
            });
        }
        sets = inner;
    }
    let mut count = 0_usize;
    for set in &sets {
        fields_of_key(ctx, set, key, &mut |_| count += 1);
    }
    count == 1
}

/// Calls `found` with every field of `set` whose response key is `key`,
/// fragments included (whatever their type condition).
fn fields_of_key<'a>(
    ctx: &ContextSelectionSet<'a>,
    set: &'a SelectionSet,
    key: &str,
    found: &mut impl FnMut(&'a Positioned<Field>),
) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                if field.node.response_key().node.as_str() == key {
                    found(field);
                }
            }
            Selection::FragmentSpread(spread) => {
                // Validation rejects cycles of fragments: this ends.
                if let Some(fragment) = ctx.query_env.fragments.get(&spread.node.fragment_name.node) {
                    fields_of_key(ctx, &fragment.node.selection_set.node, key, found);
                }
            }
            Selection::InlineFragment(fragment) => {
                fields_of_key(ctx, &fragment.node.selection_set.node, key, found);
            }
        }
    }
}

/// About how many bytes one object of `fields` fields takes.
fn object_estimate(fields: usize) -> usize {
    2 + fields * 48
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

    fn value<'a>(self, row: &'a video::Model, type_name: &'a str) -> Scalar<'a> {
        match self {
            Self::Typename => Scalar::Text(type_name),
            Self::Id => Scalar::Id(row.id),
            Self::ModuleId => Scalar::Id(row.module_id),
            Self::FileName => Scalar::Text(&row.file_name),
            Self::FileUrl => Scalar::Text(&row.file_url),
            Self::FileSize => Scalar::Int(row.file_size),
            Self::MimeType => Scalar::Text(&row.mime_type),
            Self::CreatedAt => Scalar::Time(row.created_at),
            Self::UpdatedAt => Scalar::Time(row.updated_at),
        }
    }
}

/// How to write each video of a list: its response keys in order.
#[derive(Debug)]
struct VideoPlan {
    type_name: Cow<'static, str>,
    steps: Vec<(Name, VideoStep)>,
}

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
        Ok(Self { type_name, steps })
    }

    fn estimate(&self, rows: usize) -> usize {
        2 + rows * object_estimate(self.steps.len())
    }
}

/// A list of videos written by its plan.
struct Videos<'a> {
    plan: &'a VideoPlan,
    rows: &'a [video::Model],
}

impl Serialize for Videos<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Self { plan, rows } = *self;
        serializer.collect_seq(rows.iter().map(|row| PlannedVideo { plan, row }))
    }
}

/// One video written by its plan.
struct PlannedVideo<'a> {
    plan: &'a VideoPlan,
    row: &'a video::Model,
}

impl Serialize for PlannedVideo<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut object = serializer.serialize_map(Some(self.plan.steps.len()))?;
        for (key, step) in &self.plan.steps {
            object.serialize_entry(key.as_str(), &step.value(self.row, &self.plan.type_name))?;
        }
        object.end()
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

    fn value<'a>(self, row: &'a module::Model, type_name: &'a str) -> Scalar<'a> {
        match self {
            Self::Typename => Scalar::Text(type_name),
            Self::Id => Scalar::Id(row.id),
            Self::Name => Scalar::Text(&row.name),
            Self::OrderIndex => Scalar::Int(row.order_index.into()),
            Self::CreatedAt => Scalar::Time(row.created_at),
            Self::UpdatedAt => Scalar::Time(row.updated_at),
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
struct ModulePlan {
    type_name: Cow<'static, str>,
    steps: Vec<(Name, ModuleStep)>,
}

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
        Ok(Self { type_name, steps })
    }

    fn wants_videos(&self) -> bool {
        self.videos_per_module().is_some()
    }

    /// The plan of the module's videos, if they are asked for.
    fn videos_per_module(&self) -> Option<&VideoPlan> {
        self.steps.iter().find_map(|(_, step)| match step {
            ModuleStep::Videos(plan) => Some(plan),
            ModuleStep::Leaf(_) => None,
        })
    }

    fn estimate(
        &self,
        rows: &[module::Model],
        videos: &HashMap<VideosOfModule, Arc<[video::Model]>>,
    ) -> usize {
        let videos = self.videos_per_module().map_or(0, |plan| {
            let count = rows
                .iter()
                .filter_map(|row| videos.get(&VideosOfModule(row.id)))
                .map(|rows| rows.len())
                .sum();
            plan.estimate(count)
        });
        2 + rows.len() * object_estimate(self.steps.len()) + videos
    }
}

/// A list of modules written by its plan, with their videos.
struct Modules<'a> {
    plan: &'a ModulePlan,
    rows: &'a [module::Model],
    videos: &'a HashMap<VideosOfModule, Arc<[video::Model]>>,
}

impl Serialize for Modules<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.rows.iter().map(|row| PlannedModule { list: self, row }))
    }
}

/// One module written by its plan.
struct PlannedModule<'a> {
    list: &'a Modules<'a>,
    row: &'a module::Model,
}

impl Serialize for PlannedModule<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Modules { plan, videos, .. } = *self.list;
        let mut object = serializer.serialize_map(Some(plan.steps.len()))?;
        for (key, step) in &plan.steps {
            match step {
                ModuleStep::Leaf(leaf) => {
                    object.serialize_entry(key.as_str(), &leaf.value(self.row, &plan.type_name))?;
                }
                ModuleStep::Videos(plan) => {
                    let rows = videos
                        .get(&VideosOfModule(self.row.id))
                        .map_or(&[][..], |rows| &rows[..]);
                    object.serialize_entry(key.as_str(), &Videos { plan, rows })?;
                }
            }
        }
        object.end()
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
        let modules = Modules {
            plan: &plan,
            rows: &self.0,
            videos: &videos,
        };
        list_value(ctx, &modules, plan.estimate(&self.0, &videos))
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
        let plan = VideoPlan::collect(ctx, &[&ctx.item.node])?;
        let videos = Videos {
            plan: &plan,
            rows: &self.0,
        };
        list_value(ctx, &videos, plan.estimate(self.0.len()))
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
