//! HTTP glue of the read API (`GET /v1/…`): authorization first (nothing is read for a
//! caller without a valid token), then the route, then the answer as JSON. The routes and
//! answers are described in `openapi.yaml`; a test checks real answers against it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, Method};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use super::attendance::{self, Row};
use super::model::{Position, StoredEvent, TimeRange};
use super::ports::{CopyStates, Presigner, RoomIndex, SessionIndex};
use super::service::{self, FileEntry, ReadService, SessionsPage};
use super::sessions::SessionSummary;
use super::timeline::Entry;
use crate::auth::BearerTokens;
use crate::respond;
use crate::time::iso;

/// The API's routes (as the template and the local stack declare them).
pub const SESSIONS_ROUTE: &str = "/v1/sessions";
pub const SESSION_VIEW_ROUTE: &str = "/v1/sessions/{sessionId}/{view}";

/// The read API: its use cases and who may call them.
#[derive(Debug)]
pub struct ReadApi<I, C, P> {
    pub service: ReadService<I, C, P>,
    pub tokens: BearerTokens,
}

/// Handles one API Gateway request with the real clock.
pub async fn handle<I, C, P>(api: &ReadApi<I, C, P>, request: Request) -> Response<Body>
where
    I: SessionIndex + RoomIndex,
    C: CopyStates,
    P: Presigner,
{
    answer(
        api,
        request.method(),
        request.uri().path(),
        request.uri().query().unwrap_or(""),
        request.headers(),
        respond::now_ms(),
    )
    .await
}

fn bad(reason: &str) -> Response<Body> {
    respond::error(400, "bad_request", reason)
}

/// The answer to `method path?query` (pure routing over the service; the tests call it).
pub async fn answer<I, C, P>(
    api: &ReadApi<I, C, P>,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    now_ms: i64,
) -> Response<Body>
where
    I: SessionIndex + RoomIndex,
    C: CopyStates,
    P: Presigner,
{
    if let Err(refused) = api.tokens.check(headers) {
        return respond::error(401, refused.code, &refused.message);
    }
    if method != Method::GET {
        return respond::method_not_allowed("GET", "the read API answers GET");
    }
    let param = Params(
        url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    );
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let result = match segments.as_slice() {
        ["v1", "sessions"] => sessions(&api.service, &param).await,
        ["v1", "sessions", id, view] => {
            let Ok(id) = percent_encoding::percent_decode_str(id).decode_utf8() else {
                return bad("the session id is not UTF-8");
            };
            session_view(&api.service, &id, view, &param, now_ms).await
        }
        _ => return respond::error(404, "not_found", "no such route"),
    };
    match result {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %crate::telemetry::chain(&e), "read failed");
            respond::error(
                503,
                "unavailable",
                &format!("{} failed; retry later", e.operation),
            )
        }
    }
}

type Answer = Result<Response<Body>, super::ports::ReadError>;

/// The query string's parameters.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A time given as Unix ms or RFC 3339.
pub fn time_param(text: &str) -> Option<i64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    crate::lenient::iso8601_ms(text)
}

fn encode_cursor(p: &Position) -> String {
    URL_SAFE_NO_PAD.encode(json!({"k": p.key, "s": p.sort}).to_string())
}

fn decode_cursor(text: &str) -> Option<Position> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    Some(Position {
        key: v.get("k")?.as_str()?.to_owned(),
        sort: v.get("s")?.as_str()?.to_owned(),
    })
}

async fn sessions<I, C, P>(service: &ReadService<I, C, P>, param: &Params) -> Answer
where
    I: SessionIndex + RoomIndex,
    C: CopyStates,
    P: Presigner,
{
    let Some(room) = param
        .get("room")
        .filter(|r| !r.is_empty() && r.len() <= 2048)
    else {
        return Ok(bad("give the room's key: ?room=<roomKey>"));
    };
    let mut range = TimeRange::default();
    for (name, slot) in [("from", &mut range.from_ms), ("to", &mut range.to_ms)] {
        if let Some(text) = param.get(name) {
            match time_param(text) {
                Some(t) => *slot = Some(t),
                None => return Ok(bad(&format!("{name} is not Unix ms or RFC 3339"))),
            }
        }
    }
    let limit = match param.get("limit").map(str::parse::<usize>) {
        None => service::DEFAULT_PAGE,
        Some(Ok(n)) if (1..=service::MAX_PAGE).contains(&n) => n,
        Some(_) => return Ok(bad("limit must be 1 to 200")),
    };
    let after = match param.get("cursor") {
        None => None,
        Some(c) => match decode_cursor(c) {
            Some(p) => Some(p),
            None => return Ok(bad("cursor is not one this API gave")),
        },
    };
    let page: SessionsPage = service.sessions(room, range, limit, after).await?;
    Ok(respond::json(
        200,
        &json!({
            "roomKey": room,
            "sessions": page.sessions.iter().map(summary_json).collect::<Vec<_>>(),
            "nextCursor": page.next.as_ref().map(encode_cursor),
        }),
    ))
}

async fn session_view<I, C, P>(
    service: &ReadService<I, C, P>,
    id: &str,
    view: &str,
    param: &Params,
    now_ms: i64,
) -> Answer
where
    I: SessionIndex + RoomIndex,
    C: CopyStates,
    P: Presigner,
{
    if !matches!(view, "timeline" | "attendance" | "files") {
        return Ok(respond::error(404, "not_found", "no such route"));
    }
    let include_bots = match param.get("includeBots") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Ok(bad("includeBots is true or false")),
    };
    if id.is_empty() || id.len() > 2048 {
        return Ok(bad("the session id is empty or too long"));
    }
    let Some(session) = service.session(id).await? else {
        return Ok(respond::error(
            404,
            "session_unknown",
            "no events are stored for this session",
        ));
    };
    let head = summary_json(&session.summary);
    let body = match view {
        "timeline" => json!({
            "session": head,
            "events": ReadService::<I, C, P>::timeline(&session)
                .iter()
                .map(entry_json)
                .collect::<Vec<_>>(),
        }),
        "attendance" => {
            let options = attendance::Options {
                include_bots,
                ..attendance::Options::default()
            };
            json!({
                "session": head,
                "includeBots": include_bots,
                "participants": ReadService::<I, C, P>::attendance(&session, options)
                    .iter()
                    .map(row_json)
                    .collect::<Vec<_>>(),
            })
        }
        _ => {
            let files = service.files(&session, now_ms).await?;
            json!({
                "session": head,
                "files": files.iter().map(|f| file_json(service.bucket(), f)).collect::<Vec<_>>(),
            })
        }
    };
    Ok(respond::json(200, &body))
}

fn duration_secs(from: Option<i64>, to: Option<i64>) -> Option<i64> {
    Some(to?.saturating_sub(from?).max(0) / 1000)
}

fn summary_json(s: &SessionSummary) -> Value {
    json!({
        "id": s.id,
        "sessionId": s.session_id,
        "provider": s.provider,
        "room": s.room,
        "roomKey": s.room_key,
        "tenant": s.tenant,
        "startedAt": s.started_at_ms.map(iso),
        "endedAt": s.ended_at_ms.map(iso),
        "durationSecs": duration_secs(s.started_at_ms, s.ended_at_ms),
    })
}

fn participant_json(e: &StoredEvent) -> Value {
    match &e.participant {
        None => Value::Null,
        Some(p) => json!({
            "participantId": p.participant_id,
            "userId": p.user_id,
            "name": p.name,
            "moderator": p.moderator,
            "role": p.role,
        }),
    }
}

fn entry_json(entry: &Entry) -> Value {
    let e = &entry.event;
    json!({
        "key": e.key,
        "type": e.event_type,
        "provider": e.provider,
        "at": iso(e.at_ms),
        "receivedAt": iso(e.received_at_ms),
        "presence": e.presence.map(|p| p.as_str()),
        "participant": participant_json(e),
        "files": e.jobs.iter().map(|j| json!({"jobId": j.id, "kind": j.kind})).collect::<Vec<_>>(),
        "duplicateOf": entry.duplicate_of,
        "conflictOf": e.conflict_of,
        "dataError": e.data_error,
        "linkError": e.link_error,
    })
}

fn row_json(r: &Row) -> Value {
    json!({
        "identity": r.identity,
        "name": r.name,
        "moderator": r.moderator,
        "role": r.role,
        "firstJoin": iso(r.first_join_ms),
        "lastLeave": r.last_leave_ms.map(iso),
        "totalSecs": r.total_secs,
        "lobbySecs": r.lobby_secs,
        "intervals": r.intervals.iter().map(|i| json!({
            "from": iso(i.from_ms),
            "to": i.to_ms.map(iso),
            "inferredStart": i.inferred_start,
            "inferredEnd": i.inferred_end,
        })).collect::<Vec<_>>(),
    })
}

fn file_json(bucket: &str, f: &FileEntry) -> Value {
    let copy = f.copy.as_ref();
    json!({
        "jobId": f.job.as_ref().map(|j| &j.id),
        "kind": f.job.as_ref().and_then(|j| j.kind.as_ref()),
        "eventKey": f.event_key,
        "eventType": f.event_type,
        "at": iso(f.at_ms),
        "state": f.state,
        "permanent": copy.map(|c| c.permanent && c.state == "failed"),
        "reason": copy.and_then(|c| c.reason.as_ref()).or(f.link_error.as_ref()),
        "bytes": copy.and_then(|c| c.bytes),
        "sha256": copy.and_then(|c| c.sha256.as_ref()),
        "objects": copy.and_then(|c| c.objects),
        "attempts": copy.and_then(|c| c.attempts),
        "copiedAt": copy.and_then(|c| c.completed_at_ms).map(iso),
        "s3": copy
            .and_then(|c| c.object_key.as_ref())
            .filter(|_| f.state == "copied")
            .map(|key| json!({"bucket": bucket, "key": key})),
        "download": f.download.as_ref().map(|d| json!({"url": d.url, "expiresAt": iso(d.expires_at_ms)})),
    })
}
