//! [`Origin`] over HTTPS with the SSRF defence of [`super::policy`] built into the client.
//!
//! - Redirects are not followed by the client (`Policy::none`); [`HttpOrigin::fetch`] follows
//!   at most `max_redirects` hops itself and checks every `Location` with the policy.
//! - Names are resolved by [`VettingResolver`], which refuses the name when any answer is not
//!   a public unicast address and otherwise hands exactly the vetted addresses to the
//!   connector: what is checked is what is connected to (no DNS rebinding window). IP-literal
//!   hosts never reach a resolver; the policy checks them before the request.
//! - No proxy (a proxy would connect on our behalf to addresses we never saw), no automatic
//!   decompression (the bytes are stored as the origin serves them).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};

use super::policy::{Refusal, SourcePolicy, check_ip};
use super::ports::{ContentRange, Origin, OriginError, OriginResponse};

/// Resolves with the system resolver, then refuses internal answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct VettingResolver;

/// Resolves `host` and returns its addresses only if every one is public unicast. One internal
/// answer refuses the whole name: a name mixing public and internal addresses is an attack or a
/// misconfiguration, never a storage host.
pub async fn resolve_vetted(host: &str) -> Result<Vec<SocketAddr>, Refusal> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| Refusal::NoAddress(host.to_owned()))?
        .collect();
    if addrs.is_empty() {
        return Err(Refusal::NoAddress(host.to_owned()));
    }
    for a in &addrs {
        check_ip(a.ip())?;
    }
    Ok(addrs)
}

impl Resolve for VettingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve_vetted(&host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The production download client.
#[derive(Debug, Clone)]
pub struct HttpOrigin {
    client: reqwest::Client,
    policy: Arc<SourcePolicy>,
    max_redirects: u8,
}

impl HttpOrigin {
    pub fn new(
        policy: SourcePolicy,
        max_redirects: u8,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(VettingResolver))
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .build()?;
        Ok(Self {
            client,
            policy: Arc::new(policy),
            max_redirects,
        })
    }
}

/// Finds a policy refusal (from the resolver) in a client error's cause chain.
fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<Refusal> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refusal>() {
            return Some(r.clone());
        }
        cur = err.source();
    }
    None
}

fn transport(e: reqwest::Error) -> OriginError {
    if let Some(r) = refusal_in(&e) {
        return OriginError::Refused(r);
    }
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    // Drop the URL from the error: it carries the link's credential.
    OriginError::Transport {
        what,
        source: Box::new(e.without_url()),
    }
}

impl Origin for HttpOrigin {
    async fn fetch(&self, link: &str, from: u64) -> Result<OriginResponse, OriginError> {
        let mut url = self.policy.check(link, None)?;
        let mut hops = 0u8;
        loop {
            let mut req = self.client.get(url.clone());
            if from > 0 {
                req = req.header(RANGE, format!("bytes={from}-"));
            }
            let resp = req.send().await.map_err(transport)?;
            let status = resp.status();
            if status.is_redirection() && resp.headers().contains_key(LOCATION) {
                if hops >= self.max_redirects {
                    return Err(OriginError::TooManyRedirects(self.max_redirects));
                }
                hops += 1;
                let location = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(OriginError::BadRedirect)?;
                url = self.policy.check(location, Some(&url))?;
                continue;
            }
            let range = match status.as_u16() {
                200 => None,
                206 => Some(
                    resp.headers()
                        .get(CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(ContentRange::parse)
                        .ok_or(OriginError::BadRange)?,
                ),
                s => return Err(OriginError::Status(s)),
            };
            let content_type = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            return Ok(OriginResponse {
                range,
                content_length: resp.content_length(),
                content_type,
                host: url.host_str().unwrap_or("").to_owned(),
                body: Box::pin(
                    resp.bytes_stream()
                        .map_err(|e| OriginError::Body(Box::new(e.without_url()))),
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        // `localhost` resolves without network; its answers are loopback.
        let err = resolve_vetted("localhost").await.expect_err("loopback");
        assert!(matches!(err, Refusal::Address(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_refusal_from_the_resolver_reaches_the_caller_as_a_refusal() {
        // `*.localhost` names resolve to loopback (RFC 6761) or not at all: either way the
        // client must report the resolver's refusal, not a generic connect error.
        let origin = HttpOrigin::new(
            SourcePolicy::new(
                vec![super::super::policy::HostPattern::parse("files.localhost").expect("p")],
                false,
            ),
            3,
            Duration::from_secs(2),
            Duration::from_secs(2),
        )
        .expect("client");
        let err = origin
            .fetch("https://files.localhost/x", 0)
            .await
            .expect_err("refused");
        assert!(matches!(err, OriginError::Refused(_)), "{err:?}");
    }
}
