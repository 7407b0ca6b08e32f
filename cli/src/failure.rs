//! What a command failed with: one line for stderr and an exit code.

use box_upload_core::{Error as CoreError, InputError, ProtocolError, SourceError};
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
    /// 7: whether the commit went through cannot be told (its answer was lost and the file
    /// could not be checked).
    CommitOutcomeUnknown = 7,
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
    /// The message with control characters escaped: it may quote a server's text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&box_upload_driver::printable(&self.message))
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
            | ProtocolError::CommitMismatch { .. } => Exit::Integrity,
            _ => Exit::Api,
        },
        CoreError::Source(SourceError::Io(_)) => Exit::Io,
        CoreError::Source(_) => Exit::Integrity,
        CoreError::Input(InputError::CheckpointMismatch(_) | InputError::SizeMismatch { .. }) => Exit::Integrity,
        CoreError::Transport { .. } => Exit::Io,
        CoreError::CommitOutcomeUnknown { .. } => Exit::CommitOutcomeUnknown,
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

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Failure::from(CoreError::from(e))
    }
}

/// The one error of both transports: the core's error as [`classify_core`] says, and what only
/// a driver can hit (a source or checkpoint file that cannot be used, the client's setup).
impl From<box_upload_driver::Error> for Failure {
    fn from(e: box_upload_driver::Error) -> Self {
        use box_upload_driver::Error as D;
        if let Some(core) = e.core() {
            return Failure::from(core);
        }
        let exit = match &e {
            D::SourceOpen { .. } | D::Checkpoint { .. } | D::DeadlineExceeded { .. } => Exit::Io,
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
    fn server_text_is_printed_with_control_characters_escaped() {
        let f = Failure::new(Exit::Api, "Box answered 400: bad\x1b]0;pwned\x07 name\u{202e}");
        let shown = f.to_string();
        assert!(!shown.chars().any(|c| c.is_control() || c == '\u{202e}'), "{shown:?}");
        assert!(shown.contains("\\u{1b}]0;pwned\\u{7}"), "{shown}");
    }

    #[test]
    fn one_line_joins() {
        assert_eq!(one_line("a\n b\r\nc"), "a b c");
    }

    #[test]
    fn classes() {
        let e = CoreError::from(InputError::FileTooSmall { size: 3 });
        assert_eq!(classify_core(&e), Exit::Other);
        let e = CoreError::from(InputError::SizeMismatch { declared: 1, actual: 2 });
        assert_eq!(classify_core(&e), Exit::Integrity);
        let e = CoreError::Source(SourceError::Changed("x".into()));
        assert_eq!(classify_core(&e), Exit::Integrity);
        let e = CoreError::Source(SourceError::Io("x".into()));
        assert_eq!(classify_core(&e), Exit::Io);
        let e = CoreError::CommitOutcomeUnknown {
            session_id: "S".into(),
            file_id: None,
            reason: "r".into(),
            check: "c".into(),
        };
        assert_eq!(classify_core(&e) as i32, 7);
        let e = CoreError::Protocol(ProtocolError::CommitMismatch { file_id: "1".into(), detail: "d".into() });
        assert_eq!(classify_core(&e), Exit::Integrity);
    }

    #[test]
    fn driver_errors() {
        use box_upload_driver::Error as D;
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let exit = |e: D| Failure::from(e).exit;
        assert_eq!(exit(D::SourceOpen { path: "a".into(), source: io() }), Exit::Io);
        assert_eq!(exit(D::Checkpoint { path: "a".into(), source: io() }), Exit::Io);
        assert_eq!(exit(D::CheckpointFormat { path: "a".into(), detail: "x".into() }), Exit::Other);
        assert_eq!(exit(D::CheckpointInUse { path: "a".into(), lock: ".a.lock".into() }), Exit::Other);
        assert_eq!(exit(D::Config("x".into())), Exit::Other);
        assert_eq!(exit(D::from(InputError::SizeMismatch { declared: 1, actual: 2 })), Exit::Integrity);
        assert_eq!(exit(D::Core(CoreError::Cancelled)), Exit::Other);
        let f = Failure::from(D::Config("two\nlines".into()));
        assert_eq!(f.message, "client configuration: two lines");
    }
}
