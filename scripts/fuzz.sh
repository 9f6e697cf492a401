#!/usr/bin/env bash
# Fuzz wildsgd's decoders with cargo-fuzz (libFuzzer, AddressSanitizer, release build
# with debug assertions and overflow checks).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  time per target (default 600); targets run one after another
#   TARGET   any of: libsvm ratings auto gzip cache model (default: all)
#
# Steps: installs the nightly toolchain and cargo-fuzz when missing, builds the fuzz
# targets (`cargo +nightly fuzz build`), fills the seed corpora fuzz/corpus/<target>/
# (idempotent: fixed `seed-*` names, overwritten; model and cache seeds are made with
# the release binary, built when missing or older than the sources), runs each target,
# and prints a table of executions and crashes. Exits non-zero when any target found a
# crash (reproducer in fuzz/artifacts/<target>/, log in fuzz/artifacts/logs/<target>.log).
#
# Reproduce one artifact: fuzz/target/<host triple>/release/<target> <artifact file>
# (or `cargo +nightly fuzz run <target> <artifact file>`); set WILDSGD_FUZZ_VERBOSE=1
# to print what each decoder made of the input.
#
# Environment: FUZZ_NICE (niceness of the builds and runs, default 10),
# FUZZ_EXTRA_ARGS (more libFuzzer flags for every target, e.g. "-seed=1 -use_value_profile=1").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ALL_TARGETS=(libsvm ratings auto gzip cache model)
TEXT_TARGETS=(libsvm ratings auto gzip)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "fuzz.sh: $*" >&2; exit 2; }

SECS=600
if [[ $# -gt 0 && ( $1 == -h || $1 == --help ) ]]; then usage; exit 0; fi
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then SECS=$1; shift; fi
[[ $SECS -gt 0 ]] || die "SECONDS must be positive"
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target '$t' (targets: ${ALL_TARGETS[*]})"
done

NICE=(nice -n "${FUZZ_NICE:-10}")
now() { date +%s; }

# --- toolchain ------------------------------------------------------------------------
command -v rustup >/dev/null || die "rustup is required (https://rustup.rs)"
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "== installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    t0=$(now)
    "${NICE[@]}" cargo install cargo-fuzz --locked || "${NICE[@]}" cargo install cargo-fuzz
    echo "   cargo-fuzz installed in $(( $(now) - t0 )) s"
fi
HOST=$(rustc +nightly -vV | sed -n 's/^host: //p')
FUZZ_BIN="$ROOT/fuzz/target/$HOST/release"

# --- build ----------------------------------------------------------------------------
echo "== building fuzz targets (cargo +nightly fuzz build)"
t0=$(now)
"${NICE[@]}" cargo +nightly fuzz build
echo "   fuzz build took $(( $(now) - t0 )) s"

BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/wildsgd"
if [[ ! -x $BIN || -n $(find src Cargo.toml Cargo.lock -newer "$BIN" -print -quit 2>/dev/null) ]]; then
    echo "== building the release binary (seed models and caches)"
    "${NICE[@]}" cargo build --release --bin wildsgd
fi

# --- seed corpora ---------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wildsgd-fuzz.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

fill_corpora() {
    local c="$ROOT/fuzz/corpus" t f
    for t in "${ALL_TARGETS[@]}"; do mkdir -p "$c/$t"; done

    # Every known-bad file, for every text target and for gzip.
    for f in tests/bad_files/*; do
        for t in "${TEXT_TARGETS[@]}"; do cp "$f" "$c/$t/seed-bad-$(basename "$f")"; done
    done

    # Small valid files of each flavour, written to $TMP first.
    head -n 50 datasets/a9a/a9a >"$TMP/a9a50.libsvm"
    printf '# zero-based, qid, comments, CRLF\r\n1 qid:3 0:0.5 7:-2e-3\r\n0 2:1 # c\r\n\r\n1\r\n' >"$TMP/zero.libsvm"
    printf '2 1:0.5 3:1\n4 2:-1\n4 1:1e3 3:-0\n' >"$TMP/classes24.libsvm"
    printf '+1 3:1 1:2.5 2:-1\n-1 4294967295:1\n1.0 9:1e-30\n' >"$TMP/unsorted.libsvm"
    printf '1\t10\t5\t881250949\n2\t10\t3\t881250950\n1\t20\t1\t881250951\n' >"$TMP/tab.tsv"
    printf '1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n' >"$TMP/movielens.dat"
    printf 'userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n7,31,4.5,1260759185\n' >"$TMP/header.csv"
    printf '1 1 2\n1 2 4\n2 1 3.5\r\n' >"$TMP/filmtrust.txt"
    if [[ -f datasets/msweb/interactions.tsv ]]; then
        head -n 300 datasets/msweb/interactions.tsv >"$TMP/implicit.tsv"
    else
        printf '1\t1\n1\t2\n2\t2\n3\t1\n' >"$TMP/implicit.tsv"
    fi
    "$BIN" gen ratings --users 50 --items 40 --rank 3 --density 0.2 --seed 1 --quiet --output "$TMP/gen.tsv" >/dev/null

    local libsvm_seeds=(a9a50.libsvm zero.libsvm unsorted.libsvm classes24.libsvm)
    local ratings_seeds=(tab.tsv movielens.dat header.csv filmtrust.txt implicit.tsv gen.tsv)
    for f in "${libsvm_seeds[@]}"; do
        for t in libsvm auto gzip; do cp "$TMP/$f" "$c/$t/seed-$f"; done
    done
    for f in "${ratings_seeds[@]}"; do
        for t in ratings auto gzip; do cp "$TMP/$f" "$c/$t/seed-$f"; done
    done
    for f in a9a50.libsvm header.csv; do gzip -n -c "$TMP/$f" >"$c/gzip/seed-$f.gz"; done

    # Valid model files, linear and matrix factorization.
    local m="$c/model"
    "$BIN" train --data "$TMP/a9a50.libsvm" --epochs 1 --threads 1 --quiet \
        --output "$m/seed-linear.wsgd" >/dev/null
    "$BIN" train --data "$TMP/zero.libsvm" --model hinge --no-bias --epochs 1 --threads 1 --quiet \
        --output "$m/seed-linear-hinge.wsgd" >/dev/null
    "$BIN" train --data "$TMP/classes24.libsvm" --model squared --epochs 1 --threads 1 --quiet \
        --output "$m/seed-linear-classes24.wsgd" >/dev/null
    "$BIN" train --data "$TMP/gen.tsv" --rank 3 --epochs 1 --threads 1 --quiet \
        --output "$m/seed-mf.wsgd" >/dev/null
    "$BIN" train --data "$TMP/header.csv" --rank 2 --epochs 1 --threads 1 --quiet \
        --output "$m/seed-mf-small.wsgd" >/dev/null

    # Valid data caches: `info --cache` on copies in $TMP (caches never land in the repo).
    mkdir -p "$TMP/cache"
    for f in a9a50.libsvm zero.libsvm classes24.libsvm header.csv implicit.tsv gen.tsv; do
        cp "$TMP/$f" "$TMP/cache/$f"
        "$BIN" info --cache "$TMP/cache/$f" >/dev/null
        cp "$TMP/cache/$f.wsgd-cache" "$c/cache/seed-$f.wsgd-cache"
    done
}
echo "== filling seed corpora in fuzz/corpus/"
fill_corpora

# --- fuzz -----------------------------------------------------------------------------
# The gist of a crash log: the panic (or sanitizer error), the innermost frames in this
# repository and its dependencies, and the input; the whole log stays in fuzz/artifacts/logs.
crash_report() {
    local log=$1
    grep -m 1 -A 1 'panicked at' "$log" || true
    grep -m 1 -E '^==[0-9]+==ERROR: (AddressSanitizer|LeakSanitizer)|ERROR: libFuzzer: (timeout|out-of-memory)' "$log" || true
    grep -E '^ +#[0-9]+ 0x[0-9a-f]+ in ' "$log" | grep -E "$ROOT/|index\.crates\.io" \
        | grep -v -E 'libfuzzer-sys|/rayon(-core)?-[0-9]| in _start ' | head -n 8 || true
    grep -m 1 '^SUMMARY' "$log" || true
    grep -m 1 '^Base64:' "$log" || true
}

mkdir -p fuzz/artifacts/logs
declare -A EXECS RESULT
FAILED=0
for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/artifacts/$t"
    log="fuzz/artifacts/logs/$t.log"
    echo "== fuzzing $t for $SECS s (log: $log)"
    rc=0
    # ASAN_OPTIONS as `cargo fuzz run` sets it (instrumented crates trip ODR checks).
    # shellcheck disable=SC2086 # FUZZ_EXTRA_ARGS is a list of flags
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}" RUST_BACKTRACE=1 \
        "${NICE[@]}" "$FUZZ_BIN/$t" \
        -max_total_time="$SECS" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" ${FUZZ_EXTRA_ARGS:-} \
        "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)
    EXECS[$t]=${execs:-?}
    artifacts=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | grep -v 'slow-unit-' | tr '\n' ' ' || true)
    artifacts=${artifacts% }
    if [[ $rc -eq 0 && -z $artifacts ]]; then
        RESULT[$t]="ok"
        echo "   $t: ${EXECS[$t]} executions, no crash"
    else
        FAILED=1
        RESULT[$t]="CRASH (rc $rc) ${artifacts:-no artifact written, see $log}"
        echo "   $t: ${EXECS[$t]} executions, CRASH (rc $rc): ${artifacts:-see $log}"
        crash_report "$log" | sed 's/^/   | /'
    fi
done

echo
echo "== summary ($SECS s per target)"
printf '%-8s %12s  %s\n' target executions result
for t in "${TARGETS[@]}"; do
    printf '%-8s %12s  %s\n' "$t" "${EXECS[$t]}" "${RESULT[$t]}"
done
exit "$FAILED"
