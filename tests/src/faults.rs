//! A fault-injecting HTTP client between the real AWS SDK and the emulator, for the fault
//! matrix. It wraps the SDK's own HTTP client (set on the `SdkConfig`, so every client built
//! from it, and every function's wiring, goes through it) and, per AWS operation, can refuse
//! the connection, answer a status without forwarding, delay, or forward and then lose the
//! answer (the write is applied, the caller sees a reset and the SDK retries).
//!
//! Operations are named `<service>:<Operation>` (`dynamodb:PutItem`, `sqs:SendMessage`,
//! `s3:UploadPart`, `s3:CompleteMultipartUpload`, …), classified from `X-Amz-Target` for the
//! JSON protocols and from the method and query for S3. A rule names one operation, or every
//! operation of a service with `dynamodb:*`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// What happens to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Never sent: the connection is refused (the service is down).
    Refuse,
    /// Never sent: answered with this status and an empty body.
    Status(u16),
    /// Sent after this delay (a slow service).
    Delay(Duration),
    /// Sent and applied; the answer is lost on the way back (connection reset).
    LoseResponse,
}

#[derive(Debug, Clone)]
struct Rule {
    op: String,
    fault: Fault,
    /// How many more requests this rule applies to; `None`: all of them.
    remaining: Option<u32>,
    /// Applies to every `period`-th matching request only (1st, 1 + period, …); 1: each.
    period: u32,
    /// Matching requests seen so far.
    seen: u32,
}

impl Rule {
    fn matches(&self, op: &str) -> bool {
        match self.op.strip_suffix('*') {
            Some(prefix) => op.starts_with(prefix),
            None => self.op == op,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    /// Every request seen, with the fault applied to it (if any).
    log: Vec<(String, Option<Fault>)>,
}

/// The fault plan: shared by the client and the test that steers it.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `fault` to the next `times` requests of `op` (`None`: until cleared).
    pub fn inject(&self, op: &str, fault: Fault, times: Option<u32>) -> &Self {
        self.lock().rules.push(Rule {
            op: op.to_owned(),
            fault,
            remaining: times,
            period: 1,
            seen: 0,
        });
        self
    }

    /// Applies `fault` to every other request of `op` (the 1st, 3rd, …) until cleared: with
    /// [`Fault::LoseResponse`], every write is applied and its first answer lost, and the SDK's
    /// retry of it gets through.
    pub fn every_other(&self, op: &str, fault: Fault) -> &Self {
        self.lock().rules.push(Rule {
            op: op.to_owned(),
            fault,
            remaining: None,
            period: 2,
            seen: 0,
        });
        self
    }

    /// Applies `fault` to the next request of `op` only.
    pub fn once(&self, op: &str, fault: Fault) -> &Self {
        self.inject(op, fault, Some(1))
    }

    /// Applies `fault` to every request of `op` until [`Faults::clear`].
    pub fn always(&self, op: &str, fault: Fault) -> &Self {
        self.inject(op, fault, None)
    }

    /// Removes every rule: the service is healthy again.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// How many requests of `op` (exact, or a `service:*` prefix) were seen.
    pub fn count(&self, op: &str) -> usize {
        let probe = Rule {
            op: op.to_owned(),
            fault: Fault::Refuse,
            remaining: None,
            period: 1,
            seen: 0,
        };
        self.lock()
            .log
            .iter()
            .filter(|(o, _)| probe.matches(o))
            .count()
    }

    /// How many requests had a fault applied.
    pub fn injected(&self) -> usize {
        self.lock().log.iter().filter(|(_, f)| f.is_some()).count()
    }

    /// Every operation seen, in order.
    pub fn operations(&self) -> Vec<String> {
        self.lock().log.iter().map(|(o, _)| o.clone()).collect()
    }

    fn decide(&self, op: &str) -> Option<Fault> {
        let mut state = self.lock();
        let fault = state
            .rules
            .iter_mut()
            .find(|r| r.matches(op) && r.remaining != Some(0))
            .and_then(|r| {
                let turn = r.seen % r.period.max(1) == 0;
                r.seen = r.seen.saturating_add(1);
                if !turn {
                    return None;
                }
                if let Some(n) = &mut r.remaining {
                    *n -= 1;
                }
                Some(r.fault)
            });
        state.log.push((op.to_owned(), fault));
        fault
    }

    /// An SDK configuration for the emulator at `endpoint` whose requests pass through this plan.
    pub fn sdk(&self, endpoint: &str, region: &str) -> SdkConfig {
        let inner = aws_smithy_http_client::Builder::new().build_http();
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(endpoint)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "test", "test", None, None, "emulator",
            )))
            .http_client(SharedHttpClient::new(FaultyClient {
                inner,
                faults: self.clone(),
            }))
            .build()
    }
}

/// `<service>:<Operation>` of a request (see the module docs).
pub fn operation(request: &HttpRequest) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        let (service, op) = target.split_once('.').unwrap_or(("unknown", target));
        let service = if service.starts_with("DynamoDB") {
            "dynamodb"
        } else if service.starts_with("AmazonSQS") {
            "sqs"
        } else if service.eq_ignore_ascii_case("secretsmanager") {
            "secretsmanager"
        } else if service == "AWSEvents" {
            "events"
        } else {
            service
        };
        return format!("{service}:{op}");
    }
    let uri = request.uri();
    let query = uri.split_once('?').map(|(_, q)| q).unwrap_or("");
    let has = |k: &str| {
        query
            .split('&')
            .any(|p| p == k || p.starts_with(&format!("{k}=")))
    };
    let op = match request.method() {
        "POST" if has("uploads") => "CreateMultipartUpload",
        "POST" if has("uploadId") => "CompleteMultipartUpload",
        "POST" if has("delete") => "DeleteObjects",
        "PUT" if has("partNumber") => "UploadPart",
        "PUT" if has("tagging") => "PutObjectTagging",
        "PUT" => "PutObject",
        "GET" if has("uploadId") => "ListParts",
        "GET" if has("uploads") => "ListMultipartUploads",
        "GET" if has("tagging") => "GetObjectTagging",
        "GET" if has("list-type") => "ListObjectsV2",
        "GET" => "GetObject",
        "HEAD" => "HeadObject",
        "DELETE" if has("uploadId") => "AbortMultipartUpload",
        "DELETE" => "DeleteObject",
        other => other,
    };
    format!("s3:{op}")
}

#[derive(Debug, Clone)]
struct FaultyClient {
    inner: SharedHttpClient,
    faults: Faults,
}

impl HttpClient for FaultyClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            faults: self.faults.clone(),
        })
    }
}

#[derive(Debug, Clone)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    faults: Faults,
}

fn injected(what: &str) -> ConnectorError {
    ConnectorError::io(std::io::Error::other(format!("{what} (injected fault)")).into())
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let op = operation(&request);
        let fault = self.faults.decide(&op);
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            match fault {
                None => inner.call(request).await,
                Some(Fault::Refuse) => Err(injected("connection refused")),
                Some(Fault::Status(code)) => {
                    let status = code.try_into().map_err(|_| injected("bad status"))?;
                    Ok(HttpResponse::new(status, SdkBody::empty()))
                }
                Some(Fault::Delay(d)) => {
                    tokio::time::sleep(d).await;
                    inner.call(request).await
                }
                Some(Fault::LoseResponse) => {
                    let _applied = inner.call(request).await;
                    Err(injected("connection reset after the request was sent"))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, target: Option<&str>) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::empty());
        *r.uri_mut() = uri.try_into().expect("uri");
        r.set_method(method).expect("method");
        if let Some(t) = target {
            r.headers_mut().insert("x-amz-target", t.to_owned());
        }
        r
    }

    #[test]
    fn operations_are_named_from_target_or_s3_method_and_query() {
        for (method, uri, target, want) in [
            (
                "POST",
                "http://h/",
                Some("DynamoDB_20120810.PutItem"),
                "dynamodb:PutItem",
            ),
            (
                "POST",
                "http://h/",
                Some("AmazonSQS.SendMessage"),
                "sqs:SendMessage",
            ),
            (
                "POST",
                "http://h/b/k?uploads",
                None,
                "s3:CreateMultipartUpload",
            ),
            (
                "PUT",
                "http://h/b/k?partNumber=2&uploadId=x",
                None,
                "s3:UploadPart",
            ),
            (
                "POST",
                "http://h/b/k?uploadId=x",
                None,
                "s3:CompleteMultipartUpload",
            ),
            ("GET", "http://h/b/k?uploadId=x", None, "s3:ListParts"),
            ("PUT", "http://h/b/k", None, "s3:PutObject"),
        ] {
            assert_eq!(operation(&request(method, uri, target)), want);
        }
    }

    #[test]
    fn rules_apply_in_order_and_run_out() {
        let f = Faults::new();
        f.once("dynamodb:PutItem", Fault::LoseResponse)
            .always("sqs:*", Fault::Refuse);
        assert_eq!(f.decide("dynamodb:PutItem"), Some(Fault::LoseResponse));
        assert_eq!(f.decide("dynamodb:PutItem"), None);
        assert_eq!(f.decide("sqs:SendMessage"), Some(Fault::Refuse));
        f.clear();
        assert_eq!(f.decide("sqs:SendMessage"), None);
        assert_eq!(f.count("dynamodb:*"), 2);
        assert_eq!(f.injected(), 2);
    }
}

#[cfg(test)]
mod against_the_emulator {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;
    use crate::{REGION, emulator};

    /// The layer does what the matrix relies on: a lost answer means the write was applied
    /// and the SDK's own retry then meets it; a refused connection is retried and fails.
    #[tokio::test]
    async fn a_lost_answer_is_applied_and_retried_a_refusal_never_arrives() {
        let emu = emulator();
        let table = emu.table(&meeting_hooks::schema::EVENTS).await;
        let faults = Faults::new();
        let db = meeting_hooks::aws::dynamodb(&faults.sdk(&emu.endpoint, REGION));
        let key = meeting_hooks::schema::EVENTS.hash_key;
        let put = |k: &str| {
            db.put_item()
                .table_name(&table)
                .item(key, AttributeValue::S(k.to_owned()))
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", key)
                .send()
        };
        faults.once("dynamodb:PutItem", Fault::LoseResponse);
        let err = put("lost")
            .await
            .expect_err("the retry meets the applied write");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()),
            "{err:?}"
        );
        assert_eq!(faults.count("dynamodb:PutItem"), 2);

        faults.always("dynamodb:*", Fault::Refuse);
        assert!(put("refused").await.is_err());
        faults.clear();
        put("refused").await.expect("never arrived, so absent");
    }
}
