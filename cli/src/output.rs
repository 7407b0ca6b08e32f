//! What goes to stdout: Box's JSON answers and summary lines.

use crate::failure::{Exit, Failure};
use serde::Serialize;
use std::io::Write;

/// Prints `value` as pretty JSON on stdout (a closed pipe is not an error).
pub(crate) fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(Exit::Other, format!("cannot write JSON: {e}")))?;
    print_line(&text)
}

/// Prints one line on stdout (a closed pipe is not an error).
pub(crate) fn print_line(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    // The text may quote a server's (a file name, an id): no control character gets out but
    // the line breaks (JSON has its own escapes, so its lines are left as they are).
    let text = text.lines().map(box_upload_driver::printable).collect::<Vec<_>>().join("\n");
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::new(Exit::Io, format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}
