//! The actor: the one task that owns the claude session. It takes the queued work in
//! order (turns, worker steps, starts, model switches) and, between them, waits for
//! commands or claude's stray output. Everything else is the [`Hub`]'s.

use std::time::Duration;

use tokio::sync::oneshot;

use super::hub::Hub;
use super::queue::Job;
use crate::claude::session::{Conversation, Served, Session};
use crate::error::Error;
use crate::human::duration as human;
use crate::protocol::{SessionStatus, StartSpec};

pub struct Actor {
    pub(super) claude: Session,
    pub(super) hub: Hub,
    /// For the message of a turn that went silent.
    pub(super) silence_timeout: Duration,
    /// How often one turn may restart a claude that died or hung to continue it.
    pub(super) restart_limit: u32,
}

impl Actor {
    pub fn new(claude: Session, hub: Hub, silence_timeout: Duration, restart_limit: u32) -> Actor {
        Actor {
            claude,
            hub,
            silence_timeout,
            restart_limit,
        }
    }

    /// Runs until stopped or idle for too long; returns the stop requests to answer
    /// once the socket is gone.
    pub async fn run(mut self, stale_claude: Option<String>) -> Vec<oneshot::Sender<()>> {
        self.hub
            .info(format!("daemon started (pid {})", std::process::id()));
        if let Some(what) = stale_claude {
            self.hub
                .warn(format!("killed {what} left running by a daemon that died"));
        }
        while !self.hub.stopping() {
            if let Some(job) = self.hub.next_job() {
                self.run_job(job).await;
                self.hub.touch();
                continue;
            }
            let deadline = self.hub.idle_deadline();
            if self.claude.idle(deadline, &mut self.hub).await == Served::Deadline
                && self.hub.idle_expired()
            {
                let idle = human(self.hub.idle_timeout());
                self.hub.info(format!(
                    "idle for {idle}; stopping (the conversation is kept)"
                ));
                break;
            }
        }
        self.hub.cancel_queued();
        self.claude.stop(&mut self.hub).await;
        self.hub.save_record();
        self.hub.info("daemon stopped".to_string());
        self.hub.flush();
        self.hub.take_stop_replies()
    }

    async fn run_job(&mut self, job: Job) {
        match job {
            Job::Turn { id, spec } => {
                self.run_turn(id, &spec, true).await;
            }
            Job::Step { id, request } => self.run_step(id, request).await,
            Job::Start { spec, reply } => {
                let _ = reply.send(self.start(spec).await);
            }
            Job::Restart { claude, reply } => {
                if let Some(claude) = claude {
                    self.claude.use_binary(claude, &mut self.hub);
                }
                let result = self.claude.restart(&mut self.hub).await;
                let _ = reply.send(result.map(|()| self.hub.status()));
            }
            Job::SetModel { model, reply } => {
                let result =
                    self.claude
                        .set_model(&model, &mut self.hub)
                        .await
                        .map(|()| match self.claude.is_running() {
                            true => {
                                format!("model set to {model}; claude confirms it on the next turn")
                            }
                            false => format!("model set to {model}; used from the next turn"),
                        });
                let _ = reply.send(result);
            }
        }
    }

    /// Sets the session up as the client asked (a new conversation, or changes to the
    /// worker's while claude is not running), and with `warm` starts claude. `session
    /// start` is also the explicit "try again" after leash gave up on claude.
    async fn start(&mut self, spec: StartSpec) -> Result<SessionStatus, Error> {
        if let Some(claude) = &spec.change.claude
            && self.claude.conversation().is_some()
        {
            self.claude.use_binary(claude.clone(), &mut self.hub);
        }
        if !self.claude.is_running() || spec.fresh {
            let (conversation, new) =
                conversation_for(&spec, self.hub.conversation(), self.hub.worker_name())?;
            if new {
                self.hub.reset_tallies();
                self.hub
                    .set_permission_allow(spec.new.permission_allow.clone());
                if let Some(state) = spec.new.worker.clone() {
                    self.hub.begin_worker_as(*state);
                }
            }
            if let Some(allow) = &spec.change.permission_allow {
                self.hub.set_permission_allow(allow.clone());
            }
            if self.claude.is_running() {
                // A fresh start of a running session: the old claude goes first.
                self.claude.stop(&mut self.hub).await;
            }
            self.claude
                .replace_conversation(conversation, &mut self.hub);
        }
        self.claude.retry(&mut self.hub);
        if spec.warm {
            self.claude.ensure_running(&mut self.hub).await?;
        }
        Ok(self.hub.status())
    }
}

/// The conversation a start asks for: the worker's own with the changes asked for, or
/// a new one (true) when there is none or `fresh` was given.
fn conversation_for(
    spec: &StartSpec,
    current: Option<&Conversation>,
    worker: &str,
) -> Result<(Conversation, bool), Error> {
    let change = &spec.change;
    let (mut conversation, new) = match current.filter(|_| !spec.fresh) {
        Some(current) => {
            if let Some(cwd) = &change.cwd
                && *cwd != current.cwd
            {
                return Err(Error::usage(format!(
                    "worker {}'s conversation lives in {}, not in {}",
                    current.worker,
                    current.cwd.display(),
                    cwd.display()
                ))
                .hint("use --fresh to start a new conversation there, or another --worker"));
            }
            (current.clone(), false)
        }
        None => {
            let new = &spec.new;
            let mut conversation = Conversation::new(
                worker,
                change.cwd.clone().unwrap_or_else(|| new.cwd.clone()),
                new.claude.clone(),
                crate::worker::prompts::system_prompt(),
            );
            conversation.model = Some(new.model.clone());
            conversation.allowed_tools = new.allowed_tools.clone();
            conversation.fork_of = new.fork_of.clone();
            (conversation, true)
        }
    };
    if let Some(claude) = &change.claude {
        conversation.claude = claude.clone();
    }
    if let Some(model) = &change.model {
        conversation.model = Some(model.clone());
    }
    if let Some(file) = &change.system_prompt_file {
        conversation.system_prompt_file = Some(file.clone());
    }
    if let Some(mode) = &change.permission_mode {
        conversation.permission_mode = Some(mode.clone());
    }
    if !change.claude_args.is_empty() {
        conversation.extra_args = change.claude_args.clone();
    }
    if change.interactive_permissions {
        conversation.interactive_permissions = true;
    }
    Ok((conversation, new))
}
