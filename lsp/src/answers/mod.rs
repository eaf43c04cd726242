//! The answers layer: the questions every front end asks — the language server, the MCP
//! server and the command line — answered once, as plain data, from a workspace
//! [`Snapshot`]: what is similar to the code at a place or to a snippet, which patterns
//! exist (largest first), what is pattern P.
//!
//! Nothing here knows a protocol: no LSP, MCP or JSON types. Each front end converts these
//! answers into its own (`server::to_proto`, `mcp::tools`, `commands`). `workspace` holds
//! the state the answers are computed from: a folder's engine and the immutable snapshots
//! it publishes.

mod patterns;
mod similar;
pub mod snippet;
pub mod text;
pub mod workspace;

#[cfg(test)]
mod tests;

use periodic_core::{Instance, Language, Pattern};

pub use patterns::{Member, PatternAnswer, PatternFilter, is_under, matches_text, pattern, patterns};
pub use similar::{Copy, Group, SimilarAt, SimilarCode, group_at, groups, innermost_unit, similar_at, similar_code};
pub use workspace::{Snapshot, Workspace};

/// A place in the workspace: a unit, or a block of code.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    /// Relative to the workspace root, `/`-separated.
    pub path: String,
    pub language: Language,
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    /// The unit's name; `None` for a block.
    pub unit: Option<String>,
    /// For a block, the name of the innermost unit around it (`None` at top level).
    pub within: Option<String>,
}

impl Place {
    pub fn of(snapshot: &Snapshot, instance: &Instance) -> Option<Place> {
        let file = snapshot.file(instance.file)?;
        let unit = snapshot.instance_name(instance).map(str::to_string);
        let within = match instance.unit {
            Some(_) => None,
            None => file
                .units
                .iter()
                .filter(|unit| unit.start_line <= instance.start_line && instance.end_line <= unit.end_line)
                .min_by_key(|unit| unit.end_line - unit.start_line)
                .map(|unit| unit.name.clone()),
        };
        Some(Place { path: file.path.clone(), language: file.language, start_line: instance.start_line, end_line: instance.end_line, unit, within })
    }

    pub fn is_block(&self) -> bool {
        self.unit.is_none()
    }

    /// The name to show: the unit's, or the one around a block (empty at top level).
    pub fn display_name(&self) -> &str {
        self.unit.as_deref().or(self.within.as_deref()).unwrap_or("")
    }
}

/// A pattern named in an answer.
#[derive(Clone, Debug, PartialEq)]
pub struct PatternRef {
    pub id: String,
    pub name: String,
}

impl PatternRef {
    pub fn of(pattern: &Pattern) -> PatternRef {
        PatternRef { id: pattern.id.clone(), name: pattern.name().to_string() }
    }
}
