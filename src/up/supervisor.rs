//! Keeps the stack's children running, as a kubelet keeps a pod's containers: a child that
//! dies is reported with its exit status and started again after a back-off (10 s, doubled up
//! to 5 minutes, back to 10 s once it has run for 10 minutes), while the rest keeps serving.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::child::{self, Exit, Spec, Started};
use crate::error::{Error, StackError};

/// The first back-off, doubled after each death.
const FIRST_BACKOFF: Duration = Duration::from_secs(10);
/// The longest back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A child that ran this long starts over from the first back-off.
const RESET_AFTER: Duration = Duration::from_secs(600);
/// How long children may take to stop after SIGTERM before they are killed (a service's own
/// graceful stop takes up to 10 s).
const STOP_DEADLINE: Duration = Duration::from_secs(15);

/// What happened to a child.
#[derive(Debug)]
pub enum Event {
    /// It exited; it starts again after `restart_in`, unless restarts are off.
    Died {
        /// Its name.
        name: String,
        /// Its exit status, in words.
        status: String,
        /// When it starts again.
        restart_in: Option<Duration>,
    },
    /// It was started again and is ready.
    Restarted {
        /// Its name.
        name: String,
        /// Its new process id.
        pid: u32,
    },
    /// Starting it again failed; it is tried again after `retry_in`.
    RestartFailed {
        /// Its name.
        name: String,
        /// Why.
        error: String,
        /// When it is tried again.
        retry_in: Duration,
    },
}

struct Slot {
    spec: Spec,
    generation: u64,
    pid: Option<u32>,
    started_at: Instant,
    backoff: Duration,
    due: Option<Instant>,
}

/// The children of the stack.
pub struct Supervisor {
    slots: Vec<Slot>,
    restarts: bool,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits: mpsc::UnboundedReceiver<Exit>,
}

impl Supervisor {
    /// No children yet; `restarts` says whether dead ones start again.
    pub fn new(restarts: bool) -> Self {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        Self { slots: Vec::new(), restarts, exits_tx, exits }
    }

    /// Starts `spec` and waits until it is ready.
    ///
    /// # Errors
    /// As [`child::start`].
    pub async fn start(&mut self, mut spec: Spec) -> Result<Started, Error> {
        let index = self.slots.len();
        let started = child::start(&spec, index, 0, self.exits_tx.clone()).await?;
        spec.pin_port(started.addr);
        self.slots.push(Slot {
            spec,
            generation: 0,
            pid: Some(started.pid),
            started_at: Instant::now(),
            backoff: FIRST_BACKOFF,
            due: None,
        });
        Ok(started)
    }

    /// Starts every spec at once and waits until all are ready.
    ///
    /// # Errors
    /// As [`child::start`], for the first that fails (the others that started are kept, to
    /// be stopped with the rest).
    pub async fn start_all(&mut self, specs: Vec<Spec>) -> Result<Vec<Started>, Error> {
        let first = self.slots.len();
        let starting: Vec<_> = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let (spec, exits) = (spec.clone(), self.exits_tx.clone());
                actix_web::rt::spawn(async move { child::start(&spec, first + i, 0, exits).await })
            })
            .collect();
        let mut results = Vec::new();
        for (mut spec, task) in specs.into_iter().zip(starting) {
            let result = task
                .await
                .unwrap_or_else(|source| Err(StackError::Lost { name: spec.name.clone(), source }.into()));
            let pid = result.as_ref().ok().map(|s| s.pid);
            if let Ok(started) = &result {
                spec.pin_port(started.addr);
            }
            self.slots.push(Slot {
                spec,
                generation: 0,
                pid,
                started_at: Instant::now(),
                backoff: FIRST_BACKOFF,
                due: None,
            });
            results.push(result);
        }
        results.into_iter().collect()
    }

    /// The next thing that happens to a child: a death, or a restart that came due.
    pub async fn next(&mut self) -> Event {
        loop {
            let due = self.slots.iter().filter_map(|s| s.due).min();
            tokio::select! {
                Some(exit) = self.exits.recv() => {
                    if let Some(event) = self.died(exit) {
                        return event;
                    }
                }
                () = async { sleep_until(due.unwrap_or_else(Instant::now)).await }, if due.is_some() => {
                    if let Some(event) = self.restart_due().await {
                        return event;
                    }
                }
            }
        }
    }

    fn died(&mut self, exit: Exit) -> Option<Event> {
        let restarts = self.restarts;
        let slot = self.slots.get_mut(exit.index)?;
        if slot.generation != exit.generation {
            return None;
        }
        slot.pid = None;
        if slot.started_at.elapsed() >= RESET_AFTER {
            slot.backoff = FIRST_BACKOFF;
        }
        let restart_in = restarts.then_some(slot.backoff);
        if let Some(wait) = restart_in {
            slot.due = Some(Instant::now() + wait);
            slot.backoff = (slot.backoff * 2).min(MAX_BACKOFF);
        }
        Some(Event::Died { name: slot.spec.name.clone(), status: child::describe(&exit.status), restart_in })
    }

    async fn restart_due(&mut self) -> Option<Event> {
        let now = Instant::now();
        let index = self.slots.iter().position(|s| s.due.is_some_and(|d| d <= now))?;
        let exits = self.exits_tx.clone();
        let slot = &mut self.slots[index];
        slot.due = None;
        slot.generation += 1;
        match child::start(&slot.spec, index, slot.generation, exits).await {
            Ok(started) => {
                slot.pid = Some(started.pid);
                slot.started_at = Instant::now();
                Some(Event::Restarted { name: slot.spec.name.clone(), pid: started.pid })
            }
            Err(err) => {
                let retry_in = slot.backoff;
                slot.due = Some(Instant::now() + retry_in);
                slot.backoff = (slot.backoff * 2).min(MAX_BACKOFF);
                Some(Event::RestartFailed { name: slot.spec.name.clone(), error: err.to_string(), retry_in })
            }
        }
    }

    /// SIGTERM to every child still running, then SIGKILL to those not gone in time; reports
    /// the ones that stopped badly.
    pub async fn stop_all(&mut self) {
        for slot in &mut self.slots {
            slot.due = None;
        }
        signal(self.slots.iter().filter_map(|s| s.pid), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_DEADLINE;
        while self.slots.iter().any(|s| s.pid.is_some()) {
            match timeout_at(deadline, self.exits.recv()).await {
                Ok(Some(exit)) => {
                    if let Some(slot) = self.slots.get_mut(exit.index)
                        && slot.generation == exit.generation
                    {
                        slot.pid = None;
                        if !matches!(&exit.status, Ok(s) if s.success() || s.code().is_none()) {
                            crate::output::error(&format!(
                                "bookinfo: {} stopped ({})",
                                slot.spec.name,
                                child::describe(&exit.status)
                            ));
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    let stuck: Vec<&str> =
                        self.slots.iter().filter(|s| s.pid.is_some()).map(|s| s.spec.name.as_str()).collect();
                    crate::output::error(&format!(
                        "bookinfo: killing {} after {STOP_DEADLINE:?}",
                        stuck.join(", ")
                    ));
                    signal(self.slots.iter().filter_map(|s| s.pid), Signal::SIGKILL);
                    break;
                }
            }
        }
    }
}

fn signal(pids: impl Iterator<Item = u32>, signal: Signal) {
    for pid in pids {
        if let Ok(pid) = i32::try_from(pid) {
            // The child may have exited since; ESRCH is fine.
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}
