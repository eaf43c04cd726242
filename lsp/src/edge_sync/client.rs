//! The HTTP side of the sync (reqwest with rustls): sending one delta batch, asking one query,
//! reading and writing the team's pattern names, and sorting every failure into what the
//! client protocol (docs/edge.md) says to do with it.

use std::time::Duration;

use periodic_wire::v1::{DeltaAck, DeltaBatch, ErrorBody, PatternDetail, PatternList, PatternUpdate, QueryRequest, QueryResponse};
use reqwest::StatusCode;

/// What went wrong, by what to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// Connection failure, timeout, 5xx or 429: retry the same request later, not before
    /// `retry_after` when the server said so.
    Retry { message: String, retry_after: Option<Duration> },
    /// 413: the batch must be split.
    TooLarge { message: String },
    /// 400 or another client error: a bug on this side; retrying the same body cannot help.
    Rejected { message: String },
    /// 401 or 403: stop until the configuration changes.
    Unauthorized { message: String },
}

impl SendError {
    pub fn message(&self) -> &str {
        match self {
            SendError::Retry { message, .. } | SendError::TooLarge { message } | SendError::Rejected { message } | SendError::Unauthorized { message } => message,
        }
    }

    pub fn is_connection_problem(&self) -> bool {
        matches!(self, SendError::Retry { .. })
    }

    /// The token is valid but may not do this (403: a read-only token asked to write).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, SendError::Unauthorized { message } if message.starts_with("403"))
    }
}

#[derive(Clone)]
pub struct EdgeClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl EdgeClient {
    pub fn new(base: &str, token: Option<String>) -> Result<EdgeClient, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("periodic/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
        Ok(EdgeClient { http, base: base.trim_end_matches('/').to_string(), token })
    }

    fn request(&self, method: reqwest::Method, path: &str, timeout: Duration) -> reqwest::RequestBuilder {
        let mut builder = self.http.request(method, format!("{}{path}", self.base)).timeout(timeout);
        if let Some(token) = &self.token {
            builder = builder.bearer_auth(token);
        }
        builder
    }

    /// `POST /v1/repos/{repo}/deltas`. Only an acknowledgement of this very batch id counts.
    pub async fn send_batch(&self, repo: &str, batch: &DeltaBatch, timeout: Duration) -> Result<DeltaAck, SendError> {
        let response = self
            .request(reqwest::Method::POST, &format!("/v1/repos/{repo}/deltas"), timeout)
            .json(batch)
            .send()
            .await
            .map_err(transport_error)?;
        let ack: DeltaAck = read_answer(response).await?;
        if ack.batch_id != batch.batch_id {
            return Err(SendError::Retry { message: format!("the edge acknowledged batch {} instead of {}", ack.batch_id, batch.batch_id), retry_after: None });
        }
        Ok(ack)
    }

    /// `POST /v1/query`.
    pub async fn query(&self, request: &QueryRequest, timeout: Duration) -> Result<QueryResponse, SendError> {
        let response = self.request(reqwest::Method::POST, "/v1/query", timeout).json(request).send().await.map_err(transport_error)?;
        read_answer(response).await
    }
}

impl EdgeClient {
    /// `GET /v1/patterns?named=true&top=N`: the team's named patterns, newest name first.
    pub async fn named_patterns(&self, top: usize, timeout: Duration) -> Result<PatternList, SendError> {
        let response = self.request(reqwest::Method::GET, &format!("/v1/patterns?named=true&top={top}"), timeout).send().await.map_err(transport_error)?;
        read_answer(response).await
    }

    /// `PUT /v1/patterns/{id}`: sets the team's name and note of a pattern.
    pub async fn put_pattern(&self, id: &str, update: &PatternUpdate, timeout: Duration) -> Result<PatternDetail, SendError> {
        let response = self.request(reqwest::Method::PUT, &format!("/v1/patterns/{id}"), timeout).json(update).send().await.map_err(transport_error)?;
        read_answer(response).await
    }
}

impl EdgeClient {
    /// A POST whose answer is read by the caller: `Ok` only for a success status.
    pub(super) async fn post_json<T: serde::Serialize>(&self, path: &str, body: &T, timeout: Duration) -> Result<reqwest::Response, SendError> {
        let response = self.request(reqwest::Method::POST, path, timeout).json(body).send().await.map_err(transport_error)?;
        if response.status().is_success() { Ok(response) } else { Err(failure_of(response).await) }
    }
}

pub(super) fn transport_error(error: reqwest::Error) -> SendError {
    let kind = if error.is_timeout() { "timed out" } else if error.is_connect() { "cannot connect" } else { "request failed" };
    // reqwest's Display omits the cause ("error sending request"); the source says why.
    let cause = std::error::Error::source(&error).map(|source| format!(": {source}")).unwrap_or_default();
    SendError::Retry { message: format!("{kind}: {error}{cause}"), retry_after: None }
}

pub(super) async fn read_answer<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, SendError> {
    let status = response.status();
    if status.is_success() {
        let body = response.bytes().await.map_err(transport_error)?;
        return serde_json::from_slice(&body)
            .map_err(|error| SendError::Retry { message: format!("unreadable answer from the edge ({status}): {error}"), retry_after: None });
    }
    Err(failure_of(response).await)
}

/// What an unsuccessful answer means, by what to do next.
async fn failure_of(response: reqwest::Response) -> SendError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(error) => return transport_error(error),
    };
    let detail = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(error) => format!("{status} {}: {}", error.error, error.message),
        Err(_) => format!("{status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])),
    };
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => SendError::Unauthorized { message: detail },
        StatusCode::PAYLOAD_TOO_LARGE => SendError::TooLarge { message: detail },
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => SendError::Retry { message: detail, retry_after },
        status if status.is_server_error() => SendError::Retry { message: detail, retry_after },
        _ => SendError::Rejected { message: detail },
    }
}
