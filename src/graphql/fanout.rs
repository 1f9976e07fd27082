//! Live subscriptions, and the sharing of their results.
//!
//! A subscription to a shareable field (`sessionStatusChanged`,
//! `unlockNotifications`) from now on (no `after`) joins a *group*: every
//! subscriber of this instance with the same document, operation,
//! variables and scope. The group runs the operation once, reading the
//! event log once, and resolves each event's payload once, to JSON; each
//! subscriber then decides in memory whether it may see the event (its
//! own identity, links and standing) and writes that JSON to its socket.
//! A document whose fields all come from the event itself is shared by
//! every subscriber of the tenant; one that reaches further (a session's
//! modules, its config…) reads through loaders scoped to the viewer, so
//! its group is that viewer's alone (their devices share it), and it
//! resolves only the events that viewer may see.
//!
//! A subscriber that falls too far behind its group is told so (the
//! connection closes with 1013 and the client resumes with `after`);
//! replays (`after`) run by themselves, as does anything not shareable.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Context, Executor, PathSegment, Pos, Positioned, Request, Response, Result, Variables};
use async_graphql_value::{ConstValue, Value};
use futures_util::future::BoxFuture;
use futures_util::stream::{self, AbortHandle, Abortable, BoxStream};
use futures_util::{Stream, StreamExt};
use serde_json::value::RawValue;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::auth::{Identity, UserIdentity};
use crate::error::AppError;
use crate::events::{Feed, Listening, Logged};
use crate::graphql::loaders::uncached_loaders;
use crate::graphql::wire::WireResponse;
use crate::graphql::{AppSchema, AppState, ContextExt, live_identity};
use crate::services::live_identity::LiveIdentity;
use crate::services::scope::Scope;

/// What to do with one event for one subscriber.
pub(crate) enum Verdict<T> {
    /// Not for this subscriber.
    Skip,
    /// Deliver this.
    Deliver(T),
    /// End the subscription with this error.
    Stop(AppError),
}

impl<T> Verdict<T> {
    /// What is delivered, if anything, made into something else.
    pub(crate) fn map<U>(self, deliver: impl FnOnce(T) -> U) -> Verdict<U> {
        match self {
            Self::Skip => Verdict::Skip,
            Self::Deliver(item) => Verdict::Deliver(deliver(item)),
            Self::Stop(error) => Verdict::Stop(error),
        }
    }
}

/// The subscriber of one subscription: who they are and what they may see.
#[derive(Clone)]
pub(crate) struct Subscriber {
    /// The application state.
    pub(crate) state: AppState,
    /// Who subscribed.
    pub(crate) viewer: Arc<UserIdentity>,
    /// What they could see when they subscribed.
    pub(crate) scope: Scope,
}

impl Subscriber {
    /// The subscriber of the subscription being resolved, and the
    /// connection's live view of its identity.
    pub(crate) fn new(ctx: &Context<'_>) -> Result<(Self, LiveIdentity), AppError> {
        let scope = ctx.scope()?;
        let viewer = ctx.viewer()?.clone();
        let live = live_identity(ctx)?;
        Ok((
            Self {
                state: ctx.state()?.clone(),
                viewer,
                scope,
            },
            live,
        ))
    }

    /// A stream of what `pick` makes of the events of `feed`, for as long
    /// as the connection's identity admits the subscription: it ends with
    /// the reason as soon as the login session ends or the tenant or role
    /// changes, not at the next event, and delivers nothing after that.
    pub(crate) fn stream<T, F, Fut>(
        self,
        live: LiveIdentity,
        feed: Feed,
        pick: F,
    ) -> impl Stream<Item = Result<T>> + use<T, F, Fut>
    where
        T: Send + 'static,
        F: Fn(Subscriber, Arc<Logged>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Verdict<T>> + Send,
    {
        stream::unfold(Some((feed, live, self, pick)), |state| async move {
            let (mut feed, mut live, subscriber, pick) = state?;
            loop {
                let next = tokio::select! {
                    biased;
                    () = live.changed() => None,
                    next = feed.next() => Some(next),
                };
                let Some(next) = next else {
                    if let Err(error) = live.admits(&subscriber.scope).await {
                        return Some((Err(error.into()), None));
                    }
                    continue;
                };
                match next {
                    Ok(Some(logged)) => match pick(subscriber.clone(), logged).await {
                        Verdict::Skip => {}
                        Verdict::Deliver(item) => {
                            // Nothing after the end, even an event that was
                            // already on its way.
                            if let Err(error) = live.admits(&subscriber.scope).await {
                                return Some((Err(error.into()), None));
                            }
                            return Some((Ok(item), Some((feed, live, subscriber, pick))));
                        }
                        Verdict::Stop(error) => return Some((Err(error.into()), None)),
                    },
                    Ok(None) => return None,
                    Err(error) => return Some((Err(error.into()), None)),
                }
            }
        })
    }
}

/// A subscription field whose results groups share.
pub(crate) struct SharedField {
    /// Its name in the schema.
    pub(crate) name: &'static str,
    /// The type of its items.
    pub(crate) item_type: &'static str,
    /// The fields resolved from what the event carries: `(type, field, the
    /// field's object type if it has one)`. A document that selects any
    /// other field depends on the subscriber's scope.
    pub(crate) carried: &'static [(&'static str, &'static str, Option<&'static str>)],
    /// Loads what `admit` will need, when the subscriber joins.
    pub(crate) warm: for<'a> fn(&'a Subscriber) -> BoxFuture<'a, Result<(), AppError>>,
    /// Whether the subscriber may see an event of the group, decided in
    /// memory (the group already matched the field's arguments and tenant).
    pub(crate) admit: for<'a> fn(&'a Subscriber, &'a Logged) -> BoxFuture<'a, Verdict<()>>,
}

/// What a shared subscription gives its subscriber.
pub(crate) enum SharedItem {
    /// A result, already JSON.
    Payload(Arc<RawValue>),
    /// A response of this subscriber's own (the end, or an error).
    Response(Box<Response>),
    /// The subscriber fell too far behind its group.
    TooFarBehind,
}

/// The request data a group's operation runs with: where its resolver
/// reads events, and how it tells the group which event each result is of.
pub(crate) struct SharedSource {
    /// The tenant of the group.
    pub(crate) tenant_id: Uuid,
    /// The event whose result is being resolved.
    current: Mutex<Option<Arc<Logged>>>,
    progress: Arc<Progress>,
    /// Tells the group's subscribers when its feed is in place.
    sender: broadcast::Sender<GroupMessage>,
    /// A viewer's group: its field, and the viewer every member shares
    /// (the same scope). Events they may not see are not resolved at all.
    viewer: Option<(&'static SharedField, Subscriber)>,
}

impl SharedSource {
    /// The events of `feed` that `pick` keeps, as the group's resolver
    /// yields them: each result the group gets is of the event recorded
    /// here before it was yielded (async-graphql resolves one item at a
    /// time). The group is in place once this is called.
    pub(crate) fn stream<T, F>(
        self: Arc<Self>,
        feed: Feed,
        pick: F,
    ) -> impl Stream<Item = Result<T>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: Fn(&Logged) -> Option<T> + Send + Sync + 'static,
    {
        // Its members count themselves from here on.
        let feed = feed.shared();
        // Flagged first: a subscriber joining meanwhile sees one or the other.
        self.progress.ready.store(true, Ordering::SeqCst);
        let _receivers = self.sender.send(GroupMessage::Ready);
        stream::unfold(Some((feed, self, pick)), |state| async move {
            let (mut feed, source, pick) = state?;
            loop {
                match feed.next().await {
                    Ok(Some(logged)) => {
                        let Some(item) = pick(&logged) else { continue };
                        if let Some((field, viewer)) = &source.viewer
                            && !matches!((field.admit)(viewer, &logged).await, Verdict::Deliver(()))
                        {
                            // Each member checks again (and ends on an error).
                            continue;
                        }
                        *source.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(logged);
                        return Some((Ok(item), Some((feed, source, pick))));
                    }
                    Ok(None) => return None,
                    Err(error) => return Some((Err(error.into()), None)),
                }
            }
        })
    }

    fn take_current(&self) -> Option<Arc<Logged>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// How far a group's operation has come.
#[derive(Default)]
struct Progress {
    /// Its feed is in place: events from now on reach it.
    ready: AtomicBool,
    /// It has ended: nobody joins it any more.
    finished: AtomicBool,
}

/// What a group tells its subscribers.
#[derive(Clone)]
enum GroupMessage {
    /// The group's feed is in place.
    Ready,
    /// An event and its result.
    Event {
        logged: Arc<Logged>,
        payload: Arc<RawValue>,
    },
    /// The operation ended: with this response (JSON), or with nothing
    /// more to say.
    End(Option<Arc<str>>),
}

/// Subscribers with the same document, operation, variables and scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    query: String,
    operation_name: Option<String>,
    variables: String,
    scope: ScopeKey,
}

/// What a group's results depend on besides the document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ScopeKey {
    /// Only the events of the tenant: every field comes from the event.
    Tenant(Uuid),
    /// The viewer's scope: fields read through loaders scoped to it.
    Viewer(Scope),
}

/// One running group.
struct Group {
    sender: broadcast::Sender<GroupMessage>,
    progress: Arc<Progress>,
    task: AbortHandle,
}

impl Drop for Group {
    /// The last subscriber is gone: so is the operation.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How many results a subscriber may be behind its group (a viewer's own
/// group serves few subscribers: its buffer is smaller).
const TENANT_GROUP_CAPACITY: usize = 1024;
const VIEWER_GROUP_CAPACITY: usize = 256;

/// Largest variables (as JSON) considered for sharing.
const MAX_SHARED_VARIABLES_BYTES: usize = 2 * 1024;

/// Longest document considered for sharing; a longer one runs by itself
/// (through the request gate, which measures it before parsing).
const MAX_SHARED_DOCUMENT_BYTES: usize = 8 * 1024;

/// The groups of this instance.
pub(crate) struct SharedSubscriptions {
    schema: AppSchema,
    state: AppState,
    fields: &'static [SharedField],
    groups: Mutex<Groups>,
}

#[derive(Default)]
struct Groups {
    by_key: HashMap<GroupKey, Weak<Group>>,
    /// Ended groups are swept out when the map reaches this size.
    sweep_at: usize,
}

impl SharedSubscriptions {
    /// Groups for `fields`, run with `schema`.
    pub(crate) fn new(schema: AppSchema, state: AppState, fields: &'static [SharedField]) -> Self {
        Self {
            schema,
            state,
            fields,
            groups: Mutex::default(),
        }
    }

    /// The results of `request` from its group, joined (or started) now;
    /// `None` when it is not shareable and must run by itself.
    pub(crate) fn join(
        &self,
        request: &Request,
        identity: &Identity,
        live: &LiveIdentity,
    ) -> Option<BoxStream<'static, SharedItem>> {
        let Identity::User(viewer) = identity else {
            return None;
        };
        let scope = Scope::of_user(viewer).ok()?;
        if request.query.len() > MAX_SHARED_DOCUMENT_BYTES
            || crate::graphql::limits::raw_nesting(&request.query, self.state.settings.graphql.max_nesting)
                > self.state.settings.graphql.max_nesting
        {
            return None;
        }
        let document = async_graphql::parser::parse_query(&request.query).ok()?;
        let (field, root) = self.shareable(&document, request)?;
        let scope_key = if carried_only(field, &document, &root.node.selection_set.node) {
            ScopeKey::Tenant(scope.tenant_id)
        } else {
            ScopeKey::Viewer(scope)
        };
        let variables = serde_json::to_string(&request.variables).ok()?;
        if variables.len() > MAX_SHARED_VARIABLES_BYTES {
            return None;
        }
        let key = GroupKey {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables,
            scope: scope_key,
        };
        let subscriber = Subscriber {
            state: self.state.clone(),
            viewer: viewer.clone(),
            scope,
        };
        let (group, receiver) = self.group_for(key, request, identity, (field, &subscriber));
        let member = Member {
            subscriber,
            live: live.clone(),
            field,
            response_key: root.node.response_key().node.to_string(),
            position: root.pos,
        };
        Some(member.stream(group, receiver))
    }

    /// The shareable field `request` subscribes to from now on, if it does.
    fn shareable<'d>(
        &self,
        document: &'d ExecutableDocument,
        request: &Request,
    ) -> Option<(&'static SharedField, &'d Positioned<Field>)> {
        let operation = match (&document.operations, request.operation_name.as_deref()) {
            (DocumentOperations::Single(operation), None) => operation,
            (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name)?,
            (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
                operations.values().next()?
            }
            _ => return None,
        };
        let operation = &operation.node;
        if operation.ty != OperationType::Subscription || !operation.directives.is_empty() {
            return None;
        }
        let [item] = operation.selection_set.node.items.as_slice() else {
            return None;
        };
        let Selection::Field(root) = &item.node else {
            return None;
        };
        if !root.node.directives.is_empty() {
            return None;
        }
        let fields: &'static [SharedField] = self.fields;
        let field = fields
            .iter()
            .find(|field| field.name == root.node.name.node.as_str())?;
        // A replay is the subscriber's own.
        if let Some(after) = root.node.get_argument("after")
            && !is_null(&after.node, operation, &request.variables)
        {
            return None;
        }
        Some((field, root))
    }

    /// The running group of `key` and a receiver of its messages, or a new
    /// one started for it.
    fn group_for(
        &self,
        key: GroupKey,
        request: &Request,
        identity: &Identity,
        first: (&'static SharedField, &Subscriber),
    ) -> (Arc<Group>, broadcast::Receiver<GroupMessage>) {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(group) = groups.by_key.get(&key).and_then(Weak::upgrade) {
            // Subscribed before looking: an end after this reaches it.
            let receiver = group.sender.subscribe();
            if !group.progress.finished.load(Ordering::SeqCst) {
                return (group, receiver);
            }
        }
        let (group, receiver) = self.start(&key, request, identity, first);
        groups.by_key.insert(key, Arc::downgrade(&group));
        if groups.by_key.len() >= groups.sweep_at {
            groups.by_key.retain(|_, group| group.strong_count() > 0);
            groups.sweep_at = (groups.by_key.len() * 2).max(64);
        }
        (group, receiver)
    }

    /// Starts the group of `key`, with its first receiver.
    fn start(
        &self,
        key: &GroupKey,
        request: &Request,
        identity: &Identity,
        (field, subscriber): (&'static SharedField, &Subscriber),
    ) -> (Arc<Group>, broadcast::Receiver<GroupMessage>) {
        let (tenant_id, scope, capacity) = match &key.scope {
            ScopeKey::Tenant(tenant_id) => (*tenant_id, None, TENANT_GROUP_CAPACITY),
            ScopeKey::Viewer(scope) => (scope.tenant_id, Some(*scope), VIEWER_GROUP_CAPACITY),
        };
        let (sender, receiver) = broadcast::channel(capacity);
        let progress = Arc::new(Progress::default());
        let source = Arc::new(SharedSource {
            tenant_id,
            current: Mutex::new(None),
            progress: progress.clone(),
            sender: sender.clone(),
            viewer: scope.map(|_| (field, subscriber.clone())),
        });
        let mut operation = Request::new(request.query.clone()).variables(request.variables.clone());
        if let Some(name) = &request.operation_name {
            operation = operation.operation_name(name.clone());
        }
        let mut operation = operation
            .data(source.clone())
            .data(uncached_loaders(self.state.db.clone(), scope));
        if scope.is_some() {
            // Fields beyond the event resolve as this viewer: the group is theirs.
            operation = operation.data(identity.clone());
        }
        let (abort, registration) = AbortHandle::new_pair();
        let run = run_group(
            self.schema.clone(),
            operation,
            source,
            sender.clone(),
            progress.clone(),
        );
        tokio::spawn(Abortable::new(run, registration));
        let group = Arc::new(Group {
            sender,
            progress,
            task: abort,
        });
        (group, receiver)
    }
}

/// Runs a group's operation and hands each result, serialized once, to
/// its subscribers.
async fn run_group(
    schema: AppSchema,
    operation: Request,
    source: Arc<SharedSource>,
    sender: broadcast::Sender<GroupMessage>,
    progress: Arc<Progress>,
) {
    // However the run ends (a panic in a resolver included), the members
    // are told, and nobody joins the group any more.
    let mut ending = Ending {
        progress,
        sender: sender.clone(),
        how: How::Stopped,
    };
    let mut results = Executor::execute_stream(&schema, operation, None);
    while let Some(response) = results.next().await {
        let Some(logged) = source.take_current() else {
            // Not the result of an event: the operation failed.
            if let Ok(text) = serde_json::to_string(&WireResponse::new(&response)) {
                ending.how = How::With(Arc::from(text));
            }
            return;
        };
        match serde_json::value::to_raw_value(&WireResponse::new(&response)) {
            Ok(payload) => {
                // No receiver is not an error: the group is about to end.
                let _receivers = sender.send(GroupMessage::Event {
                    logged,
                    payload: Arc::from(payload),
                });
            }
            Err(error) => {
                tracing::error!(%error, "cannot serialize a shared subscription result");
                ending.how = How::With(internal_ending());
                return;
            }
        }
    }
    ending.how = How::Complete;
}

/// Ends a group when its run does: flags it finished, then tells its
/// members how it ended.
struct Ending {
    progress: Arc<Progress>,
    sender: broadcast::Sender<GroupMessage>,
    how: How,
}

/// How a group's run ended.
enum How {
    /// It did not get to say: it was stopped (its last member left, or
    /// the server is shutting down), or it panicked.
    Stopped,
    /// With this response (JSON).
    With(Arc<str>),
    /// With nothing more to say: `complete`.
    Complete,
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.progress.finished.store(true, Ordering::SeqCst);
        let message = match std::mem::replace(&mut self.how, How::Complete) {
            How::Stopped if !std::thread::panicking() || self.sender.receiver_count() == 0 => return,
            How::Stopped => Some(internal_ending()),
            How::With(text) => Some(text),
            How::Complete => None,
        };
        let _receivers = self.sender.send(GroupMessage::End(message));
    }
}

/// The response a group's members end with when its run failed.
fn internal_ending() -> Arc<str> {
    let error = AppError::internal(anyhow::anyhow!("a shared subscription ended unexpectedly"));
    let response = Response::from_errors(vec![
        async_graphql::Error::from(error).into_server_error(Pos::default()),
    ]);
    serde_json::to_string(&WireResponse::new(&response))
        .map_or_else(|_| Arc::from(r#"{"data":null}"#), Arc::from)
}

/// One subscriber of a group.
struct Member {
    subscriber: Subscriber,
    live: LiveIdentity,
    field: &'static SharedField,
    /// Where its errors point.
    response_key: String,
    position: Pos,
}

impl Member {
    /// What the subscriber receives: the group's results it may see, for
    /// as long as its identity admits the subscription (it ends with the
    /// reason, as one of its own would).
    fn stream(
        self,
        group: Arc<Group>,
        receiver: broadcast::Receiver<GroupMessage>,
    ) -> BoxStream<'static, SharedItem> {
        let ready = group.progress.ready.load(Ordering::SeqCst);
        let state = MemberState {
            listening: ready.then(|| self.subscriber.state.events.listening()),
            warmed: false,
            member: self,
            receiver,
            _group: group,
        };
        stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            let item = state.next().await?;
            let more = matches!(item, SharedItem::Payload(_)).then_some(state);
            Some((item, more))
        })
        .boxed()
    }
}

struct MemberState {
    member: Member,
    receiver: broadcast::Receiver<GroupMessage>,
    /// Counts the subscription once the group's feed is in place.
    listening: Option<Listening>,
    warmed: bool,
    /// Keeps the group running.
    _group: Arc<Group>,
}

impl MemberState {
    /// The next item; `None` at the end.
    async fn next(&mut self) -> Option<SharedItem> {
        let member = &mut self.member;
        if !self.warmed {
            self.warmed = true;
            if let Err(error) = (member.field.warm)(&member.subscriber).await {
                return Some(member.error(error));
            }
        }
        loop {
            let message = tokio::select! {
                biased;
                () = member.live.changed() => None,
                message = self.receiver.recv() => Some(message),
            };
            let Some(message) = message else {
                if let Err(error) = member.live.admits(&member.subscriber.scope).await {
                    return Some(member.error(error));
                }
                continue;
            };
            match message {
                Ok(GroupMessage::Ready) => {
                    if self.listening.is_none() {
                        self.listening = Some(member.subscriber.state.events.listening());
                    }
                }
                Ok(GroupMessage::Event { logged, payload }) => {
                    match (member.field.admit)(&member.subscriber, &logged).await {
                        Verdict::Skip => {}
                        Verdict::Stop(error) => return Some(member.error(error)),
                        Verdict::Deliver(()) => {
                            // Nothing after the end, even an event that was
                            // already on its way.
                            if let Err(error) = member.live.admits(&member.subscriber.scope).await {
                                return Some(member.error(error));
                            }
                            return Some(SharedItem::Payload(payload));
                        }
                    }
                }
                Ok(GroupMessage::End(ending)) => {
                    let response = match serde_json::from_str::<Response>(&ending?) {
                        Ok(response) => response,
                        Err(error) => {
                            let error =
                                AppError::internal(anyhow::anyhow!("a shared ending did not parse: {error}"));
                            return Some(member.error(error));
                        }
                    };
                    return Some(SharedItem::Response(Box::new(response)));
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::info!(missed, "a subscriber fell too far behind its shared subscription");
                    return Some(SharedItem::TooFarBehind);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Member {
    /// The subscription's end with `error`, as its field's error.
    fn error(&self, error: AppError) -> SharedItem {
        let error = async_graphql::Error::from(error)
            .into_server_error(self.position)
            .with_path(vec![PathSegment::Field(self.response_key.clone())]);
        SharedItem::Response(Box::new(Response::from_errors(vec![error])))
    }
}

/// Whether an argument's value is null, given the request's variables.
fn is_null(value: &Value, operation: &OperationDefinition, variables: &Variables) -> bool {
    match value {
        Value::Null => true,
        Value::Variable(name) => match variables.get(name) {
            Some(value) => *value == ConstValue::Null,
            None => operation
                .variable_definitions
                .iter()
                .find(|definition| definition.node.name.node == *name)
                .and_then(|definition| definition.node.default_value.as_ref())
                .is_none_or(|default| default.node == ConstValue::Null),
        },
        _ => false,
    }
}

/// Whether every field selected under `field`'s root comes from the event
/// itself. Each fragment is looked at once per type, so this is linear in
/// the document however its fragments spread.
pub(crate) fn carried_only(
    field: &SharedField,
    document: &ExecutableDocument,
    selection: &SelectionSet,
) -> bool {
    let mut seen = HashSet::new();
    carried_in(field, document, selection, field.item_type, &mut seen)
}

fn carried_in<'d>(
    field: &SharedField,
    document: &'d ExecutableDocument,
    selection: &'d SelectionSet,
    type_name: &'static str,
    seen: &mut HashSet<(&'d str, &'static str)>,
) -> bool {
    selection.items.iter().all(|item| match &item.node {
        Selection::Field(selected) => {
            let name = selected.node.name.node.as_str();
            if name == "__typename" {
                return true;
            }
            let Some(&(_, _, child)) = field
                .carried
                .iter()
                .find(|(owner, carried, _)| *owner == type_name && *carried == name)
            else {
                return false;
            };
            match child {
                Some(child) => carried_in(field, document, &selected.node.selection_set.node, child, seen),
                None => selected.node.selection_set.node.items.is_empty(),
            }
        }
        Selection::FragmentSpread(spread) => {
            let name = spread.node.fragment_name.node.as_str();
            if !seen.insert((name, type_name)) {
                return true;
            }
            document
                .fragments
                .get(&spread.node.fragment_name.node)
                .is_some_and(|fragment| {
                    carried_in(
                        field,
                        document,
                        &fragment.node.selection_set.node,
                        type_name,
                        seen,
                    )
                })
        }
        Selection::InlineFragment(inline) => {
            carried_in(field, document, &inline.node.selection_set.node, type_name, seen)
        }
    })
}
