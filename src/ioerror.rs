//! I/O errors as both sides speak of them: a read timeout called what it is, and an
//! I/O failure put into the words of the other messages. It does not decide what a
//! failure means for a transfer or a session; the callers do.

use std::io;

/// Whether `e` is a timeout: a socket read timeout surfaces as `WouldBlock` on Unix,
/// a deadline of ours as `TimedOut`.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// `e`, but a `WouldBlock` (a read timeout on Unix) becomes the `TimedOut` it is.
pub(crate) fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "timed out")
    } else {
        e
    }
}

/// An I/O error in words: a read or write that ran into its timeout (which the socket
/// reports as `WouldBlock`) says "timed out", everything else as the OS puts it.
pub(crate) fn text(e: &io::Error) -> String {
    match e.kind() {
        // a timeout that says more than that (why, what was kept) keeps its words
        io::ErrorKind::TimedOut if e.get_ref().is_some() => e.to_string(),
        _ if is_timeout(e) => "timed out".into(),
        _ => e.to_string(),
    }
}

/// Whose failure is being told, which decides the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whose {
    /// The server's storage, told to a client: never a path, never the OS's own text.
    Server,
    /// A legacy data connection, told to a Python client: it failed or it timed out.
    Link,
    /// The client's own files, told to its user: the OS's text without the
    /// `(os error N)` tail, lowercase.
    Local,
}

/// `e` in words a user can act on, in the style of the rest of the messages
/// (lowercase, no full stop).
pub(crate) fn reason(e: &io::Error, whose: Whose) -> String {
    use crate::sys::errno;
    match whose {
        Whose::Server => match e.raw_os_error() {
            Some(errno::ENOSPC) => "no space left on the server".into(),
            Some(errno::EDQUOT) => "disk quota exceeded on the server".into(),
            Some(errno::EACCES) | Some(errno::EPERM) => "permission denied on the server".into(),
            _ if e.kind() == io::ErrorKind::TimedOut => "timed out".into(),
            _ => "server I/O error".into(),
        },
        Whose::Link if e.kind() == io::ErrorKind::TimedOut => "timed out".into(),
        Whose::Link => "connection failed".into(),
        Whose::Local => match e.kind() {
            io::ErrorKind::NotFound => "no such file or directory".into(),
            io::ErrorKind::PermissionDenied => "permission denied".into(),
            _ if is_timeout(e) => "timed out".into(),
            _ => os_text(e),
        },
    }
}

/// The OS's text for `e` without its `(os error N)` tail, first letter lowercase.
fn os_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_timeout_is_called_a_timeout() {
        let e = timed_out(io::Error::from(io::ErrorKind::WouldBlock));
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let other = timed_out(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(other.kind(), io::ErrorKind::BrokenPipe);
        assert!(is_timeout(&io::Error::from(io::ErrorKind::WouldBlock)));
        assert!(!is_timeout(&other));
    }

    #[test]
    fn each_side_has_its_words() {
        let full = io::Error::from_raw_os_error(crate::sys::errno::ENOSPC);
        assert_eq!(reason(&full, Whose::Server), "no space left on the server");
        assert_eq!(reason(&full, Whose::Link), "connection failed");
        assert_eq!(reason(&full, Whose::Local), "no space left on device");
        let late = io::Error::from(io::ErrorKind::TimedOut);
        for whose in [Whose::Server, Whose::Link, Whose::Local] {
            assert_eq!(reason(&late, whose), "timed out");
        }
        let gone = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(reason(&gone, Whose::Local), "no such file or directory");
        assert_eq!(reason(&gone, Whose::Server), "server I/O error");
    }
}
