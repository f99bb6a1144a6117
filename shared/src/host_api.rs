//! host-api, the API the host application's servers call: the read API (`GET /v1/sessions…`,
//! [`crate::read::http`]) and JaaS join tokens (`POST /v1/jaas/token`,
//! [`crate::providers::jaas::token::http`]). One set of caller tokens (the secret's
//! `readApi.tokens`) guards every route. The Lambda main and the local stack both serve
//! [`handle`], so the two cannot route differently.

use lambda_http::{Body, Request, Response};

use crate::providers::jaas::token::{SigningKey, http as token_http};
use crate::read::http::{self as read_http, ReadApi};
use crate::read::ports::{CopyStates, Presigner, RoomIndex, SessionIndex};
use crate::respond;

/// Every route host-api serves (the template declares each; the local stack registers each).
pub const ROUTES: [&str; 3] = [
    read_http::SESSIONS_ROUTE,
    read_http::SESSION_VIEW_ROUTE,
    token_http::ROUTE,
];

/// host-api's use cases.
#[derive(Debug)]
pub struct HostApi<I, C, P> {
    pub read: ReadApi<I, C, P>,
    /// The JaaS API key tokens are signed with; `None` if the deployment has none.
    pub jaas_key: Option<SigningKey>,
}

/// Handles one API Gateway request with the real clock.
pub async fn handle<I, C, P>(api: &HostApi<I, C, P>, request: Request) -> Response<Body>
where
    I: SessionIndex + RoomIndex,
    C: CopyStates,
    P: Presigner,
{
    if request.uri().path().trim_end_matches('/') == token_http::ROUTE {
        return token_http::answer(
            api.jaas_key.as_ref(),
            &api.read.tokens,
            request.method(),
            request.headers(),
            respond::body_bytes(request.body()),
            respond::now_ms() / 1000,
        );
    }
    read_http::handle(&api.read, request).await
}
