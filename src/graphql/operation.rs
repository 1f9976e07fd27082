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

use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextSubscribe, NextValidation,
};
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, SelectionSet,
};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};

use crate::graphql::collect::{Collector, Group};
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
        // Subscriptions are not executed through `execute`: nothing to keep.
        let executed = document
            .operations
            .iter()
            .any(|(_, operation)| operation.node.ty != OperationType::Subscription);
        if executed {
            *self.request.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((document.clone(), variables.clone()));
        }
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
/// executed operation (`@skip`/`@include` applied as async-graphql applies
/// them, fragments whose type condition applies spread in place).
struct Order<'a> {
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    registry: &'a Registry,
}

impl<'a> Order<'a> {
    /// Puts the operation's result in order.
    fn put_in_order(&self, data: &mut Value) {
        let root = match self.operation.ty {
            OperationType::Query => Some(self.registry.query_type.as_str()),
            OperationType::Mutation => self.registry.mutation_type.as_deref(),
            OperationType::Subscription => self.registry.subscription_type.as_deref(),
        };
        if let Some(root) = root {
            self.values(vec![data], &[&self.operation.selection_set.node], root);
        }
    }

    /// Puts `values` in order: objects of type `type_name` selected by
    /// `sets`, or lists of them. The fields are collected once for all of
    /// them (a list's items share their selection), then their fields are
    /// put in order the same way, key by key. Below an abstract type (whose
    /// concrete type the value does not tell) and in prewritten lists the
    /// order stays as it is: those are resolved in order.
    fn values(&self, values: Vec<&mut Value>, sets: &[&'a SelectionSet], type_name: &str) {
        let mut objects = Vec::new();
        let mut pending = values;
        while let Some(value) = pending.pop() {
            match value {
                Value::List(items) => pending.extend(items.iter_mut()),
                Value::Object(fields) => objects.push(fields),
                _ => {}
            }
        }
        let Some(meta @ MetaType::Object { .. }) = self.registry.types.get(type_name) else {
            return;
        };
        if objects.is_empty() {
            return;
        }
        let collector = Collector {
            fragments: &self.document.fragments,
            registry: self.registry,
            skips: |directives: &[Positioned<Directive>]| self.skips(directives),
        };
        let groups = collector.collect(sets, type_name);
        for fields in &mut objects {
            put_in_order(fields, &groups);
        }
        for (key, group) in &groups {
            let Some(field) = group
                .first()
                .and_then(|field| meta.field_by_name(&field.node.name.node))
            else {
                continue;
            };
            let children: Vec<&mut Value> = objects
                .iter_mut()
                .filter_map(|fields| fields.get_mut(*key))
                .filter(|child| matches!(child, Value::List(_) | Value::Object(_)))
                .collect();
            if !children.is_empty() {
                let inner: Vec<_> = group.iter().map(|field| &field.node.selection_set.node).collect();
                self.values(children, &inner, MetaTypeName::concrete_typename(&field.ty));
            }
        }
    }

    /// Whether `@skip`/`@include` leave the selection out, decided as
    /// async-graphql decides it before executing (the request's variables
    /// alone; a condition that is not `true` counts as `false`), so that
    /// the order is that of what ran.
    fn skips(&self, directives: &[Positioned<Directive>]) -> bool {
        directives.iter().any(|directive| {
            let include = match directive.node.name.node.as_str() {
                "skip" => false,
                "include" => true,
                _ => return false,
            };
            directive.node.get_argument("if").is_some_and(|condition| {
                let value = condition
                    .node
                    .clone()
                    .into_const_with(|name| self.variables.get(&name).cloned().ok_or(()))
                    .unwrap_or_default();
                include != matches!(value, Value::Boolean(true))
            })
        })
    }
}

/// Puts `fields` in the order of `groups` (any key not in them after them).
fn put_in_order(fields: &mut IndexMap<Name, Value>, groups: &[Group<'_>]) {
    let wanted = groups
        .iter()
        .map(|(key, _)| *key)
        .filter(|key| fields.contains_key(*key));
    if fields.keys().zip(wanted).all(|(have, want)| have == want) {
        return;
    }
    let mut ordered = IndexMap::with_capacity(fields.len());
    for (key, _) in groups {
        if let Some(value) = fields.swap_remove(*key) {
            ordered.insert((*key).clone(), value);
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
        let groups: Vec<Group<'_>> = keys.iter().map(|key| (key, Vec::new())).collect();
        put_in_order(&mut fields, &groups);
        assert_eq!(
            fields.keys().map(Name::as_str).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }
}
