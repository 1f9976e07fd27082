//! Arguments shared by every cursor connection: `first` and `after`.

use async_graphql::connection::{CursorType, OpaqueCursor};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::GraphqlSettings;
use crate::error::{AppError, AppResult};

/// The page size `first` asks for: the configured default when absent, at
/// least 1 and at most the configured maximum.
pub(crate) fn page_limit(first: Option<i32>, paging: &GraphqlSettings) -> AppResult<u64> {
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
pub(crate) fn decode_after<T>(after: Option<String>) -> AppResult<Option<T>>
where
    T: Serialize + DeserializeOwned + Send + Sync,
{
    after
        .map(|cursor| {
            OpaqueCursor::<T>::decode_cursor(&cursor)
                .ok()
                .map(|cursor| cursor.0)
                // A forged cursor could carry a NUL, which PostgreSQL text
                // cannot hold: no cursor of this API does.
                .filter(|position| {
                    serde_json::to_string(position).is_ok_and(|json| !json.contains("\\u0000"))
                })
                .ok_or_else(|| AppError::bad_input("after", "is not a cursor returned by this API"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_cursor_holding_a_nul_is_refused() {
        let forged = OpaqueCursor(("a\u{0}b".to_owned(), 7)).encode_cursor();
        assert!(decode_after::<(String, i32)>(Some(forged)).is_err());
        let fine = OpaqueCursor(("ab".to_owned(), 7)).encode_cursor();
        assert_eq!(
            decode_after::<(String, i32)>(Some(fine)).ok().flatten(),
            Some(("ab".to_owned(), 7))
        );
    }
}
