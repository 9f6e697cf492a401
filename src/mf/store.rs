//! Factor storage shared by the training threads: a table of `rows` rows of `width`
//! contiguous `f32`, each row starting on a 64-byte cache line when `width` is a
//! multiple of 16 (rank 32: a row is two cache lines).
//!
//! The cells are atomics (`AtomicF32`, the same in-memory representation as `f32`)
//! so that two ways of access are both sound:
//! * **Shared** ([`Table::load_row`], [`Table::store_row`]): relaxed atomic loads and
//!   stores, used by the Hogwild! scheme. Two threads may work on the same row at
//!   once; one's stores may overwrite the other's (lost updates, and a row read while
//!   another thread writes it may mix old and new elements). These races are allowed
//!   by design (Niu et al. 2011) and are not data races: every access is atomic.
//! * **Exclusive** ([`Table::row_mut`]): a plain `&mut [f32]` over a row, which lets the
//!   compiler vectorize the factor loop. Only sound while no other thread touches that
//!   row at all; the sequential scheme (one thread), the locked scheme (under the
//!   lock) and the block scheduler (a row belongs to one running block, handed over
//!   through the scheduler's mutex) guarantee that. Mixing the two ways on one row at
//!   the same time is not allowed, and no scheme does.

use std::sync::atomic::Ordering::Relaxed;

use atomic_float::AtomicF32;

/// `rows` × `width` cells, row-major, cache-line aligned.
#[derive(Debug)]
pub(crate) struct Table {
    cells: Box<[AtomicF32]>,
    offset: usize,
    rows: usize,
    width: usize,
}

impl Table {
    /// A table with every cell from `init(row, column)`.
    pub(crate) fn new(
        rows: usize,
        width: usize,
        mut init: impl FnMut(usize, usize) -> f32,
    ) -> Self {
        // 16 spare cells let the first row start on a 64-byte boundary.
        let cells: Box<[AtomicF32]> = (0..rows * width + 16)
            .map(|_| AtomicF32::new(0.0))
            .collect();
        let addr = cells.as_ptr() as usize;
        let offset = ((64 - addr % 64) % 64) / 4;
        let t = Table {
            cells,
            offset,
            rows,
            width,
        };
        for r in 0..rows {
            for c in 0..width {
                t.cells[offset + r * width + c].store(init(r, c), Relaxed);
            }
        }
        t
    }

    /// Row `r` by relaxed atomic loads into `out` (`out.len() == width`).
    #[inline(always)]
    pub(crate) fn load_row(&self, r: usize, out: &mut [f32]) {
        let base = self.offset + r * self.width;
        for (o, c) in out.iter_mut().zip(&self.cells[base..base + self.width]) {
            *o = c.load(Relaxed);
        }
    }

    /// Stores `src` into row `r` by relaxed atomic stores.
    #[inline(always)]
    pub(crate) fn store_row(&self, r: usize, src: &[f32]) {
        let base = self.offset + r * self.width;
        for (c, v) in self.cells[base..base + self.width].iter().zip(src) {
            c.store(*v, Relaxed);
        }
    }

    /// Row `r` as a plain mutable slice.
    ///
    /// # Safety
    /// `r < rows`, and while the slice lives no other access to row `r` happens, from
    /// this thread or another (see the module docs for the schemes that ensure it).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn row_mut(&self, r: usize) -> &mut [f32] {
        debug_assert!(r < self.rows);
        let base = self.offset + r * self.width;
        // SAFETY: `AtomicF32` is `repr(transparent)` over `AtomicU32`, which has the
        // size, alignment and bit validity of `u32`, so the cells may be viewed as
        // `f32`. The pointer comes from the whole slice (its provenance covers every
        // cell), the cells live in `UnsafeCell`s (mutation through a shared reference
        // is allowed), the range is in bounds (`r < rows`), and the caller guarantees
        // that no other access to this row overlaps the returned borrow.
        unsafe {
            let p = (self.cells.as_ptr() as *mut f32).add(base);
            std::slice::from_raw_parts_mut(p, self.width)
        }
    }

    /// Sets every cell, row-major, from `values` (as many as the cells).
    #[cfg_attr(not(feature = "distributed"), allow(dead_code))]
    pub(crate) fn set_all(&self, values: impl Iterator<Item = f32>) {
        for (c, v) in self.cells[self.offset..self.offset + self.rows * self.width]
            .iter()
            .zip(values)
        {
            c.store(v, Relaxed);
        }
    }

    /// A copy of every cell, row-major.
    pub(crate) fn to_vec(&self) -> Vec<f32> {
        self.cells[self.offset..self.offset + self.rows * self.width]
            .iter()
            .map(|c| c.load(Relaxed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_aligned_and_both_access_paths_agree() {
        let t = Table::new(3, 16, |r, c| (r * 100 + c) as f32);
        // SAFETY: single thread, no other borrow of row 1.
        let row = unsafe { t.row_mut(1) };
        assert_eq!(row.as_ptr() as usize % 64, 0);
        assert_eq!(row[3], 103.0);
        row[3] = -1.0;
        let mut out = vec![0.0; 16];
        t.load_row(1, &mut out);
        assert_eq!(out[3], -1.0);
        out[0] = 7.0;
        t.store_row(2, &out);
        assert_eq!(t.to_vec()[32], 7.0);
    }
}
