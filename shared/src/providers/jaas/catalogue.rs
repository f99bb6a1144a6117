//! The examples of the JaaS webhook catalogue (`testdata/jaas-webhook-catalogue.md`, a copy of
//! 8x8's published payload documentation), extracted verbatim. Unit tests, integration tests,
//! the benchmark and the sample-event generator all read the same examples from here.

/// The catalogue as published.
pub const CATALOGUE: &str = include_str!("../../../testdata/jaas-webhook-catalogue.md");

/// One documented example: the section's event type and the JSON body exactly as written.
#[derive(Debug, Clone)]
pub struct Example {
    pub section: String,
    pub body: String,
}

/// Every webhook example in catalogue order (SETTINGS_PROVISIONING, a request rather than
/// an event, is left out).
pub fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut lines = CATALOGUE.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("## ") {
            section = Some(
                rest.trim()
                    .trim_matches(|c| c == '*' || c == '_')
                    .to_owned(),
            );
            continue;
        }
        if line.trim() == "```json" {
            let mut body = String::new();
            for l in lines.by_ref() {
                if l.trim() == "```" {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            if let Some(s) = section.take()
                && s != "SETTINGS_PROVISIONING"
            {
                out.push(Example { section: s, body });
            }
        }
    }
    out
}

/// The example of one section; panics when absent (for tests and tools).
pub fn example(section: &str) -> Example {
    examples()
        .into_iter()
        .find(|e| e.section == section)
        .unwrap_or_else(|| panic!("no catalogue example for {section}"))
}
