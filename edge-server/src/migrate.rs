//! `periodic-edge migrate --from DATA_DIR --to redis-cluster://…`: moves an embedded edge's
//! data (every tenant's units, pattern names and notes) into a Redis Cluster store, prints
//! the counts before and after, and verifies that the cluster then holds what the directory
//! holds. Tokens are not part of it: they live in the tokens file, which the Redis-backed
//! edge reads as the embedded one did.
//!
//! The units of each shard are read in (tenant, repository, row id) order and sent through
//! the Redis backend's own `apply_batch`, one repository per batch, so they are stored exactly
//! as if clients had pushed them (same keys, locators, pattern counts, `WAIT` for replicas).
//! Resuming rests on two things: every write is an upsert by key (sending a unit twice stores
//! it once), and after each batch the position reached in its shard is recorded in the
//! cluster (`store::redis::progress`), so a run after an interruption starts after the last
//! batch it knows was stored, and at worst resends one batch. A batch's id is derived from its
//! content, so a resent batch is answered as a duplicate without being applied again.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use periodic_wire::{DeltaBatch, Stats, T2Hash, UnitUpsert};
use serde::{Deserialize, Serialize};

use crate::store::{PatternMeta, Store};
use crate::store::embedded::db::{self, SyncMode, UnitRow};
use crate::store::embedded::{EmbeddedOptions, EmbeddedStore};
use crate::store::redis::progress::migration_key;
use crate::store::redis::{RedisOptions, RedisStore};

/// What to move where.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    pub from: PathBuf,
    pub to: RedisOptions,
    /// Units per batch (all of one repository).
    pub batch_units: usize,
    /// Stop after this many batches (the next run continues); `None`: run to the end.
    pub max_batches: Option<u64>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is in the cluster and the counts agree.
    Verified,
    /// Stopped at `max_batches`; run again to continue.
    Paused,
}

/// Where a shard's migration stands, as recorded in the cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum ShardProgress {
    /// Every unit up to this (tenant, repository, row id) is stored.
    After { tenant: String, repo: String, row_id: i64 },
    Done,
}

/// A pattern's team-shared name and note in the source.
struct NamedPattern {
    tenant: String,
    id: T2Hash,
    meta: PatternMeta,
}

/// One tenant's counts on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Counts {
    units: u64,
    repos: u64,
    patterns: u64,
    /// Pattern names and notes of the source found identical on this side.
    named: u64,
}

impl Counts {
    fn of(stats: &Stats, named: u64) -> Counts {
        Counts { units: stats.units, repos: stats.repos, patterns: stats.patterns, named }
    }
}

fn shard_field(shard: usize) -> String {
    format!("shard-{shard:04}")
}

fn shard_count(dir: &Path) -> anyhow::Result<usize> {
    let marker = dir.join("shards");
    let text = std::fs::read_to_string(&marker)
        .with_context(|| format!("{} is not the data directory of an embedded edge (no readable `shards` file)", dir.display()))?;
    text.trim().parse().with_context(|| format!("{} is not a number", marker.display()))
}

/// An id of the source directory, naming its progress in the cluster.
fn source_id(dir: &Path) -> anyhow::Result<String> {
    let canonical = dir.canonicalize().with_context(|| format!("resolve {}", dir.display()))?;
    Ok(blake3::hash(canonical.to_string_lossy().as_bytes()).to_hex()[..16].to_string())
}

fn upsert_of(row: UnitRow) -> UnitUpsert {
    UnitUpsert {
        key: row.key,
        t2_hash: row.t2_hash,
        sketch: row.sketch,
        tokens: row.tokens,
        lines: row.lines,
        nesting: row.nesting,
        language: row.language,
        location: row.location,
        family: row.family,
    }
}

/// The source's tenants and pattern names, read from every shard file.
fn read_source_meta(dir: &Path, shards: usize) -> anyhow::Result<(Vec<String>, Vec<NamedPattern>)> {
    let mut tenants = Vec::new();
    let mut named = Vec::new();
    for shard in 0..shards {
        let path = dir.join(format!("shard-{shard:04}.db"));
        let connection = db::open(&path, SyncMode::Normal).with_context(|| format!("open {}", path.display()))?;
        tenants.extend(db::tenants(&connection)?);
        db::load_pattern_meta(&connection, |tenant, id, meta| named.push(NamedPattern { tenant, id, meta }))?;
    }
    tenants.sort();
    tenants.dedup();
    Ok((tenants, named))
}

/// Each tenant's counts in `store`, with how many of the source's pattern names it holds.
async fn counts(store: &dyn Store, tenants: &[String], named: &[NamedPattern]) -> anyhow::Result<BTreeMap<String, Counts>> {
    let mut all = BTreeMap::new();
    for tenant in tenants {
        let stats = store.stats(tenant).await?;
        let mut matching = 0;
        for pattern in named.iter().filter(|pattern| &pattern.tenant == tenant) {
            let found = store.pattern(tenant, pattern.id).await?;
            if found.is_some_and(|detail| detail.summary.name == pattern.meta.name && detail.summary.note == pattern.meta.note) {
                matching += 1;
            }
        }
        all.insert(tenant.clone(), Counts::of(&stats, matching));
    }
    Ok(all)
}

fn print_counts(out: &mut dyn Write, when: &str, side: &str, counts: &BTreeMap<String, Counts>) -> std::io::Result<()> {
    for (tenant, counts) in counts {
        writeln!(out, "{when}\t{tenant}\t{side}\tunits={}\trepos={}\tpatterns={}\tnamed={}", counts.units, counts.repos, counts.patterns, counts.named)?;
    }
    Ok(())
}

/// A page of one shard: units of one (tenant, repository), in row id order.
struct Page {
    tenant: String,
    repo: String,
    rows: Vec<UnitRow>,
}

/// Reads one shard after `after` on a blocking thread, in pages of at most `page_units` units
/// of one repository; stops when the receiver is dropped.
fn read_shard(path: PathBuf, after: Option<(String, String, i64)>, page_units: usize) -> (tokio::sync::mpsc::Receiver<anyhow::Result<Page>>, tokio::task::JoinHandle<()>) {
    let (sender, receiver) = tokio::sync::mpsc::channel::<anyhow::Result<Page>>(2);
    let reader = tokio::task::spawn_blocking(move || {
        let read = || -> anyhow::Result<()> {
            let connection = db::open(&path, SyncMode::Normal).with_context(|| format!("open {}", path.display()))?;
            let mut page: Option<Page> = None;
            let mut receiver_gone = false;
            let after = after.as_ref().map(|(tenant, repo, row_id)| (tenant.as_str(), repo.as_str(), *row_id));
            db::units_in_repo_order(&connection, after, |row| {
                let same_repo = page.as_ref().is_some_and(|page| page.tenant == row.tenant && page.repo == row.repo && page.rows.len() < page_units);
                if !same_repo && let Some(full) = page.take() {
                    receiver_gone = sender.blocking_send(Ok(full)).is_err();
                }
                page.get_or_insert_with(|| Page { tenant: row.tenant.clone(), repo: row.repo.clone(), rows: Vec::new() }).rows.push(row);
                !receiver_gone
            })?;
            if let Some(last) = page
                && !receiver_gone
            {
                let _ = sender.blocking_send(Ok(last));
            }
            Ok(())
        };
        if let Err(error) = read() {
            let _ = sender.blocking_send(Err(error));
        }
    });
    (receiver, reader)
}

/// Runs (or resumes) the migration, writing what it does to `out`.
pub async fn migrate(options: MigrateOptions, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let dir = options.from.clone();
    let shards = shard_count(&dir)?;
    let source_id = source_id(&dir)?;
    // Opening the embedded store checks the files and settles what the server would settle at
    // startup (rows superseded by a later write of the same key are dropped), so the rows read
    // below are exactly the units it serves.
    let source: Arc<dyn Store> = {
        let dir = dir.clone();
        Arc::new(
            tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir, &EmbeddedOptions { shards, sync: SyncMode::Normal }))
                .await
                .context("storage loader panicked")?
                .with_context(|| format!("open the embedded store in {}", options.from.display()))?,
        )
    };
    let (tenants, named) = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || read_source_meta(&dir, shards)).await.context("shard reader panicked")??
    };
    let nodes = options.to.nodes.join(",");
    let target = Arc::new(RedisStore::connect(options.to.clone()).await.with_context(|| format!("connect to the Redis Cluster at {nodes}"))?);
    writeln!(out, "migrating {} ({shards} shards, {} tenants) to redis-cluster://{nodes}; progress kept in {}", dir.display(), tenants.len(), migration_key(&source_id))?;
    writeln!(out, "tokens: not stored in {}; serve the cluster with the same --tokens file", dir.display())?;
    if dir.join("cloud-outbox.db").exists() {
        writeln!(out, "cloud-outbox.db: not migrated (it belongs to one replica); statistics still queued in it reach the cloud when their units next change")?;
    }

    let source_counts = counts(source.as_ref(), &tenants, &named).await?;
    print_counts(out, "before", "source", &source_counts)?;
    print_counts(out, "before", "target", &counts(target.as_ref(), &tenants, &named).await?)?;

    let progress = target.migration_progress(&source_id).await?;
    let (mut batches, mut units, mut shards_already_done) = (0u64, 0u64, 0usize);
    let mut paused = false;
    for shard in 0..shards {
        let after = match progress.get(&shard_field(shard)).map(|text| serde_json::from_str::<ShardProgress>(text)) {
            None => None,
            Some(Ok(ShardProgress::Done)) => {
                shards_already_done += 1;
                continue;
            }
            Some(Ok(ShardProgress::After { tenant, repo, row_id })) => Some((tenant, repo, row_id)),
            Some(Err(error)) => bail!("the progress of shard {shard} in {} is unreadable ({error}); delete that key to start over", migration_key(&source_id)),
        };
        let (mut pages, reader) = read_shard(dir.join(format!("shard-{shard:04}.db")), after, options.batch_units.max(1));
        while let Some(page) = pages.recv().await {
            if options.max_batches.is_some_and(|limit| batches >= limit) {
                paused = true;
                break;
            }
            let Page { tenant, repo, rows } = page?;
            let (first_row, last_row) = (rows.first().map_or(0, |row| row.row_id), rows.last().map_or(0, |row| row.row_id));
            let upserts: Vec<UnitUpsert> = rows.into_iter().map(upsert_of).collect();
            let digest = blake3::hash(&serde_json::to_vec(&upserts)?).to_hex();
            let batch = DeltaBatch { batch_id: format!("migrate-{shard:04}-{first_row}-{last_row}-{}", &digest[..16]), upserts, removals: Vec::new() };
            let count = batch.upserts.len() as u64;
            target.apply_batch(&tenant, &repo, batch).await.with_context(|| format!("store a batch of {tenant}/{repo} (shard {shard})"))?;
            let reached = ShardProgress::After { tenant, repo, row_id: last_row };
            target.record_migration_progress(&source_id, &shard_field(shard), &serde_json::to_string(&reached)?).await?;
            batches += 1;
            units += count;
        }
        drop(pages);
        reader.await.context("shard reader panicked")?;
        if paused {
            break;
        }
        target.record_migration_progress(&source_id, &shard_field(shard), &serde_json::to_string(&ShardProgress::Done)?).await?;
    }
    if paused {
        writeln!(out, "paused after {batches} batches ({units} units); run the same command again to continue")?;
        print_counts(out, "paused", "target", &counts(target.as_ref(), &tenants, &named).await?)?;
        return Ok(Outcome::Paused);
    }

    // Names and notes last: few, and each write replaces the whole entry, so writing them
    // again on every run is the simplest way to be sure they are there.
    for pattern in &named {
        // Who named it and when travel along: the last-writer-wins order stays as it was.
        target.set_pattern_meta(&pattern.tenant, pattern.id, pattern.meta.clone()).await.with_context(|| format!("store a pattern name of {}", pattern.tenant))?;
    }
    writeln!(
        out,
        "copied {units} units in {batches} batches ({shards_already_done} of {shards} shards were done by an earlier run), {} pattern names and notes",
        named.len()
    )?;

    let target_counts = counts(target.as_ref(), &tenants, &named).await?;
    print_counts(out, "after", "target", &target_counts)?;
    let mismatches: Vec<String> = source_counts
        .iter()
        .filter_map(|(tenant, source)| {
            let target = target_counts.get(tenant).copied().unwrap_or_default();
            (target != *source).then(|| format!("{tenant}: source {source:?}, target {target:?}"))
        })
        .collect();
    if !mismatches.is_empty() {
        bail!(
            "verification failed: the cluster's counts differ from the source's ({}). Did the source change during the migration, or did the cluster already hold data of these tenants?",
            mismatches.join("; ")
        );
    }
    writeln!(out, "verified: for every tenant, the cluster holds the source's units, repositories, patterns and pattern names")?;
    Ok(Outcome::Verified)
}
