//! The repository's published contracts, checked against what the code really sends:
//! `openapi.yaml` (host-api's routes and answers) and `schemas/` (the events published to
//! EventBridge). Schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect), checked with the
//! `jsonschema` crate, formats asserted.

use std::path::Path;

use serde_json::{Value, json};

/// `openapi.yaml`, parsed.
#[derive(Debug, Clone)]
pub struct OpenApi {
    doc: Value,
}

/// A JSON Pointer token (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Validates `instance` against the schema at `pointer` inside `doc` (whose own `$ref`s,
/// `#/…`, resolve within `doc`). Errors list every violation with its place.
fn validate_at(doc: &Value, pointer: &str, instance: &Value) -> Result<(), String> {
    if doc.pointer(pointer).is_none() {
        return Err(format!("the document has nothing at {pointer}"));
    }
    // The whole document as the root schema with a `$ref` to the schema in question: the
    // document's other members are no schema keywords and are ignored.
    let mut root = doc.clone();
    if let (false, Some(object)) = (pointer.is_empty(), root.as_object_mut()) {
        // A URI fragment: the braces of path templates are percent-encoded.
        let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
        object.insert("$ref".into(), json!(format!("#{fragment}")));
    }
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| format!("the schema at {pointer} does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{pointer}: {}", errors.join("; ")))
    }
}

impl OpenApi {
    /// `openapi.yaml` at the workspace root.
    pub fn load() -> Self {
        Self::from_path(&crate::workspace_root().join("openapi.yaml"))
    }

    pub fn from_path(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).expect("openapi.yaml is readable");
        let doc: Value = serde_norway::from_str(&text).expect("openapi.yaml is YAML");
        Self { doc }
    }

    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// Every `(METHOD, path template)` the document describes.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    out.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        out.sort();
        out
    }

    /// The path template that `path` (a concrete, percent-encoded path) falls under.
    pub fn template_of(&self, path: &str) -> Option<String> {
        let concrete: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        self.doc["paths"]
            .as_object()?
            .keys()
            .find(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                parts.len() == concrete.len()
                    && parts.iter().zip(&concrete).all(|(t, c)| {
                        (t.starts_with('{') && t.ends_with('}') && !c.is_empty()) || t == c
                    })
            })
            .cloned()
    }

    /// Follows an OpenAPI `$ref` (`#/components/…`) to the pointer it names.
    fn deref(&self, pointer: String) -> String {
        match self.doc.pointer(&pointer).and_then(|v| v["$ref"].as_str()) {
            Some(target) => target.trim_start_matches('#').to_owned(),
            None => pointer,
        }
    }

    /// Checks one real answer: the route and status are described, and the JSON body is what
    /// the document's schema for them says.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        let template = self
            .template_of(path)
            .ok_or_else(|| format!("{path} is not in openapi.yaml"))?;
        let operation = format!(
            "/paths/{}/{}",
            escape(&template),
            method.to_ascii_lowercase()
        );
        if self.doc.pointer(&operation).is_none() {
            // A method the route does not take: the document's 405 (every operation has the
            // same one) is the answer's contract.
            if status == 405 {
                return validate_at(
                    &self.doc,
                    "/components/responses/MethodNotAllowed/content/application~1json/schema",
                    body,
                );
            }
            return Err(format!("{method} {template} is not in openapi.yaml"));
        }
        let response = self.deref(format!("{operation}/responses/{status}"));
        if self.doc.pointer(&response).is_none() {
            return Err(format!(
                "{method} {template} answered {status}, which openapi.yaml does not describe"
            ));
        }
        validate_at(
            &self.doc,
            &format!("{response}/content/application~1json/schema"),
            body,
        )
        .map_err(|e| format!("{method} {path} {status}: {e}"))
    }

    /// Checks a request body against the operation's `requestBody` schema.
    pub fn check_request(&self, method: &str, template: &str, body: &Value) -> Result<(), String> {
        validate_at(
            &self.doc,
            &format!(
                "/paths/{}/{}/requestBody/content/application~1json/schema",
                escape(template),
                method.to_ascii_lowercase()
            ),
            body,
        )
    }
}

/// Validates `instance` against the JSON Schema file at `path` (relative to the workspace root).
pub fn check_schema_file(path: &str, instance: &Value) -> Result<(), String> {
    let text = std::fs::read_to_string(crate::workspace_root().join(path))
        .map_err(|e| format!("{path}: {e}"))?;
    let schema: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    validate_at(&schema, "", instance).map_err(|e| format!("{path}: {e}"))
}
