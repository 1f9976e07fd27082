//! What is done once per GraphQL operation: a span per phase (none per
//! field), and the root fields put in the order of the query.
//!
//! async-graphql's own `Tracing` extension opens a span for every field of
//! every object it resolves (thousands for a page of sessions with their
//! content), which cost more than the fields themselves. An operation is
//! traced here as a whole instead: validation and execution (named after the
//! operation) under the HTTP request's span, or a subscription's stream.
//! Documents and variables are not recorded: they may carry personal data.
//!
//! async-graphql resolves the fields of an object concurrently and puts each
//! in the response when it completes, so a field that waits on the database
//! lands after one that does not. GraphQL orders a response map as its
//! selection set. This schema's own objects are `serial` (resolved in
//! order), but the root and async-graphql's connection types are not: the
//! response is put back in order here, object by object.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextSubscribe, NextValidation,
};
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{
    Name, Positioned, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};
use futures_util::StreamExt;
use tracing::Instrument;

/// The extension, registered on the schema.
pub(crate) struct OperationHooks;

impl ExtensionFactory for OperationHooks {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Hooks::default())
    }
}

/// One request's hooks.
#[derive(Default)]
struct Hooks {
    /// The document and variables, to put the response in order by.
    request: Mutex<Option<(ExecutableDocument, Variables)>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for Hooks {
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let span = tracing::info_span!("graphql.subscribe");
        let mut responses = next.run(ctx, stream);
        // Each poll runs in the span, as `Instrument` does for a future.
        Box::pin(futures_util::stream::poll_fn(move |cx| {
            let _entered = span.enter();
            responses.poll_next_unpin(cx)
        }))
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        *self.request.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((document.clone(), variables.clone()));
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx)
            .instrument(tracing::info_span!("graphql.validate"))
            .await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let span = tracing::info_span!("graphql.execute", operation = operation_name.unwrap_or_default());
        let mut response = next.run(ctx, operation_name).instrument(span).await;
        let request = self.request.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some((document, variables)) = request {
            let operation = match (&document.operations, operation_name) {
                (DocumentOperations::Single(operation), _) => Some(operation),
                (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
                (DocumentOperations::Multiple(_), None) => None,
            };
            if let Some(operation) = operation {
                let order = Order {
                    document: &document,
                    operation: &operation.node,
                    variables: &variables,
                    registry: &ctx.schema_env.registry,
                };
                order.put_in_order(&mut response.data);
            }
        }
        response
    }
}

/// What a response is put in order by: GraphQL's CollectFields over the
/// executed operation (`@skip`/`@include` applied, fragments whose type
/// condition applies spread in place), object by object.
struct Order<'a> {
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    registry: &'a Registry,
}

/// The fields of one response key.
type Group<'a> = (&'a Name, Vec<&'a Positioned<Field>>);

impl<'a> Order<'a> {
    /// Puts the operation's result in order.
    fn put_in_order(&self, data: &mut Value) {
        let root = match self.operation.ty {
            OperationType::Query => Some(self.registry.query_type.as_str()),
            OperationType::Mutation => self.registry.mutation_type.as_deref(),
            OperationType::Subscription => self.registry.subscription_type.as_deref(),
        };
        if let Some(root) = root {
            self.value(data, &[&self.operation.selection_set.node], root);
        }
    }

    /// Puts `value`, of type `type_name` selected by `sets`, in order. Below
    /// an abstract type (whose concrete type the value does not tell) and
    /// in prewritten lists the order stays as it is: those are resolved in
    /// order.
    fn value(&self, value: &mut Value, sets: &[&'a SelectionSet], type_name: &str) {
        match value {
            Value::List(items) => {
                for item in items {
                    self.value(item, sets, type_name);
                }
            }
            Value::Object(fields) => {
                let Some(meta @ MetaType::Object { .. }) = self.registry.types.get(type_name) else {
                    return;
                };
                let groups = self.collect(sets, type_name);
                put_in_order(fields, groups.iter().map(|(key, _)| *key));
                for (key, group) in &groups {
                    let Some(child) = fields.get_mut(*key) else {
                        continue;
                    };
                    if !matches!(child, Value::List(_) | Value::Object(_)) {
                        continue;
                    }
                    let Some(field) = meta.field_by_name(&group[0].node.name.node) else {
                        continue;
                    };
                    let inner: Vec<_> = group.iter().map(|field| &field.node.selection_set.node).collect();
                    self.value(child, &inner, MetaTypeName::concrete_typename(&field.ty));
                }
            }
            _ => {}
        }
    }

    /// CollectFields for an object of type `type_name`.
    fn collect(&self, sets: &[&'a SelectionSet], type_name: &str) -> Vec<Group<'a>> {
        let mut groups = Vec::new();
        let mut entered = HashSet::new();
        for set in sets {
            self.walk(set, type_name, &mut entered, &mut groups);
        }
        groups
    }

    fn walk(
        &self,
        set: &'a SelectionSet,
        type_name: &str,
        entered: &mut HashSet<&'a str>,
        groups: &mut Vec<Group<'a>>,
    ) {
        for selection in &set.items {
            if self.skips(selection.node.directives()) {
                continue;
            }
            let (condition, inner) = match &selection.node {
                Selection::Field(field) => {
                    let key = &field.node.response_key().node;
                    match groups.iter_mut().find(|(name, _)| *name == key) {
                        Some((_, fields)) => fields.push(field),
                        None => groups.push((key, vec![field])),
                    }
                    continue;
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(fragment) = self.document.fragments.get(name) else {
                        continue;
                    };
                    // A fragment spread twice adds nothing the second time.
                    if !entered.insert(name) {
                        continue;
                    }
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
                    || self
                        .registry
                        .types
                        .get(condition)
                        .is_some_and(|condition| condition.is_possible_type(type_name))
            });
            if applies {
                self.walk(inner, type_name, entered, groups);
            }
        }
    }

    /// Whether `@skip`/`@include` leave the selection out.
    fn skips(&self, directives: &[Positioned<Directive>]) -> bool {
        directives.iter().any(|directive| {
            let condition = || {
                directive
                    .node
                    .get_argument("if")
                    .and_then(|value| self.boolean(&value.node))
            };
            match directive.node.name.node.as_str() {
                "skip" => condition() == Some(true),
                "include" => condition() == Some(false),
                _ => false,
            }
        })
    }

    /// A Boolean argument: a literal, or a variable (or its default).
    fn boolean(&self, value: &async_graphql_value::Value) -> Option<bool> {
        use async_graphql_value::Value as Literal;
        match value {
            Literal::Boolean(value) => Some(*value),
            Literal::Variable(name) => match self.variables.get(name) {
                Some(Value::Boolean(value)) => Some(*value),
                Some(_) => None,
                None => self
                    .operation
                    .variable_definitions
                    .iter()
                    .find(|definition| definition.node.name.node == *name)
                    .and_then(|definition| definition.node.default_value.as_ref())
                    .and_then(|default| match default.node {
                        Value::Boolean(value) => Some(value),
                        _ => None,
                    }),
            },
            _ => None,
        }
    }
}

/// Puts `fields` in the order of `keys` (any key not in `keys` after them,
/// as it was).
fn put_in_order<'k>(fields: &mut IndexMap<Name, Value>, keys: impl Iterator<Item = &'k Name> + Clone) {
    let in_order = fields
        .keys()
        .zip(keys.clone().filter(|key| fields.contains_key(*key)))
        .all(|(have, want)| have == want);
    if in_order {
        return;
    }
    let mut ordered = IndexMap::with_capacity(fields.len());
    for key in keys {
        if let Some(value) = fields.shift_remove(key) {
            ordered.insert(key.clone(), value);
        }
    }
    ordered.extend(fields.drain(..));
    *fields = ordered;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_put_in_the_order_of_the_keys() {
        let mut fields = IndexMap::new();
        for key in ["c", "a", "b"] {
            fields.insert(Name::new(key), Value::Null);
        }
        let keys = [Name::new("a"), Name::new("b"), Name::new("c")];
        put_in_order(&mut fields, keys.iter());
        assert_eq!(
            fields.keys().map(Name::as_str).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }
}
