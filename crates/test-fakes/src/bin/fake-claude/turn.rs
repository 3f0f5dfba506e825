//! One turn: the prompt read for its directives, and what claude would say and do.

use super::*;

impl Fake {
    pub(crate) fn turn(&mut self, value: &Value) {
        let started = Instant::now();
        self.turns_run += 1;
        self.denials.clear();
        self.usage = default_usage();
        let prompt = prompt_text(&value["message"]["content"]);
        let previous = self.previous_prompts();
        self.remember(json!({"prompt": prompt}));
        emit(
            &json!({"type":"system","subtype":"init","cwd":cwd(),"session_id":self.session_id,
            "tools":["Bash","Edit","Read","Write"],"mcp_servers":[],"model":self.model,
            "permissionMode":self.permission_mode,"slash_commands":[],"apiKeySource":"none",
            "claude_code_version":VERSION,"output_style":"default","agents":[],"uuid":uuid()}),
        );
        if let Some(model) = prompt.strip_prefix("/model ") {
            return self.model_command(model.trim(), started);
        }
        if let Some(instructions) = prompt.strip_prefix("/compact") {
            return self.manual_compact(instructions.trim(), started);
        }
        if self.full {
            self.log_event(json!({"event":"turn","prompt":prompt,"model":self.model,
                "session_id":self.session_id,"history":previous,"full":true}));
            return self.overflow(started, "prompt_too_long", "Prompt is too long");
        }
        let scripted = next_script_line();
        let script = scripted.clone().or_else(|| prompt_directives(&prompt));
        self.log_event(json!({"event":"turn","prompt":prompt,"model":self.model,
            "permission_mode":self.permission_mode,"allowed_tools":self.allowed_tools,"session_id":self.session_id,
            "history":previous,"script":script}));
        // claude compacts lazily: at the start of the turn after the context filled up.
        if self.context >= self.compact_threshold() {
            let directive = |name: &str| {
                script.as_deref().and_then(|s| {
                    s.split(';')
                        .map(str::trim)
                        .find_map(|d| d.strip_prefix(name))
                        .map(str::trim)
                })
            };
            if let Some(reason) = directive("compact_fail") {
                self.compaction_failed(reason);
                return self.overflow(
                    started,
                    "blocking_limit",
                    &format!("Prompt is too long · automatic compaction failed: {reason}"),
                );
            }
            let silent = directive("compact_slow")
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0);
            if let Some(end) = self.compaction("auto", silent) {
                return self.finish(end, started, &prompt, None, 0.0);
            }
            if self.drops_prompt {
                // As claude before 2.1.153: the prompt never reaches the model, which
                // answers the summary; what the prompt would have done waits for it.
                if scripted.is_some() {
                    unread_script_line();
                }
                self.log_event(json!({"event":"prompt_dropped","prompt":prompt}));
                return self.finish(TurnEnd::Done, started, SUMMARY, None, 0.001);
            }
        }
        let script = script.unwrap_or_else(|| "echo".to_string());
        let mut reply = None;
        let mut cost = 0.001;
        for step in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (verb, rest) = step.split_once(' ').unwrap_or((step, ""));
            let rest = rest.trim();
            let number = |default: u64| {
                rest.split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(default)
            };
            let end = match verb {
                "echo" => {
                    reply = Some(format!("echo: {prompt}"));
                    None
                }
                "reply" => {
                    reply = Some(rest.replace("\\n", "\n"));
                    None
                }
                "cost" => {
                    cost = rest.parse().unwrap_or(cost);
                    None
                }
                "usage" => {
                    let mut n = rest
                        .split_whitespace()
                        .map(|n| n.parse::<u64>().unwrap_or(0));
                    self.usage = json!({"input_tokens": n.next().unwrap_or(0),
                        "cache_read_input_tokens": n.next().unwrap_or(0),
                        "cache_creation_input_tokens": n.next().unwrap_or(0), "output_tokens": 5});
                    None
                }
                "overflow" => {
                    return self.overflow(started, "prompt_too_long", "Prompt is too long");
                }
                "compact_slow" | "compact_fail" => None,
                "sleep" => self.wait(number(1000)),
                "silent" => self.wait(number(1000)),
                "stream" => {
                    let mut parts = rest.split_whitespace();
                    let chunks: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(5);
                    let delay: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(100);
                    let mut end = None;
                    for i in 0..chunks {
                        self.text(&format!("chunk {i}"));
                        end = self.wait(delay);
                        if end.is_some() {
                            break;
                        }
                    }
                    end
                }
                "crash" => {
                    eprintln!("fake-claude: crashing on purpose");
                    std::process::exit(number(3) as i32);
                }
                "exit" => std::process::exit(0),
                "kill_daemon" => {
                    // What the OOM killer does to the daemon mid-turn; this process
                    // hears of it by its parent-death signal, as the real CLI does.
                    // SAFETY: plain system calls on this process's parent.
                    unsafe {
                        libc::kill(libc::getppid(), libc::SIGKILL);
                    }
                    self.wait(10_000)
                }
                "hang" => loop {
                    std::thread::sleep(Duration::from_secs(3600));
                },
                "api_error" | "retry" => {
                    let mut parts = rest.split_whitespace();
                    let (retries, status) = if verb == "retry" {
                        let n = parts.next().and_then(|n| n.parse().ok()).unwrap_or(1u64);
                        (
                            n,
                            parts.next().and_then(|s| s.parse().ok()).unwrap_or(529u16),
                        )
                    } else {
                        (
                            0,
                            parts.next().and_then(|s| s.parse().ok()).unwrap_or(529u16),
                        )
                    };
                    let failure = ApiFailure::of(status);
                    for attempt in 1..=retries {
                        emit(
                            &json!({"type":"system","subtype":"api_retry","attempt":attempt,
                            "max_retries":retries,"retry_delay_ms":20.5,"error_status":status,
                            "error":failure.retry_error,"session_id":self.session_id,"uuid":uuid()}),
                        );
                        if let Some(end) = self.wait(20) {
                            return self.finish(end, started, &prompt, None, cost);
                        }
                    }
                    if verb == "api_error" {
                        let ApiFailure {
                            kind,
                            text,
                            assistant_error,
                            ..
                        } = failure;
                        emit(
                            &json!({"type":"assistant","message":{"id":uuid(),"model":"<synthetic>",
                            "role":"assistant","stop_reason":"stop_sequence",
                            "content":[{"type":"text","text":text}]},"session_id":self.session_id,
                            "error":assistant_error,"is_api_error_message":true,"api_error_status":status,
                            "api_error_type":kind,"uuid":uuid()}),
                        );
                        // The status stays set even when the CLI's own retries ran out.
                        emit(
                            &json!({"type":"result","subtype":"success","is_error":true,"api_error_status":status,
                            "api_error_type":kind,"duration_ms":started.elapsed().as_millis() as u64,"num_turns":1,
                            "result":text,"session_id":self.session_id,"total_cost_usd":self.spent,"usage":{},
                            "modelUsage":{},"permission_denials":[],"stop_reason":"stop_sequence",
                            "terminal_reason":"api_error","uuid":uuid()}),
                        );
                        return;
                    }
                    None
                }
                "rate_limit" => {
                    let mut parts = rest.split_whitespace();
                    let status = parts.next().unwrap_or("allowed_warning");
                    let utilization: f64 =
                        parts.next().and_then(|u| u.parse().ok()).unwrap_or(0.92);
                    let secs: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(3600);
                    let window = parts.next().unwrap_or("five_hour");
                    self.rate_limit_event(status, utilization, resets_in(secs), window);
                    None
                }
                "usage_limit" => {
                    // The subscription's window is used up: claude 2.1.332 with gateway
                    // auth, its own retries off.
                    let secs = number(2);
                    let resets = resets_in(secs);
                    self.rate_limit_event("rejected", 1.0, resets, "five_hour");
                    let info = json!({"status":"rejected","resetsAt":resets,"rateLimitType":"five_hour",
                        "isUsingOverage":false});
                    let text = "You've hit your 5-hour limit · resets 7:24pm (UTC)";
                    emit(
                        &json!({"type":"assistant","message":{"id":uuid(),"model":"<synthetic>",
                        "role":"assistant","stop_reason":"stop_sequence",
                        "content":[{"type":"text","text":text}]},"parent_tool_use_id":null,
                        "session_id":self.session_id,"error":"rate_limit","is_api_error_message":true,
                        "api_error_status":429,"api_error":"usage_limit_reached",
                        "api_error_params":{"rate_limit_info":info},"api_error_type":"rate_limit_error",
                        "uuid":uuid()}),
                    );
                    emit(
                        &json!({"type":"result","subtype":"success","is_error":true,"num_turns":1,
                        "terminal_reason":"api_error","api_error_status":429,
                        "api_error_type":"rate_limit_error","api_error":"usage_limit_reached",
                        "duration_ms":started.elapsed().as_millis() as u64,"result":text,
                        "stop_reason":"stop_sequence","session_id":self.session_id,
                        "total_cost_usd":self.spent,"usage":{},"modelUsage":{},"permission_denials":[],
                        "uuid":uuid()}),
                    );
                    return;
                }
                "error" => {
                    emit(
                        &json!({"type":"result","subtype":"error_max_turns","is_error":true,
                        "duration_ms":started.elapsed().as_millis() as u64,"num_turns":1,"result":rest,
                        "session_id":self.session_id,"total_cost_usd":self.spent,"usage":{},"modelUsage":{},
                        "permission_denials":[],"terminal_reason":"max_turns","uuid":uuid()}),
                    );
                    return;
                }
                "malformed" => {
                    emit_raw("{this is not json");
                    emit_raw(r#"{"type":"brand_new_type","surprise":true}"#);
                    None
                }
                "flood" => {
                    self.flood(number(1000));
                    None
                }
                "bigline" => {
                    self.text(&"x".repeat(number(1 << 20) as usize));
                    None
                }
                "stderr" => {
                    for i in 0..number(100) {
                        eprintln!("fake-claude: stderr line {i}");
                    }
                    None
                }
                "write" => {
                    let (file, text) = rest
                        .split_once(' ')
                        .unwrap_or((rest, "written by fake-claude\n"));
                    if self.denied("Write") {
                        self.tool(
                            "Write",
                            json!({"file_path": file}),
                            "permission denied",
                            true,
                        );
                        None
                    } else {
                        let ok = std::fs::write(file, format!("{text}\n")).is_ok();
                        self.tool(
                            "Write",
                            json!({"file_path": file, "content": text}),
                            "ok",
                            !ok,
                        );
                        None
                    }
                }
                "commit" => {
                    if self.denied("Bash") {
                        self.tool(
                            "Bash",
                            json!({"command": "git commit"}),
                            "This command requires approval",
                            true,
                        );
                    } else {
                        let command = format!("git add -A && git commit -q -m {rest:?}");
                        if self.bash(&command) {
                            // The real CLI notices commits its Bash tool makes.
                            emit(
                                &json!({"type":"system","subtype":"vcs_state_changed","kind":"commit",
                                "cwd":cwd(),"session_id":self.session_id,"uuid":uuid()}),
                            );
                        }
                    }
                    None
                }
                // Any shell command, through the Bash tool (`sh git checkout -b x`).
                "sh" => {
                    self.bash(rest);
                    None
                }
                "grow" => {
                    // A leak, as long-lived Node processes have had: kept until exit.
                    let mut block = vec![0u8; (number(100) << 20) as usize];
                    for page in block.iter_mut().step_by(4096) {
                        *page = 1;
                    }
                    self.leaked.push(block);
                    None
                }
                "grandchild" => {
                    // A tool that outlives its turn, as a dev server would.
                    if let Ok(child) = std::process::Command::new("sleep").arg("300").spawn() {
                        self.log_event(json!({"event": "grandchild", "grandchild": child.id()}));
                    }
                    None
                }
                "tool" => {
                    self.tool(
                        if rest.is_empty() { "Read" } else { rest },
                        json!({"file_path": "README.md"}),
                        "contents",
                        false,
                    );
                    None
                }
                "ask" => {
                    self.request_seq += 1;
                    let id = format!("fake-{}", self.request_seq);
                    emit(
                        &json!({"type":"control_request","request_id":id,"request":{"subtype":"can_use_tool",
                        "tool_name":rest,"input":{"command":"true"},"tool_use_id":format!("toolu_{id}"),
                        "permission_suggestions":[]}}),
                    );
                    reply = Some(self.await_permission(&id));
                    None
                }
                unknown => {
                    reply = Some(format!("fake-claude does not know {unknown:?}"));
                    None
                }
            };
            if let Some(end) = end {
                return self.finish(end, started, &prompt, None, cost);
            }
        }
        self.finish(TurnEnd::Done, started, &prompt, reply, cost);
    }

    /// Whether the permission mode and `--allowedTools` let a tool run, as the real CLI
    /// decides without a permission prompt tool: plan mode denies changes, acceptEdits
    /// allows edits, Bash needs an allow rule; a denial is listed in the result.
    pub(crate) fn denied(&mut self, tool: &str) -> bool {
        let allowed_by_rule = self
            .allowed_tools
            .iter()
            .any(|rule| rule == tool || rule.starts_with(&format!("{tool}(")));
        let allowed = match self.permission_mode.as_str() {
            "plan" => !matches!(tool, "Write" | "Edit" | "Bash"),
            "bypassPermissions" => true,
            "acceptEdits" => matches!(tool, "Write" | "Edit") || allowed_by_rule,
            _ => allowed_by_rule,
        };
        if !allowed {
            self.denials.push(json!({"tool_name": tool}));
        }
        !allowed
    }

    pub(crate) fn await_permission(&mut self, id: &str) -> String {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            match self.inputs.recv_timeout(Duration::from_millis(100)) {
                Ok(Input::Line(v))
                    if v["type"] == "control_response" && v["response"]["request_id"] == id =>
                {
                    let answer = &v["response"]["response"];
                    let behavior = answer["behavior"].as_str().unwrap_or("none");
                    return match answer["message"].as_str() {
                        Some(message) => format!("permission: {behavior} ({message})"),
                        None => format!("permission: {behavior}"),
                    };
                }
                Ok(Input::Line(v)) if v["type"] == "user" => self.pending.push_back(v),
                Ok(Input::Line(v)) if v["type"] == "control_request" => {
                    self.control(&v, true);
                }
                Ok(Input::Eof) => self.stdin_closed = true,
                _ => {}
            }
        }
        "permission: no answer".to_string()
    }

    pub(crate) fn finish(
        &mut self,
        end: TurnEnd,
        started: Instant,
        prompt: &str,
        reply: Option<String>,
        cost: f64,
    ) {
        match end {
            TurnEnd::Interrupted => self.interrupted(started),
            TurnEnd::Done => {
                let text = reply.unwrap_or_else(|| format!("echo: {prompt}"));
                self.text(&text);
                self.context = [
                    "input_tokens",
                    "cache_read_input_tokens",
                    "cache_creation_input_tokens",
                ]
                .iter()
                .filter_map(|k| self.usage[*k].as_u64())
                .sum();
                self.remember(json!({"context": self.context}));
                self.result(started, &text, cost);
            }
        }
    }
}
