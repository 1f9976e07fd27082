//! Arguments shared by every cursor connection: `first` and `after`.

use async_graphql::connection::{CursorType, OpaqueCursor};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::GraphqlSettings;
use crate::error::{AppError, AppResult};

/// The page size `first` asks for: the configured default when absent, at
/// least 1 and at most the configured maximum.
pub fn page_limit(first: Option<i32>, paging: &GraphqlSettings) -> AppResult<u64> {
    let limit = match first {
        None => paging.default_page_size,
        Some(first) if first < 1 => return Err(AppError::bad_input("first", "must be at least 1")),
        Some(first) => u64::try_from(first).unwrap_or(u64::MAX),
    };
    if limit > paging.max_page_size {
        return Err(AppError::bad_input(
            "first",
            format!("must be at most {}", paging.max_page_size),
        ));
    }
    Ok(limit)
}

/// The position an `after` cursor (an `endCursor` of this API) encodes.
pub fn decode_after<T>(after: Option<String>) -> AppResult<Option<T>>
where
    T: Serialize + DeserializeOwned + Send + Sync,
{
    after
        .map(|cursor| {
            OpaqueCursor::<T>::decode_cursor(&cursor)
                .map(|cursor| cursor.0)
                .map_err(|_| AppError::bad_input("after", "is not a cursor returned by this API"))
        })
        .transpose()
}
