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
use futures::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{
    CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_RANGE, LAST_MODIFIED, LOCATION, RANGE,
};

use super::policy::{Refusal, SourcePolicies, SourcePolicy, check_ip};
use super::ports::{ContentRange, Origin, OriginError, OriginResponse, if_range_validator};

/// Why a name did not yield usable addresses: a refusal (the lookup succeeded and answered an
/// internal address, or nothing) is permanent; a failed lookup (resolver error, timeout) is a
/// transient fault, not an attack, and is retried.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("name lookup failed")]
    Lookup(#[source] std::io::Error),
}

/// The name lookup under [`VettingResolver`]: a seam so tests can make it fail or answer
/// chosen addresses.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>;
}

/// The system resolver (`getaddrinfo` through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let host = host.to_owned();
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.collect()) })
    }
}

/// Resolves with a [`Lookup`] (the system resolver by default), then refuses internal answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct VettingResolver<L = SystemLookup>(pub L);

/// Vets the outcome of looking up `host` (pure): a lookup error stays a lookup error; a
/// successful lookup is refused when it yields no address or any address that is not public
/// unicast. One internal answer refuses the whole name: a name mixing public and internal
/// addresses is an attack or a misconfiguration, never a storage host.
pub fn vet(
    host: &str,
    looked_up: std::io::Result<Vec<SocketAddr>>,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let addrs = looked_up.map_err(ResolveError::Lookup)?;
    if addrs.is_empty() {
        return Err(Refusal::NoAddress(host.to_owned()).into());
    }
    for a in &addrs {
        check_ip(a.ip())?;
    }
    Ok(addrs)
}

/// Resolves `host` with `lookup` and returns its addresses only if [`vet`] accepts them.
pub async fn resolve_vetted_with(
    lookup: &impl Lookup,
    host: &str,
) -> Result<Vec<SocketAddr>, ResolveError> {
    vet(host, lookup.lookup(host).await)
}

/// [`resolve_vetted_with`] the system resolver.
pub async fn resolve_vetted(host: &str) -> Result<Vec<SocketAddr>, ResolveError> {
    resolve_vetted_with(&SystemLookup, host).await
}

impl<L: Lookup + Clone> Resolve for VettingResolver<L> {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let lookup = self.0.clone();
        Box::pin(async move {
            let addrs = resolve_vetted_with(&lookup, &host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The production download client.
#[derive(Debug, Clone)]
pub struct HttpOrigin {
    client: reqwest::Client,
    policies: Arc<SourcePolicies>,
    max_redirects: u8,
}

impl HttpOrigin {
    pub fn new(
        policy: SourcePolicy,
        max_redirects: u8,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Self::with_lookup(
            policy,
            max_redirects,
            connect_timeout,
            read_timeout,
            SystemLookup,
        )
    }

    /// [`HttpOrigin::new`] with another name lookup (tests).
    pub fn with_lookup(
        policy: SourcePolicy,
        max_redirects: u8,
        connect_timeout: Duration,
        read_timeout: Duration,
        lookup: impl Lookup + Clone,
    ) -> Result<Self, reqwest::Error> {
        Self::with_policies(
            SourcePolicies::single(policy),
            max_redirects,
            connect_timeout,
            read_timeout,
            lookup,
        )
    }

    /// The origin with a host allow-list per provider.
    pub fn with_policies(
        policies: SourcePolicies,
        max_redirects: u8,
        connect_timeout: Duration,
        read_timeout: Duration,
        lookup: impl Lookup + Clone,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(VettingResolver(lookup)))
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .build()?;
        Ok(Self {
            client,
            policies: Arc::new(policies),
            max_redirects,
        })
    }
}

/// What the resolver said, found in a client error's cause chain: `Some(Ok(refusal))` for a
/// policy refusal, `Some(Err(()))` for a failed lookup.
fn resolver_error_in(e: &(dyn std::error::Error + 'static)) -> Option<Result<Refusal, ()>> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refusal>() {
            return Some(Ok(r.clone()));
        }
        match err.downcast_ref::<ResolveError>() {
            Some(ResolveError::Refused(r)) => return Some(Ok(r.clone())),
            Some(ResolveError::Lookup(_)) => return Some(Err(())),
            None => {}
        }
        cur = err.source();
    }
    None
}

fn transport(e: reqwest::Error) -> OriginError {
    let resolver = resolver_error_in(&e);
    if let Some(Ok(r)) = resolver {
        return OriginError::Refused(r);
    }
    let what = if resolver.is_some() {
        "name lookup"
    } else if e.is_timeout() {
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
    async fn fetch(
        &self,
        provider: &str,
        link: &str,
        from: u64,
        if_range: Option<&str>,
    ) -> Result<OriginResponse, OriginError> {
        let policy = self.policies.for_provider(provider)?;
        let mut url = policy.check(link, None)?;
        let mut hops = 0u8;
        loop {
            let mut req = self.client.get(url.clone());
            if from > 0 {
                req = req.header(RANGE, format!("bytes={from}-"));
                if let Some(v) = if_range {
                    req = req.header(IF_RANGE, v);
                }
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
                url = policy.check(location, Some(&url))?;
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
            let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok());
            let validator = if_range_validator(header(ETAG), header(LAST_MODIFIED));
            return Ok(OriginResponse {
                range,
                content_length: resp.content_length(),
                content_type,
                validator,
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
        assert!(
            matches!(err, ResolveError::Refused(Refusal::Address(_))),
            "{err:?}"
        );
    }

    #[derive(Debug, Clone)]
    struct FailingLookup;
    impl Lookup for FailingLookup {
        fn lookup(&self, _: &str) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
            Box::pin(async {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "simulated resolver timeout",
                ))
            })
        }
    }

    #[derive(Debug, Clone)]
    struct Answers(Vec<SocketAddr>);
    impl Lookup for Answers {
        fn lookup(&self, _: &str) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
            let a = self.0.clone();
            Box::pin(async move { Ok(a) })
        }
    }

    #[test]
    fn vetting_separates_lookup_failures_from_refusals() {
        let failed = vet("files.example", Err(std::io::Error::other("SERVFAIL")));
        assert!(matches!(failed, Err(ResolveError::Lookup(_))), "{failed:?}");
        let empty = vet("files.example", Ok(Vec::new()));
        assert!(
            matches!(empty, Err(ResolveError::Refused(Refusal::NoAddress(_)))),
            "{empty:?}"
        );
        let mixed = vet(
            "files.example",
            Ok(vec![
                "8.8.8.8:0".parse().expect("a"),
                "10.0.0.1:0".parse().expect("a"),
            ]),
        );
        assert!(
            matches!(mixed, Err(ResolveError::Refused(Refusal::Address(_)))),
            "{mixed:?}"
        );
        vet("files.example", Ok(vec!["8.8.8.8:0".parse().expect("a")])).expect("public");
    }

    fn origin_with(lookup: impl Lookup + Clone) -> HttpOrigin {
        HttpOrigin::with_lookup(
            SourcePolicy::new(
                vec![super::super::policy::HostPattern::parse("files.example").expect("p")],
                false,
            ),
            3,
            Duration::from_secs(2),
            Duration::from_secs(2),
            lookup,
        )
        .expect("client")
    }

    #[tokio::test]
    async fn a_failed_lookup_is_a_retryable_transport_error() {
        let err = origin_with(FailingLookup)
            .fetch("jaas", "https://files.example/x?sig=secret", 0, None)
            .await
            .expect_err("lookup fails");
        assert!(
            matches!(
                err,
                OriginError::Transport {
                    what: "name lookup",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_permanent());
        assert!(!crate::copier::error_chain(&err).contains("secret"));
    }

    #[tokio::test]
    async fn a_lookup_answering_loopback_is_a_permanent_refusal() {
        let err = origin_with(Answers(vec!["127.0.0.1:0".parse().expect("a")]))
            .fetch("jaas", "https://files.example/x", 0, None)
            .await
            .expect_err("refused");
        assert!(
            matches!(err, OriginError::Refused(Refusal::Address(_))),
            "{err:?}"
        );
        assert!(err.is_permanent());
    }

    #[tokio::test]
    async fn a_refusal_from_the_resolver_reaches_the_caller_as_a_refusal() {
        // `localhost` resolves (without network) to loopback: the client must report the
        // resolver's refusal, not a generic connect error. (A name that does not resolve at
        // all is a lookup failure: retryable, see below.)
        let origin = HttpOrigin::new(
            SourcePolicy::new(
                vec![super::super::policy::HostPattern::parse("localhost").expect("p")],
                false,
            ),
            3,
            Duration::from_secs(2),
            Duration::from_secs(2),
        )
        .expect("client");
        let err = origin
            .fetch("jaas", "https://localhost/x", 0, None)
            .await
            .expect_err("refused");
        assert!(matches!(err, OriginError::Refused(_)), "{err:?}");
    }
}
