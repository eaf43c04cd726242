//! Records the git commit `periodic-edge --version` prints; the logic is shared with the
//! `periodic` binary (lsp/build.rs).

#[path = "../lsp/build.rs"]
mod version;

fn main() {
    version::main();
}
