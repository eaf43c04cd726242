//! Checks on request values that JSON types cannot express (lengths, ranges, character
//! sets). The same bounds are written in the OpenAPI document; messages name the field.

use base64::Engine as _;
use periodic_wire::{AnalysisLookup, AnalysisUpload, DeltaBatch, MAX_ANALYSIS_ENTRY_BYTES, MAX_ANALYSIS_KEY_CHARS, MAX_ANALYSIS_LOOKUP, MAX_ANALYSIS_UPLOAD, PatternUpdate, QueryRequest, T2Hash};

use crate::api::Limits;
use crate::api::error::ApiError;
use crate::store::{AnalysisEntries, ContentHash};

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

/// Analysis keys: 1 to [`MAX_ANALYSIS_KEY_CHARS`] of `A-Za-z0-9._:-` (they become part of a
/// storage address).
pub fn analysis_key(value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > MAX_ANALYSIS_KEY_CHARS || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)) {
        return Err(ApiError::bad_request(format!(
            "field `analysis`: an analysis key is 1-{MAX_ANALYSIS_KEY_CHARS} characters among letters, digits, '.', '_', ':' and '-'"
        )));
    }
    Ok(())
}

/// A content hash: blake3 of a file's bytes, exactly 64 lowercase hex characters.
fn content_hash(field: impl FnOnce() -> String, value: &str) -> Result<ContentHash, ApiError> {
    let digit = |byte: u8| match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    };
    let bytes = value.as_bytes();
    let mut hash = [0u8; 32];
    if bytes.len() == 64 {
        let mut valid = true;
        for (position, pair) in bytes.chunks_exact(2).enumerate() {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(high), Some(low)) => hash[position] = high << 4 | low,
                _ => valid = false,
            }
        }
        if valid {
            return Ok(hash);
        }
    }
    Err(ApiError::bad_request(format!("field `{}`: a content hash is exactly 64 lowercase hex characters (blake3 of the file's bytes)", field())))
}

/// The hashes of a lookup, checked and decoded.
pub fn analysis_lookup(request: &AnalysisLookup) -> Result<Vec<ContentHash>, ApiError> {
    analysis_key(&request.analysis)?;
    if request.hashes.len() > MAX_ANALYSIS_LOOKUP {
        return Err(ApiError::bad_request(format!("field `hashes`: at most {MAX_ANALYSIS_LOOKUP} hashes per lookup, got {}", request.hashes.len())));
    }
    request.hashes.iter().enumerate().map(|(index, hash)| content_hash(|| format!("hashes[{index}]"), hash)).collect()
}

/// Base64 characters of the largest entry.
const MAX_ENTRY_BASE64_CHARS: usize = MAX_ANALYSIS_ENTRY_BYTES.div_ceil(3) * 4;

/// An upload's analysis key and its entries, checked and decoded.
pub fn analysis_upload(upload: AnalysisUpload) -> Result<(String, AnalysisEntries), ApiError> {
    analysis_key(&upload.analysis)?;
    if upload.entries.len() > MAX_ANALYSIS_UPLOAD {
        return Err(ApiError::bad_request(format!("field `entries`: at most {MAX_ANALYSIS_UPLOAD} entries per upload, got {}", upload.entries.len())));
    }
    let too_large = |index: usize| ApiError::bad_request(format!("field `entries[{index}].entry`: an entry is at most {MAX_ANALYSIS_ENTRY_BYTES} bytes once decoded"));
    let mut entries = Vec::with_capacity(upload.entries.len());
    for (index, item) in upload.entries.into_iter().enumerate() {
        let hash = content_hash(|| format!("entries[{index}].hash"), &item.hash)?;
        // Refused before decoding: the text alone says it is too large.
        if item.entry.len() > MAX_ENTRY_BASE64_CHARS {
            return Err(too_large(index));
        }
        let entry = base64::engine::general_purpose::STANDARD
            .decode(item.entry.as_bytes())
            .map_err(|error| ApiError::bad_request(format!("field `entries[{index}].entry`: not standard base64 with padding: {error}")))?;
        if entry.len() > MAX_ANALYSIS_ENTRY_BYTES {
            return Err(too_large(index));
        }
        entries.push((hash, entry));
    }
    Ok((upload.analysis, entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use periodic_wire::AnalysisEntry;

    fn message(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        let error = result.expect_err("refused");
        assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST);
        error.message
    }

    #[test]
    fn analysis_keys_hashes_and_entries_are_checked_field_by_field() {
        let hash = "0123456789abcdef".repeat(4);
        let lookup = |analysis: &str, hashes: Vec<String>| AnalysisLookup { analysis: analysis.into(), hashes };
        assert_eq!(analysis_lookup(&lookup("engine-7:ab.cd_ef", vec![hash.clone()])).expect("valid")[0][..2], [0x01, 0x23]);
        assert!(message(analysis_lookup(&lookup("", vec![]))).contains("`analysis`"));
        assert!(message(analysis_lookup(&lookup("a/b", vec![]))).contains("`analysis`"));
        assert!(message(analysis_lookup(&lookup(&"k".repeat(MAX_ANALYSIS_KEY_CHARS + 1), vec![]))).contains("`analysis`"));
        assert!(analysis_lookup(&lookup(&"k".repeat(MAX_ANALYSIS_KEY_CHARS), vec![])).is_ok());
        for bad in [hash.to_uppercase(), hash[..63].to_string(), format!("{hash}0"), format!("{}g", &hash[..63])] {
            assert!(message(analysis_lookup(&lookup("v1", vec![hash.clone(), bad]))).contains("`hashes[1]`"));
        }
        assert!(message(analysis_lookup(&lookup("v1", vec![hash.clone(); MAX_ANALYSIS_LOOKUP + 1]))).contains("`hashes`"));

        let upload = |entries: Vec<AnalysisEntry>| AnalysisUpload { analysis: "v1".into(), entries };
        let entry = |text: &str| AnalysisEntry { hash: hash.clone(), entry: text.into() };
        let (_, decoded) = analysis_upload(upload(vec![entry("aGVsbG8="), entry("")])).expect("valid");
        assert_eq!(decoded.iter().map(|(_, bytes)| bytes.as_slice()).collect::<Vec<_>>(), vec![&b"hello"[..], &b""[..]]);
        assert!(message(analysis_upload(upload(vec![entry("aGVsbG8")]))).contains("`entries[0].entry`"), "unpadded");
        assert!(message(analysis_upload(upload(vec![entry("aGVs*G8=")]))).contains("`entries[0].entry`"));
        let largest = base64::engine::general_purpose::STANDARD.encode(vec![0u8; MAX_ANALYSIS_ENTRY_BYTES]);
        assert!(analysis_upload(upload(vec![entry(&largest)])).is_ok());
        let larger = base64::engine::general_purpose::STANDARD.encode(vec![0u8; MAX_ANALYSIS_ENTRY_BYTES + 1]);
        assert!(message(analysis_upload(upload(vec![entry(&larger)]))).contains("at most"));
        assert!(message(analysis_upload(upload(vec![entry("aGVsbG8="); MAX_ANALYSIS_UPLOAD + 1]))).contains("`entries`"));
        let bad_hash = AnalysisEntry { hash: "xyz".into(), entry: String::new() };
        assert!(message(analysis_upload(upload(vec![entry(""), bad_hash]))).contains("`entries[1].hash`"));
    }
}
