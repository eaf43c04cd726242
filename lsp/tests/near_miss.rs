//! Near-miss (Type-3) detection end to end: a copy edited every few lines is proposed by
//! the exact n-gram and name doors although it shares too few shingles for the LSH bands,
//! verified as a clone with its evidence in the JSON report, and a look-alike of the same
//! shape is not paired with either; a family of hundreds of variants of one function is
//! found through the hubs of its (oversized) keys, stays one pattern, and pairs each
//! member with many of the others.

use std::process::Command;

use serde_json::Value;

const FIXTURE: &str = r#"
//- /orders.py
def summarize_orders(orders, currency, tax_rate):
    if not orders:
        return None
    total = 0
    paid = []
    refunds = 0
    for order in orders:
        if order.status == "refunded":
            refunds += order.amount
            continue
        if order.status != "paid":
            continue
        amount = order.amount * order.quantity
        total += amount
        paid.append(order.identifier)
    taxed = total * (1 + tax_rate)
    average = taxed / len(paid)
    report = {"total": taxed, "count": len(paid), "average": average, "refunds": refunds}
    return format_report(report, currency)
//- /ledger.py
def summarize_ledger(entries, currency, tax_rate):
    if not entries or currency is None:
        return None
    total = 0
    paid = []
    refunds = 0
    for entry in entries:
        if entry.status == "refunded":
            refunds = refunds + entry.amount
            continue
        elif entry.status not in ("paid", "settled"):
            continue
        amount = entry.amount * max(entry.quantity, 1)
        total = total + amount
        paid.append(entry.identifier)
    taxed = total * (1 + tax_rate)
    average = taxed / max(len(paid), 1)
    report = dict(total=taxed, count=len(paid), average=average, refunds=refunds)
    return format_report(report, currency)
//- /warnings.py
def collect_warnings(entries, limit, level):
    if not entries:
        return []
    seen = 0
    result = []
    skipped = 0
    for entry in entries:
        if entry.level == "debug":
            skipped += entry.weight
            break
        if entry.level != level:
            continue
        message = entry.render(limit)
        seen += 1
        result.extend(message.split_lines())
    ratio = seen / max(limit, 1)
    summary = {"seen": seen, "ratio": ratio, "skipped": skipped, "level": level}
    return sorted(result, key=summary.get)
"#;

/// Writes the fixture's files (`//- /path` lines start a file) under `root`.
fn write_fixture(root: &std::path::Path) {
    for file in FIXTURE.split("//- /").skip(1) {
        let (path, text) = file.split_once('\n').expect("path line");
        std::fs::write(root.join(path.trim()), text).expect("write fixture file");
    }
}

#[test]
fn a_scattered_edit_copy_comes_through_the_exact_doors_and_a_look_alike_does_not_pair() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_fixture(dir.path());
    let trace = dir.path().join("trace.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_periodic"))
        .args(["scan", ".", "--format", "json", "--no-index"])
        .current_dir(dir.path())
        .env("PERIODIC_TRACE_T3", &trace)
        .output()
        .expect("run periodic");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    let pairs = report["pairs"].as_array().expect("pairs");
    let described: Vec<String> = pairs
        .iter()
        .map(|pair| {
            let mut sides = [pair["a"]["path"].as_str().unwrap_or("?"), pair["b"]["path"].as_str().unwrap_or("?")];
            sides.sort();
            format!("{} {} ~ {}", pair["kind"].as_str().unwrap_or("?"), sides[0], sides[1])
        })
        .collect();
    assert_eq!(described, vec!["T3 ledger.py ~ orders.py"]);
    let evidence = &pairs[0]["evidence"];
    for signal in ["score", "tokens", "aligned", "runs", "names", "literals", "swaps", "size", "shape"] {
        assert!(evidence[signal].as_f64().is_some_and(|value| (0.0..=1.0).contains(&value)), "evidence.{signal}: {evidence}");
    }
    assert!(evidence["score"].as_f64().expect("evidence has a numeric score") >= 0.5, "accepted at the default: {evidence}");

    let lines = std::fs::read_to_string(&trace).expect("trace written");
    let copy = lines.lines().find(|line| line.contains("ledger.py") && line.contains("orders.py")).expect("the copy was a candidate");
    assert!(copy.contains("\"source\":\"grams+names\""), "proposed by the exact doors, not the LSH bands: {copy}");
    assert!(copy.contains("\"accepted\":true"), "{copy}");
}

/// Statements a member of the dense family below may add, each of its own shape.
const OPTIONAL_STATEMENTS: [&str; 9] = [
    "    if not orders:\n        return None\n",
    "    log.debug('start %s', currency)\n",
    "    seen = set()\n",
    "    if limit is None:\n        limit = 10\n",
    "    retries = 0\n",
    "    assert currency\n",
    "    started = now()\n",
    "    for extra in extras:\n        total += extra\n",
    "    checked = validate(orders)\n",
];

/// Member `index` of a family of one function: the body of `summarize_orders` with the
/// optional statements whose bits are set in `index`, spread through it.
fn family_member(index: usize) -> String {
    let body = FIXTURE.split("//- /").nth(1).expect("orders.py").split_once('\n').expect("path line").1;
    let lines: Vec<&str> = body.lines().skip(3).collect();
    let mut chosen = OPTIONAL_STATEMENTS.iter().enumerate().filter(|(bit, _)| index >> bit & 1 == 1).map(|(_, statement)| *statement);
    let mut text = format!("def summarize_{index}(orders, currency, tax_rate, limit, extras):\n");
    for (number, line) in lines.iter().enumerate() {
        if [0, 3, 12, 13, lines.len() - 1].contains(&number)
            && let Some(statement) = chosen.next()
        {
            text.push_str(statement);
        }
        text.push_str(line);
        text.push('\n');
    }
    for statement in chosen {
        text.insert_str(text.rfind("    return").expect("a return"), statement);
    }
    text
}

#[test]
fn a_dense_family_is_one_pattern_and_each_member_is_paired_with_many_of_it() {
    // 450 variants of one function: every k-gram and band of it is held by more units than
    // a key may hold before it is sampled by hub, so the family is found through its hubs,
    // and its members propose again with the larger quota of a dense family.
    const MEMBERS: usize = 450;
    let dir = tempfile::tempdir().expect("tempdir");
    for index in 0..MEMBERS {
        std::fs::write(dir.path().join(format!("m{index:03}.py")), family_member(index)).expect("write member");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_periodic"))
        .args(["scan", ".", "--format", "json", "--no-index"])
        .current_dir(dir.path())
        .output()
        .expect("run periodic");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    let largest = report["patterns"].as_array().expect("patterns").iter().map(|pattern| pattern["members"].as_array().map_or(0, Vec::len)).max();
    assert_eq!(largest, Some(MEMBERS), "the family is one pattern");
    let mut partners: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for pair in report["pairs"].as_array().expect("pairs") {
        for side in ["a", "b"] {
            *partners.entry(pair[side]["path"].as_str().unwrap_or("?").to_string()).or_default() += 1;
        }
    }
    let fewest = (0..MEMBERS).map(|index| partners.get(&format!("m{index:03}.py")).copied().unwrap_or(0)).min();
    // The first quota is 16 + 8 families a unit; a dense family's members ask for more.
    assert!(fewest.is_some_and(|fewest| fewest >= 64), "every member paired with 64 others or more: {fewest:?}");
}
