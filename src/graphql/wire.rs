//! Responses as they are sent, with lists that were written ahead.
//!
//! Long lists of prefetched rows (see `content::lists`) are written to JSON
//! while they resolve, and travel through async-graphql's executor as a
//! [`Value::Binary`] holding that JSON: building a `Value` tree of thousands
//! of objects only to serialize it again costs more than the rows do. The
//! executor never makes a `Binary` of its own for this schema (no scalar
//! resolves to one, and JSON input never becomes one), so in a response a
//! `Binary` is always such a list. Every transport serializes responses
//! through [`WireResponse`], which writes those bytes in place through
//! serde_json's raw-value mechanism (the one `serde_json::value::RawValue`
//! uses); async-graphql's own `Serialize` would write them as an array of
//! numbers.

use async_graphql::{Response, Value};
use serde::ser::{Error as _, SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

/// The struct name and field serde_json's serializer writes verbatim (its
/// `raw_value` feature; async-graphql-value names the same token).
const RAW_JSON_TOKEN: &str = "$serde_json::private::RawValue";

/// A value whose JSON `json` already is. Only for JSON this server wrote.
pub(crate) fn prewritten(json: Vec<u8>) -> Value {
    Value::Binary(json.into())
}

/// A response value, serialized with its prewritten parts in place.
pub(crate) struct WireValue<'a>(pub(crate) &'a Value);

impl Serialize for WireValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Number(number) => number.serialize(serializer),
            Value::String(text) => serializer.serialize_str(text),
            Value::Enum(name) => serializer.serialize_str(name),
            Value::Boolean(value) => serializer.serialize_bool(*value),
            Value::Binary(json) => {
                let json = std::str::from_utf8(json).map_err(S::Error::custom)?;
                let mut raw = serializer.serialize_struct(RAW_JSON_TOKEN, 1)?;
                raw.serialize_field(RAW_JSON_TOKEN, json)?;
                raw.end()
            }
            Value::List(items) => serializer.collect_seq(items.iter().map(WireValue)),
            Value::Object(fields) => {
                serializer.collect_map(fields.iter().map(|(key, value)| (key.as_str(), WireValue(value))))
            }
        }
    }
}

/// About how many bytes `value` takes as JSON (prewritten parts exactly),
/// to size the buffer it is written into: each growth copies it.
pub(crate) fn size_hint(value: &Value) -> usize {
    match value {
        Value::Null | Value::Boolean(_) | Value::Number(_) => 8,
        Value::String(text) => text.len() + 2,
        Value::Enum(name) => name.len() + 2,
        Value::Binary(json) => json.len(),
        Value::List(items) => 2 + items.iter().map(|item| size_hint(item) + 1).sum::<usize>(),
        Value::Object(fields) => {
            2 + fields
                .iter()
                .map(|(key, value)| key.len() + 4 + size_hint(value))
                .sum::<usize>()
        }
    }
}

/// A request error (a document that does not parse or validate, an unknown
/// operation) stops execution before it starts: no data, and no error has a
/// path.
pub(crate) fn is_request_error(response: &Response) -> bool {
    response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// A GraphQL response as it is sent: `errors` first when there are any (as
/// the specification suggests), then `data` (left out for a request error,
/// which has none), then `extensions`; the entries of `data` in the order
/// of the selection set.
pub(crate) struct WireResponse<'a> {
    response: &'a Response,
    with_data: bool,
}

impl<'a> WireResponse<'a> {
    /// About how many bytes the response takes as JSON.
    pub(crate) fn size_hint(&self) -> usize {
        let errors = if self.response.errors.is_empty() {
            0
        } else {
            256 * self.response.errors.len()
        };
        64 + errors
            + if self.with_data {
                size_hint(&self.response.data)
            } else {
                0
            }
    }

    /// The response with its `data`.
    pub(crate) fn new(response: &'a Response) -> Self {
        Self {
            response,
            with_data: true,
        }
    }

    /// The response of a request error: no `data` entry.
    pub(crate) fn without_data(response: &'a Response) -> Self {
        Self {
            response,
            with_data: false,
        }
    }

    /// The response, without `data` if it reports a request error.
    pub(crate) fn of(response: &'a Response) -> Self {
        if is_request_error(response) {
            Self::without_data(response)
        } else {
            Self::new(response)
        }
    }
}

impl Serialize for WireResponse<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let response = self.response;
        let mut map = serializer.serialize_map(None)?;
        if !response.errors.is_empty() {
            map.serialize_entry("errors", &response.errors)?;
        }
        if self.with_data {
            map.serialize_entry("data", &WireValue(&response.data))?;
        }
        if !response.extensions.is_empty() {
            map.serialize_entry("extensions", &WireExtensions(&response.extensions))?;
        }
        map.end()
    }
}

/// A response's `extensions`.
struct WireExtensions<'a>(&'a std::collections::BTreeMap<String, Value>);

impl Serialize for WireExtensions<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, value)| (key, WireValue(value))))
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::Name;
    use async_graphql::indexmap::IndexMap;

    use super::*;

    fn json(value: &impl Serialize) -> String {
        serde_json::to_string(value).unwrap_or_else(|error| panic!("serializes: {error}"))
    }

    #[test]
    fn prewritten_json_is_written_in_place_among_ordinary_values() {
        let mut object = IndexMap::new();
        object.insert(Name::new("z"), Value::Boolean(true));
        object.insert(Name::new("list"), prewritten(br#"[{"b":1,"a":"x"}]"#.to_vec()));
        object.insert(Name::new("a"), Value::Enum(Name::new("ACTIVE")));
        let response = Response::new(Value::Object(object));
        assert_eq!(
            json(&WireResponse::new(&response)),
            r#"{"data":{"z":true,"list":[{"b":1,"a":"x"}],"a":"ACTIVE"}}"#
        );
    }

    /// `Binary` is taken for prewritten JSON because no output type of the
    /// schema resolves to one: its custom scalars (a string, a number, a
    /// string, a serde_json value) never do. A new scalar must be checked
    /// against that before it joins this list: a client's bytes in a
    /// `Binary` would be written into the response unescaped.
    #[test]
    fn no_scalar_of_the_schema_can_resolve_to_binary() {
        let scalars: Vec<String> = crate::graphql::sdl()
            .lines()
            .filter_map(|line| line.strip_prefix("scalar "))
            .map(|name| name.split_whitespace().next().unwrap_or(name).to_owned())
            .collect();
        assert_eq!(scalars, ["DateTime", "FileSize", "JSON", "UUID"]);
    }

    #[test]
    fn errors_come_first_and_a_request_error_has_no_data() {
        let response = Response::from_errors(vec![async_graphql::ServerError::new("no", None)]);
        assert_eq!(
            json(&WireResponse::without_data(&response)),
            r#"{"errors":[{"message":"no"}]}"#
        );
        assert_eq!(
            json(&WireResponse::new(&response)),
            r#"{"errors":[{"message":"no"}],"data":null}"#
        );
    }
}
