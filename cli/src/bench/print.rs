//! How `logstore bench` prints its report: a table with what ran, where
//! and how to read it; JSON; or Markdown blocks for the docs.

use super::{floors, readers, Baseline, BenchConfig, Report};
use logstore::Durability;

/// How `logstore bench` prints its report.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// Plain tables with a line saying what ran.
    Table,
    /// The report as JSON.
    Json,
    /// Markdown tables between marker comments, for the docs.
    Markdown,
}

/// How to read the ratios, in one line.
fn legend(report: &Report) -> String {
    format!(
        "log / {name} is the log engine's rate over {name}'s (above 1x the log engine is faster), \
         from one run on this machine: figures are noisy and move 10-20% between runs",
        name = report.driver
    )
}

/// The report as a table.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "logstore bench: {} documents; {}; {}; {} cores\nstores in {} (file system: {})\n",
        report.documents,
        report.durability,
        report.document_shape,
        report.cores,
        report.store_dir.display(),
        report.file_system.name
    );
    for warning in &report.warnings {
        out += &format!("{warning}\n");
    }
    out += &format!("{}\n\n", legend(report));
    out += &rows_table(report);
    if let Some(caption) = floors::caption(&report.floors) {
        out += &format!("\n{caption}\n\n{}", floors::table(&report.floors));
    }
    if !report.readers.is_empty() {
        out += &format!(
            "\n{}\n\n{}",
            readers::CAPTION,
            readers::table(&report.readers)
        );
    }
    out
}

/// The report as Markdown blocks, each between `<!-- bench:NAME -->` and
/// `<!-- /bench:NAME -->` lines so a script can put it in a document in
/// place of the block of that name: `rust-sync` or `rust-flush` for the
/// comparison with SQLite (`pg-…` with PostgreSQL), then the same name
/// with `-floors` (with `Sync` only) and `-readers`.
pub fn markdown(report: &Report, config: &BenchConfig) -> String {
    let driver = match config.baseline {
        Baseline::Sqlite => "rust",
        Baseline::Postgres { .. } => "pg",
    };
    let durability = match config.durability {
        Durability::Sync => "sync",
        Durability::Flush => "flush",
    };
    let name = format!("{driver}-{durability}");
    let command = match config.baseline {
        Baseline::Sqlite => format!("logstore bench --durability {durability}"),
        Baseline::Postgres { .. } => {
            format!("logstore bench --driver postgres --durability {durability}")
        }
    };
    let caption = format!(
        "`{command}`: {} documents loaded; {}; {} cores.",
        report.documents, report.durability, report.cores
    );
    let mut out = block(&name, &format!("{caption}\n\n{}", rows_table(report)));
    if let Some(caption) = floors::caption(&report.floors) {
        let body = format!("{caption}\n\n{}", floors::table(&report.floors));
        out += &block(&format!("{name}-floors"), &body);
    }
    if !report.readers.is_empty() {
        out += &block(&format!("{name}-readers"), &readers::table(&report.readers));
    }
    out
}

/// `body` between the marker lines of the block `name`, with a blank line
/// inside each marker so the Markdown around it parses the same.
pub(super) fn block(name: &str, body: &str) -> String {
    format!("<!-- bench:{name} -->\n\n{body}\n<!-- /bench:{name} -->\n")
}

/// The rows comparing the two drivers, as a Markdown table.
fn rows_table(report: &Report) -> String {
    let name = &report.driver;
    let mut out = format!("| operation | log engine ops/s | {name} ops/s | log / {name} |\n");
    out += "| --- | ---: | ---: | ---: |\n";
    for row in &report.rows {
        let ratio = if row.ratio < 1.0 {
            format!("{:.2}x", row.ratio)
        } else {
            format!("{:.1}x", row.ratio)
        };
        out += &format!(
            "| {} | {:.0} | {:.0} | {ratio} |\n",
            row.operation, row.log_ops_per_sec, row.driver_ops_per_sec
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::{place, FloorRow, Row};
    use super::*;

    fn report() -> Report {
        Report {
            driver: "SQLite".into(),
            documents: 100,
            durability: "Sync (log: x) vs SQLite y".into(),
            document_shape: "turns".into(),
            cores: 2,
            store_dir: PathBuf::from("/somewhere"),
            file_system: place::FileSystem {
                name: "tmpfs".into(),
                in_memory: true,
            },
            warnings: vec!["warning: on tmpfs".into()],
            rows: vec![Row {
                operation: "put (new)".into(),
                log_ops_per_sec: 300.0,
                driver_ops_per_sec: 100.0,
                ratio: 3.0,
            }],
            floors: vec![FloorRow {
                operation: "put (new), 1 thread vs write + fdatasync, 1 writer".into(),
                record_bytes: 464,
                floor_ops_per_sec: 200.0,
                log_ops_per_sec: 180.0,
                share: 0.9,
            }],
            readers: vec![readers::ReaderRow {
                operation: "get by id".into(),
                writer_ops_per_sec: Some(10.0),
                reader_ops_per_sec: 5.0,
            }],
        }
    }

    #[test]
    fn the_table_says_where_it_ran_and_how_to_read_it() {
        let t = table(&report());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[1], "stores in /somewhere (file system: tmpfs)");
        assert_eq!(lines[2], "warning: on tmpfs");
        assert!(lines[3].starts_with("log / SQLite is the log engine's rate over SQLite's"));
        assert!(lines[3].contains("one run on this machine"));
        assert!(lines[3].contains("noisy"));
    }

    #[test]
    fn markdown_puts_each_table_between_its_markers() {
        let config = BenchConfig {
            docs: 100,
            durability: Durability::Sync,
            threads: 8,
            seconds_per_op: 1.0,
            baseline: Baseline::Sqlite,
            dir: None,
            only: None,
        };
        let md = markdown(&report(), &config);
        for name in ["rust-sync", "rust-sync-floors", "rust-sync-readers"] {
            let start = format!("<!-- bench:{name} -->\n\n");
            let end = format!("\n\n<!-- /bench:{name} -->\n");
            let from = md.find(&start).expect(name) + start.len();
            let to = md[from..].find(&end).expect(name) + from;
            assert!(
                md[from..to].lines().any(|l| l.starts_with("| ---")),
                "{name}"
            );
        }
        assert!(md.contains("| put (new) | 300 | 100 | 3.0x |"));
        assert!(md.contains("| 200 | 180 | 90% |"));
        assert!(md.contains("| get by id | 10 | 5 | 0.50x |"));
        let pg = BenchConfig {
            baseline: Baseline::Postgres { url: String::new() },
            durability: Durability::Flush,
            ..config
        };
        assert!(markdown(&report(), &pg).starts_with("<!-- bench:pg-flush -->\n"));
    }
}
