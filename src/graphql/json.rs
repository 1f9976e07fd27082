//! JSON written by hand, for lists of prefetched rows.
//!
//! Their fields are mostly UUIDs, timestamps and numbers, which need no
//! escaping and no intermediate strings; text is escaped exactly as
//! serde_json escapes it, so that a prewritten list reads byte for byte as
//! what async-graphql would have serialized.

use chrono::{DateTime, Datelike, Timelike, Utc};
use uuid::Uuid;

/// A JSON document being written. Writing cannot fail.
pub(crate) struct JsonWriter(Vec<u8>);

impl JsonWriter {
    /// A writer with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    /// One byte of JSON syntax.
    pub(crate) fn byte(&mut self, byte: u8) {
        self.0.push(byte);
    }

    /// Bytes that already are JSON.
    pub(crate) fn raw(&mut self, json: &[u8]) {
        self.0.extend_from_slice(json);
    }

    /// A string, escaped as serde_json escapes it: `"`, `\` and control
    /// characters; nothing else.
    pub(crate) fn string(&mut self, text: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = text.as_bytes();
        self.0.push(b'"');
        let mut start = 0;
        for (at, &byte) in bytes.iter().enumerate() {
            let escape: &[u8] = match byte {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0x00..=0x1f => &[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ],
                _ => continue,
            };
            self.0.extend_from_slice(&bytes[start..at]);
            self.0.extend_from_slice(escape);
            start = at + 1;
        }
        self.0.extend_from_slice(&bytes[start..]);
        self.0.push(b'"');
    }

    /// A `UUID`: lower-case, hyphenated, quoted.
    pub(crate) fn uuid(&mut self, id: Uuid) {
        self.0.push(b'"');
        self.0.extend_from_slice(
            id.hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .as_bytes(),
        );
        self.0.push(b'"');
    }

    /// A whole number.
    pub(crate) fn int(&mut self, value: i64) {
        self.0
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// A `DateTime`: RFC 3339 with as many fractional digits as it needs
    /// (none, 3, 6 or 9) and `+00:00`, exactly as chrono's `to_rfc3339`
    /// (which async-graphql's scalar uses) writes it.
    pub(crate) fn time(&mut self, time: DateTime<Utc>) {
        let year = time.year();
        let nanos = time.nanosecond();
        if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
            // Years of other widths and leap seconds: chrono's own writer.
            self.0.push(b'"');
            self.0.extend_from_slice(time.to_rfc3339().as_bytes());
            self.0.push(b'"');
            return;
        }
        let digits = |out: &mut Vec<u8>, value: u32, width: u32| {
            for power in (0..width).rev() {
                let digit = (value / 10_u32.pow(power)) % 10;
                out.push(b'0' + u8::try_from(digit).unwrap_or(0));
            }
        };
        let out = &mut self.0;
        out.push(b'"');
        digits(out, year.unsigned_abs(), 4);
        out.push(b'-');
        digits(out, time.month(), 2);
        out.push(b'-');
        digits(out, time.day(), 2);
        out.push(b'T');
        digits(out, time.hour(), 2);
        out.push(b':');
        digits(out, time.minute(), 2);
        out.push(b':');
        digits(out, time.second(), 2);
        if nanos != 0 {
            out.push(b'.');
            if nanos.is_multiple_of(1_000_000) {
                digits(out, nanos / 1_000_000, 3);
            } else if nanos.is_multiple_of(1_000) {
                digits(out, nanos / 1_000, 6);
            } else {
                digits(out, nanos, 9);
            }
        }
        out.extend_from_slice(b"+00:00\"");
    }

    /// The JSON written, its spare room given back.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.0.shrink_to_fit();
        self.0
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn written(write: impl FnOnce(&mut JsonWriter)) -> String {
        let mut json = JsonWriter::with_capacity(0);
        write(&mut json);
        String::from_utf8(json.finish()).unwrap_or_else(|error| panic!("{error}"))
    }

    fn serde(value: &impl serde::Serialize) -> String {
        serde_json::to_string(value).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let all: String = (0_u8..128).map(char::from).collect();
        for text in [
            all.as_str(),
            "",
            "plain",
            "ünïcode \u{2028} 🎬",
            "\"quoted\" \\ back\\slash",
            "\u{7f}\u{1f}",
        ] {
            assert_eq!(written(|json| json.string(text)), serde(&text));
        }
    }

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let base = Utc
            .with_ymd_and_hms(2026, 1, 5, 9, 0, 7)
            .single()
            .unwrap_or_else(|| panic!("a time"));
        for nanos in [
            0,
            1,
            999,
            1_000,
            120_000,
            123_456,
            5_000_000,
            123_000_000,
            999_999_999,
            1_500_000_000,
        ] {
            let time = base
                .with_nanosecond(nanos)
                .unwrap_or_else(|| panic!("{nanos} ns"));
            assert_eq!(
                written(|json| json.time(time)),
                serde(&time.to_rfc3339()),
                "{nanos}"
            );
        }
        for year in [0, 9, 999, 9999, 10_000, -1] {
            let time = base.with_year(year).unwrap_or_else(|| panic!("year {year}"));
            assert_eq!(
                written(|json| json.time(time)),
                serde(&time.to_rfc3339()),
                "{year}"
            );
        }
    }

    #[test]
    fn ids_and_numbers_are_written_as_serde_json_writes_them() {
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(written(|json| json.uuid(id)), serde(&id.to_string()));
        for value in [0, -1, 42, i64::MAX, i64::MIN] {
            assert_eq!(written(|json| json.int(value)), serde(&value));
        }
    }
}
