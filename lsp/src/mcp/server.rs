//! The MCP protocol handler: the tool list with its schemas, and one function per tool
//! that checks the arguments, asks the answers layer and converts the answer. Every bad
//! argument is a tool error (`isError: true`) with a message saying what to change; the
//! server keeps serving.

use std::sync::Arc;
use std::time::Duration;

use periodic_core::{Language, UnitRecord};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, JsonObject, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::State;
use super::tools::{self, *};
use crate::answers::snippet::{self, SnippetQuestion};
use crate::answers::{self, PatternFilter, text::read_lines};
use crate::edge_sync::UnitMatch;

/// A question about code waits at most this long for the team edge's answer.
const TEAM_WAIT: Duration = Duration::from_secs(2);

const INSTRUCTIONS: &str = "Periodic finds code that already exists in this repository (and, with a team edge server, in the team's other repositories), including near misses: renamed, with statements added or changed. Before writing a function, call find_similar_code with the code you are about to write; reuse or extend what it finds instead of adding another copy. find_similar_at answers the same for code already in a file; list_patterns and get_pattern show the recurring shapes of the codebase.";

#[derive(Clone)]
pub struct PeriodicMcp {
    state: Arc<State>,
}

/// A tool's failure, shown to the agent as a tool error.
struct ToolError(String);

impl<T: Into<String>> From<T> for ToolError {
    fn from(message: T) -> Self {
        ToolError(message.into())
    }
}

type ToolResult = Result<CallToolResult, ToolError>;

fn parse<T: DeserializeOwned>(tool: &str, arguments: Option<JsonObject>) -> Result<T, ToolError> {
    let value = serde_json::Value::Object(arguments.unwrap_or_default());
    serde_json::from_value(value).map_err(|error| ToolError(format!("invalid arguments for {tool}: {error}")))
}

/// A result with both forms: text for reading, `structuredContent` for programs.
fn result<T: Serialize>(structured: &T, text: String) -> ToolResult {
    let value = serde_json::to_value(structured).map_err(|error| ToolError(format!("cannot encode the answer: {error}")))?;
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    Ok(result)
}

fn limit(given: Option<u32>, default: u32, most: u32) -> Result<usize, ToolError> {
    match given {
        None => Ok(default as usize),
        Some(value) if (1..=most).contains(&value) => Ok(value as usize),
        Some(value) => Err(ToolError(format!("`limit` must be between 1 and {most}, not {value}"))),
    }
}

fn language(name: &str) -> Result<Language, ToolError> {
    Language::from_name(name.trim()).ok_or_else(|| {
        let known: Vec<&str> = Language::ALL.iter().map(|language| language.name()).collect();
        ToolError(format!("unknown language `{name}`; use one of {}", known.join(", ")))
    })
}

fn tool<Args: JsonSchema + 'static, Output: JsonSchema + 'static>(name: &'static str, title: &str, description: &'static str) -> Tool {
    Tool::new(name, description, Arc::new(JsonObject::new()))
        .with_title(title)
        .with_input_schema::<Args>()
        .with_output_schema::<Output>()
        .with_annotations(ToolAnnotations::with_title(title).read_only(true).destructive(false).idempotent(true).open_world(false))
}

pub fn tool_list() -> Vec<Tool> {
    vec![
        tool::<FindSimilarCodeArgs, FindSimilarCodeResult>(
            FIND_SIMILAR_CODE,
            "Find code similar to a snippet",
            "Before writing code, ask whether it already exists: returns the functions and blocks of this repository that are the same or nearly the same as `code` (renamed, statements added, removed or changed), most similar first, with path, lines, kind (T1/T2/T3), similarity, pattern and the closest copy's text; and, with a team edge server, similar code in the team's other repositories. Unrelated code of similar size returns nothing.",
        ),
        tool::<FindSimilarAtArgs, FindSimilarAtResult>(
            FIND_SIMILAR_AT,
            "Find code similar to a function in a file",
            "The same answer as find_similar_code, for the function (or duplicated block) at `line` of `path`.",
        ),
        tool::<ListPatternsArgs, ListPatternsResult>(
            LIST_PATTERNS,
            "List the patterns of the codebase",
            "Patterns are clusters of similar code. Returns them largest first (duplicated lines) with member counts and one member's location, optionally only those in a language or under a path.",
        ),
        tool::<GetPatternArgs, GetPatternResult>(GET_PATTERN, "Show one pattern", "Every member of pattern `id` with its location, kind and similarity, and the pattern's user-given name and note."),
    ]
}

impl PeriodicMcp {
    pub fn new(state: Arc<State>) -> PeriodicMcp {
        PeriodicMcp { state }
    }

    async fn call(&self, name: &str, arguments: Option<JsonObject>) -> ToolResult {
        match name {
            FIND_SIMILAR_CODE => self.find_similar_code(parse(name, arguments)?).await,
            FIND_SIMILAR_AT => self.find_similar_at(parse(name, arguments)?).await,
            LIST_PATTERNS => self.list_patterns(parse(name, arguments)?).await,
            GET_PATTERN => self.get_pattern(parse(name, arguments)?).await,
            other => Err(ToolError(format!("unknown tool `{other}`; the tools are {FIND_SIMILAR_CODE}, {FIND_SIMILAR_AT}, {LIST_PATTERNS}, {GET_PATTERN}"))),
        }
    }

    /// The text of the closest copy, from disk.
    fn closest_code(&self, matches: &mut [CodeMatch]) {
        if let Some(first) = matches.first_mut() {
            let path = self.state.root.join(&first.location.path);
            first.code = read_lines(&path, first.location.start_line, first.location.end_line).map(|code| clip_code(&code));
        }
    }

    /// The team's units similar to `units`, best first, waiting (bounded) for answers the
    /// sync has not cached yet. Empty without a team edge.
    async fn team_matches(&self, units: Vec<UnitRecord>, limit: usize) -> Vec<UnitMatch> {
        let edge = self.state.workspace.edge();
        if !edge.enabled() || units.is_empty() {
            return Vec::new();
        }
        let mut updates = edge.subscribe();
        let deadline = tokio::time::Instant::now() + TEAM_WAIT;
        let known = loop {
            let asked: Vec<&UnitRecord> = units.iter().collect();
            let known = edge.team_matches(&asked);
            if known.iter().all(Option::is_some) || tokio::time::timeout_at(deadline, updates.changed()).await.is_err() {
                break known;
            }
        };
        let mut matches: Vec<UnitMatch> = known.into_iter().flatten().flat_map(|matches| matches.as_slice().to_vec()).collect();
        matches.sort_by(|x, y| y.similarity.total_cmp(&x.similarity).then_with(|| (&x.repo, &x.key).cmp(&(&y.repo, &y.key))));
        let mut seen = std::collections::HashSet::new();
        matches.retain(|found| seen.insert((found.repo.clone(), found.key.clone())));
        matches.truncate(limit);
        matches
    }

    async fn find_similar_code(&self, args: FindSimilarCodeArgs) -> ToolResult {
        let limit = limit(args.limit, DEFAULT_MATCHES, MAX_MATCHES)?;
        if let Some(similarity) = args.min_similarity
            && !(similarity > 0.0 && similarity <= 1.0)
        {
            return Err(ToolError(format!("`min_similarity` must be in (0, 1], not {similarity}")));
        }
        let language = args.language.as_deref().map(language).transpose()?;
        let path = args.path.as_deref().map(|path| self.state.relative(path)).transpose()?;
        if args.code.trim().is_empty() {
            return Err(ToolError("`code` is empty: pass the code you are about to write".into()));
        }
        if args.code.len() > snippet::MAX_SNIPPET_BYTES {
            return Err(ToolError(snippet::SnippetError::TooLarge { bytes: args.code.len() }.to_string()));
        }
        self.state.wait_for_index().await;
        self.state.refresh_if_stale();
        let state = self.state.clone();
        let asked = tokio::task::spawn_blocking(move || {
            let question = SnippetQuestion { code: &args.code, language, path: path.as_deref(), min_similarity: args.min_similarity, limit };
            state.workspace.probe(|engine, snapshot| {
                let mut prepared = snippet::prepare(&question, engine.config(), snapshot)?;
                let threshold = engine.config().detection_for(prepared.language).similarity;
                let lowered = question.min_similarity.filter(|&minimum| minimum < threshold);
                let analysis = std::mem::take(&mut prepared.analysis);
                let probe = engine.probe(prepared.language, &prepared.text, analysis, lowered);
                let answer = snippet::answer(&prepared, &probe, snapshot, &question);
                Ok::<_, snippet::SnippetError>((answer, probe.record.units))
            })
        })
        .await
        .map_err(|error| ToolError(format!("the question failed: {error}")))?;
        let Some(asked) = asked else {
            return Err(ToolError(format!("{} has not been indexed yet; ask again in a few seconds", self.state.root.display())));
        };
        let (answer, units) = asked.map_err(|error| ToolError(error.to_string()))?;
        let team = self.team_matches(units, limit).await;
        let mut structured = tools::snippet_result(&answer, &team, self.state.index_state());
        self.closest_code(&mut structured.matches);
        let text = tools::snippet_text(&structured);
        result(&structured, text)
    }

    async fn find_similar_at(&self, args: FindSimilarAtArgs) -> ToolResult {
        let limit = limit(args.limit, DEFAULT_MATCHES, MAX_MATCHES)?;
        let relative = self.state.relative(&args.path)?;
        if !self.state.root.join(&relative).is_file() {
            return Err(ToolError(format!("`{}`: no such file under the root", args.path)));
        }
        if args.line == 0 {
            return Err(ToolError("`line` is 1-based: the first line is 1".into()));
        }
        self.state.wait_for_index().await;
        self.state.refresh_if_stale();
        let snapshot = self.state.workspace.snapshot();
        let Some(slot) = snapshot.slot(&relative) else {
            return Err(ToolError(format!("`{relative}` is not indexed: its language is unknown or disabled, or it is excluded (.gitignore, .periodicignore, generated, minified or too large)")));
        };
        let lines = snapshot.file(slot).map_or(0, |file| file.lines);
        if args.line > lines {
            return Err(ToolError(format!("line {} is past the end of `{relative}` ({lines} lines)", args.line)));
        }
        let mut answer = answers::similar_at(&snapshot, slot, args.line, |_| true, limit);
        let unit = answers::innermost_unit(&snapshot, slot, args.line)
            .and_then(|unit| self.state.workspace.inspect(|engine| engine.record(&relative).and_then(|record| record.units.get(unit as usize).cloned())).flatten());
        answer.team = self.team_matches(unit.into_iter().collect(), limit).await;
        let mut structured = tools::similar_at_result(&answer, self.state.index_state());
        self.closest_code(&mut structured.matches);
        let text = tools::similar_at_text(&structured, &relative, args.line);
        result(&structured, text)
    }

    async fn list_patterns(&self, args: ListPatternsArgs) -> ToolResult {
        let limit = limit(args.limit, DEFAULT_PATTERNS, MAX_PATTERNS)?;
        let language = args.language.as_deref().map(language).transpose()?;
        let path_prefix = args.path.as_deref().map(|path| self.state.relative(path)).transpose()?;
        self.state.wait_for_index().await;
        self.state.refresh_if_stale();
        let snapshot = self.state.workspace.snapshot();
        let filter = PatternFilter { text: None, language: language.map(|language| language.family().to_string()), path_prefix: path_prefix.clone() };
        let all = answers::patterns(&snapshot, &filter, usize::MAX);
        let structured = ListPatternsResult {
            total: all.len() as u32,
            patterns: all.iter().take(limit).map(|pattern| tools::pattern_summary(pattern, path_prefix.as_deref())).collect(),
            index: self.state.index_state(),
        };
        let text = tools::patterns_text(&structured);
        result(&structured, text)
    }

    async fn get_pattern(&self, args: GetPatternArgs) -> ToolResult {
        self.state.wait_for_index().await;
        self.state.refresh_if_stale();
        let snapshot = self.state.workspace.snapshot();
        let Some(pattern) = answers::pattern(&snapshot, &args.id) else {
            return Err(ToolError(format!("no pattern `{}` in this workspace; list_patterns gives the ids", args.id.trim())));
        };
        let structured = tools::pattern_result(&pattern, self.state.index_state());
        let text = tools::pattern_text(&structured);
        result(&structured, text)
    }
}

impl ServerHandler for PeriodicMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("periodic", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(&self, _request: Option<PaginatedRequestParams>, _context: RequestContext<RoleServer>) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tool_list()))
    }

    async fn call_tool(&self, request: CallToolRequestParams, _context: RequestContext<RoleServer>) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let outcome = match self.call(&name, request.arguments).await {
            Ok(result) => result,
            Err(ToolError(message)) => {
                tracing::info!("{name}: {message}");
                CallToolResult::error(vec![ContentBlock::text(message)])
            }
        };
        Ok(outcome.into())
    }
}
