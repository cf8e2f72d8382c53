"""Small shared helpers: device and dtype resolution, seeded generators, checks.

Nothing here knows about modAL, skorch or any estimator.
"""
from __future__ import annotations

import numbers
import random
import threading
from contextlib import contextmanager

import numpy as np
import torch

__all__ = [
    "preserved_global_rng",
    "resolve_device",
    "resolve_dtype",
    "numpy_rng",
    "torch_generator",
    "check_int",
    "check_float",
    "check_option",
    "all_finite",
]

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float": torch.float32,
    "double": torch.float64,
}


def resolve_device(device, name: str = "device") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device`` into a device.

    ``"auto"`` (and ``None``) picks CUDA when it is available, the CPU otherwise. Asking for
    CUDA on a machine without it is an error rather than a silent fallback.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError):
            raise ValueError(
                f"{name}={device!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
            ) from None
    else:
        raise TypeError(
            f"{name} must be a string such as 'auto', 'cpu' or 'cuda', or a torch.device; "
            f"got {type(device).__name__}."
        )
    there = ", ".join(repr(d) for d in available_devices())
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{name}={device!r} was requested but CUDA is not available on this machine "
                f"(available: {there}); use one of those or device='auto'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"{name}={device!r} but only {torch.cuda.device_count()} CUDA device(s) exist "
                f"(available: {there})."
            )
    elif dev.type == "mps":
        if not _mps_available():
            raise ValueError(
                f"{name}={device!r} was requested but Apple's MPS backend is not available on "
                f"this machine (available: {there}); use one of those or device='auto'."
            )
    elif dev.type != "cpu":
        raise ValueError(
            f"{name}={device!r} is not supported; available on this machine: {there} "
            "(or 'auto')."
        )
    return dev


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The device strings :func:`resolve_device` accepts on this machine, e.g. ``['cpu']``."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        out.append("mps")
    return out


def resolve_dtype(dtype, name: str = "dtype") -> torch.dtype:
    """Accept ``"float32"``, ``"float64"``, ``torch.float32``, ``torch.float64`` or numpy's."""
    if isinstance(dtype, torch.dtype):
        if dtype in (torch.float32, torch.float64):
            return dtype
    elif isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    else:
        try:
            np_dtype = np.dtype(dtype)
        except TypeError:
            np_dtype = None
        if np_dtype == np.float32:
            return torch.float32
        if np_dtype == np.float64:
            return torch.float64
    raise ValueError(f"{name}={dtype!r} is not supported; use 'float32' or 'float64'.")


def numpy_rng(random_state) -> np.random.Generator:
    """A local ``numpy.random.Generator`` from ``None``, an int, a ``RandomState`` or a Generator.

    Never touches the global seed.
    """
    if random_state is None or isinstance(random_state, (numbers.Integral, np.integer)):
        if isinstance(random_state, (bool, np.bool_)):
            raise TypeError("random_state must be None, an int or a numpy Generator; got a bool.")
        if random_state is not None and random_state < 0:
            raise ValueError(f"random_state={random_state} must be a non-negative integer.")
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise TypeError(
        "random_state must be None, an int, a numpy.random.Generator or RandomState; "
        f"got {type(random_state).__name__}."
    )


def torch_generator(random_state, device="cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded from ``random_state`` (see :func:`numpy_rng`)."""
    seed = int(numpy_rng(random_state).integers(0, 2**63 - 1))
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(seed)
    return gen


def check_int(value, name: str, *, min_val=None, max_val=None, max_hint: str = "") -> int:
    """Check that ``value`` is an integer (not a bool) within bounds; return it as ``int``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer; got {value!r} ({type(value).__name__}).")
    value = int(value)
    if min_val is not None and value < min_val:
        raise ValueError(f"{name}={value} must be >= {min_val}.")
    if max_val is not None and value > max_val:
        hint = f" {max_hint}" if max_hint else ""
        raise ValueError(f"{name}={value} must be <= {max_val}.{hint}")
    return value


def check_float(value, name: str, *, min_val=None, max_val=None, min_inclusive=True,
                allow_none=False):
    """Check that ``value`` is a finite real number within bounds; return it as ``float``."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number; got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name}={value} must be finite.")
    if min_val is not None:
        if min_inclusive and value < min_val:
            raise ValueError(f"{name}={value} must be >= {min_val}.")
        if not min_inclusive and value <= min_val:
            raise ValueError(f"{name}={value} must be > {min_val}.")
    if max_val is not None and value > max_val:
        raise ValueError(f"{name}={value} must be <= {max_val}.")
    return value


def check_option(value, name: str, options) -> str:
    """Check that ``value`` is one of ``options`` (strings)."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}={value!r} is not one of {sorted(options)}.")
    return value


@contextmanager
def preserved_global_rng(seed: int):
    """Run user code that draws from the global RNGs without touching them.

    Inside, Python's ``random``, numpy's legacy global generator and torch's CPU (and, when
    initialised, CUDA) generators are seeded with ``seed`` -- so what runs inside is
    reproducible -- and all of them are restored on exit, also on errors. Used where the
    library has to fit a user's model (a clone for temperature scaling): skorch and
    scikit-learn draw initial weights and shuffles from the global generators.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    with torch.random.fork_rng(devices=devices, enabled=True):
        try:
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def all_finite(x) -> bool:
    """Whether every entry of a floating tensor or array is finite, at the cost of one sum.

    A sum of finite numbers is finite unless it overflows, and NaN or infinity in any entry
    makes it non-finite; only then (NaN/inf present, or an overflow) is every entry checked.
    ``torch.isfinite(t).all()`` allocates a mask and is about 10x slower on large pools.
    """
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point() or x.numel() == 0:
            return True
        if bool(torch.isfinite(x.sum())):
            return True
        return bool(torch.isfinite(x).all())
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating) or arr.size == 0:
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum()):
            return True
    return bool(np.isfinite(arr).all())


_THREADS_LOCK = threading.Lock()
_THREADS_STATE = {"depth": 0, "saved": None}
_CONTROLLER = []


def check_n_jobs(n_jobs, name: str = "n_jobs"):
    """``None``, ``-1`` or a positive integer (scikit-learn's convention); returns it."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or (
            n_jobs < 1 and n_jobs != -1):
        raise ValueError(f"{name}={n_jobs!r} must be None (one thread), -1 (every core) or a "
                         "positive integer.")
    return int(n_jobs)


def resolve_n_jobs(n_jobs) -> int:
    """Threads for ``n_jobs``: None is 1, -1 every core of the machine, else ``n_jobs``."""
    if n_jobs is None:
        return 1
    if n_jobs == -1:
        import os

        return max(1, os.cpu_count() or 1)
    return int(n_jobs)


def _blas_controller():
    """threadpoolctl's view of the loaded BLAS and OpenMP libraries (built once: ~30 ms),
    or None without threadpoolctl."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - scikit-learn depends on it
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


@contextmanager
def thread_limit(n_jobs):
    """Run the block with ``resolve_n_jobs(n_jobs)`` torch intra-op threads and as many BLAS /
    OpenMP threads (threadpoolctl); both are restored on exit, errors included.

    Thread counts are process-wide: nested or concurrent blocks share the limit of the first
    one entered, and the counts are restored when the last one exits.
    """
    threads = resolve_n_jobs(n_jobs)
    with _THREADS_LOCK:
        if _THREADS_STATE["depth"] == 0:
            ctl = _blas_controller()
            limiter = None if ctl is None else ctl.limit(limits=threads)
            _THREADS_STATE["saved"] = (torch.get_num_threads(), limiter)
            torch.set_num_threads(threads)
        _THREADS_STATE["depth"] += 1
    try:
        yield threads
    finally:
        with _THREADS_LOCK:
            _THREADS_STATE["depth"] -= 1
            if _THREADS_STATE["depth"] == 0:
                torch_threads, limiter = _THREADS_STATE["saved"]
                _THREADS_STATE["saved"] = None
                torch.set_num_threads(torch_threads)
                if limiter is not None:
                    limiter.restore_original_limits()
