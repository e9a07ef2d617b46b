//! `logstore-charts BENCHMARKS.md OUTPUT_DIR`: SVG charts of the tables
//! that scripts/bench-docs.sh writes between `<!-- bench:NAME -->` markers,
//! so a chart and its table always come from the same run.
//!
//! It draws the charts of every chart block the file holds and names those
//! it lacks or holds empty (markers no run has filled yet); a block that is there but malformed (no such table, column or
//! parsable cell) fails the run before any file is written.

mod charts;
mod draw;
mod error;
mod tables;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use error::Error;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logstore-charts: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), Error> {
    let [input, output] = args else {
        return Err(Error::Usage);
    };
    let input = Path::new(input);
    let output = Path::new(output);
    let text = fs::read_to_string(input).map_err(|source| Error::Io {
        path: input.to_owned(),
        source,
    })?;
    let blocks = tables::blocks(&text)?;
    let (charts, absent) = charts::charts(&blocks)?;
    // Every chart drawn before any is written: bad input changes nothing.
    let drawn = charts
        .iter()
        .map(|c| Ok((c.file(), draw::svg(c)?)))
        .collect::<Result<Vec<_>, Error>>()?;
    for name in absent {
        eprintln!(
            "logstore-charts: no block {name} in {}, or an empty one: its charts are left as they are",
            input.display()
        );
    }
    fs::create_dir_all(output).map_err(|source| Error::Io {
        path: output.to_owned(),
        source,
    })?;
    for (file, svg) in drawn {
        write(&output.join(file), &svg)?;
        eprintln!("logstore-charts: wrote {}", output.join(file).display());
    }
    Ok(())
}

/// Writes `path` whole or not at all: a temporary file beside it, renamed
/// over it. The temporary file is made new, so a link left in its place
/// is removed, never written through.
fn write(path: &Path, text: &str) -> Result<(), Error> {
    let mut temporary = PathBuf::from(path);
    temporary.set_extension("svg.tmp");
    let io = |source| Error::Io {
        path: temporary.clone(),
        source,
    };
    match fs::remove_file(&temporary) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(io)?;
    fs::rename(&temporary, path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}
