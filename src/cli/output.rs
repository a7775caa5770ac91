//! Presentation: one JSON object on stdout with `--json`, plain sentences
//! otherwise. Text that came from a document (customer, product) is sanitised
//! before it reaches a terminal. A closed pipe ends output quietly.

use std::io::Write;

use serde_json::{Value, json};

use super::exit::{CliError, Exit};

/// What a command produced.
pub struct Outcome {
    /// Lines for a person.
    pub human: String,
    /// The `--json` result (the `ok` field is added here).
    pub json: Value,
    /// Usually `Exit::Ok`; `fingerprint compare` also ends with `NoMatch`.
    pub exit: Exit,
    /// Said on stderr in human mode (warnings, next steps).
    pub notes: Vec<String>,
    /// A [`Stream`] already wrote the result; nothing more is printed.
    printed: bool,
}

impl Outcome {
    pub fn new(human: impl Into<String>, json: Value) -> Outcome {
        Outcome {
            human: human.into(),
            json,
            exit: Exit::Ok,
            notes: Vec::new(),
            printed: false,
        }
    }

    /// An outcome whose output a [`Stream`] already wrote.
    pub fn printed() -> Outcome {
        Outcome {
            printed: true,
            ..Outcome::new("", Value::Null)
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Outcome {
        self.notes.push(note.into());
        self
    }
}

/// Every value from outside is printed through this (see `base::text`).
pub use nodelock::base::text::printable as clean;

/// Writes a document the user asked for to `path`, atomically.
pub fn write_out(path: &std::path::Path, text: &str) -> Result<(), CliError> {
    nodelock::base::fsio::write_file(path, text.as_bytes(), false, false)
        .map_err(|e| CliError::new(Exit::Io, format!("cannot write {}: {e}", path.display())))
}

/// `word` as one word of a POSIX shell command: as it is when it holds only
/// characters no shell treats specially, else in single quotes. Printed next
/// steps are pasted.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Says something on stderr at once, in human and JSON mode alike (JSON goes
/// to stdout): for warnings a person must not miss.
pub fn warn(text: &str) {
    write_stderr(&format!("warning: {}\n", clean(text)));
}

fn write_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn write_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// A list printed as it is produced, one row at a time, so that a report of
/// a million rows needs the memory of one: in JSON mode
/// `{"<key>": [row, …], "ok": true}`, otherwise a line per row.
pub struct Stream {
    json: bool,
    rows: usize,
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
}

impl Stream {
    /// Starts the list `key`.
    pub fn start(json_mode: bool, key: &str) -> Stream {
        let mut stream = Stream {
            json: json_mode,
            rows: 0,
            out: std::io::BufWriter::new(std::io::stdout().lock()),
        };
        if json_mode {
            stream.write(&format!("{{\n  \"{key}\": ["));
        }
        stream
    }

    /// One row: its JSON form, or the line `human` makes.
    pub fn row<T: serde::Serialize>(&mut self, row: &T, human: impl FnOnce(&T) -> String) {
        let text = if self.json {
            let value = serde_json::to_string(row).unwrap_or_default();
            format!("{}\n    {value}", if self.rows == 0 { "" } else { "," })
        } else {
            let mut line = human(row);
            if !line.ends_with('\n') {
                line.push('\n');
            }
            line
        };
        self.rows += 1;
        self.write(&text);
    }

    /// Ends the list; `empty` is the line said when there was no row.
    pub fn finish(mut self, empty: &str) -> Outcome {
        if self.json {
            self.write("\n  ],\n  \"ok\": true\n}\n");
        } else if self.rows == 0 && !empty.is_empty() {
            self.write(&format!("{empty}\n"));
        }
        let _ = self.out.flush();
        Outcome::printed()
    }

    fn write(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
    }
}

/// A table printed as CSV as it is produced (RFC 4180, a header row first),
/// for the spreadsheets finance and compliance keep. A cell that a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) is
/// prefixed with `'`: customer names and audit details come from outside.
pub struct CsvStream {
    out: csv::Writer<std::io::BufWriter<std::io::StdoutLock<'static>>>,
}

impl CsvStream {
    pub fn start(header: &[&str]) -> Result<CsvStream, CliError> {
        let mut stream = CsvStream {
            out: csv::Writer::from_writer(std::io::BufWriter::new(std::io::stdout().lock())),
        };
        stream.record(header.iter().map(|h| (*h).to_owned()))?;
        Ok(stream)
    }

    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) -> Result<(), CliError> {
        self.record(cells.into_iter().map(|c| spreadsheet_safe(&c)))
    }

    fn record(&mut self, cells: impl IntoIterator<Item = String>) -> Result<(), CliError> {
        self.out
            .write_record(cells)
            .map_err(|e| CliError::new(Exit::Io, format!("cannot write the CSV: {e}")))
    }

    pub fn finish(mut self) -> Result<Outcome, CliError> {
        self.out
            .flush()
            .map_err(|e| CliError::new(Exit::Io, format!("cannot write the CSV: {e}")))?;
        Ok(Outcome::printed())
    }
}

/// `cell` as text no spreadsheet runs: control characters made printable,
/// and a leading formula character defused.
fn spreadsheet_safe(cell: &str) -> String {
    let cell = clean(cell);
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// Prints a result and returns its exit code.
pub fn emit(result: Result<Outcome, CliError>, json_mode: bool) -> Exit {
    match result {
        Ok(outcome) => {
            if outcome.printed {
                // Already streamed.
            } else if json_mode {
                let mut value = outcome.json;
                if let Value::Object(map) = &mut value {
                    map.insert("ok".into(), Value::Bool(outcome.exit == Exit::Ok));
                }
                write_stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                ));
            } else {
                if !outcome.human.is_empty() {
                    write_stdout(&format!("{}\n", outcome.human.trim_end()));
                }
                for note in &outcome.notes {
                    write_stderr(&format!("{}\n", note.trim_end()));
                }
            }
            outcome.exit
        }
        Err(err) => {
            if json_mode {
                let mut value = json!({
                    "ok": false,
                    "error": { "code": err.exit.code(), "exit": err.exit as i32, "message": err.message }
                });
                if let Value::Object(map) = &mut value {
                    for (name, field) in err.fields {
                        map.entry(name).or_insert(field);
                    }
                }
                write_stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                ));
            }
            // Errors may carry next steps on further lines; nothing else passes.
            let text: String = err.message.split('\n').map(clean).collect::<Vec<_>>().join("\n");
            write_stderr(&format!("nodelock: {text}\n"));
            err.exit
        }
    }
}
