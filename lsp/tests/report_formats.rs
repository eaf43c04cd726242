//! End-to-end checks of the SARIF and HTML reports as the `periodic` binary writes them for
//! the browser-test fixture (`tests/html/fixture`): the SARIF log against the official
//! schema, one result per clone instance, and the HTML page's embedded data and code.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/html/fixture")
}

fn scan_to_string(format: &str) -> String {
    let output_dir = tempfile::tempdir().expect("tempdir");
    let output_file = output_dir.path().join(format!("report.{format}"));
    let output = Command::new(env!("CARGO_BIN_EXE_periodic"))
        .arg("scan")
        .arg(fixture_dir())
        .args(["--format", format, "--output"])
        .arg(&output_file)
        .arg("--no-index")
        .output()
        .expect("run periodic");
    assert!(output.status.success(), "scan failed: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::read_to_string(&output_file).expect("report written")
}

fn json_report() -> Value {
    serde_json::from_str(&scan_to_string("json")).expect("JSON report")
}

#[test]
fn sarif_from_the_binary_is_valid_and_has_one_result_per_instance() {
    let log: Value = serde_json::from_str(&scan_to_string("sarif")).expect("SARIF is JSON");
    let schema: Value =
        serde_json::from_str(include_str!("../../tests/schemas/sarif-schema-2.1.0.json")).expect("schema is JSON");
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles");
    let errors: Vec<String> = validator.iter_errors(&log).map(|error| format!("{error} at {}", error.instance_path())).collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}");

    let report = json_report();
    let patterns = report["patterns"].as_array().expect("patterns");
    assert!(!patterns.is_empty(), "the fixture holds duplicated code");
    let instances: usize = patterns.iter().map(|pattern| pattern["members"].as_array().map_or(0, Vec::len)).sum();
    let results = log["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), instances);

    let exact = patterns
        .iter()
        .find(|pattern| {
            let paths: Vec<&str> = pattern["members"].as_array().into_iter().flatten().filter_map(|m| m["path"].as_str()).collect();
            paths.contains(&"billing/invoice.py") && paths.contains(&"billing/receipt.py")
        })
        .expect("the function shared by invoice.py and receipt.py is a pattern");
    let for_invoice = results
        .iter()
        .find(|result| {
            result["partialFingerprints"]["periodicPattern/v1"] == exact["id"]
                && result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "billing/invoice.py"
        })
        .expect("a result on invoice.py");
    assert_eq!(for_invoice["ruleId"], format!("periodic/{}", exact["kind"].as_str().expect("kind")));
    let related_uris: Vec<&str> = for_invoice["relatedLocations"]
        .as_array()
        .expect("related")
        .iter()
        .filter_map(|location| location["physicalLocation"]["artifactLocation"]["uri"].as_str())
        .collect();
    assert!(related_uris.contains(&"billing/receipt.py"), "{related_uris:?}");
    let base = log["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"].as_str().expect("SRCROOT");
    assert!(base.starts_with("file:///") && base.ends_with("/tests/html/fixture/"), "{base}");
}

#[test]
fn html_from_the_binary_embeds_every_pattern_with_its_code() {
    let page = scan_to_string("html");
    let opening = "<script type=\"application/json\" id=\"periodic-data\">";
    let start = page.find(opening).expect("data block") + opening.len();
    let length = page[start..].find("</script>").expect("end of data block");
    let data: Value = serde_json::from_str(&page[start..start + length]).expect("data block is JSON");

    let report = json_report();
    let report_ids: Vec<&Value> = report["patterns"].as_array().expect("patterns").iter().map(|p| &p["id"]).collect();
    let page_ids: Vec<&Value> = data["patterns"].as_array().expect("patterns").iter().map(|p| &p["id"]).collect();
    assert_eq!(page_ids, report_ids);

    let fixture = fixture_dir();
    for pattern in data["patterns"].as_array().expect("patterns") {
        for member in pattern["members"].as_array().expect("members") {
            let path = member["path"].as_str().expect("path");
            let start_line = member["start_line"].as_u64().expect("start") as usize;
            let end_line = member["end_line"].as_u64().expect("end") as usize;
            let source = std::fs::read_to_string(fixture.join(path)).expect("fixture file");
            let expected: Vec<&str> = source.lines().skip(start_line - 1).take(end_line + 1 - start_line).collect();
            assert_eq!(member["code"].as_str(), Some(expected.join("\n").as_str()), "{path}:{start_line}-{end_line}");
        }
    }
    // The JavaScript fixture's `</td></tr>` strings must not end the data block early.
    assert!(!page[start..start + length].contains("</"));
}
