//! The per-example (and per-mini-batch) update, generic over the optimizer so that the
//! compiler emits one branch-free inner loop per optimizer. It reads and writes the
//! parameters only through [`SharedParams`] (relaxed atomics), so the same code runs
//! in one thread or in several.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::data::SparseDataset;
use crate::model::LossKind;
use crate::optim::{MAX_STATE, Optimizer};
use crate::params::SharedParams;

/// Where the kernel reads and writes parameters. Implementations: [`Direct`] (shared
/// atomics, Hogwild!'s load/compute/store), [`Cas`] (shared atomics, lossless
/// compare-and-swap adds) and [`Replica`] (a thread's private copy of the hot
/// coordinates, shared atomics for the rest).
///
/// `get` and `put` do no bounds checks: they are `unsafe`, to be called with a slot
/// below [`Store::slots`]. Only [`Kernel`] calls them, after checking once per example
/// that the store covers every coordinate of its data ([`Kernel::covers`]).
///
/// # Safety
/// Implementations must make `get` and `put` sound for every flat slot `i < slots()`
/// and every coordinate `j` with `j·stride ≤ i` (`j < slots() / stride`).
pub(crate) unsafe trait Store {
    /// The flat slots this store holds (coordinates × stride).
    fn slots(&self) -> usize;
    /// Flat slot `i` (= j·stride + k, computed by the kernel with a compile-time
    /// stride) of coordinate `j`.
    ///
    /// # Safety
    /// `i < self.slots()` and `j·stride ≤ i`.
    unsafe fn get(&self, j: usize, i: usize) -> f32;
    /// Replaces flat slot `i` of coordinate `j`, which was read as `old`, by `new`.
    ///
    /// # Safety
    /// As [`Store::get`].
    unsafe fn put(&mut self, j: usize, i: usize, old: f32, new: f32);
}

/// Shared atomics, relaxed load / compute / relaxed store: a concurrent update of the
/// same slot may be lost, by design (Hogwild!).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Direct<'a>(pub &'a SharedParams);

// SAFETY: `slots` is the parameters' slot count, and `slot_unchecked` is sound below it.
unsafe impl Store for Direct<'_> {
    fn slots(&self) -> usize {
        self.0.coords() * self.0.stride()
    }
    #[inline(always)]
    unsafe fn get(&self, _j: usize, i: usize) -> f32 {
        // SAFETY: the caller guarantees i < slots() = the parameters' slot count.
        unsafe { self.0.slot_unchecked(i) }
    }
    #[inline(always)]
    unsafe fn put(&mut self, _j: usize, i: usize, _old: f32, new: f32) {
        // SAFETY: as in `get`.
        unsafe { self.0.set_slot_unchecked(i, new) }
    }
}

/// Shared atomics, but each write is a compare-and-swap addition of `new − old`, so
/// concurrent updates of one slot all land (none is lost); costs a CAS loop per write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cas<'a>(pub &'a SharedParams);

// SAFETY: as for `Direct`.
unsafe impl Store for Cas<'_> {
    fn slots(&self) -> usize {
        self.0.coords() * self.0.stride()
    }
    #[inline(always)]
    unsafe fn get(&self, _j: usize, i: usize) -> f32 {
        // SAFETY: the caller guarantees i < slots() = the parameters' slot count.
        unsafe { self.0.slot_unchecked(i) }
    }
    #[inline(always)]
    unsafe fn put(&mut self, _j: usize, i: usize, old: f32, new: f32) {
        self.0.add_slot(i, new - old);
    }
}

/// A thread's private replica of the hot coordinates (DimmWitted's per-core model,
/// HOGWILD++'s local model), merged into the shared parameters every few updates by
/// [`Replica::sync`]; cold coordinates go straight to the shared atomics.
#[derive(Debug)]
pub(crate) struct Replica<'a> {
    shared: &'a SharedParams,
    /// Byte per coordinate: 1 when replicated.
    hot: &'a [u8],
    /// The replicated coordinates.
    hot_list: &'a [u32],
    /// Per coordinate, the factor applied to this thread's change at a merge (see
    /// `merge_weights`).
    merge_weight: &'a [f32],
    /// Private copy, indexed like the shared store (only hot coordinates are used).
    local: Vec<f32>,
    /// The values at the last merge, to compute this thread's delta.
    last: Vec<f32>,
    stride: usize,
}

impl<'a> Replica<'a> {
    /// A replica of `hot_list` over `shared`, in the buffers of an earlier replica (a
    /// worker keeps them from one epoch to the next rather than allocating and faulting
    /// them in again; `Default::default()` for new ones). Only the hot coordinates'
    /// slots are read, and `pull` writes them first.
    pub(crate) fn reuse(
        shared: &'a SharedParams,
        hot: &'a [u8],
        hot_list: &'a [u32],
        merge_weight: &'a [f32],
        (mut local, mut last): (Vec<f32>, Vec<f32>),
    ) -> Self {
        let stride = shared.stride();
        assert!(
            hot.len() == shared.coords() && merge_weight.len() == shared.coords(),
            "one hot flag and merge weight per coordinate"
        );
        local.resize(shared.coords() * stride, 0.0);
        last.resize(shared.coords() * stride, 0.0);
        let mut r = Replica {
            shared,
            hot,
            merge_weight,
            hot_list,
            local,
            last,
            stride,
        };
        r.pull();
        r
    }

    /// The buffers, for the next [`Replica::reuse`].
    pub(crate) fn into_buffers(self) -> (Vec<f32>, Vec<f32>) {
        (self.local, self.last)
    }

    /// Copies the shared values of the hot coordinates into the replica.
    fn pull(&mut self) {
        for &j in self.hot_list {
            for k in 0..self.stride {
                let v = self.shared.get(j as usize, k);
                let i = j as usize * self.stride + k;
                self.local[i] = v;
                self.last[i] = v;
            }
        }
    }

    /// Merges the replica into the shared parameters and takes the merged values back.
    /// Weights (slot 0) merge by adding this thread's change since the last merge, times
    /// the coordinate's merge weight (`merge_weights`), with compare-and-swap, so the
    /// merges of several threads all land. Optimizer state merges by averaging the shared and the local value: a
    /// sum of deltas could drive a decaying average (RMSprop's E[g²]) negative, while
    /// an average of valid states is valid for every optimizer here.
    pub(crate) fn sync(&mut self) {
        self.sync_scaled(1.0);
    }

    /// As [`Replica::sync`], for a replica whose weights are kept as v with true
    /// weights s·v (the lazy L2 form): the scale is folded in, and v = w afterwards.
    fn sync_scaled(&mut self, scale: f32) {
        for &j in self.hot_list {
            let j = j as usize;
            let i = j * self.stride;
            let delta = (self.local[i] * scale - self.last[i]) * self.merge_weight[j];
            if delta != 0.0 {
                self.shared.add(j, 0, delta);
            }
            let w = self.shared.get(j, 0);
            self.local[i] = w;
            self.last[i] = w;
            for k in 1..self.stride {
                // Relaxed load and store: a concurrent merge may win, which is allowed.
                let v = 0.5 * (self.shared.get(j, k) + self.local[i + k]);
                self.shared.set(j, k, v);
                self.local[i + k] = v;
            }
        }
    }
}

/// A whole-model replica: every access is to the thread's own copy (no branch), merged
/// like [`Replica`] by [`Local::sync`].
#[derive(Debug)]
pub(crate) struct Local<'a>(pub Replica<'a>);

impl Local<'_> {
    /// Merges (see [`Replica::sync`]) with this thread's lazy-L2 scale folded in.
    pub(crate) fn sync(&mut self, scale: f32) {
        self.0.sync_scaled(scale);
    }
}

// SAFETY: `slots` is the private copy's length (= the shared slot count, `Replica::reuse`).
unsafe impl Store for Local<'_> {
    fn slots(&self) -> usize {
        self.0.local.len()
    }
    #[inline(always)]
    unsafe fn get(&self, _j: usize, i: usize) -> f32 {
        // SAFETY: the caller guarantees i < slots() = local.len().
        unsafe { *self.0.local.get_unchecked(i) }
    }
    #[inline(always)]
    unsafe fn put(&mut self, _j: usize, i: usize, _old: f32, new: f32) {
        // SAFETY: as in `get`.
        unsafe { *self.0.local.get_unchecked_mut(i) = new }
    }
}

// SAFETY: `slots` is local.len() = the shared slot count, and `hot` has one byte per
// shared coordinate (`Replica::reuse` checks both).
unsafe impl Store for Replica<'_> {
    fn slots(&self) -> usize {
        self.local.len()
    }
    #[inline(always)]
    unsafe fn get(&self, j: usize, i: usize) -> f32 {
        // SAFETY: the caller guarantees i < slots() = local.len() = the shared slot count
        // and j ≤ i / stride < coords = hot.len().
        unsafe {
            if *self.hot.get_unchecked(j) != 0 {
                *self.local.get_unchecked(i)
            } else {
                self.shared.slot_unchecked(i)
            }
        }
    }
    #[inline(always)]
    unsafe fn put(&mut self, j: usize, i: usize, _old: f32, new: f32) {
        // SAFETY: as in `get`.
        unsafe {
            if *self.hot.get_unchecked(j) != 0 {
                *self.local.get_unchecked_mut(i) = new;
            } else {
                self.shared.set_slot_unchecked(i, new);
            }
        }
    }
}

/// Polyak–Ruppert averaging state of one thread, in the sparse form of ALGORITHMS.md
/// §12.2: the iterate is w = a·U (U the stored weights, a the lazy-L2 scale) and the
/// running average w̄ = (A + β·U)/γ, so an update still touches only its row's
/// coordinates (A −= β·ΔU there) and two scalars. With μ_k = 1/k at the k-th averaged
/// update, the recursion γ ← γ/(1 − μ), β ← β + μ·a·γ has the closed form γ = k and
/// β = Σ a over the averaged updates, which is what is kept: with several threads k is
/// the global update count (estimated from the thread's own), so that each thread's A
/// records its own changes of the shared U and the sum of the threads' A is the A of
/// the one global average.
#[derive(Debug, Default)]
pub(crate) struct Averager {
    /// A, one per coordinate (f64: it sums many updates).
    pub a: Vec<f64>,
    pub beta: f64,
    pub gamma: f64,
    /// The global update count from which iterates are averaged.
    pub start: u64,
    /// Whether averaging has started (the first averaged update restarts it).
    pub on: bool,
}

impl Averager {
    /// After global update `t` (1-based), with lazy-L2 scale `scale` after it.
    #[inline(always)]
    pub(crate) fn after_update(&mut self, t: u64, scale: f64) {
        if t < self.start {
            return;
        }
        let k = (t - self.start + 1) as f64;
        if self.on {
            self.beta += scale * (k - self.gamma);
            self.gamma = k;
        } else {
            // The average restarts at the current iterate: w̄ = (0 + k·a·U)/k = w.
            self.a.iter_mut().for_each(|x| *x = 0.0);
            self.beta = k * scale;
            self.gamma = k;
            self.on = true;
        }
    }

    /// The weights U are about to change by a fold or a merge: β·U moves into A
    /// (A ← A + β·U, β ← 0), which keeps w̄ and lets U change freely; `u(j)` reads U.
    pub(crate) fn absorb(&mut self, u: impl Fn(usize) -> f32) {
        if self.on {
            for (j, a) in self.a.iter_mut().enumerate() {
                *a += self.beta * f64::from(u(j));
            }
            self.beta = 0.0;
        }
    }

    /// The thread's average w̄ = (A + β·U)/γ, U read from `store` (slot 0 of each
    /// coordinate, `stride` slots per coordinate).
    pub(crate) fn mean<S: Store>(&self, store: &S, stride: usize) -> Vec<f64> {
        assert_eq!(
            self.a.len() * stride,
            store.slots(),
            "one average per coordinate"
        );
        let u = |j: usize| {
            // SAFETY: j < a.len(), so j·stride < a.len()·stride = store.slots() (checked).
            f64::from(unsafe { store.get(j, j * stride) })
        };
        self.a
            .iter()
            .enumerate()
            .map(|(j, &a)| (a + self.beta * u(j)) / self.gamma)
            .collect()
    }
}

/// A store that records its weight changes in an [`Averager`] (slot 0 of each
/// coordinate: A_j −= β·(new − old)).
#[derive(Debug)]
pub(crate) struct Averaged<'s, S> {
    pub inner: S,
    pub avg: &'s mut Averager,
    stride: usize,
}

impl<S: Store> Averaged<'_, S> {
    /// Runs `change`, which moves U to new values and the lazy scale to the one it
    /// returns (a merge of a replica, a fold), keeping the average: β·U first moves into
    /// A ([`Averager::absorb`]), so U no longer enters w̄ = A/γ until later updates. (Keeping
    /// β instead and dividing it by each fold's scale would grow it by 10⁴ a fold, and
    /// A + β·U would cancel catastrophically.)
    pub(crate) fn jump(&mut self, change: impl FnOnce(&mut S) -> f64) -> f64 {
        let stride = self.stride;
        let inner = &self.inner;
        // SAFETY: j < a.len(), so j·stride < a.len()·stride = inner.slots() (`new`).
        self.avg.absorb(|j| unsafe { inner.get(j, j * stride) });
        change(&mut self.inner)
    }
}

impl<'s, S: Store> Averaged<'s, S> {
    /// Wraps `inner`, whose slots are `stride` per coordinate.
    ///
    /// # Panics
    /// If `avg.a` does not hold one value per coordinate of `inner`.
    pub(crate) fn new(inner: S, avg: &'s mut Averager, stride: usize) -> Self {
        assert!(
            stride >= 1 && avg.a.len() * stride == inner.slots(),
            "one average per coordinate"
        );
        Averaged { inner, avg, stride }
    }
}

// SAFETY: `slots` is the inner store's; `new` established avg.a.len() = slots / stride,
// so a slot i < slots of coordinate j (j·stride ≤ i) has j < avg.a.len().
unsafe impl<S: Store> Store for Averaged<'_, S> {
    fn slots(&self) -> usize {
        self.inner.slots()
    }
    #[inline(always)]
    unsafe fn get(&self, j: usize, i: usize) -> f32 {
        // SAFETY: the caller's guarantee, passed on.
        unsafe { self.inner.get(j, i) }
    }
    #[inline(always)]
    unsafe fn put(&mut self, j: usize, i: usize, old: f32, new: f32) {
        // SAFETY: the caller's guarantee, passed on.
        unsafe { self.inner.put(j, i, old, new) };
        if i == j * self.stride && self.avg.on {
            // SAFETY: j < avg.a.len() (see the impl's comment).
            unsafe {
                *self.avg.a.get_unchecked_mut(j) -= self.avg.beta * f64::from(new - old);
            }
        }
    }
}

/// Everything about an update that is fixed for a run.
#[derive(Debug)]
pub(crate) struct Kernel<'a, O: Optimizer> {
    pub opt: O,
    pub loss: LossKind,
    pub indptr: &'a [usize],
    pub indices: &'a [u32],
    pub values: &'a [f32],
    pub labels: &'a [f32],
    /// Coordinate of the bias (= number of features), when there is one.
    pub bias: Option<usize>,
    /// λ·n/d_j per coordinate: the degree-scaled L2 gradient factor (Hogwild!'s form),
    /// or `None` when L2 is applied in the lazy exact form (or is zero).
    pub l2_degree: Option<&'a [f32]>,
    /// L1 strength λ1 and the per-coordinate degree scale n/d_j it is multiplied by.
    pub l1: Option<(f32, &'a [f32])>,
    /// Gradient noise: (η_noise, γ).
    pub noise: Option<(f32, f32)>,
    /// Coordinates every row may touch (features, and the bias): the bound the unchecked
    /// store accesses rely on. Private, so a kernel is only built by [`Kernel::new`].
    coords: usize,
}

/// What changes from one update to the next.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step<C> {
    /// The optimizer's per-step constants.
    pub ctx: C,
    /// Learning rate (for the L1 threshold).
    pub lr: f32,
    /// Global weight scale s (w = s·v) of the lazy exact L2 form, before this update.
    pub scale_before: f32,
    /// The scale after this update's shrink (1 − ηλ)·s.
    pub scale_after: f32,
    /// 1 / `scale_after`.
    pub inv_scale_after: f32,
    /// Standard deviation of the gradient noise at this step (0 when off).
    pub noise_sd: f32,
}

/// A running sum of losses given as `linear + ln(factor)` parts (see
/// `LossKind::loss_parts_and_dloss`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LossSum {
    linear: f64,
    product: f64,
    logs: f64,
}

impl Default for LossSum {
    fn default() -> Self {
        LossSum {
            linear: 0.0,
            product: 1.0,
            logs: 0.0,
        }
    }
}

impl LossSum {
    #[inline(always)]
    pub(crate) fn add(&mut self, linear: f32, factor: f32) {
        self.linear += f64::from(linear);
        self.product *= f64::from(factor);
        // Factors are at most 2 for the logistic loss (and infinite only on overflow), so
        // folding the product into a logarithm now and then keeps it finite.
        if self.product > 1e250 {
            self.logs += self.product.ln();
            self.product = 1.0;
        }
    }

    /// The total.
    pub(crate) fn total(&self) -> f64 {
        self.linear + self.logs + self.product.ln()
    }
}

/// Scratch space for mini-batches: a dense gradient sum, per-coordinate counts and the
/// list of touched coordinates.
#[derive(Debug, Default)]
pub(crate) struct BatchScratch {
    grad: Vec<f32>,
    count: Vec<u32>,
    touched: Vec<u32>,
}

impl BatchScratch {
    pub(crate) fn new(coords: usize) -> Self {
        BatchScratch {
            grad: vec![0.0; coords],
            count: vec![0; coords],
            touched: Vec::new(),
        }
    }
}

impl<'a, O: Optimizer> Kernel<'a, O> {
    /// Slots per coordinate, known at compile time: the weight and the optimizer state.
    const STRIDE: usize = 1 + O::STATE;

    /// A kernel over `data` (its CSR row pointers `indptr`), with a bias coordinate (the
    /// feature count) when `bias`. Every coordinate a row can name is then below
    /// `data.cols() + bias`: sprs checked the indices against the column count.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        opt: O,
        loss: LossKind,
        data: &'a SparseDataset,
        indptr: &'a [usize],
        bias: bool,
        l2_degree: Option<&'a [f32]>,
        l1: Option<(f32, &'a [f32])>,
        noise: Option<(f32, f32)>,
    ) -> Self {
        let x = data.x();
        assert!(
            indptr.len() == data.rows() + 1 && indptr.last() == Some(&x.nnz()),
            "row pointers of this data"
        );
        let coords = data.cols() + usize::from(bias);
        assert!(l2_degree.is_none_or(|l| l.len() >= coords));
        assert!(l1.is_none_or(|l| l.1.len() >= coords));
        Kernel {
            opt,
            loss,
            indptr,
            indices: x.indices(),
            values: x.data(),
            labels: data.y(),
            bias: bias.then_some(data.cols()),
            l2_degree,
            l1,
            noise,
            coords,
        }
    }

    /// Checks that `p` holds every slot this kernel can touch: the condition under which
    /// the unchecked accesses of [`Kernel::score`] and [`Kernel::apply`] are sound. One
    /// comparison per example (or batch), not per coordinate.
    #[inline(always)]
    fn covers<S: Store>(&self, p: &S) {
        assert!(
            p.slots() >= self.coords * Self::STRIDE,
            "the parameters do not cover the data's coordinates"
        );
    }

    /// The score of row `r` under parameters `p` at weight scale `s`.
    #[inline(always)]
    pub(crate) fn score<S: Store>(&self, p: &S, r: usize, s: f32) -> f32 {
        self.covers(p);
        let (lo, hi) = (self.indptr[r], self.indptr[r + 1]);
        let mut z = 0f32;
        for (&j, &x) in self.indices[lo..hi].iter().zip(&self.values[lo..hi]) {
            let j = j as usize;
            // SAFETY: j < cols ≤ coords (`new`) and `covers` checked coords·STRIDE ≤
            // p.slots(), so i = j·STRIDE < p.slots().
            z += unsafe { p.get(j, j * Self::STRIDE) } * x;
        }
        if let Some(b) = self.bias {
            // SAFETY: the bias is coordinate cols < coords; as above.
            z += unsafe { p.get(b, b * Self::STRIDE) };
        }
        z * s
    }

    /// Applies the gradient of row `r` at loss derivative `dl` (a delayed update).
    pub(crate) fn apply_row<S: Store, R: Rng>(
        &self,
        p: &mut S,
        r: usize,
        dl: f32,
        st: &Step<O::Ctx>,
        rng: &mut R,
    ) {
        self.covers(p);
        let (lo, hi) = (self.indptr[r], self.indptr[r + 1]);
        for (&j, &x) in self.indices[lo..hi].iter().zip(&self.values[lo..hi]) {
            // SAFETY: `covers` above; j < cols ≤ coords.
            unsafe { self.apply::<S, R, false, false>(p, j as usize, dl * x, 1.0, st, rng) };
        }
        if let Some(b) = self.bias {
            // SAFETY: `covers` above; the bias is coordinate cols < coords.
            unsafe { self.apply::<S, R, false, false>(p, b, dl, 1.0, st, rng) };
        }
    }

    /// Applies gradient `g` to coordinate `j`. `weight` scales the per-example
    /// regularization terms (count/B in a mini-batch, 1 for a single example).
    /// `PLAIN` is true when there is no degree-scaled L2, no L1 and no gradient noise:
    /// the compiler then drops those branches from the per-coordinate loop.
    ///
    /// # Safety
    /// `self.covers(p)` held, and `j < self.coords`.
    #[inline(always)]
    unsafe fn apply<S: Store, R: Rng, const PLAIN: bool, const SCALED: bool>(
        &self,
        p: &mut S,
        j: usize,
        mut g: f32,
        weight: f32,
        st: &Step<O::Ctx>,
        rng: &mut R,
    ) {
        let base = j * Self::STRIDE;
        let mut state = [0f32; MAX_STATE];
        for (k, s) in state.iter_mut().enumerate().take(O::STATE) {
            // SAFETY: j < coords and coords·STRIDE ≤ p.slots() (the caller's contract),
            // so base + 1 + k < (j + 1)·STRIDE ≤ p.slots().
            *s = unsafe { p.get(j, base + 1 + k) };
        }
        let old_state = state;
        // SAFETY: as above, base < p.slots().
        let stored = unsafe { p.get(j, base) };
        let mut w = stored;
        if SCALED {
            w *= st.scale_after;
        }
        if !PLAIN && let Some(l2) = self.l2_degree {
            g += weight * l2[j] * w;
        }
        if !PLAIN && st.noise_sd > 0.0 {
            let z: f32 = rng.sample(StandardNormal);
            g += st.noise_sd * z;
        }
        let mut w_new = self.opt.step(&st.ctx, w, g, &mut state[..O::STATE]);
        if !PLAIN && let Some((l1, scale)) = self.l1 {
            // Truncated gradient: shrink toward zero, never across it.
            let thr = st.lr * l1 * scale[j] * weight;
            w_new = w_new.signum() * (w_new.abs() - thr).max(0.0);
        }
        let w_out = if SCALED {
            w_new * st.inv_scale_after
        } else {
            w_new
        };
        // SAFETY: the slots read above.
        unsafe { p.put(j, base, stored, w_out) };
        for k in 0..O::STATE {
            // SAFETY: the slots read above.
            unsafe { p.put(j, base + 1 + k, old_state[k], state[k]) };
        }
    }

    /// True when no per-coordinate extra (degree L2, L1, noise) is configured.
    pub(crate) fn is_plain(&self) -> bool {
        self.l2_degree.is_none() && self.l1.is_none() && self.noise.is_none()
    }

    /// One SGD step on row `r`; adds the loss before the update to `loss`.
    #[inline]
    pub(crate) fn example<S: Store, R: Rng, const PLAIN: bool, const SCALED: bool>(
        &self,
        p: &mut S,
        r: usize,
        st: &Step<O::Ctx>,
        rng: &mut R,
        loss: &mut LossSum,
    ) {
        let y = self.labels[r];
        let z = self.score(&*p, r, st.scale_before);
        let (linear, factor, dl) = self.loss.loss_parts_and_dloss(z, y);
        loss.add(linear, factor);
        let (lo, hi) = (self.indptr[r], self.indptr[r + 1]);
        for (&j, &x) in self.indices[lo..hi].iter().zip(&self.values[lo..hi]) {
            // SAFETY: `score` checked `covers(p)`; j < cols ≤ coords.
            unsafe { self.apply::<S, R, PLAIN, SCALED>(p, j as usize, dl * x, 1.0, st, rng) };
        }
        if let Some(b) = self.bias {
            // SAFETY: as above; the bias is coordinate cols < coords.
            unsafe { self.apply::<S, R, PLAIN, SCALED>(p, b, dl, 1.0, st, rng) };
        }
    }

    /// One mini-batch step on `rows` (all gradients taken at the same parameters, then
    /// averaged); adds the losses before the update to `loss`.
    pub(crate) fn batch<S: Store, R: Rng>(
        &self,
        p: &mut S,
        rows: &[u32],
        st: &Step<O::Ctx>,
        sc: &mut BatchScratch,
        rng: &mut R,
        loss: &mut LossSum,
    ) {
        for &r in rows {
            let r = r as usize;
            let y = self.labels[r];
            let z = self.score(&*p, r, st.scale_before);
            let (linear, factor, dl) = self.loss.loss_parts_and_dloss(z, y);
            loss.add(linear, factor);
            let (lo, hi) = (self.indptr[r], self.indptr[r + 1]);
            let feats = self.indices[lo..hi]
                .iter()
                .zip(&self.values[lo..hi])
                .map(|(&j, &x)| (j, x));
            for (j, x) in feats.chain(self.bias.map(|b| (b as u32, 1.0))) {
                let ju = j as usize;
                if sc.count[ju] == 0 {
                    sc.touched.push(j);
                }
                sc.count[ju] += 1;
                sc.grad[ju] += dl * x;
            }
        }
        let inv_b = 1.0 / rows.len() as f32;
        self.covers(p);
        for &j in &sc.touched {
            let ju = j as usize;
            let weight = sc.count[ju] as f32 * inv_b;
            // SAFETY: `covers` above; touched coordinates are row indices or the bias,
            // all below coords.
            unsafe { self.apply::<S, R, false, true>(p, ju, sc.grad[ju] * inv_b, weight, st, rng) };
            sc.grad[ju] = 0.0;
            sc.count[ju] = 0;
        }
        sc.touched.clear();
    }
}

/// Merge weights for replicas. A thread's change to a coordinate is added whole
/// (Hogwild!'s sum of updates) unless the coordinate is in at least half of the rows:
/// the bias and such features are corrected by every thread, from the same stale value,
/// in the same direction, so summing T changes overshoots by a factor T (on RCV1-shaped
/// data, 3 and 4 threads ended at 50 % accuracy with a drifting bias); their changes are
/// averaged (weight 1/T) instead. Averaging everything (expected-overlap weights) was
/// tried and halved the progress of ordinary features (test loss 0.58 against 0.54).
pub(crate) fn merge_weights(deg: &[u32], n: usize, threads: usize) -> Vec<f32> {
    let t = threads.max(1) as f32;
    deg.iter()
        .map(|&d| if 2 * d as usize >= n { 1.0 / t } else { 1.0 })
        .collect()
}

/// Per-coordinate degree scale n/d_j of the training data (0 for a feature that never
/// occurs; 1 for the bias, which every row has).
pub(crate) fn degree_scale(data: &SparseDataset, bias: bool) -> Vec<f32> {
    let mut deg = vec![0u32; data.cols()];
    for &j in data.x().indices() {
        deg[j as usize] += 1;
    }
    let n = data.rows() as f32;
    let mut s: Vec<f32> = deg
        .iter()
        .map(|&d| if d == 0 { 0.0 } else { n / d as f32 })
        .collect();
    if bias {
        s.push(1.0);
    }
    s
}

/// Loom explores every interleaving of two threads merging hot-coordinate replicas into
/// one shared weight: each thread's change arrives whole (the merge adds with
/// compare-and-swap), so no merged update is lost, whatever the order. (Plain Hogwild!
/// stores may lose an update, which the algorithm allows; merges may not.)
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    #[test]
    fn loom_replica_merges_lose_no_update() {
        loom::model(|| {
            let shared = Arc::new(SharedParams::new(1, 1));
            let workers: Vec<_> = [1.0f32, 2.0]
                .into_iter()
                .map(|step| {
                    let shared = shared.clone();
                    loom::thread::spawn(move || {
                        let (hot, list, weight) = ([1u8], [0u32], [1.0f32]);
                        let mut r =
                            Replica::reuse(&shared, &hot, &list, &weight, Default::default());
                        // SAFETY: slot 0 of the one coordinate, below r.slots() = 1.
                        let old = unsafe { r.get(0, 0) };
                        // SAFETY: as above.
                        unsafe { r.put(0, 0, old, old + step) };
                        r.sync();
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            assert_eq!(shared.get(0, 0), 3.0);
        });
    }
}

/// The kernel's unchecked parameter accesses through every store (run under miri by
/// scripts/check-concurrency.sh): tiny trainings that touch each coordinate, with the
/// bias, mini-batches, and sequential, replicated, plain and lossless Hogwild! threads.
#[cfg(test)]
mod tests {
    use crate::data::SparseDataset;
    use crate::engine::{EngineConfig, Replication, Scheme};
    use crate::optim::OptimizerKind;
    use crate::train::{TrainConfig, fit};

    fn data() -> SparseDataset {
        let rows: Vec<Vec<(u32, f32)>> = (0..24u32)
            .map(|r| vec![(r % 5, 1.0), (5 + r % 3, 0.5), (8, -0.25)])
            .collect();
        let labels: Vec<bool> = (0..24).map(|r| r % 5 < 2).collect();
        SparseDataset::from_rows(&rows, &labels, Some(10)).unwrap()
    }

    #[test]
    fn every_store_trains_through_unchecked_accesses() {
        let d = data();
        for (scheme, threads, replicate, lossless, batch, opt) in [
            (Scheme::Sequential, 1, Replication::Auto, false, 1, "sgd"),
            (Scheme::Sequential, 1, Replication::Auto, false, 4, "adam"),
            (Scheme::Hogwild, 2, Replication::All, false, 1, "adagrad"),
            (Scheme::Hogwild, 2, Replication::Top(3), false, 1, "sgd"),
            (Scheme::Hogwild, 2, Replication::None, false, 1, "momentum"),
            (Scheme::Hogwild, 2, Replication::None, true, 1, "sgd"),
        ] {
            // Averaging (the default) runs on whole replicas or shared weights: the
            // hot-set replica and plain shared cases run without it.
            let average = match replicate {
                Replication::Top(_) | Replication::None if !lossless => None,
                _ => Some(0.5),
            };
            let cfg = TrainConfig {
                epochs: 2,
                batch_size: batch,
                average,
                lr: Some(0.1),
                optimizer: OptimizerKind::from_name(opt).unwrap(),
                engine: EngineConfig {
                    scheme,
                    threads,
                    replicate,
                    lossless,
                    pin: false,
                    ..EngineConfig::default()
                },
                ..TrainConfig::default()
            };
            let out = fit(&d, None, &cfg, |_| {}).unwrap();
            assert!(out.model.is_finite(), "{scheme:?} {replicate:?} {opt}");
            assert_eq!(out.model.weights.len(), 10);
            assert_eq!(out.done.averaged, average.is_some());
        }
    }

    /// The sparse average through puts, a fold of the scale and a restart equals the
    /// running mean of the iterates w = a·U.
    #[test]
    fn the_averaged_store_keeps_the_running_mean() {
        use super::{Averaged, Averager, Direct, Store};
        let p = crate::params::SharedParams::new(3, 2);
        let mut avg = Averager {
            a: vec![0.0; 3],
            start: 2,
            ..Default::default()
        };
        let mut mean = [0f64; 3];
        let mut scale = 1.0f64;
        for t in 1..=6u64 {
            let mut s = Averaged::new(Direct(&p), &mut avg, 2);
            if t == 4 {
                // Fold the scale into U.
                s.jump(|d| {
                    d.0.scale_weights(scale as f32);
                    1.0
                });
                scale = 1.0;
            }
            scale *= 0.5;
            for j in 0..3 {
                // SAFETY: j·2 < 6 = slots.
                unsafe {
                    let old = s.get(j, j * 2);
                    s.put(j, j * 2, old, old + (t as f32) * (j as f32 + 1.0));
                    s.put(j, j * 2 + 1, 0.0, 7.0);
                }
            }
            s.avg.after_update(t, scale);
            if t >= 2 {
                let k = (t - 1) as f64;
                for (j, m) in mean.iter_mut().enumerate() {
                    let w = scale * f64::from(p.get(j, 0));
                    *m += (w - *m) / k;
                }
            }
        }
        let got = avg.mean(&Direct(&p), 2);
        for (g, m) in got.iter().zip(&mean) {
            assert!((g - m).abs() < 1e-9, "{got:?} vs {mean:?}");
        }
    }
}
