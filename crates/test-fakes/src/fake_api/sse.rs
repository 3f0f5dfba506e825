//! Replies in the Messages API's shapes: server-sent events or one JSON message.

use super::*;

fn sse(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

fn usage(input: u64, output: u64) -> Value {
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
        "service_tier": "standard"
    })
}

fn message_start(id: u64, model: &str, input: u64) -> String {
    let msg = json!({
        "id": format!("msg_fake_{id}"), "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage(input, 1)
    });
    sse(
        "message_start",
        &json!({"type": "message_start", "message": msg}),
    ) + &sse("ping", &json!({"type": "ping"}))
}

fn text_block_start() -> String {
    sse(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    )
}

fn text_delta(index: usize, text: &str) -> String {
    sse(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
    )
}

fn block_stop(index: usize) -> String {
    sse(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    )
}

fn message_end(stop_reason: &str, input: u64, output: u64) -> String {
    sse(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": usage(input, output)}),
    ) + &sse("message_stop", &json!({"type": "message_stop"}))
}

fn tokens(s: &str) -> u64 {
    (s.len() as u64 / 4).max(1)
}

fn sse_response(id: u64) -> hyper::http::response::Builder {
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .header("request-id", format!("req_fake_{id}"))
}

fn json_response(status: u16, id: u64, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("request-id", format!("req_fake_{id}"))
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("response")
}

fn message_json(
    id: u64,
    model: &str,
    content: Value,
    stop_reason: &str,
    input: u64,
    output: u64,
) -> Value {
    json!({
        "id": format!("msg_fake_{id}"), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop_reason, "stop_sequence": null, "usage": usage(input, output)
    })
}

pub(super) fn respond(
    reply: Reply,
    model: &str,
    input: u64,
    stream: bool,
    id: u64,
) -> Response<Body> {
    match reply {
        Reply::Error {
            status,
            error_type,
            message,
            retry_after,
        } => {
            let body = json!({"type": "error", "error": {"type": error_type, "message": message},
                              "request_id": format!("req_fake_{id}")});
            let mut b = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .header("request-id", format!("req_fake_{id}"));
            if let Some(s) = retry_after {
                b = b.header("retry-after", s.to_string());
            }
            b.body(Full::new(Bytes::from(body.to_string())).boxed())
                .expect("response")
        }
        Reply::Text(text) if stream => {
            let out = tokens(&text);
            let s = message_start(id, model, input)
                + &text_block_start()
                + &text_delta(0, &text)
                + &block_stop(0)
                + &message_end("end_turn", input, out);
            sse_response(id)
                .body(Full::new(Bytes::from(s)).boxed())
                .expect("response")
        }
        Reply::Text(text) => {
            let out = tokens(&text);
            json_response(
                200,
                id,
                &message_json(
                    id,
                    model,
                    json!([{"type": "text", "text": text}]),
                    "end_turn",
                    input,
                    out,
                ),
            )
        }
        Reply::ToolUse { name, input: args } => {
            let tid = format!("toolu_fake_{id}");
            if stream {
                let start = json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "tool_use", "id": tid, "name": name, "input": {}}});
                let delta = json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": args.to_string()}});
                let s = message_start(id, model, input)
                    + &sse("content_block_start", &start)
                    + &sse("content_block_delta", &delta)
                    + &block_stop(0)
                    + &message_end("tool_use", input, 20);
                sse_response(id)
                    .body(Full::new(Bytes::from(s)).boxed())
                    .expect("response")
            } else {
                let content = json!([{"type": "tool_use", "id": tid, "name": name, "input": args}]);
                json_response(
                    200,
                    id,
                    &message_json(id, model, content, "tool_use", input, 20),
                )
            }
        }
        Reply::SlowText {
            chunks,
            delay_per_chunk,
        } => {
            if !stream {
                let (tx, body) = Channel::<Bytes, Infallible>::new(1);
                let model = model.to_string();
                tokio::spawn(async move {
                    let mut tx = tx;
                    tokio::time::sleep(delay_per_chunk * chunks.len() as u32).await;
                    let text = chunks.concat();
                    let out = tokens(&text);
                    let m = message_json(
                        id,
                        &model,
                        json!([{"type": "text", "text": text}]),
                        "end_turn",
                        input,
                        out,
                    );
                    let _ = tx.send_data(Bytes::from(m.to_string())).await;
                });
                return Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(body.boxed())
                    .expect("response");
            }
            let (mut tx, body) = Channel::<Bytes, Infallible>::new(4);
            let head = message_start(id, model, input) + &text_block_start();
            tokio::spawn(async move {
                if tx.send_data(Bytes::from(head)).await.is_err() {
                    return;
                }
                let mut out = 0;
                for c in &chunks {
                    tokio::time::sleep(delay_per_chunk).await;
                    out += tokens(c);
                    if tx.send_data(Bytes::from(text_delta(0, c))).await.is_err() {
                        return; // client went away (e.g. interrupted)
                    }
                }
                let _ = tx
                    .send_data(Bytes::from(
                        block_stop(0) + &message_end("end_turn", input, out),
                    ))
                    .await;
            });
            sse_response(id).body(body.boxed()).expect("response")
        }
        Reply::StreamError {
            text,
            error_type,
            message,
        } => {
            let err = json!({"type": "error", "error": {"type": error_type, "message": message}});
            if stream {
                let s = message_start(id, model, input)
                    + &text_block_start()
                    + &text_delta(0, &text)
                    + &sse("error", &err);
                sse_response(id)
                    .body(Full::new(Bytes::from(s)).boxed())
                    .expect("response")
            } else {
                json_response(529, id, &err)
            }
        }
        Reply::Delay(_, r) => respond(*r, model, input, stream, id),
        Reply::Usage(n, r) => respond(*r, model, n, stream, id),
        Reply::Dynamic(_) => json_response(
            500,
            id,
            &json!({"type": "error", "error": {"type": "api_error", "message": "unresolved dynamic reply"}}),
        ),
    }
}
