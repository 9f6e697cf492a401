//! Shared parameter storage: the weight and optimizer state of every coordinate in one
//! array of atomic `f32`, interleaved per coordinate (`[w, s0, s1]` for a coordinate
//! with two state slots), as Vowpal Wabbit lays out its weights, so one example's
//! update touches one cache line per coordinate.
//!
//! **Memory ordering.** Every access is a `Relaxed` load or store. On x86-64 and
//! AArch64 these compile to plain loads and stores, so a single thread pays nothing for
//! the atomics. Under several threads (the Hogwild! scheme) an update is a relaxed
//! load, a computation and a relaxed store: two threads updating the same coordinate
//! at once may lose one of the two updates. That race is allowed by design (Niu et al.
//! 2011); it is not a data race in Rust's memory model, because every access is atomic.
//! What is not allowed, and cannot happen here, is a torn `f32` (atomics are
//! indivisible) or any non-atomic access to shared parameters.

use std::sync::atomic::Ordering::Relaxed;

#[cfg(not(loom))]
use atomic_float::AtomicF32;
#[cfg(loom)]
use loom_f32::AtomicF32;

/// Under loom, an `AtomicF32` over loom's `AtomicU32` with the same operations (the
/// addition a compare-and-swap loop, as atomic_float's), so the model checker sees every
/// access to the shared parameters.
#[cfg(loom)]
mod loom_f32 {
    use loom::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    pub(crate) struct AtomicF32(AtomicU32);

    impl AtomicF32 {
        pub(crate) fn new(v: f32) -> Self {
            AtomicF32(AtomicU32::new(v.to_bits()))
        }
        pub(crate) fn load(&self, o: Ordering) -> f32 {
            f32::from_bits(self.0.load(o))
        }
        pub(crate) fn store(&self, v: f32, o: Ordering) {
            self.0.store(v.to_bits(), o)
        }
        pub(crate) fn fetch_add(&self, v: f32, o: Ordering) -> f32 {
            let mut cur = self.0.load(o);
            loop {
                let new = (f32::from_bits(cur) + v).to_bits();
                match self.0.compare_exchange_weak(cur, new, o, o) {
                    Ok(_) => return f32::from_bits(cur),
                    Err(seen) => cur = seen,
                }
            }
        }
    }
}

/// Weights and per-coordinate optimizer state, `stride` slots per coordinate.
#[derive(Debug)]
pub struct SharedParams {
    slots: Box<[AtomicF32]>,
    stride: usize,
    coords: usize,
}

impl SharedParams {
    /// `coords` coordinates of `stride` slots each, all zero.
    pub fn new(coords: usize, stride: usize) -> Self {
        assert!(stride >= 1, "a coordinate has at least its weight");
        let slots = (0..coords * stride).map(|_| AtomicF32::new(0.0)).collect();
        SharedParams {
            slots,
            stride,
            coords,
        }
    }

    /// Number of coordinates.
    pub fn coords(&self) -> usize {
        self.coords
    }

    /// Slots per coordinate.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Slot `k` of coordinate `j` (slot 0 is the weight).
    #[inline(always)]
    pub fn get(&self, j: usize, k: usize) -> f32 {
        self.slots[j * self.stride + k].load(Relaxed)
    }

    /// Sets slot `k` of coordinate `j`.
    #[inline(always)]
    pub fn set(&self, j: usize, k: usize, v: f32) {
        self.slots[j * self.stride + k].store(v, Relaxed)
    }

    /// Flat slot `i` (= j·stride + k), without a bounds check.
    ///
    /// # Safety
    /// `i < self.coords() * self.stride()`.
    #[inline(always)]
    pub unsafe fn slot_unchecked(&self, i: usize) -> f32 {
        debug_assert!(i < self.slots.len());
        // SAFETY: the caller guarantees i < slots.len().
        unsafe { self.slots.get_unchecked(i) }.load(Relaxed)
    }

    /// Sets flat slot `i`, without a bounds check.
    ///
    /// # Safety
    /// `i < self.coords() * self.stride()`.
    #[inline(always)]
    pub unsafe fn set_slot_unchecked(&self, i: usize, v: f32) {
        debug_assert!(i < self.slots.len());
        // SAFETY: as in `slot_unchecked`.
        unsafe { self.slots.get_unchecked(i) }.store(v, Relaxed)
    }

    /// Adds `v` to flat slot `i` with a compare-and-swap loop (see [`SharedParams::add`]).
    ///
    /// # Panics
    /// If `i` is out of range.
    #[inline(always)]
    pub fn add_slot(&self, i: usize, v: f32) {
        self.slots[i].fetch_add(v, Relaxed);
    }

    /// Adds `v` to slot `k` of coordinate `j` with a compare-and-swap loop, so that no
    /// concurrent addition is lost (the lossless alternative to load/compute/store).
    #[inline(always)]
    pub fn add(&self, j: usize, k: usize, v: f32) {
        self.slots[j * self.stride + k].fetch_add(v, Relaxed);
    }

    /// A copy of every coordinate's weight (slot 0).
    pub fn weights(&self) -> Vec<f32> {
        (0..self.coords).map(|j| self.get(j, 0)).collect()
    }

    /// Multiplies every weight by `s` (used to fold a global scale factor back in).
    pub fn scale_weights(&self, s: f32) {
        for j in 0..self.coords {
            self.set(j, 0, self.get(j, 0) * s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_slots() {
        let p = SharedParams::new(3, 3);
        p.set(1, 0, 2.0);
        p.set(1, 2, 5.0);
        p.add(1, 2, 1.5);
        assert_eq!(p.weights(), vec![0.0, 2.0, 0.0]);
        assert_eq!(p.get(1, 2), 6.5);
        p.scale_weights(0.5);
        assert_eq!(p.get(1, 0), 1.0);
        assert_eq!(p.get(1, 2), 6.5);
    }

    #[test]
    fn cas_add_loses_nothing_across_threads() {
        let p = SharedParams::new(1, 1);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| (0..10_000).for_each(|_| p.add(0, 0, 1.0)));
            }
        });
        assert_eq!(p.get(0, 0), 20_000.0);
    }
}
