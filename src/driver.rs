//! The engine every model trains through. A model is a [`Task`]: its workers' private
//! state, what an epoch sends them, one worker's share of an epoch, and the end of an
//! epoch (divergence checks, evaluation, report). [`run_task`] runs any task: inline on
//! the calling thread or on the pool of persistent pinned worker threads
//! ([`scoped_pool`]), under the one epoch loop ([`drive`]: learning-rate schedule,
//! early stopping with the best epoch kept, the caller's stop request, training time),
//! reporting progress while an epoch runs. Linear models (`train`) and matrix
//! factorization (`mf`) are its two tasks; schemes are how a task's `work` shares the
//! parameters.

use std::cell::Cell;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::schedule::{Schedule, Scheduler};

/// The epochs of a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Most epochs.
    pub(crate) epochs: usize,
    /// Epochs without a better validation metric before stopping.
    pub(crate) early_stop: Option<usize>,
    /// The learning-rate schedule and its base rate.
    pub(crate) schedule: Schedule,
    pub(crate) base_lr: f32,
    /// Stop once converged to this relative tolerance (see [`converged`]).
    pub(crate) tol: Option<f64>,
}

/// Whether a run has converged to `tol`: by the duality gap when the task has one
/// (gap ≤ tol·|P|), else by the regularized training objective's relative decrease
/// over the last epoch ((P_prev − P) ≤ tol·|P|, an increase included).
pub(crate) fn converged(tol: f64, prev: Option<f64>, objective: f64, gap: Option<f64>) -> bool {
    match (gap, prev) {
        (Some(g), _) => g <= tol * objective.abs(),
        (None, Some(p)) => p - objective <= tol * objective.abs(),
        (None, None) => false,
    }
}

/// One trained epoch, as the trainer hands it to the driver.
#[derive(Debug)]
pub(crate) struct Epoch<M> {
    /// Training seconds (no evaluation).
    pub(crate) seconds: f64,
    /// The training metric (progressive loss, training RMSE).
    pub(crate) train: f64,
    /// The validation metric (lower is better), when there is validation data.
    pub(crate) valid: Option<f64>,
    /// The regularized training objective after the epoch, where the task computes it.
    pub(crate) objective: Option<f64>,
    /// The duality gap after the epoch, where the task has a dual.
    pub(crate) gap: Option<f64>,
    /// This epoch's model, kept if it is the best so far; the driver asks for it
    /// (`keep` = true) only under early stopping.
    pub(crate) model: Option<M>,
}

/// How a run ended.
#[derive(Debug)]
pub(crate) struct Driven<M> {
    /// Epochs run.
    pub(crate) epochs: usize,
    /// Training seconds over all epochs.
    pub(crate) train_seconds: f64,
    /// Under early stopping: the best validation metric, its 1-based epoch and model.
    pub(crate) best: Option<(f64, usize, M)>,
    pub(crate) stopped_early: bool,
    pub(crate) stopped_by_caller: bool,
    /// Stopped because the run converged to the plan's `tol`.
    pub(crate) converged: bool,
    /// The schedule as it ended (for the rate of any epoch).
    pub(crate) scheduler: Scheduler,
}

/// Runs `epoch(e, lr, keep)` for e = 0, 1, … under `plan`: the schedule gives each
/// epoch's rate and watches the validation metric (else the training one); early
/// stopping keeps the best epoch's model and stops after `early_stop` epochs without
/// improvement; `stop` (set by the caller's progress callback) ends the run after the
/// current epoch. The first error ends the run.
pub(crate) fn drive<M>(
    plan: &Plan,
    stop: &Cell<bool>,
    mut epoch: impl FnMut(usize, f32, bool) -> Result<Epoch<M>>,
) -> Result<Driven<M>> {
    let mut out = Driven {
        epochs: 0,
        train_seconds: 0.0,
        best: None,
        stopped_early: false,
        stopped_by_caller: false,
        converged: false,
        scheduler: Scheduler::new(plan.schedule, plan.base_lr),
    };
    let mut prev: Option<f64> = None;
    for e in 0..plan.epochs {
        let lr = out.scheduler.rate(e);
        let ep = epoch(e, lr, plan.early_stop.is_some())?;
        out.epochs = e + 1;
        out.train_seconds += ep.seconds;
        out.scheduler.observe(ep.valid.unwrap_or(ep.train));
        if let (Some(patience), Some(v)) = (plan.early_stop, ep.valid) {
            if out.best.as_ref().is_none_or(|b| v < b.0) {
                let model = ep.model.ok_or_else(|| {
                    Error::config("early_stop", "the trainer kept no model (a bug)")
                })?;
                out.best = Some((v, e + 1, model));
            } else if e + 1 - out.best.as_ref().map_or(0, |b| b.1) >= patience {
                out.stopped_early = true;
                break;
            }
        }
        if let (Some(tol), Some(obj)) = (plan.tol, ep.objective) {
            if converged(tol, prev, obj, ep.gap) {
                out.converged = true;
                break;
            }
            prev = Some(obj);
        }
        if stop.get() {
            out.stopped_by_caller = true;
            break;
        }
    }
    Ok(out)
}

/// A model the engine can train. `work` runs on worker threads (or inline), everything
/// else on the calling thread while the workers wait.
pub(crate) trait Task: Sync {
    /// A worker's private state, kept across epochs.
    type Worker: Send;
    /// What every worker receives for an epoch.
    type Job: Clone + Send;
    /// What a worker returns for an epoch.
    type Part: Send;
    /// The best epoch's model, kept under early stopping.
    type Kept;
    /// An epoch's report.
    type Report;
    /// One state per worker (their number is the thread count).
    fn workers(&self) -> Vec<Self::Worker>;
    /// Prepares epoch `epoch` at rate `lr` (orders, counters) and says what the workers get.
    fn job(&self, epoch: usize, lr: f32) -> Self::Job;
    /// One worker's share of the epoch; `tick(done)` reports progress when run inline.
    fn work(
        &self,
        worker: &mut Self::Worker,
        job: Self::Job,
        tick: &mut dyn FnMut(usize),
    ) -> Self::Part;
    /// Units done in the current epoch, over all workers (progress while they run).
    fn done(&self) -> usize;
    /// Rounds per epoch: the workers do their share of an epoch in this many parts, and
    /// [`Task::between`] runs after each but the last (a run across processes exchanges
    /// there). One by default.
    fn rounds(&self) -> usize {
        1
    }
    /// The job of round `round` of the epoch whose job (round 0) is `job`.
    fn round(&self, job: &Self::Job, _round: usize) -> Self::Job {
        job.clone()
    }
    /// Between rounds `round` and `round + 1` of epoch `epoch`, on the calling thread
    /// while the workers wait.
    fn between(&self, _epoch: usize, _round: usize) -> Result<()> {
        Ok(())
    }
    /// The end of an epoch from the workers' parts (of every round, round by round):
    /// divergence checks, evaluation, the model to keep (when `keep`), the report.
    fn end_epoch(
        &self,
        epoch: usize,
        lr: f32,
        keep: bool,
        parts: Vec<Self::Part>,
        seconds: f64,
    ) -> Result<(Epoch<Self::Kept>, Self::Report)>;
}

/// What a running task tells its caller.
#[derive(Debug)]
pub(crate) enum Event<'a, R> {
    /// Units done so far in an epoch.
    Done { epoch: usize, done: usize },
    /// An epoch ended.
    Epoch(&'a R),
}

/// Where a task's workers run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    /// On the calling thread (one worker), not on the pool.
    pub(crate) inline: bool,
    /// Pin pool threads to cores.
    pub(crate) pin: bool,
}

/// How a task's run ended, and every epoch's report.
pub(crate) type Trained<T> = (Driven<<T as Task>::Kept>, Vec<<T as Task>::Report>);

/// Trains `task` under `plan`; returns how the run ended and every epoch's report.
///
/// # Errors
/// The task's errors (divergence, evaluation), or a worker thread that cannot start or
/// panicked.
pub(crate) fn run_task<T: Task>(
    task: &T,
    plan: &Plan,
    stop: &Cell<bool>,
    place: Placement,
    events: &mut dyn FnMut(Event<'_, T::Report>),
) -> Result<Trained<T>> {
    let mut reports = Vec::with_capacity(plan.epochs.min(1024));
    let mut workers = task.workers();
    let driven = if place.inline {
        let worker = &mut workers[0];
        drive(plan, stop, |epoch, lr, keep| {
            let job = task.job(epoch, lr);
            let start = Instant::now();
            let rounds = task.rounds();
            let mut parts = Vec::with_capacity(rounds);
            for r in 0..rounds {
                let job = if r == 0 {
                    job.clone()
                } else {
                    task.round(&job, r)
                };
                parts.push(task.work(worker, job, &mut |done| {
                    events(Event::Done { epoch, done });
                }));
                if r + 1 < rounds {
                    task.between(epoch, r)?;
                }
            }
            let seconds = start.elapsed().as_secs_f64();
            let (ep, rep) = task.end_epoch(epoch, lr, keep, parts, seconds)?;
            events(Event::Epoch(&rep));
            reports.push(rep);
            Ok(ep)
        })?
    } else {
        let work = |w: &mut T::Worker, job: T::Job| task.work(w, job, &mut |_| {});
        scoped_pool(workers, place.pin, &work, |pool| {
            drive(plan, stop, |epoch, lr, keep| {
                let job = task.job(epoch, lr);
                let start = Instant::now();
                let mut last = 0;
                let mut tick = || {
                    let done = task.done();
                    if done != last {
                        events(Event::Done { epoch, done });
                        last = done;
                    }
                };
                let rounds = task.rounds();
                let mut parts = Vec::new();
                for r in 0..rounds {
                    let job = if r == 0 {
                        job.clone()
                    } else {
                        task.round(&job, r)
                    };
                    parts.extend(
                        pool.epoch(job, &mut tick)
                            .ok_or_else(|| Error::config("threads", "a worker thread panicked"))?,
                    );
                    if r + 1 < rounds {
                        task.between(epoch, r)?;
                    }
                }
                let seconds = start.elapsed().as_secs_f64();
                let (ep, rep) = task.end_epoch(epoch, lr, keep, parts, seconds)?;
                events(Event::Epoch(&rep));
                reports.push(rep);
                Ok(ep)
            })
        })?
    };
    Ok((driven, reports))
}

/// How long a thread polls a channel before blocking on it. A blocked thread's core may
/// go idle, and waking an idle virtual CPU can take a millisecond, longer than a whole
/// epoch on small data (one hogwild thread on a9a ran at 0.64x of sequential); a short
/// poll bridges the gap between epochs (evaluation) and the end of the other workers.
const SPIN: Duration = Duration::from_millis(2);

/// Polls `rx` for up to `limit`; `None` when nothing arrived (or the channel closed).
fn spin_for<T>(rx: &Receiver<T>, limit: Duration) -> Option<T> {
    let start = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if start.elapsed() < limit => std::hint::spin_loop(),
            Err(TryRecvError::Empty) => return None,
        }
    }
}

/// Receives from `rx`, polling briefly first when `spin`; `None` when the channel closed.
fn recv_spinning<T>(rx: &Receiver<T>, spin: bool) -> Option<T> {
    let polled = if spin { spin_for(rx, SPIN) } else { None };
    polled.or_else(|| rx.recv().ok())
}

/// Persistent worker threads of one run: [`Pool::epoch`] sends every worker the same
/// job and gathers their parts, in worker order.
pub(crate) struct Pool<'s, J, P> {
    jobs: Vec<Sender<J>>,
    parts: Receiver<(usize, P)>,
    handles: Vec<std::thread::ScopedJoinHandle<'s, ()>>,
    /// Poll for parts before blocking (a core is left over for this thread).
    spin: bool,
}

impl<J: Clone, P> Pool<'_, J, P> {
    /// Runs `job` on every worker; calls `tick` about every 50 ms while waiting. `None`
    /// when a worker died (a panic, which the scope re-raises).
    pub(crate) fn epoch(&self, job: J, tick: &mut dyn FnMut()) -> Option<Vec<P>> {
        for tx in &self.jobs {
            tx.send(job.clone()).ok()?;
        }
        let n = self.jobs.len();
        let mut parts: Vec<Option<P>> = (0..n).map(|_| None).collect();
        let mut got = 0;
        while got < n {
            if self.spin
                && let Some((w, p)) = spin_for(&self.parts, SPIN)
            {
                parts[w] = Some(p);
                got += 1;
                continue;
            }
            match self.parts.recv_timeout(Duration::from_millis(50)) {
                Ok((w, p)) => {
                    parts[w] = Some(p);
                    got += 1;
                }
                Err(_) if self.handles.iter().any(|h| h.is_finished()) => return None,
                Err(_) => tick(),
            }
        }
        parts.into_iter().collect()
    }
}

/// Starts one pinned (when `pin`) thread per worker state in `workers`, each running
/// `work(state, job)` for every job it is sent, and runs `body` with the pool; the
/// threads end when `body` returns. Polling is used only on cores nobody else needs:
/// by workers when each has its own core, by the calling thread when a core is left.
///
/// # Errors
/// [`Error::Config`] (`threads`) when a thread cannot be started; `body`'s errors.
pub(crate) fn scoped_pool<W, J, P, R>(
    workers: Vec<W>,
    pin: bool,
    work: &(dyn Fn(&mut W, J) -> P + Sync),
    body: impl FnOnce(&Pool<'_, J, P>) -> Result<R>,
) -> Result<R>
where
    W: Send,
    J: Clone + Send,
    P: Send,
{
    let threads = workers.len();
    let cores = crate::engine::cores();
    let spin_workers = threads <= cores;
    std::thread::scope(|s| {
        let (part_tx, part_rx) = channel::<(usize, P)>();
        let mut pool = Pool {
            jobs: Vec::with_capacity(threads),
            parts: part_rx,
            handles: Vec::with_capacity(threads),
            spin: threads < cores,
        };
        for (w, mut state) in workers.into_iter().enumerate() {
            let (job_tx, job_rx) = channel::<J>();
            pool.jobs.push(job_tx);
            let part_tx = part_tx.clone();
            let spawned = std::thread::Builder::new().spawn_scoped(s, move || {
                if pin {
                    crate::engine::pin_current(w);
                }
                while let Some(job) = recv_spinning(&job_rx, spin_workers) {
                    if part_tx.send((w, work(&mut state, job))).is_err() {
                        break;
                    }
                }
            });
            // Returning drops the job channels, so the threads already started end.
            pool.handles.push(spawned.map_err(|e| {
                Error::config(
                    "threads",
                    format!("cannot start worker thread {} of {threads}: {e}", w + 1),
                )
            })?);
        }
        drop(part_tx);
        let out = body(&pool);
        drop(pool.jobs);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(epochs: usize, early_stop: Option<usize>) -> Plan {
        Plan {
            epochs,
            early_stop,
            schedule: Schedule::InvTime { k: 1.0 },
            base_lr: 1.0,
            tol: None,
        }
    }

    #[test]
    fn early_stopping_keeps_the_best_epoch() {
        let metric = [5.0, 3.0, 4.0, 4.5, 2.0];
        let stop = Cell::new(false);
        let d = drive(&plan(5, Some(2)), &stop, |e, lr, keep| {
            assert!(keep);
            assert_eq!(lr, 1.0 / (1.0 + e as f32));
            Ok(Epoch {
                seconds: 0.5,
                train: 9.0,
                valid: Some(metric[e]),
                objective: None,
                gap: None,
                model: Some(e),
            })
        })
        .unwrap();
        assert_eq!((d.epochs, d.stopped_early), (4, true));
        assert_eq!(d.best.map(|b| (b.1, b.2)), Some((2, 1)));
        assert_eq!(d.train_seconds, 2.0);
    }

    #[test]
    fn a_stop_request_ends_after_the_epoch_and_errors_end_at_once() {
        let stop = Cell::new(false);
        let d = drive(&plan(9, None), &stop, |e, _, keep| {
            assert!(!keep);
            stop.set(e == 2);
            Ok(Epoch::<()> {
                seconds: 0.0,
                train: 1.0,
                valid: None,
                objective: None,
                gap: None,
                model: None,
            })
        })
        .unwrap();
        assert_eq!((d.epochs, d.stopped_by_caller), (3, true));
        let stop = Cell::new(false);
        let r = drive(&plan(9, None), &stop, |e, _, _| -> Result<Epoch<()>> {
            if e == 1 {
                Err(Error::config("x", "boom"))
            } else {
                Ok(Epoch {
                    seconds: 0.0,
                    train: 1.0,
                    valid: None,
                    objective: None,
                    gap: None,
                    model: None,
                })
            }
        });
        assert!(r.is_err());
    }

    #[test]
    fn a_tolerance_stops_on_the_gap_or_the_objective() {
        assert!(converged(1e-3, None, 2.0, Some(1e-3)));
        assert!(!converged(1e-3, None, 2.0, Some(1e-2)));
        assert!(!converged(1e-3, None, 2.0, None));
        assert!(converged(1e-3, Some(2.001), 2.0, None));
        assert!(!converged(1e-3, Some(2.1), 2.0, None));
        // An increase counts as no progress.
        assert!(converged(1e-3, Some(1.9), 2.0, None));
        let objective = [4.0, 3.0, 2.9, 2.8999, 2.0];
        let stop = Cell::new(false);
        let mut p = plan(5, None);
        p.tol = Some(1e-3);
        let d = drive(&p, &stop, |e, _, _| {
            Ok(Epoch::<()> {
                seconds: 0.0,
                train: 1.0,
                valid: None,
                objective: Some(objective[e]),
                gap: None,
                model: None,
            })
        })
        .unwrap();
        assert_eq!((d.epochs, d.converged), (4, true));
    }

    /// A task of `rounds` rounds that records what the driver did.
    struct Rounds {
        rounds: usize,
        log: std::sync::Mutex<Vec<String>>,
    }

    impl Task for Rounds {
        type Worker = usize;
        type Job = (usize, usize);
        type Part = (usize, usize, usize);
        type Kept = ();
        type Report = usize;
        fn workers(&self) -> Vec<usize> {
            vec![0, 1]
        }
        fn job(&self, epoch: usize, _lr: f32) -> (usize, usize) {
            (epoch, 0)
        }
        fn round(&self, job: &(usize, usize), round: usize) -> (usize, usize) {
            (job.0, round)
        }
        fn rounds(&self) -> usize {
            self.rounds
        }
        fn between(&self, epoch: usize, round: usize) -> Result<()> {
            self.log
                .lock()
                .unwrap()
                .push(format!("between {epoch}.{round}"));
            Ok(())
        }
        fn work(&self, w: &mut usize, job: (usize, usize), _: &mut dyn FnMut(usize)) -> Self::Part {
            (*w, job.0, job.1)
        }
        fn done(&self) -> usize {
            0
        }
        fn end_epoch(
            &self,
            epoch: usize,
            _lr: f32,
            _keep: bool,
            parts: Vec<Self::Part>,
            seconds: f64,
        ) -> Result<(Epoch<()>, usize)> {
            self.log
                .lock()
                .unwrap()
                .push(format!("end {epoch}: {parts:?}"));
            Ok((
                Epoch {
                    seconds,
                    train: 1.0,
                    valid: None,
                    objective: None,
                    gap: None,
                    model: None,
                },
                parts.len(),
            ))
        }
    }

    #[test]
    fn rounds_split_an_epoch_with_the_exchange_between_them() {
        for inline in [true, false] {
            let task = Rounds {
                rounds: 3,
                log: Default::default(),
            };
            let place = Placement { inline, pin: false };
            let stop = Cell::new(false);
            let (_, reports) = run_task(&task, &plan(2, None), &stop, place, &mut |_| {}).unwrap();
            let log = task.log.into_inner().unwrap();
            // Inline runs one worker (the first), the pool both.
            let workers: &[usize] = if inline { &[0] } else { &[0, 1] };
            assert_eq!(reports, vec![3 * workers.len(); 2]);
            for e in 0..2 {
                let at = 3 * e;
                assert_eq!(log[at], format!("between {e}.0"));
                assert_eq!(log[at + 1], format!("between {e}.1"));
                // Parts of every round, round by round, workers in order within one.
                let parts: Vec<(usize, usize, usize)> = (0..3)
                    .flat_map(|r| workers.iter().map(move |&w| (w, e, r)))
                    .collect();
                assert_eq!(log[at + 2], format!("end {e}: {parts:?}"));
            }
        }
    }

    #[test]
    fn the_pool_runs_every_worker_in_order_with_its_own_state() {
        let work = |count: &mut u32, job: u32| {
            *count += 1;
            (*count, job)
        };
        let out = scoped_pool(vec![0u32; 3], false, &work, |pool| {
            let a = pool.epoch(7, &mut || {}).unwrap();
            let b = pool.epoch(8, &mut || {}).unwrap();
            Ok((a, b))
        })
        .unwrap();
        assert_eq!(out.0, vec![(1, 7); 3]);
        assert_eq!(out.1, vec![(2, 8); 3]);
    }
}
