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

use async_graphql::parser::types::{Directive, Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, QueryPathSegment, ServerError, ServerResult, Value,
};
use chrono::{DateTime, Utc};
use entity::{module, video};
use uuid::Uuid;

use super::{Module, Video};
use crate::error::AppError;
use crate::graphql::collect::{Collector, Group};
use crate::graphql::json::JsonWriter;
use crate::graphql::loaders::{Loaders, Rows, VideosOfModule};
use crate::graphql::wire;

/// CollectFields for an object of type `type_name` over `sets`, on the
/// executed document (async-graphql removed what `@skip`/`@include` leave
/// out).
fn collect_fields<'a>(
    ctx: &ContextSelectionSet<'a>,
    sets: &[&'a SelectionSet],
    type_name: &str,
) -> Vec<Group<'a>> {
    Collector {
        fragments: &ctx.query_env.fragments,
        registry: &ctx.schema_env.registry,
        skips: |_: &[Positioned<Directive>]| false,
    }
    .collect(sets, type_name)
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

impl Scalar<'_> {
    fn write(&self, json: &mut JsonWriter) {
        match *self {
            Self::Text(text) => json.string(text),
            Self::Id(id) => json.uuid(id),
            Self::Int(value) => json.int(value),
            Self::Time(time) => json.time(time),
        }
    }

    /// About how many bytes it takes (escapes and 9-digit fractions of a
    /// second take more: the buffer then grows).
    fn size(&self) -> usize {
        match self {
            Self::Text(text) => text.len() + 2,
            Self::Id(_) => 38,
            Self::Int(_) => 20,
            Self::Time(_) => 34,
        }
    }
}

/// Writes `rows` as a list of objects: each key of `steps` (as JSON, with
/// its colon), then its value, which `value` writes.
fn write_objects<R, S>(
    json: &mut JsonWriter,
    rows: &[R],
    steps: &[(Vec<u8>, S)],
    mut value: impl FnMut(&S, &R, &mut JsonWriter),
) {
    json.byte(b'[');
    for (index, row) in rows.iter().enumerate() {
        if index > 0 {
            json.byte(b',');
        }
        json.byte(b'{');
        for (at, (key, step)) in steps.iter().enumerate() {
            if at > 0 {
                json.byte(b',');
            }
            json.raw(key);
            value(step, row, json);
        }
        json.byte(b'}');
    }
    json.byte(b']');
}

/// About how many bytes [`write_objects`] writes, each value taking what
/// `size` says.
fn objects_size<R, S>(rows: &[R], steps: &[(Vec<u8>, S)], size: impl Fn(&S, &R) -> usize) -> usize {
    let keys: usize = steps.iter().map(|(key, _)| key.len() + 1).sum();
    let values: usize = rows
        .iter()
        .flat_map(|row| steps.iter().map(|(_, step)| size(step, row)))
        .sum();
    2 + rows.len() * (keys + 2) + values
}

/// A response key as JSON, with its colon: `"key":`.
fn key_json(key: &Name) -> Vec<u8> {
    let mut json = JsonWriter::with_capacity(key.len() + 3);
    json.string(key);
    json.byte(b':');
    json.finish()
}

/// A list's value: its JSON, prewritten, when this list is the only field
/// of its response key in the parent's selection; otherwise that JSON read
/// back into a `Value`, which async-graphql merges with the values of the
/// other fields of the key (it resolves each on its own, and cannot merge
/// prewritten JSON).
fn list_value(ctx: &ContextSelectionSet<'_>, json: Vec<u8>) -> ServerResult<Value> {
    if sole_field_of_its_key(ctx) {
        Ok(wire::prewritten(json))
    } else {
        serde_json::from_slice(&json).map_err(|error| {
            async_graphql::Error::from(AppError::internal(anyhow::anyhow!(
                "a list could not be read back: {error}"
            )))
            .into_server_error(ctx.item.pos)
        })
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
    /// Each response key (as JSON) and what fills it.
    steps: Vec<(Vec<u8>, VideoStep)>,
}

impl VideoPlan {
    fn collect(ctx: &ContextSelectionSet<'_>, sets: &[&SelectionSet]) -> ServerResult<Self> {
        let type_name = Video::type_name();
        let groups = collect_fields(ctx, sets, &type_name);
        let steps = groups
            .into_iter()
            .map(|(key, fields)| {
                let field = fields[0];
                VideoStep::named(&field.node.name.node)
                    .map(|step| (key_json(key), step))
                    .ok_or_else(|| unknown_field(field, &type_name))
            })
            .collect::<ServerResult<_>>()?;
        Ok(Self { type_name, steps })
    }

    /// Writes `rows` as a list.
    fn write(&self, rows: &[video::Model], json: &mut JsonWriter) {
        write_objects(json, rows, &self.steps, |step, row, json| {
            step.value(row, &self.type_name).write(json);
        });
    }

    /// About how many bytes `rows` take as a list.
    fn size(&self, rows: &[video::Model]) -> usize {
        objects_size(rows, &self.steps, |step, row| {
            step.value(row, &self.type_name).size()
        })
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
    /// Each response key (as JSON) and what fills it.
    steps: Vec<(Vec<u8>, ModuleStep)>,
}

impl ModulePlan {
    fn collect(ctx: &ContextSelectionSet<'_>) -> ServerResult<Self> {
        let type_name = Module::type_name();
        let groups = collect_fields(ctx, &[&ctx.item.node], &type_name);
        let mut steps = Vec::with_capacity(groups.len());
        for (key, fields) in groups {
            let name = fields[0].node.name.node.as_str();
            let step = if name == VIDEOS {
                ModuleStep::Videos(VideoPlan::collect(ctx, &sub_selections(&fields))?)
            } else {
                ModuleStep::Leaf(ModuleLeaf::named(name).ok_or_else(|| unknown_field(fields[0], &type_name))?)
            };
            steps.push((key_json(key), step));
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

    /// Writes `rows` as a list, each with its videos.
    fn write(&self, rows: &[module::Model], videos: &Prefetched, json: &mut JsonWriter) {
        write_objects(json, rows, &self.steps, |step, row, json| match step {
            ModuleStep::Leaf(leaf) => leaf.value(row, &self.type_name).write(json),
            ModuleStep::Videos(plan) => plan.write(videos_of(videos, row), json),
        });
    }

    /// About how many bytes `rows` take as a list.
    fn size(&self, rows: &[module::Model], videos: &Prefetched) -> usize {
        objects_size(rows, &self.steps, |step, row| match step {
            ModuleStep::Leaf(leaf) => leaf.value(row, &self.type_name).size(),
            ModuleStep::Videos(plan) => plan.size(videos_of(videos, row)),
        })
    }
}

/// The videos of each module, as the loaders gave them.
type Prefetched = HashMap<VideosOfModule, Rows<video::Model>>;

/// The videos of `module` (none if it has none).
fn videos_of<'a>(videos: &'a Prefetched, module: &module::Model) -> &'a [video::Model] {
    videos
        .get(&VideosOfModule(module.id))
        .map_or(&[][..], |rows| &rows[..])
}

/// `[Module!]!`, resolved in one pass (see the module docs).
pub struct ModuleList(pub(crate) Rows<module::Model>);

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
        let mut json = JsonWriter::with_capacity(plan.size(&self.0, &videos));
        plan.write(&self.0, &videos, &mut json);
        list_value(ctx, json.finish())
    }
}

/// `[Video!]!`, resolved in one pass (see the module docs).
pub struct VideoList(pub(crate) Rows<video::Model>);

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
        let mut json = JsonWriter::with_capacity(plan.size(&self.0));
        plan.write(&self.0, &mut json);
        list_value(ctx, json.finish())
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
