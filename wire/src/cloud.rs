//! The wire format between team edges and the organisation-wide cloud tier
//! (`periodic-edge --role cloud`, served under `/v1/...`): the de-identified statistics a team
//! edge pushes, and the "how common is this fingerprint across the organisation?" question
//! it asks back.
//!
//! Nothing here can carry a path, a unit or repository name, or code: a statistic is an exact
//! structural hash, a team pseudonym (hex) and counts. The cloud validates the pseudonym's
//! spelling, so a name cannot be smuggled in its place.

use serde::{Deserialize, Serialize};

use crate::v1::{Organisation, T2Hash};

/// Length of a team pseudonym in lowercase hex characters (128 bits).
pub const TEAM_PSEUDONYM_LEN: usize = 32;
/// Most entries in one statistics batch.
pub const MAX_STATISTICS_ENTRIES: usize = 5000;
/// Most fingerprints in one commonness question.
pub const MAX_COMMONNESS_FINGERPRINTS: usize = 1000;

/// Whether `text` is spelled like a team pseudonym: exactly [`TEAM_PSEUDONYM_LEN`] lowercase
/// hex characters.
pub fn is_team_pseudonym(text: &str) -> bool {
    text.len() == TEAM_PSEUDONYM_LEN && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// One team's current counts for one exact structural hash. The cloud keeps, per (pushing
/// edge, team, fingerprint), the entry with the highest `version`: counts replace earlier
/// counts, they are never added, so a retried or reordered entry cannot double-count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamFingerprintCount {
    /// The team's pseudonym ([`TEAM_PSEUDONYM_LEN`] lowercase hex characters).
    pub team: String,
    pub fingerprint: T2Hash,
    /// Units of the team with this hash; 0 when the team no longer has any.
    pub units: u64,
    /// Repositories of the team containing at least one such unit.
    pub repos: u64,
    /// Chosen by the edge, increasing for each new count of the same (team, fingerprint).
    pub version: u64,
}

/// Body of `POST /v1/statistics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatisticsBatch {
    /// Chosen by the edge, unique per pushing edge; a retried batch is applied once.
    pub batch_id: String,
    pub entries: Vec<TeamFingerprintCount>,
}

/// Answer to a statistics batch. `applied` entries replaced what the cloud held; `stale`
/// entries were older than what it held and were ignored. For a duplicate batch id these are
/// the numbers of the first application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatisticsAck {
    pub batch_id: String,
    pub duplicate: bool,
    pub applied: u32,
    pub stale: u32,
}

/// Body of `POST /v1/commonness`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonnessRequest {
    pub fingerprints: Vec<T2Hash>,
}

/// Organisation-wide counts of one fingerprint (all zero when no team has it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerprintCommonness {
    pub fingerprint: T2Hash,
    pub organisation: Organisation,
}

/// Answer to `POST /v1/commonness`, one entry per asked fingerprint in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonnessResponse {
    pub results: Vec<FingerprintCommonness>,
}

/// Answer to `GET /v1/summary`: what the cloud holds, for monitoring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudSummary {
    /// Fingerprints held by at least one team.
    pub fingerprints: u64,
    /// Teams with at least one fingerprint.
    pub teams: u64,
    /// Edges (cloud-token tenants) that pushed statistics.
    pub sources: u64,
    /// Batch ids remembered for de-duplication.
    pub batches: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_pseudonyms_are_hex_only() {
        assert!(is_team_pseudonym("0123456789abcdef0123456789abcdef"));
        assert!(!is_team_pseudonym("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_team_pseudonym("payments"));
        assert!(!is_team_pseudonym("0123456789abcdef0123456789abcde"));
    }

    #[test]
    fn statistics_reject_unknown_fields() {
        let body = r#"{"batch_id":"b","entries":[{"team":"0123456789abcdef0123456789abcdef","fingerprint":"00000000000000ff","units":1,"repos":1,"version":1,"path":"src/a.rs"}]}"#;
        let error = serde_json::from_str::<StatisticsBatch>(body).expect_err("unknown field");
        assert!(error.to_string().contains("path"), "{error}");
    }
}
