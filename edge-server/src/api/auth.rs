//! Bearer-token authentication and the per-token rate limit, applied once to every `/v1`
//! route except the OpenAPI document. The caller (tenant and role) is put in the request's
//! extensions for the handlers; handlers check the role they need with [`require`].

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::tokens::{Caller, Refusal, Role, Tier, TokenTable};

/// One GCRA bucket per token (keyed by the token's hash).
pub type TokenRateLimiter = DefaultKeyedRateLimiter<[u8; 32]>;

pub fn rate_limiter(per_second: u32, burst: u32) -> TokenRateLimiter {
    let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(per_second);
    RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
}

/// The client's socket address, put in a request's extensions next to its [`Caller`] so that
/// the audit log can say where an action came from (`None` when the server was not started
/// with connection info, as in-process routers are not).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<SocketAddr>);

pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let caller = caller_of(&request, &state.tokens, &state.limiter, Tier::Team)?;
    let remote = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    request.extensions_mut().insert(caller);
    request.extensions_mut().insert(ClientAddress(remote));
    Ok(next.run(request).await)
}

/// The caller behind a request's bearer token, for a server of `tier`: 401 without a token,
/// with an unknown one or with a token of the other tier; 429 beyond the token's rate.
pub fn caller_of(request: &Request, tokens: &RwLock<Arc<TokenTable>>, limiter: &TokenRateLimiter, tier: Tier) -> Result<Caller, ApiError> {
    let header_value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
    let text = header_value.to_str().map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let token = match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(ApiError::unauthorized("Authorization must use the Bearer scheme")),
    };
    let table = tokens.read().map_err(|_| ApiError::unauthorized("token table unavailable"))?.clone();
    let caller = table.authenticate(token, crate::clock::now_unix()).map_err(|refusal| match refusal {
        Refusal::Unknown => ApiError::unauthorized("unknown or revoked token"),
        Refusal::Expired { token_id, expires_unix } => ApiError::unauthorized(format!(
            "token {token_id} expired at {}; ask for a new one (`periodic-edge token create`)",
            crate::clock::format_rfc3339(expires_unix)
        )),
    })?;
    if caller.role.tier() != tier {
        let message = match tier {
            Tier::Team => "this is a cloud-tier token; a team edge accepts only team tokens",
            Tier::Cloud => "this is a team edge token; the cloud tier accepts only cloud tokens (role cloud-read or cloud-push)",
        };
        return Err(ApiError::unauthorized(message));
    }
    if let Err(not_until) = limiter.check_key(&caller.token_hash) {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        metrics::counter!("edge_rate_limited_total", "tenant" => caller.tenant.clone()).increment(1);
        let mut error = ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests for this token");
        error.retry_after_seconds = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        return Err(error);
    }
    Ok(caller)
}

/// Fails with 403 unless the caller's role includes `needed`.
pub fn require(caller: &Caller, needed: Role) -> Result<(), ApiError> {
    if caller.role.grants(needed) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("this token has role `{}`; `{}` is needed", caller.role.as_str(), needed.as_str())))
    }
}
