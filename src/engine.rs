//! The parallel engine's vocabulary: schemes, replication of hot coordinates, thread
//! placement, and AdaGrad's delay-tolerant AdaptiveRevision update.
//!
//! | scheme | what the threads do |
//! |---|---|
//! | `sequential` | one thread, in the caller's thread: the reference |
//! | `hogwild` | N pinned threads, each walking its own seeded, shuffled share of the examples every epoch, updating shared atomic parameters with no lock (Niu et al. 2011) |
//! | `locked` | the same threads, every example's update under one global lock (the paper's baseline) |
//! | `round-robin` | the same threads taking turns in a fixed order, one update each (the paper's RR); deterministic |
//! | `delay-tolerant` | the hogwild threads running AdaGrad's AdaptiveRevision (McMahan & Streeter 2014) |
//! | `block` | matrix factorization only ([`MfScheme`], its default): LIBMF's FPSG, the rating matrix cut into a grid of blocks and each thread handed a free block (no row or column shared with a running block), so updates never conflict and take no lock (Chin et al. 2015) |
//!
//! **Allowed races.** Under `hogwild`, two threads may update the same coordinate at
//! the same time: each does a relaxed atomic load, computes, and a relaxed atomic
//! store, so one of the two updates can be lost (by design, as in the paper; the
//! `lossless` option replaces the store by a compare-and-swap addition of the change,
//! which loses nothing and costs a CAS loop per write). A coordinate's weight and its
//! optimizer state may be read at slightly different moments. Not allowed, and not
//! possible here: torn values (every access is atomic) or any non-atomic access to
//! shared parameters; thread-private data (replicas, RNGs, permutations, counters)
//! is never shared.
//!
//! **Replicas.** Hot coordinates (a feature in most rows, the bias) make cache lines
//! bounce between cores, which is why a plain Hogwild! loop with two threads can be
//! slower than one. With replication each thread trains a private copy of the hot
//! coordinates and merges its changes into the shared parameters every `sync_every`
//! updates (compare-and-swap additions of its deltas, then it takes the merged values
//! back), as DimmWitted's per-core model and HOGWILD++ do; cold coordinates stay
//! shared. `auto`, with several threads: a model of at most 1 MiB (weights and state)
//! is replicated whole (DimmWitted's per-core model: a thread touches only its own
//! copy between merges, spaced at about 128 model sizes of work shared among the other
//! threads); a larger model replicates the coordinates present in at least 1.6 %
//! of the rows (touched about 4 times between two merges at the default interval of
//! 256 updates), the rest stays shared. With one thread nothing is replicated.

use crate::error::{Error, Result};

/// How the threads share the work of a linear model. Matrix factorization has its own
/// set ([`MfScheme`]): each model's configuration admits only the schemes it runs, so
/// a scheme a model cannot run is a type error, not a run-time refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// One thread, the reference.
    Sequential,
    /// Lock-free Hogwild!.
    #[default]
    Hogwild,
    /// One global lock around every update.
    Locked,
    /// Threads take turns in a fixed order, one update each (Langford et al.'s
    /// round-robin, the Hogwild! paper's RR baseline).
    RoundRobin,
    /// AdaGrad's AdaptiveRevision on the Hogwild! threads.
    DelayTolerant,
}

impl Scheme {
    /// Every linear scheme.
    pub const ALL: [Scheme; 5] = [
        Scheme::Sequential,
        Scheme::Hogwild,
        Scheme::Locked,
        Scheme::RoundRobin,
        Scheme::DelayTolerant,
    ];

    /// The scheme called `name`.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown name or one linear models do not run.
    pub fn from_name(name: &str) -> Result<Self> {
        match Self::ALL.into_iter().find(|s| s.name() == name) {
            Some(s) => Ok(s),
            None if name == "block" => Err(Error::config(
                "scheme",
                "block scheduling is for matrix factorization; linear models run sequential, hogwild, locked, round-robin or delay-tolerant",
            )),
            None => Err(Error::config(
                "scheme",
                format!(
                    "unknown scheme `{name}`; expected sequential, hogwild, locked, round-robin or delay-tolerant"
                ),
            )),
        }
    }

    /// The command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Sequential => "sequential",
            Scheme::Hogwild => "hogwild",
            Scheme::Locked => "locked",
            Scheme::RoundRobin => "round-robin",
            Scheme::DelayTolerant => "delay-tolerant",
        }
    }
}

/// How the threads share the work of matrix factorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MfScheme {
    /// One thread, the reference.
    Sequential,
    /// Lock-free Hogwild! over the shuffled ratings.
    Hogwild,
    /// One global lock around every update.
    Locked,
    /// Conflict-free block scheduling (LIBMF's FPSG): the fastest at every thread
    /// count measured, hence the default.
    #[default]
    Block,
}

impl MfScheme {
    /// Every matrix-factorization scheme.
    pub const ALL: [MfScheme; 4] = [
        MfScheme::Sequential,
        MfScheme::Hogwild,
        MfScheme::Locked,
        MfScheme::Block,
    ];

    /// The scheme called `name`.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown name or one matrix factorization does not run.
    pub fn from_name(name: &str) -> Result<Self> {
        match Self::ALL.into_iter().find(|s| s.name() == name) {
            Some(s) => Ok(s),
            None if Scheme::from_name(name).is_ok() => Err(Error::config(
                "scheme",
                format!(
                    "`{name}` is for linear models; matrix factorization runs sequential, hogwild, locked or block"
                ),
            )),
            None => Err(Error::config(
                "scheme",
                format!("unknown scheme `{name}`; expected sequential, hogwild, locked or block"),
            )),
        }
    }

    /// The command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            MfScheme::Sequential => "sequential",
            MfScheme::Hogwild => "hogwild",
            MfScheme::Locked => "locked",
            MfScheme::Block => "block",
        }
    }
}

/// Threads actually used for `threads` (0: one per core); `sequential` uses one.
fn threads_for(sequential: bool, threads: usize) -> usize {
    match threads {
        _ if sequential => 1,
        0 => cores(),
        t => t,
    }
}

/// Thread settings checked the same way for every model.
fn check_threads(threads: usize) -> Result<()> {
    if threads > 4096 {
        return Err(Error::config("threads", "at most 4096"));
    }
    Ok(())
}

/// Engine settings of matrix factorization: the scheme, threads and pinning (the
/// replication, delay and merge settings of [`EngineConfig`] are for linear models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MfEngine {
    /// The scheme.
    pub scheme: MfScheme,
    /// Threads; 0 means one per core. `sequential` always uses one.
    pub threads: usize,
    /// Pin each thread to its own core (skipped when oversubscribed).
    pub pin: bool,
}

impl Default for MfEngine {
    fn default() -> Self {
        MfEngine {
            scheme: MfScheme::default(),
            threads: 0,
            pin: true,
        }
    }
}

impl MfEngine {
    /// Threads actually used.
    pub fn effective_threads(&self) -> usize {
        threads_for(self.scheme == MfScheme::Sequential, self.threads)
    }

    /// Whether more threads than cores are asked for.
    pub fn oversubscribed(&self) -> bool {
        self.effective_threads() > cores()
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn check(&self) -> Result<()> {
        check_threads(self.threads)
    }
}

/// Which coordinates each thread replicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Replication {
    /// Chosen from the data (see the module docs).
    #[default]
    Auto,
    /// None: every access goes to the shared parameters (plain Hogwild!).
    None,
    /// The whole model.
    All,
    /// The N most frequent coordinates.
    Top(usize),
}

/// Engine settings of a linear model.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EngineConfig {
    /// The scheme.
    pub scheme: Scheme,
    /// Threads; 0 means one per core. `sequential` always uses one.
    pub threads: usize,
    /// Pin each thread to its own core (skipped when oversubscribed).
    pub pin: bool,
    /// Replication of hot coordinates (hogwild only).
    pub replicate: Replication,
    /// Updates between merges of a thread's replica; 0 chooses (see [`EngineConfig::sync_interval`]).
    pub sync_every: usize,
    /// Rows per shuffled block (`--order shuffle`); 0 chooses from the data size.
    pub shuffle_block: usize,
    /// Apply each thread's gradients this many of its updates after computing them.
    pub delay: usize,
    /// Compare-and-swap additions instead of load/store (no lost updates).
    pub lossless: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            scheme: Scheme::Hogwild,
            threads: 0,
            pin: true,
            replicate: Replication::Auto,
            sync_every: 0,
            shuffle_block: 0,
            delay: 0,
            lossless: false,
        }
    }
}

/// Training rows per thread below which the default thread count stops adding threads
/// (see [`EngineConfig::threads_for`]).
pub const ROWS_PER_THREAD: usize = 10_000;

/// Processes of this job sharing the machine (MPI ranks on one node; 1 otherwise).
static LOCAL_PROCESSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// Sets how many processes of the job share this machine (the `distributed` module).
#[cfg_attr(not(feature = "distributed"), allow(dead_code))]
pub(crate) fn set_local_processes(n: usize) {
    LOCAL_PROCESSES.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// Number of cores this process may use: the machine's, shared equally among the
/// processes of an MPI job on the machine (at least one).
pub fn cores() -> usize {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    (all / LOCAL_PROCESSES.load(std::sync::atomic::Ordering::Relaxed)).max(1)
}

impl EngineConfig {
    /// Threads actually used.
    pub fn effective_threads(&self) -> usize {
        threads_for(self.scheme == Scheme::Sequential, self.threads)
    }

    /// Whether more threads than cores are asked for.
    pub fn oversubscribed(&self) -> bool {
        self.effective_threads() > cores()
    }

    /// Threads used on `rows` training rows: the configured count (at most one per
    /// row); by default (`threads` = 0) one per core but at most one per
    /// [`ROWS_PER_THREAD`] rows. On small data an epoch takes micro- to milliseconds, so
    /// more threads cannot save time, while the staleness of their updates costs
    /// accuracy: on the panel's sets under 10,000 rows two threads' models ended up to
    /// +28 % further from the optimum than one thread's (mushrooms; README).
    pub fn threads_for(&self, rows: usize) -> usize {
        let t = self.effective_threads();
        if self.threads == 0 {
            t.min((rows / ROWS_PER_THREAD).max(1))
        } else {
            t.min(rows.max(1))
        }
    }

    /// Rows per shuffled block: 64 consecutive rows when there are at least 16,384
    /// rows (so at least 256 blocks to shuffle), which keeps reads streaming: on
    /// RCV1-shaped data an epoch is 3.6x faster than with a per-row shuffle for +0.2 %
    /// test loss, and on a9a 2x faster for no loss (README); 1 (the classic per-row
    /// shuffle) for smaller data.
    pub fn block_for(&self, rows: usize) -> usize {
        match self.shuffle_block {
            0 if rows >= 16_384 => 64,
            0 => 1,
            b => b,
        }
    }

    /// Updates between replica merges: the configured value, or by default 256 for a
    /// replica of hot coordinates; for a whole-model replica,
    /// 128·coords·stride / (mean non-zeros per row) / (threads − 1), at least 256: the
    /// staleness a thread sees (about the interval times the other threads) stays near
    /// 128 model sizes of work whatever the thread count, and at 2 threads a merge costs
    /// 1/128 of the work between two. Measured on RCV1-shaped data, 2 threads (3 epochs,
    /// 5 repeats; speedup over one thread, test loss): every 16 model sizes 1.31–1.46x,
    /// 0.5383; every 64, 1.60–1.74x, 0.5374; every 128, 1.86x, 0.5363; sequential
    /// 0.5406. Lower `--sync-every` if convergence suffers on many cores.
    pub fn sync_interval(
        &self,
        whole_model: bool,
        coords: usize,
        stride: usize,
        mean_nnz: f64,
        threads: usize,
    ) -> usize {
        match self.sync_every {
            0 if whole_model => {
                let others = threads.saturating_sub(1).max(1) as f64;
                ((128.0 * (coords * stride) as f64 / mean_nnz.max(1.0) / others) as usize).max(256)
            }
            0 => 256,
            k => k,
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn check(&self) -> Result<()> {
        check_threads(self.threads)?;
        if self.delay > 1 << 24 {
            return Err(Error::config("delay", "at most 16777216"));
        }
        Ok(())
    }
}

/// The first core this process pins its threads to: 0 for a process alone on its
/// machine; under MPI, each rank on a machine starts after the cores of the ranks before
/// it (set by the `distributed` module), so that two ranks' threads never share a core.
static FIRST_CORE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sets the first core of this process's threads (see [`FIRST_CORE`]).
#[cfg_attr(not(feature = "distributed"), allow(dead_code))]
pub(crate) fn set_first_core(core: usize) {
    FIRST_CORE.store(core, std::sync::atomic::Ordering::Relaxed);
}

/// Pins the current thread to core `w` after the process's first core (modulo the cores
/// available); best effort.
pub(crate) fn pin_current(w: usize) {
    if let Some(ids) = core_affinity::get_core_ids()
        && !ids.is_empty()
    {
        let first = FIRST_CORE.load(std::sync::atomic::Ordering::Relaxed);
        core_affinity::set_for_current(ids[(first + w) % ids.len()]);
    }
}

/// Chooses the replicated coordinates: a byte per coordinate (1 = replicated) and
/// their list, from each coordinate's row count `deg` over `n` rows.
pub(crate) fn hot_set(
    rep: Replication,
    threads: usize,
    deg: &[u32],
    n: usize,
    stride: usize,
) -> (Vec<u8>, Vec<u32>) {
    let coords = deg.len();
    if threads > 1
        && (rep == Replication::All || (rep == Replication::Auto && coords * stride * 4 <= 1 << 20))
    {
        // The whole model (DimmWitted's per-core replica).
        return (vec![1; coords], (0..coords as u32).collect());
    }
    let mut by_freq: Vec<u32> = (0..coords as u32)
        .filter(|&j| deg[j as usize] > 0)
        .collect();
    by_freq.sort_by(|&a, &b| deg[b as usize].cmp(&deg[a as usize]).then(a.cmp(&b)));
    let take = match rep {
        _ if threads <= 1 => 0,
        Replication::None | Replication::All => 0,
        Replication::Top(k) => k.min(by_freq.len()),
        // Worth replicating: a coordinate touched at least 4 times (on average) between
        // two merges, so that merging it (one CAS) costs less than the line bouncing it
        // saves.
        Replication::Auto => by_freq
            .iter()
            .take_while(|&&j| deg[j as usize] as f64 * 256.0 >= 4.0 * n as f64)
            .count(),
    };
    let list: Vec<u32> = by_freq[..take].to_vec();
    let mut hot = vec![0u8; coords];
    for &j in &list {
        hot[j as usize] = 1;
    }
    (hot, list)
}

/// AdaptiveRevision (McMahan & Streeter 2014; ALGORITHMS.md §6) for one coordinate.
/// Slots: [x, ḡ (sum of applied gradients), z (delay-aware accumulator), z' (its running
/// max)]. `g_old` is the ḡ the worker read when it computed `g`; `alpha` the rate.
/// With no delay (ḡ = ḡ_old) this is AdaGrad: x −= α g / √(Σg² + ε).
#[inline(always)]
pub(crate) fn adaptive_revision(
    slots: [f32; 4],
    g: f32,
    g_old: f32,
    alpha: f32,
    eps: f32,
) -> [f32; 4] {
    let [x, gbar, z, zmax] = slots;
    let g_bck = gbar - g_old;
    let z_new = z + g * g + 2.0 * g * g_bck;
    let zmax_new = zmax.max(z_new);
    let eta_old = alpha / (zmax + eps).sqrt();
    let eta = alpha / (zmax_new + eps).sqrt();
    // Apply g, and revise the rate used for the backlog that landed while g was pending.
    let x_new = x - eta * g
        + if g_bck != 0.0 {
            (eta_old - eta) * g_bck
        } else {
            0.0
        };
    [x_new, gbar + g, z_new, zmax_new]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_revision_without_delay_is_adagrad() {
        let mut s = [0.5f32, 0.0, 0.0, 0.0];
        let mut w = 0.5f32;
        let mut acc = 0f32;
        for g in [0.3f32, -1.2, 0.7, 0.05] {
            s = adaptive_revision(s, g, s[1], 0.1, 1e-8);
            acc += g * g;
            w -= 0.1 * g / (acc + 1e-8).sqrt();
            assert!((s[0] - w).abs() < 1e-6);
        }
    }

    #[test]
    fn backlog_of_the_same_sign_shrinks_the_step() {
        // Two gradients of +1 computed from the same read: the second sees the first as
        // backlog, so its accumulator grows by g² + 2·g·g_bck = 3 instead of 1.
        let s0 = [0.0f32, 0.0, 0.0, 0.0];
        let s1 = adaptive_revision(s0, 1.0, 0.0, 1.0, 0.0);
        let s2 = adaptive_revision(s1, 1.0, 0.0, 1.0, 0.0);
        assert_eq!(s2[2], 4.0);
        let plain = -1.0 - 1.0 / 2f32.sqrt();
        assert!(s2[0] > plain, "revised {} vs plain AdaGrad {plain}", s2[0]);
    }

    #[test]
    fn each_model_names_only_its_schemes() {
        for s in Scheme::ALL {
            assert_eq!(Scheme::from_name(s.name()).unwrap(), s);
        }
        for s in MfScheme::ALL {
            assert_eq!(MfScheme::from_name(s.name()).unwrap(), s);
        }
        let e = Scheme::from_name("block").unwrap_err().to_string();
        assert!(e.contains("matrix factorization"), "{e}");
        let e = MfScheme::from_name("round-robin").unwrap_err().to_string();
        assert!(e.contains("for linear models"), "{e}");
        let e = MfScheme::from_name("fast").unwrap_err().to_string();
        assert!(e.contains("unknown scheme `fast`"), "{e}");
        assert_eq!(MfScheme::default(), MfScheme::Block);
        assert_eq!(Scheme::default(), Scheme::Hogwild);
    }

    #[test]
    fn hot_sets() {
        let deg = [100u32, 2, 60, 0, 1];
        assert_eq!(
            hot_set(Replication::Auto, 1, &deg, 100, 1).1,
            Vec::<u32>::new()
        );
        // A small model is replicated whole.
        assert_eq!(
            hot_set(Replication::Auto, 2, &deg, 100, 1).1,
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(
            hot_set(Replication::All, 2, &deg, 100, 1).1,
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(hot_set(Replication::Top(2), 2, &deg, 100, 1).1, vec![0, 2]);
        assert_eq!(
            hot_set(Replication::None, 2, &deg, 100, 1).1,
            Vec::<u32>::new()
        );
        // A large one: coordinates in at least 1.5625 % of the rows (4 per 256 updates).
        let mut big = vec![1u32; 300_000];
        big[7] = 2;
        big[9] = 90;
        assert_eq!(hot_set(Replication::Auto, 2, &big, 100, 1).1, vec![9, 7]);
    }
}
