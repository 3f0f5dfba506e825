//! `leash land`: the night's branches onto the target, through the merge queue
//! ([`crate::land`]). This file reads the flags and prints; the orders to the workers'
//! daemons are in [`orders`].

mod orders;

use clap::Args;

use crate::cli::common::{block_on, settings};
use crate::cli::{Global, Output, say_done};
use crate::error::{Error, ErrorKind};
use crate::land::candidates::{Wanted, gather};
use crate::land::{Landing, Outcome, recover, run::Plan};
use crate::paths::{Dirs, WorkerName};

pub const EXAMPLES: &str = "Examples:
  leash land --all                 land every worktree worker whose task is done
  leash land w1 w3 --onto release  land two workers, in this order, onto release
  leash land --all --json | jq -c 'select(.type == \"landing\")'";

#[derive(Debug, Clone, Args)]
pub struct LandArgs {
    /// The workers to land, in this order
    #[arg(value_name = "WORKER", conflicts_with = "all")]
    pub workers: Vec<String>,
    /// Land every worktree worker of this repository whose task is done, oldest first
    #[arg(long)]
    pub all: bool,
    /// The branch to land on [default: the branch the repository's main work tree has
    /// checked out]
    #[arg(long, value_name = "BRANCH")]
    pub onto: Option<String>,
    /// How many stacks are checked at once [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    /// Exit with code 14 instead of waiting when another `leash land` runs here
    #[arg(long)]
    pub no_wait: bool,
}

pub fn run(args: LandArgs, _global: &Global, out: &Output) -> Result<u8, Error> {
    let wanted = match (args.all, args.workers.is_empty()) {
        (true, _) => Wanted::All,
        (false, true) => {
            return Err(Error::usage("no worker to land was named")
                .hint("name the workers (`leash land w1 w2`), or land them all with --all"));
        }
        (false, false) => Wanted::Named(
            args.workers
                .iter()
                .map(|name| WorkerName::parse(name))
                .collect::<Result<_, _>>()?,
        ),
    };
    let cwd = crate::cli::common::current_dir()?;
    let place = crate::land::place(&cwd, args.onto.as_deref())?;
    let settings = settings(&[])?;
    let parallel = args.parallel.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |n| n as usize,
    );
    let _lock = crate::land::lock::take(&place.root, args.no_wait, |waiting| out.say(waiting))?;
    let dirs = Dirs::from_env()?;
    let orders = orders::DaemonOrders::new(settings.clone());
    let tokio_local = tokio::task::LocalSet::new();
    let landings = block_on(tokio_local.run_until(async {
        for note in recover(&place.root, &dirs, &orders).await {
            out.note(note);
        }
        let (candidates, skipped) = gather(&dirs, &place.root, &place.target, &wanted).await;
        let mut landings: Vec<Landing> = skipped
            .into_iter()
            .map(|skip| Landing {
                worker: skip.worker,
                branch: skip.branch,
                target: place.target.clone(),
                outcome: Outcome::Skipped,
                reason: Some(skip.reason),
                commits: 0,
                target_tip: None,
                counts: skip.named,
            })
            .collect();
        for landing in &landings {
            show(out, landing);
        }
        if candidates.is_empty() {
            return Ok((landings, false));
        }
        let plan = Plan {
            root: place.root.clone(),
            target: place.target.clone(),
            parallel,
            check_timeout: settings.1.check_timeout,
            candidates,
        };
        let result = crate::land::run::land(&plan, &orders, |landing| {
            show(out, &landing);
            landings.push(landing);
        })
        .await;
        crate::land::stack::clear(&place.root);
        result.map(|interrupted| (landings, interrupted))
    }))?;
    let (landings, interrupted) = landings;
    if interrupted {
        return Err(Error::new(
            ErrorKind::Interrupted,
            crate::land::run::INTERRUPTED.to_string(),
        )
        .hint("what landed stays landed; the rest is as it was: run `leash land` again"));
    }
    finish(&landings, &place.target, out)
}

/// One line per candidate as it ends: a `landing` JSON line, or a sentence.
fn show(out: &Output, landing: &Landing) {
    if out.json {
        out.json(landing);
        return;
    }
    let branch = landing.branch.as_deref().unwrap_or("no branch");
    let line = match (landing.outcome, &landing.reason, &landing.target_tip) {
        (Outcome::Landed, _, Some(tip)) => format!(
            "landed {} ({branch}): {} commit(s), {} at {}",
            landing.worker,
            landing.commits,
            landing.target,
            crate::git::short_id(tip)
        ),
        (outcome, reason, _) => format!(
            "{} {} ({branch}): {}",
            match outcome {
                Outcome::Skipped => "skipped",
                _ => "not landed",
            },
            landing.worker,
            crate::human::one_line(reason.as_deref().unwrap_or(""), 300)
        ),
    };
    match landing.counts || landing.outcome == Outcome::Landed {
        true => out.say(line),
        false => out.note(line),
    }
}

/// The exit: 0 when every candidate landed (or there was none), 16 naming those that
/// did not.
fn finish(landings: &[Landing], target: &str, out: &Output) -> Result<u8, Error> {
    let landed = landings
        .iter()
        .filter(|l| l.outcome == Outcome::Landed)
        .count();
    let failed: Vec<&Landing> = landings.iter().filter(|l| l.counts).collect();
    if failed.is_empty() {
        let message = match landed {
            0 => format!("nothing to land on {target}"),
            n => format!("landed {n} worker(s) on {target}"),
        };
        say_done(out, message);
        return Ok(0);
    }
    let named: Vec<String> = failed
        .iter()
        .map(|l| {
            format!(
                "{} ({})",
                l.worker,
                crate::human::one_line(l.reason.as_deref().unwrap_or(""), 120)
            )
        })
        .collect();
    Err(Error::new(
        ErrorKind::NotLanded,
        format!(
            "{} of {} not landed on {target}: {}",
            failed.len(),
            landings.len(),
            named.join("; ")
        ),
    )
    .hint("each branch and worktree is as it was; see `leash status --worker NAME`, then run `leash land` again"))
}
