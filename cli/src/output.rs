//! Writing to stdout: readable text or JSON, as `--json` says.

use std::io::{self, Write as _};

use serde_json::Value;

/// How responses are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned tables and `key  value` lines.
    Text,
    /// One JSON document per response.
    Json,
}

/// Writes to stdout. A closed pipe (`pcnctl ... | head`) is not an error: the reader has what it
/// wanted.
pub fn write(bytes: impl AsRef<[u8]>) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(bytes.as_ref())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Prints a response: `text()` in text mode, `json()` pretty-printed in JSON mode (only the one
/// that is needed is built).
pub fn print(
    format: Format,
    text: impl FnOnce() -> String,
    json: impl FnOnce() -> Value,
) -> io::Result<()> {
    match format {
        Format::Text => write(text()),
        Format::Json => write(format!("{:#}\n", json())),
    }
}
