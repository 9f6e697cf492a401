//! FPSG's block scheduling (Chin, Zhuang, Juan & Lin 2015; ALGORITHMS.md §9.2).
//!
//! Users and items are shuffled (seeded) into `nb` row-blocks and `nb` column-blocks,
//! so the rating matrix becomes an `nb` × `nb` grid; the ratings of a block are kept
//! sorted by user, then item, for cache locality. Every epoch each non-empty block is
//! trained exactly once. A thread asks the [`Scheduler`] for a *free* block, one whose
//! row-block and column-block no running block shares, so no two threads ever touch
//! the same user or item row: the updates are conflict-free and take no lock on the
//! parameters. Among the free blocks the scheduler picks the one whose row and column
//! have the most blocks left this epoch (ties broken at random), which keeps free
//! blocks available until the end of the epoch.
//!
//! **Synchronization.** The scheduler's mutex is the only lock. A thread returns its
//! block and takes the next one under it, so the release of a row-block by one thread
//! happens-before its acquisition by the next: that is what makes the exclusive (plain
//! `&mut`) access to the rows sound. A thread waits on the condition variable only
//! while blocks remain and none is free, which means another thread is running a
//! block and will wake it when done: the scheduler cannot deadlock.

#[cfg(loom)]
use loom::sync::{Condvar, Mutex};
#[cfg(not(loom))]
use std::sync::{Condvar, Mutex};

use rand::Rng;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::kernel::Entry;

/// The ratings cut into an `nb` × `nb` grid.
#[derive(Debug)]
pub(crate) struct Grid {
    pub(crate) nb: usize,
    /// Block `rb * nb + cb`'s ratings.
    pub(crate) blocks: Vec<Vec<Entry>>,
}

impl Grid {
    /// Buckets `entries` into `nb` × `nb` blocks after a seeded shuffle of users and items.
    pub(crate) fn new(entries: &[Entry], users: usize, items: usize, nb: usize, seed: u64) -> Grid {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xB10C_5EED);
        let assign = |n: usize, rng: &mut Xoshiro256PlusPlus| {
            let mut perm: Vec<u32> = (0..n as u32).collect();
            perm.shuffle(rng);
            perm.iter()
                .map(|&pos| (pos as usize * nb / n.max(1)) as u32)
                .collect::<Vec<u32>>()
        };
        let ub = assign(users, &mut rng);
        let ib = assign(items, &mut rng);
        let mut blocks = vec![Vec::new(); nb * nb];
        for e in entries {
            blocks[ub[e.u as usize] as usize * nb + ib[e.i as usize] as usize].push(*e);
        }
        for b in &mut blocks {
            b.sort_unstable_by_key(|e| (e.u, e.i));
        }
        Grid { nb, blocks }
    }
}

#[derive(Debug)]
struct State {
    row_busy: Vec<bool>,
    col_busy: Vec<bool>,
    /// Blocks not yet handed out this epoch (scanned in place of the whole grid).
    todo: Vec<usize>,
    row_left: Vec<u32>,
    col_left: Vec<u32>,
    left: usize,
    rng: Xoshiro256PlusPlus,
}

/// Hands out free blocks for one epoch.
#[derive(Debug)]
pub(crate) struct Scheduler {
    nb: usize,
    state: Mutex<State>,
    wake: Condvar,
}

impl Scheduler {
    /// A scheduler for one epoch over the non-empty blocks of `grid`.
    pub(crate) fn new(grid: &Grid, seed: u64) -> Scheduler {
        let nb = grid.nb;
        let todo: Vec<usize> = (0..nb * nb)
            .filter(|&b| !grid.blocks[b].is_empty())
            .collect();
        let mut row_left = vec![0u32; nb];
        let mut col_left = vec![0u32; nb];
        for &b in &todo {
            row_left[b / nb] += 1;
            col_left[b % nb] += 1;
        }
        Scheduler {
            nb,
            state: Mutex::new(State {
                row_busy: vec![false; nb],
                col_busy: vec![false; nb],
                left: todo.len(),
                todo,
                row_left,
                col_left,
                rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            }),
            wake: Condvar::new(),
        }
    }

    /// Returns block `done` (if any) and takes the next free one; `None` when every
    /// block of the epoch has been handed out.
    pub(crate) fn next(&self, done: Option<usize>) -> Option<usize> {
        let nb = self.nb;
        // A poisoned lock means another worker panicked; the state is still consistent
        // (every mutation below completes before the guard drops), so carry on.
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = done {
            Self::free(&mut st, nb, b);
            self.wake.notify_all();
        }
        loop {
            if st.left == 0 {
                return None;
            }
            let best = Self::pick(&mut st, nb);
            if let Some(pos) = best {
                let b = st.todo.swap_remove(pos);
                let (r, c) = (b / nb, b % nb);
                st.left -= 1;
                st.row_left[r] -= 1;
                st.col_left[c] -= 1;
                st.row_busy[r] = true;
                st.col_busy[c] = true;
                return Some(b);
            }
            st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Returns block `b` without taking another: for a worker that unwinds from a panic
    /// while holding it, so the others are not left waiting for its rows forever.
    pub(crate) fn release(&self, b: usize) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Self::free(&mut st, self.nb, b);
        self.wake.notify_all();
    }

    /// Position in `todo` of the free block whose row and column have the most blocks
    /// left (reservoir sampling among ties), if any block is free.
    fn pick(st: &mut State, nb: usize) -> Option<usize> {
        let mut best: Option<(u32, usize)> = None;
        let mut ties = 0u32;
        for (pos, &b) in st.todo.iter().enumerate() {
            let (r, c) = (b / nb, b % nb);
            if st.row_busy[r] || st.col_busy[c] {
                continue;
            }
            let score = st.row_left[r] + st.col_left[c];
            match best {
                Some((s, _)) if s > score => {}
                Some((s, _)) if s == score => {
                    ties += 1;
                    if st.rng.random_range(0..ties) == 0 {
                        best = Some((score, pos));
                    }
                }
                _ => {
                    ties = 1;
                    best = Some((score, pos));
                }
            }
        }
        best.map(|(_, pos)| pos)
    }

    fn free(st: &mut State, nb: usize, b: usize) {
        st.row_busy[b / nb] = false;
        st.col_busy[b % nb] = false;
    }
}

/// Returns its block to the scheduler if dropped during a panic (see
/// [`Scheduler::release`]); on the normal path the block goes back through `next`.
pub(crate) struct Held<'a> {
    pub(crate) sched: &'a Scheduler,
    pub(crate) block: usize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.sched.release(self.block);
        }
    }
}

/// Loom explores every interleaving of two workers on a 2 × 2 grid: no two running
/// blocks ever share a row- or column-block, every block runs exactly once, and the
/// workers never deadlock (loom fails a model whose threads all block).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

    #[test]
    fn loom_blocks_are_exclusive_and_each_runs_once() {
        loom::model(|| {
            let entries: Vec<Entry> = (0..2u32)
                .flat_map(|u| (0..2u32).map(move |i| Entry { u, i, r: 1.0 }))
                .collect();
            let grid = Grid::new(&entries, 2, 2, 2, 3);
            let sched = Arc::new(Scheduler::new(&grid, 1));
            let nb = grid.nb;
            let rows: Arc<Vec<AtomicBool>> =
                Arc::new((0..nb).map(|_| AtomicBool::new(false)).collect());
            let cols: Arc<Vec<AtomicBool>> =
                Arc::new((0..nb).map(|_| AtomicBool::new(false)).collect());
            let runs: Arc<Vec<AtomicUsize>> =
                Arc::new((0..nb * nb).map(|_| AtomicUsize::new(0)).collect());
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let (sched, rows, cols, runs) =
                        (sched.clone(), rows.clone(), cols.clone(), runs.clone());
                    loom::thread::spawn(move || {
                        let mut prev = None;
                        while let Some(b) = sched.next(prev) {
                            let (r, c) = (b / nb, b % nb);
                            assert!(!rows[r].swap(true, SeqCst), "row-block {r} shared");
                            assert!(!cols[c].swap(true, SeqCst), "column-block {c} shared");
                            runs[b].fetch_add(1, SeqCst);
                            rows[r].store(false, SeqCst);
                            cols[c].store(false, SeqCst);
                            prev = Some(b);
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            for (b, block) in grid.blocks.iter().enumerate() {
                let want = usize::from(!block.is_empty());
                assert_eq!(runs[b].load(SeqCst), want, "block {b}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_keeps_every_rating_once_and_sorted() {
        let entries: Vec<Entry> = (0..1000u32)
            .map(|n| Entry {
                u: n % 37,
                i: (n * 13) % 29,
                r: n as f32,
            })
            .collect();
        let g = Grid::new(&entries, 37, 29, 5, 1);
        let mut all: Vec<f32> = g.blocks.iter().flatten().map(|e| e.r).collect();
        all.sort_by(f32::total_cmp);
        assert_eq!(all, (0..1000).map(|n| n as f32).collect::<Vec<_>>());
        for b in &g.blocks {
            assert!(b.windows(2).all(|w| (w[0].u, w[0].i) <= (w[1].u, w[1].i)));
        }
        // A user lives in exactly one row-block, an item in one column-block.
        let mut ub = vec![usize::MAX; 37];
        for (k, b) in g.blocks.iter().enumerate() {
            for e in b {
                assert!(ub[e.u as usize] == usize::MAX || ub[e.u as usize] == k / 5);
                ub[e.u as usize] = k / 5;
            }
        }
    }

    #[test]
    fn a_block_dropped_in_a_panic_is_released() {
        let entries: Vec<Entry> = (0..400u32)
            .map(|n| Entry {
                u: n % 20,
                i: (n * 3) % 20,
                r: 0.0,
            })
            .collect();
        let g = Grid::new(&entries, 20, 20, 3, 1);
        let s = Scheduler::new(&g, 1);
        let r = std::thread::scope(|sc| {
            sc.spawn(|| {
                let b = s.next(None).unwrap();
                let _held = Held {
                    sched: &s,
                    block: b,
                };
                panic!("worker fails while holding block {b}");
            })
            .join()
        });
        assert!(r.is_err());
        // Every other block can still be handed out: nothing waits for the lost one.
        let mut prev = None;
        let mut n = 0;
        while let Some(b) = s.next(prev) {
            prev = Some(b);
            n += 1;
        }
        assert_eq!(n + 1, g.blocks.iter().filter(|b| !b.is_empty()).count());
    }

    #[test]
    fn concurrent_blocks_never_share_a_row_or_column_and_all_run_once() {
        let entries: Vec<Entry> = (0..5000u32)
            .map(|n| Entry {
                u: n % 101,
                i: (n * 7) % 97,
                r: 0.0,
            })
            .collect();
        let g = Grid::new(&entries, 101, 97, 7, 3);
        let s = Scheduler::new(&g, 9);
        let running = Mutex::new(Vec::<usize>::new());
        let handed = Mutex::new(Vec::<usize>::new());
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    let mut prev = None;
                    while let Some(b) = s.next(prev) {
                        {
                            let mut run = running.lock().unwrap();
                            for &o in run.iter() {
                                assert!(o / 7 != b / 7 && o % 7 != b % 7, "{o} and {b} conflict");
                            }
                            run.push(b);
                        }
                        handed.lock().unwrap().push(b);
                        std::thread::yield_now();
                        running.lock().unwrap().retain(|&o| o != b);
                        prev = Some(b);
                    }
                });
            }
        });
        let mut h = handed.into_inner().unwrap();
        h.sort_unstable();
        let want: Vec<usize> = (0..49).filter(|&b| !g.blocks[b].is_empty()).collect();
        assert_eq!(h, want);
    }
}
