//! What the team end-to-end tests share: the function two developers' repositories hold
//! (under other names), the language server's options for a workspace synced with an edge,
//! and writing a file of a test workspace.

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::path::Path;

use serde_json::{Value, json};

pub const MONEY: &str = "def round_amount(amount, places):\n    factor = 10 ** places\n    scaled = amount * factor\n    if scaled - int(scaled) >= 0.5:\n        scaled = int(scaled) + 1\n    else:\n        scaled = int(scaled)\n    return scaled / factor\n";

/// Options of a workspace synced with the edge at `url` as repository `repo`; team answers
/// expire after a second, so tests see a teammate's change quickly.
pub fn options(url: &str, token: &str, repo: &str) -> Value {
    json!({"debounceMs": 0, "minLines": 4, "minTokens": 20,
           "edge": {"url": url, "share": "locations", "token": token, "repo": repo, "queryTtlSeconds": 1}})
}

pub fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().expect("a parent folder")).expect("create the folder");
    std::fs::write(file, text).expect("write the file");
}
