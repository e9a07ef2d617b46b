//! The report as Markdown: a table per durability (ops/s per store, then
//! logstore's rate over each peer's) and the goals against them.

use crate::drivers::Durability;
use crate::run::{Report, Section, GET, LOAD, PUT};

/// A get or put is "within 1.5x" of a floor at this ratio or above.
const WITHIN_1_5X: f64 = 1.0 / 1.5;

/// How to read the tables, in one line.
const LEGEND: &str = "log / X is logstore's rate over X's (above 1x logstore is faster); \
    one run on this machine, so figures move 10-20% between runs; — where a store has no such operation.";

fn durability_name(d: Durability) -> &'static str {
    match d {
        Durability::Sync => "Sync",
        Durability::Flush => "Flush",
    }
}

fn ratio_text(ratio: f64) -> String {
    if ratio < 1.0 {
        format!("{ratio:.2}x")
    } else {
        format!("{ratio:.1}x")
    }
}

/// One section's table, with a line saying what each store ran with.
fn section_table(section: &Section, documents: u64) -> String {
    let settings: Vec<String> = section
        .stores
        .iter()
        .map(|(name, setting)| format!("{name} {setting}"))
        .collect();
    let mut out = format!(
        "`{}`, {documents} documents loaded: {}.",
        durability_name(section.durability),
        settings.join("; ")
    );
    if section.durability == Durability::Flush {
        out += " native_db is left out: it has no non-durable mode.";
    }
    out += "\n\n| operation |";
    let peers = &section.stores[1..];
    for (name, _) in &section.stores {
        out += &format!(" {name} ops/s |");
    }
    for (name, _) in peers {
        out += &format!(" log / {name} |");
    }
    out += "\n| --- |";
    out += &" ---: |".repeat(section.stores.len() + peers.len());
    out += "\n";
    for row in &section.rows {
        out += &format!("| {} |", row.operation);
        for rate in &row.rates {
            match rate {
                Some(rate) => out += &format!(" {:.0} |", rate.ops_per_sec),
                None => out += " — |",
            }
        }
        let log = row.rates[0];
        for rate in &row.rates[1..] {
            match (log, rate) {
                (Some(log), Some(rate)) => {
                    out += &format!(" {} |", ratio_text(log.ops_per_sec / rate.ops_per_sec));
                }
                _ => out += " — |",
            }
        }
        out += "\n";
    }
    out
}

/// The lowest of logstore's ratios over `peers` for `operations`, in the
/// sections of `durabilities`, as (text naming it, ratio).
fn lowest(
    report: &Report,
    durabilities: &[Durability],
    operations: &[&str],
    peers: &[&str],
) -> Option<(String, f64)> {
    let mut best: Option<(String, f64)> = None;
    for section in &report.sections {
        if !durabilities.contains(&section.durability) {
            continue;
        }
        for row in &section.rows {
            let operation = row.operation.as_str();
            let wanted = operations.is_empty() || operations.contains(&operation);
            if !wanted {
                continue;
            }
            for peer in peers {
                let (Some(log), Some(other)) = (
                    section.rate(operation, "logstore"),
                    section.rate(operation, peer),
                ) else {
                    continue;
                };
                let ratio = log / other;
                if best.as_ref().is_none_or(|(_, b)| ratio < *b) {
                    let text = format!(
                        "{operation}, {}, over {peer}: {}",
                        durability_name(section.durability),
                        ratio_text(ratio)
                    );
                    best = Some((text, ratio));
                }
            }
        }
    }
    best
}

/// The goals for the Rust peers, each against the lowest ratio
/// that bears on it.
fn goals(report: &Report) -> String {
    let both = [Durability::Sync, Durability::Flush];
    let goals = [
        (
            "ahead of native_db on every operation, `Sync`",
            1.0,
            lowest(report, &[Durability::Sync], &[], &["native_db"]),
        ),
        (
            "get by id within 1.5x of redb's and fjall's (ratio at least 0.67x)",
            WITHIN_1_5X,
            lowest(report, &both, &[GET], &["redb", "fjall"]),
        ),
        (
            "`Flush` puts within 1.5x of redb's and fjall's (at least 0.67x)",
            WITHIN_1_5X,
            lowest(
                report,
                &[Durability::Flush],
                &[PUT, LOAD],
                &["redb", "fjall"],
            ),
        ),
    ];
    let mut out = String::from("| goal | lowest ratio | result |\n| --- | --- | --- |\n");
    for (goal, at_least, measured) in goals {
        let (text, result) = match measured {
            Some((text, ratio)) if ratio >= at_least => (text, "met"),
            Some((text, _)) => (text, "missed"),
            None => ("not measured in this run".to_owned(), "—"),
        };
        out += &format!("| {goal} | {text} | {result} |\n");
    }
    out
}

/// The report as Markdown: what ran, a table per durability, the goals.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "`logstore-peers`: the benchmark workload (chat turns of about 400 B, indexed on \
         conversation and author) on each store; {} cores. {LEGEND}\n",
        report.cores
    );
    for section in &report.sections {
        out += "\n";
        out += &section_table(section, report.documents);
    }
    out += "\n";
    out += &goals(report);
    out
}

/// The report between the `<!-- bench:BLOCK -->` marker lines, for
/// `scripts/bench-docs.sh` to put in BENCHMARKS.md.
pub fn markdown(report: &Report, block: &str) -> String {
    format!(
        "<!-- bench:{block} -->\n\n{}\n<!-- /bench:{block} -->\n",
        table(report)
    )
}
