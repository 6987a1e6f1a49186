//! The writing side of a socket: frames encoded for it, replies and errors sent, messages written
//! in one batch under the write timeout, and the close handshake.

use super::commands::Transport;
use super::{frame, Exit, Socket};
use crate::error::Error;
use crate::protocol::{self, Encoded, ServerFrame};
use crate::protocol::{CloseCode, WireError};
use futures_util::SinkExt;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// How long a close frame may take to write before the connection is simply dropped.
pub(super) const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// After the close frame, how long the hub reads (and discards) what the client still sends, waiting
/// for it to close the connection.
const CLOSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

impl<S: Transport> Socket<S> {
    /// Writes the error frame (echoing `id` when the request had one) and counts the error.
    pub(super) async fn reply_error(&mut self, id: Option<protocol::RequestId>, error: Error) -> Result<(), Exit> {
        error.observe();
        self.send(&ServerFrame::error(id, &error)).await
    }

    /// A reply (or the error instead) encoded for this socket, not yet written.
    pub(super) fn reply_message(
        &self,
        id: protocol::RequestId,
        result: crate::Result<ServerFrame>,
    ) -> Result<Message, Exit> {
        let frame = result.unwrap_or_else(|e| {
            e.observe();
            ServerFrame::error(Some(id), &e)
        });
        self.message(&frame)
    }

    /// One frame encoded for this socket and counted, not yet written.
    fn message(&self, frame: &ServerFrame) -> Result<Message, Exit> {
        let bytes = protocol::encode(self.encoding, frame).map_err(|e| {
            e.observe();
            Exit::Close(CloseCode::InternalError)
        })?;
        crate::metrics::frames_out(frame.kind(), 1);
        Ok(to_message(bytes))
    }

    /// Writes a reply, or the error instead.
    pub(super) async fn answer(
        &mut self,
        id: protocol::RequestId,
        result: crate::Result<ServerFrame>,
    ) -> Result<(), Exit> {
        let message = self.reply_message(id, result)?;
        self.write(std::iter::once(message)).await
    }

    /// Encodes and writes one frame.
    pub(super) async fn send(&mut self, frame: &ServerFrame) -> Result<(), Exit> {
        let message = self.message(frame)?;
        self.write(std::iter::once(message)).await
    }

    /// Feeds every message, then flushes once; a peer that cannot take them within the write
    /// timeout is dropped.
    pub(super) async fn write(&mut self, messages: impl IntoIterator<Item = Message>) -> Result<(), Exit> {
        // Nothing to write (a wake whose items an earlier reply's write already carried, say): no
        // timer and no flush. Tungstenite's own queued frames (an automatic pong) go out with the
        // next read or write.
        let mut messages = messages.into_iter().peekable();
        if messages.peek().is_none() {
            return Ok(());
        }
        let deadline = Duration::from_millis(self.hub.config.write_timeout_ms);
        let ws = &mut self.ws;
        let result = tokio::time::timeout(deadline, async move {
            // Data frames are framed here into one buffer that lives for this write only; anything
            // else goes through tungstenite. Its own buffer (an automatic pong, say) is flushed
            // first, so that its frames and these never interleave.
            let mut framed = Vec::new();
            for m in messages {
                if !frame::append(&mut framed, &m) {
                    frame::write_all(ws, &mut framed).await?;
                    ws.feed(m).await?;
                }
            }
            frame::write_all(ws, &mut framed).await?;
            ws.flush().await
        })
        .await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(conn = %self.conn, error = %e, "socket write failed");
                Err(Exit::Gone)
            }
            Err(_) => {
                tracing::info!(conn = %self.conn, "socket write timed out: dropping");
                Err(Exit::Gone)
            }
        }
    }

    /// Sends the close frame, then ends the connection without a reset: the hub's side is shut
    /// (the client reads the end of the stream after the close frame), and what the client still sends
    /// is read and discarded until it closes its side, for at most [`CLOSE_DRAIN_TIMEOUT`]. Dropping
    /// a connection with unread input (a flood's frames, say) makes the kernel send a reset, and the
    /// reset makes the client's kernel discard what the client had not read yet: the replies and the
    /// close frame.
    pub(super) async fn close(&mut self, code: CloseCode) {
        let frame = CloseFrame { code: WsCloseCode::from(code.code()), reason: code.reason().into() };
        let sent = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, self.ws.send(Message::Close(Some(frame)))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
        let raw = self.ws.raw();
        let _ = tokio::time::timeout(CLOSE_DRAIN_TIMEOUT, async move {
            raw.shutdown().await?;
            tokio::io::copy(raw, &mut tokio::io::sink()).await
        })
        .await;
    }
}

/// The tungstenite message that carries an encoded frame.
pub(super) fn to_message(bytes: Encoded) -> Message {
    match bytes {
        Encoded::Text(t) => Message::Text(t),
        Encoded::Binary(b) => Message::Binary(b),
    }
}
