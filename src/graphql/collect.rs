//! GraphQL's CollectFields, once for the whole schema layer.
//!
//! The lists written in one pass (`content::lists`) plan their objects by
//! it, and the response is put in order by it (`operation`): both must
//! agree with the specification, and with each other.

use std::collections::{HashMap, HashSet};

use async_graphql::Name;
use async_graphql::Positioned;
use async_graphql::parser::types::{Directive, Field, FragmentDefinition, Selection, SelectionSet};
use async_graphql::registry::Registry;

/// The fields of one response key: every field the selection sets ask
/// under that key (more than one when fragments repeat it).
pub(crate) type Group<'a> = (&'a Name, Vec<&'a Positioned<Field>>);

/// What CollectFields reads besides the selection sets.
pub(crate) struct Collector<'a, S> {
    /// The document's fragments.
    pub(crate) fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    /// The schema, for type conditions on interfaces and unions.
    pub(crate) registry: &'a Registry,
    /// Whether `@skip`/`@include` leave a selection out (never, once
    /// async-graphql has removed the skipped selections).
    pub(crate) skips: S,
}

impl<'a, S: Fn(&[Positioned<Directive>]) -> bool> Collector<'a, S> {
    /// CollectFields for an object of type `type_name` over `sets` (the
    /// selection sets of every field merged under one key): each response
    /// key once, in the order it first appears, fragments spread in place
    /// when their type condition applies, each fragment entered once.
    /// Linear in the size of the selections.
    pub(crate) fn collect(&self, sets: &[&'a SelectionSet], type_name: &str) -> Vec<Group<'a>> {
        let mut walk = Walk {
            groups: Vec::new(),
            index: HashMap::new(),
            entered: HashSet::new(),
        };
        for set in sets {
            self.walk(set, type_name, &mut walk);
        }
        walk.groups
    }

    fn walk(&self, set: &'a SelectionSet, type_name: &str, walk: &mut Walk<'a>) {
        for selection in &set.items {
            if (self.skips)(selection.node.directives()) {
                continue;
            }
            let (condition, inner) = match &selection.node {
                Selection::Field(field) => {
                    let key = &field.node.response_key().node;
                    match walk.index.get(key.as_str()) {
                        Some(&at) => {
                            if let Some((_, fields)) = walk.groups.get_mut(at) {
                                fields.push(field);
                            }
                        }
                        None => {
                            walk.index.insert(key.as_str(), walk.groups.len());
                            walk.groups.push((key, vec![field]));
                        }
                    }
                    continue;
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    // A fragment spread twice adds nothing the second time
                    // (and so the walk ends, were fragments ever to cycle).
                    let Some(fragment) = self.fragments.get(name).filter(|_| walk.entered.insert(name))
                    else {
                        continue;
                    };
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
                self.walk(inner, type_name, walk);
            }
        }
    }
}

/// The state of one CollectFields.
struct Walk<'a> {
    groups: Vec<Group<'a>>,
    /// Where each response key's group is in `groups`.
    index: HashMap<&'a str, usize>,
    /// The fragments spread so far.
    entered: HashSet<&'a str>,
}
