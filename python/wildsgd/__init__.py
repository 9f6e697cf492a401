"""wildsgd from Python: scikit-learn-compatible estimators over the Rust engine.

>>> from wildsgd import Classifier
>>> clf = Classifier().fit(X_train, y_train)          # doctest: +SKIP
>>> clf.predict_proba(X_test)[:, 1]                     # doctest: +SKIP

``Classifier`` trains L2-regularized logistic regression (or a linear SVM, or least
squares on the two classes) with the engine's lock-free threads; its defaults are the
CLI's (a calibrated rate, averaged SGD). ``MatrixFactorization`` trains biased matrix
factorization on (user, item, rating) triples with any hashable ids.
"""

import json

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core

__all__ = ["Classifier", "MatrixFactorization"]


def _bytes(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype).tobytes()


class Classifier(ClassifierMixin, BaseEstimator):
    """A binary linear classifier trained by wildsgd.

    Parameters are plain constructor arguments (nothing is done in ``__init__``):

    loss : "logistic" (default), "hinge" or "squared".
    optimizer : "sgd" (default), one of the other ten optimizers of Ruder's overview,
        or the exact solvers "dual-cd" and "saga".
    C : LIBLINEAR's C, λ = 1/(C·n) [1.0].
    epochs : passes over the data [None: the library's default, 10].
    tol : stop once converged (duality gap for dual-cd, else the objective's relative
        decrease over an epoch) [None: run every epoch].
    threads : worker threads [None: one per core, at most one per 10,000 rows].
    scheme : "hogwild" (default), "sequential", "locked", "round-robin".
    average : epoch from which iterates are averaged, or None [1.0].
    lr : base learning rate [None: calibrated on a sample].
    random_state : seed (int) [None: the library's, 42].
    callback : called with each epoch's report (a dict) [None].

    After ``fit``: ``classes_``, ``coef_`` (1, n_features), ``intercept_`` (1,),
    ``n_iter_``, ``n_features_in_``, ``history_`` (the epoch reports) and ``report_``
    (the done report, with the regularized objective).
    """

    def __init__(
        self,
        loss="logistic",
        optimizer="sgd",
        C=1.0,
        epochs=None,
        tol=None,
        threads=None,
        scheme="hogwild",
        average=1.0,
        lr=None,
        random_state=None,
        callback=None,
    ):
        self.loss = loss
        self.optimizer = optimizer
        self.C = C
        self.epochs = epochs
        self.tol = tol
        self.threads = threads
        self.scheme = scheme
        self.average = average
        self.lr = lr
        self.random_state = random_state
        self.callback = callback

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_class = False
        return tags

    def _params(self, n):
        seed = self.random_state
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError("random_state: expected an int or None (a RandomState is not supported)")
        return json.dumps(
            {
                "loss": self.loss,
                "optimizer": self.optimizer,
                "C": None if self.C is None else float(self.C),
                "epochs": None if self.epochs is None else int(self.epochs),
                "tol": None if self.tol is None else float(self.tol),
                "threads": None if self.threads is None else int(self.threads),
                "scheme": self.scheme,
                "average": None if self.average is None else float(self.average),
                "lr": None if self.lr is None else float(self.lr),
                "random_state": None if seed is None else int(seed),
            }
        )

    def fit(self, X, y):
        """Trains on X (a scipy.sparse matrix or a dense array) and any two classes y."""
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(
                "Only binary classification is supported. "
                f"Classifier is binary: y has {len(self.classes_)} class(es), expected 2"
            )
        X = sp.csr_matrix(X)
        X.sort_indices()
        cb = None
        if self.callback is not None:
            cb = lambda text: self.callback(json.loads(text))  # noqa: E731
        weights, bias, epochs, done = _core.fit_linear(
            _bytes(X.indptr, "<i8"),
            _bytes(X.indices, "<i8"),
            _bytes(X.data, "<f8"),
            X.shape[1],
            _bytes(codes, "<i1"),
            self._params(X.shape[0]),
            cb,
        )
        self.coef_ = np.asarray(weights, dtype=np.float64).reshape(1, -1)
        self.intercept_ = np.array([bias], dtype=np.float64)
        self.history_ = [json.loads(e) for e in epochs]
        self.report_ = json.loads(done)
        self.n_iter_ = np.array([self.report_["epochs"]])
        return self

    def decision_function(self, X):
        """The scores w·x + b (positive for ``classes_[1]``)."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False)
        return np.asarray(X @ self.coef_[0]).ravel() + self.intercept_[0]

    def predict(self, X):
        check_is_fitted(self)
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def predict_proba(self, X):
        """Class probabilities (logistic loss only)."""
        check_is_fitted(self)
        if self.loss != "logistic":
            raise AttributeError("predict_proba needs loss='logistic'")
        z = self.decision_function(X)
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        return np.column_stack([1.0 - p, p])

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))


class MatrixFactorization(BaseEstimator):
    """Biased matrix factorization (rating ≈ μ + b_u + b_i + p_u·q_i) trained by wildsgd.

    rank [32], epochs [20], optimizer ["adagrad"], threads [None], scheme ["block"],
    lr [None: the optimizer's], l2 [None: the library's], random_state [None].
    ``fit(users, items, ratings)`` takes any hashable ids (arrays, lists or a pandas
    DataFrame's columns); ``predict``, ``recommend`` and ``rmse`` take the same ids.
    """

    def __init__(
        self,
        rank=32,
        epochs=20,
        optimizer="adagrad",
        threads=None,
        scheme="block",
        lr=None,
        l2=None,
        random_state=None,
        callback=None,
    ):
        self.rank = rank
        self.epochs = epochs
        self.optimizer = optimizer
        self.threads = threads
        self.scheme = scheme
        self.lr = lr
        self.l2 = l2
        self.random_state = random_state
        self.callback = callback

    def fit(self, users, items, ratings):
        users, items = np.asarray(users), np.asarray(items)
        ratings = np.asarray(ratings, dtype=np.float32)
        if not (len(users) == len(items) == len(ratings)):
            raise ValueError("users, items and ratings must have the same length")
        self.user_ids_, ucode = np.unique(users, return_inverse=True)
        self.item_ids_, icode = np.unique(items, return_inverse=True)
        params = json.dumps(
            {
                "rank": int(self.rank),
                "epochs": int(self.epochs),
                "optimizer": self.optimizer,
                "threads": None if self.threads is None else int(self.threads),
                "scheme": self.scheme,
                "lr": None if self.lr is None else float(self.lr),
                "l2": None if self.l2 is None else float(self.l2),
                "random_state": None if self.random_state is None else int(self.random_state),
            }
        )
        cb = None
        if self.callback is not None:
            cb = lambda text: self.callback(json.loads(text))  # noqa: E731
        self._model, epochs, done = _core.fit_mf(
            _bytes(ucode, "<i8"), _bytes(icode, "<i8"), _bytes(ratings, "<f4"), params, cb
        )
        self.history_ = [json.loads(e) for e in epochs]
        self.report_ = json.loads(done)
        return self

    def _codes(self, ids, known):
        ids = np.asarray(ids)
        pos = np.searchsorted(known, ids)
        pos = np.clip(pos, 0, len(known) - 1)
        found = known[pos] == ids
        # An unknown id gets a code no training id has: the model uses the biases it has.
        return np.where(found, pos, len(known) + 1 << 32)

    def predict(self, users, items):
        """Predicted ratings (clipped to the training range); unknown ids get the mean."""
        check_is_fitted(self, "_model")
        u = self._codes(users, self.user_ids_)
        i = self._codes(items, self.item_ids_)
        return np.asarray(self._model.predict(_bytes(u, "<i8"), _bytes(i, "<i8")))

    def recommend(self, user, n=10, exclude_rated=True):
        """The n best (item id, score) pairs for a known user; rated items are left out
        (the engine always excludes them). Raises KeyError for an unknown user."""
        check_is_fitted(self, "_model")
        code = self._codes([user], self.user_ids_)[0]
        recs = self._model.recommend(int(code), int(n))
        if recs is None:
            raise KeyError(user)
        return [(self.item_ids_[i], s) for i, s in recs]

    def rmse(self, users, items, ratings):
        p = self.predict(users, items)
        return float(np.sqrt(np.mean((p - np.asarray(ratings, dtype=np.float64)) ** 2)))

    def __getstate__(self):
        state = self.__dict__.copy()
        if "_model" in state:
            state["_model"] = bytes(self._model.to_bytes())
        return state

    def __setstate__(self, state):
        if "_model" in state:
            state["_model"] = _core.Mf.from_bytes(state["_model"])
        self.__dict__.update(state)
