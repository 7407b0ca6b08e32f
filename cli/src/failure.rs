//! What a command failed with: one line for stderr and an exit code.

use box_upload_core::{Error as CoreError, ProtocolError, SourceError};
use std::fmt;

/// The documented exit codes (see `box-upload --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 1: anything else.
    Other = 1,
    /// 2: usage (clap's, and argument checks after parsing).
    Usage = 2,
    /// 3: authentication.
    Auth = 3,
    /// 4: Box answered an error.
    Api = 4,
    /// 5: integrity.
    Integrity = 5,
    /// 6: I/O (files, network).
    Io = 6,
}

/// A failed command: what to print (one line) and how to exit.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The exit code.
    pub(crate) exit: Exit,
    /// The message, without the program name.
    pub(crate) message: String,
}

impl Failure {
    /// A failure with `exit` and `message`.
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self { exit, message: message.into() }
    }

    /// Prefixes the message with what was being done.
    #[must_use]
    pub(crate) fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit code of a core error.
pub(crate) fn classify_core(e: &CoreError) -> Exit {
    match e {
        CoreError::Auth(_) => Exit::Auth,
        CoreError::Api(api) if api.status == 401 => Exit::Auth,
        CoreError::Api(api) if matches!(api.code(), Some("digest_mismatch" | "parts_mismatch")) => Exit::Integrity,
        CoreError::Api(_) | CoreError::SessionGone { .. } | CoreError::CommitTimeout { .. } => Exit::Api,
        CoreError::Protocol(p) => match p {
            ProtocolError::PartEchoMismatch { .. }
            | ProtocolError::PartsListMismatch(_)
            | ProtocolError::PartConflict { .. }
            | ProtocolError::CommitMismatch(_) => Exit::Integrity,
            _ => Exit::Api,
        },
        CoreError::Source(SourceError::Io(_)) => Exit::Io,
        CoreError::Source(_) => Exit::Integrity,
        CoreError::Input(box_upload_core::InputError::CheckpointMismatch(_)) => Exit::Integrity,
        CoreError::Transport { .. } => Exit::Io,
        _ => Exit::Other,
    }
}

/// One line for a core error: its Display, plus Box's code when the text lacks it.
pub(crate) fn core_message(e: &CoreError) -> String {
    let mut text = e.to_string();
    if let Some(code) = e.box_code() {
        if !text.contains(code) {
            text.push_str(&format!(" [Box code {code}]"));
        }
    }
    one_line(&text)
}

/// Joins lines so the message stays on one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split(['\n', '\r']).map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
}

impl From<&CoreError> for Failure {
    fn from(e: &CoreError) -> Self {
        Failure::new(classify_core(e), core_message(e))
    }
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        Failure::from(&e)
    }
}

impl From<box_upload_core::InputError> for Failure {
    fn from(e: box_upload_core::InputError) -> Self {
        Failure::from(CoreError::from(e))
    }
}

impl From<box_upload_ureq::Error> for Failure {
    fn from(e: box_upload_ureq::Error) -> Self {
        use box_upload_ureq::Error as U;
        if let Some(core) = e.core() {
            return Failure::from(core);
        }
        let exit = match &e {
            U::SourceOpen { .. } | U::Checkpoint { .. } => Exit::Io,
            U::SizeMismatch { .. } => Exit::Integrity,
            _ => Exit::Other,
        };
        Failure::new(exit, one_line(&e.to_string()))
    }
}

impl From<box_upload_hyper::Error> for Failure {
    fn from(e: box_upload_hyper::Error) -> Self {
        use box_upload_hyper::Error as H;
        if let Some(core) = e.core() {
            return Failure::from(core);
        }
        let exit = match &e {
            H::SourceOpen { .. } | H::Checkpoint { .. } => Exit::Io,
            H::SizeMismatch { .. } => Exit::Integrity,
            _ => Exit::Other,
        };
        Failure::new(exit, one_line(&e.to_string()))
    }
}

/// An I/O failure on `path`.
pub(crate) fn io_failure(what: &str, path: &std::path::Path, e: &std::io::Error) -> Failure {
    Failure::new(Exit::Io, format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins() {
        assert_eq!(one_line("a\n b\r\nc"), "a b c");
    }

    #[test]
    fn classes() {
        let e = CoreError::from(box_upload_core::InputError::FileTooSmall { size: 3 });
        assert_eq!(classify_core(&e), Exit::Other);
        let e = CoreError::Source(SourceError::Changed("x".into()));
        assert_eq!(classify_core(&e), Exit::Integrity);
        let e = CoreError::Source(SourceError::Io("x".into()));
        assert_eq!(classify_core(&e), Exit::Io);
    }
}
