//! Land's orders to the workers' daemons: each a `land` worker step, sent to the
//! worker's daemon (started on demand, as `implement` does) and followed silently to
//! its judgement (a landing turn's words are not interleaved into land's output); a
//! daemon that dies on the way is started again and asked again, up to `max_crashes`.
//! A step the daemon already runs (a hand-back a killed `land` began) is waited for
//! first. Ctrl-C interrupts a hand-back, as it does `implement`, and gives it up: the
//! branch and worktree back as they were.

use std::rc::Rc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::cli::common::{Autostart, connect_or_start, resolve_claude};
use crate::cli::stream::daemon_died;
use crate::client::Target;
use crate::error::{Error, ErrorKind};
use crate::land::run::{Orders, Sent};
use crate::protocol::{Event, EventBody, Reply, Request, ServerLine, WorkerRequest};
use crate::settings::{Resolved, Settings};
use crate::worker::land::LandOrder;
use crate::worker::{Judgement, Verdict, WorkerStep};

pub struct DaemonOrders {
    settings: Rc<(Resolved, Settings)>,
}

impl DaemonOrders {
    pub fn new(settings: (Resolved, Settings)) -> DaemonOrders {
        DaemonOrders {
            settings: Rc::new(settings),
        }
    }
}

impl Orders for DaemonOrders {
    fn send(&self, target: &Target, order: LandOrder) -> Sent {
        let settings = Rc::clone(&self.settings);
        let target = target.clone();
        Box::pin(async move {
            let hand_back = matches!(order, LandOrder::Resolve { .. });
            let judgement = send(&target, order, &settings).await?;
            if hand_back && judgement.verdict == Verdict::Interrupted {
                let restored = send(&target, LandOrder::Restore, &settings).await?;
                return Err(Error::new(
                    ErrorKind::Interrupted,
                    format!("interrupted (Ctrl-C); {}", restored.message),
                ));
            }
            Ok(judgement)
        })
    }
}

/// How often a step the daemon runs already is looked at, until it ends.
const STILL_RUNNING: Duration = Duration::from_millis(100);

async fn send(
    target: &Target,
    order: LandOrder,
    (resolved, settings): &(Resolved, Settings),
) -> Result<Judgement, Error> {
    let mut config = settings.worker_config();
    config.gates.branch = target.worktree.as_ref().map(|w| w.branch.clone());
    let autostart = Autostart {
        resolved,
        settings,
        allowed_tools: config.turns.allowed_tools.clone(),
    };
    let request = Request::Worker(WorkerRequest {
        step: WorkerStep::Land { order },
        config,
        wait: true,
        interactive: false,
        claude: Some(resolve_claude(&settings.claude)?),
        task_id: None,
    });
    let mut ctrl_c =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("cannot watch for Ctrl-C", e))?;
    let mut interrupted = false;
    let mut deaths = 0;
    loop {
        while let Ok(Some(conn)) = target.open().await
            && conn
                .status()
                .await
                .is_ok_and(|s| s.current_turn.is_some() || s.queued > 0)
        {
            tokio::time::sleep(STILL_RUNNING).await;
        }
        let mut conn = connect_or_start(target, Some(autostart.clone())).await?;
        conn.send(&request).await?;
        let mut turn = None;
        loop {
            let line = tokio::select! {
                line = conn.next() => line?,
                _ = ctrl_c.recv(), if !interrupted => {
                    interrupted = true;
                    conn.send(&Request::Interrupt { turn }).await?;
                    continue;
                }
            };
            let Some((_, line)) = line else { break };
            match line {
                ServerLine::Reply(Reply::Queued { turn: queued, .. }) => turn = Some(queued),
                ServerLine::Reply(reply) => {
                    reply.into_error()?;
                }
                ServerLine::Event(Event {
                    body: EventBody::Judged { judgement },
                    ..
                }) => return Ok(judgement),
                ServerLine::Event(_) => {}
            }
        }
        // The daemon went away during the step: a new one goes on with it.
        deaths += 1;
        if deaths > settings.max_crashes {
            return Err(daemon_died());
        }
    }
}
