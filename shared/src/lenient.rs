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

/// Parses JSON, and failing that the same text with its trailing commas (a `,` before `}` or
/// `]`, outside strings) removed: VideoSDK's documented samples have them. Anything else that
/// is not JSON stays unreadable (`None`). The stored body is always the raw bytes.
pub fn parse_relaxed(body: &[u8]) -> Option<Value> {
    if let Ok(v) = serde_json::from_slice(body) {
        return Some(v);
    }
    let text = std::str::from_utf8(body).ok()?;
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut pending_comma: Option<usize> = None;
    // The last character outside strings that is not whitespace: a comma only trails a value.
    let mut last = ' ';
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '}' | ']' => {
                if let Some(at) = pending_comma.take() {
                    out.remove(at);
                }
            }
            c if c.is_whitespace() => {}
            _ => pending_comma = None,
        }
        if c == ',' && !matches!(last, '{' | '[' | ',' | ':' | ' ') {
            pending_comma = Some(out.len());
        }
        if c == '"' {
            in_string = true;
        }
        if !c.is_whitespace() {
            last = c;
        }
        out.push(c);
    }
    serde_json::from_str(&out).ok()
}

/// Unix milliseconds of an ISO-8601 / RFC 3339 date-time (`2023-10-05T15:20:35.123Z`,
/// `+02:00` offsets, a space for `T`, no zone = UTC), read leniently: a field past its range
/// carries over (VideoSDK's own sample says `15:60:35`, read as `16:00:35`) instead of making
/// the time unreadable. `None` for anything that is not such a date-time or is out of range.
pub fn iso8601_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, rest) = t.split_at(t.find(['T', 't', ' '])?);
    let rest = &rest[1..];
    let mut d = date.split('-');
    let (year, month, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // The zone: `Z`, `+hh:mm`, `-hh:mm`, `+hhmm`, or none (UTC).
    let (clock, offset_min) = match rest.rfind(['Z', 'z', '+', '-']) {
        Some(i) if rest[i..].eq_ignore_ascii_case("z") => (&rest[..i], 0),
        Some(i) => {
            let zone = rest[i + 1..].replace(':', "");
            if zone.len() != 4 {
                return None;
            }
            let minutes = num(&zone[..2])? * 60 + num(&zone[2..])?;
            (
                &rest[..i],
                if &rest[i..=i] == "-" {
                    -minutes
                } else {
                    minutes
                },
            )
        }
        None => (rest, 0),
    };
    let (hms, fraction) = match clock.split_once(['.', ',']) {
        Some((hms, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => (hms, f),
        Some(_) => return None,
        None => (clock, ""),
    };
    let mut c = hms.split(':');
    let (h, m) = (num(c.next()?)?, num(c.next()?)?);
    let s = c.next().map_or(Some(0), num)?;
    if c.next().is_some() || h > 24 || m > 60 || s > 61 {
        return None;
    }
    let millis = format!("{fraction:0<3}")[..3].parse::<i64>().ok()?;
    // Days since 1970-01-01 of the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + s - offset_min * 60;
    let ms = secs.checked_mul(1000)?.checked_add(millis)?;
    (0..=crate::jobs::MAX_TIME_MS).contains(&ms).then_some(ms)
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

    #[test]
    fn trailing_commas_are_forgiven_and_nothing_else() {
        let doc = b"{\n\"webhookType\": \"recording-stopped\",\n\"data\": {\n\"meetingId\": \"a,}\",\n\"n\": [1, 2,],\n},\n}";
        let v = parse_relaxed(doc).expect("relaxed");
        assert_eq!(v["data"]["meetingId"], "a,}");
        assert_eq!(v["data"]["n"], serde_json::json!([1, 2]));
        assert_eq!(
            parse_relaxed(br#"{"a":1}"#),
            Some(serde_json::json!({"a": 1}))
        );
        for bad in [&b"{\"a\":}"[..], b"{,}", b"[1,,]", b"not json", b"\xff{}"] {
            assert_eq!(parse_relaxed(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn iso8601_times_are_read_leniently() {
        assert_eq!(iso8601_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(iso8601_ms("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(
            iso8601_ms("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            iso8601_ms("2023-11-14 22:13:20.123456"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            iso8601_ms("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            iso8601_ms("2023-11-14T21:13:20-0100"),
            Some(1_700_000_000_000)
        );
        // VideoSDK's sample minute 60 carries into the hour.
        assert_eq!(
            iso8601_ms("2023-11-14T21:60:20Z"),
            iso8601_ms("2023-11-14T22:00:20Z")
        );
        assert_eq!(iso8601_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        for bad in [
            "",
            "yesterday",
            "2023-13-01T00:00:00Z",
            "2023-11-14",
            "2023-11-14T99:00:00Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+2",
            "-001-01-01T00:00:00Z",
            "99999-01-01T00:00:00Z",
        ] {
            assert_eq!(iso8601_ms(bad), None, "{bad}");
        }
    }
}
