//! What every backend shares about the team analysis cache (`POST /v1/analyses/lookup`,
//! `POST /v1/analyses`): the policy that bounds it, how an entry is charged against a
//! tenant's budget, and the last-use clock that orders eviction. Entries are opaque bytes
//! addressed by (tenant, analysis key, content hash); the backends keep them (`embedded`:
//! `analyses.db`, `redis`: one slot per tenant) and evict in bounded batches on the write path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// blake3 of a file's bytes: the address of its analysis within a tenant and analysis key.
pub type ContentHash = [u8; 32];

/// Entries to store: each file's content hash and its (decoded, opaque) entry.
pub type AnalysisEntries = Vec<(ContentHash, Vec<u8>)>;

/// How the analysis cache is bounded; the server's options (`--analysis-cache-mib`,
/// `--analysis-cache-ttl`), passed with every call so that one backend can serve several
/// policies (the conformance suite runs tiny budgets and short TTLs on a shared cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalysisPolicy {
    /// What one tenant's entries may be charged in all ([`charged_bytes`]); 0 turns the cache
    /// off (the HTTP layer then answers without asking the store).
    pub budget_bytes: u64,
    /// An entry neither looked up nor uploaded for this long is a miss and is removed.
    pub ttl: Duration,
}

/// Default per-tenant budget: 1 GiB.
pub const DEFAULT_BUDGET_BYTES: u64 = 1 << 30;
/// Default TTL: 30 days since last use.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 86_400);

impl Default for AnalysisPolicy {
    fn default() -> AnalysisPolicy {
        AnalysisPolicy { budget_bytes: DEFAULT_BUDGET_BYTES, ttl: DEFAULT_TTL }
    }
}

impl AnalysisPolicy {
    pub fn enabled(&self) -> bool {
        self.budget_bytes > 0
    }

    pub fn ttl_micros(&self) -> u64 {
        u64::try_from(self.ttl.as_micros()).unwrap_or(u64::MAX)
    }
}

/// Bytes charged per entry on top of its own: the bookkeeping every backend keeps per entry
/// (a row and two index entries in SQLite; in Redis a key, a sorted-set member and a size
/// field: 591 bytes measured with `MEMORY USAGE` over 1,000 entries, see docs/scaling.md).
/// Without it a flood of tiny entries could hold far more memory than the budget says.
pub const ENTRY_OVERHEAD_BYTES: u64 = 600;

/// What one entry of `entry_len` bytes costs its tenant's budget.
pub fn charged_bytes(entry_len: usize) -> u64 {
    entry_len as u64 + ENTRY_OVERHEAD_BYTES
}

/// Entries evicted (or expired entries removed) per step: each step is one SQLite transaction
/// or one Lua script call, so a large backlog never blocks a shard or a Redis master for long.
pub const EVICT_BATCH: usize = 256;

/// Entry bytes written per SQLite transaction or Redis script call of an upload (at least one
/// entry each): an upload of hundreds of megabytes never holds the writer, or a master, for
/// more than one such step.
pub const STORE_STEP_BYTES: usize = 4 << 20;

/// Hashes read per backend step of a lookup (one SQLite read or one Redis script call); the
/// HTTP layer streams the hits of each step before reading the next.
pub const LOOKUP_STEP: usize = 16;

/// A last-use clock in microseconds since the Unix epoch that never gives the same value
/// twice and never goes back: eviction orders entries by last use, and two uses within one
/// clock tick (a lookup right after an upload) must still be ordered.
#[derive(Debug, Default)]
pub struct UseClock {
    last: AtomicU64,
}

impl UseClock {
    /// A clock that continues after `last` (the newest use already stored).
    pub fn after(last: u64) -> UseClock {
        UseClock { last: AtomicU64::new(last) }
    }

    pub fn tick(&self) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_micros() as u64).unwrap_or(0);
        let mut previous = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(previous + 1);
            match self.last.compare_exchange_weak(previous, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(actual) => previous = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_use_clock_never_repeats_or_goes_back() {
        let far_ahead = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_micros() as u64 + 10_000_000;
        let clock = UseClock::after(far_ahead);
        let first = clock.tick();
        let second = clock.tick();
        assert_eq!((first, second), (far_ahead + 1, far_ahead + 2));
        let fresh = UseClock::default();
        let ticks: Vec<u64> = (0..1000).map(|_| fresh.tick()).collect();
        assert!(ticks.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
