//! Land's orders to the workers' daemons: each a `land` worker step, sent to the
//! worker's daemon (started on demand, as `implement` does) and followed silently to
//! its judgement (a landing turn's words are not interleaved into land's output); a
//! daemon that dies on the way is started again and asked again, up to `max_crashes`.

use std::rc::Rc;

use crate::cli::common::{Autostart, connect_or_start, resolve_claude};
use crate::cli::stream::daemon_died;
use crate::client::Target;
use crate::error::Error;
use crate::land::run::{Orders, Sent};
use crate::protocol::{Event, EventBody, Request, ServerLine, WorkerRequest};
use crate::settings::{Resolved, Settings};
use crate::worker::land::LandOrder;
use crate::worker::{Judgement, WorkerStep};

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
        Box::pin(async move { send(&target, order, &settings).await })
    }
}

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
    let mut deaths = 0;
    loop {
        let mut conn = connect_or_start(target, Some(autostart.clone())).await?;
        conn.send(&request).await?;
        while let Some((_, line)) = conn.next().await? {
            match line {
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
