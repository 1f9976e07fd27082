//! The request gate: every GraphQL document is measured before it is
//! validated or executed, and every error leaves with an `extensions.code`.
//!
//! The gate is an async-graphql extension, so it sees every operation the
//! same way whatever carried it (POST, GET, an item of a batch, a WebSocket
//! `subscribe`). In `prepare_request` it runs after the inner extensions
//! (persisted-query lookup), then:
//! 1. scans the raw text for bracket nesting, because the parser recurses
//!    before any check of its own can run;
//! 2. parses the document (parse errors are `GRAPHQL_PARSE_FAILED`);
//! 3. measures it: fields after fragment expansion, `__typename` included,
//!    with one memo per fragment so that measuring is linear in the text;
//!    aliases, directives, fragment spreads, operations, and the depth
//!    after expansion; any limit passed is `QUERY_TOO_LARGE`, naming it;
//! 4. resolves the operation to run (`OPERATION_RESOLUTION_FAILURE`);
//! 5. refuses NUL bytes in every string input, literal or variable
//!    (`BAD_USER_INPUT` naming the argument): PostgreSQL text cannot hold
//!    them, and no field has a use for them.
//!
//! Validation errors become `GRAPHQL_VALIDATION_FAILED`, and a cost above
//! the limit `QUERY_TOO_COMPLEX` (the cost counts list multipliers: see
//! [`page_cost`] and [`list_cost`]). Anything still without a code when the
//! response leaves gets one, so that no error reaches a client uncoded.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest, NextSubscribe, NextValidation,
};
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{
    ErrorExtensionValues, Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};
use futures_util::StreamExt;

use crate::config::GraphqlSettings;

/// A document's shape exceeds a configured limit.
pub const QUERY_TOO_LARGE: &str = "QUERY_TOO_LARGE";
/// A document's cost exceeds `graphql.max_complexity`.
pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
/// A document does not parse.
pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// A document does not validate against the schema.
pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
/// The operation to run cannot be determined from the document and `operationName`.
pub const OPERATION_RESOLUTION_FAILURE: &str = "OPERATION_RESOLUTION_FAILURE";
/// An input value is invalid.
pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
/// An unexpected failure.
pub const INTERNAL: &str = "INTERNAL";

/// What a paged field without `first` is costed at: the built-in page size.
pub(crate) const DEFAULT_PAGE_SIZE: usize = crate::config::DEFAULT_PAGE_SIZE as usize;
/// The largest `first` a configurable connection is costed at: the built-in maximum.
pub(crate) const MAX_PAGE_SIZE: usize = crate::config::MAX_PAGE_SIZE as usize;

/// How many items a list without a stored length bound is costed at.
pub(crate) const UNBOUNDED_LIST_ESTIMATE: usize = 10;

/// The cost of a paged field: `first` (or the field's default page size)
/// times the cost of one item. A `first` out of range is costed at the
/// nearest accepted value, so that the resolver, not the cost, tells the
/// caller what range `first` takes.
pub(crate) fn page_cost(
    first: Option<i32>,
    default_page_size: usize,
    max_page_size: usize,
    child_complexity: usize,
) -> usize {
    let items = match first {
        Some(first) => usize::try_from(first).unwrap_or(0).clamp(1, max_page_size),
        None => default_page_size,
    };
    items
        .saturating_mul(child_complexity)
        .saturating_add(1)
        .min(COST_CEILING)
}

/// The cost of a list of at most `bound` items.
pub(crate) fn list_cost(bound: usize, child_complexity: usize) -> usize {
    bound
        .saturating_mul(child_complexity)
        .saturating_add(1)
        .min(COST_CEILING)
}

/// The highest cost one field is reckoned at: async-graphql sums sibling
/// costs without saturating, and 2^40 times the field limit still fits.
const COST_CEILING: usize = 1 << 40;

pub use crate::state::GateStats;

/// The gate, registered on the schema.
#[derive(Clone)]
pub(crate) struct RequestGate {
    inner: Arc<Gate>,
}

impl RequestGate {
    /// A gate enforcing the `graphql.*` limits, counting into `stats`.
    pub fn new(limits: GraphqlSettings, stats: Arc<GateStats>) -> Self {
        Self {
            inner: Arc::new(Gate { limits, stats }),
        }
    }
}

impl ExtensionFactory for RequestGate {
    fn create(&self) -> Arc<dyn Extension> {
        self.inner.clone()
    }
}

struct Gate {
    limits: GraphqlSettings,
    stats: Arc<GateStats>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for Gate {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        code_every_error(&mut response.errors);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|mut response| {
                code_every_error(&mut response.errors);
                response
            })
            .boxed()
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = next.run(ctx, request).await?;
        self.admit(request).inspect_err(|_| {
            self.stats.count_refused();
        })
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // The document was parsed and measured by the gate; what async-graphql
        // checks here (its own recursion and directive limits) is a backstop.
        next.run(ctx, query, variables)
            .await
            .map_err(|error| with_code(error, QUERY_TOO_LARGE))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| with_code(error, GRAPHQL_VALIDATION_FAILED))
                .collect::<Vec<_>>()
        })?;
        if result.complexity > self.limits.max_complexity {
            return Err(vec![limit_error(
                QUERY_TOO_COMPLEX,
                format!(
                    "the query may return too much: its cost is {} and at most {} is accepted \
                     (lists count as their page size or length bound; ask for fewer items or fewer fields)",
                    result.complexity, self.limits.max_complexity
                ),
                "graphql.max_complexity",
                self.limits.max_complexity as u64,
                result.complexity as u64,
            )]);
        }
        Ok(result)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        self.stats.count_executed();
        next.run(ctx, operation_name).await
    }
}

impl Gate {
    /// Measures the request's document and refuses it when it is out of
    /// bounds; the parsed document travels on with the request.
    fn admit(&self, mut request: Request) -> ServerResult<Request> {
        let limits = &self.limits;
        let nesting = raw_nesting(&request.query, limits.max_nesting);
        if nesting > limits.max_nesting {
            return Err(limit_error(
                QUERY_TOO_LARGE,
                format!(
                    "the document nests brackets more than {} deep (graphql.max_nesting); flatten the query",
                    limits.max_nesting
                ),
                "graphql.max_nesting",
                limits.max_nesting as u64,
                nesting as u64,
            ));
        }
        let document = async_graphql::parser::parse_query(&request.query)
            .map_err(|error| with_code(ServerError::from(error), GRAPHQL_PARSE_FAILED))?;
        let shape = Shape::of(&document);
        let checks: [(&str, u64, u64, &str); 7] = [
            (
                "graphql.max_fields",
                limits.max_fields,
                shape.fields,
                "selections (fields, fragment spreads, inline fragments) once its fragments are expanded",
            ),
            (
                "graphql.max_depth",
                limits.max_depth as u64,
                shape.depth as u64,
                "levels of nested selections once its fragments are expanded",
            ),
            (
                "graphql.max_aliases",
                limits.max_aliases as u64,
                shape.aliases as u64,
                "aliases",
            ),
            (
                "graphql.max_directives",
                limits.max_directives as u64,
                shape.directives as u64,
                "directives",
            ),
            (
                "graphql.max_fragment_spreads",
                limits.max_fragment_spreads as u64,
                shape.spreads as u64,
                "fragment spreads",
            ),
            (
                "graphql.max_operations",
                limits.max_operations as u64,
                shape.operations as u64,
                "operations",
            ),
            (
                "graphql.max_arguments",
                limits.max_arguments as u64,
                shape.arguments as u64,
                "arguments and variable definitions",
            ),
        ];
        for (key, max, actual, what) in checks {
            if actual > max {
                return Err(limit_error(
                    QUERY_TOO_LARGE,
                    format!("the document has more than {max} {what} ({key})"),
                    key,
                    max,
                    actual,
                ));
            }
        }
        resolve_operation(&document, request.operation_name.as_deref())?;
        if let Some(field) = nul_in_request(&document, &request.variables) {
            // `field` names the input field, as everywhere else; the
            // message gives its whole path.
            let leaf = field
                .rsplit('.')
                .find(|segment| !segment.chars().all(|c| c.is_ascii_digit()))
                .unwrap_or(&field)
                .trim_start_matches('$')
                .to_owned();
            let mut error = coded_error(
                format!("{field}: must not contain NUL characters"),
                BAD_USER_INPUT,
            );
            error
                .extensions
                .get_or_insert_with(ErrorExtensionValues::default)
                .set("field", leaf);
            return Err(error);
        }
        request.set_parsed_query(document);
        Ok(request)
    }
}

/// A request error (no position, no path) with `extensions.code`.
pub(crate) fn coded_error(message: impl Into<String>, code: &str) -> ServerError {
    with_code(ServerError::new(message, None), code)
}

/// A `QUERY_TOO_LARGE` / `QUERY_TOO_COMPLEX` error naming the limit.
fn limit_error(code: &str, message: String, key: &str, max: u64, actual: u64) -> ServerError {
    let mut error = coded_error(message, code);
    let extensions = error.extensions.get_or_insert_with(ErrorExtensionValues::default);
    extensions.set("limit", key);
    extensions.set("max", max);
    extensions.set("actual", actual.min(i64::MAX as u64));
    error
}

/// Gives `error` the code `code` unless it has one.
fn with_code(mut error: ServerError, code: &str) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(ErrorExtensionValues::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
    error
}

/// The last step of the error pipeline: an error that still has no code
/// came from async-graphql itself (the codes of ours are set where they
/// arise). Input coercion failures are the caller's; anything else is
/// logged and coded `INTERNAL`.
fn code_every_error(errors: &mut [ServerError]) {
    for error in errors {
        let coded = error
            .extensions
            .as_ref()
            .is_some_and(|extensions| extensions.get("code").is_some());
        if coded {
            continue;
        }
        let code = if error.path.is_empty() {
            GRAPHQL_VALIDATION_FAILED
        } else if error.message.starts_with("Failed to parse") || error.message.starts_with("Invalid value") {
            BAD_USER_INPUT
        } else {
            tracing::warn!(message = %error.message, "an error without a code reached the response");
            INTERNAL
        };
        error
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default)
            .set("code", code);
    }
}

/// The deepest nesting of `{`, `(` and `[` in `text`, outside strings and
/// comments; stops counting once past `limit`.
pub(crate) fn raw_nesting(text: &str, limit: usize) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                    at += 1;
                }
            }
            b'"' if bytes[at..].starts_with(b"\"\"\"") => {
                at += 3;
                while at < bytes.len() && !bytes[at..].starts_with(b"\"\"\"") {
                    at += if bytes[at..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                at += 2;
            }
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' && bytes[at] != b'\n' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'(' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return deepest;
                }
            }
            b'}' | b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    deepest
}

/// What the gate measures of a parsed document.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Fields after fragment expansion, `__typename` included (saturating).
    pub fields: u64,
    /// Selection depth after fragment expansion.
    pub depth: usize,
    /// Aliases written in the document.
    pub aliases: usize,
    /// Directives written in the document.
    pub directives: usize,
    /// Fragment spreads written in the document.
    pub spreads: usize,
    /// Operations in the document.
    pub operations: usize,
    /// Arguments (of fields and directives) and variable definitions
    /// written in the document.
    pub arguments: usize,
}

impl Shape {
    /// Measures `document` in time linear in its size.
    pub fn of(document: &ExecutableDocument) -> Self {
        let mut shape = Self::default();
        let expansion = Expansion::of(document);
        let operations: Vec<&Positioned<OperationDefinition>> = match &document.operations {
            DocumentOperations::Single(operation) => vec![operation],
            DocumentOperations::Multiple(operations) => operations.values().collect(),
        };
        shape.operations = operations.len();
        for operation in operations {
            shape.directives += operation.node.directives.len();
            shape.arguments +=
                operation.node.variable_definitions.len() + directive_arguments(&operation.node.directives);
            shape.count_written(&operation.node.selection_set.node);
            let (fields, depth) = expansion.selection_set(&operation.node.selection_set.node);
            shape.fields = shape.fields.saturating_add(fields);
            shape.depth = shape.depth.max(depth);
        }
        for fragment in document.fragments.values() {
            shape.directives += fragment.node.directives.len();
            shape.arguments += directive_arguments(&fragment.node.directives);
            shape.count_written(&fragment.node.selection_set.node);
        }
        shape
    }

    /// Counts what is written in a selection set (no expansion).
    fn count_written(&mut self, set: &SelectionSet) {
        let mut pending = vec![set];
        while let Some(set) = pending.pop() {
            for selection in &set.items {
                match &selection.node {
                    Selection::Field(field) => {
                        self.aliases += usize::from(field.node.alias.is_some());
                        self.directives += field.node.directives.len();
                        self.arguments +=
                            field.node.arguments.len() + directive_arguments(&field.node.directives);
                        pending.push(&field.node.selection_set.node);
                    }
                    Selection::InlineFragment(fragment) => {
                        self.directives += fragment.node.directives.len();
                        self.arguments += directive_arguments(&fragment.node.directives);
                        pending.push(&fragment.node.selection_set.node);
                    }
                    Selection::FragmentSpread(spread) => {
                        self.spreads += 1;
                        self.directives += spread.node.directives.len();
                        self.arguments += directive_arguments(&spread.node.directives);
                    }
                }
            }
        }
    }
}

fn directive_arguments(directives: &[Positioned<Directive>]) -> usize {
    directives
        .iter()
        .map(|directive| directive.node.arguments.len())
        .sum()
}

/// Fields and depth of selection sets with their fragments expanded, one
/// memo entry per fragment. The fragments are measured in dependency order
/// with an explicit stack, so that nothing recurses along a chain of
/// fragments (a chain of thousands would otherwise overflow the stack);
/// measuring one selection set recurses only as deep as its braces nest,
/// which the raw pre-scan bounds. A fragment that spreads itself, directly
/// or not, counts as empty where the cycle closes (validation refuses it).
struct Expansion<'a> {
    memo: HashMap<&'a str, (u64, usize)>,
}

impl<'a> Expansion<'a> {
    fn of(document: &'a ExecutableDocument) -> Self {
        let mut expansion = Self { memo: HashMap::new() };
        let mut visiting: HashSet<&'a str> = HashSet::new();
        for root in document.fragments.keys() {
            if expansion.memo.contains_key(root.as_str()) {
                continue;
            }
            let mut stack: Vec<(&'a str, Vec<&'a str>, usize)> = Vec::new();
            if let Some(fragment) = document.fragments.get(root) {
                visiting.insert(root.as_str());
                stack.push((root.as_str(), spreads_in(&fragment.node.selection_set.node), 0));
            }
            while let Some((name, children, next)) = stack.last_mut() {
                if let Some(child) = children.get(*next).copied() {
                    *next += 1;
                    if expansion.memo.contains_key(child) || visiting.contains(child) {
                        continue;
                    }
                    if let Some((key, fragment)) = document.fragments.get_key_value(child) {
                        visiting.insert(key.as_str());
                        stack.push((key.as_str(), spreads_in(&fragment.node.selection_set.node), 0));
                    }
                    continue;
                }
                let name = *name;
                stack.pop();
                if let Some(fragment) = document.fragments.get(name) {
                    let measured = expansion.selection_set(&fragment.node.selection_set.node);
                    expansion.memo.insert(name, measured);
                }
                visiting.remove(name);
            }
        }
        expansion
    }

    fn selection_set(&self, set: &SelectionSet) -> (u64, usize) {
        let mut fields = 0u64;
        let mut depth = 0usize;
        for selection in &set.items {
            let (item_fields, item_depth) = match &selection.node {
                Selection::Field(field) => {
                    let (below, below_depth) = self.selection_set(&field.node.selection_set.node);
                    (below.saturating_add(1), below_depth + 1)
                }
                // A spread and an inline fragment count as selections too:
                // async-graphql walks them, so expanding to nothing is not free.
                Selection::InlineFragment(fragment) => {
                    let (below, below_depth) = self.selection_set(&fragment.node.selection_set.node);
                    (below.saturating_add(1), below_depth)
                }
                Selection::FragmentSpread(spread) => {
                    let (below, below_depth) = self
                        .memo
                        .get(spread.node.fragment_name.node.as_str())
                        .copied()
                        .unwrap_or((0, 0));
                    (below.saturating_add(1), below_depth)
                }
            };
            fields = fields.saturating_add(item_fields);
            depth = depth.max(item_depth);
        }
        (fields, depth)
    }
}

/// The names of the fragments spread anywhere in `set` (without expanding them).
fn spreads_in(set: &SelectionSet) -> Vec<&str> {
    let mut names = Vec::new();
    let mut pending = vec![set];
    while let Some(set) = pending.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => pending.push(&field.node.selection_set.node),
                Selection::InlineFragment(fragment) => pending.push(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread) => names.push(spread.node.fragment_name.node.as_str()),
            }
        }
    }
    names
}

/// Checks that the document and `operationName` name exactly one operation.
fn resolve_operation(document: &ExecutableDocument, operation_name: Option<&str>) -> ServerResult<()> {
    let refuse = |message: String| Err(coded_error(message, OPERATION_RESOLUTION_FAILURE));
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(_), None) => Ok(()),
        (DocumentOperations::Single(_), Some(name)) => refuse(format!(
            "the document has no operation named `{name}` (its only operation is unnamed): omit operationName"
        )),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            if operations.contains_key(name) {
                Ok(())
            } else {
                refuse(format!("the document has no operation named `{name}`"))
            }
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => Ok(()),
        (DocumentOperations::Multiple(operations), None) => refuse(format!(
            "the document has {} operations: name the one to run with operationName",
            operations.len()
        )),
    }
}

/// Where a NUL byte is in the request: the argument path of a literal or of
/// a variable passed to an argument, else the variable itself. Each
/// variable is scanned once, however often the document refers to it.
fn nul_in_request(document: &ExecutableDocument, variables: &Variables) -> Option<String> {
    let tainted: HashMap<&str, String> = variables
        .iter()
        .filter_map(|(name, value)| nul_in_const(value).map(|path| (name.as_str(), path)))
        .collect();
    nul_in_document(document, &tainted).or_else(|| nul_in_variables(variables))
}

/// Variables holding a NUL, with the path to it inside each.
type Tainted<'a> = HashMap<&'a str, String>;

/// The argument path of the first string holding a NUL byte, written in the
/// document or given in a variable the document passes to an argument.
fn nul_in_document(document: &ExecutableDocument, variables: &Tainted<'_>) -> Option<String> {
    let operations: Vec<&Positioned<OperationDefinition>> = match &document.operations {
        DocumentOperations::Single(operation) => vec![operation],
        DocumentOperations::Multiple(operations) => operations.values().collect(),
    };
    let mut pending: Vec<&SelectionSet> = Vec::new();
    for operation in operations {
        if let Some(found) = nul_in_directives(&operation.node.directives, variables) {
            return Some(found);
        }
        for variable in &operation.node.variable_definitions {
            if let Some(default) = &variable.node.default_value
                && let Some(path) = nul_in_const(&default.node)
            {
                return Some(join(&format!("${}", variable.node.name.node), &path));
            }
        }
        pending.push(&operation.node.selection_set.node);
    }
    for fragment in document.fragments.values() {
        if let Some(found) = nul_in_directives(&fragment.node.directives, variables) {
            return Some(found);
        }
        pending.push(&fragment.node.selection_set.node);
    }
    while let Some(set) = pending.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    for (name, value) in &field.node.arguments {
                        if let Some(path) = nul_in_value(&value.node, variables) {
                            return Some(join(name.node.as_str(), &path));
                        }
                    }
                    if let Some(found) = nul_in_directives(&field.node.directives, variables) {
                        return Some(found);
                    }
                    pending.push(&field.node.selection_set.node);
                }
                Selection::InlineFragment(fragment) => {
                    if let Some(found) = nul_in_directives(&fragment.node.directives, variables) {
                        return Some(found);
                    }
                    pending.push(&fragment.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(found) = nul_in_directives(&spread.node.directives, variables) {
                        return Some(found);
                    }
                }
            }
        }
    }
    None
}

fn nul_in_directives(directives: &[Positioned<Directive>], variables: &Tainted<'_>) -> Option<String> {
    directives.iter().find_map(|directive| {
        directive.node.arguments.iter().find_map(|(name, value)| {
            nul_in_value(&value.node, variables).map(|path| join(name.node.as_str(), &path))
        })
    })
}

/// The first variable (as `$name.path`) whose value holds a NUL byte.
fn nul_in_variables(variables: &Variables) -> Option<String> {
    variables
        .iter()
        .find_map(|(name, value)| nul_in_const(value).map(|path| join(&format!("${name}"), &path)))
}

/// Where in a document value a string holds NUL (`Some("")` for the value
/// itself); a variable is looked up in `variables`.
fn nul_in_value(value: &async_graphql_value::Value, variables: &Tainted<'_>) -> Option<String> {
    use async_graphql_value::Value as Literal;
    match value {
        Literal::String(text) => text.contains('\0').then(String::new),
        Literal::Variable(name) => variables.get(name.as_str()).cloned(),
        Literal::List(items) => items.iter().enumerate().find_map(|(index, item)| {
            nul_in_value(item, variables).map(|path| join(&index.to_string(), &path))
        }),
        Literal::Object(fields) => fields.iter().find_map(|(key, value)| {
            if key.contains('\0') {
                return Some(key.to_string());
            }
            nul_in_value(value, variables).map(|path| join(key.as_str(), &path))
        }),
        _ => None,
    }
}

/// Where in a constant value a string holds NUL.
fn nul_in_const(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then(String::new),
        Value::List(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| nul_in_const(item).map(|path| join(&index.to_string(), &path))),
        Value::Object(fields) => fields.iter().find_map(|(key, value)| {
            if key.contains('\0') {
                return Some(key.to_string());
            }
            nul_in_const(value).map(|path| join(key.as_str(), &path))
        }),
        _ => None,
    }
}

fn join(head: &str, tail: &str) -> String {
    if tail.is_empty() {
        head.to_owned()
    } else {
        format!("{head}.{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(query: &str) -> Shape {
        match async_graphql::parser::parse_query(query) {
            Ok(document) => Shape::of(&document),
            Err(error) => panic!("{query} does not parse: {error}"),
        }
    }

    /// The attack document of issue 8: each fragment spreads the next twice.
    fn doubling(n: usize) -> String {
        let fragments: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "fragment F{i} on QueryRoot {{ a{i}: __typename ...F{next} ...F{next} }}",
                    next = i + 1
                )
            })
            .collect();
        format!(
            "query {{ ...F0 }} {} fragment F{n} on QueryRoot {{ __typename }}",
            fragments.join(" ")
        )
    }

    #[test]
    fn expanded_fields_double_with_each_fragment_level_and_are_counted_in_linear_time() {
        // Spreads count as selections: F_i = 3 + 2·F_(i+1), the query F_0 + 1.
        assert_eq!(shape(&doubling(1)).fields, 6);
        assert_eq!(shape(&doubling(2)).fields, 14);
        assert_eq!(shape(&doubling(25)).fields, (1u64 << 27) - 2);
        // Far beyond u64: the count saturates rather than overflowing.
        assert_eq!(shape(&doubling(100)).fields, u64::MAX);
        assert_eq!(shape(&doubling(25)).spreads, 51);
        assert_eq!(shape(&doubling(25)).aliases, 25);
    }

    #[test]
    fn fragments_that_expand_to_nothing_still_count() {
        // No field at all, 100 spreads, and a spread of a fragment that does
        // not exist at the bottom: 2^50 selections once expanded.
        let fragments: String = (0..49)
            .map(|i| format!("fragment F{i} on Q {{ ...F{next} ...F{next} }} ", next = i + 1))
            .collect();
        let query = format!("{{ ...F0 }} {fragments} fragment F49 on Q {{ ...Missing }}");
        assert!(shape(&query).fields > 1 << 49);
        let inline: String = (0..49)
            .map(|i| {
                format!(
                    "fragment F{i} on Q {{ ... {{ ...F{next} }} ... {{ ...F{next} }} }} ",
                    next = i + 1
                )
            })
            .collect();
        let query = format!("{{ ...F0 }} {inline} fragment F49 on Q {{ ... {{ __typename }} }}");
        assert!(shape(&query).fields > 1 << 49);
    }

    #[test]
    fn arguments_and_variable_definitions_are_counted() {
        let measured = shape("query($a: Int, $b: Int) { f(x: 1, y: 2) @include(if: true) { g(z: 3) } }");
        assert_eq!(measured.arguments, 6);
    }

    #[test]
    fn depth_counts_nesting_through_fragments_and_inline_fragments() {
        let measured = shape("{ a { ...F } } fragment F on X { b { ... on Y { c { d } } } }");
        assert_eq!(measured.depth, 4);
        assert_eq!(measured.fields, 6);
    }

    #[test]
    fn a_long_chain_of_fragments_is_measured_without_deep_recursion() {
        // Each fragment spreads the next once: 20,000 fragments deep. Run on
        // a small stack, so that recursing along the chain would overflow.
        let n = 20_000;
        let fragments: String = (0..n)
            .map(|i| format!("fragment F{i} on Q {{ a ...F{} }} ", i + 1))
            .collect();
        let query = format!("{{ ...F0 }} {fragments} fragment F{n} on Q {{ a }}");
        let measured = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || shape(&query))
            .ok()
            .and_then(|thread| thread.join().ok());
        assert_eq!(measured.map(|measured| measured.fields), Some(2 * n as u64 + 2));
    }

    #[test]
    fn a_fragment_cycle_counts_as_empty_instead_of_recursing() {
        // Where the cycle closes depends on which fragment is measured
        // first: either way the count is finite and small.
        let measured = shape("{ ...A } fragment A on Q { a ...B } fragment B on Q { b ...A }");
        assert!((3..=5).contains(&measured.fields), "{measured:?}");
    }

    #[test]
    fn raw_nesting_ignores_brackets_in_strings_and_comments() {
        assert_eq!(raw_nesting("{ a(x: \"{{{{\") { b } }", 10), 2);
        assert_eq!(raw_nesting("# {{{{\n{ a }", 10), 1);
        assert_eq!(raw_nesting("{ a(x: \"\"\" {{{ \\\"\"\" {{ \"\"\") }", 10), 2);
        assert_eq!(raw_nesting(&"{".repeat(100_000), 64), 65);
    }

    #[test]
    fn nul_bytes_are_found_in_nested_literals_and_variables() {
        let document = async_graphql::parser::parse_query(
            "mutation { f(input: { a: [\"ok\", \"bad\\u0000\"] }) { x } }",
        )
        .ok();
        let none = Variables::default();
        let found = document
            .as_ref()
            .and_then(|document| nul_in_request(document, &none));
        assert_eq!(found.as_deref(), Some("input.a.1"));
        let variables = Variables::from_json(serde_json::json!({ "input": { "email": "a\u{0}b" } }));
        let passed =
            async_graphql::parser::parse_query("mutation($input: In) { f(data: $input) { x } }").ok();
        let found = passed
            .as_ref()
            .and_then(|document| nul_in_request(document, &variables));
        assert_eq!(found.as_deref(), Some("data.email"));
        assert_eq!(nul_in_variables(&variables).as_deref(), Some("$input.email"));
    }

    #[test]
    fn every_query_in_the_readme_fits_the_default_limits() {
        let readme = include_str!("../../README.md");
        let limits = GraphqlSettings::default();
        let blocks: Vec<&str> = readme
            .split("```graphql\n")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .collect();
        assert!(blocks.len() >= 5, "the README shows its queries");
        // A block may show several anonymous operations: one document each.
        let mut documents = Vec::new();
        for block in blocks {
            let mut current = String::new();
            for line in block.lines() {
                let starts = ["query", "mutation", "subscription", "{"]
                    .iter()
                    .any(|keyword| line.starts_with(keyword));
                let has_operation = current
                    .lines()
                    .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'));
                if starts && has_operation {
                    documents.push(std::mem::take(&mut current));
                }
                current.push_str(line);
                current.push('\n');
            }
            documents.push(current);
        }
        for block in documents.iter().map(String::as_str) {
            assert!(
                raw_nesting(block, limits.max_nesting) <= limits.max_nesting,
                "{block}"
            );
            let measured = shape(block);
            assert!(measured.fields <= limits.max_fields, "{block}: {measured:?}");
            assert!(measured.depth <= limits.max_depth, "{block}: {measured:?}");
            assert!(measured.aliases <= limits.max_aliases, "{block}: {measured:?}");
            assert!(
                measured.directives <= limits.max_directives,
                "{block}: {measured:?}"
            );
            assert!(
                measured.spreads <= limits.max_fragment_spreads,
                "{block}: {measured:?}"
            );
            assert!(
                measured.operations <= limits.max_operations,
                "{block}: {measured:?}"
            );
        }
    }

    #[test]
    fn the_readme_lists_every_error_code() {
        let readme = include_str!("../../README.md");
        let codes = [
            "UNAUTHENTICATED",
            "FORBIDDEN",
            "NOT_FOUND",
            BAD_USER_INPUT,
            "CONFLICT",
            INTERNAL,
            GRAPHQL_PARSE_FAILED,
            GRAPHQL_VALIDATION_FAILED,
            OPERATION_RESOLUTION_FAILURE,
            QUERY_TOO_LARGE,
            QUERY_TOO_COMPLEX,
            "BATCH_TOO_LARGE",
            "BAD_REQUEST",
            "TOO_MANY_OPERATIONS",
            "PAYLOAD_TOO_LARGE",
            "REQUEST_TIMEOUT",
        ];
        for code in codes {
            assert!(
                readme.contains(&format!("| `{code}` |")),
                "README's error table lacks {code}"
            );
        }
    }

    #[test]
    fn list_fields_cost_their_page_size_or_bound() {
        assert_eq!(page_cost(Some(100), 20, 100, 3), 301);
        assert_eq!(page_cost(None, 20, 100, 3), 61);
        assert_eq!(page_cost(Some(-5), 20, 100, 3), 4);
        assert_eq!(page_cost(Some(1000), 20, 100, 3), 301);
        assert_eq!(list_cost(50, 2), 101);
        assert_eq!(page_cost(Some(50), 20, 100, usize::MAX), 1 << 40);
        assert_eq!(list_cost(10, usize::MAX), 1 << 40);
    }
}
