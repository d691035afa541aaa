//! Keeps the stack's children running, as a kubelet keeps a pod's containers: a child that
//! dies is reported with its exit status and started again after a back-off (10 s, doubled up
//! to 5 minutes, back to 10 s once it has run for 10 minutes), while the rest keeps serving.
//!
//! The back-off reads the time from a [`Clock`], so that its rules can be shown without
//! waiting minutes; the timers that wake the supervisor are the runtime's.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::child::{self, Exit, Spec, Started, Stops};
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

/// Where the supervisor reads the time.
pub trait Clock {
    /// The time now.
    fn now(&self) -> Instant;
}

/// The runtime's clock, the one its timers follow.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuntimeClock;

impl Clock for RuntimeClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A kubelet's restart back-off: 10 s before the first restart, doubled for each one after,
/// 5 minutes at most; back to 10 s for a child that had run for 10 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const fn new() -> Self {
        Self { next: FIRST_BACKOFF }
    }

    /// The wait before restarting a child that died after running for `ran`.
    fn after_death(&mut self, ran: Duration) -> Duration {
        if ran >= RESET_AFTER {
            self.next = FIRST_BACKOFF;
        }
        self.take()
    }

    /// The wait before the next try, doubling the one after it.
    fn take(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(MAX_BACKOFF);
        wait
    }
}

struct Slot {
    spec: Spec,
    generation: u64,
    pid: Option<u32>,
    started_at: Instant,
    backoff: Backoff,
    due: Option<Instant>,
}

/// The children of the stack.
pub struct Supervisor {
    slots: Vec<Slot>,
    restarts: bool,
    clock: Box<dyn Clock>,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits: mpsc::UnboundedReceiver<Exit>,
}

impl Supervisor {
    /// No children yet; `restarts` says whether dead ones start again.
    pub fn new(restarts: bool) -> Self {
        Self::with_clock(restarts, RuntimeClock)
    }

    /// [`new`](Self::new), its back-off reading the time from `clock`.
    pub fn with_clock(restarts: bool, clock: impl Clock + 'static) -> Self {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        Self { slots: Vec::new(), restarts, clock: Box::new(clock), exits_tx, exits }
    }

    /// Keeps `spec`, started (with `pid`) or not.
    fn keep(&mut self, spec: Spec, pid: Option<u32>) {
        let started_at = self.clock.now();
        self.slots.push(Slot { spec, generation: 0, pid, started_at, backoff: Backoff::new(), due: None });
    }

    /// Starts `spec` and waits until it is ready.
    ///
    /// # Errors
    /// As [`child::start`].
    pub async fn start(&mut self, mut spec: Spec) -> Result<Started, Error> {
        let index = self.slots.len();
        let started = child::start(&spec, index, 0, self.exits_tx.clone()).await?;
        spec.pin_port(started.addr);
        self.keep(spec, Some(started.pid));
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
            self.keep(spec, pid);
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

    /// Notes a death; a restart comes due after the back-off, if restarts are on.
    fn died(&mut self, exit: Exit) -> Option<Event> {
        let now = self.clock.now();
        let restarts = self.restarts;
        let slot = self.slots.get_mut(exit.index)?;
        if slot.generation != exit.generation {
            return None;
        }
        slot.pid = None;
        let restart_in = restarts.then(|| slot.backoff.after_death(now.duration_since(slot.started_at)));
        slot.due = restart_in.map(|wait| now + wait);
        Some(Event::Died { name: slot.spec.name.clone(), status: child::describe(&exit.status), restart_in })
    }

    async fn restart_due(&mut self) -> Option<Event> {
        let now = self.clock.now();
        let index = self.slots.iter().position(|s| s.due.is_some_and(|d| d <= now))?;
        let exits = self.exits_tx.clone();
        let slot = &mut self.slots[index];
        slot.due = None;
        slot.generation += 1;
        Some(match child::start(&slot.spec, index, slot.generation, exits).await {
            Ok(started) => self.restarted(index, started.pid),
            Err(err) => self.restart_failed(index, &err),
        })
    }

    /// Notes a restart: the child runs again from now.
    fn restarted(&mut self, index: usize, pid: u32) -> Event {
        let now = self.clock.now();
        let slot = &mut self.slots[index];
        slot.pid = Some(pid);
        slot.started_at = now;
        Event::Restarted { name: slot.spec.name.clone(), pid }
    }

    /// Notes a restart that failed: it is tried again after the back-off.
    fn restart_failed(&mut self, index: usize, err: &Error) -> Event {
        let now = self.clock.now();
        let slot = &mut self.slots[index];
        let retry_in = slot.backoff.take();
        slot.due = Some(now + retry_in);
        Event::RestartFailed { name: slot.spec.name.clone(), error: err.to_string(), retry_in }
    }

    /// Stops every child still running, the edge first ([`Stops`]): SIGTERM to each in turn,
    /// then SIGKILL to those not gone in time; reports the ones that stopped badly.
    pub async fn stop_all(&mut self) {
        for slot in &mut self.slots {
            slot.due = None;
        }
        for turn in [Stops::First, Stops::Then] {
            self.stop(turn).await;
        }
    }

    /// SIGTERM to the children that stop at `turn`, and waits for them.
    async fn stop(&mut self, turn: Stops) {
        let ours = |slot: &Slot| slot.spec.stops == turn && slot.pid.is_some();
        signal(self.slots.iter().filter(|s| ours(s)).filter_map(|s| s.pid), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_DEADLINE;
        while self.slots.iter().any(ours) {
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
                        self.slots.iter().filter(|s| ours(s)).map(|s| s.spec.name.as_str()).collect();
                    crate::output::error(&format!(
                        "bookinfo: killing {} after {STOP_DEADLINE:?}",
                        stuck.join(", ")
                    ));
                    signal(self.slots.iter().filter(|s| ours(s)).filter_map(|s| s.pid), Signal::SIGKILL);
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;
    use std::rc::Rc;

    use super::*;
    use crate::up::child::Ready;

    /// A clock that moves only when told.
    #[derive(Clone)]
    struct Manual(Rc<Cell<Instant>>);

    impl Clock for Manual {
        fn now(&self) -> Instant {
            self.0.get()
        }
    }

    impl Manual {
        fn advance(&self, by: Duration) {
            self.0.set(self.0.get() + by);
        }
    }

    /// A supervisor on a manual clock, with one child running since now.
    fn supervised(restarts: bool) -> (Supervisor, Manual) {
        let clock = Manual(Rc::new(Cell::new(Instant::now())));
        let mut supervisor = Supervisor::with_clock(restarts, clock.clone());
        let spec = Spec {
            name: "details".into(),
            program: "bookinfo".into(),
            args: Vec::new(),
            env: Vec::new(),
            scrub: Vec::new(),
            ready: Ready::Line,
            stops: Stops::Then,
        };
        supervisor.keep(spec, Some(1));
        (supervisor, clock)
    }

    /// The child dies now: when it restarts.
    fn dies(supervisor: &mut Supervisor) -> Option<Duration> {
        let exit = Exit {
            index: 0,
            generation: supervisor.slots[0].generation,
            status: Ok(ExitStatus::from_raw(256)),
        };
        match supervisor.died(exit) {
            Some(Event::Died { restart_in, .. }) => restart_in,
            other => panic!("not a death: {other:?}"),
        }
    }

    /// The child is restarted when due, and runs for `ran` before it dies again.
    fn restarted_and_dies_after(
        supervisor: &mut Supervisor,
        clock: &Manual,
        ran: Duration,
    ) -> Option<Duration> {
        let due = supervisor.slots[0].due.expect("a restart is due");
        clock.0.set(due);
        supervisor.slots[0].generation += 1;
        supervisor.restarted(0, 2);
        clock.advance(ran);
        dies(supervisor)
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_dead_child_is_restarted_after_ten_seconds() {
        let (mut supervisor, clock) = supervised(true);
        clock.advance(SECOND);
        assert_eq!(dies(&mut supervisor), Some(Duration::from_secs(10)));
        assert_eq!(supervisor.slots[0].due, Some(clock.now() + Duration::from_secs(10)));
    }

    #[test]
    fn each_quick_death_doubles_the_back_off() {
        let (mut supervisor, clock) = supervised(true);
        let mut waits = vec![dies(&mut supervisor)];
        for _ in 0..4 {
            waits.push(restarted_and_dies_after(&mut supervisor, &clock, SECOND));
        }
        let expected = [10, 20, 40, 80, 160].map(|s| Some(Duration::from_secs(s)));
        assert_eq!(waits, expected);
    }

    #[test]
    fn the_back_off_stops_at_five_minutes() {
        let (mut supervisor, clock) = supervised(true);
        dies(&mut supervisor);
        let waits: Vec<_> =
            (0..7).map(|_| restarted_and_dies_after(&mut supervisor, &clock, SECOND)).collect();
        let expected = [20, 40, 80, 160, 300, 300, 300].map(|s| Some(Duration::from_secs(s)));
        assert_eq!(waits, expected);
    }

    #[test]
    fn a_child_that_ran_ten_minutes_starts_over_at_ten_seconds() {
        let (mut supervisor, clock) = supervised(true);
        dies(&mut supervisor);
        restarted_and_dies_after(&mut supervisor, &clock, SECOND);
        let almost = RESET_AFTER - SECOND;
        assert_eq!(restarted_and_dies_after(&mut supervisor, &clock, almost), Some(Duration::from_secs(40)));
        assert_eq!(
            restarted_and_dies_after(&mut supervisor, &clock, RESET_AFTER),
            Some(Duration::from_secs(10))
        );
        assert_eq!(restarted_and_dies_after(&mut supervisor, &clock, SECOND), Some(Duration::from_secs(20)));
    }

    #[test]
    fn a_restart_that_fails_is_tried_again_after_the_next_back_off() {
        let (mut supervisor, clock) = supervised(true);
        dies(&mut supervisor);
        clock.advance(Duration::from_secs(10));
        let failed = supervisor.restart_failed(0, &Error::Quiet);
        assert!(
            matches!(failed, Event::RestartFailed { retry_in, .. } if retry_in == Duration::from_secs(20))
        );
        assert_eq!(supervisor.slots[0].due, Some(clock.now() + Duration::from_secs(20)));
    }

    #[test]
    fn without_restarts_a_dead_child_stays_down() {
        let (mut supervisor, clock) = supervised(false);
        clock.advance(SECOND);
        assert_eq!(dies(&mut supervisor), None);
        assert_eq!(supervisor.slots[0].due, None);
    }
}
