//! Progress of `periodic-edge migrate`, kept in the target cluster itself (one hash per
//! source directory, `pe:migrate:<source>`), so that a run after an interruption resumes where
//! the last one stopped, and a cluster that was emptied since forgets the progress with the
//! data. It is a hint for speed only: what a run sends is upserts by key, so resending units
//! already there (a crash between a batch and its marker) changes nothing.

use std::collections::HashMap;

use super::{RedisStore, unavailable};
use crate::store::StoreError;

/// The key of the progress hash of a migration from `source` (an id the migration derives
/// from its source directory).
pub fn migration_key(source: &str) -> String {
    format!("pe:migrate:{source}")
}

impl RedisStore {
    /// Every field recorded for the migration from `source` (empty before the first run).
    pub async fn migration_progress(&self, source: &str) -> Result<HashMap<String, String>, StoreError> {
        redis::cmd("HGETALL").arg(migration_key(source)).query_async(&mut self.conn()).await.map_err(unavailable)
    }

    /// Records one field of the migration's progress.
    pub async fn record_migration_progress(&self, source: &str, field: &str, value: &str) -> Result<(), StoreError> {
        redis::cmd("HSET").arg(migration_key(source)).arg(field).arg(value).query_async::<i64>(&mut self.conn()).await.map(|_| ()).map_err(unavailable)
    }
}
