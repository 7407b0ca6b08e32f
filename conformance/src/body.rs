//! Response body helpers shared by the emulator, the recorder and the replay server.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// The body type of every response the crate's servers produce.
pub(crate) type ResBody = BoxBody<Bytes, io::Error>;

/// A body holding `bytes` in full.
pub(crate) fn full(bytes: impl Into<Bytes>) -> ResBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// An empty body.
pub(crate) fn empty() -> ResBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A body fed through a channel: the sender half is handed to a producer task, which
/// stops when the receiver (the connection) goes away. Memory is bounded by the channel size.
pub(crate) fn channel(capacity: usize) -> (mpsc::Sender<io::Result<Bytes>>, ResBody) {
    let (tx, rx) = mpsc::channel(capacity);
    (tx, ChannelBody { rx }.boxed())
}

struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx.poll_recv(cx).map(|item| item.map(|r| r.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Reads a request body into memory, refusing more than `limit` bytes (the read stops there).
pub(crate) async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, ReadError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ReadError::Transport(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(ReadError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Why a request body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The body is larger than the limit.
    TooLarge,
    /// The connection failed while reading.
    Transport(#[allow(dead_code)] String),
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}
