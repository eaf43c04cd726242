//! The Redis Cluster backend's analysis cache. A tenant's cache lives in one slot (hash tag
//! `{<t>.a}`, see `layout::Keys::analysis_*`): one string key per entry with a TTL
//! (`PEXPIRE`, refreshed by every hit and upload), a sorted set of last uses, a hash of each
//! entry's charged size and a small hash with the tenant's charged total and its last-use
//! clock. Two Lua scripts keep them consistent: `analysis_lookup.lua` reads a step of entries
//! (up to [`LOOKUP_STEP`] keys and about [`STORE_STEP_BYTES`] of reply) and refreshes the hits; `analysis_store.lua` writes a step of entries, drops the
//! bookkeeping of expired ones and evicts the least recently used while the tenant is over
//! its budget, at most [`EVICT_BATCH`] removals per call (the caller calls again, without
//! entries, while the script says the tenant is still over).
//!
//! Durability: uploads do not `WAIT` for replicas. An acknowledged upload lost in a failover
//! costs some client one parse and one upload, and an upload is never retried for it; waiting
//! would put every cache write behind the replication round trip (and refuse uploads while a
//! shard has no replica) to protect data that can always be computed again.

use std::sync::LazyLock;

use super::{RedisStore, unavailable};
use crate::store::StoreError;
use crate::store::analyses::{AnalysisEntries, AnalysisPolicy, ContentHash, ENTRY_OVERHEAD_BYTES, EVICT_BATCH, LOOKUP_STEP, STORE_STEP_BYTES};
use crate::store::redis::layout::Keys;

static LOOKUP_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("analysis_lookup.lua")));
static STORE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("analysis_store.lua")));

/// Calls of the store script after an upload that only evict (no entries): bounds the work
/// one upload does for a tenant far over its budget (say, after the budget was lowered); the
/// next uploads continue.
const MAX_EVICTION_CALLS: usize = 64;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The sorted-set member (and key suffix) of an entry: 128 bits of blake3 of the analysis
/// key, so that keys stay short whatever the analysis key, and the content hash.
pub fn analysis_member(analysis: &str, hash: &ContentHash) -> String {
    let digest = blake3::hash(analysis.as_bytes());
    format!("{}:{}", hex(&digest.as_bytes()[..16]), hex(hash))
}

fn ttl_millis(policy: &AnalysisPolicy) -> u64 {
    u64::try_from(policy.ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    pub(super) async fn lookup_analyses(&self, tenant: &str, analysis: &str, hashes: &[ContentHash], policy: &AnalysisPolicy) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let keys = Keys::new(tenant);
        let mut found = Vec::with_capacity(hashes.len());
        let mut rest = hashes;
        while !rest.is_empty() {
            let step = &rest[..rest.len().min(LOOKUP_STEP)];
            let mut invocation = LOOKUP_SCRIPT.prepare_invoke();
            invocation.key(keys.analysis_lru()).key(keys.analysis_sizes()).key(keys.analysis_meta());
            let members: Vec<String> = step.iter().map(|hash| analysis_member(analysis, hash)).collect();
            for member in &members {
                invocation.key(keys.analysis_entry(member));
            }
            invocation.arg(ttl_millis(policy)).arg(STORE_STEP_BYTES);
            for member in &members {
                invocation.arg(member);
            }
            // The script reads keys until its reply holds STORE_STEP_BYTES (at least one key);
            // the keys it did not read are asked again.
            let values: Vec<Option<Vec<u8>>> = invocation.invoke_async(&mut self.conn()).await.map_err(unavailable)?;
            if values.is_empty() || values.len() > step.len() {
                return Err(StoreError::Corrupt(format!("the analysis lookup script answered {} values for {} hashes", values.len(), step.len())));
            }
            rest = &rest[values.len()..];
            found.extend(values);
        }
        Ok(found)
    }

    pub(super) async fn store_analysis_entries(&self, tenant: &str, analysis: &str, entries: AnalysisEntries, policy: &AnalysisPolicy) -> Result<u32, StoreError> {
        let keys = Keys::new(tenant);
        let mut stored = 0u32;
        // An upload of nothing still makes one call: it removes expired entries and evicts
        // down to the budget (which may have been lowered since the last upload).
        let mut over_budget = entries.is_empty();
        let mut rest = entries.as_slice();
        while !rest.is_empty() {
            let mut take = 0;
            let mut bytes = 0;
            for (_, entry) in rest {
                if take > 0 && bytes + entry.len() > STORE_STEP_BYTES {
                    break;
                }
                bytes += entry.len();
                take += 1;
            }
            let (step, after) = rest.split_at(take);
            rest = after;
            let (step_stored, over) = self.store_step(&keys, analysis, step, policy).await?;
            stored += step_stored;
            over_budget = over;
        }
        for _ in 0..MAX_EVICTION_CALLS {
            if !over_budget {
                break;
            }
            over_budget = self.store_step(&keys, analysis, &[], policy).await?.1;
        }
        Ok(stored)
    }

    /// One call of the store script: (entries stored or refreshed, still over budget).
    async fn store_step(&self, keys: &Keys, analysis: &str, step: &[(ContentHash, Vec<u8>)], policy: &AnalysisPolicy) -> Result<(u32, bool), StoreError> {
        let mut invocation = STORE_SCRIPT.prepare_invoke();
        invocation.key(keys.analysis_lru()).key(keys.analysis_sizes()).key(keys.analysis_meta());
        let members: Vec<String> = step.iter().map(|(hash, _)| analysis_member(analysis, hash)).collect();
        for member in &members {
            invocation.key(keys.analysis_entry(member));
        }
        invocation
            .arg(ttl_millis(policy))
            .arg(policy.ttl_micros())
            .arg(policy.budget_bytes)
            .arg(keys.analysis_entry(""))
            .arg(EVICT_BATCH)
            .arg(ENTRY_OVERHEAD_BYTES);
        for (member, (_, entry)) in members.iter().zip(step) {
            invocation.arg(member).arg(entry.as_slice());
        }
        let (stored, over): (u32, u32) = invocation.invoke_async(&mut self.conn()).await.map_err(unavailable)?;
        Ok((stored, over == 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_separate_analysis_keys_and_hashes() {
        let hash = [7u8; 32];
        let member = analysis_member("engine-3:settings-ab", &hash);
        assert_eq!(member.len(), 32 + 1 + 64);
        assert!(member.ends_with(&"07".repeat(32)));
        assert_ne!(member, analysis_member("engine-4:settings-ab", &hash));
        assert_ne!(member, analysis_member("engine-3:settings-ab", &[8u8; 32]));
    }
}
