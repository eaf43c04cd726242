//! Checks on request values that JSON types cannot express (lengths, ranges, character
//! sets). The same bounds are written in the OpenAPI document; messages name the field.

use periodic_wire::{DeltaBatch, PatternUpdate, QueryRequest, T2Hash};

use crate::api::Limits;
use crate::api::error::ApiError;

pub const MAX_REPO_LEN: usize = 200;
pub const MAX_ID_LEN: usize = 128;
/// `maxItems` of `upserts` and `removals` in the OpenAPI document.
pub const MAX_BATCH_ITEMS: usize = 5000;
pub const MAX_KEY_LEN: usize = 512;
pub const MAX_LANGUAGE_LEN: usize = 64;
pub const MAX_PATH_LEN: usize = 4096;
pub const MAX_NAME_LEN: usize = 1024;
pub const MAX_PATTERN_NAME_LEN: usize = 200;
pub const MAX_PATTERN_NOTE_LEN: usize = 4000;

/// Repository names: 1-200 of letters, digits, `.`, `_`, `-`.
pub fn repo_name(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > MAX_REPO_LEN || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(ApiError::bad_request(format!("{field}: repository names are 1-{MAX_REPO_LEN} characters among letters, digits, '.', '_' and '-'")));
    }
    Ok(())
}

fn length(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    length_of(|| field.to_string(), value, min, max)
}

/// [`length`] for fields of array items, whose name is formatted only when it is needed
/// (a delta batch has thousands of items).
fn length_of(field: impl FnOnce() -> String, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    // A UTF-8 string has at most as many characters as bytes and at least a quarter as many,
    // so most values are settled without counting characters.
    if value.len() <= max && value.len().div_ceil(4) >= min {
        return Ok(());
    }
    let count = value.chars().count();
    if count < min || count > max {
        return Err(ApiError::bad_request(format!("field `{}`: length must be within {min}..={max}, got {count}", field())));
    }
    Ok(())
}

/// A pattern id in a path: `P-` and the 16 hex characters of a `t2_hash`, or (as earlier
/// versions wrote it) the bare 16 lowercase hex characters.
pub fn pattern_id(value: &str) -> Result<T2Hash, ApiError> {
    T2Hash::from_pattern_id(value)
        .ok_or_else(|| ApiError::bad_request("path `id`: a pattern id is `P-` and 16 hex characters (or the bare 16 lowercase hex characters)"))
}

pub fn delta_batch(batch: &DeltaBatch, limits: &Limits) -> Result<(), ApiError> {
    length("batch_id", &batch.batch_id, 1, MAX_ID_LEN)?;
    // An array longer than the schema allows is a malformed request (400); a well-formed
    // batch above this server's configured size is too large (413), checked last.
    for (field, items) in [("upserts", batch.upserts.len()), ("removals", batch.removals.len())] {
        if items > MAX_BATCH_ITEMS {
            return Err(ApiError::bad_request(format!("field `{field}`: at most {MAX_BATCH_ITEMS} items, got {items}")));
        }
    }
    for (index, upsert) in batch.upserts.iter().enumerate() {
        length_of(|| format!("upserts[{index}].key"), &upsert.key, 1, MAX_KEY_LEN)?;
        length_of(|| format!("upserts[{index}].language"), &upsert.language, 1, MAX_LANGUAGE_LEN)?;
        if let Some(location) = &upsert.location {
            length_of(|| format!("upserts[{index}].location.path"), &location.path, 1, MAX_PATH_LEN)?;
            length_of(|| format!("upserts[{index}].location.name"), &location.name, 0, MAX_NAME_LEN)?;
            if location.start_line > location.end_line {
                return Err(ApiError::bad_request(format!("field `upserts[{index}].location`: start_line is after end_line")));
            }
        }
    }
    for (index, key) in batch.removals.iter().enumerate() {
        length_of(|| format!("removals[{index}]"), key, 1, MAX_KEY_LEN)?;
    }
    let size = batch.upserts.len() + batch.removals.len();
    if size > limits.max_batch_units {
        return Err(ApiError::too_large(format!("batch has {size} upserts and removals; at most {} are accepted", limits.max_batch_units)));
    }
    Ok(())
}

pub fn query(request: &QueryRequest, limits: &Limits) -> Result<(), ApiError> {
    if request.sketches.is_empty() || request.sketches.len() > limits.max_query_sketches {
        return Err(ApiError::bad_request(format!("field `sketches`: between 1 and {} sketches per query", limits.max_query_sketches)));
    }
    for (index, sketch) in request.sketches.iter().enumerate() {
        length_of(|| format!("sketches[{index}].id"), &sketch.id, 0, MAX_ID_LEN)?;
    }
    if let Some(repo) = &request.exclude_repo {
        repo_name("field `exclude_repo`", repo)?;
    }
    if let Some(min_similarity) = request.min_similarity
        && !(0.0..=1.0).contains(&min_similarity)
    {
        return Err(ApiError::bad_request("field `min_similarity`: must be within 0..=1"));
    }
    if let Some(top_k) = request.top_k
        && (top_k == 0 || top_k as usize > limits.max_top_k)
    {
        return Err(ApiError::bad_request(format!("field `top_k`: must be within 1..={}", limits.max_top_k)));
    }
    Ok(())
}

pub fn pattern_update(update: &PatternUpdate) -> Result<(), ApiError> {
    if let Some(name) = &update.name {
        length("name", name, 0, MAX_PATTERN_NAME_LEN)?;
    }
    if let Some(note) = &update.note {
        length("note", note, 0, MAX_PATTERN_NOTE_LEN)?;
    }
    Ok(())
}
