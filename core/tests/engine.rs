//! Engine behaviour that is not tied to one language: recovery from syntax errors,
//! suppression comments, duplicated blocks that do not align with functions, nested units,
//! skipped generated and minified files, the default size minimums, and the names given
//! to closures and lambdas.

mod support;

use expect_test::{Expect, expect};
use periodic_core::Config;
use periodic_core::config::DetectionSettings;
use periodic_core::walk::SkipReason;
use support::{fixture_config, pairs_text, scan_fixture};

fn check(fixture: &str, expected: Expect) {
    let outcome = scan_fixture(fixture, fixture_config());
    expected.assert_eq(&pairs_text(&outcome));
}

fn unit_names(outcome: &periodic_core::ScanOutcome, path: &str) -> Vec<String> {
    let file = outcome.files.iter().find(|file| file.path == path).expect("file was scanned");
    file.units.iter().map(|unit| unit.name.clone()).collect()
}

/// A Python function used by several fixtures: 9 lines, well above the fixture minimums.
const PY_SUMMARY: &str = r#"def summarize_orders(orders, tax_rate):
    total = 0
    count = 0
    for order in orders:
        if order.status == "paid":
            total += order.amount * (1 + tax_rate)
            count += 1
    average = total / count if count else 0
    return {"total": round(total, 2), "count": count, "average": average}
"#;

/// A second, unrelated Python function for the suppression fixtures.
const PY_MERGE: &str = r#"def merge_ranges(ranges, gap):
    merged = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + gap:
            merged[-1][1] = max(merged[-1][1], end)
            continue
        merged.append([start, end])
    return [tuple(pair) for pair in merged]
"#;

#[test]
fn python_file_with_syntax_errors_still_yields_units_and_clones() {
    let fixture = format!(
        "//- /clean.py\n{PY_SUMMARY}\n//- /broken.py\ndef half_written(items):\n    if items\n        return items[0]]\n\n{PY_SUMMARY}"
    );
    let outcome = scan_fixture(&fixture, fixture_config());
    let broken = outcome.files.iter().find(|file| file.path == "broken.py").expect("broken.py was scanned");
    assert!(broken.has_syntax_errors);
    assert_eq!(outcome.stats.files_with_syntax_errors, 1);
    assert!(unit_names(&outcome, "broken.py").contains(&"summarize_orders".to_string()));
    expect![[r#"T1 broken.py:summarize_orders ~ clean.py:summarize_orders"#]].assert_eq(&pairs_text(&outcome));
}

#[test]
fn java_file_with_syntax_errors_still_yields_units_and_clones() {
    let method = r#"    public double paidTotal(List<Order> orders, double taxRate) {
        double total = 0;
        int count = 0;
        for (Order order : orders) {
            if ("paid".equals(order.getStatus())) {
                total += order.getAmount() * (1 + taxRate);
                count++;
            }
        }
        return count == 0 ? 0 : Math.round(total * 100) / 100.0;
    }
"#;
    let fixture = format!(
        "//- /Clean.java\npublic class Clean {{\n{method}\n    public String toString() {{\n        return \"clean\";\n    }}\n}}\n\
         //- /Broken.java\npublic class Broken {{\n    private int unfinished = ;\n\n    public void half(String text {{\n        text.trim(;\n    }}\n\n{method}}}\n"
    );
    let outcome = scan_fixture(&fixture, fixture_config());
    let broken = outcome.files.iter().find(|file| file.path == "Broken.java").expect("Broken.java was scanned");
    assert!(broken.has_syntax_errors);
    assert!(unit_names(&outcome, "Broken.java").contains(&"paidTotal".to_string()));
    expect!["T1 Broken.java:paidTotal ~ Clean.java:paidTotal"].assert_eq(&pairs_text(&outcome));
}

/// Both functions are copied; the marker comments in `copy` must hide exactly the first.
fn suppression_fixture(extension: &str, before: &str, after: &str) -> String {
    format!(
        "//- /original.{extension}\n{PY_SUMMARY}\n{PY_MERGE}\n//- /copy.{extension}\n{before}\n{PY_SUMMARY}{after}\n\n{PY_MERGE}"
    )
}

#[test]
fn periodic_ignore_hides_the_next_unit_only() {
    let outcome = scan_fixture(&suppression_fixture("py", "# periodic-ignore: kept in sync by hand", ""), fixture_config());
    expect![[r#"T1 copy.py:merge_ranges ~ original.py:merge_ranges"#]].assert_eq(&pairs_text(&outcome));
    assert!(!unit_names(&outcome, "copy.py").contains(&"summarize_orders".to_string()));
}

#[test]
fn periodic_ignore_start_and_end_hide_the_region_only() {
    let fixture = suppression_fixture("py", "# periodic-ignore-start", "# periodic-ignore-end");
    expect![[r#"T1 copy.py:merge_ranges ~ original.py:merge_ranges"#]]
        .assert_eq(&pairs_text(&scan_fixture(&fixture, fixture_config())));
}

#[test]
fn cpd_off_and_on_hide_the_region_only() {
    let fixture = suppression_fixture("py", "# CPD-OFF", "# CPD-ON");
    expect![[r#"T1 copy.py:merge_ranges ~ original.py:merge_ranges"#]]
        .assert_eq(&pairs_text(&scan_fixture(&fixture, fixture_config())));
}

#[test]
fn jscpd_ignore_start_and_end_hide_the_region_only() {
    check(
        r#"
//- /original.js
function summarizeOrders(orders, taxRate) {
  let total = 0;
  let count = 0;
  for (const order of orders) {
    if (order.status === "paid") {
      total += order.amount * (1 + taxRate);
      count += 1;
    }
  }
  return { total: Math.round(total * 100) / 100, count };
}

function mergeRanges(ranges, gap) {
  const merged = [];
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = merged[merged.length - 1];
    if (last && start <= last[1] + gap) {
      last[1] = Math.max(last[1], end);
      continue;
    }
    merged.push([start, end]);
  }
  return merged;
}
//- /copy.js
/* jscpd:ignore-start */
function summarizeOrders(orders, taxRate) {
  let total = 0;
  let count = 0;
  for (const order of orders) {
    if (order.status === "paid") {
      total += order.amount * (1 + taxRate);
      count += 1;
    }
  }
  return { total: Math.round(total * 100) / 100, count };
}
/* jscpd:ignore-end */

function mergeRanges(ranges, gap) {
  const merged = [];
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = merged[merged.length - 1];
    if (last && start <= last[1] + gap) {
      last[1] = Math.max(last[1], end);
      continue;
    }
    merged.push([start, end]);
  }
  return merged;
}
"#,
        expect!["T1 copy.js:mergeRanges ~ original.js:mergeRanges"],
    );
}

#[test]
fn a_block_copied_into_two_different_functions_is_reported_as_a_block() {
    check(
        r#"
//- /export.py
def export_report(report, path, fmt):
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown format {fmt}")
    rows = []
    for entry in report.entries:
        if entry.hidden:
            continue
        amount = entry.amount * (1 + report.tax_rate)
        label = entry.label.strip().title()
        rows.append({"label": label, "amount": round(amount, 2), "day": entry.day.isoformat()})
    with open(path, "w", encoding="utf-8") as handle:
        if fmt == "json":
            json.dump(rows, handle, indent=2)
        else:
            writer = csv.DictWriter(handle, fieldnames=["label", "amount", "day"])
            writer.writeheader()
            writer.writerows(rows)
    return len(rows)
//- /dashboard.py
def build_dashboard(report, user):
    widgets = {"owner": user.name, "title": report.title}
    rows = []
    for entry in report.entries:
        if entry.hidden:
            continue
        amount = entry.amount * (1 + report.tax_rate)
        label = entry.label.strip().title()
        rows.append({"label": label, "amount": round(amount, 2), "day": entry.day.isoformat()})
    widgets["chart"] = Chart(kind="bar", series=[row["amount"] for row in rows])
    widgets["table"] = Table(columns=["label", "amount"], rows=rows[:20])
    widgets["total"] = sum(row["amount"] for row in rows)
    if user.is_admin:
        widgets["audit"] = AuditLog.recent(report.id, limit=50)
    cache.set(f"dashboard:{report.id}:{user.id}", widgets, ttl=300)
    return widgets
"#,
        expect!["T1 dashboard.py:3-9 ~ export.py:4-10"],
    );
}

#[test]
fn a_duplicated_top_level_table_is_found() {
    check(
        r#"
//- /routes/admin.js
import { handlers } from "./handlers.js";

export const ROUTES = [
  { method: "GET", path: "/users", handler: "listUsers", auth: "admin" },
  { method: "POST", path: "/users", handler: "createUser", auth: "admin" },
  { method: "GET", path: "/users/:id", handler: "showUser", auth: "admin" },
  { method: "PUT", path: "/users/:id", handler: "updateUser", auth: "admin" },
  { method: "DELETE", path: "/users/:id", handler: "deleteUser", auth: "admin" },
];

export default handlers.bind(ROUTES);
//- /routes/legacy.js
const LEGACY_PREFIX = "/v0";

export const ROUTES = [
  { method: "GET", path: "/users", handler: "listUsers", auth: "admin" },
  { method: "POST", path: "/users", handler: "createUser", auth: "admin" },
  { method: "GET", path: "/users/:id", handler: "showUser", auth: "admin" },
  { method: "PUT", path: "/users/:id", handler: "updateUser", auth: "admin" },
  { method: "DELETE", path: "/users/:id", handler: "deleteUser", auth: "admin" },
];

function legacyPath(path) {
  return LEGACY_PREFIX + path;
}
"#,
        expect!["T1 routes/admin.js:3-9 ~ routes/legacy.js:3-9"],
    );
}

#[test]
fn a_copied_function_is_reported_once_not_again_for_its_closure() {
    let fixture = r#"
//- /a.js
function groupByCustomer(orders, currency) {
  const describe = (order) => {
    const amount = order.amount.toFixed(2);
    const when = new Date(order.createdAt).toISOString();
    return `${order.customer}: ${amount} ${currency} on ${when}`;
  };
  const groups = new Map();
  for (const order of orders) {
    const list = groups.get(order.customer) ?? [];
    list.push(describe(order));
    groups.set(order.customer, list);
  }
  return groups;
}
//- /b.js
function groupByCustomer(orders, currency) {
  const describe = (order) => {
    const amount = order.amount.toFixed(2);
    const when = new Date(order.createdAt).toISOString();
    return `${order.customer}: ${amount} ${currency} on ${when}`;
  };
  const groups = new Map();
  for (const order of orders) {
    const list = groups.get(order.customer) ?? [];
    list.push(describe(order));
    groups.set(order.customer, list);
  }
  return groups;
}
"#;
    let outcome = scan_fixture(fixture, fixture_config());
    // The closure is a unit of its own: without the nesting rule it would pair with its
    // copy, and (near-miss) with the copy of the function holding it.
    assert_eq!(unit_names(&outcome, "a.js"), vec!["groupByCustomer", "describe"]);
    expect!["T1 a.js:groupByCustomer ~ b.js:groupByCustomer"].assert_eq(&pairs_text(&outcome));
}

#[test]
fn generated_and_minified_files_are_skipped_and_counted() {
    let go_function = r#"func SummarizeOrders(orders []Order, taxRate float64) float64 {
	total := 0.0
	for _, order := range orders {
		if order.Status == "paid" {
			total += order.Amount * (1 + taxRate)
		}
	}
	return math.Round(total*100) / 100
}
"#;
    let js_function = r#"export function summarizeOrders(orders, taxRate) {
  let total = 0;
  for (const order of orders) {
    if (order.status === "paid") {
      total += order.amount * (1 + taxRate);
    }
  }
  return Math.round(total * 100) / 100;
}
"#;
    // A bundle: the same function squeezed onto one line among a lot of other code.
    let filler: String = (0..120).map(|n| format!("var v{n}=function(a){{return a*{n}+1}};")).collect();
    let minified = format!("{filler}{}\n", js_function.replace('\n', " "));
    let fixture = format!(
        "//- /orders.go\npackage orders\n\n{go_function}\
         //- /orders.pb.go\n// Code generated by protoc-gen-go. DO NOT EDIT.\n// source: orders.proto\n\npackage orders\n\n{go_function}\
         //- /orders.js\n{js_function}\
         //- /bundle.js\n{minified}"
    );
    let outcome = scan_fixture(&fixture, fixture_config());
    let scanned: Vec<&str> = outcome.files.iter().map(|file| file.path.as_str()).collect();
    assert_eq!(scanned.len(), 2, "{scanned:?}");
    assert!(scanned.contains(&"orders.go") && scanned.contains(&"orders.js"), "{scanned:?}");
    assert_eq!(outcome.stats.skipped.get(&SkipReason::Generated), Some(&1));
    assert_eq!(outcome.stats.skipped.get(&SkipReason::Minified), Some(&1));
    assert_eq!(pairs_text(&outcome), "");
}

#[test]
fn default_minimums_leave_out_getters_and_setters() {
    let fixture = r#"
//- /Customer.java
public class Customer {
    private String name;

    public String getName() {
        return name;
    }

    public void setName(String name) {
        this.name = name;
    }
}
//- /Product.java
public class Product {
    private String title;

    public String getTitle() {
        return title;
    }

    public void setTitle(String title) {
        this.title = title;
    }
}
"#;
    let defaults = scan_fixture(fixture, Config::default());
    assert_eq!(pairs_text(&defaults), "");
    assert_eq!(defaults.stats.units, 0);
    // The same accessors do pair once the minimums are lowered: the defaults are what keeps
    // them out of the report.
    let tiny = Config {
        detection: DetectionSettings { min_lines: 1, min_tokens: 5, ..DetectionSettings::default() },
        ..Config::default()
    };
    expect![[r#"
        T2 Customer.java:getName ~ Product.java:getTitle
        T2 Customer.java:setName ~ Product.java:setTitle"#]].assert_eq(&pairs_text(&scan_fixture(fixture, tiny)));
}

#[test]
fn closures_and_lambdas_are_named_after_what_they_are_assigned_to() {
    use periodic_core::Language;
    use periodic_core::analysis::analyze;
    let cases = [
        (Language::Python, "def run(rows):\n    score = lambda row: row.hits * 2\n    return sorted(rows, key=score)\n"),
        (Language::JavaScript, "function run(rows) {\n  const score = (row) => row.hits * 2;\n  return rows.map(score);\n}\n"),
        (Language::TypeScript, "class Ranker {\n  private score = (row: Row): number => row.hits * 2;\n}\n"),
        (Language::Java, "class Ranker {\n  void run() {\n    Function<Row, Integer> score = row -> row.hits() * 2;\n  }\n}\n"),
        (Language::Rust, "fn run(rows: &[Row]) {\n    let score = |row: &Row| row.hits * 2;\n}\n"),
        (Language::Go, "package rank\n\nfunc run(rows []Row) {\n\tscore := func(row Row) int {\n\t\treturn row.Hits * 2\n\t}\n\tvar total = func() int { return 0 }\n}\n"),
        (Language::Cpp, "void Ranker::run() {\n  auto score = [&](const Row& row) {\n    return row.hits * 2;\n  };\n}\n"),
        (Language::CSharp, "class Ranker {\n  void Run() {\n    Func<Row, int> score = row => row.Hits * 2;\n  }\n}\n"),
        (Language::Ruby, "def run(rows)\n  score = ->(row) { row.hits * 2 }\n  rows.sort_by(&score)\nend\n"),
    ];
    let names: Vec<String> = cases
        .iter()
        .map(|(language, source)| {
            let units = analyze(*language, source).units;
            format!("{}: {}", language.name(), units.iter().map(|unit| unit.name.as_str()).collect::<Vec<_>>().join(", "))
        })
        .collect();
    expect![[r#"
        python: run, score
        javascript: run, score
        typescript: score
        java: run, score
        rust: run, score
        go: run, score, total
        cpp: Ranker::run, score
        csharp: Run, score
        ruby: run, score"#]].assert_eq(&names.join("\n"));
}
