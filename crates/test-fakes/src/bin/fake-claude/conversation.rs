//! The conversation the fake keeps on disk, its context, and compactions.

use super::*;

impl Fake {
    /// What the conversation's file says of it: its prompts, its size, whether full.
    pub(crate) fn load_history(&mut self) {
        let text = std::fs::read_to_string(&self.history).unwrap_or_default();
        for line in text.lines() {
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if let Some(context) = entry["context"].as_u64() {
                self.context = context;
            }
            if entry["full"] == true {
                self.full = true;
            }
            if let Some(spent) = entry["spent"].as_f64() {
                self.spent = spent;
            }
            if entry.get("prompt").is_some() {
                self.prompts += 1;
            }
        }
    }

    pub(crate) fn remember(&mut self, entry: Value) {
        if let Some(prompt) = entry.get("prompt") {
            self.prompts += 1;
            *self.untranscribed.borrow_mut() = prompt.as_str().map(str::to_string);
        }
        append_line(&self.history, &entry);
    }

    /// As claude does once the model answered a prompt: the person's message goes
    /// into the conversation's transcript, where claude keeps it (`$CLAUDE_CONFIG_DIR`,
    /// else `~/.claude`, `/projects/<cwd, every character but ASCII letters and digits
    /// as '-'>/<session id>.jsonl`), in claude's shape. A claude killed before that
    /// leaves no trace of the prompt, and `--resume` does not have it.
    pub(crate) fn transcribe(&self) {
        let Some(prompt) = self.untranscribed.borrow_mut().take() else {
            return;
        };
        let config = match std::env::var_os("CLAUDE_CONFIG_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => match std::env::var_os("HOME") {
                Some(home) => PathBuf::from(home).join(".claude"),
                None => return,
            },
        };
        let cwd = cwd();
        let folder: String = cwd
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let dir = config.join("projects").join(folder);
        let _ = std::fs::create_dir_all(&dir);
        let line = json!({"type":"user","message":{"role":"user","content":prompt},
            "sessionId":self.session_id,"cwd":cwd,"uuid":uuid()});
        append_line(&dir.join(format!("{}.jsonl", self.session_id)), &line);
    }

    /// The earlier prompts of this conversation.
    pub(crate) fn previous_prompts(&self) -> usize {
        self.prompts
    }

    pub(crate) fn window(&self) -> u64 {
        if self.model.contains("-4-") {
            200_000
        } else {
            1_000_000
        }
    }

    pub(crate) fn compact_threshold(&self) -> u64 {
        self.window() - 33_000
    }

    /// The lines of a compaction that worked, after `silent_ms` of silence (an
    /// interrupt meanwhile ends the turn instead).
    pub(crate) fn compaction(&mut self, trigger: &str, silent_ms: u64) -> Option<TurnEnd> {
        self.system(json!({"subtype":"status","status":"compacting","compact_output_chars":0}));
        if silent_ms > 0
            && let Some(end) = self.wait(silent_ms)
        {
            return Some(end);
        }
        self.system(json!({"subtype":"status","status":null,"compact_result":"success"}));
        let post = 2_608;
        let mut metadata = json!({"trigger":trigger,"pre_tokens":self.context,"post_tokens":post,
            "duration_ms":silent_ms.max(40),"cumulative_dropped_tokens":self.context.saturating_sub(post)});
        if !self.drops_prompt {
            // What 2.1.153 and later keep word for word after the summary.
            let (head, anchor) = (uuid(), uuid());
            metadata["preserved_segment"] =
                json!({"head_uuid":head,"anchor_uuid":anchor,"tail_uuid":head});
            metadata["preserved_messages"] =
                json!({"anchor_uuid":anchor,"uuids":[head],"all_uuids":[head]});
        }
        self.system(json!({"subtype":"compact_boundary","compact_metadata":metadata}));
        emit(
            &json!({"type":"user","message":{"role":"user","content":SUMMARY},"parent_tool_use_id":null,
            "session_id":self.session_id,"uuid":uuid(),"isReplay":false,"isSynthetic":true}),
        );
        self.context = post;
        self.remember(json!({"context": post}));
        None
    }

    /// `/compact TEXT`: a compaction asked for, answered without a turn of the model.
    pub(crate) fn manual_compact(&mut self, instructions: &str, started: Instant) {
        self.log_event(
            json!({"event":"compact","instructions":instructions,"session_id":self.session_id}),
        );
        let failure = peek_script_line()
            .filter(|line| line.starts_with("compact_fail"))
            .map(|line| {
                let _ = next_script_line();
                line.trim_start_matches("compact_fail").trim().to_string()
            });
        let text = match failure {
            Some(reason) => {
                let text = format!("Error during compaction: {reason}");
                self.compaction_failed(&text);
                text
            }
            None => {
                let _ = self.compaction("manual", 0);
                emit(
                    &json!({"type":"user","message":{"role":"user","content":"<local-command-stdout>Compacted </local-command-stdout>"},
                    "parent_tool_use_id":null,"session_id":self.session_id,"uuid":uuid(),"isReplay":true}),
                );
                String::new()
            }
        };
        emit(
            &json!({"type":"result","subtype":"success","is_error":false,"num_turns":0,"result":text,
            "local_command":"compact","duration_ms":started.elapsed().as_millis() as u64,
            "session_id":self.session_id,"total_cost_usd":self.spent,"usage":{},"modelUsage":{},
            "permission_denials":[],"uuid":uuid()}),
        );
    }
}
