//! Server-to-client data frames framed by the session (RFC 6455 section 5.2: FIN set, no mask, no
//! extensions: the hub negotiates none), written straight to the connection.

use crate::gateway::session::commands::Transport;
use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Frames `message` onto `out` if it is a text or binary message; false (and nothing appended)
/// for any other kind, which tungstenite must write.
pub(super) fn append(out: &mut Vec<u8>, message: &Message) -> bool {
    let (opcode, payload): (u8, &[u8]) = match message {
        Message::Text(t) => (0x1, t.as_bytes()),
        Message::Binary(b) => (0x2, b),
        _ => return false,
    };
    out.reserve(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    true
}

/// Writes the frames in `framed` to the connection, after whatever tungstenite still buffers, and
/// empties `framed` (giving its memory back).
pub(super) async fn write_all<S: Transport>(ws: &mut S, framed: &mut Vec<u8>) -> Result<(), WsError> {
    if framed.is_empty() {
        return Ok(());
    }
    ws.flush().await?;
    let raw = ws.raw();
    raw.write_all(framed).await?;
    raw.flush().await?;
    *framed = Vec::new();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::append;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
    use tokio_tungstenite::tungstenite::Message;

    /// The bytes match what tungstenite itself writes for the same message, at every length class.
    #[test]
    fn frames_are_what_tungstenite_writes() {
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let text = Message::Text("x".repeat(len).into());
            let binary = Message::Binary(vec![7u8; len].into());
            for (message, data, payload) in
                [(text, Data::Text, vec![b'x'; len]), (binary, Data::Binary, vec![7u8; len])]
            {
                let mut ours = Vec::new();
                assert!(append(&mut ours, &message));
                let header = FrameHeader { is_final: true, opcode: OpCode::Data(data), ..FrameHeader::default() };
                let mut theirs = Vec::new();
                Frame::from_payload(header, payload.into()).format(&mut theirs).unwrap();
                assert_eq!(ours, theirs, "length {len}");
            }
        }
    }

    #[test]
    fn control_messages_are_left_to_tungstenite() {
        let mut out = Vec::new();
        assert!(!append(&mut out, &Message::Ping(Default::default())));
        assert!(!append(&mut out, &Message::Close(None)));
        assert!(out.is_empty());
    }
}
