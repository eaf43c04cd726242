//! Build script shared by the `periodic` and `periodic-edge` binaries (edge-server's build.rs
//! includes this file): records the git commit the binary is built from, for `--version`.
//! Outside a git checkout (a source tarball) it uses `PERIODIC_COMMIT` when set, else says
//! the commit is unknown; a build never fails for want of git.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

pub fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-env-changed=PERIODIC_COMMIT");
    let commit = match git(&manifest_dir, &["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            // Rebuild when HEAD moves: HEAD itself (branch switch) and the branch it points at.
            if let Some(head) = git(&manifest_dir, &["rev-parse", "--path-format=absolute", "--git-path", "HEAD"]) {
                println!("cargo:rerun-if-changed={head}");
            }
            if let Some(branch) = git(&manifest_dir, &["symbolic-ref", "-q", "HEAD"])
                && let Some(reference) = git(&manifest_dir, &["rev-parse", "--path-format=absolute", "--git-path", &branch])
            {
                println!("cargo:rerun-if-changed={reference}");
            }
            if let Some(packed) = git(&manifest_dir, &["rev-parse", "--path-format=absolute", "--git-path", "packed-refs"]) {
                println!("cargo:rerun-if-changed={packed}");
            }
            commit
        }
        None => std::env::var("PERIODIC_COMMIT").ok().filter(|commit| !commit.trim().is_empty()).unwrap_or_else(|| "unknown commit".to_string()),
    };
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rustc-env=PERIODIC_LONG_VERSION={version} ({commit})");
    println!("cargo:rustc-env=PERIODIC_COMMIT={commit}");
}
