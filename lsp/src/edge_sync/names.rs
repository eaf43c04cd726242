//! Team names of patterns: what the edge says a pattern is called, who named it and when;
//! how that combines with the repository's own names; and the command line's one-off read.
//!
//! The rule is the same everywhere: a name in `.periodic.toml` is the repository's own and
//! always wins; otherwise the most recent of the name given in this workspace (stored in
//! the index with its time) and the team's name (with the time the edge recorded) wins, so
//! the last writer wins and the hover says who that was.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use periodic_core::Config;
use periodic_core::pattern::PatternLabel;
use periodic_wire::v1::PatternSummary;

use super::EdgeSettings;
use super::client::EdgeClient;

/// Most named patterns read in one request (the edge's limit for `top`).
pub const MAX_NAMED: usize = 1000;

/// A pattern's name as the team edge holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamName {
    pub name: Option<String>,
    pub note: Option<String>,
    /// Id of the token that set it.
    pub named_by: Option<String>,
    /// Seconds since the Unix epoch, by the edge's clock.
    pub named_at: Option<u64>,
    /// When it was read from the edge, seconds since the Unix epoch.
    pub fetched_at: u64,
}

/// Team names by pattern id (`P-` and 16 hex digits).
pub type TeamNames = HashMap<String, TeamName>;

impl TeamName {
    pub fn of_summary(summary: &PatternSummary, fetched_at: u64) -> TeamName {
        TeamName { name: summary.name.clone(), note: summary.note.clone(), named_by: summary.named_by.clone(), named_at: summary.named_at, fetched_at }
    }

    /// "`token-id`, 2026-12-06 22:50 UTC": who set the name and when, for a hover.
    pub fn attribution(&self) -> String {
        let who = self.named_by.as_deref().map_or_else(|| "a teammate".to_string(), |by| format!("`{by}`"));
        match self.named_at {
            Some(at) => format!("{who}, {}", format_utc(at)),
            None => who,
        }
    }

    /// Whether this was read longer ago than `ttl` (a restart without the edge).
    pub fn is_stale(&self, ttl: Duration, now: u64) -> bool {
        now.saturating_sub(self.fetched_at) > ttl.as_secs()
    }
}

/// Why a name could not be shared with the team.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("team sync is off")]
    Disabled,
    #[error("the edge token may not write ({0})")]
    ReadOnly(String),
    #[error("{0}")]
    Failed(String),
}

/// Seconds since the Unix epoch now.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

/// `YYYY-MM-DD HH:MM UTC`.
pub fn format_utc(seconds: u64) -> String {
    let of_day = seconds % 86_400;
    let (year, month, day) = periodic_wire::time::civil_from_days((seconds / 86_400) as i64);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", of_day / 3600, of_day % 3600 / 60)
}

/// The names to show: `own` (the index's and `.periodic.toml`'s, as the engine loads them),
/// with a team name put over an own name that is not newer (or has no time: given before
/// times were kept), never over a name from `config`. Times are whole seconds: a tie goes
/// to the team, whose name then is the one this workspace just shared or a later one.
pub fn merge_labels(own: &BTreeMap<String, PatternLabel>, config: &Config, times: &BTreeMap<String, u64>, team: &TeamNames) -> BTreeMap<String, PatternLabel> {
    let mut labels = own.clone();
    for (id, team_name) in team {
        if team_name.name.is_none() || config.patterns.contains_key(id) {
            continue;
        }
        let local_is_newer = own.get(id).is_some_and(|label| label.name.is_some()) && times.get(id).is_some_and(|&local| local > team_name.named_at.unwrap_or(0));
        if !local_is_newer {
            labels.insert(id.clone(), PatternLabel { name: team_name.name.clone(), note: team_name.note.clone() });
        }
    }
    labels
}

/// For the command line: the team's names when `[edge]` turns sync on, read once with a
/// short limit. `Ok(None)` when no edge is configured; `Err` says why the edge did not answer.
pub fn fetch_once(root: &Path, config: &Config, timeout: Duration) -> Result<Option<TeamNames>, String> {
    let settings = EdgeSettings::from_config(config, root).map_err(|error| error.to_string())?;
    let Some(url) = settings.url.clone().filter(|_| settings.enabled()) else { return Ok(None) };
    let client = EdgeClient::new(&url, settings.token.clone())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|error| format!("cannot start a runtime: {error}"))?;
    let list = runtime.block_on(client.named_patterns(MAX_NAMED, timeout)).map_err(|error| error.message().to_string())?;
    let now = now_unix();
    Ok(Some(list.patterns.iter().map(|summary| (summary.id.clone(), TeamName::of_summary(summary, now))).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(name: &str, at: u64) -> TeamName {
        TeamName { name: Some(name.into()), note: None, named_by: Some("tok".into()), named_at: Some(at), fetched_at: at }
    }

    fn label(name: &str) -> PatternLabel {
        PatternLabel { name: Some(name.into()), note: None }
    }

    #[test]
    fn the_last_writer_wins_and_the_configuration_always_does() {
        let mut config = Config::default();
        config.patterns.insert("P-3".into(), Default::default());
        let own: BTreeMap<String, PatternLabel> = [("P-1", "mine"), ("P-2", "mine too"), ("P-3", "configured"), ("P-4", "untimed")].into_iter().map(|(id, name)| (id.to_string(), label(name))).collect();
        let times: BTreeMap<String, u64> = [("P-1".to_string(), 200), ("P-2".to_string(), 50)].into_iter().collect();
        let names: TeamNames = [("P-1", "team", 100), ("P-2", "team", 100), ("P-3", "team", 900), ("P-4", "team", 1), ("P-5", "new", 1)]
            .into_iter()
            .map(|(id, name, at)| (id.to_string(), team(name, at)))
            .collect();
        let merged = merge_labels(&own, &config, &times, &names);
        let shown = |id: &str| merged.get(id).and_then(|label| label.name.clone());
        assert_eq!(shown("P-1").as_deref(), Some("mine"), "named here after the team");
        assert_eq!(shown("P-2").as_deref(), Some("team"), "named by the team after here");
        assert_eq!(shown("P-3").as_deref(), Some("configured"), ".periodic.toml wins");
        assert_eq!(shown("P-4").as_deref(), Some("team"), "an untimed local name is older than any team name");
        assert_eq!(shown("P-5").as_deref(), Some("new"));
    }

    #[test]
    fn times_are_written_in_utc() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00 UTC");
    }
}
