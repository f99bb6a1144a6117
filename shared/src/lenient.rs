//! Lenient deserializers for the shapes JaaS actually sends: `moderator` as a bool or the
//! string "true"/"false", numbers that sometimes arrive as strings or floats. A value we
//! cannot read is treated as absent rather than failing the whole event: the raw payload
//! is stored regardless, so nothing is lost by being forgiving here.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Reads a bool from `true`, `"true"`, `"TRUE"`, `1`; anything else unreadable is `None`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(bool_of(&Value::deserialize(d)?))
}

/// Reads an integer from a JSON number (floats truncated, saturating at the i64 range) or a
/// numeric string.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(i64_of(&Value::deserialize(d)?))
}

/// Reads a string; numbers and bools are rendered, null and containers are `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(string_of(&Value::deserialize(d)?))
}

pub fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

pub fn i64_of(v: &Value) -> Option<i64> {
    match v {
        // `as` saturates (1e30 is i64::MAX), never wraps; non-finite values are not numbers.
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

pub fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A serde error message safe to log and store: serde quotes offending *values* (`invalid type:
/// string "https://…?X-Sig=…"`, escaped as Rust debug strings, so a value may hold `\"`) and
/// names unknown enum variants in backticks; a value from a payload may be a pre-authenticated
/// link or a passcode, so every double-quoted segment becomes `"…"` and an unknown variant
/// becomes `` `…` ``. Field names (in backticks), the error category and the position are kept.
pub fn describe_error(e: &serde_json::Error) -> String {
    redact_quoted(&e.to_string())
}

fn redact_quoted(raw: &str) -> String {
    const VARIANT: &str = "unknown variant `";
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            // Skip to the closing quote, stepping over escapes (`\"`, `\\`); an unclosed
            // quote hides everything after it.
            out.push_str("\"…\"");
            let mut chars = rest[1..].char_indices();
            let mut end = rest.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        end = 1 + i + 1;
                        break;
                    }
                    _ => {}
                }
            }
            rest = &rest[end..];
        } else if let Some(after) = rest.strip_prefix(VARIANT) {
            out.push_str(VARIANT);
            out.push_str("…`");
            // serde writes the variant as is: its closing backtick is the one before
            // the last ", expected" (the variant itself may contain both).
            rest = match after.rfind("`, expected") {
                Some(i) => &after[i + 1..],
                None => match after.rfind('`') {
                    Some(i) => &after[i + 1..],
                    None => "",
                },
            };
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_descriptions_never_carry_values() {
        let e = serde_json::from_str::<Vec<u8>>(r#""https://x.example/rec.mp4?X-Sig=secret""#)
            .expect_err("a string is not a list");
        let text = describe_error(&e);
        assert!(
            !text.contains("secret") && !text.contains("x.example"),
            "{text}"
        );
        assert!(text.starts_with("invalid type: string \"…\""), "{text}");
    }

    #[test]
    fn escaped_quotes_and_unknown_variants_never_leak_a_value() {
        let e = serde_json::from_str::<Vec<u8>>(r#""https://x.example/a\"b?X-Sig=secret""#)
            .expect_err("a string is not a list");
        let text = describe_error(&e);
        assert!(
            !text.contains("secret") && !text.contains("x.example"),
            "{text}"
        );
        assert!(text.starts_with("invalid type: string \"…\""), "{text}");
        assert!(text.contains("line 1"), "{text}");

        #[derive(Debug, serde::Deserialize)]
        enum Kind {
            #[allow(dead_code)]
            A,
        }
        let e = serde_json::from_str::<Kind>(r#""pass`, expected secret""#).expect_err("unknown");
        let text = describe_error(&e);
        assert!(!text.contains("secret") && !text.contains("pass"), "{text}");
        assert!(text.starts_with("unknown variant `…`, expected"), "{text}");

        assert_eq!(redact_quoted(r#"a "b\\" c "d"#), r#"a "…" c "…""#);
        assert_eq!(redact_quoted("no quotes `field`"), "no quotes `field`");
    }

    #[test]
    fn numbers_at_the_extremes_saturate() {
        let of = |raw: &str| i64_of(&serde_json::from_str(raw).expect("json"));
        assert_eq!(of("1e30"), Some(i64::MAX));
        assert_eq!(of("-1e30"), Some(i64::MIN));
        assert_eq!(of("18446744073709551615"), Some(i64::MAX));
        assert_eq!(of(&i64::MIN.to_string()), Some(i64::MIN));
        assert_eq!(of(r#""NaN""#), None);
        assert_eq!(of(r#""1e30""#), None);
        assert_eq!(of(r#""99999999999999999999""#), None);
    }
}
