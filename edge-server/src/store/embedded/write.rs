//! Applying one shard's part of a delta batch: row ids resolved against the index, one SQLite
//! transaction, then the index update. Split from the store so that the write
//! path, where ingest time goes, reads in one place.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::Ordering;

use periodic_wire::UnitUpsert;

use super::db::{self, UnitWrite};
use super::index::{self, CandidateIndex, MemUnit, UnitText, lane_keys_of};
use super::{Shard, poisoned};
use crate::store::StoreError;

/// The part of a batch that lands in one shard.
#[derive(Default)]
pub(super) struct ShardWork {
    /// (identity, interned language, unit), in batch order.
    pub upserts: Vec<(u128, u32, UnitUpsert)>,
    pub removals: Vec<u128>,
}

/// Applies one shard's part of a batch: SQLite first (one transaction, committed before
/// anything else sees it), then the in-memory index. Returns how many units were removed.
///
/// The caller holds the repository's write stripe, so the units of this batch (their
/// identities include the repository) cannot change between the row id lookups here and
/// the index update at the end.
pub(super) fn apply_to_shard(shard: &Shard, index: &RwLock<CandidateIndex>, tenant: &str, repo: &str, tenant_id: u32, repo_id: u32, work: ShardWork) -> Result<u32, StoreError> {
    // A unit the index knows keeps its row; a new one is appended with a fresh id. `pending`
    // tracks units this batch already placed (or removed), in case a key occurs twice.
    let mut pending: HashMap<u128, Option<i64>> = HashMap::new();
    let mut row_ids = Vec::with_capacity(work.upserts.len());
    let mut inserts = Vec::new();
    let mut rewrites = Vec::new();
    let mut deletes = Vec::new();
    {
        let index = index.read().map_err(poisoned)?;
        let row_of = |pending: &HashMap<u128, Option<i64>>, identity: u128| match pending.get(&identity) {
            Some(placed) => *placed,
            None => index.unit_by_identity(identity).map(|unit| unit.row_id),
        };
        for (identity, _, upsert) in &work.upserts {
            let row_id = match row_of(&pending, *identity) {
                Some(row_id) => {
                    rewrites.push(UnitWrite { row_id, unit: upsert });
                    row_id
                }
                None => {
                    let row_id = shard.next_row_id.fetch_add(1, Ordering::Relaxed);
                    inserts.push(UnitWrite { row_id, unit: upsert });
                    pending.insert(*identity, Some(row_id));
                    row_id
                }
            };
            row_ids.push(row_id);
        }
        for identity in &work.removals {
            if let Some(row_id) = row_of(&pending, *identity) {
                deletes.push(row_id);
            }
            pending.insert(*identity, None);
        }
    }
    {
        let mut connection = shard.connection.lock().map_err(poisoned)?;
        if let Err(error) = db::write_units(&mut connection, tenant, repo, &inserts, &rewrites, &deletes) {
            // A commit that reports a failure can still have reached the WAL (a failed fsync
            // after the frames were written). Rows appended under fresh ids would then be
            // copies the index does not know, which a later removal would not delete; so
            // they are deleted now, best effort (the retried batch appends them again).
            let appended: Vec<i64> = inserts.iter().map(|write| write.row_id).collect();
            if !appended.is_empty()
                && let Err(cleanup) = db::delete_units(&mut connection, &appended)
            {
                tracing::warn!(%cleanup, "could not delete the rows of a failed write");
            }
            return Err(error);
        }
    }
    drop((inserts, rewrites));
    // Committed: now the index may show it. Lane keys are computed before the write lock.
    let prepared: Vec<(u128, MemUnit, periodic_wire::Sketch, [u64; index::LANES])> = work
        .upserts
        .into_iter()
        .zip(row_ids)
        .map(|((identity, language, upsert), row_id)| {
            let unit = MemUnit {
                row_id,
                tenant: tenant_id,
                repo: repo_id,
                language,
                text: UnitText::new(&upsert.key, upsert.location.as_ref()),
                t2_hash: upsert.t2_hash,
                tokens: upsert.tokens,
                lines: upsert.lines,
                nesting: upsert.nesting,
                family: upsert.family,
            };
            let lanes = lane_keys_of(tenant_id, upsert.t2_hash, &upsert.sketch);
            (identity, unit, upsert.sketch, lanes)
        })
        .collect();
    let mut replaced = Vec::new();
    let mut removed = 0;
    {
        let mut index = index.write().map_err(poisoned)?;
        for (identity, unit, sketch, lanes) in prepared {
            replaced.extend(index.upsert_with_lanes(identity, unit, sketch, lanes));
        }
        for identity in work.removals {
            removed += u32::from(index.remove(identity));
        }
    }
    // Freed after the lock is released.
    drop(replaced);
    Ok(removed)
}
