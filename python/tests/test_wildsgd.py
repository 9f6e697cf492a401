"""The Python package on real data: the optimum on a9a, scikit-learn's estimator checks,
pickling, the GIL released during fit, and matrix factorization against the CLI."""

import os
import pickle
import subprocess
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_svmlight_file
from sklearn.utils.estimator_checks import parametrize_with_checks

from wildsgd import Classifier, MatrixFactorization

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
A9A = os.path.join(ROOT, "datasets", "a9a")
U1 = os.path.join(ROOT, "..", "shared", "datasets", "movielens-100k")
# LIBLINEAR's optimum test log loss on a9a at C = 1 (datasets/a9a/README.md).
A9A_OPTIMUM = 0.3241


def a9a():
    X, y = load_svmlight_file(os.path.join(A9A, "a9a"), n_features=123)
    Xt, yt = load_svmlight_file(os.path.join(A9A, "a9a.t"), n_features=123)
    return X.tocsr(), y, Xt.tocsr(), yt


def log_loss(clf, X, y):
    p = clf.predict_proba(X)[:, 1]
    pos = y == clf.classes_[1]
    return -np.mean(np.where(pos, np.log(p), np.log(1 - p)))


def test_a9a_reaches_the_optimum_with_defaults_and_exact_solvers():
    X, y, Xt, yt = a9a()
    for clf in [Classifier(), Classifier(optimizer="saga", epochs=20),
                Classifier(optimizer="dual-cd", tol=1e-5, epochs=100)]:
        clf.fit(X, y)
        loss = log_loss(clf, Xt, yt)
        assert loss <= A9A_OPTIMUM * 1.01, (clf, loss)
        assert list(clf.classes_) == [-1.0, 1.0]
        assert clf.coef_.shape == (1, 123) and clf.intercept_.shape == (1,)
        assert clf.n_iter_[0] == len(clf.history_)
        assert clf.report_["objective"] == pytest.approx(clf.history_[-1]["objective"])
    # Any two labels; the float32 dense path reads the same model.
    labels = np.where(y > 0, "yes", "no")
    clf = Classifier(scheme="sequential", random_state=3).fit(X, labels)
    dense = Classifier(scheme="sequential", random_state=3).fit(X.toarray().astype(np.float32), labels)
    assert list(clf.classes_) == ["no", "yes"]
    np.testing.assert_allclose(clf.coef_, dense.coef_, rtol=1e-5, atol=1e-6)
    assert set(clf.predict(Xt)) == {"no", "yes"}


@parametrize_with_checks(
    [Classifier()],
    expected_failed_checks=lambda est: {
        # fit has no sample_weight: the engine weighs every row alike.
        "check_sample_weight_equivalence_on_dense_data": "no sample weights",
        "check_sample_weight_equivalence_on_sparse_data": "no sample weights",
    },
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_pickle_and_bad_input():
    X, y, Xt, _ = a9a()
    clf = Classifier(epochs=2).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(Xt), clf.predict_proba(Xt))
    with pytest.raises(ValueError, match="C"):
        Classifier(C=-1).fit(X, y)
    with pytest.raises(ValueError, match="invalid parameter"):
        Classifier(optimizer="saga", loss="hinge").fit(X, y)
    with pytest.raises(ValueError, match="unknown optimizer"):
        Classifier(optimizer="nope").fit(X, y)
    with pytest.raises(ValueError, match="binary"):
        Classifier().fit(X[:30], np.arange(30) % 3)
    bad = X[:10].toarray()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        Classifier().fit(bad, y[:10])


def test_fit_releases_the_gil():
    rng = np.random.default_rng(0)
    X = sp.random(60_000, 2_000, density=0.01, format="csr", random_state=1)
    y = (X @ rng.normal(size=2_000) > 0).astype(int)
    ticks = []
    done = threading.Event()

    def spin():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    start = time.perf_counter()
    seen = []
    Classifier(epochs=20, threads=1, callback=seen.append).fit(X, y)
    elapsed = time.perf_counter() - start
    done.set()
    t.join()
    during = [x for x in ticks if start <= x <= start + elapsed]
    # The other thread kept running during fit (at most ~1 tick per ms).
    assert elapsed > 0.05 and len(during) >= 0.3 * elapsed / 0.001, (elapsed, len(during))
    assert [r["epoch"] for r in seen] == list(range(1, 21))


def ratings(path):
    a = np.loadtxt(path, dtype=np.int64)
    return a[:, 0], a[:, 1], a[:, 2].astype(np.float32)


@pytest.mark.skipif(not os.path.exists(os.path.join(U1, "u1.base")), reason="MovieLens absent")
def test_movielens_u1_matches_the_cli():
    u, i, r = ratings(os.path.join(U1, "u1.base"))
    tu, ti, tr = ratings(os.path.join(U1, "u1.test"))
    mf = MatrixFactorization(epochs=20, scheme="sequential", threads=1).fit(u, i, r)
    rmse = mf.rmse(tu, ti, tr)
    binary = os.path.join(ROOT, "target", "release", "wildsgd")
    if not os.path.exists(binary):
        binary = os.path.join(ROOT, "target", "debug", "wildsgd")
    if os.path.exists(binary):
        out = subprocess.run(
            [binary, "train", "--data", os.path.join(U1, "u1.base"), "--test",
             os.path.join(U1, "u1.test"), "--model", "mf", "--scheme", "sequential",
             "--epochs", "20", "--quiet"],
            capture_output=True, text=True, check=True,
        )
        cli = float(out.stdout.split("test rmse")[1].split()[0])
        assert abs(rmse - cli) <= 0.002, (rmse, cli)
    assert rmse < 0.95
    recs = mf.recommend(u[0], n=5)
    assert len(recs) == 5 and all(item in set(i) for item, _ in recs)
    with pytest.raises(KeyError):
        mf.recommend(10**9)
    again = pickle.loads(pickle.dumps(mf))
    np.testing.assert_array_equal(again.predict(tu[:100], ti[:100]), mf.predict(tu[:100], ti[:100]))
    # Any hashable ids: strings.
    s = MatrixFactorization(epochs=3).fit([f"u{x}" for x in u[:5000]], [f"i{x}" for x in i[:5000]], r[:5000])
    assert np.isfinite(s.predict(["u1", "nobody"], ["i1", "i2"])).all()


def test_ctrl_c_interrupts_a_long_fit():
    import signal
    import sys

    script = (
        "import numpy as np, scipy.sparse as sp\n"
        "from wildsgd import Classifier\n"
        "X = sp.random(50_000, 2_000, density=0.01, format='csr', random_state=1)\n"
        "y = (X @ np.random.default_rng(0).normal(size=2_000) > 0).astype(int)\n"
        "print('ready', flush=True)\n"
        "Classifier(epochs=100_000, threads=1).fit(X, y)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    assert p.returncode != 0
    assert "KeyboardInterrupt" in err, err


def test_scikit_learns_liblinear_optimum_on_a9a():
    from sklearn.linear_model import LogisticRegression

    X, y, Xt, yt = a9a()
    # scikit-learn's liblinear solver with intercept_scaling=1 regularizes the intercept
    # like LIBLINEAR's -B 1: the objective wildsgd minimizes, at C = 1.
    X32 = X.copy()  # liblinear takes 32-bit indices only
    X32.indices, X32.indptr = X32.indices.astype(np.int32), X32.indptr.astype(np.int32)
    ref = LogisticRegression(solver="liblinear", C=1.0, tol=1e-8, max_iter=1000).fit(X32, y)
    p = ref.predict_proba(Xt)[:, 1]
    ref_loss = -np.mean(np.where(yt > 0, np.log(p), np.log(1 - p)))
    assert abs(ref_loss - A9A_OPTIMUM) < 5e-4
    ours = log_loss(Classifier().fit(X, y), Xt, yt)
    assert ours <= ref_loss * 1.01, (ours, ref_loss)
    exact = log_loss(Classifier(optimizer="dual-cd", tol=1e-6, epochs=200).fit(X, y), Xt, yt)
    assert abs(exact - ref_loss) < 2e-4, (exact, ref_loss)
