//! The embedded backend: N shards, each a SQLite file in WAL mode, and one in-memory candidate
//! index over all of them (see `index`). A unit's row lives in the shard chosen by the hash of
//! (tenant, repo, key), so that the shards' writes proceed in parallel; the index groups
//! units by shape across shards, so that a query scores each shape once however many
//! repositories hold it. SQLite is the truth: a batch reaches the index only after its shard
//! transactions committed, and the index is rebuilt from the shard files at startup.
//!
//! A batch spanning several shards is not atomic across them. That is safe because batch
//! application is idempotent (upsert by key, remove by key) and the batch id is recorded only
//! after every shard committed: a batch interrupted by a crash is not acknowledged, so the
//! client retries it and the retry completes it.
//!
//! The team analysis cache lives in a file of its own, `analyses.db` (see `analyses`).

pub mod analyses;
pub mod db;
pub mod index;
mod write;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use periodic_wire::{
    DeltaAck, DeltaBatch, PatternDetail, PatternOccurrence, PatternSummary, QuerySketch, Sketch, SketchResult, Stats, T2Hash,
    UnitMatch,
};
use rusqlite::Connection;

use self::analyses::AnalysisCache;
use self::db::{SyncMode, UnitRow};
use self::index::{CandidateIndex, GroupCount, MemUnit, Names, UnitText};
use self::write::{ShardWork, apply_to_shard};
use crate::store::family::{self, Components, FamilyIds};
use crate::store::{AnalysisEntries, AnalysisPolicy, ContentHash, MAX_PATTERN_OCCURRENCES, PatternMeta, QueryOptions, Store, StoreError};

/// Options of the embedded backend.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    pub shards: usize,
    pub sync: SyncMode,
}

/// Queries with more sketches than this are answered on the blocking pool, so that they do
/// not hold an async worker (and the connections it serves) for long; below it, the thread
/// hop costs more than the lookups (tens of microseconds per sketch).
const INLINE_QUERY_SKETCHES: usize = 8;
/// Stripes of the per-repository write lock (serialises batches of one repository, so the
/// duplicate check and the application of a batch cannot interleave with a retry of it).
const WRITE_STRIPES: usize = 64;

struct Shard {
    connection: Mutex<Connection>,
    /// The row id the next new unit gets (ids are never reused, so an id the index holds
    /// always names that unit's row).
    next_row_id: AtomicI64,
}

pub struct EmbeddedStore {
    shards: Vec<Arc<Shard>>,
    /// Every stored unit, and the names they refer to.
    index: Arc<RwLock<CandidateIndex>>,
    write_stripes: Vec<tokio::sync::Mutex<()>>,
    pattern_meta: RwLock<HashMap<(u32, u64), PatternMeta>>,
    analyses: Arc<AnalysisCache>,
    /// Per tenant, the team pattern id of each linked shape, for query answers: computed on
    /// the first query after a batch of the tenant (which drops it), see [`family_ids`].
    family_ids: Arc<FamilyIdCache>,
}

type FamilyIdCache = RwLock<HashMap<u32, Arc<FamilyIds>>>;

/// The tenant's [`FamilyIds`], computed and kept if not kept yet. The caller holds the
/// index's read lock: a batch changes the index under its write lock and drops the kept ids
/// after, so ids computed from an index older than a batch are never kept past it.
fn family_ids(index: &CandidateIndex, cache: &FamilyIdCache, tenant: u32) -> Result<Arc<FamilyIds>, StoreError> {
    if let Some(ids) = cache.read().map_err(poisoned)?.get(&tenant) {
        return Ok(ids.clone());
    }
    let components = Components::from_links(index.links(tenant));
    let ids = Arc::new(family::linked_ids(&components, |shape| index.exact_group(tenant, shape).len() as u64));
    cache.write().map_err(poisoned)?.insert(tenant, ids.clone());
    Ok(ids)
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Task("a storage lock was poisoned by a panic".into())
}

/// 128-bit identity of a unit: decides its shard and keys it in the index.
fn unit_identity(tenant: &str, repo: &str, key: &str) -> u128 {
    let mut hasher = blake3::Hasher::new();
    for part in [tenant, repo, key] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let bytes = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&bytes.as_bytes()[..16]);
    u128::from_le_bytes(first)
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.map_err(|error| StoreError::Task(error.to_string()))?
}

impl EmbeddedStore {
    /// Opens (or creates) the shard files under `dir` and rebuilds the in-memory index.
    /// Blocking: call before serving or from `spawn_blocking`.
    pub fn open(dir: &Path, options: &EmbeddedOptions) -> Result<EmbeddedStore, StoreError> {
        if options.shards == 0 || options.shards > 1024 {
            return Err(StoreError::Unavailable(format!("shard count {} is not within 1..=1024", options.shards)));
        }
        std::fs::create_dir_all(dir).map_err(|error| StoreError::Unavailable(format!("create {}: {error}", dir.display())))?;
        check_shard_count(dir, options.shards)?;
        let index = Mutex::new(CandidateIndex::default());
        let pattern_meta = Mutex::new(Vec::new());
        let shards: Vec<Result<Shard, StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..options.shards)
                .map(|shard_number| {
                    let index = &index;
                    let pattern_meta = &pattern_meta;
                    scope.spawn(move || open_shard(&dir.join(format!("shard-{shard_number:04}.db")), options.sync, index, pattern_meta))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or_else(|_| Err(StoreError::Task("shard loader panicked".into()))))
                .collect()
        });
        let shards = shards.into_iter().map(|shard| shard.map(Arc::new)).collect::<Result<Vec<_>, _>>()?;
        let mut index = index.into_inner().map_err(poisoned)?;
        let mut meta = HashMap::new();
        for (tenant, id, stored) in pattern_meta.into_inner().map_err(poisoned)? {
            meta.insert((index.names.intern(&tenant), id.0), stored);
        }
        let analyses = Arc::new(AnalysisCache::open(&dir.join("analyses.db"))?);
        Ok(EmbeddedStore {
            shards,
            index: Arc::new(RwLock::new(index)),
            write_stripes: (0..WRITE_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            pattern_meta: RwLock::new(meta),
            analyses,
            family_ids: Arc::default(),
        })
    }

    fn shard_of(&self, identity: u128) -> usize {
        (identity % self.shards.len() as u128) as usize
    }

    fn tenant_id(&self, tenant: &str) -> Result<Option<u32>, StoreError> {
        Ok(self.index.read().map_err(poisoned)?.names.lookup(tenant))
    }

    /// The tenant's near-miss family components (see `store::family`), from its links.
    fn components(&self, tenant: u32) -> Result<Components, StoreError> {
        Ok(Components::from_links(self.index.read().map_err(poisoned)?.links(tenant)))
    }

    /// The name that applies to a component of these shapes (see [`family::current_meta`]).
    fn component_meta(&self, tenant: u32, shapes: &[T2Hash], id: T2Hash) -> Result<Option<PatternMeta>, StoreError> {
        let meta = self.pattern_meta.read().map_err(poisoned)?;
        Ok(family::current_meta(shapes.iter().filter_map(|shape| Some((*shape, meta.get(&(tenant, shape.0))?.clone()))), id))
    }

    /// The pattern holding shape `id`: every unit of its component's shapes.
    fn pattern_detail(&self, tenant: u32, components: &Components, id: T2Hash) -> Result<Option<PatternDetail>, StoreError> {
        let shapes = components.shapes_of(id);
        let index = self.index.read().map_err(poisoned)?;
        let mut found: Vec<(T2Hash, &MemUnit)> = Vec::new();
        let mut counts: Vec<(T2Hash, u64)> = Vec::new();
        for &shape in &shapes {
            let before = found.len();
            found.extend(index.exact_group(tenant, shape).into_iter().filter_map(|slot| Some((shape, index.unit(slot)?))));
            counts.push((shape, (found.len() - before) as u64));
        }
        let pattern = family::component_id(counts).unwrap_or(id);
        let repos: HashSet<u32> = found.iter().map(|(_, unit)| unit.repo).collect();
        // Language and size are the id shape's (every unit of one shape has the same size).
        let (language, tokens) = found
            .iter()
            .find(|(shape, _)| *shape == pattern)
            .or(found.first())
            .map_or((String::new(), 0), |(_, unit)| (index.names.name(unit.language).to_string(), unit.tokens));
        let units = found.len() as u64;
        let mut occurrences: Vec<PatternOccurrence> = found
            .iter()
            .map(|(shape, unit)| PatternOccurrence {
                repo: index.names.name(unit.repo).to_string(),
                key: unit.key().to_string(),
                location: unit.location(),
                kind: Some(family::occurrence_kind(*shape, pattern)),
            })
            .collect();
        drop(index);
        let meta = self.component_meta(tenant, &shapes, pattern)?;
        if units == 0 && meta.is_none() {
            return Ok(None);
        }
        occurrences.sort_by(|a, b| (&a.repo, &a.key).cmp(&(&b.repo, &b.key)));
        occurrences.truncate(MAX_PATTERN_OCCURRENCES);
        let meta = meta.unwrap_or_default();
        Ok(Some(PatternDetail {
            summary: PatternSummary {
                id: pattern.pattern_id(),
                name: meta.name,
                note: meta.note,
                units,
                repos: repos.len() as u64,
                language,
                tokens,
                named_by: meta.named_by,
                named_at: meta.named_at,
            },
            occurrences,
        }))
    }

    /// Every team pattern of the tenant with at least two units (names not filled in): the
    /// exact-structure groups, joined by component.
    fn team_patterns(&self, tenant: u32, components: &Components) -> Result<Vec<(Vec<T2Hash>, PatternSummary)>, StoreError> {
        let index = self.index.read().map_err(poisoned)?;
        let mut joined: HashMap<u64, Vec<(u64, GroupCount)>> = HashMap::new();
        for (shape, group) in index.group_counts(tenant) {
            joined.entry(components.key_of(T2Hash(shape))).or_default().push((shape, group));
        }
        let mut patterns = Vec::new();
        for groups in joined.into_values() {
            let units: u64 = groups.iter().map(|(_, group)| group.units).sum();
            if units < 2 {
                continue;
            }
            let Some(id) = family::component_id(groups.iter().map(|(shape, group)| (T2Hash(*shape), group.units))) else { continue };
            let repos: HashSet<u32> = groups.iter().flat_map(|(_, group)| group.repos.keys().copied()).collect();
            let Some((_, id_group)) = groups.iter().find(|(shape, _)| *shape == id.0) else { continue };
            let summary = PatternSummary {
                id: id.pattern_id(),
                name: None,
                note: None,
                units,
                repos: repos.len() as u64,
                language: index.names.name(id_group.language).to_string(),
                tokens: id_group.tokens,
                named_by: None,
                named_at: None,
            };
            patterns.push((components.shapes_of(id), summary));
        }
        Ok(patterns)
    }

    fn query_one(index: &CandidateIndex, ids: &FamilyIds, tenant: u32, sketch: &QuerySketch, exclude_repo: Option<u32>, options: &QueryOptions) -> SketchResult {
        let found = index.query(tenant, sketch.t2_hash, &sketch.sketch, exclude_repo, options.min_similarity, options.top_k);
        let matches = found
            .into_iter()
            .filter_map(|candidate| {
                let unit = index.unit(candidate.slot)?;
                Some(UnitMatch {
                    repo: String::from(index.names.name(unit.repo)),
                    key: String::from(unit.key()),
                    similarity: candidate.similarity,
                    exact: candidate.exact,
                    pattern_id: family::pattern_id_of(ids, unit.t2_hash),
                    language: String::from(index.names.name(unit.language)),
                    tokens: unit.tokens,
                    lines: unit.lines,
                    location: unit.location(),
                })
            })
            .collect();
        SketchResult { id: sketch.id.clone(), matches }
    }
}

/// The answer to every sketch of a query, in order.
fn query_all(index: &RwLock<CandidateIndex>, cache: &FamilyIdCache, tenant: &str, sketches: &[QuerySketch], options: &QueryOptions) -> Result<Vec<SketchResult>, StoreError> {
    let index = index.read().map_err(poisoned)?;
    let Some(tenant_id) = index.names.lookup(tenant) else {
        return Ok(sketches.iter().map(|sketch| SketchResult { id: sketch.id.clone(), matches: Vec::new() }).collect());
    };
    let ids = family_ids(&index, cache, tenant_id)?;
    let exclude_repo = options.exclude_repo.as_deref().and_then(|repo| index.names.lookup(repo));
    Ok(sketches.iter().map(|sketch| EmbeddedStore::query_one(&index, &ids, tenant_id, sketch, exclude_repo, options)).collect())
}

/// The shard count decides where every unit lives, so a data directory keeps the count it
/// was created with.
fn check_shard_count(dir: &Path, shards: usize) -> Result<(), StoreError> {
    let marker: PathBuf = dir.join("shards");
    match std::fs::read_to_string(&marker) {
        Ok(text) => {
            let existing: usize = text.trim().parse().map_err(|_| StoreError::Corrupt(format!("{} is not a number", marker.display())))?;
            if existing != shards {
                return Err(StoreError::Unavailable(format!(
                    "{} was created with {existing} shards; start with --shards {existing}",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&marker, format!("{shards}\n")).map_err(|error| StoreError::Unavailable(format!("write {}: {error}", marker.display())))
        }
        Err(error) => Err(StoreError::Unavailable(format!("read {}: {error}", marker.display()))),
    }
}

type PatternMetaRow = (String, T2Hash, PatternMeta);

/// Opens one shard file and adds its units to the shared index (one shard's rows are read
/// while another's are being indexed).
fn open_shard(path: &Path, sync: SyncMode, index: &Mutex<CandidateIndex>, pattern_meta: &Mutex<Vec<PatternMetaRow>>) -> Result<Shard, StoreError> {
    let mut connection = db::open(path, sync)?;
    let mut rows = Vec::new();
    db::load_units(&connection, |row| rows.push(row))?;
    let mut last_row_id = 0;
    // Rows come in id order, so a unit stored twice (which the store never writes) keeps its
    // newest row; the older ones are deleted, or a later removal would uncover them. A unit's
    // identity decides its shard, so what a row replaces is always a row of this shard.
    let mut superseded = Vec::new();
    {
        let mut index = index.lock().map_err(poisoned)?;
        index.reserve(rows.len());
        for row in rows {
            last_row_id = last_row_id.max(row.row_id);
            let identity = unit_identity(&row.tenant, &row.repo, &row.key);
            let (unit, sketch) = mem_unit(&mut index.names, row);
            if let Some(replaced) = index.upsert(identity, unit, sketch) {
                superseded.push(replaced.row_id);
            }
        }
    }
    if !superseded.is_empty() {
        tracing::warn!(rows = superseded.len(), path = %path.display(), "deleting superseded unit rows");
        db::delete_units(&mut connection, &superseded)?;
    }
    let mut metas = Vec::new();
    db::load_pattern_meta(&connection, |tenant, id, meta| metas.push((tenant, id, meta)))?;
    pattern_meta.lock().map_err(poisoned)?.extend(metas);
    Ok(Shard { connection: Mutex::new(connection), next_row_id: AtomicI64::new(last_row_id + 1) })
}

/// A shard row as the index keeps it, and its sketch.
fn mem_unit(names: &mut Names, row: UnitRow) -> (MemUnit, Sketch) {
    let unit = MemUnit {
        row_id: row.row_id,
        tenant: names.intern(&row.tenant),
        repo: names.intern(&row.repo),
        language: names.intern(&row.language),
        text: UnitText::new(&row.key, row.location.as_ref()),
        t2_hash: row.t2_hash,
        tokens: row.tokens,
        lines: row.lines,
        nesting: row.nesting,
        family: row.family,
    };
    (unit, row.sketch)
}

fn stripe_of(tenant: &str, repo: &str) -> usize {
    (unit_identity(tenant, repo, "") % WRITE_STRIPES as u128) as usize
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn apply_batch(&self, tenant: &str, repo: &str, batch: DeltaBatch) -> Result<DeltaAck, StoreError> {
        let _serialised = self.write_stripes[stripe_of(tenant, repo)].lock().await;
        let batch_shard = self.shards[self.shard_of(unit_identity(tenant, repo, &batch.batch_id))].clone();
        let (tenant_owned, repo_owned, batch_id) = (tenant.to_string(), repo.to_string(), batch.batch_id.clone());
        let lookup_shard = batch_shard.clone();
        let previous = blocking(move || {
            let connection = lookup_shard.connection.lock().map_err(poisoned)?;
            db::find_batch(&connection, &tenant_owned, &repo_owned, &batch_id)
        })
        .await?;
        if let Some((upserted, removed)) = previous {
            return Ok(DeltaAck { batch_id: batch.batch_id, duplicate: true, upserted, removed });
        }

        // Names are interned once per batch (the index stores ids), outside the shard tasks.
        let (tenant_id, repo_id, language_ids) = {
            let names = &mut self.index.write().map_err(poisoned)?.names;
            let tenant_id = names.intern(tenant);
            let repo_id = names.intern(repo);
            let language_ids: Vec<u32> = batch.upserts.iter().map(|upsert| names.intern(&upsert.language)).collect();
            (tenant_id, repo_id, language_ids)
        };

        // Group the batch by shard; removals are applied after upserts within a shard.
        let mut per_shard: Vec<ShardWork> = (0..self.shards.len()).map(|_| ShardWork::default()).collect();
        let upserted = batch.upserts.len() as u32;
        for (upsert, language) in batch.upserts.into_iter().zip(language_ids) {
            let identity = unit_identity(tenant, repo, &upsert.key);
            per_shard[self.shard_of(identity)].upserts.push((identity, language, upsert));
        }
        for key in &batch.removals {
            let identity = unit_identity(tenant, repo, key);
            per_shard[self.shard_of(identity)].removals.push(identity);
        }

        let mut tasks = Vec::new();
        for (shard_number, work) in per_shard.into_iter().enumerate() {
            if work.upserts.is_empty() && work.removals.is_empty() {
                continue;
            }
            let shard = self.shards[shard_number].clone();
            let (tenant, repo) = (tenant.to_string(), repo.to_string());
            let index = self.index.clone();
            tasks.push(tokio::task::spawn_blocking(move || apply_to_shard(&shard, &index, &tenant, &repo, tenant_id, repo_id, work)));
        }
        let mut removed = 0;
        let mut first_error = None;
        for task in tasks {
            match task.await {
                Ok(Ok(count)) => removed += count,
                Ok(Err(error)) => first_error = first_error.or(Some(error)),
                Err(error) => first_error = first_error.or(Some(StoreError::Task(error.to_string()))),
            }
        }
        // The index changed (also when a shard failed: others may have applied their part).
        self.family_ids.write().map_err(poisoned)?.remove(&tenant_id);
        if let Some(error) = first_error {
            return Err(error);
        }
        let (tenant_owned, repo_owned, batch_id) = (tenant.to_string(), repo.to_string(), batch.batch_id.clone());
        blocking(move || {
            let connection = batch_shard.connection.lock().map_err(poisoned)?;
            db::record_batch(&connection, &tenant_owned, &repo_owned, &batch_id, upserted, removed)
        })
        .await?;
        Ok(DeltaAck { batch_id: batch.batch_id, duplicate: false, upserted, removed })
    }

    async fn query(&self, tenant: &str, sketches: &[QuerySketch], options: &QueryOptions) -> Result<Arc<[SketchResult]>, StoreError> {
        if sketches.len() <= INLINE_QUERY_SKETCHES {
            return Ok(query_all(&self.index, &self.family_ids, tenant, sketches, options)?.into());
        }
        let (index, cache, tenant, sketches, options) = (self.index.clone(), self.family_ids.clone(), tenant.to_string(), sketches.to_vec(), options.clone());
        Ok(blocking(move || query_all(&index, &cache, &tenant, &sketches, &options)).await?.into())
    }

    async fn top_patterns(&self, tenant: &str, top: usize) -> Result<Vec<PatternSummary>, StoreError> {
        let Some(tenant_id) = self.tenant_id(tenant)? else { return Ok(Vec::new()) };
        let components = self.components(tenant_id)?;
        let mut patterns = Vec::new();
        for (shapes, mut summary) in self.team_patterns(tenant_id, &components)? {
            if let Some(id) = T2Hash::from_pattern_id(&summary.id)
                && let Some(meta) = self.component_meta(tenant_id, &shapes, id)?
            {
                (summary.name, summary.note, summary.named_by, summary.named_at) = (meta.name, meta.note, meta.named_by, meta.named_at);
            }
            patterns.push(summary);
        }
        patterns.sort_by(|a, b| b.repos.cmp(&a.repos).then(b.units.cmp(&a.units)).then_with(|| a.id.cmp(&b.id)));
        patterns.truncate(top);
        Ok(patterns)
    }

    async fn pattern(&self, tenant: &str, id: T2Hash) -> Result<Option<PatternDetail>, StoreError> {
        let Some(tenant_id) = self.tenant_id(tenant)? else { return Ok(None) };
        self.pattern_detail(tenant_id, &self.components(tenant_id)?, id)
    }

    async fn set_pattern_meta(&self, tenant: &str, id: T2Hash, meta: PatternMeta) -> Result<PatternDetail, StoreError> {
        // Stored under the id of the pattern holding `id` now, so a name given through any
        // of its shapes names the whole family.
        let target = match self.tenant_id(tenant)? {
            Some(tenant_id) => match self.pattern_detail(tenant_id, &self.components(tenant_id)?, id)? {
                Some(detail) if detail.summary.units > 0 => T2Hash::from_pattern_id(&detail.summary.id).unwrap_or(id),
                _ => id,
            },
            None => id,
        };
        let shard = self.shards[self.shard_of(unit_identity(tenant, "", &target.to_hex()))].clone();
        let (tenant_owned, written) = (tenant.to_string(), meta.clone());
        blocking(move || {
            let connection = shard.connection.lock().map_err(poisoned)?;
            db::write_pattern_meta(&connection, &tenant_owned, target, &written)
        })
        .await?;
        let tenant_id = self.index.write().map_err(poisoned)?.names.intern(tenant);
        self.pattern_meta.write().map_err(poisoned)?.insert((tenant_id, target.0), meta);
        self.pattern_detail(tenant_id, &self.components(tenant_id)?, target)?.ok_or_else(|| StoreError::Unavailable("pattern vanished after update".into()))
    }

    async fn named_patterns(&self, tenant: &str, top: usize) -> Result<Vec<PatternSummary>, StoreError> {
        let Some(tenant_id) = self.tenant_id(tenant)? else { return Ok(Vec::new()) };
        let mut named: Vec<(Option<u64>, u64)> = self
            .pattern_meta
            .read()
            .map_err(poisoned)?
            .iter()
            .filter(|((owner, _), meta)| *owner == tenant_id && meta.name.is_some())
            .map(|((_, id), meta)| (meta.named_at, *id))
            .collect();
        named.sort_by(|a, b| b.cmp(a));
        let components = self.components(tenant_id)?;
        // A family whose shapes carry several names is listed once, with the name that applies.
        let mut listed = HashSet::new();
        let mut summaries = Vec::with_capacity(named.len().min(top));
        for (_, id) in named {
            if summaries.len() >= top {
                break;
            }
            if let Some(detail) = self.pattern_detail(tenant_id, &components, T2Hash(id))?
                && detail.summary.name.is_some()
                && listed.insert(detail.summary.id.clone())
            {
                summaries.push(detail.summary);
            }
        }
        Ok(summaries)
    }

    async fn stats(&self, tenant: &str) -> Result<Stats, StoreError> {
        let shards = self.shards.len() as u32;
        let Some(tenant_id) = self.tenant_id(tenant)? else {
            return Ok(Stats { units: 0, repos: 0, patterns: 0, shards });
        };
        let index = self.index.read().map_err(poisoned)?;
        let units = index.units_of(tenant_id);
        let repos = index.repos_of(tenant_id).len() as u64;
        drop(index);
        let patterns = self.team_patterns(tenant_id, &self.components(tenant_id)?)?.len() as u64;
        Ok(Stats { units, repos, patterns, shards })
    }

    async fn units_stored(&self) -> Result<u64, StoreError> {
        Ok(self.index.read().map_err(poisoned)?.len() as u64)
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        let (shards, analyses) = (self.shards.clone(), self.analyses.clone());
        blocking(move || {
            for shard in &shards {
                db::ping(&*shard.connection.lock().map_err(poisoned)?)?;
            }
            analyses.ping()
        })
        .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let (shards, analyses) = (self.shards.clone(), self.analyses.clone());
        blocking(move || {
            for shard in &shards {
                db::checkpoint(&*shard.connection.lock().map_err(poisoned)?)?;
            }
            analyses.checkpoint()
        })
        .await
    }

    async fn analyses(&self, tenant: &str, analysis: &str, hashes: &[ContentHash], policy: &AnalysisPolicy) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let (cache, tenant, analysis, hashes, policy) = (self.analyses.clone(), tenant.to_string(), analysis.to_string(), hashes.to_vec(), *policy);
        blocking(move || cache.lookup(&tenant, &analysis, &hashes, &policy)).await
    }

    async fn store_analyses(&self, tenant: &str, analysis: &str, entries: AnalysisEntries, policy: &AnalysisPolicy) -> Result<u32, StoreError> {
        let (cache, tenant, analysis, policy) = (self.analyses.clone(), tenant.to_string(), analysis.to_string(), *policy);
        blocking(move || cache.store(&tenant, &analysis, &entries, &policy)).await
    }

    async fn repo_keys(&self, tenant: &str, repo: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        // The in-memory index mirrors SQLite, so this needs no disk access either.
        let index = self.index.read().map_err(poisoned)?;
        let (Some(tenant_id), Some(repo_id)) = (index.names.lookup(tenant), index.names.lookup(repo)) else {
            return Ok(Vec::new());
        };
        Ok(index.keys_of(tenant_id, repo_id, limit))
    }

    async fn forget_repo_batches(&self, tenant: &str, repo: &str) -> Result<u64, StoreError> {
        // Under the repository's write stripe, so that no batch is between its duplicate
        // check and its record meanwhile. Batch records are spread over the shards by id.
        let _serialised = self.write_stripes[stripe_of(tenant, repo)].lock().await;
        let (shards, tenant, repo) = (self.shards.clone(), tenant.to_string(), repo.to_string());
        blocking(move || {
            let mut forgotten = 0;
            for shard in &shards {
                forgotten += db::forget_batches(&*shard.connection.lock().map_err(poisoned)?, &tenant, &repo)?;
            }
            Ok(forgotten)
        })
        .await
    }

    async fn fingerprints(&self, tenant: &str, repo: &str, keys: &[String]) -> Result<Vec<Option<T2Hash>>, StoreError> {
        // The in-memory index mirrors SQLite, so this needs no disk access.
        let index = self.index.read().map_err(poisoned)?;
        Ok(keys.iter().map(|key| index.unit_by_identity(unit_identity(tenant, repo, key)).map(|unit| unit.t2_hash)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    fn open(dir: &Path, shards: usize) -> EmbeddedStore {
        EmbeddedStore::open(dir, &EmbeddedOptions { shards, sync: SyncMode::Normal }).expect("open store")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fingerprints_are_looked_up_by_key_within_tenant_and_repo() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), 3);
        let upsert = |key: &str, t2: u64| periodic_wire::UnitUpsert {
            key: key.into(),
            t2_hash: T2Hash(t2),
            sketch: periodic_wire::Sketch([t2 as u32; periodic_wire::SKETCH_LEN]),
            tokens: 10,
            lines: 3,
            nesting: 1,
            language: "rust".into(),
            location: None,
            family: None,
        };
        let batch = DeltaBatch { batch_id: "b1".into(), upserts: vec![upsert("a", 7), upsert("b", 9)], removals: vec![] };
        store.apply_batch("t1", "r1", batch).await.expect("apply");
        let keys: Vec<String> = ["a", "b", "c"].iter().map(|k| k.to_string()).collect();
        assert_eq!(store.fingerprints("t1", "r1", &keys).await.expect("lookup"), vec![Some(T2Hash(7)), Some(T2Hash(9)), None]);
        assert_eq!(store.fingerprints("t2", "r1", &keys).await.expect("lookup"), vec![None, None, None]);
        assert_eq!(store.fingerprints("t1", "r2", &keys).await.expect("lookup"), vec![None, None, None]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_store_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(open(dir.path(), 4));
        conformance::run_all(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn data_survives_reopening_and_shard_count_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = open(dir.path(), 3);
            store.apply_batch("team", "repo", conformance::batch("b1", 0..20)).await.expect("apply");
            store.set_pattern_meta("team", conformance::t2_of(0), PatternMeta { name: Some("getter".into()), ..PatternMeta::default() }).await.expect("name");
        }
        let store = open(dir.path(), 3);
        assert_eq!(store.stats("team").await.expect("stats").units, 20);
        let detail = store.pattern("team", conformance::t2_of(0)).await.expect("pattern").expect("exists");
        assert_eq!(detail.summary.name.as_deref(), Some("getter"));
        let again = store.apply_batch("team", "repo", conformance::batch("b1", 0..20)).await.expect("retry");
        assert!(again.duplicate);
        drop(store);
        assert!(EmbeddedStore::open(dir.path(), &EmbeddedOptions { shards: 5, sync: SyncMode::Normal }).is_err());
    }

    /// (rows, distinct keys) over every shard file, read from outside the store.
    fn stored_rows(dir: &Path, shards: usize) -> (i64, i64) {
        let mut totals = (0, 0);
        for shard_number in 0..shards {
            let outside = Connection::open(dir.join(format!("shard-{shard_number:04}.db"))).expect("open");
            let (rows, keys): (i64, i64) =
                outside.query_row("SELECT count(*), count(DISTINCT tenant || '/' || repo || '/' || key) FROM units", [], |row| Ok((row.get(0)?, row.get(1)?))).expect("count");
            totals = (totals.0 + rows, totals.1 + keys);
        }
        totals
    }

    fn with_t2(number: u64, t2: u64) -> periodic_wire::UnitUpsert {
        periodic_wire::UnitUpsert { t2_hash: T2Hash(t2), ..conformance::unit(number) }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repeated_keys_rewrites_and_removals_leave_one_row_per_unit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = |numbers: &[u64]| numbers.iter().map(|n| format!("unit-{n}")).collect::<Vec<_>>();
        {
            let store = open(dir.path(), 2);
            // unit-3 twice (the later wins), unit-5 upserted and removed by the same batch.
            let mut first = conformance::batch("b1", 0..10);
            first.upserts.push(with_t2(3, 300));
            first.removals.push("unit-5".into());
            let ack = store.apply_batch("team", "repo", first).await.expect("apply");
            assert_eq!((ack.upserted, ack.removed), (11, 1));
            // unit-4 rewritten in place, unit-20 new, unit-6 removed.
            let second = DeltaBatch { batch_id: "b2".into(), upserts: vec![with_t2(4, 400), conformance::unit(20)], removals: vec!["unit-6".into()] };
            store.apply_batch("team", "repo", second).await.expect("apply");
            assert_eq!(store.stats("team").await.expect("stats").units, 9);
            assert_eq!(stored_rows(dir.path(), 2), (9, 9));
        }
        let store = open(dir.path(), 2);
        assert_eq!(store.stats("team").await.expect("stats").units, 9);
        let found = store.fingerprints("team", "repo", &keys(&[3, 4, 5, 6, 20])).await.expect("lookup");
        assert_eq!(found, vec![Some(T2Hash(300)), Some(T2Hash(400)), None, None, Some(conformance::t2_of(20))]);
        // Row ids continue after the reopened ones: a new unit does not overwrite a stored one.
        let third = DeltaBatch { batch_id: "b3".into(), upserts: vec![conformance::unit(21)], removals: vec!["unit-20".into()] };
        store.apply_batch("team", "repo", third).await.expect("apply");
        assert_eq!(stored_rows(dir.path(), 2), (9, 9));
        let found = store.fingerprints("team", "repo", &keys(&[0, 20, 21])).await.expect("lookup");
        assert_eq!(found, vec![Some(conformance::t2_of(0)), None, Some(conformance::t2_of(21))]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shard_file_with_keyed_units_is_migrated_to_row_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("shards"), "1\n").expect("marker");
        {
            // The layout of files written before units had row ids.
            let old = Connection::open(dir.path().join("shard-0000.db")).expect("create");
            old.execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE units (tenant TEXT NOT NULL, repo TEXT NOT NULL, key TEXT NOT NULL, t2_hash INTEGER NOT NULL, sketch BLOB NOT NULL,
                     tokens INTEGER NOT NULL, lines INTEGER NOT NULL, nesting INTEGER NOT NULL, language TEXT NOT NULL, path TEXT, name TEXT,
                     start_line INTEGER, end_line INTEGER, PRIMARY KEY (tenant, repo, key)) WITHOUT ROWID;",
            )
            .expect("old schema");
            for number in [1u64, 2] {
                let unit = conformance::unit(number);
                old.execute(
                    "INSERT INTO units VALUES ('team', 'repo', ?1, ?2, ?3, 40, 8, 2, 'rust', 'src/a.rs', 'f', 1, 9)",
                    rusqlite::params![unit.key, unit.t2_hash.0 as i64, &unit.sketch.to_le_bytes()[..]],
                )
                .expect("old row");
            }
        }
        {
            let store = open(dir.path(), 1);
            assert_eq!(store.stats("team").await.expect("stats").units, 2);
            let probe = QuerySketch { id: "q".into(), t2_hash: conformance::t2_of(2), sketch: conformance::sketch_of(2) };
            let found = store.query("team", &[probe], &QueryOptions { exclude_repo: None, min_similarity: 0.9, top_k: 5 }).await.expect("query");
            assert_eq!(found[0].matches[0].key, "unit-2");
            assert_eq!(found[0].matches[0].location.as_ref().map(|l| l.path.as_str()), Some("src/a.rs"));
            // A migrated unit is rewritten in place, not stored a second time.
            let batch = DeltaBatch { batch_id: "b1".into(), upserts: vec![with_t2(1, 100), conformance::unit(3)], removals: vec!["unit-2".into()] };
            store.apply_batch("team", "repo", batch).await.expect("apply");
        }
        assert_eq!(stored_rows(dir.path(), 1), (2, 2));
        let store = open(dir.path(), 1);
        let keys: Vec<String> = ["unit-1", "unit-2", "unit-3"].iter().map(|k| k.to_string()).collect();
        assert_eq!(store.fingerprints("team", "repo", &keys).await.expect("lookup"), vec![Some(T2Hash(100)), None, Some(conformance::t2_of(3))]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_shard_is_an_error_not_an_empty_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), 2);
        store.check_ready().await.expect("ready at first");
        // Break both shards from outside, as a damaged or replaced file would.
        for shard_number in 0..2 {
            let outside = Connection::open(dir.path().join(format!("shard-{shard_number:04}.db"))).expect("open");
            outside.execute_batch("DROP TABLE units; DROP TABLE batches;").expect("drop");
        }
        assert!(store.check_ready().await.is_err());
        assert!(store.apply_batch("team", "repo", conformance::batch("b1", 0..10)).await.is_err());
    }
}
