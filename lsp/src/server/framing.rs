//! The stdio transport between the editor and the protocol handlers. Frames
//! (`Content-Length` header + JSON body) are read here first: a body that is not JSON, or
//! not a JSON-RPC message, is answered with a JSON-RPC error (-32700 or -32600) and
//! dropped, because the framing layer underneath stops reading at the first undecodable
//! message and the server would go deaf. Valid frames pass through unchanged; the
//! handlers' output and these error answers share one writer, whole frames at a time.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc::UnboundedSender;

/// Longest body accepted; a bigger announced length is treated as garbage.
const MAX_BODY: usize = 256 * 1024 * 1024;

/// Reads one frame's body. `Ok(None)` at the end of input; `Err` with the bytes to answer
/// for a frame whose header was unusable.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> std::io::Result<Option<Result<Vec<u8>, String>>> {
    let mut length: Option<usize> = None;
    let mut problem = None;
    let mut any_header = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if any_header {
                break;
            }
            continue;
        }
        any_header = true;
        match line.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => match value.trim().parse::<usize>() {
                Ok(parsed) if parsed <= MAX_BODY => length = Some(parsed),
                _ => problem = Some(format!("bad Content-Length header: {line:?}")),
            },
            Some((name, _)) if name.trim().eq_ignore_ascii_case("content-type") => {}
            _ => problem = Some(format!("unexpected header line: {line:?}")),
        }
    }
    match (length, problem) {
        (Some(length), None) => {
            let mut body = vec![0; length];
            reader.read_exact(&mut body).await?;
            Ok(Some(Ok(body)))
        }
        (_, Some(problem)) => Ok(Some(Err(problem))),
        (None, None) => Ok(Some(Err("a frame without Content-Length".to_string()))),
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut framed = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    framed.extend_from_slice(body);
    framed
}

fn error_frame(id: Value, code: i64, message: String) -> Vec<u8> {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    frame(body.to_string().as_bytes())
}

/// Why a body cannot go to the handlers, as a ready error answer.
fn check_message(body: &[u8]) -> Result<(), Vec<u8>> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(error) => return Err(error_frame(Value::Null, -32700, format!("Parse error: {error}"))),
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let invalid = |message: &str| Err(error_frame(id.clone(), -32600, format!("Invalid request: {message}")));
    let Some(object) = value.as_object() else { return invalid("a message must be a JSON object") };
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return invalid("`jsonrpc` must be \"2.0\"");
    }
    if !matches!(object.get("id"), None | Some(Value::Number(_)) | Some(Value::String(_)) | Some(Value::Null)) {
        return invalid("`id` must be a number or a string");
    }
    match object.get("method") {
        Some(Value::String(_)) => Ok(()),
        Some(_) => invalid("`method` must be a string"),
        None if object.contains_key("id") && (object.contains_key("result") || object.contains_key("error")) => Ok(()),
        None => invalid("neither a request, a notification nor a response"),
    }
}

/// Copies frames from `input` to `handlers`, answering bad ones on `errors`.
pub async fn pump_input<R, W>(input: R, mut handlers: W, errors: UnboundedSender<Vec<u8>>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(input);
    loop {
        match read_frame(&mut reader).await {
            Ok(Some(Ok(body))) => match check_message(&body) {
                Ok(()) => {
                    if handlers.write_all(&frame(&body)).await.is_err() || handlers.flush().await.is_err() {
                        return;
                    }
                }
                Err(answer) => {
                    tracing::warn!("dropped a malformed message from the client");
                    let _ = errors.send(answer);
                }
            },
            Ok(Some(Err(problem))) => {
                tracing::warn!("{problem}");
                let _ = errors.send(error_frame(Value::Null, -32700, format!("Parse error: {problem}")));
            }
            // End of input (or a broken pipe): the handlers see their input close.
            Ok(None) | Err(_) => return,
        }
    }
}

/// Splits the handlers' output into frames for the shared writer.
pub async fn pump_output<R: AsyncRead + Unpin>(output: R, frames: UnboundedSender<Vec<u8>>) {
    let mut reader = BufReader::new(output);
    while let Ok(Some(Ok(body))) = read_frame(&mut reader).await {
        if frames.send(frame(&body)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_for_json_rpc_shape() {
        assert!(check_message(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":"odd"}"#).is_ok());
        assert!(check_message(br#"{"jsonrpc":"2.0","id":1,"result":null}"#).is_ok());
        let parse = String::from_utf8(check_message(b"{\"jsonrpc\": ").expect_err("not JSON")).expect("utf-8");
        assert!(parse.contains("-32700"), "{parse}");
        let shape = String::from_utf8(check_message(br#"{"jsonrpc":"2.0","id":7,"method":3}"#).expect_err("bad method")).expect("utf-8");
        assert!(shape.contains("-32600") && shape.contains("\"id\":7"), "{shape}");
        assert!(check_message(br#"[1,2]"#).is_err());
    }
}
