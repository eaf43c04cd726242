//! Deleting a repository from a tenant's index, on any backend, through the path delta
//! removals already take: list some of its keys ([`Store::repo_keys`]), remove them as one
//! removal batch (the caller's `apply`, which ends in [`Store::apply_batch`]), and again until
//! none is left; then drop the repository's batch-id records
//! ([`Store::forget_repo_batches`]). So everything a removal takes away with a unit (band and
//! group entries, pattern counts, family links, the repository set) goes the same tested way,
//! each step is one bounded batch however large the repository is, and every step is as
//! durable as a delta batch. An interrupted deletion leaves a smaller repository; running it
//! again finishes it. Pattern names stay: they belong to the tenant and the pattern, not to a
//! repository, and other repositories (or a later push) may hold the pattern.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use periodic_wire::{DeltaAck, DeltaBatch};

use crate::store::{Store, StoreError};

/// Distinguishes the removal batches of deletions started in the same nanosecond.
static DELETIONS: AtomicU64 = AtomicU64::new(0);

/// Removes every unit of `repo` in `tenant`, `chunk_units` keys per batch applied by `apply`,
/// then forgets the repository's batch ids (also when it held no unit, so a deletion cut
/// off after its last batch is completed by the next). Returns how many units were removed,
/// also when a step failed (those stay removed), with the outcome.
pub async fn delete_repository<F, Fut, E>(store: &dyn Store, tenant: &str, repo: &str, chunk_units: usize, mut apply: F) -> (u64, Result<(), E>)
where
    F: FnMut(DeltaBatch) -> Fut,
    Fut: Future<Output = Result<DeltaAck, E>>,
    E: From<StoreError>,
{
    // Batch ids of their own, so that no client's batch id (recorded until the end) can make a
    // removal batch a "duplicate" that removes nothing.
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    let deletion = DELETIONS.fetch_add(1, Ordering::Relaxed);
    let mut removed = 0u64;
    for step in 0u64.. {
        let keys = match store.repo_keys(tenant, repo, chunk_units.max(1)).await {
            Ok(keys) if keys.is_empty() => break,
            Ok(keys) => keys,
            Err(error) => return (removed, Err(error.into())),
        };
        let listed = keys.len();
        let ack = match apply(DeltaBatch { batch_id: format!("repository-delete.{started}.{deletion}.{step}"), upserts: Vec::new(), removals: keys }).await {
            Ok(ack) => ack,
            Err(error) => return (removed, Err(error)),
        };
        // A listed key that cannot be removed would make this loop endless.
        if ack.duplicate || ack.removed == 0 {
            return (removed, Err(StoreError::Corrupt(format!("{listed} keys listed in a repository, none removed by the batch removing them")).into()));
        }
        removed += u64::from(ack.removed);
    }
    (removed, store.forget_repo_batches(tenant, repo).await.map(|_| ()).map_err(E::from))
}
