//! The API Gateway stand-in: an HTTP/1.1 server on localhost that turns each request into the
//! same `lambda_http::Request` API Gateway would deliver and calls the very handler code the
//! Lambdas run. Unknown paths get 404 with a JSON reason, like an HTTP API without a route.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::{Body, Request, Response};
use tokio::net::TcpListener;

/// A route handler: the Lambda's request in, its response out.
pub type Handler =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync>;

/// API Gateway's payload limit for HTTP APIs is 10 MB; the handlers apply their own lower limits.
const GATEWAY_BODY_LIMIT: usize = 10 * 1024 * 1024;

#[derive(Clone, Default)]
pub struct Router {
    routes: Vec<(String, Handler)>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|(p, _)| p))
            .finish()
    }
}

impl Router {
    pub fn route(mut self, path: &str, handler: Handler) -> Self {
        self.routes.push((path.to_owned(), handler));
        self
    }

    async fn dispatch(&self, req: hyper::Request<hyper::body::Incoming>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path();
        let Some((_, handler)) = self.routes.iter().find(|(p, _)| matches(p, path)) else {
            return meeting_hooks::respond::error(404, "not_found", "no such route");
        };
        let bytes = match Limited::new(body, GATEWAY_BODY_LIMIT).collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => {
                return meeting_hooks::respond::error(
                    413,
                    "body_too_large",
                    "request body too large",
                );
            }
        };
        let body = if bytes.is_empty() {
            Body::Empty
        } else {
            Body::Binary(bytes.to_vec())
        };
        handler(Request::from_parts(parts, body)).await
    }
}

/// Whether `path` matches a route pattern, where a `{name}` segment matches any one segment
/// and a last `{name+}` segment one or more (as HTTP API routes `/webhooks/{provider}` and
/// `/webhooks/{provider}/{proxy+}` do).
fn matches(pattern: &str, path: &str) -> bool {
    let mut pat = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (pat.next(), got.next()) {
            (None, None) => return true,
            (Some(p), Some(g)) if p.starts_with('{') && p.ends_with("+}") && !g.is_empty() => {
                return pat.next().is_none();
            }
            (Some(p), Some(g)) if p.starts_with('{') && p.ends_with('}') && !g.is_empty() => {}
            (Some(p), Some(g)) if p == g => {}
            _ => return false,
        }
    }
}

fn to_hyper(resp: Response<Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = resp.into_parts();
    hyper::Response::from_parts(parts, Full::new(Bytes::copy_from_slice(body.as_ref())))
}

/// Serves `router` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, router: Router) {
    let router = Arc::new(router);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let router = Arc::clone(&router);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let router = Arc::clone(&router);
                async move { Ok::<_, Infallible>(to_hyper(router.dispatch(req).await)) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_parameter_segment_matches_one_segment() {
        assert!(super::matches("/webhooks/{provider}", "/webhooks/daily"));
        assert!(!super::matches("/webhooks/{provider}", "/webhooks/"));
        assert!(!super::matches("/webhooks/{provider}", "/webhooks/a/b"));
        assert!(super::matches("/settings/jaas", "/settings/jaas"));
        assert!(!super::matches("/settings/jaas", "/settings/daily"));
    }

    #[test]
    fn a_greedy_last_segment_matches_one_or_more() {
        let tail = "/webhooks/{provider}/{proxy+}";
        assert!(super::matches(tail, "/webhooks/jitsi/events/room/created"));
        assert!(super::matches(tail, "/webhooks/jitsi/events"));
        assert!(!super::matches(tail, "/webhooks/jitsi"));
        assert!(!super::matches(tail, "/webhooks/jitsi/"));
        assert!(!super::matches(tail, "/settings/jitsi/x"));
        assert!(!super::matches(
            "/webhooks/{provider}",
            "/webhooks/jitsi/events"
        ));
    }
}
