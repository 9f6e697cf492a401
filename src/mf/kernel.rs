//! The per-rating update of biased matrix factorization, written so that the loops over
//! the K factors vectorize: a row's K factors are contiguous `f32`, the dot product
//! keeps 8 independent partial sums (a single running sum is a serial dependency the
//! compiler may not reorder), and the factor updates are element-wise. On x86-64 the
//! loops are compiled twice, for the baseline target (SSE2, 4 lanes) and for AVX2
//! (8 lanes), and the AVX2 copy is chosen at run time when the CPU has it.
//!
//! Units: the trainer works on standardized ratings (r − μ)/σ; this module sees only
//! those. Each row carries [`AUX`] extra slots: its bias, the AdaGrad accumulators of its
//! factors and of its bias, and its L2 strength λ (constant; degree-scaled or not).
//!
//! Update for one rating with error e = r − (b_u + b_i + p·q) (ALGORITHMS.md §9.1):
//! * `sgd`: b_u += η(e − λ_u b_u); b_i += η(e − λ_i b_i);
//!   p ← p + η(e q − λ_u p); q ← q + η(e p_old − λ_i q).
//! * `adagrad`, with LIBMF's row-wise accumulators (Chin et al. PAKDD 2015): one
//!   accumulator per factor row, G_p += mean_k g_k² with g = λ_u p − e q, then
//!   p ← p − η g/√G_p (the same for q with the old p); each bias has its own scalar
//!   accumulator. Accumulators start at 1, as in LIBMF, which keeps the first steps
//!   near η. Unlike LIBMF, which steps with the accumulator from before the current
//!   gradient, the step uses the updated one (the usual AdaGrad order).

/// Extra slots per row: bias, AdaGrad accumulators (factors, bias), λ.
pub const AUX: usize = 4;
/// Slot of the bias in a row's extra slots.
pub const BIAS: usize = 0;
/// Slot of the factors' AdaGrad accumulator.
pub const G_FACTORS: usize = 1;
/// Slot of the bias's AdaGrad accumulator.
pub const G_BIAS: usize = 2;
/// Slot of the row's L2 strength.
pub const LAMBDA: usize = 3;

/// One training rating: dense user and item indices and the standardized rating.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Entry {
    /// Dense user index.
    pub u: u32,
    /// Dense item index.
    pub i: u32,
    /// Standardized rating.
    pub r: f32,
}

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Plain SGD.
    Sgd,
    /// AdaGrad with one accumulator per row (LIBMF's).
    AdaGrad,
}

/// Sum of 8 partial sums, pairwise (the order a vector reduction takes).
#[inline(always)]
fn hsum8(a: [f32; 8]) -> f32 {
    ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
}

/// Dot product with 8 partial sums (vectorizes).
#[inline(always)]
pub fn dot(p: &[f32], q: &[f32]) -> f32 {
    let q = &q[..p.len()];
    let mut acc = [0f32; 8];
    let pc = p.chunks_exact(8);
    let qc = q.chunks_exact(8);
    let (pr, qr) = (pc.remainder(), qc.remainder());
    for (a, b) in pc.zip(qc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    let mut s = hsum8(acc);
    for (a, b) in pr.iter().zip(qr) {
        s += a * b;
    }
    s
}

/// Sums of squares of the factor gradients λ_u·p − e·q and λ_i·q − e·p, in one pass
/// with 8 partial sums each.
#[inline(always)]
fn grad_sq2(p: &[f32], q: &[f32], lu: f32, li: f32, e: f32) -> (f32, f32) {
    let q = &q[..p.len()];
    let (mut ap, mut aq) = ([0f32; 8], [0f32; 8]);
    let pc = p.chunks_exact(8);
    let qc = q.chunks_exact(8);
    let (pr, qr) = (pc.remainder(), qc.remainder());
    for (a, b) in pc.zip(qc) {
        for l in 0..8 {
            let gp = lu * a[l] - e * b[l];
            let gq = li * b[l] - e * a[l];
            ap[l] += gp * gp;
            aq[l] += gq * gq;
        }
    }
    let (mut sp, mut sq) = (hsum8(ap), hsum8(aq));
    for (a, b) in pr.iter().zip(qr) {
        let gp = lu * a - e * b;
        let gq = li * b - e * a;
        sp += gp * gp;
        sq += gq * gq;
    }
    (sp, sq)
}

/// One SGD step on a rating `r`; returns the error before the step.
/// `pa`/`qa` are the rows' [`AUX`] slots.
#[inline(always)]
pub fn sgd_update(
    p: &mut [f32],
    pa: &mut [f32],
    q: &mut [f32],
    qa: &mut [f32],
    r: f32,
    lr: f32,
) -> f32 {
    let q = &mut q[..p.len()];
    let e = r - (pa[BIAS] + qa[BIAS] + dot(p, q));
    let (lu, li) = (pa[LAMBDA], qa[LAMBDA]);
    pa[BIAS] += lr * (e - pa[LAMBDA] * pa[BIAS]);
    qa[BIAS] += lr * (e - qa[LAMBDA] * qa[BIAS]);
    let (cu, ci, le) = (1.0 - lr * lu, 1.0 - lr * li, lr * e);
    for (pk, qk) in p.iter_mut().zip(q.iter_mut()) {
        let old = *pk;
        *pk = cu * old + le * *qk;
        *qk = ci * *qk + le * old;
    }
    e
}

/// One AdaGrad step (one accumulator per row); returns the error before the step.
#[inline(always)]
pub fn adagrad_update(
    p: &mut [f32],
    pa: &mut [f32],
    q: &mut [f32],
    qa: &mut [f32],
    r: f32,
    lr: f32,
) -> f32 {
    let q = &mut q[..p.len()];
    let k = p.len().max(1) as f32;
    let e = r - (pa[BIAS] + qa[BIAS] + dot(p, q));
    let (lu, li) = (pa[LAMBDA], qa[LAMBDA]);
    let (sp, sq) = grad_sq2(p, q, lu, li, e);
    let (gu, gi) = (lu * pa[BIAS] - e, li * qa[BIAS] - e);
    pa[G_FACTORS] += sp / k;
    qa[G_FACTORS] += sq / k;
    pa[G_BIAS] += gu * gu;
    qa[G_BIAS] += gi * gi;
    // The four step sizes at once (one vector square root and division).
    let acc = [pa[G_FACTORS], qa[G_FACTORS], pa[G_BIAS], qa[G_BIAS]];
    let [ep, eq, eu, ei] = acc.map(|g| lr / g.sqrt());
    for (pk, qk) in p.iter_mut().zip(q.iter_mut()) {
        let old = *pk;
        *pk = old - ep * (lu * old - e * *qk);
        *qk -= eq * (li * *qk - e * old);
    }
    pa[BIAS] -= eu * gu;
    qa[BIAS] -= ei * gi;
    e
}

/// One step of any per-coordinate optimizer of [`crate::optim`] on a rating, for the
/// rules without a vectorized kernel here (momentum, Adam and the rest): the gradient
/// of ½e² + ½λ‖·‖² is computed per coordinate (g = λ_u p − e q for p, with the old p for
/// q) and handed to `O::step` with that coordinate's state. `ps`/`qs` hold `O::STATE`
/// slots for each of the K factors, then for the bias. Returns the error before the
/// step. With [`crate::optim::Sgd`] this is [`sgd_update`] (tested).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn generic_update<O: crate::optim::Optimizer>(
    o: &O,
    ctx: &O::Ctx,
    p: &mut [f32],
    pa: &mut [f32],
    ps: &mut [f32],
    q: &mut [f32],
    qa: &mut [f32],
    qs: &mut [f32],
    r: f32,
) -> f32 {
    let k = p.len();
    let q = &mut q[..k];
    let e = r - (pa[BIAS] + qa[BIAS] + dot(p, q));
    let (lu, li, s) = (pa[LAMBDA], qa[LAMBDA], O::STATE);
    for j in 0..k {
        let (pj, qj) = (p[j], q[j]);
        p[j] = o.step(ctx, pj, lu * pj - e * qj, &mut ps[j * s..(j + 1) * s]);
        q[j] = o.step(ctx, qj, li * qj - e * pj, &mut qs[j * s..(j + 1) * s]);
    }
    let (bu, bi) = (pa[BIAS], qa[BIAS]);
    pa[BIAS] = o.step(ctx, bu, lu * bu - e, &mut ps[k * s..(k + 1) * s]);
    qa[BIAS] = o.step(ctx, bi, li * bi - e, &mut qs[k * s..(k + 1) * s]);
    e
}

/// The textbook scalar SGD step (one running sum, one index loop), the reference the
/// vectorized [`sgd_update`] is tested and benchmarked against.
#[inline(never)]
pub fn sgd_update_naive(
    p: &mut [f32],
    pa: &mut [f32],
    q: &mut [f32],
    qa: &mut [f32],
    r: f32,
    lr: f32,
) -> f32 {
    let mut s = 0.0f32;
    for k in 0..p.len() {
        s += p[k] * q[k];
    }
    let e = r - (pa[BIAS] + qa[BIAS] + s);
    pa[BIAS] += lr * (e - pa[LAMBDA] * pa[BIAS]);
    qa[BIAS] += lr * (e - qa[LAMBDA] * qa[BIAS]);
    for k in 0..p.len() {
        let old = p[k];
        p[k] += lr * (e * q[k] - pa[LAMBDA] * old);
        q[k] += lr * (e * old - qa[LAMBDA] * q[k]);
    }
    e
}

/// Where a pass finds the rows of a rating: user factors and extra slots, item factors
/// and extra slots.
///
/// # Safety
/// An implementation returns slices that do not overlap one another, and that no other
/// code accesses while they live, for every `(u, i)` the pass is given.
pub(crate) unsafe trait RowSource {
    /// The four rows of rating `(u, i)`.
    ///
    /// # Safety
    /// The caller drops the slices before asking for the next rating, and `u`, `i` are
    /// in range.
    #[allow(clippy::type_complexity, clippy::mut_from_ref)]
    unsafe fn rows(&self, u: u32, i: u32) -> (&mut [f32], &mut [f32], &mut [f32], &mut [f32]);
}

#[inline(always)]
unsafe fn pass_body<R: RowSource, const ADA: bool>(src: &R, entries: &[Entry], lr: f32) -> f64 {
    // Written out rather than through a shared loop taking the update as a closure:
    // that form measured 12-20 % slower for SGD here (the kernel is the hot path).
    let mut se = 0.0f64;
    for en in entries {
        // SAFETY: forwarded from the caller of `pass`: the indices are in range and the
        // rows are this pass's alone; each borrow ends with the iteration.
        let (p, pa, q, qa) = unsafe { src.rows(en.u, en.i) };
        let e = if ADA {
            adagrad_update(p, pa, q, qa, en.r, lr)
        } else {
            sgd_update(p, pa, q, qa, en.r, lr)
        };
        se += f64::from(e * e);
    }
    se
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pass_avx2<R: RowSource>(src: &R, entries: &[Entry], lr: f32, rule: Rule) -> f64 {
    // SAFETY: forwarded from `pass`.
    unsafe {
        match rule {
            Rule::Sgd => pass_body::<R, false>(src, entries, lr),
            Rule::AdaGrad => pass_body::<R, true>(src, entries, lr),
        }
    }
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Trains on `entries` in order; returns the sum of squared errors (standardized units)
/// seen before each step.
///
/// # Safety
/// Every index in `entries` is in range for `src`, and `src`'s rows for them are not
/// accessed by anyone else during the call.
#[inline]
pub(crate) unsafe fn pass<R: RowSource>(
    src: &R,
    entries: &[Entry],
    lr: f32,
    rule: Rule,
    simd: bool,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if simd && has_avx2() {
        // SAFETY: the CPU has AVX2 (checked above); the rest is the caller's contract.
        return unsafe { pass_avx2(src, entries, lr, rule) };
    }
    let _ = simd;
    // SAFETY: the caller's contract.
    unsafe {
        match rule {
            Rule::Sgd => pass_body::<R, false>(src, entries, lr),
            Rule::AdaGrad => pass_body::<R, true>(src, entries, lr),
        }
    }
}

/// Plain row-major factor matrices, borrowed mutably, for [`sgd_pass`].
struct SliceRows {
    p: *mut f32,
    pa: *mut f32,
    q: *mut f32,
    qa: *mut f32,
    k: usize,
}

// SAFETY: the four pointers come from four distinct `&mut [f32]` borrowed for the whole
// pass (so nobody else accesses them); distinct rows of one matrix never overlap, and
// `sgd_pass` checks every index against the matrix sizes before the pass.
unsafe impl RowSource for SliceRows {
    #[inline(always)]
    unsafe fn rows(&self, u: u32, i: u32) -> (&mut [f32], &mut [f32], &mut [f32], &mut [f32]) {
        let (u, i, k) = (u as usize, i as usize, self.k);
        // SAFETY: see the impl's comment; indices were checked by `sgd_pass`.
        unsafe {
            (
                std::slice::from_raw_parts_mut(self.p.add(u * k), k),
                std::slice::from_raw_parts_mut(self.pa.add(u * AUX), AUX),
                std::slice::from_raw_parts_mut(self.q.add(i * k), k),
                std::slice::from_raw_parts_mut(self.qa.add(i * AUX), AUX),
            )
        }
    }
}

/// Which code runs a [`sgd_pass`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// [`sgd_update_naive`], the scalar loop.
    Naive,
    /// [`sgd_update`] compiled for the baseline target (SSE2 on x86-64).
    Baseline,
    /// [`sgd_update`], AVX2 when the CPU has it (what training uses).
    Best,
}

/// One pass of SGD over `entries` on plain matrices: `p` is users × `k` factors, `pa`
/// users × [`AUX`] slots, `q` and `qa` the same for items. Returns the sum of squared
/// errors. For benchmarks and tests of the kernels; training uses the same kernels on
/// its shared tables.
///
/// # Panics
/// If a matrix size is not a multiple of its row width, or an entry is out of range.
#[allow(clippy::too_many_arguments)]
pub fn sgd_pass(
    variant: Variant,
    k: usize,
    p: &mut [f32],
    pa: &mut [f32],
    q: &mut [f32],
    qa: &mut [f32],
    entries: &[Entry],
    lr: f32,
) -> f64 {
    let users = p.len() / k.max(1);
    let items = q.len() / k.max(1);
    assert!(p.len() == users * k && pa.len() == users * AUX);
    assert!(q.len() == items * k && qa.len() == items * AUX);
    assert!(
        entries
            .iter()
            .all(|e| (e.u as usize) < users && (e.i as usize) < items),
        "entry out of range"
    );
    let src = SliceRows {
        p: p.as_mut_ptr(),
        pa: pa.as_mut_ptr(),
        q: q.as_mut_ptr(),
        qa: qa.as_mut_ptr(),
        k,
    };
    match variant {
        Variant::Naive => {
            let mut se = 0.0;
            for en in entries {
                // SAFETY: indices checked above; each borrow ends with the iteration.
                let (pu, pau, qi, qai) = unsafe { src.rows(en.u, en.i) };
                let e = sgd_update_naive(pu, pau, qi, qai, en.r, lr);
                se += f64::from(e * e);
            }
            se
        }
        // SAFETY: indices checked above; the matrices are borrowed for the whole pass.
        Variant::Baseline => unsafe { pass(&src, entries, lr, Rule::Sgd, false) },
        // SAFETY: as above.
        Variant::Best => unsafe { pass(&src, entries, lr, Rule::Sgd, true) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(k: usize, seed: u32) -> (Vec<f32>, Vec<f32>) {
        let f = (0..k)
            .map(|j| (((j as u32).wrapping_mul(2654435761u32) ^ seed) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        (f, vec![0.1, 1.0, 1.0, 0.05])
    }

    #[test]
    fn vectorized_sgd_matches_the_scalar_loop_and_the_equations() {
        for k in [1, 7, 8, 32, 37] {
            let (mut p, mut pa) = rows(k, 1);
            let (mut q, mut qa) = rows(k, 2);
            let (mut p2, mut pa2, mut q2, mut qa2) = (p.clone(), pa.clone(), q.clone(), qa.clone());
            // Direct transcription of ALGORITHMS.md §9.1.
            let (lr, r) = (0.05f32, 1.3f32);
            let pred: f64 = f64::from(pa[0] + qa[0])
                + p.iter().zip(&q).map(|(a, b)| f64::from(a * b)).sum::<f64>();
            let e_ref = f64::from(r) - pred;
            let p_ref: Vec<f64> = (0..k)
                .map(|j| {
                    f64::from(p[j]) + 0.05 * (e_ref * f64::from(q[j]) - 0.05 * f64::from(p[j]))
                })
                .collect();
            let q_ref: Vec<f64> = (0..k)
                .map(|j| {
                    f64::from(q[j]) + 0.05 * (e_ref * f64::from(p[j]) - 0.05 * f64::from(q[j]))
                })
                .collect();
            let e1 = sgd_update(&mut p, &mut pa, &mut q, &mut qa, r, lr);
            let e2 = sgd_update_naive(&mut p2, &mut pa2, &mut q2, &mut qa2, r, lr);
            assert!((f64::from(e1) - e_ref).abs() < 1e-5 && (e1 - e2).abs() < 1e-5);
            for j in 0..k {
                assert!((f64::from(p[j]) - p_ref[j]).abs() < 1e-5, "k={k} p[{j}]");
                assert!((f64::from(q[j]) - q_ref[j]).abs() < 1e-5, "k={k} q[{j}]");
                assert!((p[j] - p2[j]).abs() < 1e-6 && (q[j] - q2[j]).abs() < 1e-6);
            }
            let b_ref = 0.1 + 0.05 * (e_ref - 0.05 * 0.1);
            assert!((f64::from(pa[BIAS]) - b_ref).abs() < 1e-6);
        }
    }

    #[test]
    fn generic_update_with_sgd_is_the_sgd_kernel_and_momentum_keeps_velocity() {
        use crate::optim::{Momentum, Optimizer, Sgd};
        let k = 9;
        let (mut p, mut pa) = rows(k, 5);
        let (mut q, mut qa) = rows(k, 6);
        let (mut p2, mut pa2, mut q2, mut qa2) = (p.clone(), pa.clone(), q.clone(), qa.clone());
        let lr = 0.07;
        let e1 = sgd_update(&mut p, &mut pa, &mut q, &mut qa, 0.9, lr);
        let (mut ps, mut qs) = (vec![], vec![]);
        let e2 = generic_update(
            &Sgd,
            &Sgd.ctx(lr, 1),
            &mut p2,
            &mut pa2,
            &mut ps,
            &mut q2,
            &mut qa2,
            &mut qs,
            0.9,
        );
        assert!((e1 - e2).abs() < 1e-6);
        for j in 0..k {
            assert!((p[j] - p2[j]).abs() < 1e-6 && (q[j] - q2[j]).abs() < 1e-6);
        }
        assert!((pa[BIAS] - pa2[BIAS]).abs() < 1e-6);
        // Momentum: the state holds each coordinate's velocity (K factors + the bias).
        let m = Momentum::default();
        let (mut ps, mut qs) = (vec![0.0; k + 1], vec![0.0; k + 1]);
        let p0 = p.clone();
        let e = generic_update(
            &m,
            &m.ctx(lr, 1),
            &mut p,
            &mut pa,
            &mut ps,
            &mut q,
            &mut qa,
            &mut qs,
            0.9,
        );
        assert!(e.is_finite());
        for j in 0..k {
            assert!((p[j] - (p0[j] - ps[j])).abs() < 1e-6);
        }
        assert!(ps.iter().any(|&v| v != 0.0));
    }

    #[test]
    fn adagrad_follows_its_equations() {
        let k = 12;
        let (mut p, mut pa) = rows(k, 3);
        let (mut q, mut qa) = rows(k, 4);
        let (p0, q0) = (p.clone(), q.clone());
        let (lr, r) = (0.1f32, -0.7f32);
        let e = r - (pa[0] + qa[0] + p0.iter().zip(&q0).map(|(a, b)| a * b).sum::<f32>());
        let gp: Vec<f32> = (0..k).map(|j| 0.05 * p0[j] - e * q0[j]).collect();
        let gq: Vec<f32> = (0..k).map(|j| 0.05 * q0[j] - e * p0[j]).collect();
        let gp_acc = 1.0 + gp.iter().map(|g| g * g).sum::<f32>() / k as f32;
        let gq_acc = 1.0 + gq.iter().map(|g| g * g).sum::<f32>() / k as f32;
        let e1 = adagrad_update(&mut p, &mut pa, &mut q, &mut qa, r, lr);
        assert!((e1 - e).abs() < 1e-6);
        assert!((pa[G_FACTORS] - gp_acc).abs() < 1e-6);
        for j in 0..k {
            assert!((p[j] - (p0[j] - lr * gp[j] / gp_acc.sqrt())).abs() < 1e-6);
            assert!((q[j] - (q0[j] - lr * gq[j] / gq_acc.sqrt())).abs() < 1e-6);
        }
        let gb = 0.05 * 0.1 - e;
        assert!((pa[BIAS] - (0.1 - lr * gb / (1.0 + gb * gb).sqrt())).abs() < 1e-6);
    }

    #[test]
    fn every_pass_variant_agrees() {
        let (k, users, items) = (32, 5, 4);
        let entries: Vec<Entry> = (0..200u32)
            .map(|n| Entry {
                u: n % users,
                i: (n * 7) % items,
                r: ((n % 5) as f32 - 2.0) * 0.5,
            })
            .collect();
        let run = |v: Variant| {
            let mut p: Vec<f32> = (0..users as usize * k)
                .map(|j| (j % 13) as f32 * 0.01)
                .collect();
            let mut q: Vec<f32> = (0..items as usize * k)
                .map(|j| (j % 11) as f32 * 0.01)
                .collect();
            let mut pa = [0.0, 1.0, 1.0, 0.02].repeat(users as usize);
            let mut qa = [0.0, 1.0, 1.0, 0.02].repeat(items as usize);
            let se = sgd_pass(v, k, &mut p, &mut pa, &mut q, &mut qa, &entries, 0.01);
            (se, p)
        };
        let (a, pa) = run(Variant::Naive);
        for v in [Variant::Baseline, Variant::Best] {
            let (b, pb) = run(v);
            assert!((a - b).abs() < 1e-3 * a.max(1.0), "{v:?}: {a} vs {b}");
            assert!(pa.iter().zip(&pb).all(|(x, y)| (x - y).abs() < 1e-4));
        }
    }
}
