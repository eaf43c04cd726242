//! The storage conformance suite: the behaviour every [`Store`] backend must show, written
//! once and run against each backend (`run_all`). It uses tenant names unique to the run, so
//! it can run against a backend that already holds data (a shared Redis Cluster, say).
//!
//! The suite panics on the first deviation, naming it; it is called from tests only.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use periodic_wire::{DeltaBatch, Location, OccurrenceKind, PatternDetail, QuerySketch, SKETCH_LEN, Sketch, T2Hash, UnitUpsert};

use crate::store::analyses::charged_bytes;
use crate::store::{AnalysisPolicy, ContentHash, PatternMeta, QueryOptions, Store};

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A sketch unrelated to every other `sketch_of(m)` (all positions differ in practice).
pub fn sketch_of(number: u64) -> Sketch {
    let mut values = [0u32; SKETCH_LEN];
    for (position, value) in values.iter_mut().enumerate() {
        *value = splitmix(number.wrapping_mul(SKETCH_LEN as u64) + position as u64) as u32;
    }
    Sketch(values)
}

/// `sketch_of(number)` with the first `changed` positions altered: similarity
/// `1 - changed / SKETCH_LEN` to the original.
pub fn near_sketch_of(number: u64, changed: usize) -> Sketch {
    let mut sketch = sketch_of(number);
    for value in sketch.0.iter_mut().take(changed) {
        *value = value.wrapping_add(1);
    }
    sketch
}

pub fn t2_of(number: u64) -> T2Hash {
    T2Hash(splitmix(number ^ 0x5555_aaaa))
}

pub fn unit(number: u64) -> UnitUpsert {
    UnitUpsert {
        key: format!("unit-{number}"),
        t2_hash: t2_of(number),
        sketch: sketch_of(number),
        tokens: 40 + number as u32 % 100,
        lines: 8,
        nesting: 2,
        language: "rust".into(),
        location: Some(Location { path: format!("src/file{}.rs", number % 7), name: format!("function_{number}"), start_line: 10, end_line: 18 }),
        family: None,
    }
}

/// A batch upserting `unit(n)` for every n in `numbers`.
pub fn batch(batch_id: &str, numbers: Range<u64>) -> DeltaBatch {
    DeltaBatch { batch_id: batch_id.into(), upserts: numbers.map(unit).collect(), removals: Vec::new() }
}

fn probe(id: &str, t2_hash: T2Hash, sketch: Sketch) -> QuerySketch {
    QuerySketch { id: id.into(), t2_hash, sketch }
}

fn options(min_similarity: f32, top_k: usize) -> QueryOptions {
    QueryOptions { exclude_repo: None, min_similarity, top_k }
}

/// Runs every check against `store`.
pub async fn run_all(store: Arc<dyn Store>) {
    let run = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let tenant = |name: &str| format!("conformance-{run}-{name}");
    unknown_tenant_is_empty_not_an_error(&*store, &tenant("empty")).await;
    stored_units_are_found_exactly_and_approximately(&*store, &tenant("query")).await;
    retried_batches_apply_once(&*store, &tenant("retry")).await;
    removals_and_replacements_take_effect(&*store, &tenant("remove")).await;
    tenants_are_isolated(&*store, &tenant("a"), &tenant("b")).await;
    patterns_group_exact_structure_across_repos(&*store, &tenant("patterns")).await;
    fingerprints_follow_upserts_removals_and_replacements(&*store, &tenant("fingerprints"), &tenant("fingerprints-other")).await;
    analyses_round_trip_in_order_and_unknown_hashes_miss(&*store, &tenant("analyses")).await;
    analyses_are_isolated_by_tenant_and_analysis_key(&*store, &tenant("analyses-a"), &tenant("analyses-b")).await;
    analyses_beyond_the_budget_evict_the_least_recently_used(&*store, &tenant("analyses-lru")).await;
    analyses_unused_for_the_ttl_expire(&*store, &tenant("analyses-ttl")).await;
    near_miss_families_join_shapes_into_one_team_pattern(&*store, &tenant("families")).await;
    deleting_a_repository_removes_its_units_links_and_batch_ids(&*store, &tenant("delete"), &tenant("delete-other")).await;
    crowded_band_buckets_answer_exactly_the_units_that_reach_the_threshold(&*store, &tenant("crowd")).await;
    store.check_ready().await.expect("ready");
    assert!(store.units_stored().await.unwrap() > 0, "units_stored counts stored units");
    store.flush().await.expect("flush");
}

/// A query whose band bucket holds many units (as the buckets of much-copied small functions
/// do in real code), most of them too different to answer: exactly those that reach the
/// threshold answer, with their similarities. Some units differ from the query only where a
/// sketch value keeps its two low bits, and one shares the query's structural hash with
/// another sketch (similarity 1 by definition).
async fn crowded_band_buckets_answer_exactly_the_units_that_reach_the_threshold(store: &dyn Store, tenant: &str) {
    let query = sketch_of(9_000);
    let mut upserts = Vec::new();
    for number in 0..150u64 {
        // Positions 0-3 (band 0) stay the query's, so every unit shares a bucket with it.
        let changed = 4 + (number as usize % 60);
        let step = if number % 2 == 0 { 1 } else { 4 };
        let mut sketch = query.clone();
        for value in sketch.0.iter_mut().skip(4).take(changed - 4) {
            *value = value.wrapping_add(step);
        }
        upserts.push(UnitUpsert { key: format!("crowd-{number}"), t2_hash: t2_of(20_000 + number), sketch, ..unit(number) });
    }
    let mut same_shape = query.clone();
    for value in same_shape.0.iter_mut().skip(4).take(40) {
        *value = value.wrapping_add(1);
    }
    upserts.push(UnitUpsert { key: "crowd-same-structure".into(), t2_hash: t2_of(9_000), sketch: same_shape, ..unit(9_000) });
    let expected: BTreeSet<(String, u32)> = upserts
        .iter()
        .filter_map(|upsert| {
            let similarity = if upsert.t2_hash == t2_of(9_000) { 1.0 } else { upsert.sketch.similarity(&query) };
            (similarity >= 0.7).then(|| (upsert.key.clone(), (similarity * SKETCH_LEN as f32).round() as u32))
        })
        .collect();
    assert!(expected.len() > 20 && expected.len() < 100, "the fixture mixes answers and near misses: {}", expected.len());
    store.apply_batch(tenant, "crowd", DeltaBatch { batch_id: "c1".into(), upserts, removals: Vec::new() }).await.unwrap();
    let results = store.query(tenant, &[probe("crowded", t2_of(9_000), query.clone())], &options(0.7, 500)).await.unwrap();
    let found: BTreeSet<(String, u32)> = results[0].matches.iter().map(|m| (m.key.clone(), (m.similarity * SKETCH_LEN as f32).round() as u32)).collect();
    assert_eq!(found, expected);
    assert!(results[0].matches.iter().any(|m| m.key == "crowd-same-structure" && m.exact));
}

async fn unknown_tenant_is_empty_not_an_error(store: &dyn Store, tenant: &str) {
    let results = store.query(tenant, &[probe("q", t2_of(1), sketch_of(1))], &options(0.0, 10)).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].id, "q");
    assert!(results[0].matches.is_empty());
    let stats = store.stats(tenant).await.unwrap();
    assert_eq!((stats.units, stats.repos, stats.patterns), (0, 0, 0));
    assert!(store.top_patterns(tenant, 10).await.unwrap().is_empty());
    assert!(store.pattern(tenant, t2_of(1)).await.unwrap().is_none());
}

async fn stored_units_are_found_exactly_and_approximately(store: &dyn Store, tenant: &str) {
    let ack = store.apply_batch(tenant, "alpha", batch("b1", 0..200)).await.unwrap();
    assert_eq!((ack.duplicate, ack.upserted, ack.removed), (false, 200, 0));
    store.apply_batch(tenant, "beta", batch("b1", 0..10)).await.unwrap();
    let stats = store.stats(tenant).await.unwrap();
    assert_eq!((stats.units, stats.repos), (210, 2));

    // Exact structural match: similarity 1 in both repositories, location kept.
    let results = store.query(tenant, &[probe("exact", t2_of(5), sketch_of(5))], &options(0.5, 10)).await.unwrap();
    let matches = &results[0].matches;
    assert_eq!(matches.len(), 2, "{matches:?}");
    assert!(matches.iter().all(|m| m.exact && m.similarity == 1.0 && m.key == "unit-5"));
    assert_eq!(matches[0].repo, "alpha");
    assert_eq!(matches[0].pattern_id, t2_of(5).pattern_id());
    assert_eq!(matches[0].location.as_ref().map(|l| l.name.as_str()), Some("function_5"));

    // Near miss: 8 of 64 positions differ and the structural hash differs.
    let results = store.query(tenant, &[probe("near", T2Hash(1), near_sketch_of(150, 8))], &options(0.5, 10)).await.unwrap();
    let matches = &results[0].matches;
    assert_eq!(matches.len(), 1, "{matches:?}");
    assert!(!matches[0].exact);
    assert!((matches[0].similarity - 56.0 / 64.0).abs() < 1e-6);

    // Below the threshold: not returned.
    let results = store.query(tenant, &[probe("far", T2Hash(1), near_sketch_of(150, 40))], &options(0.9, 10)).await.unwrap();
    assert!(results[0].matches.is_empty());

    // Unrelated sketch: nothing.
    let results = store.query(tenant, &[probe("none", T2Hash(2), sketch_of(99_999))], &options(0.1, 10)).await.unwrap();
    assert!(results[0].matches.is_empty());

    // exclude_repo and top_k.
    let mut excluding = options(0.5, 10);
    excluding.exclude_repo = Some("alpha".into());
    let results = store.query(tenant, &[probe("ex", t2_of(5), sketch_of(5))], &excluding).await.unwrap();
    assert_eq!(results[0].matches.iter().map(|m| m.repo.as_str()).collect::<Vec<_>>(), vec!["beta"]);
    let results = store.query(tenant, &[probe("top", t2_of(5), sketch_of(5))], &options(0.5, 1)).await.unwrap();
    assert_eq!(results[0].matches.len(), 1);

    // Many sketches at once: one result per sketch, in order.
    let many: Vec<QuerySketch> = (0..40).map(|n| probe(&format!("m{n}"), t2_of(n), sketch_of(n))).collect();
    let results = store.query(tenant, &many, &options(0.9, 5)).await.unwrap();
    assert_eq!(results.len(), 40);
    for (n, result) in results.iter().enumerate() {
        assert_eq!(result.id, format!("m{n}"));
        assert!(result.matches.iter().any(|m| m.key == format!("unit-{n}") && m.repo == "alpha"));
    }
}

async fn retried_batches_apply_once(store: &dyn Store, tenant: &str) {
    let first = store.apply_batch(tenant, "repo", batch("same-id", 0..30)).await.unwrap();
    assert!(!first.duplicate);
    // The retry carries other content on purpose: a duplicate must not be applied at all.
    let retry = store.apply_batch(tenant, "repo", batch("same-id", 100..150)).await.unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.upserted, retry.removed), (30, 0));
    assert_eq!(store.stats(tenant).await.unwrap().units, 30);
    // Batch ids are per repository.
    let other_repo = store.apply_batch(tenant, "other", batch("same-id", 0..5)).await.unwrap();
    assert!(!other_repo.duplicate);
    assert_eq!(store.stats(tenant).await.unwrap().units, 35);
}

async fn removals_and_replacements_take_effect(store: &dyn Store, tenant: &str) {
    store.apply_batch(tenant, "repo", batch("b1", 0..20)).await.unwrap();
    let removal = DeltaBatch { batch_id: "b2".into(), upserts: Vec::new(), removals: vec!["unit-3".into(), "unit-4".into(), "never-existed".into()] };
    let ack = store.apply_batch(tenant, "repo", removal).await.unwrap();
    assert_eq!(ack.removed, 2);
    assert_eq!(store.stats(tenant).await.unwrap().units, 18);
    let results = store.query(tenant, &[probe("gone", t2_of(3), sketch_of(3))], &options(0.1, 10)).await.unwrap();
    assert!(results[0].matches.is_empty(), "removed unit still found");

    // Same key, new fingerprint: the old one is no longer found, the new one is.
    let mut replaced = unit(500);
    replaced.key = "unit-7".into();
    store.apply_batch(tenant, "repo", DeltaBatch { batch_id: "b3".into(), upserts: vec![replaced], removals: Vec::new() }).await.unwrap();
    assert_eq!(store.stats(tenant).await.unwrap().units, 18);
    let old = store.query(tenant, &[probe("old", t2_of(7), sketch_of(7))], &options(0.1, 10)).await.unwrap();
    assert!(old[0].matches.is_empty());
    let new = store.query(tenant, &[probe("new", t2_of(500), sketch_of(500))], &options(0.9, 10)).await.unwrap();
    assert_eq!(new[0].matches.len(), 1);
    assert_eq!(new[0].matches[0].key, "unit-7");
}

async fn tenants_are_isolated(store: &dyn Store, tenant_a: &str, tenant_b: &str) {
    store.apply_batch(tenant_a, "shared-name", batch("b1", 0..10)).await.unwrap();
    store.apply_batch(tenant_a, "shared-name-2", batch("b1", 0..10)).await.unwrap();
    store.set_pattern_meta(tenant_a, t2_of(1), named("a's name", None, 1)).await.unwrap();

    // B sees none of A's units, patterns or names.
    let results = store.query(tenant_b, &[probe("q", t2_of(1), sketch_of(1))], &options(0.0, 10)).await.unwrap();
    assert!(results[0].matches.is_empty());
    assert!(store.pattern(tenant_b, t2_of(1)).await.unwrap().is_none());
    assert!(store.top_patterns(tenant_b, 10).await.unwrap().is_empty());
    assert_eq!(store.stats(tenant_b).await.unwrap().units, 0);

    // B using the same repository name, batch id and keys changes nothing of A's.
    let ack = store.apply_batch(tenant_b, "shared-name", batch("b1", 0..3)).await.unwrap();
    assert!(!ack.duplicate, "batch ids are per tenant");
    let removal = DeltaBatch { batch_id: "b2".into(), upserts: Vec::new(), removals: vec!["unit-1".into(), "unit-2".into()] };
    store.apply_batch(tenant_b, "shared-name", removal).await.unwrap();
    store.set_pattern_meta(tenant_b, t2_of(1), named("b's name", None, 2)).await.unwrap();
    assert_eq!(store.stats(tenant_a).await.unwrap().units, 20);
    let a_pattern = store.pattern(tenant_a, t2_of(1)).await.unwrap().unwrap();
    assert_eq!(a_pattern.summary.name.as_deref(), Some("a's name"));
    assert_eq!(a_pattern.summary.units, 2);
    let b_results = store.query(tenant_b, &[probe("q", t2_of(0), sketch_of(0))], &options(0.5, 10)).await.unwrap();
    assert_eq!(b_results[0].matches.len(), 1, "B sees only its own unit");
}

async fn patterns_group_exact_structure_across_repos(store: &dyn Store, tenant: &str) {
    // Unit 1 in three repos, unit 2 in two, units 3.. once each.
    store.apply_batch(tenant, "r1", batch("b", 1..10)).await.unwrap();
    store.apply_batch(tenant, "r2", batch("b", 1..3)).await.unwrap();
    store.apply_batch(tenant, "r3", batch("b", 1..2)).await.unwrap();
    let top = store.top_patterns(tenant, 10).await.unwrap();
    assert_eq!(top.len(), 2, "single units are not patterns: {top:?}");
    assert_eq!((top[0].id.as_str(), top[0].units, top[0].repos), (t2_of(1).pattern_id().as_str(), 3, 3));
    assert_eq!((top[1].units, top[1].repos), (2, 2));
    assert_eq!(store.top_patterns(tenant, 1).await.unwrap().len(), 1);
    assert_eq!(store.stats(tenant).await.unwrap().patterns, 2);

    let detail = store
        .set_pattern_meta(tenant, t2_of(1), named("Result wrapper", Some("prefer util::wrap"), 1_700_000_000))
        .await
        .unwrap();
    assert_eq!(detail.summary.name.as_deref(), Some("Result wrapper"));
    assert_eq!((detail.summary.named_by.as_deref(), detail.summary.named_at), (Some("token-a"), Some(1_700_000_000)), "who named it and when");
    assert_eq!(detail.occurrences.len(), 3);
    assert_eq!(detail.occurrences.iter().map(|o| o.repo.as_str()).collect::<Vec<_>>(), vec!["r1", "r2", "r3"]);
    let top = store.top_patterns(tenant, 10).await.unwrap();
    assert_eq!(top[0].note.as_deref(), Some("prefer util::wrap"));

    // Naming a shape nobody has yet is allowed and then visible.
    let lonely = store.set_pattern_meta(tenant, T2Hash(42), named("future", None, 1_700_000_100)).await.unwrap();
    assert_eq!(lonely.summary.units, 0);
    assert!(store.pattern(tenant, T2Hash(42)).await.unwrap().is_some());
    // Named patterns, whatever their unit count, most recently named first.
    let listed: Vec<(String, Option<String>)> = store.named_patterns(tenant, 10).await.unwrap().into_iter().map(|p| (p.id, p.name)).collect();
    assert_eq!(listed, vec![(T2Hash(42).pattern_id(), Some("future".into())), (t2_of(1).pattern_id(), Some("Result wrapper".into()))]);
    assert_eq!(store.named_patterns(tenant, 1).await.unwrap().len(), 1);
    // Clearing the name.
    let cleared = store.set_pattern_meta(tenant, t2_of(1), PatternMeta { named_by: Some("token-b".into()), named_at: Some(1_700_000_200), ..PatternMeta::default() }).await.unwrap();
    assert_eq!(cleared.summary.name, None);
    assert_eq!(store.named_patterns(tenant, 10).await.unwrap().len(), 1, "a cleared name is no longer listed");
}

/// A unit of shape `shape` (as `unit(shape)` has it) under `key`, in family `family` (a shape
/// number) when given.
fn shaped(key: &str, shape: u64, family: Option<u64>) -> UnitUpsert {
    UnitUpsert { key: key.into(), family: family.map(t2_of), ..unit(shape) }
}

fn upserts(batch_id: &str, upserts: Vec<UnitUpsert>, removals: &[&str]) -> DeltaBatch {
    DeltaBatch { batch_id: batch_id.into(), upserts, removals: removals.iter().map(|key| key.to_string()).collect() }
}

/// (repository, key, kind) of every occurrence, sorted.
fn kinds(detail: &PatternDetail) -> Vec<(String, String, Option<OccurrenceKind>)> {
    let mut found: Vec<_> = detail.occurrences.iter().map(|o| (o.repo.clone(), o.key.clone(), o.kind)).collect();
    found.sort();
    found
}

/// A near-miss family seen in one repository (shapes X and Y, Y's units sent with family X)
/// makes one team pattern of every unit of X and Y in every repository: its id is the shape
/// most units have, any of its shapes resolves to it, occurrences say which are near misses,
/// names given through any shape apply to it, and links follow removals and replacements.
async fn near_miss_families_join_shapes_into_one_team_pattern(store: &dyn Store, tenant: &str) {
    let (x, y) = (1000u64, 1001u64);
    let (shape_x, shape_y) = (t2_of(x), t2_of(y));
    use OccurrenceKind::{T2, T3};
    let occurrence = |repo: &str, key: &str, kind| (repo.to_string(), key.to_string(), Some(kind));

    // Repository b alone first: one unit of X and one of Y, no family; Y is named there.
    store.apply_batch(tenant, "b", upserts("b1", vec![shaped("b-x", x, None), shaped("b-y", y, None)], &[])).await.unwrap();
    assert!(store.top_patterns(tenant, 10).await.unwrap().is_empty(), "two shapes of one unit each are no pattern");
    store.set_pattern_meta(tenant, shape_y, named("named through y", None, 100)).await.unwrap();

    // Repository a holds the family: two units of X, one of Y sent with family X.
    let family_batch = upserts("a1", vec![shaped("a-x1", x, None), shaped("a-x2", x, None), shaped("a-y", y, Some(x))], &[]);
    store.apply_batch(tenant, "a", family_batch.clone()).await.unwrap();
    let top = store.top_patterns(tenant, 10).await.unwrap();
    assert_eq!(top.len(), 1, "one team pattern: {top:?}");
    assert_eq!((top[0].id.as_str(), top[0].units, top[0].repos), (shape_x.pattern_id().as_str(), 5, 2), "{top:?}");
    assert_eq!(top[0].name.as_deref(), Some("named through y"), "a name under any shape of the family applies");
    assert_eq!(store.stats(tenant).await.unwrap().patterns, 1);
    let through_y = store.pattern(tenant, shape_y).await.unwrap().expect("resolved");
    let through_x = store.pattern(tenant, shape_x).await.unwrap().expect("found");
    assert_eq!(through_y, through_x, "any shape of the family answers with the family");
    assert_eq!(through_x.summary.id, shape_x.pattern_id());
    assert_eq!(
        kinds(&through_x),
        vec![occurrence("a", "a-x1", T2), occurrence("a", "a-x2", T2), occurrence("a", "a-y", T3), occurrence("b", "b-x", T2), occurrence("b", "b-y", T3)]
    );
    // A query match names its unit's team pattern, whichever shape it has.
    let near = store.query(tenant, &[probe("y", shape_y, sketch_of(y))], &options(0.99, 10)).await.unwrap();
    assert_eq!(near[0].matches.len(), 2, "{near:?}");
    assert!(near[0].matches.iter().all(|m| m.pattern_id == shape_x.pattern_id()), "{near:?}");
    // A retried batch changes no link count (checked below, when a removal leaves one holder).
    assert!(store.apply_batch(tenant, "a", family_batch).await.unwrap().duplicate);

    // Naming through Y stores the name under the family's id; the newest name applies, and
    // the family is listed once among named patterns.
    let renamed = store.set_pattern_meta(tenant, shape_y, named("family name", Some("one helper"), 200)).await.unwrap();
    assert_eq!((renamed.summary.id.as_str(), renamed.summary.name.as_deref()), (shape_x.pattern_id().as_str(), Some("family name")));
    let listed: Vec<(String, Option<String>)> = store.named_patterns(tenant, 10).await.unwrap().into_iter().map(|p| (p.id, p.name)).collect();
    assert_eq!(listed, vec![(shape_x.pattern_id(), Some("family name".to_string()))]);

    // A second holder of the same link, then one removed: still one family.
    store.apply_batch(tenant, "a", upserts("a2", vec![shaped("a-y2", y, Some(x))], &[])).await.unwrap();
    store.apply_batch(tenant, "a", upserts("a3", Vec::new(), &["a-y2"])).await.unwrap();
    assert_eq!(store.pattern(tenant, shape_y).await.unwrap().expect("family").summary.units, 5, "the link has a holder left");

    // When Y becomes the most common shape the family takes its id; the old id still answers
    // and the family's name stays.
    let more_y = (0..3).map(|n| shaped(&format!("c-y{n}"), y, None)).collect();
    store.apply_batch(tenant, "c", upserts("c1", more_y, &[])).await.unwrap();
    let grown = store.pattern(tenant, shape_x).await.unwrap().expect("old id answers");
    assert_eq!((grown.summary.id.as_str(), grown.summary.units, grown.summary.repos), (shape_y.pattern_id().as_str(), 8, 3));
    assert_eq!(grown.summary.name.as_deref(), Some("family name"));
    assert!(grown.occurrences.iter().filter(|o| o.key.contains("-x")).all(|o| o.kind == Some(T3)));
    assert_eq!(store.top_patterns(tenant, 10).await.unwrap().iter().map(|p| p.id.clone()).collect::<Vec<_>>(), vec![shape_y.pattern_id()]);
    let moved = store.query(tenant, &[probe("x", shape_x, sketch_of(x))], &options(0.99, 10)).await.unwrap();
    assert!(!moved[0].matches.is_empty() && moved[0].matches.iter().all(|m| m.pattern_id == shape_y.pattern_id()), "{moved:?}");
    store.apply_batch(tenant, "c", upserts("c2", Vec::new(), &["c-y0", "c-y1", "c-y2"])).await.unwrap();

    // The unit re-sent without its family (same key and shape): the link is gone, X and Y
    // are patterns of their own again, each with the name stored under it.
    store.apply_batch(tenant, "a", upserts("a4", vec![shaped("a-y", y, None)], &[])).await.unwrap();
    let x_alone = store.pattern(tenant, shape_x).await.unwrap().expect("x");
    assert_eq!((x_alone.summary.id.as_str(), x_alone.summary.units), (shape_x.pattern_id().as_str(), 3));
    assert_eq!(x_alone.summary.name.as_deref(), Some("family name"));
    let y_alone = store.pattern(tenant, shape_y).await.unwrap().expect("y");
    assert_eq!((y_alone.summary.id.as_str(), y_alone.summary.units, y_alone.summary.name.as_deref()), (shape_y.pattern_id().as_str(), 2, Some("named through y")));
    assert!(y_alone.occurrences.iter().all(|o| o.kind == Some(T2)));
    let apart = store.query(tenant, &[probe("y", shape_y, sketch_of(y))], &options(0.99, 10)).await.unwrap();
    assert!(apart[0].matches.iter().all(|m| m.pattern_id == shape_y.pattern_id()), "{apart:?}");
    assert_eq!(store.stats(tenant).await.unwrap().patterns, 2);

    // Linked again, then the linking unit removed: separate again.
    store.apply_batch(tenant, "a", upserts("a5", vec![shaped("a-y", y, Some(x))], &[])).await.unwrap();
    assert_eq!(store.top_patterns(tenant, 10).await.unwrap().len(), 1);
    store.apply_batch(tenant, "a", upserts("a6", Vec::new(), &["a-y"])).await.unwrap();
    let top: Vec<(String, u64)> = store.top_patterns(tenant, 10).await.unwrap().into_iter().map(|p| (p.id, p.units)).collect();
    assert_eq!(top, vec![(shape_x.pattern_id(), 3)], "y keeps one unit: no pattern");
}

/// Deleting a repository (`repo_delete`: list keys, remove them as batches, forget batch ids)
/// in steps smaller than the repository: its units, group and band entries, pattern counts
/// and family links go; another repository's units, pattern names, and another tenant's
/// repository of the same name stay; a later push of it starts clean (old batch ids apply).
async fn deleting_a_repository_removes_its_units_links_and_batch_ids(store: &dyn Store, tenant: &str, other_tenant: &str) {
    const UNITS: u64 = 2100;
    let (x, y) = (5000u64, 5001u64);
    store.apply_batch(tenant, "doomed", batch("b1", 0..UNITS)).await.unwrap();
    store.apply_batch(tenant, "doomed", upserts("b2", vec![shaped("d-x", x, None), shaped("d-y", y, Some(x))], &[])).await.unwrap();
    store.apply_batch(tenant, "kept", upserts("k1", vec![unit(1), unit(2), shaped("k-x", x, None), shaped("k-y", y, None)], &[])).await.unwrap();
    store.apply_batch(other_tenant, "doomed", batch("b1", 0..5)).await.unwrap();
    store.set_pattern_meta(tenant, t2_of(1), named("kept name", None, 300)).await.unwrap();
    assert_eq!(store.stats(tenant).await.unwrap().patterns, 3, "units 1 and 2 in both repositories, and the family of x and y");

    let listed = store.repo_keys(tenant, "doomed", 10).await.unwrap();
    assert_eq!(listed.len(), 10, "a listing stops at its limit: {listed:?}");
    assert!(listed.iter().all(|key| key.starts_with("unit-") || key.starts_with("d-")), "{listed:?}");
    assert!(store.repo_keys(tenant, "never-pushed", 10).await.unwrap().is_empty());

    let (removed, outcome) = crate::store::repo_delete::delete_repository(store, tenant, "doomed", 1000, |batch| store.apply_batch(tenant, "doomed", batch)).await;
    outcome.expect("deleted");
    assert_eq!(removed, UNITS + 2);
    assert!(store.repo_keys(tenant, "doomed", 10).await.unwrap().is_empty());
    let stats = store.stats(tenant).await.unwrap();
    assert_eq!((stats.units, stats.repos, stats.patterns), (4, 1, 0), "only the kept repository's units, none shared any more");
    assert!(store.top_patterns(tenant, 10).await.unwrap().is_empty());
    let gone = store.query(tenant, &[probe("10", t2_of(10), sketch_of(10))], &options(0.5, 10)).await.unwrap();
    assert!(gone[0].matches.is_empty(), "{gone:?}");
    let kept = store.query(tenant, &[probe("1", t2_of(1), sketch_of(1))], &options(0.99, 10)).await.unwrap();
    assert_eq!(kept[0].matches.iter().map(|m| (m.repo.as_str(), m.key.as_str())).collect::<Vec<_>>(), vec![("kept", "unit-1")]);
    let y_alone = store.pattern(tenant, t2_of(y)).await.unwrap().expect("y has a unit left");
    assert_eq!((y_alone.summary.id, y_alone.summary.units), (t2_of(y).pattern_id(), 1), "the family link left with its unit");
    let names: Vec<Option<String>> = store.named_patterns(tenant, 10).await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, vec![Some("kept name".to_string())], "pattern names belong to the tenant and stay");

    // Another tenant's repository of the same name is untouched, its batch ids too.
    assert_eq!(store.stats(other_tenant).await.unwrap().units, 5);
    assert!(store.apply_batch(other_tenant, "doomed", batch("b1", 0..5)).await.unwrap().duplicate);
    // A later push starts clean: a batch id used before the deletion applies again.
    let again = store.apply_batch(tenant, "doomed", batch("b1", 0..3)).await.unwrap();
    assert!(!again.duplicate && again.upserted == 3, "{again:?}");
    assert_eq!(store.stats(tenant).await.unwrap().repos, 2);
    // Deleting a repository without units removes nothing and is no error.
    let (removed, outcome) = crate::store::repo_delete::delete_repository(store, tenant, "never-pushed", 1000, |batch| store.apply_batch(tenant, "never-pushed", batch)).await;
    outcome.expect("nothing to delete");
    assert_eq!(removed, 0);
}

/// A name set by token `token-a` at `at` (seconds since the Unix epoch).
fn named(name: &str, note: Option<&str>, at: u64) -> PatternMeta {
    PatternMeta { name: Some(name.into()), note: note.map(Into::into), named_by: Some("token-a".into()), named_at: Some(at) }
}

/// `fingerprints` is how the cloud uplink learns what a batch takes away: it must answer the
/// stored T2 of each key, in order, `None` for keys never stored or removed, the new T2 after a
/// replacement, and nothing of another repository or tenant. The lookup spans more keys than
/// one backend read (1000 fields) so that answers stay in order across reads.
async fn fingerprints_follow_upserts_removals_and_replacements(store: &dyn Store, tenant: &str, other_tenant: &str) {
    store.apply_batch(tenant, "repo", batch("b1", 0..30)).await.unwrap();
    let keys: Vec<String> = (0..1500).map(|n| format!("unit-{n}")).collect();
    let found = store.fingerprints(tenant, "repo", &keys).await.unwrap();
    let expected: Vec<Option<T2Hash>> = (0..1500).map(|n| (n < 30).then(|| t2_of(n))).collect();
    assert_eq!(found, expected, "fingerprints of stored keys, None for the rest, in order");

    // A repeated key is answered at each position.
    let repeated: Vec<String> = ["unit-4", "missing", "unit-4"].iter().map(|key| key.to_string()).collect();
    assert_eq!(store.fingerprints(tenant, "repo", &repeated).await.unwrap(), vec![Some(t2_of(4)), None, Some(t2_of(4))]);
    assert!(store.fingerprints(tenant, "repo", &[]).await.unwrap().is_empty());

    // Removed: None. Replaced (same key, new shape): the new T2.
    let mut replaced = unit(900);
    replaced.key = "unit-6".into();
    let change = DeltaBatch { batch_id: "b2".into(), upserts: vec![replaced], removals: vec!["unit-5".into()] };
    store.apply_batch(tenant, "repo", change).await.unwrap();
    let probe_keys: Vec<String> = ["unit-5", "unit-6", "unit-7"].iter().map(|key| key.to_string()).collect();
    assert_eq!(store.fingerprints(tenant, "repo", &probe_keys).await.unwrap(), vec![None, Some(t2_of(900)), Some(t2_of(7))]);

    // Another repository of the tenant, or another tenant with the same repository name: nothing.
    assert_eq!(store.fingerprints(tenant, "other-repo", &probe_keys).await.unwrap(), vec![None, None, None]);
    assert_eq!(store.fingerprints(other_tenant, "repo", &probe_keys).await.unwrap(), vec![None, None, None]);
}

/// A content hash unlike every other `content_hash(m)`.
pub fn content_hash(number: u64) -> ContentHash {
    let mut hash = [0u8; 32];
    for (position, chunk) in hash.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&splitmix(number.wrapping_mul(4) + position as u64).to_le_bytes());
    }
    hash
}

/// An entry of `len` bytes that tells which number (and which variant) it was made for.
pub fn analysis_entry(number: u64, variant: u8, len: usize) -> Vec<u8> {
    let mut entry = vec![variant; len];
    let tag = number.to_le_bytes();
    let tagged = tag.len().min(len);
    entry[..tagged].copy_from_slice(&tag[..tagged]);
    entry
}

fn roomy() -> AnalysisPolicy {
    AnalysisPolicy { budget_bytes: 64 << 20, ttl: Duration::from_secs(3600) }
}

async fn analyses_round_trip_in_order_and_unknown_hashes_miss(store: &dyn Store, tenant: &str) {
    let policy = roomy();
    assert!(store.analyses(tenant, "engine-1", &[content_hash(1)], &policy).await.unwrap()[0].is_none(), "an empty cache misses");
    // Sizes from empty to more than one backend step (16 hashes, 4 MiB per write).
    let sizes = [0usize, 1, 1000, 300 << 10, 3 << 20, 2 << 20];
    let entries: Vec<(ContentHash, Vec<u8>)> = (0..20u64).map(|n| (content_hash(n), analysis_entry(n, 1, sizes[n as usize % sizes.len()]))).collect();
    assert_eq!(store.store_analyses(tenant, "engine-1", entries.clone(), &policy).await.unwrap(), 20);
    let mut asked: Vec<ContentHash> = (0..20u64).rev().map(content_hash).collect();
    asked.insert(3, content_hash(999));
    asked.push(content_hash(5));
    let found = store.analyses(tenant, "engine-1", &asked, &policy).await.unwrap();
    assert_eq!(found.len(), asked.len(), "one answer per hash");
    for (hash, answer) in asked.iter().zip(&found) {
        let expected = entries.iter().find(|(stored, _)| stored == hash).map(|(_, entry)| entry);
        assert_eq!(answer.as_ref(), expected, "entry of a hash, in order, None for the unknown one");
    }
    assert!(store.analyses(tenant, "engine-1", &[], &policy).await.unwrap().is_empty());

    // Storing a held entry again refreshes it and keeps the first bytes.
    assert_eq!(store.store_analyses(tenant, "engine-1", vec![(content_hash(2), analysis_entry(2, 9, 1000))], &policy).await.unwrap(), 1);
    assert_eq!(store.analyses(tenant, "engine-1", &[content_hash(2)], &policy).await.unwrap()[0].as_ref(), Some(&entries[2].1));
}

async fn analyses_are_isolated_by_tenant_and_analysis_key(store: &dyn Store, tenant_a: &str, tenant_b: &str) {
    let policy = roomy();
    let a_entry = analysis_entry(7, 0xa, 2000);
    store.store_analyses(tenant_a, "engine-1", vec![(content_hash(7), a_entry.clone())], &policy).await.unwrap();
    // B's lookup of A's hash is a plain miss; so is A's own under another analysis key.
    assert_eq!(store.analyses(tenant_b, "engine-1", &[content_hash(7)], &policy).await.unwrap(), vec![None]);
    assert_eq!(store.analyses(tenant_a, "engine-2", &[content_hash(7)], &policy).await.unwrap(), vec![None]);
    // B storing the same hash keeps its own entry and changes nothing of A's.
    let b_entry = analysis_entry(7, 0xb, 3000);
    assert_eq!(store.store_analyses(tenant_b, "engine-1", vec![(content_hash(7), b_entry.clone())], &policy).await.unwrap(), 1);
    assert_eq!(store.analyses(tenant_a, "engine-1", &[content_hash(7)], &policy).await.unwrap(), vec![Some(a_entry.clone())]);
    assert_eq!(store.analyses(tenant_b, "engine-1", &[content_hash(7)], &policy).await.unwrap(), vec![Some(b_entry)]);
    // A new analysis key is a new address: storing there leaves the old entry as it was.
    let newer = analysis_entry(7, 0xc, 100);
    store.store_analyses(tenant_a, "engine-2", vec![(content_hash(7), newer.clone())], &policy).await.unwrap();
    assert_eq!(store.analyses(tenant_a, "engine-2", &[content_hash(7)], &policy).await.unwrap(), vec![Some(newer)]);
    assert_eq!(store.analyses(tenant_a, "engine-1", &[content_hash(7)], &policy).await.unwrap(), vec![Some(a_entry)]);
}

async fn analyses_beyond_the_budget_evict_the_least_recently_used(store: &dyn Store, tenant: &str) {
    const LEN: usize = 10_000;
    let policy = AnalysisPolicy { budget_bytes: 3 * charged_bytes(LEN), ttl: Duration::from_secs(3600) };
    let entry = |n: u64| (content_hash(n), analysis_entry(n, 0, LEN));
    for n in 0..3 {
        store.store_analyses(tenant, "engine-1", vec![entry(n)], &policy).await.unwrap();
    }
    // 0 is used again (a lookup) and 1 refreshed (an upload of what is held): 2 is now the
    // least recently used, and the fourth entry evicts it alone.
    assert!(store.analyses(tenant, "engine-1", &[content_hash(0)], &policy).await.unwrap()[0].is_some());
    store.store_analyses(tenant, "engine-1", vec![entry(1)], &policy).await.unwrap();
    store.store_analyses(tenant, "engine-1", vec![entry(3)], &policy).await.unwrap();
    let held = |found: Vec<Option<Vec<u8>>>| found.iter().map(Option::is_some).collect::<Vec<_>>();
    let all: Vec<ContentHash> = (0..4).map(content_hash).collect();
    assert_eq!(held(store.analyses(tenant, "engine-1", &all, &policy).await.unwrap()), vec![true, true, false, true]);

    // One upload of more than the budget evicts everything older and keeps what fits of its own.
    let many: Vec<(ContentHash, Vec<u8>)> = (10..20).map(entry).collect();
    assert_eq!(store.store_analyses(tenant, "engine-1", many, &policy).await.unwrap(), 10);
    let found = held(store.analyses(tenant, "engine-1", &(0..20).map(content_hash).collect::<Vec<_>>(), &policy).await.unwrap());
    assert_eq!(found.iter().filter(|hit| **hit).count(), 3, "the budget holds three: {found:?}");
    assert!(found[..10].iter().all(|hit| !hit), "the older entries went first: {found:?}");
    // An entry larger than the whole budget is not stored (it would only evict everything).
    assert_eq!(store.store_analyses(tenant, "engine-1", vec![(content_hash(50), analysis_entry(50, 0, 4 * LEN))], &policy).await.unwrap(), 0);
    assert!(store.analyses(tenant, "engine-1", &[content_hash(50)], &policy).await.unwrap()[0].is_none());
}

async fn analyses_unused_for_the_ttl_expire(store: &dyn Store, tenant: &str) {
    let short = AnalysisPolicy { budget_bytes: 1 << 20, ttl: Duration::from_secs(1) };
    store.store_analyses(tenant, "engine-1", vec![(content_hash(1), analysis_entry(1, 0, 100))], &short).await.unwrap();
    assert!(store.analyses(tenant, "engine-1", &[content_hash(1)], &short).await.unwrap()[0].is_some());
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(store.analyses(tenant, "engine-1", &[content_hash(1)], &short).await.unwrap(), vec![None], "unused for longer than the TTL");
    // Stored again after expiry, it is a hit again (the expired bookkeeping does not block it).
    assert_eq!(store.store_analyses(tenant, "engine-1", vec![(content_hash(1), analysis_entry(1, 2, 100))], &short).await.unwrap(), 1);
    assert_eq!(store.analyses(tenant, "engine-1", &[content_hash(1)], &short).await.unwrap(), vec![Some(analysis_entry(1, 2, 100))]);
}
