//! `leash land`: the night's branches onto the target, as a merge queue does it.
//! Candidates ([`candidates`]) in order go through the pure [`queue`]; its actions are
//! carried out ([`run`]) in temporary worktrees ([`stack`]), with the landing checks run
//! by the shared runner, the target moved compare-and-swap ([`target`]), the workers
//! told through their daemons ([`worker`]), one `land` per repository at a time
//! ([`lock`]) and a journal that lets a killed `land` finish its work ([`journal`]).

pub mod queue;
