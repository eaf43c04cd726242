//! The Type-3 trace: when `PERIODIC_TRACE_T3` names a file, every near-miss candidate
//! verified is written to it as one JSON line (both units, the doors it came through, the
//! verdict and every signal). The near-miss evaluation (`scripts/quality-nearmiss`) reads
//! it to tell where a missed pair was lost, and to fit the verifier.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::{Mutex, OnceLock};

use crate::detect::{SOURCE_BANDS, SOURCE_GRAMS, SOURCE_NAMES};
use crate::model::UnitRecord;
use crate::verify::{SIGNAL_NAMES, Verdict};

pub struct T3Trace {
    out: Mutex<BufWriter<File>>,
}

impl T3Trace {
    /// The trace of this process, when `PERIODIC_TRACE_T3` is set and its file can be
    /// created (a failure is logged once and tracing is off).
    pub fn get() -> Option<&'static T3Trace> {
        static TRACE: OnceLock<Option<T3Trace>> = OnceLock::new();
        TRACE
            .get_or_init(|| {
                let path = std::env::var_os("PERIODIC_TRACE_T3")?;
                match File::create(&path) {
                    Ok(file) => Some(T3Trace { out: Mutex::new(BufWriter::new(file)) }),
                    Err(error) => {
                        tracing::warn!(path = %std::path::Path::new(&path).display(), %error, "cannot write the Type-3 trace");
                        None
                    }
                }
            })
            .as_ref()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn record(&self, path_a: &str, a: &UnitRecord, path_b: &str, b: &UnitRecord, sources: u8, verdict: &Verdict, old_evidence: f64) {
        let mut line = String::with_capacity(400);
        let side = |line: &mut String, path: &str, unit: &UnitRecord| {
            line.push_str("{\"path\":");
            push_json_string(line, path);
            line.push_str(&format!(",\"start_line\":{},\"end_line\":{},\"tokens\":{}}}", unit.start_line, unit.end_line, unit.token_count()));
        };
        line.push_str("{\"a\":");
        side(&mut line, path_a, a);
        line.push_str(",\"b\":");
        side(&mut line, path_b, b);
        let names: Vec<&str> = [(SOURCE_BANDS, "lsh"), (SOURCE_GRAMS, "grams"), (SOURCE_NAMES, "names")]
            .iter()
            .filter(|(bit, _)| sources & bit != 0)
            .map(|&(_, name)| name)
            .collect();
        line.push_str(&format!(",\"source\":\"{}\"", names.join("+")));
        let (accepted, evidence, tokens) = match verdict {
            Verdict::BelowThreshold { tokens } | Verdict::Unreachable { tokens } => (false, None, *tokens),
            Verdict::Rejected(evidence) => (false, Some(evidence), evidence.tokens),
            Verdict::Accepted(evidence) => (true, Some(evidence), evidence.tokens),
        };
        line.push_str(&format!(",\"accepted\":{accepted},\"features\":{{\"tokens\":{tokens:.4},\"old_evidence\":{old_evidence:.4}"));
        if let Some(evidence) = evidence {
            for (name, value) in SIGNAL_NAMES.iter().zip(evidence.signals()).skip(1) {
                line.push_str(&format!(",\"{name}\":{value:.4}"));
            }
            line.push_str(&format!("}},\"score\":{:.4}}}\n", evidence.score));
        } else {
            line.push_str("},\"score\":null}\n");
        }
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
