//! Which charts come from which block: the table each reads, its columns,
//! and the title, axis and legend text each carries.

use crate::error::Error;
use crate::tables::{Block, Expect, Table};

/// Bars per operation, one per store, on a log axis of operations per
/// second.
#[derive(Debug)]
pub struct Bars {
    pub file: &'static str,
    pub title: String,
    pub machine: String,
    pub axis: &'static str,
    /// The operations, in the table's order.
    pub rows: Vec<String>,
    pub series: Vec<Series<Option<f64>>>,
}

/// Lines against document count, in one or more panels side by side.
#[derive(Debug)]
pub struct Lines {
    pub file: &'static str,
    pub title: String,
    pub machine: String,
    pub x_axis: &'static str,
    pub panels: Vec<Panel>,
}

#[derive(Debug)]
pub struct Panel {
    pub y_axis: &'static str,
    /// A log axis, or a linear one from zero.
    pub log: bool,
    /// Tick labels as "10k", "1M" (counts), or as plain numbers.
    pub compact: bool,
    pub series: Vec<Series<(f64, f64)>>,
}

/// One store's (or one measure's) figures, with its legend text.
#[derive(Debug)]
pub struct Series<T> {
    pub label: &'static str,
    pub values: Vec<T>,
}

#[derive(Debug)]
pub enum Chart {
    Bars(Bars),
    Lines(Lines),
}

impl Chart {
    pub fn file(&self) -> &'static str {
        match self {
            Chart::Bars(b) => b.file,
            Chart::Lines(l) => l.file,
        }
    }
}

/// Where a bar chart's table is in its block.
enum Pick {
    /// Under a paragraph that starts with this text.
    Caption(&'static str),
    /// The first table with this column.
    Column(&'static str),
}

struct BarSpec {
    block: &'static str,
    file: &'static str,
    title: &'static str,
    pick: Pick,
    /// (column, legend: the store and its durability)
    series: &'static [(&'static str, &'static str)],
}

const OPS_AXIS: &str = "operations per second (log scale)";

const BAR_CHARTS: &[BarSpec] = &[
    BarSpec {
        block: "rust-peers",
        file: "rust-peers-sync.svg",
        title: "Rust: logstore against native_db, redb and fjall, durable commits (Sync): operations per second",
        pick: Pick::Caption("`Sync`"),
        series: &[
            ("logstore ops/s", "logstore, Sync (fdatasync per commit)"),
            ("native_db ops/s", "native_db, redb Durability::Immediate (its only mode)"),
            ("redb ops/s", "redb, Durability::Immediate"),
            ("fjall ops/s", "fjall, PersistMode::SyncData (fdatasync)"),
        ],
    },
    BarSpec {
        block: "rust-peers",
        file: "rust-peers-flush.svg",
        title: "Rust: logstore against redb and fjall, commits not synced (Flush): operations per second",
        pick: Pick::Caption("`Flush`"),
        series: &[
            ("logstore ops/s", "logstore, Flush (written to the OS)"),
            ("redb ops/s", "redb, Durability::None"),
            ("fjall ops/s", "fjall, PersistMode::Buffer (written to the OS)"),
        ],
    },
    BarSpec {
        block: "node-peers",
        file: "node-peers-sync.svg",
        title: "Node.js: logstore against better-sqlite3 and lmdb-js, durable commits: operations per second",
        pick: Pick::Column("logstore sync"),
        series: &[
            ("logstore sync", "logstore, durability \"sync\" (fdatasync per commit)"),
            ("better-sqlite3 FULL", "better-sqlite3, WAL, synchronous=FULL"),
            ("lmdb-js sync", "lmdb-js, durable commits"),
        ],
    },
    BarSpec {
        block: "node-peers",
        file: "node-peers-flush.svg",
        title: "Node.js: logstore against better-sqlite3 and lmdb-js, commits not synced: operations per second",
        pick: Pick::Column("logstore flush"),
        series: &[
            ("logstore flush", "logstore, durability \"flush\" (written to the OS)"),
            ("better-sqlite3 NORMAL", "better-sqlite3, WAL, synchronous=NORMAL"),
            ("lmdb-js noSync", "lmdb-js, noSync"),
        ],
    },
    BarSpec {
        block: "rust-sync",
        file: "rust-sync.svg",
        title: "Rust: logstore's log engine against its SQLite driver, durable commits: operations per second",
        pick: Pick::Column("log engine ops/s"),
        series: &[
            ("log engine ops/s", "log engine, Sync (fdatasync per commit, group commit)"),
            ("SQLite ops/s", "SQLite driver, WAL, synchronous=FULL"),
        ],
    },
];

/// The block of the growth tables and its document-count column.
const SCALE: &str = "scale";
const DOCUMENTS: &str = "documents";

/// The machine line of the `run` block: "2 cores (CPU model), 24 GiB; run
/// of DATE, commit COMMIT".
///
/// # Errors
///
/// The block is missing or not in the form scripts/bench-docs.sh writes.
pub fn machine(blocks: &[Block]) -> Result<String, Error> {
    let run = find(blocks, "run").ok_or_else(|| Error::MissingBlock {
        block: "run".to_owned(),
    })?;
    let text = run
        .lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let bad = || Error::Run { text: text.clone() };
    let (_, rest) = text.split_once("` on ").ok_or_else(bad)?;
    let (date, rest) = rest.split_once(" from commit ").ok_or_else(bad)?;
    let (commit, rest) = rest.split_once(": ").ok_or_else(bad)?;
    let rest = rest.strip_suffix('.').ok_or_else(bad)?;
    // The last part is the kernel (`uname -sr`); the machine is the rest.
    let (machine, _kernel) = rest.rsplit_once(", ").ok_or_else(bad)?;
    if !machine.contains(" cores") {
        return Err(bad());
    }
    Ok(format!("{machine}; run of {date}, commit {commit}"))
}

fn find<'a>(blocks: &'a [Block], name: &str) -> Option<&'a Block> {
    blocks.iter().find(|b| b.name == name)
}

/// The block `name` when it holds more than blank lines: a pair of markers
/// that no run has filled yet draws nothing, as an absent block.
fn filled<'a>(blocks: &'a [Block], name: &str) -> Option<&'a Block> {
    find(blocks, name).filter(|b| b.lines.iter().any(|l| !l.trim().is_empty()))
}

/// Every chart whose block is in `blocks`, with the names of the chart
/// blocks that are absent or empty.
///
/// # Errors
///
/// No chart block at all, a missing or malformed `run` block, or a chart
/// block whose table, column or cell is not as the chart expects.
pub fn charts(blocks: &[Block]) -> Result<(Vec<Chart>, Vec<&'static str>), Error> {
    let names = BAR_CHARTS
        .iter()
        .map(|s| s.block)
        .chain([SCALE])
        .fold(Vec::new(), dedup);
    let absent: Vec<&'static str> = names
        .iter()
        .copied()
        .filter(|n| filled(blocks, n).is_none())
        .collect();
    if absent.len() == names.len() {
        return Err(Error::NothingToDraw);
    }
    let mut charts = Vec::new();
    let machine = machine(blocks)?;
    for spec in BAR_CHARTS {
        let Some(block) = filled(blocks, spec.block) else {
            continue;
        };
        let table = match spec.pick {
            Pick::Caption(prefix) => block.table_captioned(prefix)?,
            Pick::Column(column) => block.table_with(column)?,
        };
        charts.push(Chart::Bars(bars(spec, &table, &machine)?));
    }
    if let Some(block) = filled(blocks, SCALE) {
        charts.extend(scale(block, &machine)?.into_iter().map(Chart::Lines));
    }
    Ok((charts, absent))
}

fn dedup(mut names: Vec<&'static str>, name: &'static str) -> Vec<&'static str> {
    if !names.contains(&name) {
        names.push(name);
    }
    names
}

fn bars(spec: &BarSpec, table: &Table, machine: &str) -> Result<Bars, Error> {
    let rows = table.text("operation")?;
    let series = spec
        .series
        .iter()
        .map(|&(column, label)| {
            Ok(Series {
                label,
                values: table.values(column, Expect::Number)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Bars {
        file: spec.file,
        title: spec.title.to_owned(),
        machine: machine.to_owned(),
        axis: OPS_AXIS,
        rows,
        series,
    })
}

const MIB: f64 = 1024.0 * 1024.0;

/// A line per column against the `documents` column of the first table
/// that has the column; `scale` multiplies each value (a unit change).
fn line(
    block: &Block,
    column: &'static str,
    label: &'static str,
    expect: Expect,
    scale: f64,
) -> Result<Series<(f64, f64)>, Error> {
    let table = block.table_with(column)?;
    let documents = table.values(DOCUMENTS, Expect::Number)?;
    let values = table.values(column, expect)?;
    let texts = table.text(DOCUMENTS)?;
    let mut points = Vec::new();
    for ((docs, value), (row, text)) in documents
        .into_iter()
        .zip(values)
        .zip(table.rows.iter().zip(texts))
    {
        let Some(docs) = docs else {
            return Err(Error::Cell {
                block: block.name.clone(),
                column: DOCUMENTS.to_owned(),
                row: row[0].clone(),
                cell: text,
                reason: "is absent: every row needs its document count".to_owned(),
            });
        };
        if let Some(value) = value {
            points.push((docs, value * scale));
        }
    }
    Ok(Series {
        label,
        values: points,
    })
}

const DOCS_AXIS: &str = "documents in the store (log scale)";

fn scale(block: &Block, machine: &str) -> Result<Vec<Lines>, Error> {
    let title = |what: &str| format!("logstore as the store grows: {what}");
    let lines = |file, what: &str, panels| Lines {
        file,
        title: title(what),
        machine: machine.to_owned(),
        x_axis: DOCS_AXIS,
        panels,
    };
    Ok(vec![
        lines(
            "scale-rates.svg",
            "put, get and query rates, with SQLite's, operations per second",
            vec![Panel {
                y_axis: "operations per second (log scale)",
                log: true,
                compact: true,
                series: vec![
                    line(block, "put ops/s", "put (new)", Expect::Number, 1.0)?,
                    line(block, "get ops/s", "get by id", Expect::Number, 1.0)?,
                    line(
                        block,
                        "query ops/s",
                        "query, 1 filter, limit 20",
                        Expect::Number,
                        1.0,
                    )?,
                    line(
                        block,
                        "SQLite put ops/s",
                        "SQLite driver: put (new)",
                        Expect::Number,
                        1.0,
                    )?,
                    line(
                        block,
                        "SQLite get ops/s",
                        "SQLite driver: get by id",
                        Expect::Number,
                        1.0,
                    )?,
                    line(
                        block,
                        "SQLite query ops/s",
                        "SQLite driver: query",
                        Expect::Number,
                        1.0,
                    )?,
                ],
            }],
        ),
        lines(
            "scale-open.svg",
            "time to open, from the snapshot and by replaying the log, milliseconds",
            vec![Panel {
                y_axis: "open time, ms (log scale)",
                log: true,
                compact: false,
                series: vec![
                    line(
                        block,
                        "open from snapshot",
                        "open from the snapshot",
                        Expect::Millis,
                        1.0,
                    )?,
                    line(
                        block,
                        "open by replay",
                        "open by replaying the log",
                        Expect::Millis,
                        1.0,
                    )?,
                ],
            }],
        ),
        lines(
            "scale-memory.svg",
            "resident memory (MiB) and index bytes per document",
            vec![
                Panel {
                    y_axis: "resident memory, MiB (log scale)",
                    log: true,
                    compact: false,
                    series: vec![line(
                        block,
                        "resident memory",
                        "resident memory of the open store",
                        Expect::Bytes,
                        1.0 / MIB,
                    )?],
                },
                Panel {
                    y_axis: "index bytes per document",
                    log: false,
                    compact: false,
                    series: vec![
                        line(
                            block,
                            "index per document",
                            "index per document",
                            Expect::Bytes,
                            1.0,
                        )?,
                        line(
                            block,
                            "beyond strings",
                            "beyond id and index strings",
                            Expect::Bytes,
                            1.0,
                        )?,
                    ],
                },
            ],
        ),
        disk(block, lines)?,
    ])
}

/// Sizes on disk beside the live data, and each over the live data: the
/// two lines of sizes sit close on a log axis, the ratios show the gap.
fn disk(
    block: &Block,
    lines: impl Fn(&'static str, &str, Vec<Panel>) -> Lines,
) -> Result<Lines, Error> {
    let live = line(block, "live data", "live data", Expect::Bytes, 1.0 / MIB)?;
    let before = line(
        block,
        "disk before compaction",
        "on disk before compaction",
        Expect::Bytes,
        1.0 / MIB,
    )?;
    let after = line(
        block,
        "disk after compaction",
        "on disk after compaction",
        Expect::Bytes,
        1.0 / MIB,
    )?;
    let over_live = |sizes: &Series<(f64, f64)>, label| Series {
        label,
        values: sizes
            .values
            .iter()
            .filter_map(|&(docs, size)| {
                let (_, live) = live.values.iter().find(|p| p.0 == docs)?;
                (*live > 0.0).then(|| (docs, size / live))
            })
            .collect(),
    };
    let ratios = vec![
        over_live(&before, "before compaction over live data"),
        over_live(&after, "after compaction over live data"),
    ];
    Ok(lines(
        "scale-disk.svg",
        "size on disk against the live data, MiB, and their ratio",
        vec![
            Panel {
                y_axis: "MiB (log scale)",
                log: true,
                compact: false,
                series: vec![live, before, after],
            },
            Panel {
                y_axis: "size on disk over live data (ratio)",
                log: false,
                compact: false,
                series: ratios,
            },
        ],
    ))
}

#[cfg(test)]
mod tests;
