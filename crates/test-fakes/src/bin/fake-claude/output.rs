//! What the fake writes on stdout, in the shapes the real CLI uses.

use super::*;

impl Fake {
    pub(crate) fn assistant(&self, content: Value) {
        self.transcribe();
        emit(
            &json!({"type":"assistant","message":{"id":format!("msg_{}", uuid()),"type":"message",
            "role":"assistant","model":self.model,"content":content,"stop_reason":null,
            "usage":self.usage},"parent_tool_use_id":null,
            "session_id":self.session_id,"uuid":uuid()}),
        );
    }

    pub(crate) fn system(&self, mut fields: Value) {
        fields["type"] = json!("system");
        fields["session_id"] = json!(self.session_id);
        fields["uuid"] = json!(uuid());
        emit(&fields);
    }

    /// A `rate_limit_event` as claude writes it when the API's unified rate-limit
    /// headers change; a warning carries the window's use at the top level too.
    pub(crate) fn rate_limit_event(
        &self,
        status: &str,
        utilization: f64,
        resets: u64,
        window: &str,
    ) {
        let mut info = json!({"status":status,"resetsAt":resets,"rateLimitType":window,
            "isUsingOverage":false,
            "unifiedWindows":{window:{"utilization":utilization,"resetsAt":resets}}});
        if status == "allowed_warning" {
            info["utilization"] = json!(utilization);
        }
        emit(
            &json!({"type":"rate_limit_event","rate_limit_info":info,"uuid":uuid(),
            "session_id":self.session_id}),
        );
    }

    pub(crate) fn compaction_failed(&self, error: &str) {
        self.system(json!({"subtype":"status","status":"compacting","compact_output_chars":0}));
        self.system(
            json!({"subtype":"status","status":null,"compact_result":"failed","compact_error":error}),
        );
    }

    /// A conversation that no longer fits: the API refused it and compaction could
    /// not help. `reason` is `prompt_too_long`, or `blocking_limit` when compaction
    /// failed before the turn.
    pub(crate) fn overflow(&mut self, started: Instant, reason: &str, text: &str) {
        if !self.full {
            self.full = true;
            self.remember(json!({"full": true}));
        }
        let status = (reason == "prompt_too_long").then_some(400);
        emit(
            &json!({"type":"assistant","message":{"id":uuid(),"model":"<synthetic>","role":"assistant",
            "stop_reason":"stop_sequence","content":[{"type":"text","text":text}]},
            "session_id":self.session_id,"error":"invalid_request","is_api_error_message":true,
            "api_error_status":status,"parent_tool_use_id":null,"uuid":uuid()}),
        );
        emit(
            &json!({"type":"result","subtype":"success","is_error":true,"api_error_status":status,
            "api_error_type":"invalid_request_error","duration_ms":started.elapsed().as_millis() as u64,
            "num_turns":1,"result":text,"session_id":self.session_id,"total_cost_usd":self.spent,"usage":{},
            "modelUsage":{},"permission_denials":[],"stop_reason":"stop_sequence",
            "terminal_reason":reason,"uuid":uuid()}),
        );
    }

    /// Many assistant lines as fast as a pipe takes them: one buffered write, so a
    /// benchmark measures leash, not this fake.
    pub(crate) fn flood(&self, lines: u64) {
        let template = json!({"type":"assistant","message":{"id":"msg_flood","type":"message",
            "role":"assistant","model":self.model,"content":[{"type":"text","text":"flood line N"}],
            "stop_reason":null,"usage":{"input_tokens":10,"output_tokens":5}},"parent_tool_use_id":null,
            "session_id":self.session_id,"uuid":"00000000-0000-4000-8000-000000000000"})
        .to_string();
        let (head, tail) = template
            .split_once("flood line N")
            .unwrap_or((&template, ""));
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        for i in 0..lines {
            let _ = writeln!(out, "{head}flood line {i}{tail}");
        }
        let _ = out.flush();
    }

    pub(crate) fn text(&self, text: &str) {
        self.assistant(json!([{"type":"text","text":text}]));
    }

    /// A tool call and its result.
    pub(crate) fn tool(&mut self, name: &str, input: Value, output: &str, is_error: bool) {
        let id = self.tool_use(name, input);
        self.tool_result(&id, output, is_error);
    }

    /// The assistant's tool call; returns its id for the result.
    /// Runs `command` as claude's Bash tool would, its use and result on the stream;
    /// true when it succeeded.
    pub(crate) fn bash(&mut self, command: &str) -> bool {
        let id = self.tool_use("Bash", json!({"command": command}));
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .output();
        let (text, failed) = match output {
            Ok(o) => (
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
                !o.status.success(),
            ),
            Err(e) => (e.to_string(), true),
        };
        self.tool_result(&id, &text, failed);
        !failed
    }

    pub(crate) fn tool_use(&mut self, name: &str, input: Value) -> String {
        self.request_seq += 1;
        let id = format!("toolu_{}", self.request_seq);
        self.assistant(json!([{"type":"tool_use","id":id,"name":name,"input":input}]));
        id
    }

    pub(crate) fn tool_result(&self, id: &str, output: &str, is_error: bool) {
        emit(
            &json!({"type":"user","message":{"role":"user","content":[{"type":"tool_result",
            "tool_use_id":id,"content":output,"is_error":is_error}]},"parent_tool_use_id":null,
            "session_id":self.session_id,"uuid":uuid()}),
        );
    }

    pub(crate) fn result(&mut self, started: Instant, text: &str, cost: f64) {
        self.spent += cost;
        self.remember(json!({"spent": self.spent}));
        emit(
            &json!({"type":"result","subtype":"success","is_error":false,
            "duration_ms":started.elapsed().as_millis() as u64,"duration_api_ms":1,"ttft_ms":1,
            "num_turns":1,"result":text,"session_id":self.session_id,"total_cost_usd":self.spent,
            "usage":{"input_tokens":10,"output_tokens":5},
            "modelUsage":{self.model.clone():{"costUSD":self.spent,"contextWindow":self.window(),
                "maxOutputTokens":64000}},
            "model_usage_since_last_result":{self.model.clone():{"costUSD":cost,
                "contextWindow":self.window()}},
            "permission_denials":self.denials,"api_error_status":null,"stop_reason":"end_turn",
            "terminal_reason":"completed","uuid":uuid()}),
        );
    }

    pub(crate) fn interrupted(&self, started: Instant) {
        if let Some(ms) = std::env::var("FAKE_CLAUDE_LATE_RESULT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
        }
        emit(
            &json!({"type":"user","message":{"role":"user","content":[{"type":"text",
            "text":"[Request interrupted by user]"}]},"session_id":self.session_id,"uuid":uuid()}),
        );
        emit(
            &json!({"type":"result","subtype":"error_during_execution","is_error":true,
            "duration_ms":started.elapsed().as_millis() as u64,"num_turns":2,"session_id":self.session_id,
            "total_cost_usd":self.spent,"usage":{},"modelUsage":{},"permission_denials":[],"stop_reason":null,
            "errors":["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"],
            "terminal_reason":"aborted_streaming","uuid":uuid()}),
        );
    }
}
