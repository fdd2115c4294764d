//! JSON for the HTTP/1.1 answers hyper writes by itself.
//!
//! A request head hyper cannot parse never reaches the service: hyper
//! answers it (400 malformed, 414 URI too long, 431 head too large) with an
//! empty body and closes the connection, and offers no hook to change that
//! answer. [`JsonProtocolErrors`] sits between hyper and the socket and
//! swaps exactly those answers for the same status with the project's JSON
//! error body. It recognises them by shape: a complete response head with
//! `content-length: 0` and no `content-type`, which the service never
//! writes for these statuses (every answer of its own is JSON).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use hyper::rt::{Read, ReadBufCursor, Write};

/// `inner`, with hyper's own empty HTTP/1.1 error answers made JSON.
pub(crate) struct JsonProtocolErrors<T> {
    inner: T,
    /// A replacement answer still to be written.
    pending: Bytes,
}

impl<T> JsonProtocolErrors<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            pending: Bytes::new(),
        }
    }
}

impl<T: Write + Unpin> JsonProtocolErrors<T> {
    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(written);
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `head` (hyper believes it written) and writes its JSON form.
    fn replace(&mut self, cx: &mut Context<'_>, replacement: Bytes, head: usize) -> usize {
        self.pending = replacement;
        // Pending is fine: hyper flushes next, and the flush writes the rest.
        let _ = self.poll_pending(cx);
        head
    }
}

impl<T: Read + Unpin> Read for JsonProtocolErrors<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for JsonProtocolErrors<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(replacement) = json_replacement(buf) {
            return Poll::Ready(Ok(this.replace(cx, replacement, buf.len())));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        let mut written = bufs.iter().filter(|buf| !buf.is_empty());
        if let (Some(head), None) = (written.next(), written.next())
            && let Some(replacement) = json_replacement(head)
        {
            return Poll::Ready(Ok(this.replace(cx, replacement, head.len())));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The JSON answer for one of hyper's automatic error answers, or `None`
/// for anything else.
fn json_replacement(written: &[u8]) -> Option<Bytes> {
    let status_line = written
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| written.strip_prefix(b"HTTP/1.0 "))?;
    let (status, code, message) = match status_line.get(..3)? {
        b"400" => (
            "400 Bad Request",
            "malformed_request",
            "the request is not valid HTTP",
        ),
        b"414" => (
            "414 URI Too Long",
            "uri_too_long",
            "the request's URI is too long",
        ),
        b"431" => (
            "431 Request Header Fields Too Large",
            "headers_too_large",
            "the request's head is too large (too many or too long header fields)",
        ),
        _ => return None,
    };
    let automatic = written.ends_with(b"\r\n\r\n")
        && contains(written, b"\r\ncontent-length: 0\r\n")
        && !contains(written, b"\r\ncontent-type:");
    if !automatic {
        return None;
    }
    let code_number = status
        .split(' ')
        .next()
        .and_then(|number| http::StatusCode::from_bytes(number.as_bytes()).ok())
        .unwrap_or(http::StatusCode::BAD_REQUEST);
    let body = crate::conventions::problem_json(code_number, code, message);
    Some(Bytes::from(format!(
        "HTTP/1.1 {status}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        crate::conventions::PROBLEM_JSON,
        body.len()
    )))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_empty_error_answers_are_replaced() {
        let automatic = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n";
        let replaced = json_replacement(automatic).expect("replaced");
        let text = String::from_utf8_lossy(&replaced);
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        let body = text.split("\r\n\r\n").nth(1).expect("body");
        let json: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(json["error"]["code"], "headers_too_large");
        assert!(text.contains(&format!("content-length: {}\r\n", body.len())));

        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(json_replacement(ours).is_none());
        assert!(json_replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(json_replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n").is_none());
    }
}
