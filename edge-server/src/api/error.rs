//! The one place where failures become HTTP responses: [`ApiError`] (status, machine-readable
//! kind, message naming the offending field) and the JSON body extractor that turns parse
//! errors into 400s with the path of the bad field (`upserts[3].sketch`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use periodic_wire::ErrorBody;
use serde::de::DeserializeOwned;

use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub retry_after_seconds: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, kind, message: message.into(), retry_after_seconds: None }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }
}

/// Seconds a client is told to wait when the store is unavailable or degraded: about the time
/// a Redis Cluster needs to fail a master over.
pub const STORE_RETRY_AFTER_SECONDS: u64 = 2;

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        // Details go to the log (see store::metered); the client learns what it can do.
        if error.is_transient() {
            tracing::debug!(%error, "storage unavailable, answered with 503");
            let message = match error {
                StoreError::Unconfirmed(_) => "storage cannot confirm writes as durably as configured right now; nothing was acknowledged, retry later",
                _ => "storage is unavailable right now; the request was not completed, retry later",
            };
            let mut answer = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", message);
            answer.retry_after_seconds = Some(STORE_RETRY_AFTER_SECONDS);
            return answer;
        }
        tracing::debug!(%error, "storage error answered with 500");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", "storage failed; the request was not completed, retry later")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: self.kind.to_string(), message: self.message })).into_response();
        if let Some(seconds) = self.retry_after_seconds
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Unknown paths answer in the same JSON shape as every other error.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// A JSON request body whose parse errors name the offending field.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large("request body exceeds the size limit")
            } else {
                ApiError::new(status, "bad_request", rejection.body_text())
            }
        })?;
        // Every v1 request body is an object. serde's derived structs would also accept the
        // positional array form (`[null, null]`), which the API does not document.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad_request("body: expected a JSON object"));
        }
        // Parse untracked first: tracking the path of every value costs a good part of the
        // parse of a delta batch, and only a failed parse needs it. The second, tracked parse
        // of the same bytes fails at the same place and names the field.
        if let Ok(value) = serde_json::from_slice::<T>(&bytes) {
            return Ok(JsonBody(value));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if path == "." || path.is_empty() {
                ApiError::bad_request(format!("body: {inner}"))
            } else {
                ApiError::bad_request(format!("field `{path}`: {inner}"))
            }
        })?;
        deserializer.end().map_err(|error| ApiError::bad_request(format!("body: {error}")))?;
        Ok(JsonBody(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(error: StoreError) -> (StatusCode, &'static str, Option<u64>) {
        let answer = ApiError::from(error);
        (answer.status, answer.kind, answer.retry_after_seconds)
    }

    #[test]
    fn an_unavailable_or_degraded_store_is_a_503_with_retry_after_and_only_faults_are_500s() {
        let unavailable = (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", Some(STORE_RETRY_AFTER_SECONDS));
        assert_eq!(answer(StoreError::Unavailable("redis: timed out".into())), unavailable);
        assert_eq!(answer(StoreError::Unconfirmed("confirmed on 0 of 1 replicas".into())), unavailable);
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
        assert_eq!(answer(StoreError::Sqlite(busy)), unavailable);
        let full = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None);
        assert_eq!(answer(StoreError::Sqlite(full)), unavailable);

        let fault = (StatusCode::INTERNAL_SERVER_ERROR, "storage_error", None);
        assert_eq!(answer(StoreError::Corrupt("a stored unit record is truncated".into())), fault);
        assert_eq!(answer(StoreError::Task("shard loader panicked".into())), fault);
        let constraint = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT), None);
        assert_eq!(answer(StoreError::Sqlite(constraint)), fault);
    }
}
