//! The MPI job: initialization, bounded collectives, the communication meter, and the
//! epoch-end exchange of the allreduce schemes (average, easgd).
//!
//! Every blocking MPI call of this crate goes through a non-blocking request polled
//! against a deadline ([`Job::wait`]): a rank that died or hangs makes the others abort
//! the job with a message naming the waiting rank and what it waited for, instead of
//! hanging. Only the thread that runs [`crate::distributed::fit`] calls MPI (the engine's
//! worker threads never do), which is what `MPI_THREAD_SERIALIZED` asks of us.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::{DistConfig, DistScheme};
use crate::error::{Error, Result};
use crate::train::CommStats;

/// This process's place in an MPI job. Created once per process by [`Job::init`]; MPI is
/// finalized when it is dropped.
pub struct Job {
    world: SimpleCommunicator,
    /// Held by every MPI call (see [`Job::mpi`]).
    serial: Mutex<()>,
    rank: usize,
    size: usize,
    local_rank: usize,
    local_size: usize,
    meter: Mutex<CommStats>,
    _universe: Universe,
}

// SAFETY: `Job` is `Sync` so that the engine's task, which holds a reference to it, can
// be shared with the worker threads. The communicator inside (an opaque handle) is used
// only through `Job::mpi`, which holds `serial` for the whole call, so no two threads
// ever call MPI at once; MPI was initialized with `MPI_THREAD_SERIALIZED` (checked in
// `Job::init`), which allows calls from any thread under that condition. The universe is
// only dropped (finalizing MPI) with the `Job`, once no reference remains.
unsafe impl Sync for Job {}

/// The communicator with the lock that serializes MPI calls (see [`Job::mpi`]).
pub(super) struct Mpi<'a> {
    _serial: std::sync::MutexGuard<'a, ()>,
    world: &'a SimpleCommunicator,
}

impl std::ops::Deref for Mpi<'_> {
    type Target = SimpleCommunicator;
    fn deref(&self) -> &SimpleCommunicator {
        self.world
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("local_rank", &self.local_rank)
            .field("local_size", &self.local_size)
            .finish()
    }
}

impl Job {
    /// Initializes MPI (a process started without `mpirun` is a job of one rank) and
    /// shares this machine's cores among the job's ranks on it: each rank's default
    /// thread count is its share, and its pinned threads start after the cores of the
    /// ranks before it on the machine (so `mpirun` must not bind ranks itself:
    /// `--bind-to none`).
    ///
    /// # Errors
    /// [`Error::Config`] when MPI was already initialized or cannot serialize calls from
    /// several threads.
    pub fn init() -> Result<Job> {
        let (universe, threading) = mpi::initialize_with_threading(mpi::Threading::Serialized)
            .ok_or_else(|| {
                Error::config("distributed", "MPI is already initialized in this process")
            })?;
        if threading < mpi::Threading::Serialized {
            return Err(Error::config(
                "distributed",
                "this MPI library cannot be called from a thread other than the main one",
            ));
        }
        let world = universe.world();
        let rank = world.rank() as usize;
        let size = world.size() as usize;
        let node = world.split_shared(world.rank());
        let (local_rank, local_size) = (node.rank() as usize, node.size() as usize);
        crate::engine::set_local_processes(local_size);
        crate::engine::set_first_core(local_rank * crate::engine::cores());
        Ok(Job {
            world,
            rank,
            size,
            local_rank,
            local_size,
            serial: Mutex::new(()),
            meter: Mutex::new(CommStats::default()),
            _universe: universe,
        })
    }

    /// The communicator, for one MPI call or a sequence of them: the guard serializes
    /// the calls of all threads, as `MPI_THREAD_SERIALIZED` requires.
    pub(super) fn mpi(&self) -> Mpi<'_> {
        Mpi {
            _serial: self.serial.lock().unwrap_or_else(|e| e.into_inner()),
            world: &self.world,
        }
    }

    /// This rank (0-based).
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Ranks in the job.
    pub fn size(&self) -> usize {
        self.size
    }

    /// This rank among the job's ranks on its machine, and their number.
    pub fn local(&self) -> (usize, usize) {
        (self.local_rank, self.local_size)
    }

    /// Checks that every rank runs with the same `fingerprint` (of its settings and the
    /// shape of its data): ranks started with different commands or files behind the
    /// same path would otherwise exchange mismatched models.
    pub(super) fn check_agreement(&self, fingerprint: u64, timeout: Duration) -> Result<()> {
        // 52 bits: exact in an f64.
        let h = (fingerprint & ((1 << 52) - 1)) as f64;
        let lo = self.min(h, timeout, "comparing the ranks' settings")?;
        let hi = -self.min(-h, timeout, "comparing the ranks' settings")?;
        if lo != hi {
            return Err(Error::config(
                "distributed",
                "the ranks were started with different settings or different data: every rank must run the same command on the same data",
            ));
        }
        Ok(())
    }

    /// Checks that `dist` slows a rank of this job, if any.
    pub(super) fn check_slow(&self, dist: &DistConfig) -> Result<()> {
        match dist.slow {
            Some((r, _)) if r >= self.size => Err(Error::config(
                "slow_rank",
                format!("rank {r} is not in this job of {} ranks", self.size),
            )),
            _ => Ok(()),
        }
    }

    /// Ends the whole job with exit code `code` (`MPI_Abort`): every rank is killed.
    pub fn abort(&self, code: i32) -> ! {
        // Outputs not yet committed leave no temporary file behind.
        crate::atomic::remove_pending();
        // Not through `mpi()`: the lock may be held by the caller, and the job ends.
        self.world.abort(code)
    }

    /// Counts `bytes` communicated in `seconds` (nothing in a job of one rank, which
    /// communicates with nobody).
    pub(super) fn count(&self, bytes: usize, seconds: f64) {
        if self.size == 1 {
            return;
        }
        let mut m = self.meter.lock().unwrap_or_else(|e| e.into_inner());
        m.comm_bytes += bytes as u64;
        m.comm_seconds += seconds;
    }

    /// Counts `seconds` spent waiting for slower ranks.
    pub(super) fn count_wait(&self, seconds: f64) {
        self.meter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .wait_seconds += seconds;
    }

    /// Seconds counted as communicating so far (for splitting a span into communicating
    /// and waiting).
    pub(super) fn comm_so_far(&self) -> f64 {
        self.meter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .comm_seconds
    }

    /// Waits (bounded) until every rank arrives, counted as waiting: what a collective
    /// would otherwise count as communicating is the wait for the slowest rank.
    fn barrier(&self, timeout: Duration, what: &str) {
        let start = Instant::now();
        {
            let world = self.mpi();
            let req = world.immediate_barrier();
            complete(self.rank, self.size, &world, timeout, what, req);
        }
        self.count_wait(start.elapsed().as_secs_f64());
    }

    /// What was communicated since the last call, for `scheme`.
    pub(super) fn take_stats(&self, scheme: DistScheme) -> CommStats {
        let mut m = self.meter.lock().unwrap_or_else(|e| e.into_inner());
        let out = CommStats {
            distributed: scheme.name(),
            ranks: self.size,
            ..*m
        };
        *m = CommStats::default();
        out
    }

    /// Sums `v` over the ranks in place (bounded wait).
    pub(super) fn sum_f64(&self, v: &mut [f64], timeout: Duration, what: &str) {
        self.barrier(timeout, what);
        let send = v.to_vec();
        let start = Instant::now();
        let world = self.mpi();
        mpi::request::scope(|scope| {
            let req = world.immediate_all_reduce_into(scope, &send[..], v, SystemOperation::sum());
            complete(self.rank, self.size, &world, timeout, what, req);
        });
        self.count(
            2 * std::mem::size_of_val(&send[..]),
            start.elapsed().as_secs_f64(),
        );
    }

    /// Rank 0's `v` on every rank (bounded wait).
    pub(super) fn broadcast_f32(&self, v: &mut [f32], timeout: Duration, what: &str) {
        self.barrier(timeout, what);
        let start = Instant::now();
        let bytes = std::mem::size_of_val(v);
        let world = self.mpi();
        mpi::request::scope(|scope| {
            let req = world.process_at_rank(0).immediate_broadcast_into(scope, v);
            complete(self.rank, self.size, &world, timeout, what, req);
        });
        self.count(bytes, start.elapsed().as_secs_f64());
    }

    /// The smallest of the ranks' `x`.
    pub(super) fn min(&self, x: f64, timeout: Duration, what: &str) -> Result<f64> {
        let mut v = [-x];
        self.max_in_place(&mut v, timeout, what);
        Ok(-v[0])
    }

    fn max_in_place(&self, v: &mut [f64], timeout: Duration, what: &str) {
        let send = v.to_vec();
        let world = self.mpi();
        mpi::request::scope(|scope| {
            let req = world.immediate_all_reduce_into(scope, &send[..], v, SystemOperation::max());
            complete(self.rank, self.size, &world, timeout, what, req);
        });
    }

    /// The sum of the ranks' `x`.
    pub(super) fn sum_usize(&self, x: usize, timeout: Duration) -> Result<usize> {
        let mut v = [x as f64];
        self.sum_f64(&mut v, timeout, "summing the rows of the shards");
        Ok(v[0] as usize)
    }
}

/// Polls `done` until it says true, for at most `timeout`; past it, prints what rank
/// `rank` of `size` waited for and aborts the job on `world` (exit code 3).
pub(super) fn wait(
    rank: usize,
    size: usize,
    world: &SimpleCommunicator,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let start = Instant::now();
    let mut spins = 0u32;
    while !done() {
        if start.elapsed() > timeout {
            eprintln!(
                "error: rank {rank} of {size}: no answer within {} s while {what}; another rank died or hangs (raise --comm-timeout if it is only slow)",
                timeout.as_secs_f64()
            );
            crate::atomic::remove_pending();
            world.abort(3);
        }
        spins += 1;
        if spins < 1000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Waits (bounded, as [`wait`]) until `req` completes.
pub(super) fn complete<'a, D: ?Sized, S: mpi::request::Scope<'a>>(
    rank: usize,
    size: usize,
    world: &SimpleCommunicator,
    timeout: Duration,
    what: &str,
    req: mpi::request::Request<'a, D, S>,
) {
    let mut req = Some(req);
    wait(rank, size, world, timeout, what, || {
        match req.take().map(|r| r.test()) {
            Some(Ok(_)) | None => true,
            Some(Err(r)) => {
                req = Some(r);
                false
            }
        }
    });
}

/// The epoch-end exchange of the allreduce schemes (average, easgd).
pub(super) struct Elastic<'a> {
    job: &'a Job,
    dist: DistConfig,
    /// Exchanges per epoch.
    rounds: usize,
    /// EASGD's centers, the same on every rank: of the iterates, then of the models
    /// evaluated (bias last in each); empty until the first epoch.
    center: Mutex<Vec<f64>>,
    /// A stop requested on this rank, and the job's agreement on stopping.
    want_stop: &'a AtomicBool,
    agreed: &'a AtomicBool,
}

impl<'a> Elastic<'a> {
    pub(super) fn new(
        job: &'a Job,
        dist: &DistConfig,
        rounds: usize,
        want_stop: &'a AtomicBool,
        agreed: &'a AtomicBool,
    ) -> Self {
        Elastic {
            job,
            dist: *dist,
            rounds,
            center: Mutex::new(Vec::new()),
            want_stop,
            agreed,
        }
    }
}

impl crate::train::Exchange for Elastic<'_> {
    fn sum(&self, v: &mut [f64]) -> Result<()> {
        self.job
            .sum_f64(v, self.dist.timeout, "summing the epoch's figures");
        Ok(())
    }

    fn rounds(&self) -> usize {
        self.rounds
    }

    fn exchange_iterate(&self, epoch: usize, round: usize, iterate: &mut [f32]) -> Result<()> {
        let what = format!(
            "exchanging the weights in epoch {} (round {} of {})",
            epoch + 1,
            round + 1,
            self.rounds
        );
        self.meet(&what, iterate, None)
    }

    fn exchange(&self, epoch: usize, iterate: &mut [f32], model: &mut [f32]) -> Result<()> {
        let what = format!("exchanging the models after epoch {}", epoch + 1);
        self.meet(&what, iterate, Some(model))
    }

    fn stats(&self) -> CommStats {
        self.job.take_stats(self.dist.scheme)
    }
}

impl Elastic<'_> {
    /// One exchange, in one allreduce: this rank's weights `iterate` (bias last) move as
    /// the scheme says; at an epoch's end (`model` given) the models evaluated become the
    /// job's model, and the ranks agree on stopping.
    ///
    /// - average: both become the ranks' means.
    /// - easgd: diff_i = α(x^i − x̃); x^i −= diff_i; x̃ += Σ_i diff_i. The models evaluated
    ///   (each rank's average of its iterates) have a center of their own under the same
    ///   rule, which is the job's model: the elastic center of the averaged iterates
    ///   (§12.2 on top of §8).
    fn meet(&self, what: &str, iterate: &mut [f32], model: Option<&mut [f32]>) -> Result<()> {
        let (job, p) = (self.job, self.job.size() as f64);
        if let Some((r, d)) = self.dist.slow
            && r == job.rank()
        {
            std::thread::sleep(d);
        }
        let n = iterate.len();
        let mine: Vec<f64> = iterate
            .iter()
            .chain(model.iter().flat_map(|m| m.iter()))
            .map(|&x| f64::from(x))
            .collect();
        let len = mine.len();
        let stop = f64::from(u8::from(self.want_stop.load(Ordering::Relaxed)));
        let mut v = match self.dist.scheme {
            DistScheme::Average => mine,
            DistScheme::Easgd => {
                let alpha = f64::from(self.dist.alpha.unwrap_or(0.9 / p as f32));
                let mut center = self.center.lock().unwrap_or_else(|e| e.into_inner());
                if center.is_empty() {
                    // Every rank starts from the same weights (zero): so do the centers.
                    center.resize(2 * n, 0.0);
                }
                let diff: Vec<f64> = mine
                    .iter()
                    .zip(center.iter())
                    .map(|(&x, &c)| alpha * (x - c))
                    .collect();
                for (x, d) in iterate.iter_mut().zip(&diff) {
                    *x = (f64::from(*x) - d) as f32;
                }
                diff
            }
            DistScheme::Downpour | DistScheme::DelayTolerant | DistScheme::Dsgd => {
                return Err(Error::config(
                    "distributed",
                    "this scheme has no exchange of linear models (a bug)",
                ));
            }
        };
        if model.is_some() {
            v.push(stop);
        }
        job.sum_f64(&mut v, self.dist.timeout, what);
        if model.is_some() {
            self.agreed.store(v[len] > 0.0, Ordering::Relaxed);
        }
        match self.dist.scheme {
            DistScheme::Easgd => {
                let mut center = self.center.lock().unwrap_or_else(|e| e.into_inner());
                for (c, d) in center.iter_mut().zip(&v[..len]) {
                    *c += d;
                }
                if let Some(m) = model {
                    for (m, &c) in m.iter_mut().zip(&center[n..]) {
                        *m = c as f32;
                    }
                }
            }
            _ => {
                for (x, s) in iterate.iter_mut().zip(&v[..n]) {
                    *x = (s / p) as f32;
                }
                if let Some(m) = model {
                    for (x, s) in m.iter_mut().zip(&v[n..len]) {
                        *x = (s / p) as f32;
                    }
                }
            }
        }
        Ok(())
    }
}

/// DSGD's exchange for matrix factorization (see [`crate::mf::Strata`]).
pub(super) struct Strata<'a> {
    pub(super) job: &'a Job,
    pub(super) timeout: Duration,
    pub(super) want_stop: &'a AtomicBool,
    pub(super) agreed: &'a AtomicBool,
}

impl crate::mf::Strata for Strata<'_> {
    fn place(&self) -> (usize, usize) {
        (self.job.rank(), self.job.size())
    }

    fn sum(&self, v: &mut [f32]) {
        let mut w: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
        self.job
            .sum_f64(&mut w, self.timeout, "exchanging the factors of a stratum");
        for (x, s) in v.iter_mut().zip(&w) {
            *x = *s as f32;
        }
    }

    fn sum_f64(&self, v: &mut [f64]) {
        // The epoch's figures travel with the stop flag: every rank stops together.
        let mut w = v.to_vec();
        w.push(f64::from(u8::from(self.want_stop.load(Ordering::Relaxed))));
        self.job
            .sum_f64(&mut w, self.timeout, "summing the epoch's figures");
        self.agreed.store(w[v.len()] > 0.0, Ordering::Relaxed);
        v.copy_from_slice(&w[..v.len()]);
    }

    fn stats(&self) -> CommStats {
        self.job.take_stats(DistScheme::Dsgd)
    }
}
