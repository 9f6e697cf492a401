//! The library names its settings as Rust fields (`early_stop`, `schedule.every`); the
//! command line speaks in flags (`--early-stop`, `--lr-step`). This module translates
//! a library error's text for the command line, so the library keeps Rust names and
//! the CLI does not validate anything a second time just to word it differently.

/// Library names whose flag is not the last path segment with `_` written `-`.
const RENAMED: &[(&str, &str)] = &[
    ("momentum.gamma", "momentum"),
    ("rmsprop.gamma", "rho"),
    ("adadelta.rho", "rho"),
    ("ftrl.beta", "ftrl-beta"),
    ("ftrl.l1", "ftrl-l1"),
    ("schedule", "lr-schedule"),
    ("schedule.k", "lr-decay"),
    ("schedule.every", "lr-step"),
    ("schedule.factor", "lr-factor"),
    ("schedule.patience", "lr-patience"),
    ("schedule.threshold", "lr-schedule"),
    ("valid", "test"),
    ("alpha", "elastic-alpha"),
    ("timeout", "comm-timeout"),
];

/// Fields a library message may point to in its text, and the flags that set them.
const MENTIONED: &[(&str, &str)] = &[
    ("lr", "--lr"),
    ("l1", "--l1"),
    ("l2", "--l2 (or raise --C)"),
    ("optimizer", "--optimizer"),
    ("grad_noise", "--grad-noise"),
    ("batch_size", "--batch-size"),
    ("n_features", "--n-features"),
    ("threads", "--threads"),
    ("replicate", "--replicate"),
    ("max_memory", "--max-memory"),
    ("rank", "--rank"),
    ("features", "--features"),
    ("nnz_per_row", "--nnz-per-row"),
    ("items", "--items"),
    ("density", "--density"),
    ("valid", "--test or --holdout"),
    ("n_push", "--n-push"),
    ("slow_rank", "--slow-rank"),
    ("tau", "--tau"),
];

/// The flag (without dashes) that sets the library setting `name`.
pub fn flag(name: &str) -> String {
    if let Some((_, f)) = RENAMED.iter().find(|(n, _)| *n == name) {
        return (*f).to_string();
    }
    name.rsplit('.').next().unwrap_or(name).replace('_', "-")
}

/// `text`, a library error's message, in the command line's words: the parameter an
/// `invalid parameter` error names becomes its flag, and each setting the message
/// points to (in backquotes) becomes the flag that sets it.
pub fn in_flags(text: &str) -> String {
    const HEAD: &str = "invalid parameter `";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    if let Some(i) = rest.find(HEAD) {
        let after = &rest[i + HEAD.len()..];
        if let Some(j) = after.find('`') {
            out.push_str(&rest[..i + HEAD.len()]);
            out.push_str(&flag(&after[..j]));
            rest = &after[j..];
        }
    }
    let mut body = rest.to_string();
    for (name, f) in MENTIONED {
        body = body.replace(&format!("`{name}`"), f);
    }
    out.push_str(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_become_flags() {
        assert_eq!(flag("early_stop"), "early-stop");
        assert_eq!(flag("schedule.every"), "lr-step");
        assert_eq!(flag("adamw.weight_decay"), "weight-decay");
        assert_eq!(flag("adam.beta1"), "beta1");
        assert_eq!(
            in_flags("invalid parameter `schedule.every`: must be at least 1 epoch, got 0"),
            "invalid parameter `lr-step`: must be at least 1 epoch, got 0"
        );
        assert_eq!(
            in_flags("invalid parameter `early_stop`: needs validation data (`valid`)"),
            "invalid parameter `early-stop`: needs validation data (--test or --holdout)"
        );
        assert_eq!(
            in_flags("x: training diverged: lower the learning rate `lr`"),
            "x: training diverged: lower the learning rate --lr"
        );
        // A backquoted token that names no setting is left alone.
        assert_eq!(
            in_flags("invalid parameter `scheme`: unknown scheme `fast`"),
            "invalid parameter `scheme`: unknown scheme `fast`"
        );
    }
}
