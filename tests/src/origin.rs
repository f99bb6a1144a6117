//! A tiny HTTP/1.1 file server on 127.0.0.1 standing in for the JaaS storage hosts: serves
//! files from memory or disk with an `ETag` (and optionally `Last-Modified`), honours (or
//! ignores) `Range` and `If-Range`, and misbehaves on demand (status codes, redirects,
//! truncated bodies, stalls, a file that changes between requests, a lying Content-Length). Every request is logged so tests can
//! assert what the copier asked for. Plain http on loopback: the copier reaches it only with
//! the development-only `ALLOW_INSECURE_LOCAL_ORIGIN` policy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Where a route's bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    Memory(Bytes),
    /// A file on disk (benchmarks: never loaded into memory).
    File(PathBuf, u64),
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Self::Memory(b) => b.len() as u64,
            Self::File(_, len) => *len,
        }
    }
}

/// How one path answers.
#[derive(Debug, Clone)]
pub struct Route {
    pub source: Source,
    pub content_type: &'static str,
    /// Answer with this status and no body instead of the file.
    pub status: Option<u16>,
    /// Answer 302 to this location.
    pub redirect: Option<String>,
    /// Honour `Range: bytes=N-` with 206 (else always 200 with the whole file).
    pub ranges: bool,
    /// The first `truncate_times` answers announce the full length but close the connection
    /// after `truncate_at` body bytes.
    pub truncate_times: u32,
    pub truncate_at: u64,
    /// The first `reset_times` answers announce the full length but reset the connection
    /// (TCP RST, not a clean close) after `reset_at` body bytes.
    pub reset_times: u32,
    pub reset_at: u64,
    /// Pause this long after sending `stall_at` body bytes (every answer).
    pub stall: Option<(u64, Duration)>,
    /// Answer the first `fail_times` requests with 503.
    pub fail_times: u32,
    /// Sent as `ETag` (a strong one by default, derived from the content).
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Honour `If-Range` (answer 200 with the whole file when it does not match).
    pub if_range: bool,
    /// After this many answers, serve these bytes instead (with a new strong ETag).
    pub change: Option<(u32, Bytes)>,
    /// `Some(Some(n))`: announce `Content-Length: n` whatever is sent (a lying origin);
    /// `Some(None)`: send no Content-Length (the body ends when the connection closes).
    pub length: Option<Option<u64>>,
}

/// A strong ETag for `bytes`.
pub fn etag_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("\"{}\"", hex::encode(&sha2::Sha256::digest(bytes)[..8]))
}

impl Route {
    pub fn file(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            etag: Some(etag_of(&bytes)),
            source: Source::Memory(bytes),
            content_type: "application/octet-stream",
            status: None,
            redirect: None,
            ranges: true,
            truncate_times: 0,
            truncate_at: 0,
            reset_times: 0,
            reset_at: 0,
            stall: None,
            fail_times: 0,
            last_modified: None,
            if_range: true,
            change: None,
            length: None,
        }
    }

    pub fn disk(path: PathBuf, len: u64) -> Self {
        Self {
            etag: Some(format!("\"{len}-{}\"", path.display().to_string().len())),
            source: Source::File(path, len),
            ..Self::file(Bytes::new())
        }
    }

    /// Sends this `ETag` (e.g. a weak `W/"…"` one), or none.
    pub fn etag(mut self, etag: Option<&str>) -> Self {
        self.etag = etag.map(str::to_owned);
        self
    }

    pub fn last_modified(mut self, date: &str) -> Self {
        self.last_modified = Some(date.to_owned());
        self
    }

    /// Announces `len` as Content-Length, then sends the real bytes and closes.
    pub fn declaring(mut self, len: u64) -> Self {
        self.length = Some(Some(len));
        self
    }

    /// Sends no Content-Length: the body runs until the connection closes.
    pub fn without_length(mut self) -> Self {
        self.length = Some(None);
        self
    }

    /// Honours `Range` even when `If-Range` does not match (a broken origin or cache).
    pub fn ignoring_if_range(mut self) -> Self {
        self.if_range = false;
        self
    }

    /// Serves `bytes` (a new version of the file, new ETag) from answer `after + 1` on.
    pub fn changing_after(mut self, after: u32, bytes: impl Into<Bytes>) -> Self {
        self.change = Some((after, bytes.into()));
        self
    }

    pub fn status(code: u16) -> Self {
        Self {
            status: Some(code),
            ..Self::file(Bytes::new())
        }
    }

    pub fn redirect(location: impl Into<String>) -> Self {
        Self {
            redirect: Some(location.into()),
            ..Self::file(Bytes::new())
        }
    }

    pub fn content_type(mut self, t: &'static str) -> Self {
        self.content_type = t;
        self
    }

    pub fn without_ranges(mut self) -> Self {
        self.ranges = false;
        self
    }

    pub fn truncated(mut self, times: u32, at: u64) -> Self {
        self.truncate_times = times;
        self.truncate_at = at;
        self
    }

    pub fn reset(mut self, times: u32, at: u64) -> Self {
        self.reset_times = times;
        self.reset_at = at;
        self
    }

    pub fn stalled(mut self, at: u64, pause: Duration) -> Self {
        self.stall = Some((at, pause));
        self
    }

    pub fn failing(mut self, times: u32) -> Self {
        self.fail_times = times;
        self
    }
}

/// One request as the origin saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    routes: HashMap<String, Route>,
    seen: Vec<Seen>,
}

/// A running origin.
#[derive(Debug, Clone)]
pub struct TestOrigin {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl TestOrigin {
    /// Starts a server on a free loopback port (on the current tokio runtime).
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        Self { addr, state }
    }

    /// Adds or replaces a route; returns its URL.
    pub fn route(&self, path: &str, route: Route) -> String {
        self.state
            .lock()
            .expect("origin state")
            .routes
            .insert(path.to_owned(), route);
        self.url(path)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests seen for `path`, in order.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.state
            .lock()
            .expect("origin state")
            .seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

fn parse_range(raw: &str, len: u64) -> Option<u64> {
    let start = raw.trim().strip_prefix("bytes=")?.split('-').next()?;
    let start: u64 = start.trim().parse().ok()?;
    (start < len).then_some(start)
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut range = None;
    let mut if_range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_owned());
            } else if name.eq_ignore_ascii_case("if-range") {
                if_range = Some(value.trim().to_owned());
            }
        }
    }
    let mut stream = reader.into_inner();
    let route = {
        let mut st = state.lock().expect("origin state");
        st.seen.push(Seen {
            path: path.clone(),
            range: range.clone(),
            if_range: if_range.clone(),
        });
        match st.routes.get_mut(&path) {
            None => None,
            Some(r) => {
                let snapshot = r.clone();
                r.truncate_times = r.truncate_times.saturating_sub(1);
                r.reset_times = r.reset_times.saturating_sub(1);
                r.fail_times = r.fail_times.saturating_sub(1);
                match r.change.take() {
                    Some((0, _)) | None => {}
                    Some((1, bytes)) => {
                        r.etag = Some(etag_of(&bytes));
                        r.source = Source::Memory(bytes);
                    }
                    Some((n, bytes)) => r.change = Some((n - 1, bytes)),
                }
                Some(snapshot)
            }
        }
    };
    let Some(route) = route else {
        return head(&mut stream, 404, &[]).await;
    };
    if route.fail_times > 0 {
        return head(&mut stream, 503, &[]).await;
    }
    if let Some(code) = route.status {
        return head(&mut stream, code, &[]).await;
    }
    if let Some(location) = &route.redirect {
        return head(&mut stream, 302, &[("Location", location.clone())]).await;
    }
    let len = route.source.len();
    // If-Range (RFC 9110 §13.1.5): the range applies only to the version named; strong
    // comparison, so a weak ETag never matches.
    let version_matches = match if_range.as_deref() {
        None => true,
        Some(_) if !route.if_range => true,
        Some(v) if v.starts_with("W/") => false,
        Some(v) => route.etag.as_deref() == Some(v) || route.last_modified.as_deref() == Some(v),
    };
    let start = if route.ranges && version_matches {
        range.as_deref().and_then(|r| parse_range(r, len))
    } else {
        None
    };
    let (status, from) = match start {
        Some(s) => (206, s),
        None => (200, 0),
    };
    let mut headers = vec![("Content-Type", route.content_type.to_owned())];
    match route.length {
        None => headers.push(("Content-Length", (len - from).to_string())),
        Some(Some(claimed)) => headers.push(("Content-Length", claimed.to_string())),
        Some(None) => {}
    }
    if status == 206 {
        headers.push((
            "Content-Range",
            format!("bytes {from}-{}/{len}", len.saturating_sub(1)),
        ));
    }
    if route.ranges {
        headers.push(("Accept-Ranges", "bytes".to_owned()));
    }
    if let Some(etag) = &route.etag {
        headers.push(("ETag", etag.clone()));
    }
    if let Some(date) = &route.last_modified {
        headers.push(("Last-Modified", date.clone()));
    }
    head_only(&mut stream, status, &headers).await?;
    // Offsets below count body bytes of this answer.
    let reset = route.reset_times > 0;
    let limit = if reset {
        route.reset_at.min(len - from)
    } else if route.truncate_times > 0 {
        route.truncate_at.min(len - from)
    } else {
        len - from
    };
    let mut sent = 0u64;
    let mut stalled = false;
    let mut file = match &route.source {
        Source::File(p, _) => {
            let mut f = tokio::fs::File::open(p).await?;
            f.seek(std::io::SeekFrom::Start(from)).await?;
            Some(f)
        }
        Source::Memory(_) => None,
    };
    let mut chunk = vec![0u8; 256 * 1024];
    while sent < limit {
        let mut n = (limit - sent).min(chunk.len() as u64);
        if let Some((at, _)) = route.stall
            && !stalled
            && sent < at
        {
            n = n.min(at - sent);
        }
        let n = n as usize;
        match (&route.source, file.as_mut()) {
            (Source::Memory(b), _) => {
                let s = (from + sent) as usize;
                stream.write_all(&b[s..s + n]).await?;
            }
            (Source::File(..), Some(f)) => {
                f.read_exact(&mut chunk[..n]).await?;
                stream.write_all(&chunk[..n]).await?;
            }
            (Source::File(..), None) => unreachable!("file opened above"),
        }
        sent += n as u64;
        if let Some((at, pause)) = route.stall
            && !stalled
            && sent >= at
        {
            stalled = true;
            stream.flush().await?;
            tokio::time::sleep(pause).await;
        }
    }
    stream.flush().await?;
    if reset {
        // Abortive close: the client sees "connection reset by peer" mid-body.
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.set_zero_linger()?;
        drop(stream);
        return Ok(());
    }
    stream.shutdown().await
}

async fn head_only(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).await
}

async fn head(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
) -> std::io::Result<()> {
    let mut all = headers.to_vec();
    all.push(("Content-Length", "0".to_owned()));
    head_only(stream, status, &all).await?;
    stream.flush().await?;
    stream.shutdown().await
}
