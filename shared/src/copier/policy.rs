//! SSRF defence: which URLs the copier may fetch. Pure: no I/O, so every rule is unit-tested.
//!
//! A link comes from a webhook body; anyone who can make a webhook reach us (or forge one if a
//! secret leaks) chooses it. The copier therefore fetches only
//! - `https` URLs, without userinfo,
//! - whose host matches one of the configured patterns ([`HostPattern`]),
//! - whose every address (IP literal, or each DNS answer) is a public unicast address.
//!
//! The address check runs on the addresses the HTTP client then connects to (the resolver in
//! [`super::origin`] returns only vetted addresses), so a DNS answer that changes between a
//! check and the connect (rebinding) cannot slip through. Redirects are followed by hand and
//! every hop is checked again.
//!
//! The development-only setting additionally allows `http://127.0.0.1:<port>` (the literal
//! address, nothing else) so the local stack and the tests can serve files from loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// JaaS's download hosts (see [`crate::providers::jaas::SOURCE_HOSTS`]).
pub use crate::providers::jaas::SOURCE_HOSTS as DEFAULT_SOURCE_HOSTS;

/// Why a URL or address is refused. Safe to log: it names the host class, never the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("link is not a valid absolute URL")]
    InvalidUrl,
    #[error("scheme {0:?} is not allowed (https only)")]
    Scheme(String),
    #[error("links with user credentials are not allowed")]
    Userinfo,
    #[error("host {0} is not in the provider's allowed source hosts")]
    HostNotAllowed(String),
    #[error("address {0} is not a public unicast address")]
    Address(IpAddr),
    #[error("host {0} resolved to no address")]
    NoAddress(String),
    #[error("no download hosts are configured for provider {0}")]
    UnknownProvider(String),
}

/// A host pattern: labels compared case-insensitively. A leading `*` label matches one or more
/// labels (`*.amazonaws.com` matches `bucket.s3.us-west-2.amazonaws.com`, not `amazonaws.com`);
/// a `*` label elsewhere matches exactly one label (`objectstorage.*.oraclecloud.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    labels: Vec<String>,
}

impl HostPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if raw.is_empty() {
            return Err("empty host pattern".into());
        }
        let labels: Vec<String> = raw.split('.').map(str::to_owned).collect();
        for (i, l) in labels.iter().enumerate() {
            let ok = (l == "*" && i + 1 < labels.len())
                || (!l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            if !ok {
                return Err(format!("invalid host pattern {raw:?}"));
            }
        }
        // A wildcard next to a bare public suffix (`*.com`) would allow nearly everything:
        // a pattern with a wildcard needs two literal labels. Exact names may be single labels.
        if labels.iter().any(|l| l == "*") && labels.iter().filter(|l| *l != "*").count() < 2 {
            return Err(format!("host pattern {raw:?} is too broad"));
        }
        Ok(Self { labels })
    }

    /// Whether this pattern names exactly the address `ip` (an exact IPv4 pattern such as
    /// `1.2.3.4`). A hostname pattern, and any pattern with a wildcard, never matches an address.
    pub fn matches_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => {
                !self.labels.iter().any(|l| l == "*") && self.labels.join(".") == v4.to_string()
            }
            // Patterns cannot spell an IPv6 address.
            IpAddr::V6(_) => false,
        }
    }

    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host: Vec<&str> = host.split('.').collect();
        let (first, rest) = match self.labels.split_first() {
            Some((f, r)) if f == "*" => (true, r),
            _ => (false, &self.labels[..]),
        };
        if first {
            if host.len() <= rest.len() {
                return false;
            }
            let tail = &host[host.len() - rest.len()..];
            host[..host.len() - rest.len()]
                .iter()
                .all(|l| !l.is_empty())
                && labels_match(rest, tail)
        } else {
            host.len() == rest.len() && labels_match(rest, &host)
        }
    }
}

fn labels_match(pattern: &[String], host: &[&str]) -> bool {
    pattern
        .iter()
        .zip(host)
        .all(|(p, h)| !h.is_empty() && (p == "*" || p == h))
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.labels.join("."))
    }
}

/// The fetch policy of each provider: its own host allow-list (a JaaS link may never point at
/// a host only Daily's links use, and the reverse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePolicies {
    by_provider: Vec<(String, SourcePolicy)>,
    /// Applies to every provider (tests, and tools that copy one provider's files).
    any: Option<SourcePolicy>,
}

impl SourcePolicies {
    pub fn new(by_provider: Vec<(String, SourcePolicy)>) -> Self {
        Self {
            by_provider,
            any: None,
        }
    }

    /// One policy for every provider.
    pub fn single(policy: SourcePolicy) -> Self {
        Self {
            by_provider: Vec::new(),
            any: Some(policy),
        }
    }

    /// The policy for `provider`'s links; a provider without one has nothing to fetch.
    pub fn for_provider(&self, provider: &str) -> Result<&SourcePolicy, Refusal> {
        self.by_provider
            .iter()
            .find(|(p, _)| p == provider)
            .map(|(_, policy)| policy)
            .or(self.any.as_ref())
            .ok_or_else(|| Refusal::UnknownProvider(provider.to_owned()))
    }
}

/// The fetch policy: allowed host patterns plus the development-only loopback exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePolicy {
    patterns: Vec<HostPattern>,
    allow_insecure_local: bool,
}

impl SourcePolicy {
    pub fn new(patterns: Vec<HostPattern>, allow_insecure_local: bool) -> Self {
        Self {
            patterns,
            allow_insecure_local,
        }
    }

    /// The production default: the catalogue's storage hosts, no loopback exception.
    pub fn production_default() -> Self {
        Self::new(
            DEFAULT_SOURCE_HOSTS
                .iter()
                .map(|p| HostPattern::parse(p).expect("default patterns are valid"))
                .collect(),
            false,
        )
    }

    pub fn allows_insecure_local(&self) -> bool {
        self.allow_insecure_local
    }

    pub fn patterns(&self) -> &[HostPattern] {
        &self.patterns
    }

    /// Checks scheme, userinfo, host pattern and (for IP literals) the address: an IP-literal
    /// host must be public unicast *and* listed (a hostname pattern never admits it). A domain name
    /// that passes still has its resolved addresses checked with [`check_ip`] before connecting.
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Userinfo);
        }
        if self.allow_insecure_local
            && url.scheme() == "http"
            && url.host() == Some(Host::Ipv4(Ipv4Addr::LOCALHOST))
        {
            return Ok(());
        }
        if url.scheme() != "https" {
            return Err(Refusal::Scheme(url.scheme().to_owned()));
        }
        match url.host() {
            None => Err(Refusal::InvalidUrl),
            // Checked directly (no DNS involved), then against the list like any host.
            Some(Host::Ipv4(ip)) => self.check_literal(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_literal(IpAddr::V6(ip)),
            Some(Host::Domain(d)) => {
                if self.patterns.iter().any(|p| p.matches(d)) {
                    Ok(())
                } else {
                    Err(Refusal::HostNotAllowed(d.to_owned()))
                }
            }
        }
    }

    fn check_literal(&self, ip: IpAddr) -> Result<(), Refusal> {
        check_ip(ip)?;
        if self.patterns.iter().any(|p| p.matches_ip(ip)) {
            Ok(())
        } else {
            Err(Refusal::HostNotAllowed(ip.to_string()))
        }
    }

    /// Parses and checks a link or a redirect target (`base` resolves relative locations).
    pub fn check(&self, raw: &str, base: Option<&Url>) -> Result<Url, Refusal> {
        let url = match base {
            Some(b) => b.join(raw),
            None => Url::parse(raw),
        }
        .map_err(|_| Refusal::InvalidUrl)?;
        self.check_url(&url)?;
        Ok(url)
    }
}

/// Refuses every address that is not public unicast: loopback, private (RFC 1918), CGNAT,
/// link-local (incl. the 169.254.169.254 metadata service), ULA, unspecified, multicast,
/// broadcast, documentation and reserved ranges, and IPv6 forms that embed such an IPv4
/// address (IPv4-mapped, IPv4-compatible, NAT64, 6to4), and local-use NAT64 64:ff9b:1::/48
/// (RFC 8215: translates to whatever IPv4 space the operator chose, internal included).
pub fn check_ip(ip: IpAddr) -> Result<(), Refusal> {
    if is_public(ip) {
        Ok(())
    } else {
        Err(Refusal::Address(ip))
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // "this network", 0.0.0.0
        || a == 10                             // private
        || a == 127                            // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 169 && b == 254)              // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast
        || (a == 192 && b == 168)              // private
        || (a == 198 && (b == 18 || b == 19))  // benchmarking
        || (a == 198 && b == 51 && c == 100)   // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)    // TEST-NET-3
        || a >= 224) // multicast 224/4, reserved 240/4, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || (seg[0] & 0xfe00) == 0xfc00      // ULA fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80      // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0      // site-local (deprecated) fec0::/10
        || (seg[0] & 0xff00) == 0xff00      // multicast
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2] == 0x0001) // local-use NAT64 64:ff9b:1::/48
        || seg[0] == 0) // any other ::/16 form (IPv4-compatible, reserved)
}

/// The IPv4 address inside IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d),
/// NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses: they reach that IPv4 host.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let o = ip.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if seg[..5] == [0, 0, 0, 0, 0]
        && (seg[5] == 0xffff || (seg[5] == 0 && !ip.is_loopback() && !ip.is_unspecified()))
    {
        return Some(low);
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low);
    }
    if seg[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod() -> SourcePolicy {
        SourcePolicy::production_default()
    }

    fn refused(policy: &SourcePolicy, url: &str) -> Refusal {
        policy.check(url, None).expect_err(url)
    }

    #[test]
    fn catalogue_links_are_allowed_by_default() {
        for url in [
            "https://objectstorage.eu-frankfurt-1.oraclecloud.com/p/x/n/y/b/z/o/rec.mp4",
            "https://objectstorage.us-phoenix-1.oraclecloud.com/n/a/b/c",
            "https://8x8.vc/something",
            "https://files.8x8.vc/something",
            "https://jitsi-micros-rtcstats-server.s3.us-west-2.amazonaws.com/a.gz?X-Amz-Signature=1",
        ] {
            prod().check(url, None).expect(url);
        }
    }

    #[test]
    fn scheme_userinfo_and_unlisted_hosts_are_refused() {
        let p = prod();
        assert_eq!(
            refused(&p, "http://8x8.vc/a"),
            Refusal::Scheme("http".into())
        );
        assert_eq!(refused(&p, "ftp://8x8.vc/a"), Refusal::Scheme("ftp".into()));
        assert_eq!(refused(&p, "https://u:p@8x8.vc/a"), Refusal::Userinfo);
        assert_eq!(
            refused(&p, "https://evil.example/a"),
            Refusal::HostNotAllowed("evil.example".into())
        );
        // Suffix tricks.
        assert!(matches!(
            refused(&p, "https://8x8.vc.evil.example/a"),
            Refusal::HostNotAllowed(_)
        ));
        assert!(matches!(
            refused(&p, "https://evil8x8.vc/a"),
            Refusal::HostNotAllowed(_)
        ));
        assert!(matches!(
            refused(&p, "https://amazonaws.com/a"),
            Refusal::HostNotAllowed(_)
        ));
        assert!(matches!(
            refused(&p, "https://objectstorage.a.b.oraclecloud.com/a"),
            Refusal::HostNotAllowed(_)
        ));
        assert_eq!(refused(&p, "not a url"), Refusal::InvalidUrl);
    }

    #[test]
    fn internal_ip_literals_are_refused_in_every_spelling() {
        let p = prod();
        for url in [
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://[::1]/",
            "https://[::]/",
            "https://[fc00::1]/",
            "https://[fd12:3456::1]/",
            "https://[fe80::1]/",
            "https://[ff02::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:a9fe:a9fe::1]/",
            "https://[::10.0.0.1]/",
        ] {
            assert!(
                matches!(refused(&p, url), Refusal::Address(_)),
                "{url} should be refused as an address"
            );
        }
    }

    #[test]
    fn ip_literals_must_be_listed_like_any_host() {
        let p = prod();
        for url in [
            "https://1.2.3.4/x",
            "https://8.8.8.8/x",
            "https://[2606:4700::1111]/x",
        ] {
            assert!(
                matches!(refused(&p, url), Refusal::HostNotAllowed(_)),
                "{url} is public but not listed"
            );
        }
        // Documentation range: refused as an address before the list is consulted.
        assert!(matches!(
            refused(&p, "https://[2001:db8::1]/x"),
            Refusal::Address(_)
        ));
        // Wildcard hostname patterns never match an address.
        let wild = SourcePolicy::new(
            vec![
                HostPattern::parse("*.3.4").expect("p"),
                HostPattern::parse("*.example.org").expect("p"),
            ],
            false,
        );
        assert_eq!(
            refused(&wild, "https://1.2.3.4/x"),
            Refusal::HostNotAllowed("1.2.3.4".into())
        );
        // An exact address pattern admits that public address only.
        let exact = SourcePolicy::new(vec![HostPattern::parse("8.8.8.8").expect("p")], false);
        exact.check("https://8.8.8.8/x", None).expect("listed");
        assert!(matches!(
            refused(&exact, "https://8.8.4.4/x"),
            Refusal::HostNotAllowed(_)
        ));
    }

    #[test]
    fn only_s3_hosts_of_amazonaws_are_allowed_by_default() {
        let p = prod();
        for url in [
            "https://jitsi-micros-rtcstats-server.s3.us-west-2.amazonaws.com/a.gz",
            "https://bucket.s3.amazonaws.com/a.gz",
            "https://s3.us-west-2.amazonaws.com/bucket/a.gz",
            "https://s3.amazonaws.com/bucket/a.gz",
        ] {
            p.check(url, None).expect(url);
        }
        for url in [
            "https://my-lb-123.us-west-2.elb.amazonaws.com/x",
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/x",
            "https://ec2-1-2-3-4.compute-1.amazonaws.com/x",
            "https://sqs.us-east-1.amazonaws.com/x",
            "https://abc.lambda-url.us-east-1.on.aws/x",
        ] {
            assert!(
                matches!(refused(&p, url), Refusal::HostNotAllowed(_)),
                "{url} must not be allowed"
            );
        }
    }

    #[test]
    fn local_use_nat64_is_refused() {
        for ip in [
            "64:ff9b:1::a00:1",
            "64:ff9b:1:ffff::808:808",
            "64:ff9b:1::1",
        ] {
            assert!(check_ip(ip.parse().expect("ip")).is_err(), "{ip}");
        }
        // Well-known NAT64 of a public address stays allowed.
        check_ip("64:ff9b::808:808".parse().expect("ip")).expect("public via NAT64");
    }

    #[test]
    fn public_addresses_pass_the_address_check() {
        for ip in [
            "52.26.201.32",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            check_ip(ip.parse().expect("ip")).expect(ip);
        }
    }

    #[test]
    fn loopback_http_only_with_the_development_setting() {
        let dev = SourcePolicy::new(Vec::new(), true);
        dev.check("http://127.0.0.1:8080/f", None)
            .expect("dev loopback");
        assert!(refused(&dev, "http://localhost:8080/f") != Refusal::InvalidUrl);
        assert!(matches!(
            refused(&dev, "http://169.254.169.254/latest/meta-data/"),
            Refusal::Scheme(_)
        ));
        assert!(matches!(
            refused(&dev, "http://10.0.0.1/"),
            Refusal::Scheme(_)
        ));
        assert!(matches!(
            refused(&prod(), "http://127.0.0.1:8080/f"),
            Refusal::Scheme(_)
        ));
    }

    #[test]
    fn redirect_targets_resolve_against_the_current_url() {
        let base = Url::parse("https://8x8.vc/a/b").expect("url");
        let next = prod().check("/c?d=1", Some(&base)).expect("relative");
        assert_eq!(next.as_str(), "https://8x8.vc/c?d=1");
        assert!(matches!(
            prod().check("https://169.254.169.254/", Some(&base)),
            Err(Refusal::Address(_))
        ));
    }

    #[test]
    fn patterns_are_validated() {
        assert!(HostPattern::parse("*").is_err());
        assert!(HostPattern::parse("localhost").is_ok());
        assert!(HostPattern::parse("*.com").is_err());
        assert!(HostPattern::parse("a..b").is_err());
        assert!(HostPattern::parse("a.*").is_err());
        let p = HostPattern::parse("*.Example.org").expect("ok");
        assert!(p.matches("a.b.example.org"));
        assert!(p.matches("A.EXAMPLE.ORG."));
        assert!(!p.matches("example.org"));
        assert!(!p.matches(".example.org"));
    }
}
