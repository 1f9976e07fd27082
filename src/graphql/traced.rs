//! Tracing of GraphQL operations: a span per phase of an operation, none
//! per field.
//!
//! async-graphql's own `Tracing` extension opens a span for every field of
//! every object it resolves (thousands for a page of sessions with their
//! content), which cost more than the fields themselves. An operation is
//! traced here as a whole instead: validation and execution (named after the
//! operation) under the HTTP request's span, or a subscription's stream.
//! Documents and variables are not recorded: they may carry personal data.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextSubscribe, NextValidation,
};
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::{Response, ServerError, ValidationResult};
use futures_util::StreamExt;
use tracing::Instrument;

/// The extension, registered on the schema.
pub(crate) struct OperationSpans;

impl ExtensionFactory for OperationSpans {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationSpans)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for OperationSpans {
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
        next.run(ctx, operation_name).instrument(span).await
    }
}
