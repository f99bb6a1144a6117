//! SCREEN_SHARING_HISTORY: the event's link returns a *list* of short-lived screenshot links.
//!
//! The list format is not documented. It is parsed leniently, accepting any of:
//! - a JSON array of strings (`["https://…", …]`),
//! - a JSON array of objects carrying the link in a URL-like field (`url`, `link`, `href`,
//!   `preAuthenticatedLink`, `downloadUrl`, `signedUrl`, or any string field whose value starts
//!   with `http`),
//! - either of those wrapped in an object (`{"screenshots": [...]}`, `{"items": [...]}`, … any
//!   field holding such an array),
//! - plain text with one link per line.
//!
//! Every link found is still checked by the source policy before it is fetched.

use serde_json::Value;

/// Links preferred, in order, when an object has several URL-like fields.
const URL_FIELDS: &[&str] = &[
    "preAuthenticatedLink",
    "url",
    "link",
    "href",
    "downloadUrl",
    "signedUrl",
    "screenshotUrl",
];

/// Why a list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("screenshot list holds no links")]
pub struct EmptyList;

fn looks_like_link(s: &str) -> bool {
    let s = s.trim();
    s.starts_with("https://") || s.starts_with("http://")
}

fn link_of(item: &Value) -> Option<String> {
    match item {
        Value::String(s) if looks_like_link(s) => Some(s.trim().to_owned()),
        Value::Object(map) => URL_FIELDS
            .iter()
            .filter_map(|f| map.get(*f).and_then(Value::as_str))
            .chain(map.values().filter_map(Value::as_str))
            .find(|s| looks_like_link(s))
            .map(|s| s.trim().to_owned()),
        _ => None,
    }
}

fn links_in_array(items: &[Value]) -> Vec<String> {
    items.iter().filter_map(link_of).collect()
}

/// The links of a screenshot list, in the order given.
pub fn parse_list(body: &[u8]) -> Result<Vec<String>, EmptyList> {
    let links = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => links_in_array(&items),
        Ok(Value::Object(map)) => map
            .values()
            .find_map(|v| match v {
                Value::Array(items) => Some(links_in_array(items)).filter(|l| !l.is_empty()),
                _ => None,
            })
            .unwrap_or_default(),
        Ok(Value::String(s)) if looks_like_link(&s) => vec![s],
        _ => String::from_utf8_lossy(body)
            .lines()
            .filter(|l| looks_like_link(l))
            .map(|l| l.trim().to_owned())
            .collect(),
    };
    if links.is_empty() {
        Err(EmptyList)
    } else {
        Ok(links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_shape_yields_the_links_in_order() {
        let want = vec![
            "https://a.8x8.vc/1.png".to_owned(),
            "https://a.8x8.vc/2.png".to_owned(),
        ];
        for body in [
            r#"["https://a.8x8.vc/1.png","https://a.8x8.vc/2.png"]"#,
            r#"[{"url":"https://a.8x8.vc/1.png","ts":1},{"link":"https://a.8x8.vc/2.png"}]"#,
            r#"{"screenshots":[{"preAuthenticatedLink":"https://a.8x8.vc/1.png"},"https://a.8x8.vc/2.png"]}"#,
            r#"{"count":2,"items":[{"id":"x","whatever":"https://a.8x8.vc/1.png"},{"signedUrl":"https://a.8x8.vc/2.png"}]}"#,
            "https://a.8x8.vc/1.png\nhttps://a.8x8.vc/2.png\n",
        ] {
            assert_eq!(parse_list(body.as_bytes()).expect(body), want, "{body}");
        }
    }

    #[test]
    fn lists_without_links_are_refused() {
        for body in [
            "[]",
            "{}",
            r#"{"a":[1,2]}"#,
            "nothing here",
            r#"[{"name":"x"}]"#,
        ] {
            assert_eq!(parse_list(body.as_bytes()), Err(EmptyList), "{body}");
        }
    }
}
