"""Per-language facts the quality harness needs: grammar, file extension, how a function is
wrapped so that it parses on its own, which tree-sitter node types are functions, blocks,
statements, comments, strings, identifiers and literals, and which statements the T3
operator may insert."""

from __future__ import annotations

from dataclasses import dataclass, field
import re

import tree_sitter as ts


def _load(lang: str) -> ts.Language:
    if lang == "python":
        import tree_sitter_python as m
        return ts.Language(m.language())
    if lang == "javascript":
        import tree_sitter_javascript as m
        return ts.Language(m.language())
    if lang == "typescript":
        import tree_sitter_typescript as m
        return ts.Language(m.language_typescript())
    if lang == "java":
        import tree_sitter_java as m
        return ts.Language(m.language())
    if lang == "rust":
        import tree_sitter_rust as m
        return ts.Language(m.language())
    if lang == "go":
        import tree_sitter_go as m
        return ts.Language(m.language())
    if lang == "c":
        import tree_sitter_c as m
        return ts.Language(m.language())
    raise ValueError(lang)


# Node types kept whole as one token: splitting them would let layout edits reach inside
# a string or a regex, and their content is a literal anyway.
ATOMIC_STRINGS = {
    "string", "template_string", "string_literal", "raw_string_literal", "char_literal",
    "character_literal", "interpreted_string_literal", "rune_literal", "text_block",
    "concatenated_string_part", "regex", "system_lib_string",
}
COMMENTS = {"comment", "line_comment", "block_comment"}
LITERAL_LEAVES = re.compile(
    r"^(integer|float|number|number_literal|int_literal|float_literal|imaginary_literal|"
    r"integer_literal|decimal_integer_literal|hex_integer_literal|octal_integer_literal|"
    r"binary_integer_literal|decimal_floating_point_literal|hex_floating_point_literal|"
    r"true|false|boolean_literal)$"
)
IDENTIFIER_LEAVES = re.compile(r"identifier$")


@dataclass
class LangSpec:
    name: str
    ext: str
    grammar: ts.Language
    function_types: set[str]
    # Function types that only parse inside a class / impl, so the file wraps them.
    needs_container: set[str]
    block_types: set[str]
    comment_prefix: str
    # Statement templates for the T3 insert operator; {v} is a variable of the function,
    # {w} a fresh word, {n} a small number.
    insert_templates: list[str]
    builtin_types: set[str] = field(default_factory=set)
    # Node types whose identifier children are names bound by the function (parameters
    # and local declarations): consistent renaming is limited to those.
    binding_types: set[str] = field(default_factory=set)
    # Block child types that must not get a statement inserted before them (case labels).
    no_insert_before: set[str] = field(default_factory=set)

    def wrap(self, func_text: str, file_id: str, node_type: str) -> tuple[str, str]:
        """Returns (header, footer) so that header + func_text + footer parses."""
        cls = "C" + re.sub(r"[^A-Za-z0-9]", "", file_id.title())
        if self.name == "go":
            return "package p\n\n", "\n"
        if self.name == "java":
            return f"class {cls} {{\n", "\n}\n"
        if self.name == "rust":
            return f"struct {cls};\n\nimpl {cls} {{\n", "\n}\n"
        if self.name in ("javascript", "typescript") and node_type in self.needs_container:
            return f"class {cls} {{\n", "\n}\n"
        return "", "\n"


_C_LIKE_BLOCKS = {"statement_block", "block", "compound_statement", "statement_list"}


def build_specs() -> dict[str, LangSpec]:
    specs = [
        LangSpec(
            "python", "py", _load("python"),
            function_types={"function_definition"}, needs_container=set(),
            block_types={"block"}, comment_prefix="#",
            insert_templates=[
                "{w} = {v}",
                "logger.debug(\"{w}\", {v})",
                "if {v} is None:\n{ind}    return None",
                "{v} = {w}({v})",
                "assert {v} is not None",
            ],
            binding_types={"parameters", "assignment", "for_statement", "for_in_clause",
                           "as_pattern_target", "with_item", "lambda_parameters",
                           "default_parameter", "typed_parameter", "typed_default_parameter",
                           "list_splat_pattern", "dictionary_splat_pattern", "pattern_list",
                           "tuple_pattern", "augmented_assignment", "except_clause",
                           "named_expression"},
        ),
        LangSpec(
            "javascript", "js", _load("javascript"),
            function_types={"function_declaration", "method_definition",
                            "generator_function_declaration"},
            needs_container={"method_definition"},
            block_types={"statement_block"}, comment_prefix="//",
            insert_templates=[
                "const {w} = {v};",
                "console.log(\"{w}\", {v});",
                "if ({v} === undefined) {{ return; }}",
                "{v} = {w}({v});",
            ],
            binding_types={"formal_parameters", "variable_declarator", "for_in_statement",
                           "assignment_pattern", "rest_pattern", "array_pattern",
                           "object_pattern", "catch_clause", "arrow_function"},
            no_insert_before={"switch_case", "switch_default"},
        ),
        LangSpec(
            "typescript", "ts", _load("typescript"),
            function_types={"function_declaration", "method_definition",
                            "generator_function_declaration"},
            needs_container={"method_definition"},
            block_types={"statement_block"}, comment_prefix="//",
            insert_templates=[
                "const {w} = {v};",
                "console.log(\"{w}\", {v});",
                "if ({v} === undefined) {{ return; }}",
                "{v} = {w}({v});",
            ],
            builtin_types={"string", "number", "boolean", "any", "unknown", "never", "void",
                           "object", "symbol", "bigint", "undefined", "null"},
            binding_types={"formal_parameters", "required_parameter", "optional_parameter",
                           "variable_declarator", "for_in_statement", "assignment_pattern",
                           "rest_pattern", "array_pattern", "object_pattern", "catch_clause",
                           "arrow_function"},
            no_insert_before={"switch_case", "switch_default"},
        ),
        LangSpec(
            "java", "java", _load("java"),
            function_types={"method_declaration"}, needs_container={"method_declaration"},
            block_types={"block"}, comment_prefix="//",
            insert_templates=[
                "Object {w} = {v};",
                "System.out.println({v});",
                "if ({v} == null) {{ throw new IllegalStateException(\"{w}\"); }}",
                "{v} = {w}({v});",
            ],
            builtin_types={"String", "Object", "Integer", "Long", "Boolean", "Override"},
            binding_types={"formal_parameter", "spread_parameter", "variable_declarator",
                           "enhanced_for_statement", "catch_formal_parameter",
                           "lambda_expression", "inferred_parameters",
                           "resource", "instanceof_expression", "record_pattern_component",
                           "type_pattern"},
            no_insert_before={"switch_label", "explicit_constructor_invocation"},
        ),
        LangSpec(
            "rust", "rs", _load("rust"),
            function_types={"function_item"}, needs_container={"function_item"},
            block_types={"block"}, comment_prefix="//",
            insert_templates=[
                "let {w} = {v}.clone();",
                "println!(\"{w} {{:?}}\", {v});",
                "if {w}({v}) {{ return Default::default(); }}",
                "debug_assert!({w}(&{v}));",
            ],
            builtin_types={"Self", "Option", "Result", "Vec", "String", "Box", "Some", "Ok",
                           "Err", "None"},
            binding_types={"parameter", "let_declaration", "for_expression", "closure_parameters",
                           "tuple_pattern", "struct_pattern", "tuple_struct_pattern",
                           "reference_pattern", "mut_pattern", "let_condition",
                           "match_pattern", "field_pattern", "slice_pattern"},
        ),
        LangSpec(
            "go", "go", _load("go"),
            function_types={"function_declaration", "method_declaration"}, needs_container=set(),
            block_types={"statement_list"}, comment_prefix="//",
            insert_templates=[
                "_ = {v}",
                "fmt.Println(\"{w}\", {v})",
                "if {w}({v}) {{\n{ind}\treturn\n{ind}}}",
                "{w}({v})",
            ],
            builtin_types={"int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16",
                           "uint32", "uint64", "uintptr", "float32", "float64", "complex64",
                           "complex128", "string", "bool", "byte", "rune", "error", "any"},
            binding_types={"parameter_declaration", "variadic_parameter_declaration",
                           "short_var_declaration", "var_spec", "range_clause", "const_spec",
                           "receive_statement"},
            no_insert_before=set(),
        ),
        LangSpec(
            "c", "c", _load("c"),
            function_types={"function_definition"}, needs_container=set(),
            block_types={"compound_statement"}, comment_prefix="//",
            insert_templates=[
                "(void){v};",
                "pr_debug(\"{w}\\n\");",
                "if (!{v})\n{ind}\treturn -EINVAL;",
                "{w}({v});",
            ],
            binding_types={"parameter_declaration", "init_declarator", "declaration",
                           "pointer_declarator", "array_declarator"},
            no_insert_before={"case_statement", "labeled_statement", "declaration"},
        ),
    ]
    return {s.name: s for s in specs}


LANGUAGES = ["python", "javascript", "typescript", "java", "rust", "go", "c"]
