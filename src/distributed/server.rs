//! The served schemes, Downpour and delay-tolerant AdaGrad (ALGORITHMS.md §6, §7): rank 0
//! holds the parameters and applies every gradient pushed to it, with AdaGrad
//! (downpour) or AdaptiveRevision (delay-tolerant); every rank trains on its shard.
//!
//! A worker rank fetches the parameters its next `n_fetch` rows touch, computes its rows'
//! gradients against them, and pushes them every `n_push` rows, each row's gradient
//! separately, so the server makes one update per row as a single process would; under
//! delay-tolerant each gradient travels with the ḡ (sum of applied gradients) it was
//! computed against, so the server knows the backlog that landed since. Rank 0 works on
//! the served parameters directly (no delay) and serves the other ranks' messages every
//! `n_push` of its own rows and, once through its shard, until every rank has finished
//! the epoch. The epoch ends on every rank alike: the server's weights are broadcast and
//! the figures of the shards summed, so every rank takes the same decisions (`tol`,
//! stop requests) and returns the same model.
//!
//! Messages are `u32` vectors (floats as their bits), point to point:
//! - worker → server, tag [`TO_SERVER`]: `[PUSH, epoch, rows, (nnz, j…, g…, [ḡ_old…])…,
//!   requested, j…]` or `[DONE, epoch]`;
//! - server → worker, tag [`TO_WORKER`]: `[x_j…, [ḡ_j…]]` for the requested j, in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

use mpi::traits::*;

use super::{DistConfig, DistScheme, Job};
use crate::data::SparseDataset;
use crate::driver::{Epoch, Plan};
use crate::engine::adaptive_revision;
use crate::error::{Error, Result};
use crate::metrics;
use crate::model::LinearModel;
use crate::train::{DoneReport, EpochReport, L2Form, Progress, TrainConfig, TrainOutcome};

const TO_SERVER: i32 = 11;
const TO_WORKER: i32 = 12;
const PUSH: u32 = 1;
const DONE: u32 = 2;

/// Receives the probed message `msg` of `u32`s.
fn receive(msg: mpi::point_to_point::Message, status: &mpi::point_to_point::Status) -> Vec<u32> {
    let n = status.count(u32::equivalent_datatype()).max(0) as usize;
    let mut buf = vec![0u32; n];
    msg.matched_receive_into(&mut buf[..]);
    buf
}

/// Everything an epoch needs, on every rank.
struct Run<'a> {
    job: &'a Job,
    shard: &'a SparseDataset,
    cfg: &'a TrainConfig,
    dist: &'a DistConfig,
    /// Delay-tolerant (AdaptiveRevision) rather than downpour (AdaGrad).
    revise: bool,
    bias: Option<usize>,
    lambda: f32,
    /// Degree-scaled L2: λ·n/deg(j) per touch (Hogwild!'s form).
    l2_scale: Vec<f32>,
    eps: f32,
    /// Rank 0: the served slots [x, ḡ, z, z'] per coordinate (AdaGrad uses x and z').
    slots: Vec<[f32; 4]>,
    /// Other ranks: the fetched x and ḡ per coordinate.
    x: Vec<f32>,
    gbar: Vec<f32>,
    /// Scratch: a stamp per coordinate (deduplicates a fetch's coordinates).
    stamp: Vec<u32>,
    stamp_now: u32,
    perm: Vec<u32>,
    /// This rank's delay, when it is the slowed one (`DistConfig::slow`).
    slow: Option<std::time::Duration>,
    /// A slowed rank's messages not yet sent: (when, message, coordinates requested).
    link: std::collections::VecDeque<(Instant, Vec<u32>, Vec<u32>)>,
    /// A slowed rank's requests sent and not yet answered, in order.
    awaited: std::collections::VecDeque<Vec<u32>>,
    /// Replies received while a send waited, in order.
    inbox: std::collections::VecDeque<Vec<u32>>,
}

impl<'a> Run<'a> {
    /// A row's coordinates and values, the bias last.
    fn coords(&self, r: usize) -> impl Iterator<Item = (usize, f32)> + use<'a> {
        let (idx, val) = self.shard.row(r);
        idx.iter()
            .zip(val)
            .map(|(&j, &v)| (j as usize, v))
            .chain(self.bias.map(|b| (b, 1.0)))
    }

    /// The server's update of coordinate `j` by gradient `g` computed against ḡ `g_old`
    /// (downpour: AdaGrad, with no backlog).
    fn apply(&mut self, j: usize, g: f32, g_old: f32, lr: f32) {
        let s = self.slots[j];
        let g_old = if self.revise { g_old } else { s[1] };
        self.slots[j] = adaptive_revision(s, g, g_old, lr, self.eps);
    }

    /// Rank 0: serves every waiting message; returns the DONE messages of `epoch` seen.
    fn serve(&mut self, epoch: u32, lr: f32) -> Result<usize> {
        let mut done = 0;
        loop {
            let t = Instant::now();
            let world = self.job.mpi();
            let Some((msg, status)) = world
                .any_process()
                .immediate_matched_probe_with_tag(TO_SERVER)
            else {
                return Ok(done);
            };
            let data = receive(msg, &status);
            let src = status.source_rank();
            drop(world);
            let bytes = 4 * data.len();
            let reply = self.handle(&data, src, epoch, lr, &mut done)?;
            if let Some(reply) = reply {
                let world = self.job.mpi();
                let dest = world.process_at_rank(src);
                mpi::request::scope(|scope| {
                    let req = dest.immediate_send_with_tag(scope, &reply[..], TO_WORKER);
                    super::comm::complete(
                        self.job.rank(),
                        self.job.size(),
                        &world,
                        self.dist.timeout,
                        &format!("sending parameters to rank {src}"),
                        req,
                    );
                });
                self.job
                    .count(bytes + 4 * reply.len(), t.elapsed().as_secs_f64());
            } else {
                self.job.count(bytes, t.elapsed().as_secs_f64());
            }
        }
    }

    /// Rank 0: applies one message from rank `src`; the reply to send, if any.
    fn handle(
        &mut self,
        m: &[u32],
        src: i32,
        epoch: u32,
        lr: f32,
        done: &mut usize,
    ) -> Result<Option<Vec<u32>>> {
        let bad = || {
            Error::config(
                "distributed",
                format!("rank 0: a malformed message from rank {src} (a bug)"),
            )
        };
        match m {
            [DONE, e] if *e == epoch => {
                *done += 1;
                Ok(None)
            }
            [PUSH, e, rows, rest @ ..] if *e == epoch => {
                let mut at = 0;
                let per = if self.revise { 3 } else { 2 };
                for _ in 0..*rows {
                    let nnz = *rest.get(at).ok_or_else(bad)? as usize;
                    let body = rest.get(at + 1..at + 1 + per * nnz).ok_or_else(bad)?;
                    for k in 0..nnz {
                        let j = body[k] as usize;
                        if j >= self.slots.len() {
                            return Err(bad());
                        }
                        let g = f32::from_bits(body[nnz + k]);
                        let g_old = if self.revise {
                            f32::from_bits(body[2 * nnz + k])
                        } else {
                            0.0
                        };
                        self.apply(j, g, g_old, lr);
                    }
                    at += 1 + per * nnz;
                }
                let wanted = *rest.get(at).ok_or_else(bad)? as usize;
                let req = rest.get(at + 1..at + 1 + wanted).ok_or_else(bad)?;
                if wanted == 0 {
                    return Ok(None);
                }
                let mut reply = Vec::with_capacity(wanted * (1 + usize::from(self.revise)));
                for &j in req {
                    let s = self.slots.get(j as usize).ok_or_else(bad)?;
                    reply.push(s[0].to_bits());
                }
                if self.revise {
                    reply.extend(req.iter().map(|&j| self.slots[j as usize][1].to_bits()));
                }
                Ok(Some(reply))
            }
            _ => Err(bad()),
        }
    }

    /// A worker rank: sends `msg` to the server (bounded wait). While the send waits,
    /// replies that arrive are received into the inbox: the server may itself be
    /// waiting to send one before it reads our message (a slowed rank has several
    /// requests in flight), and neither side may wait on the other.
    fn send(&mut self, msg: &[u32]) {
        let t = Instant::now();
        let job = self.job;
        let (rank, size, timeout) = (job.rank(), job.size(), self.dist.timeout);
        let world = job.mpi();
        let server = world.process_at_rank(0);
        let inbox = &mut self.inbox;
        let mut bytes = 4 * msg.len();
        mpi::request::scope(|scope| {
            let mut req = Some(server.immediate_send_with_tag(scope, msg, TO_SERVER));
            super::comm::wait(
                rank,
                size,
                &world,
                timeout,
                "pushing to rank 0",
                || match req.take().map(|r| r.test()) {
                    Some(Ok(_)) | None => true,
                    Some(Err(r)) => {
                        req = Some(r);
                        if let Some((m, status)) =
                            server.immediate_matched_probe_with_tag(TO_WORKER)
                        {
                            let reply = receive(m, &status);
                            bytes += 4 * reply.len();
                            inbox.push_back(reply);
                        }
                        false
                    }
                },
            );
        });
        drop(world);
        job.count(bytes, t.elapsed().as_secs_f64());
    }

    /// A worker rank: the server's next reply; waits for it (bounded) when `block`.
    fn reply(&mut self, block: bool) -> Option<Vec<u32>> {
        if let Some(r) = self.inbox.pop_front() {
            return Some(r);
        }
        let t = Instant::now();
        let (rank, size, timeout) = (self.job.rank(), self.job.size(), self.dist.timeout);
        let world = self.job.mpi();
        let server = world.process_at_rank(0);
        let mut got = server.immediate_matched_probe_with_tag(TO_WORKER);
        if got.is_none() && block {
            super::comm::wait(
                rank,
                size,
                &world,
                timeout,
                "fetching parameters from rank 0",
                || {
                    got = server.immediate_matched_probe_with_tag(TO_WORKER);
                    got.is_some()
                },
            );
        }
        let reply = got.map(|(msg, status)| receive(msg, &status));
        drop(world);
        let bytes = reply.as_ref().map_or(0, |r| 4 * r.len());
        self.job.count(bytes, t.elapsed().as_secs_f64());
        reply
    }

    /// A worker rank: stores the parameters `reply` for coordinates `requested`.
    fn store(&mut self, requested: &[u32], reply: &[u32]) {
        let n = requested.len();
        for (k, &j) in requested.iter().enumerate() {
            self.x[j as usize] = f32::from_bits(reply[k]);
            if self.revise {
                self.gbar[j as usize] = f32::from_bits(reply[n + k]);
            }
        }
    }

    /// A worker rank: sends `msg` and, when it requested parameters, stores them: at once
    /// (waiting for the reply), or, on a slowed rank, as a slow link would: the message
    /// leaves after the rank's delay and the rank goes on computing with the parameters
    /// it has until the reply comes.
    fn exchange(&mut self, msg: Vec<u32>, requested: Vec<u32>) {
        match self.slow {
            None => {
                self.send(&msg);
                if !requested.is_empty() {
                    let reply = self.reply(true).expect("waited for");
                    self.store(&requested, &reply);
                }
            }
            Some(d) => {
                self.link.push_back((Instant::now() + d, msg, requested));
                self.pump(false);
            }
        }
    }

    /// A slowed rank: sends the messages whose delay is over and stores the replies that
    /// arrived; with `flush`, waits until every message is sent and answered.
    fn pump(&mut self, flush: bool) {
        loop {
            while let Some((due, ..)) = self.link.front() {
                if *due > Instant::now() {
                    if !flush {
                        break;
                    }
                    std::thread::sleep(*due - Instant::now());
                }
                let (_, msg, requested) = self.link.pop_front().expect("non-empty");
                self.send(&msg);
                if !requested.is_empty() {
                    self.awaited.push_back(requested);
                }
            }
            while !self.awaited.is_empty() {
                let Some(reply) = self.reply(flush) else {
                    break;
                };
                let requested = self.awaited.pop_front().expect("non-empty");
                self.store(&requested, &reply);
            }
            if !flush || (self.link.is_empty() && self.awaited.is_empty()) {
                return;
            }
        }
    }

    /// The distinct coordinates of rows `perm[from..to]`.
    fn wanted(&mut self, from: usize, to: usize) -> Vec<u32> {
        self.stamp_now = self.stamp_now.wrapping_add(1);
        if self.stamp_now == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.stamp_now = 1;
        }
        let mut out = Vec::new();
        for k in from..to {
            let r = self.perm[k] as usize;
            let (idx, _) = self.shard.row(r);
            for j in idx.iter().map(|&j| j as usize).chain(self.bias) {
                if self.stamp[j] != self.stamp_now {
                    self.stamp[j] = self.stamp_now;
                    out.push(j as u32);
                }
            }
        }
        out
    }

    /// One epoch of this rank's rows at rate `lr`: (progressive loss sum, updates).
    fn epoch(&mut self, epoch: usize, lr: f32, tick: &mut dyn FnMut(usize)) -> Result<(f64, u64)> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(
            self.cfg.seed
                ^ (self.job.rank() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03),
        );
        let mut perm = std::mem::take(&mut self.perm);
        perm.clear();
        perm.extend(0..self.shard.rows() as u32);
        perm.shuffle(&mut rng);
        self.perm = perm;
        let e = epoch as u32;
        let (n, n_push, n_fetch) = (self.perm.len(), self.dist.n_push, self.dist.n_fetch);
        let slow = self.slow;
        let mut loss = 0f64;
        if self.job.rank() == 0 {
            // Ranks that finished the epoch (one may finish before rank 0 does).
            let mut done = 0;
            for k in 0..n {
                let r = self.perm[k] as usize;
                let z: f32 = self.coords(r).map(|(j, v)| self.slots[j][0] * v).sum();
                let y = self.shard.y()[r];
                loss += f64::from(self.cfg.loss.loss(z, y));
                let dl = self.cfg.loss.dloss(z, y);
                // The row borrows the shard, not `self`: no copy of it per update.
                for (j, v) in self.coords(r) {
                    let g = dl * v + self.lambda * self.l2_scale[j] * self.slots[j][0];
                    self.apply(j, g, self.slots[j][1], lr);
                }
                if (k + 1) % n_push == 0 {
                    if let Some(d) = slow {
                        std::thread::sleep(d);
                    }
                    done += self.serve(e, lr)?;
                    if (k + 1) % 1024 == 0 {
                        tick(k + 1);
                    }
                }
            }
            // Serve the others until each has finished the epoch; the time not spent
            // on their messages is waiting.
            let (idle_from, comm_from) = (Instant::now(), self.job.comm_so_far());
            let mut last = Instant::now();
            while done + 1 < self.job.size() {
                let got = self.serve(e, lr)?;
                done += got;
                if got > 0 {
                    last = Instant::now();
                }
                if last.elapsed() > self.dist.timeout {
                    eprintln!(
                        "error: rank 0 of {}: {} rank(s) did not finish epoch {} within {} s; a rank died or hangs",
                        self.job.size(),
                        self.job.size() - 1 - done,
                        epoch + 1,
                        self.dist.timeout.as_secs_f64()
                    );
                    self.job.abort(3);
                }
                std::thread::yield_now();
            }
            let served = self.job.comm_so_far() - comm_from;
            self.job
                .count_wait((idle_from.elapsed().as_secs_f64() - served).max(0.0));
        } else {
            let first = self.wanted(0, n_fetch.min(n));
            let mut msg = vec![PUSH, e, 0, first.len() as u32];
            msg.extend_from_slice(&first);
            self.exchange(msg, first);
            let mut msg = Vec::new();
            let per = if self.revise { 3 } else { 2 };
            let mut rows = 0u32;
            msg.extend_from_slice(&[PUSH, e, 0]);
            for k in 0..n {
                let r = self.perm[k] as usize;
                let z: f32 = self.coords(r).map(|(j, v)| self.x[j] * v).sum();
                let y = self.shard.y()[r];
                loss += f64::from(self.cfg.loss.loss(z, y));
                let dl = self.cfg.loss.dloss(z, y);
                let at = msg.len();
                let nnz = self.coords(r).count();
                msg.push(nnz as u32);
                msg.resize(at + 1 + per * nnz, 0);
                for (i, (j, v)) in self.coords(r).enumerate() {
                    let g = dl * v + self.lambda * self.l2_scale[j] * self.x[j];
                    msg[at + 1 + i] = j as u32;
                    msg[at + 1 + nnz + i] = g.to_bits();
                    if self.revise {
                        msg[at + 1 + 2 * nnz + i] = self.gbar[j].to_bits();
                    }
                }
                rows += 1;
                if (k + 1) % n_push == 0 || k + 1 == n {
                    msg[2] = rows;
                    let next = if (k + 1) % n_fetch == 0 && k + 1 < n {
                        self.wanted(k + 1, (k + 1 + n_fetch).min(n))
                    } else {
                        Vec::new()
                    };
                    msg.push(next.len() as u32);
                    msg.extend_from_slice(&next);
                    self.exchange(std::mem::take(&mut msg), next);
                    msg.extend_from_slice(&[PUSH, e, 0]);
                    rows = 0;
                    if (k + 1) % 1024 < n_push {
                        tick(k + 1);
                    }
                }
            }
            self.pump(true);
            self.send(&[DONE, e]);
        }
        Ok((loss, n as u64))
    }
}

/// Trains with rank 0 serving (see the module docs).
#[allow(clippy::too_many_arguments)]
pub(super) fn fit(
    job: &Job,
    shard: &SparseDataset,
    valid: Option<&SparseDataset>,
    cfg: &TrainConfig,
    dist: &DistConfig,
    want_stop: &AtomicBool,
    agreed: &AtomicBool,
    progress: &mut dyn FnMut(Progress<'_>),
    stop: &std::cell::Cell<bool>,
) -> Result<TrainOutcome> {
    let total_rows = job.sum_usize(shard.rows(), dist.timeout)?;
    let lambda = cfg.effective_l2(total_rows);
    let mut run = Run::new(job, shard, cfg, dist, lambda);
    let plan = Plan {
        epochs: cfg.epochs,
        early_stop: None,
        schedule: cfg.effective_schedule(),
        base_lr: cfg.lr.unwrap_or(0.1),
        tol: cfg.tol,
    };
    let mut model = LinearModel {
        loss: cfg.loss,
        weights: vec![0.0; shard.cols()],
        bias: 0.0,
        meta: serde_json::Value::Null,
        index_base: shard.index_base(),
        classes: shard.classes(),
    };
    let mut history: Vec<EpochReport> = Vec::new();
    let mut total = job.take_stats(dist.scheme);
    let driven = crate::driver::drive(&plan, stop, |epoch, lr, _keep| {
        let start = Instant::now();
        let trained = run.epoch(epoch, lr, &mut |done| {
            progress(Progress::Examples { epoch, done })
        })?;
        let seconds = start.elapsed().as_secs_f64();
        let stops = want_stop.load(Ordering::Relaxed);
        let (ep, rep, stop_now) =
            run.end_epoch((epoch, lr, seconds), trained, stops, &mut model, valid)?;
        agreed.store(stop_now, Ordering::Relaxed);
        total = total.plus(rep.comm.unwrap_or_default());
        progress(Progress::Epoch(&rep));
        history.push(rep);
        Ok(ep)
    })?;
    let final_metrics = valid.map(|v| metrics::evaluate(&model, v)).transpose()?;
    let done = DoneReport {
        model: cfg.loss.name(),
        optimizer: cfg.optimizer.name(),
        scheme: "sequential",
        threads: 1,
        oversubscribed: false,
        epochs: history.len(),
        train_seconds: driven.train_seconds,
        objective: history.last().map_or(f64::NAN, |r| r.objective),
        duality_gap: None,
        converged: driven.converged,
        averaged: false,
        test_loss: final_metrics.map(|m| m.loss),
        test_accuracy: final_metrics.map(|m| m.accuracy),
        test_auc: final_metrics.and_then(|m| m.auc),
        stopped_early: false,
        stopped_by_caller: driven.stopped_by_caller,
        best_epoch: driven.epochs,
        lr: plan.base_lr,
        lr_calibrated: false,
        l2: lambda,
        l2_form: L2Form::Degree,
        replicated: 0,
        merge_every: None,
        shuffle_block: 1,
        comm: Some(total),
    };
    model.meta = serde_json::json!({
        "optimizer": cfg.optimizer,
        "lr": plan.base_lr,
        "l2": lambda,
        "l1": cfg.l1,
        "l2_form": L2Form::Degree,
        "epochs": history.len(),
        "best_epoch": driven.epochs,
        "seed": cfg.seed,
        "n_push": dist.n_push,
        "n_fetch": dist.n_fetch,
        "wildsgd": env!("CARGO_PKG_VERSION"),
    });
    Ok(TrainOutcome {
        model,
        epochs: history,
        done,
    })
}

impl<'a> Run<'a> {
    /// This rank's state: the served slots on rank 0, the fetched parameters elsewhere.
    fn new(
        job: &'a Job,
        shard: &'a SparseDataset,
        cfg: &'a TrainConfig,
        dist: &'a DistConfig,
        lambda: f64,
    ) -> Self {
        let coords = shard.cols() + usize::from(cfg.bias);
        let eps = match cfg.optimizer {
            crate::optim::OptimizerKind::AdaGrad(a) => a.eps,
            _ => 1e-8,
        };
        let mut l2_scale = crate::train::degree_scale(shard, cfg.bias);
        if cfg.bias {
            // The bias is not regularized by the sparse form (as in the engine's degree form).
            *l2_scale.last_mut().expect("bias") = 0.0;
        }
        let rank0 = job.rank() == 0;
        let (served, fetched) = if rank0 { (coords, 0) } else { (0, coords) };
        Run {
            job,
            shard,
            cfg,
            dist,
            revise: dist.scheme == DistScheme::DelayTolerant,
            bias: cfg.bias.then_some(shard.cols()),
            lambda: lambda as f32,
            l2_scale,
            eps,
            slots: vec![[0.0; 4]; served],
            x: vec![0.0; fetched],
            gbar: vec![0.0; fetched],
            stamp: vec![0; coords],
            stamp_now: 0,
            perm: Vec::new(),
            slow: dist.slow.filter(|s| s.0 == job.rank()).map(|s| s.1),
            link: Default::default(),
            awaited: Default::default(),
            inbox: Default::default(),
        }
    }

    /// The end of an epoch on every rank alike: the server's weights into `model`, the
    /// shards' figures summed (with the ranks' stop requests: whether any rank asked is
    /// returned), divergence checks, evaluation on `valid`, the report.
    fn end_epoch(
        &self,
        (epoch, lr, seconds): (usize, f32, f64),
        (loss, updates): (f64, u64),
        want_stop: bool,
        model: &mut LinearModel,
        valid: Option<&SparseDataset>,
    ) -> Result<(Epoch<()>, EpochReport, bool)> {
        let (job, shard, timeout) = (self.job, self.shard, self.dist.timeout);
        let mut w: Vec<f32> = if job.rank() == 0 {
            self.slots.iter().map(|s| s[0]).collect()
        } else {
            vec![0.0; self.x.len()]
        };
        job.broadcast_f32(
            &mut w,
            timeout,
            &format!("receiving the weights after epoch {}", epoch + 1),
        );
        let d = shard.cols();
        model.weights.copy_from_slice(&w[..d]);
        model.bias = if self.bias.is_some() { w[d] } else { 0.0 };
        let shard_loss = crate::train::objective(model, shard, 0.0, 0.0) * shard.rows() as f64;
        let mut sums = [
            loss,
            updates as f64,
            shard.rows() as f64,
            shard.nnz() as f64,
            shard_loss,
            f64::from(u8::from(want_stop)),
        ];
        job.sum_f64(
            &mut sums,
            timeout,
            &format!("summing the figures of epoch {}", epoch + 1),
        );
        let [loss, updates, rows, nnz, shard_loss, stops] = sums;
        let train_loss = loss / rows;
        let lambda = f64::from(self.lambda);
        let diverged = |what| Error::Diverged {
            epoch: epoch + 1,
            lr,
            l2: lambda,
            what,
        };
        if !train_loss.is_finite() {
            return Err(diverged("the training loss is"));
        }
        if !model.is_finite() {
            return Err(diverged("the weights are"));
        }
        let m = match valid.map(|v| metrics::evaluate(model, v)).transpose() {
            Err(Error::NonFiniteScore { .. }) => {
                return Err(diverged("the scores on the test data are"));
            }
            other => other?,
        };
        let objective = shard_loss / rows + crate::train::penalty(model, lambda, self.cfg.l1);
        let rep = EpochReport {
            epoch: epoch + 1,
            seconds,
            lr,
            train_loss,
            objective,
            duality_gap: None,
            test_loss: m.map(|m| m.loss),
            test_accuracy: m.map(|m| m.accuracy),
            test_auc: m.and_then(|m| m.auc),
            updates: updates as u64,
            nnz: nnz as u64,
            nnz_per_sec: nnz / seconds.max(1e-12),
            comm: Some(job.take_stats(self.dist.scheme)),
        };
        let ep = Epoch {
            seconds,
            train: train_loss,
            valid: m.map(|m| m.loss),
            objective: Some(objective),
            gap: None,
            model: None,
        };
        Ok((ep, rep, stops > 0.0))
    }
}
