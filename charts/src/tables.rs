//! The marked blocks of BENCHMARKS.md and the markdown tables inside them,
//! read generically: a table is a header row, a `| --- |` row and body rows,
//! and a column is found by its header's name.

use crate::error::Error;

/// One `<!-- bench:NAME -->` ... `<!-- /bench:NAME -->` block.
#[derive(Debug)]
pub struct Block {
    pub name: String,
    /// The lines between the markers.
    pub lines: Vec<String>,
}

/// A markdown table of a block, with the paragraph just above it.
#[derive(Debug)]
pub struct Table {
    pub block: String,
    /// The last paragraph of text before the table, joined into one line;
    /// empty when the table follows another table or the start marker.
    pub caption: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// What a cell measures, after its unit is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantity {
    /// A plain number: a rate, a count.
    Number(f64),
    /// A time, in milliseconds.
    Millis(f64),
    /// A size, in bytes.
    Bytes(f64),
    /// A ratio such as `3.2x`.
    Ratio(f64),
    /// A percentage such as `81%`, as written (81, not 0.81).
    Percent(f64),
}

impl Quantity {
    fn kind(self) -> &'static str {
        match self {
            Quantity::Number(_) => "a plain number",
            Quantity::Millis(_) => "a time",
            Quantity::Bytes(_) => "a size",
            Quantity::Ratio(_) => "a ratio",
            Quantity::Percent(_) => "a percentage",
        }
    }
}

/// The unit a chart expects in a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Plain numbers.
    Number,
    /// Times, returned in milliseconds.
    Millis,
    /// Sizes, returned in bytes.
    Bytes,
}

const START: &str = "<!-- bench:";
const END: &str = "<!-- /bench:";
const CLOSE: &str = " -->";

/// Every marked block of `text`, in order.
///
/// # Errors
///
/// A block that is not closed, closed under another name, or opened inside
/// another block.
pub fn blocks(text: &str) -> Result<Vec<Block>, Error> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for line in text.lines() {
        if let Some(name) = marker(line, END) {
            match open.take() {
                Some(block) if block.name == name => found.push(block),
                Some(block) => {
                    return Err(Error::Markers {
                        block: block.name,
                        reason: format!("closed by the end marker of {name}"),
                    })
                }
                None => {
                    return Err(Error::Markers {
                        block: name.to_owned(),
                        reason: "end marker with no start marker".to_owned(),
                    })
                }
            }
        } else if let Some(name) = marker(line, START) {
            if let Some(block) = open {
                return Err(Error::Markers {
                    block: block.name,
                    reason: format!("not closed before the block {name} starts"),
                });
            }
            open = Some(Block {
                name: name.to_owned(),
                lines: Vec::new(),
            });
        } else if let Some(block) = open.as_mut() {
            block.lines.push(line.to_owned());
        }
    }
    match open {
        Some(block) => Err(Error::Markers {
            block: block.name,
            reason: "no end marker".to_owned(),
        }),
        None => Ok(found),
    }
}

/// The NAME of a marker line `PREFIX NAME -->`, in the form
/// scripts/bench-docs.sh matches (`[a-z0-9-]+`).
fn marker<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let name = line.strip_prefix(prefix)?.strip_suffix(CLOSE)?;
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    plain.then_some(name)
}

impl Block {
    /// The block's markdown tables, in order.
    ///
    /// # Errors
    ///
    /// A body row whose cell count differs from its header's.
    pub fn tables(&self) -> Result<Vec<Table>, Error> {
        let mut tables = Vec::new();
        let mut paragraph: Vec<&str> = Vec::new();
        let mut ended = false;
        let mut i = 0;
        while i < self.lines.len() {
            let line = self.lines[i].trim();
            let next = self.lines.get(i + 1).map(|l| l.trim());
            if line.starts_with('|') && next.is_some_and(is_separator) {
                let header = cells(line);
                let mut rows = Vec::new();
                i += 2;
                while let Some(row) = self
                    .lines
                    .get(i)
                    .map(|l| l.trim())
                    .filter(|l| l.starts_with('|'))
                {
                    let row = cells(row);
                    if row.len() != header.len() {
                        return Err(Error::Row {
                            block: self.name.clone(),
                            row: row.first().cloned().unwrap_or_default(),
                            reason: format!(
                                "{} cells under a header of {}",
                                row.len(),
                                header.len()
                            ),
                        });
                    }
                    rows.push(row);
                    i += 1;
                }
                tables.push(Table {
                    block: self.name.clone(),
                    caption: paragraph.join(" "),
                    header,
                    rows,
                });
                paragraph.clear();
                ended = false;
                continue;
            }
            if line.is_empty() {
                ended = !paragraph.is_empty();
            } else {
                // Keep the last paragraph only: a line after a blank one
                // starts a new one.
                if ended {
                    paragraph.clear();
                    ended = false;
                }
                paragraph.push(line);
            }
            i += 1;
        }
        Ok(tables)
    }

    /// The first table whose caption starts with `prefix`.
    ///
    /// # Errors
    ///
    /// No such table, or a malformed table in the block.
    pub fn table_captioned(&self, prefix: &str) -> Result<Table, Error> {
        self.tables()?
            .into_iter()
            .find(|t| t.caption.starts_with(prefix))
            .ok_or_else(|| Error::NoTable {
                block: self.name.clone(),
                wanted: format!("under a paragraph that starts with \"{prefix}\""),
            })
    }

    /// The first table that has a column named `column`.
    ///
    /// # Errors
    ///
    /// No table has it (the error names the column), or a malformed table
    /// in the block.
    pub fn table_with(&self, column: &str) -> Result<Table, Error> {
        let tables = self.tables()?;
        if tables.is_empty() {
            return Err(Error::NoTable {
                block: self.name.clone(),
                wanted: "at all".to_owned(),
            });
        }
        tables
            .into_iter()
            .find(|t| t.header.iter().any(|h| h == column))
            .ok_or_else(|| Error::MissingColumn {
                block: self.name.clone(),
                column: column.to_owned(),
            })
    }
}

fn is_separator(line: &str) -> bool {
    let cells = cells(line);
    line.starts_with('|')
        && !cells.is_empty()
        && cells.iter().all(|c| {
            let dashes = c.trim_start_matches(':').trim_end_matches(':');
            !dashes.is_empty() && dashes.bytes().all(|b| b == b'-')
        })
}

/// The trimmed cells of a `| a | b |` line.
fn cells(line: &str) -> Vec<String> {
    let inner = line.strip_prefix('|').unwrap_or(line);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

impl Table {
    fn index(&self, column: &str) -> Result<usize, Error> {
        self.header
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| Error::MissingColumn {
                block: self.block.clone(),
                column: column.to_owned(),
            })
    }

    /// The cells of `column` as text, one per row.
    ///
    /// # Errors
    ///
    /// No column of that name.
    pub fn text(&self, column: &str) -> Result<Vec<String>, Error> {
        let at = self.index(column)?;
        Ok(self.rows.iter().map(|r| r[at].clone()).collect())
    }

    /// The cells of `column` as numbers in the unit `expect` names (times
    /// in milliseconds, sizes in bytes), `None` for `n/a` and `—`.
    ///
    /// # Errors
    ///
    /// No column of that name, or a cell that is not a number in that unit.
    pub fn values(&self, column: &str, expect: Expect) -> Result<Vec<Option<f64>>, Error> {
        let at = self.index(column)?;
        self.rows
            .iter()
            .map(|row| {
                let fail = |reason: String| Error::Cell {
                    block: self.block.clone(),
                    column: column.to_owned(),
                    row: row[0].clone(),
                    cell: row[at].clone(),
                    reason,
                };
                match parse_cell(&row[at]).map_err(fail)? {
                    None => Ok(None),
                    Some(q) => match (expect, q) {
                        (Expect::Number, Quantity::Number(v))
                        | (Expect::Millis, Quantity::Millis(v))
                        | (Expect::Bytes, Quantity::Bytes(v)) => Ok(Some(v)),
                        (_, q) => {
                            let want = match expect {
                                Expect::Number => "a plain number",
                                Expect::Millis => "a time (ms or s)",
                                Expect::Bytes => "a size (B, KiB, MiB or GiB)",
                            };
                            Err(fail(format!("is {}, expected {want}", q.kind())))
                        }
                    },
                }
            })
            .collect()
    }
}

/// A cell read as a number with its unit: `None` for `n/a` and `—`.
///
/// # Errors
///
/// Text that is not a non-negative number, optionally followed by one of
/// the units `ns`, `µs`, `ms`, `s`, `B`, `KiB`, `MiB`, `GiB`, `TiB`, `x`, `%`;
/// a number too large for an `f64` in that unit.
pub fn parse_cell(cell: &str) -> Result<Option<Quantity>, String> {
    let cell = cell.trim();
    if cell == "n/a" || cell == "—" {
        return Ok(None);
    }
    let end = cell
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(cell.len());
    let (number, unit) = cell.split_at(end);
    if number.is_empty() {
        return Err("is not a number".to_owned());
    }
    let value: f64 = number.parse().map_err(|_| "is not a number".to_owned())?;
    let quantity = match unit.trim_start() {
        "" => Quantity::Number(value),
        "x" => Quantity::Ratio(value),
        "%" => Quantity::Percent(value),
        "ns" => Quantity::Millis(value / 1e6),
        "µs" | "us" => Quantity::Millis(value / 1e3),
        "ms" => Quantity::Millis(value),
        "s" => Quantity::Millis(value * 1e3),
        "B" => Quantity::Bytes(value),
        "KiB" => Quantity::Bytes(value * 1024.0),
        "MiB" => Quantity::Bytes(value * 1024.0 * 1024.0),
        "GiB" => Quantity::Bytes(value * 1024.0 * 1024.0 * 1024.0),
        "TiB" => Quantity::Bytes(value * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        other => return Err(format!("has the unknown unit \"{other}\"")),
    };
    // A number too large for an f64 reads as infinity, which no axis can hold.
    let finite = match quantity {
        Quantity::Number(v)
        | Quantity::Millis(v)
        | Quantity::Bytes(v)
        | Quantity::Ratio(v)
        | Quantity::Percent(v) => v.is_finite(),
    };
    if !finite {
        return Err("is too large to draw".to_owned());
    }
    Ok(Some(quantity))
}

#[cfg(test)]
mod tests;
