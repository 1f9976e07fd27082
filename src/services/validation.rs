//! Input checks shared by every domain.

use crate::error::{AppError, AppResult};

/// Trims `value` and checks that it has between 1 and `max_chars` characters.
pub fn required_name(field: &str, value: &str, max_chars: usize) -> AppResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::bad_input(field, "must not be empty"));
    }
    let length = trimmed.chars().count();
    if length > max_chars {
        return Err(AppError::bad_input(
            field,
            format!("must be at most {max_chars} characters (got {length})"),
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            required_name("name", "  Study  ", 10).ok(),
            Some("Study".to_owned())
        );
        assert!(required_name("name", "   ", 10).is_err());
        assert!(required_name("name", &"x".repeat(11), 10).is_err());
        assert!(required_name("name", &"é".repeat(10), 10).is_ok());
    }
}
