# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_leash_global_optspecs
    string join \n worker= json q/quiet v/verbose h/help V/version
end

function __fish_leash_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_leash_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_leash_using_subcommand
    set -l cmd (__fish_leash_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c leash -n "__fish_leash_needs_command" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_needs_command" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_needs_command" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_needs_command" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c leash -n "__fish_leash_needs_command" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_needs_command" -f -a "session" -d 'The worker\'s session: its daemon, its claude process, its conversation'
complete -c leash -n "__fish_leash_needs_command" -f -a "plan" -d 'Plan a task: a read-only turn on the planning model; the plan is saved'
complete -c leash -n "__fish_leash_needs_command" -f -a "implement" -d 'Implement the plan: a turn on the implementation model, done when a new commit lands'
complete -c leash -n "__fish_leash_needs_command" -f -a "nudge" -d 'Nudge the worker in the same conversation when its work stalls'
complete -c leash -n "__fish_leash_needs_command" -f -a "loop" -d 'Run the whole worker: plan, implement, nudge until committed, blocked or out of nudges'
complete -c leash -n "__fish_leash_needs_command" -f -a "status" -d 'Show the worker: phase, task, plan, nudges used, last outcome, HEAD at start'
complete -c leash -n "__fish_leash_needs_command" -f -a "land" -d 'Land the workers\' branches on the target: a merge queue that hands conflicts back'
complete -c leash -n "__fish_leash_needs_command" -f -a "report" -d 'What each worker did with its tasks: a table, JSON, Markdown, or a picture'
complete -c leash -n "__fish_leash_needs_command" -f -a "hooks" -d 'Git hooks that nudge the worker (after commits, on failing checks)'
complete -c leash -n "__fish_leash_needs_command" -f -a "doctor" -d 'Check claude, directories, sockets, workers, the repository and the environment'
complete -c leash -n "__fish_leash_needs_command" -f -a "config" -d 'Show the effective settings and where each comes from'
complete -c leash -n "__fish_leash_needs_command" -f -a "completions" -d 'Print shell completions (bash, zsh, fish)'
complete -c leash -n "__fish_leash_needs_command" -f -a "daemon" -d 'Run a worker\'s session daemon in the foreground (`session start` does this)'
complete -c leash -n "__fish_leash_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "start" -d 'Start the worker\'s daemon and claude; resumes the worker\'s conversation if it has one'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "stop" -d 'Stop the worker\'s daemon and claude; the conversation is kept for the next start'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "status" -d 'Show the worker\'s session: pids, session id, model, state, turns, cost, uptime'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "list" -d 'List every worker of this user, one row each'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "send" -d 'Send one turn in the worker\'s conversation and stream the reply'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "interrupt" -d 'Interrupt the running turn (a no-op when none is running)'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "compact" -d 'Compact the conversation now: claude summarises it, keeping what you name'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "model" -d 'Switch model for the next turns, keeping the conversation'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "context" -d 'How full the conversation is, in claude\'s own count (claude starts if it does not run)'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "restart" -d 'Start a new claude process on the same conversation, after the running turn'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "rm" -d 'Stop and forget a worker; its worktree goes when clean, its branch when merged'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "fork" -d 'A new worker whose conversation, task and plan are a copy of this worker\'s'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "logs" -d 'Show the session\'s event log: what claude said and did'
complete -c leash -n "__fish_leash_using_subcommand session; and not __fish_seen_subcommand_from start stop status list send interrupt compact model context restart rm fork logs help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -l cwd -d 'Directory claude works in [default: the repository root, else the current directory]' -r -F
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -l model -d 'Model for the session, an alias such as `sonnet` or `opus` or a full name [default: sonnet]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -l system-prompt-file -d 'Replace claude\'s system prompt with this file\'s contents' -r -F
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -l permission-mode -d 'claude\'s permission mode (default, acceptEdits, plan, bypassPermissions)' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -l claude -d 'The claude executable, a path or a name on PATH [default: claude]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -l allow-tool -d 'Approve this tool when no one is attached to ask (repeat for more) [default: none]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -l fresh -d 'Start a new conversation instead of resuming the worker\'s'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -l interactive-permissions -d 'Ask the person at the terminal before claude uses a tool (Allow once / always / Deny)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -l worktree -d 'Work in the worker\'s own git worktree, `.leash/worktrees/NAME` on branch `leash/NAME` (created from HEAD, or `worktree_base`, when missing); needs --worker'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -l reuse-branch -d 'With --worktree: continue on a branch `leash/NAME` an earlier worker of that name left, instead of refusing to (a new worker starts from HEAD or `worktree_base`)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from start" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from stop" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from stop" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from stop" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from stop" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from stop" -l all -d 'Stop every running worker of this user'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from stop" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from stop" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from status" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from status" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from status" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from list" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from list" -l watch -d 'Redraw the list in place as the workers\' events arrive (`q` or Ctrl-C quits)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from send" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from send" -l retries -d 'Re-send the turn this many times after provider errors (429/529/5xx) [default: 3]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from send" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from send" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from send" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from send" -l worktree -d 'Work in the worker\'s own git worktree, `.leash/worktrees/NAME` on branch `leash/NAME` (created from HEAD, or `worktree_base`, when missing); needs --worker'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from send" -l reuse-branch -d 'With --worktree: continue on a branch `leash/NAME` an earlier worker of that name left, instead of refusing to (a new worker starts from HEAD or `worktree_base`)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from send" -l no-start -d 'Fail with exit code 3 instead of starting a session when none is running'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from send" -l continue-on-crash -d 'When claude, or the session daemon, dies during the turn, restart it and tell claude to continue (the prompt is not sent twice)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from send" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from send" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from interrupt" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from interrupt" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from interrupt" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from interrupt" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from interrupt" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from interrupt" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from compact" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from compact" -l instructions -d 'What the summary must keep (claude\'s `/compact` instructions)' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from compact" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from compact" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from compact" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from compact" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from compact" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from model" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from model" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from model" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from model" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from model" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from model" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from context" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from context" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from context" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from context" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from context" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from context" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from restart" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from restart" -l wait -d 'How long to wait for a running turn to end first (the restart stays queued after that)' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from restart" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from restart" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from restart" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from restart" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from restart" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from rm" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from rm" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from rm" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from rm" -l force -d 'Remove its worktree even when it holds work git could not give back, or is locked'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from fork" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from fork" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from fork" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from fork" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from fork" -l worktree -d 'Give the new worker its own worktree, `.leash/worktrees/NEW` on branch `leash/NEW`, from the original\'s HEAD (or `worktree_base`)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from fork" -l reuse-branch -d 'With --worktree: continue on a branch `leash/NEW` an earlier worker of that name left, instead of refusing to'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from fork" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from fork" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from logs" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from logs" -s n -l lines -d 'How many of the latest events to show first (0 = all)' -r
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from logs" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from logs" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from logs" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from logs" -s f -l follow -d 'Keep printing new events as they happen, like `tail -f`'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from logs" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from logs" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "start" -d 'Start the worker\'s daemon and claude; resumes the worker\'s conversation if it has one'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "stop" -d 'Stop the worker\'s daemon and claude; the conversation is kept for the next start'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show the worker\'s session: pids, session id, model, state, turns, cost, uptime'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "list" -d 'List every worker of this user, one row each'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "send" -d 'Send one turn in the worker\'s conversation and stream the reply'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "interrupt" -d 'Interrupt the running turn (a no-op when none is running)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "compact" -d 'Compact the conversation now: claude summarises it, keeping what you name'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "model" -d 'Switch model for the next turns, keeping the conversation'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "context" -d 'How full the conversation is, in claude\'s own count (claude starts if it does not run)'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "restart" -d 'Start a new claude process on the same conversation, after the running turn'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Stop and forget a worker; its worktree goes when clean, its branch when merged'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "fork" -d 'A new worker whose conversation, task and plan are a copy of this worker\'s'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "logs" -d 'Show the session\'s event log: what claude said and did'
complete -c leash -n "__fish_leash_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c leash -n "__fish_leash_using_subcommand plan" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand plan" -l task -d 'The task, verbatim' -r
complete -c leash -n "__fish_leash_using_subcommand plan" -l task-file -d 'Read the task from this file' -r -F
complete -c leash -n "__fish_leash_using_subcommand plan" -l model -d 'Model for the planning turn [default: opus]' -r
complete -c leash -n "__fish_leash_using_subcommand plan" -l budget -d 'Send no further turn once the task\'s turns cost this many US dollars; exit code 13 [default: none]' -r
complete -c leash -n "__fish_leash_using_subcommand plan" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand plan" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand plan" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand plan" -l worktree -d 'Work in the worker\'s own git worktree, `.leash/worktrees/NAME` on branch `leash/NAME` (created from HEAD, or `worktree_base`, when missing); needs --worker'
complete -c leash -n "__fish_leash_using_subcommand plan" -l reuse-branch -d 'With --worktree: continue on a branch `leash/NAME` an earlier worker of that name left, instead of refusing to (a new worker starts from HEAD or `worktree_base`)'
complete -c leash -n "__fish_leash_using_subcommand plan" -l fresh -d 'Replace the task under way with this one (otherwise a plan waits its turn: refused with exit code 14 while another task is under way)'
complete -c leash -n "__fish_leash_using_subcommand plan" -l no-start -d 'Fail with exit code 3 instead of starting a session when none is running'
complete -c leash -n "__fish_leash_using_subcommand plan" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand plan" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand implement" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand implement" -l model -d 'Model for implementing [default: sonnet]' -r
complete -c leash -n "__fish_leash_using_subcommand implement" -l budget -d 'Send no further turn once the task\'s turns cost this many US dollars; exit code 13 [default: none]' -r
complete -c leash -n "__fish_leash_using_subcommand implement" -l check -d 'A check the commit must pass, run with `sh -c` at the repository root (repeatable); the checks given replace those of .leash.toml for this task [default: none]' -r
complete -c leash -n "__fish_leash_using_subcommand implement" -l rescopes -d 'Plan the task again when its nudges run out, up to N times [default: 0]' -r
complete -c leash -n "__fish_leash_using_subcommand implement" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand implement" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand implement" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand implement" -l worktree -d 'Work in the worker\'s own git worktree, `.leash/worktrees/NAME` on branch `leash/NAME` (created from HEAD, or `worktree_base`, when missing); needs --worker'
complete -c leash -n "__fish_leash_using_subcommand implement" -l reuse-branch -d 'With --worktree: continue on a branch `leash/NAME` an earlier worker of that name left, instead of refusing to (a new worker starts from HEAD or `worktree_base`)'
complete -c leash -n "__fish_leash_using_subcommand implement" -l restart -d 'Start the implement phase over even if it is under way'
complete -c leash -n "__fish_leash_using_subcommand implement" -l no-start -d 'Fail with exit code 3 instead of starting a session when none is running'
complete -c leash -n "__fish_leash_using_subcommand implement" -l review -d 'Have the plan model review committed work that passed its checks [default: false]'
complete -c leash -n "__fish_leash_using_subcommand implement" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand implement" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand nudge" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand nudge" -l reason -d 'Why the worker is nudged, told to it verbatim' -r
complete -c leash -n "__fish_leash_using_subcommand nudge" -l event -d 'The git hook that fires this nudge (post-commit, pre-commit, ...)' -r
complete -c leash -n "__fish_leash_using_subcommand nudge" -l budget -d 'Send no further turn once the task\'s turns cost this many US dollars; exit code 13 [default: none]' -r
complete -c leash -n "__fish_leash_using_subcommand nudge" -l check -d 'A check the commit must pass, run with `sh -c` at the repository root (repeatable); the checks given replace those of .leash.toml for this task [default: none]' -r
complete -c leash -n "__fish_leash_using_subcommand nudge" -l rescopes -d 'Plan the task again when its nudges run out, up to N times [default: 0]' -r
complete -c leash -n "__fish_leash_using_subcommand nudge" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand nudge" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand nudge" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand nudge" -l no-wait -d 'Queue the nudge and return at once; does nothing when no session runs'
complete -c leash -n "__fish_leash_using_subcommand nudge" -l no-start -d 'Fail with exit code 3 instead of starting a session when none is running'
complete -c leash -n "__fish_leash_using_subcommand nudge" -l review -d 'Have the plan model review committed work that passed its checks [default: false]'
complete -c leash -n "__fish_leash_using_subcommand nudge" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand nudge" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand loop" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand loop" -l task -d 'The task, verbatim' -r
complete -c leash -n "__fish_leash_using_subcommand loop" -l task-file -d 'Read the task from this file' -r -F
complete -c leash -n "__fish_leash_using_subcommand loop" -l max-nudges -d 'Nudges per implement phase before giving up with exit code 10 [default: 5]' -r
complete -c leash -n "__fish_leash_using_subcommand loop" -l attempts -d 'Best of N (2 to 8): plan once, fork the plan into workers NAME-1 … NAME-N, each in its own worktree, implement them side by side, have the plan model judge the green ones, and keep the winner as NAME (implies --worktree)' -r
complete -c leash -n "__fish_leash_using_subcommand loop" -l parallel -d 'With --attempts: at most N attempts at a time [default: all of them]' -r
complete -c leash -n "__fish_leash_using_subcommand loop" -l plan-model -d 'Model for planning [default: opus]' -r
complete -c leash -n "__fish_leash_using_subcommand loop" -l implement-model -d 'Model for implementing and nudging [default: sonnet]' -r
complete -c leash -n "__fish_leash_using_subcommand loop" -l budget -d 'Send no further turn once the task\'s turns cost this many US dollars; exit code 13 [default: none]' -r
complete -c leash -n "__fish_leash_using_subcommand loop" -l check -d 'A check the commit must pass, run with `sh -c` at the repository root (repeatable); the checks given replace those of .leash.toml for this task [default: none]' -r
complete -c leash -n "__fish_leash_using_subcommand loop" -l rescopes -d 'Plan the task again when its nudges run out, up to N times [default: 0]' -r
complete -c leash -n "__fish_leash_using_subcommand loop" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand loop" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand loop" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand loop" -l worktree -d 'Work in the worker\'s own git worktree, `.leash/worktrees/NAME` on branch `leash/NAME` (created from HEAD, or `worktree_base`, when missing); needs --worker'
complete -c leash -n "__fish_leash_using_subcommand loop" -l reuse-branch -d 'With --worktree: continue on a branch `leash/NAME` an earlier worker of that name left, instead of refusing to (a new worker starts from HEAD or `worktree_base`)'
complete -c leash -n "__fish_leash_using_subcommand loop" -l step -d 'Ask before each phase (needs a terminal)'
complete -c leash -n "__fish_leash_using_subcommand loop" -l keep-attempts -d 'With --attempts: keep the losing attempts as workers NAME-k (their tips are kept under refs/leash/attempts/ either way)'
complete -c leash -n "__fish_leash_using_subcommand loop" -l fresh -d 'Start the task over even if the worker already finished or gave up on it'
complete -c leash -n "__fish_leash_using_subcommand loop" -l review -d 'Have the plan model review committed work that passed its checks [default: false]'
complete -c leash -n "__fish_leash_using_subcommand loop" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand loop" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand status" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand status" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand status" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand status" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand status" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand status" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand land" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand land" -l onto -d 'The branch to land on [default: the branch the repository\'s main work tree has checked out]' -r
complete -c leash -n "__fish_leash_using_subcommand land" -l parallel -d 'How many stacks are checked at once [default: the number of cores]' -r
complete -c leash -n "__fish_leash_using_subcommand land" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand land" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand land" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand land" -l all -d 'Land every worktree worker of this repository whose task is done, oldest first'
complete -c leash -n "__fish_leash_using_subcommand land" -l no-wait -d 'Exit with code 14 instead of waiting when another `leash land` runs here'
complete -c leash -n "__fish_leash_using_subcommand land" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand land" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand report" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand report" -l since -d 'Only tasks active since then: a time back from now (`12h`, `3d`) or a UTC date (`2026-12-02`, `2026-12-02T18:00`)' -r
complete -c leash -n "__fish_leash_using_subcommand report" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand report" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand report" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand report" -l all -d 'Every worker of yours, not only this repository\'s'
complete -c leash -n "__fish_leash_using_subcommand report" -l markdown -d 'As a Markdown table, for a pull request or a chat'
complete -c leash -n "__fish_leash_using_subcommand report" -l svg -d 'As a picture: the workers\' tasks along a time axis (SVG)'
complete -c leash -n "__fish_leash_using_subcommand report" -l html -d 'As a self-contained HTML page: the picture and the table'
complete -c leash -n "__fish_leash_using_subcommand report" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand report" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -f -a "install" -d 'Install hooks in this repository that run `leash nudge --event <hook> --no-wait`'
complete -c leash -n "__fish_leash_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -f -a "uninstall" -d 'Remove the hooks leash installed, restoring any hook that was there before'
complete -c leash -n "__fish_leash_using_subcommand hooks; and not __fish_seen_subcommand_from install uninstall help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from install" -l hook -d 'Which hooks [default: post-commit; also post-merge, post-rewrite, post-checkout, pre-commit, pre-push, commit-msg]' -r
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from install" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from install" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from install" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from uninstall" -l hook -d 'Which hooks [default: post-commit; also post-merge, post-rewrite, post-checkout, pre-commit, pre-push, commit-msg]' -r
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from uninstall" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from uninstall" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from uninstall" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from uninstall" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from uninstall" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from uninstall" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "install" -d 'Install hooks in this repository that run `leash nudge --event <hook> --no-wait`'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "uninstall" -d 'Remove the hooks leash installed, restoring any hook that was there before'
complete -c leash -n "__fish_leash_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c leash -n "__fish_leash_using_subcommand doctor" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand doctor" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand doctor" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand doctor" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand config" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand config" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand config" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand config" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand config" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand config" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand completions" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand completions" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand completions" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand completions" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand completions" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand completions" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand daemon" -l worker -d 'The worker to act on [default: one per repository, derived from where you run]' -r
complete -c leash -n "__fish_leash_using_subcommand daemon" -l json -d 'Machine-readable output: one JSON object per line, the last line is the outcome'
complete -c leash -n "__fish_leash_using_subcommand daemon" -s q -l quiet -d 'Print only what was asked for (no notices, no progress)'
complete -c leash -n "__fish_leash_using_subcommand daemon" -s v -l verbose -d 'Print more: daemon notices, claude\'s stderr (repeat for more)'
complete -c leash -n "__fish_leash_using_subcommand daemon" -s h -l help -d 'Print help'
complete -c leash -n "__fish_leash_using_subcommand daemon" -s V -l version -d 'Print version'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "session" -d 'The worker\'s session: its daemon, its claude process, its conversation'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "plan" -d 'Plan a task: a read-only turn on the planning model; the plan is saved'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "implement" -d 'Implement the plan: a turn on the implementation model, done when a new commit lands'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "nudge" -d 'Nudge the worker in the same conversation when its work stalls'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "loop" -d 'Run the whole worker: plan, implement, nudge until committed, blocked or out of nudges'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "status" -d 'Show the worker: phase, task, plan, nudges used, last outcome, HEAD at start'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "land" -d 'Land the workers\' branches on the target: a merge queue that hands conflicts back'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "report" -d 'What each worker did with its tasks: a table, JSON, Markdown, or a picture'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "hooks" -d 'Git hooks that nudge the worker (after commits, on failing checks)'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "doctor" -d 'Check claude, directories, sockets, workers, the repository and the environment'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "config" -d 'Show the effective settings and where each comes from'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "completions" -d 'Print shell completions (bash, zsh, fish)'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "daemon" -d 'Run a worker\'s session daemon in the foreground (`session start` does this)'
complete -c leash -n "__fish_leash_using_subcommand help; and not __fish_seen_subcommand_from session plan implement nudge loop status land report hooks doctor config completions daemon help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c leash -n "__fish_leash_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "install" -d 'Install hooks in this repository that run `leash nudge --event <hook> --no-wait`'
complete -c leash -n "__fish_leash_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "uninstall" -d 'Remove the hooks leash installed, restoring any hook that was there before'
