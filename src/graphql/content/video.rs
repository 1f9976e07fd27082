//! The GraphQL view of videos and the `FileSize` scalar.

use async_graphql::{InputValueError, InputValueResult, Object, Scalar, ScalarType, Value};
use chrono::{DateTime, Utc};
use entity::video;
use uuid::Uuid;

/// A size in bytes.
///
/// GraphQL's `Int` is 32-bit and cannot hold sizes of 2 GiB and more, so
/// sizes have a scalar of their own: a whole number sent as a JSON number,
/// exact up to 2^53 − 1 (9007199254740991) in every client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSize(pub i64);

/// A size in bytes: a whole JSON number from 0 to 9007199254740991 (2^53 − 1).
/// GraphQL's 32-bit `Int` cannot hold sizes of 2 GiB and more.
#[Scalar(name = "FileSize")]
impl ScalarType for FileSize {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            // Any whole number parses; the range is checked by the mutation,
            // which answers BAD_USER_INPUT naming the field.
            Value::Number(number) => number.as_i64().map(Self).ok_or_else(|| {
                InputValueError::custom("a FileSize must be a whole number of bytes, e.g. 1048576")
            }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::Number(number) if number.is_i64())
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

/// A video file of a module.
pub struct Video(pub video::Model);

#[Object(serial)]
impl Video {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// The module the video belongs to.
    async fn module_id(&self) -> Uuid {
        self.0.module_id
    }
    /// File name as uploaded.
    async fn file_name(&self) -> &str {
        &self.0.file_name
    }
    /// Where the file is served from (an absolute http(s) URL).
    async fn file_url(&self) -> &str {
        &self.0.file_url
    }
    /// Size in bytes.
    async fn file_size(&self) -> FileSize {
        FileSize(self.0.file_size)
    }
    /// MIME type in lower case, e.g. `video/mp4`.
    async fn mime_type(&self) -> &str {
        &self.0.mime_type
    }
    /// When the row was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the row last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
