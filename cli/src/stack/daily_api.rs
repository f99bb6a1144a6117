//! A local stand-in of Daily's REST API, run by `hooksctl up` beside the stack (and by the
//! tests): the calls the copier and the reconciler make, answered the way Daily answers them,
//! for recordings and transcripts the demo registers.
//!
//! - `GET /v1/recordings[?limit&starting_after]` -> `{total_count, data: [...]}`, newest first.
//! - `GET /v1/recordings/{id}/access-link` -> `{download_link, expires}`; a raw-tracks recording
//!   also lists `tracks: [{s3Key, download_link}]`. `GET /v1/transcript/{id}/access-link` ->
//!   `{transcriptId, link}`. Every answer mints a new link (a fresh token), as Daily does.
//! - `GET /files/{token}`: the file behind a link, with `ETag`, `Range` and `If-Range`; any
//!   other path or token is 403 (a link that was changed by a byte does not work).
//! - `POST /_local/files?object=recording|transcript&id=..&room=..&start_ts=..[&track=<s3Key>]`
//!   with the file's bytes registers a file (the demo's "Daily finished a recording").
//!
//! Every `/v1` call needs `Authorization: Bearer <api key>`, else 401.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// The API key of the local stack (development only).
pub const LOCAL_API_KEY: &str = "daily_local_development_only_api_key";

/// Uploads the stand-in takes (the demo's files are small).
const MAX_FILE: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
struct StoredFile {
    bytes: Bytes,
    etag: String,
}

#[derive(Debug, Clone)]
struct Object {
    kind: String,
    id: String,
    room: String,
    start_ts: i64,
    /// The whole recording, or each track by its s3Key.
    files: Vec<(Option<String>, StoredFile)>,
}

#[derive(Debug, Default)]
struct State {
    objects: Vec<Object>,
    /// Link token -> (object index, track).
    links: HashMap<String, (usize, Option<String>)>,
    issued: u64,
    /// Access-link answers, for tests that count them.
    access_links: u64,
}

/// A running stand-in.
#[derive(Debug, Clone)]
pub struct DailyStandIn {
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

impl DailyStandIn {
    /// The API's base URL as the copier's `DAILY_API_BASE_URL` (`…/v1`).
    pub fn api_base_url(&self) -> String {
        format!("{}/v1", self.base_url)
    }

    /// How many access links were minted so far.
    pub fn access_links_issued(&self) -> u64 {
        lock(&self.state).access_links
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the stand-in on `listener`; it serves until the runtime stops.
pub fn start(listener: TcpListener, api_key: &str) -> anyhow::Result<DailyStandIn> {
    let base_url = format!("http://{}", listener.local_addr()?);
    let state = Arc::new(Mutex::new(State::default()));
    let served = Arc::clone(&state);
    let key = Arc::new(format!("Bearer {api_key}"));
    let base = base_url.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (state, key, base) = (Arc::clone(&served), Arc::clone(&key), base.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let (state, key, base) = (Arc::clone(&state), Arc::clone(&key), base.clone());
                    async move { Ok::<_, Infallible>(handle(&state, &key, &base, req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(DailyStandIn { base_url, state })
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, info: &str) -> Response<Full<Bytes>> {
    reply(status, json!({"error": "stand-in", "info": info}))
}

fn query(req: &Request<hyper::body::Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

async fn handle(
    state: &Mutex<State>,
    key: &str,
    base: &str,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.first() == Some(&"files") {
        return serve_file(state, &segments, &req);
    }
    if segments.first() == Some(&"_local") {
        return register(state, req).await;
    }
    let authorized = req
        .headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == key.as_bytes());
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "authorization-header-error");
    }
    let q = query(&req);
    match segments.as_slice() {
        ["v1", "recordings"] => {
            let s = lock(state);
            let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
            let mut recs: Vec<&Object> =
                s.objects.iter().filter(|o| o.kind == "recording").collect();
            recs.sort_by_key(|o| std::cmp::Reverse(o.start_ts));
            let skip = match q.get("starting_after") {
                Some(after) => recs
                    .iter()
                    .position(|o| &o.id == after)
                    .map_or(recs.len(), |i| i + 1),
                None => 0,
            };
            let data: Vec<Value> = recs
                .iter()
                .skip(skip)
                .take(limit)
                .map(|o| recording_json(o))
                .collect();
            reply(
                StatusCode::OK,
                json!({"total_count": recs.len(), "data": data}),
            )
        }
        ["v1", "recordings", id, "access-link"] => access_link(state, base, "recording", id),
        ["v1", "transcript", id, "access-link"] => access_link(state, base, "transcript", id),
        _ => error(StatusCode::NOT_FOUND, "not-found"),
    }
}

fn recording_json(o: &Object) -> Value {
    let raw = o.files.iter().any(|(t, _)| t.is_some());
    let mut v = json!({
        "id": o.id,
        "room_name": o.room,
        "start_ts": o.start_ts,
        "status": "finished",
        "max_participants": 2,
        "duration": 60,
        "share_token": "local",
        "s3key": format!("local-domain/{}/{}.mp4", o.room, o.start_ts * 1000),
        "mtgSessionId": null,
        "type": if raw { "raw-tracks" } else { "cloud" },
    });
    if raw {
        v["tracks"] = Value::Array(
            o.files
                .iter()
                .filter_map(|(t, f)| {
                    t.as_ref()
                        .map(|k| json!({"s3Key": k, "size": f.bytes.len(), "type": "video"}))
                })
                .collect(),
        );
    }
    v
}

fn access_link(state: &Mutex<State>, base: &str, kind: &str, id: &str) -> Response<Full<Bytes>> {
    let mut s = lock(state);
    let Some(index) = s.objects.iter().position(|o| o.kind == kind && o.id == id) else {
        return error(StatusCode::NOT_FOUND, "not-found");
    };
    s.access_links += 1;
    let expires = meeting_hooks::respond::now_ms() / 1000 + 3600;
    let tracks: Vec<Option<String>> = s.objects[index]
        .files
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    let mut mint = |track: Option<String>| {
        s.issued += 1;
        let token = hex::encode(Sha256::digest(format!(
            "{id}/{track:?}/{}/{}",
            s.issued, expires
        )));
        s.links.insert(token.clone(), (index, track));
        format!("{base}/files/{token}")
    };
    if kind == "transcript" {
        let link = mint(None);
        return reply(StatusCode::OK, json!({"transcriptId": id, "link": link}));
    }
    let raw = tracks.iter().any(Option::is_some);
    if raw {
        let listed: Vec<Value> = tracks
            .into_iter()
            .map(|t| {
                let link = mint(t.clone());
                json!({"s3Key": t, "download_link": link})
            })
            .collect();
        reply(
            StatusCode::OK,
            json!({"tracks": listed, "expires": expires}),
        )
    } else {
        let link = mint(None);
        reply(
            StatusCode::OK,
            json!({"download_link": link, "expires": expires}),
        )
    }
}

fn serve_file(
    state: &Mutex<State>,
    segments: &[&str],
    req: &Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let s = lock(state);
    let file = match segments {
        ["files", token] => s.links.get(*token).and_then(|(i, track)| {
            s.objects[*i]
                .files
                .iter()
                .find(|(t, _)| t == track)
                .map(|(_, f)| f.clone())
        }),
        _ => None,
    };
    let Some(file) = file else {
        return error(StatusCode::FORBIDDEN, "link not valid");
    };
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let from = header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok())
        .filter(|_| header("if-range").is_none_or(|v| v == file.etag));
    let total = file.bytes.len();
    let mut resp = match from {
        Some(from) if from < total => {
            let mut r = Response::new(Full::new(file.bytes.slice(from..)));
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            r.headers_mut().insert(
                "content-range",
                format!("bytes {from}-{}/{total}", total - 1)
                    .parse()
                    .expect("header"),
            );
            r
        }
        Some(_) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            r
        }
        None => Response::new(Full::new(file.bytes.clone())),
    };
    resp.headers_mut()
        .insert("etag", file.etag.parse().expect("header"));
    resp
}

async fn register(
    state: &Mutex<State>,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    if req.method() != hyper::Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "POST a file");
    }
    let q = query(&req);
    let (Some(kind), Some(id)) = (q.get("object").cloned(), q.get("id").cloned()) else {
        return error(StatusCode::BAD_REQUEST, "object and id are required");
    };
    let room = q
        .get("room")
        .cloned()
        .unwrap_or_else(|| "local-room".into());
    let start_ts: i64 = q.get("start_ts").and_then(|s| s.parse().ok()).unwrap_or(0);
    let track = q.get("track").cloned();
    let bytes = match Limited::new(req.into_body(), MAX_FILE).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "file too large"),
    };
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&bytes)[..12]));
    let file = StoredFile { bytes, etag };
    let mut s = lock(state);
    match s.objects.iter_mut().find(|o| o.kind == kind && o.id == id) {
        Some(o) => {
            o.files.retain(|(t, _)| *t != track);
            o.files.push((track, file));
        }
        None => s.objects.push(Object {
            kind,
            id,
            room,
            start_ts,
            files: vec![(track, file)],
        }),
    }
    reply(StatusCode::CREATED, json!({"registered": true}))
}
