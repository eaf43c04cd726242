//! The language registry: every supported language, its grammar, file extensions and the
//! node kinds that matter to Periodic (units, literals, identifiers, imports), in one place.
//!
//! Node kinds are resolved to grammar ids once per language (`LanguageSpec`), so the hot
//! token walk classifies a node with one array lookup instead of string compares.

use std::sync::OnceLock;

/// A supported language. TSX and JSX are parsed by their own grammar variants but reported
/// under their family name (`typescript`, `javascript`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Java,
    Rust,
    Go,
    C,
    Cpp,
    CSharp,
    Ruby,
}

/// What a node kind means to the token walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeClass {
    /// Ordinary syntax: descend; a leaf becomes a token keyed by its kind.
    Other,
    /// A comment: produces no token, but is read for suppression markers.
    Comment,
    /// A literal (string, number, boolean...): one atomic token, text abstracted for Type-2.
    Literal,
    /// An identifier or a type name: one atomic token, text abstracted for Type-2.
    Identifier,
    /// Imports, includes, package clauses: skipped entirely (never clones worth reporting).
    Skip,
}

/// How a node kind takes part in finding the names a function binds (`crate::analysis`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingRole {
    /// Read as its parent is read.
    Neutral,
    /// A binding construct (a parameter list, a declaration, a loop head): the plain
    /// identifiers below it are names the function binds.
    Binds,
    /// A nested function or a block: a binding construct above it does not reach inside.
    Stops,
}

/// Fields under a binding construct that hold uses rather than bindings: a declaration's
/// type and initial value, a loop's iterable and body, a default argument.
const USE_FIELDS: &[&str] = &[
    "value", "right", "body", "type", "condition", "alternative", "arguments", "function", "object", "return_type",
    "default", "consequence", "iterable", "size", "dimensions", "annotation",
];

struct Definition {
    language: Language,
    name: &'static str,
    extensions: &'static [&'static str],
    grammar: fn() -> tree_sitter::Language,
    units: &'static [&'static str],
    literals: &'static [&'static str],
    /// Named kinds that hold a type or identifier but do not end in "identifier".
    identifiers: &'static [&'static str],
    skipped: &'static [&'static str],
    /// Kinds whose plain `identifier` descendants a function binds (parameters, local
    /// declarations, loop and pattern variables), read as `BindingRole` describes.
    bindings: &'static [&'static str],
}

const JS_UNITS: &[&str] = &[
    "function_declaration",
    "function_expression",
    "arrow_function",
    "method_definition",
    "generator_function_declaration",
    "generator_function",
];
const JS_LITERALS: &[&str] = &[
    "string", "template_string", "number", "regex", "true", "false", "null", "undefined",
];
const JS_SKIPPED: &[&str] = &["import_statement"];
const C_LITERALS: &[&str] = &[
    "string_literal",
    "char_literal",
    "number_literal",
    "true",
    "false",
    "null",
    "concatenated_string",
    "system_lib_string",
];
const C_IDENTIFIERS: &[&str] = &["primitive_type", "sized_type_specifier"];
const JS_BINDINGS: &[&str] = &[
    "formal_parameters", "variable_declarator", "for_in_statement", "assignment_pattern", "rest_pattern",
    "array_pattern", "object_pattern", "catch_clause", "arrow_function",
];
const TS_BINDINGS: &[&str] = &[
    "formal_parameters", "required_parameter", "optional_parameter", "variable_declarator", "for_in_statement",
    "assignment_pattern", "rest_pattern", "array_pattern", "object_pattern", "catch_clause", "arrow_function",
];
const C_BINDINGS: &[&str] = &["parameter_declaration", "init_declarator", "declaration", "pointer_declarator", "array_declarator"];

// One entry per language: adding a language means adding one entry here and one variant above.
const DEFINITIONS: &[Definition] = &[
    Definition {
        language: Language::Python,
        name: "python",
        extensions: &["py", "pyi", "pyw"],
        grammar: || tree_sitter_python::LANGUAGE.into(),
        units: &["function_definition", "lambda"],
        literals: &["string", "concatenated_string", "integer", "float", "true", "false", "none"],
        identifiers: &[],
        skipped: &["import_statement", "import_from_statement", "future_import_statement"],
        bindings: &[
            "parameters", "assignment", "for_statement", "for_in_clause", "as_pattern_target", "with_item",
            "lambda_parameters", "default_parameter", "typed_parameter", "typed_default_parameter",
            "list_splat_pattern", "dictionary_splat_pattern", "pattern_list", "tuple_pattern",
            "augmented_assignment", "except_clause", "named_expression",
        ],
    },
    Definition {
        language: Language::JavaScript,
        name: "javascript",
        extensions: &["js", "jsx", "mjs", "cjs"],
        grammar: || tree_sitter_javascript::LANGUAGE.into(),
        units: JS_UNITS,
        literals: JS_LITERALS,
        identifiers: &[],
        skipped: JS_SKIPPED,
        bindings: JS_BINDINGS,
    },
    Definition {
        language: Language::TypeScript,
        name: "typescript",
        extensions: &["ts", "mts", "cts"],
        grammar: || tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        units: JS_UNITS,
        literals: JS_LITERALS,
        identifiers: &["predefined_type"],
        skipped: JS_SKIPPED,
        bindings: TS_BINDINGS,
    },
    Definition {
        language: Language::Tsx,
        name: "tsx",
        extensions: &["tsx"],
        grammar: || tree_sitter_typescript::LANGUAGE_TSX.into(),
        units: JS_UNITS,
        literals: JS_LITERALS,
        identifiers: &["predefined_type"],
        skipped: JS_SKIPPED,
        bindings: TS_BINDINGS,
    },
    Definition {
        language: Language::Java,
        name: "java",
        extensions: &["java"],
        grammar: || tree_sitter_java::LANGUAGE.into(),
        units: &[
            "method_declaration",
            "constructor_declaration",
            "compact_constructor_declaration",
            "lambda_expression",
        ],
        literals: &[
            "string_literal",
            "character_literal",
            "decimal_integer_literal",
            "hex_integer_literal",
            "octal_integer_literal",
            "binary_integer_literal",
            "decimal_floating_point_literal",
            "hex_floating_point_literal",
            "true",
            "false",
            "null_literal",
        ],
        identifiers: &["integral_type", "floating_point_type", "boolean_type", "void_type"],
        skipped: &["import_declaration", "package_declaration"],
        bindings: &[
            "formal_parameter", "spread_parameter", "variable_declarator", "enhanced_for_statement",
            "catch_formal_parameter", "lambda_expression", "inferred_parameters", "resource",
            "instanceof_expression", "record_pattern_component", "type_pattern",
        ],
    },
    Definition {
        language: Language::Rust,
        name: "rust",
        extensions: &["rs"],
        grammar: || tree_sitter_rust::LANGUAGE.into(),
        units: &["function_item", "closure_expression"],
        literals: &[
            "string_literal",
            "raw_string_literal",
            "char_literal",
            "integer_literal",
            "float_literal",
            "boolean_literal",
        ],
        identifiers: &["primitive_type"],
        skipped: &["use_declaration", "extern_crate_declaration"],
        bindings: &[
            "parameter", "let_declaration", "for_expression", "closure_parameters", "tuple_pattern",
            "struct_pattern", "tuple_struct_pattern", "reference_pattern", "mut_pattern", "let_condition",
            "match_pattern", "field_pattern", "slice_pattern",
        ],
    },
    Definition {
        language: Language::Go,
        name: "go",
        extensions: &["go"],
        grammar: || tree_sitter_go::LANGUAGE.into(),
        units: &["function_declaration", "method_declaration", "func_literal"],
        literals: &[
            "interpreted_string_literal",
            "raw_string_literal",
            "rune_literal",
            "int_literal",
            "float_literal",
            "imaginary_literal",
            "true",
            "false",
            "nil",
            "iota",
        ],
        identifiers: &[],
        skipped: &["import_declaration", "package_clause"],
        bindings: &[
            "parameter_declaration", "variadic_parameter_declaration", "short_var_declaration", "var_spec",
            "range_clause", "const_spec", "receive_statement",
        ],
    },
    Definition {
        language: Language::C,
        name: "c",
        extensions: &["c", "h"],
        grammar: || tree_sitter_c::LANGUAGE.into(),
        units: &["function_definition"],
        literals: C_LITERALS,
        identifiers: C_IDENTIFIERS,
        skipped: &["preproc_include"],
        bindings: C_BINDINGS,
    },
    Definition {
        language: Language::Cpp,
        name: "cpp",
        extensions: &["cc", "cpp", "cxx", "c++", "hh", "hpp", "hxx", "h++", "ipp"],
        grammar: || tree_sitter_cpp::LANGUAGE.into(),
        units: &["function_definition", "lambda_expression"],
        literals: &[
            "string_literal",
            "raw_string_literal",
            "char_literal",
            "number_literal",
            "true",
            "false",
            "null",
            "concatenated_string",
            "system_lib_string",
            "user_defined_literal",
        ],
        identifiers: C_IDENTIFIERS,
        skipped: &["preproc_include", "using_declaration"],
        bindings: &[
            "parameter_declaration", "optional_parameter_declaration", "init_declarator", "declaration",
            "pointer_declarator", "reference_declarator", "array_declarator", "for_range_loop",
        ],
    },
    Definition {
        language: Language::CSharp,
        name: "csharp",
        extensions: &["cs"],
        grammar: || tree_sitter_c_sharp::LANGUAGE.into(),
        units: &[
            "method_declaration",
            "constructor_declaration",
            "destructor_declaration",
            "operator_declaration",
            "conversion_operator_declaration",
            "local_function_statement",
            "accessor_declaration",
            "lambda_expression",
        ],
        literals: &[
            "string_literal",
            "verbatim_string_literal",
            "raw_string_literal",
            "character_literal",
            "integer_literal",
            "real_literal",
            "boolean_literal",
            "null_literal",
            "interpolated_string_expression",
        ],
        identifiers: &["predefined_type"],
        skipped: &["using_directive", "extern_alias_directive"],
        bindings: &["parameter", "variable_declarator", "foreach_statement", "catch_declaration", "declaration_expression"],
    },
    Definition {
        language: Language::Ruby,
        name: "ruby",
        extensions: &["rb", "rake", "gemspec"],
        grammar: || tree_sitter_ruby::LANGUAGE.into(),
        units: &["method", "singleton_method", "lambda"],
        literals: &[
            "string",
            "integer",
            "float",
            "simple_symbol",
            "delimited_symbol",
            "hash_key_symbol",
            "true",
            "false",
            "nil",
            "regex",
            "character",
            "rational",
            "complex",
            "heredoc_body",
        ],
        identifiers: &["constant", "instance_variable", "class_variable", "global_variable"],
        skipped: &[],
        bindings: &["method_parameters", "block_parameters", "lambda_parameters", "assignment", "operator_assignment", "for"],
    },
];

/// A language with its grammar loaded and node kinds resolved to grammar ids.
pub struct LanguageSpec {
    pub language: Language,
    pub grammar: tree_sitter::Language,
    classes: Vec<NodeClass>,
    is_unit: Vec<bool>,
    binding_roles: Vec<BindingRole>,
    /// Kinds spelled `identifier`: the only ones a binding construct binds (a field or
    /// type name under it is not a variable).
    plain_identifier: Vec<bool>,
    /// Identifier kinds that name a type (`type_identifier`, `primitive_type`, ...).
    type_name: Vec<bool>,
    /// Ids of `USE_FIELDS` in this grammar.
    use_fields: Vec<u16>,
}

impl LanguageSpec {
    fn build(definition: &Definition) -> Self {
        let grammar = (definition.grammar)();
        let kind_count = grammar.node_kind_count();
        let mut classes = vec![NodeClass::Other; kind_count];
        let mut is_unit = vec![false; kind_count];
        let mut binding_roles = vec![BindingRole::Neutral; kind_count];
        let mut plain_identifier = vec![false; kind_count];
        let mut type_name = vec![false; kind_count];
        for id in 0..kind_count {
            let id16 = id as u16;
            let Some(kind) = grammar.node_kind_for_id(id16) else { continue };
            if !grammar.node_kind_is_named(id16) {
                continue;
            }
            let class = if kind.contains("comment") {
                NodeClass::Comment
            } else if definition.literals.contains(&kind) {
                NodeClass::Literal
            } else if kind.ends_with("identifier") || definition.identifiers.contains(&kind) {
                NodeClass::Identifier
            } else if definition.skipped.contains(&kind) {
                NodeClass::Skip
            } else {
                NodeClass::Other
            };
            classes[id] = class;
            is_unit[id] = definition.units.contains(&kind);
            plain_identifier[id] = kind == "identifier";
            type_name[id] = class == NodeClass::Identifier && kind.contains("type");
            binding_roles[id] = if definition.bindings.contains(&kind) {
                BindingRole::Binds
            } else if is_unit[id] || matches!(kind, "block" | "statement_block") {
                BindingRole::Stops
            } else {
                BindingRole::Neutral
            };
        }
        let use_fields = USE_FIELDS.iter().filter_map(|name| grammar.field_id_for_name(name)).map(u16::from).collect();
        LanguageSpec { language: definition.language, grammar, classes, is_unit, binding_roles, plain_identifier, type_name, use_fields }
    }

    #[inline]
    pub fn binding_role(&self, kind_id: u16) -> BindingRole {
        self.binding_roles.get(kind_id as usize).copied().unwrap_or(BindingRole::Neutral)
    }

    #[inline]
    pub fn is_plain_identifier(&self, kind_id: u16) -> bool {
        self.plain_identifier.get(kind_id as usize).copied().unwrap_or(false)
    }

    #[inline]
    pub fn is_type_name(&self, kind_id: u16) -> bool {
        self.type_name.get(kind_id as usize).copied().unwrap_or(false)
    }

    /// Whether a node in this field of its parent holds a use, not a binding.
    #[inline]
    pub fn is_use_field(&self, field_id: u16) -> bool {
        self.use_fields.contains(&field_id)
    }

    /// The class of a node kind; unknown ids (newer grammar than table) are ordinary syntax.
    #[inline]
    pub fn class(&self, kind_id: u16) -> NodeClass {
        self.classes.get(kind_id as usize).copied().unwrap_or(NodeClass::Other)
    }

    #[inline]
    pub fn is_unit(&self, kind_id: u16) -> bool {
        self.is_unit.get(kind_id as usize).copied().unwrap_or(false)
    }

    /// Node kinds named in the registry that the grammar does not have: a registry mistake.
    pub fn unknown_kinds(&self) -> Vec<&'static str> {
        let definition = definition(self.language);
        definition
            .units
            .iter()
            .chain(definition.literals)
            .chain(definition.identifiers)
            .chain(definition.skipped)
            .chain(definition.bindings)
            .copied()
            .filter(|kind| self.grammar.id_for_node_kind(kind, true) == 0)
            .collect()
    }
}

fn definition(language: Language) -> &'static Definition {
    DEFINITIONS
        .iter()
        .find(|definition| definition.language == language)
        .expect("every Language variant has a definition")
}

impl Language {
    pub const ALL: [Language; 11] = [
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::Tsx,
        Language::Java,
        Language::Rust,
        Language::Go,
        Language::C,
        Language::Cpp,
        Language::CSharp,
        Language::Ruby,
    ];

    /// The grammar's name, as used in configuration (`tsx` included).
    pub fn name(self) -> &'static str {
        definition(self).name
    }

    /// The name reports group by: TSX counts as TypeScript.
    pub fn family(self) -> &'static str {
        match self {
            Language::Tsx => "typescript",
            other => other.name(),
        }
    }

    pub fn extensions(self) -> &'static [&'static str] {
        definition(self).extensions
    }

    pub fn from_name(name: &str) -> Option<Language> {
        let lowered = name.to_ascii_lowercase();
        let alias = match lowered.as_str() {
            "js" | "jsx" => "javascript",
            "ts" => "typescript",
            "c++" => "cpp",
            "c#" | "cs" => "csharp",
            "py" => "python",
            "rb" => "ruby",
            "rs" => "rust",
            other => other,
        };
        DEFINITIONS.iter().find(|d| d.name == alias).map(|d| d.language)
    }

    pub fn from_extension(extension: &str) -> Option<Language> {
        let lowered = extension.to_ascii_lowercase();
        DEFINITIONS
            .iter()
            .find(|d| d.extensions.contains(&lowered.as_str()))
            .map(|d| d.language)
    }

    /// The loaded grammar and kind tables, built once per process.
    pub fn spec(self) -> &'static LanguageSpec {
        static SPECS: OnceLock<Vec<LanguageSpec>> = OnceLock::new();
        let specs = SPECS.get_or_init(|| Language::ALL.iter().map(|l| LanguageSpec::build(definition(*l))).collect());
        &specs[self as usize]
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.family())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grammar_loads_and_knows_its_registered_kinds() {
        for language in Language::ALL {
            let spec = language.spec();
            assert!(spec.grammar.node_kind_count() > 10, "{language:?} grammar is empty");
            assert_eq!(spec.unknown_kinds(), Vec::<&str>::new(), "{language:?}");
            let mut parser = tree_sitter::Parser::new();
            parser.set_language(&spec.grammar).expect("grammar ABI is supported");
        }
    }

    #[test]
    fn languages_are_found_by_extension_and_name() {
        assert_eq!(Language::from_extension("PY"), Some(Language::Python));
        assert_eq!(Language::from_extension("tsx"), Some(Language::Tsx));
        assert_eq!(Language::from_extension("hpp"), Some(Language::Cpp));
        assert_eq!(Language::from_extension("txt"), None);
        assert_eq!(Language::from_name("C#"), Some(Language::CSharp));
        assert_eq!(Language::Tsx.family(), "typescript");
    }
}
