"""Strategy names of the benchmark and the parameter syntax ``name:key=value,key=value``.

=================  ==============================================================
name               strategy
=================  ==============================================================
ours-greedy        ``SparseApproxSampler(solver="greedy")``
ours-iht           ``SparseApproxSampler(solver="iht")``
random             :class:`~sparse_query.RandomSampling`
entropy            :class:`~sparse_query.EntropySampling`
margin             :class:`~sparse_query.MarginSampling`
least-confidence   :class:`~sparse_query.LeastConfidenceSampling`
bald               :class:`~sparse_query.BALD`
batchbald          :class:`~sparse_query.BatchBALD`
kcenter            :class:`~sparse_query.KCenterGreedy`
badge              :class:`~sparse_query.BADGE`
coreset            :class:`~sparse_query.BayesianCoreset`
=================  ==============================================================

Keyword overrides follow a colon, e.g. ``ours-iht:alpha=0.1,temperature=auto`` or
``ours-greedy:sketch_dim=128``; values are parsed as int, float, ``None``, ``True``/``False``
or kept as strings. ``ours-*`` run at the sampler's defaults (on a Bayesian model too: the
posterior embedding is the named variant ``ours-greedy:embedding=posterior``).

``iht_init`` (``"fallback"``, the default, ``"both"``, ``"zero"`` or ``"spread"``) is the
sampler's start of :func:`~sparse_query.solvers.proximal_iht`, e.g. ``ours-iht:iht_init=zero``
(the single start from ``w = 0``); it is refused on ``ours-greedy``, which never runs IHT.
"""
from __future__ import annotations

import re

__all__ = ["STRATEGIES", "NON_BAYESIAN", "BAYESIAN", "parse_strategy", "make_strategy", "slug"]

NON_BAYESIAN = ("ours-greedy", "ours-iht", "random", "entropy", "margin", "least-confidence",
                "kcenter", "badge")
BAYESIAN = ("ours-greedy", "ours-iht", "bald", "batchbald", "coreset", "random")
STRATEGIES = ("ours-greedy", "ours-iht", "random", "entropy", "margin", "least-confidence",
              "bald", "batchbald", "kcenter", "badge", "coreset")


def _value(text: str):
    if text == "None":
        return None
    if text in ("True", "False"):
        return text == "True"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_strategy(spec: str) -> tuple[str, dict]:
    """Split ``"name:key=value,..."`` into the name and a dict of keyword overrides."""
    name, _, rest = spec.partition(":")
    if name not in STRATEGIES:
        raise ValueError(f"strategy {name!r} (in {spec!r}) is not one of {list(STRATEGIES)}.")
    params = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.isidentifier():
            raise ValueError(f"strategy parameter {item!r} in {spec!r} must look like key=value.")
        params[key] = _value(value)
    return name, params


def slug(spec: str) -> str:
    """A file-name safe version of a strategy spec."""
    return re.sub(r"[^A-Za-z0-9.\-]+", "_", spec.replace(":", "__").replace("=", "-")).strip("_")


def make_strategy(spec: str, *, seed: int, device: str = "cpu", bayesian: bool = False):
    """Build the strategy named by ``spec`` with ``random_state=seed`` and ``device``.

    ``bayesian`` is accepted for the callers' sake and no longer changes anything: ``ours-*``
    run at the sampler's defaults (``embedding="auto"``) on every model.
    """
    import sparse_query as sq
    from sparse_query.solvers import IHT_INITS  # the starts proximal_iht accepts

    name, params = parse_strategy(spec)
    common = {"random_state": seed, "device": device}
    if name.startswith("ours-"):
        init = params.get("iht_init")  # None: the sampler's default start
        if init is not None and init not in IHT_INITS:
            raise ValueError(f"iht_init={init!r} in {spec!r} is not one of {list(IHT_INITS)}.")
        if init is not None and name != "ours-iht":
            raise ValueError(f"iht_init={init!r} in {spec!r} applies to ours-iht only; drop it "
                             f"or use ours-iht.")
        kwargs = dict(solver=name[5:], **common)
        kwargs.update(params)
        return sq.SparseApproxSampler(**kwargs)
    cls = {
        "random": sq.RandomSampling, "entropy": sq.EntropySampling,
        "margin": sq.MarginSampling, "least-confidence": sq.LeastConfidenceSampling,
        "bald": sq.BALD, "batchbald": sq.BatchBALD, "kcenter": sq.KCenterGreedy,
        "badge": sq.BADGE, "coreset": sq.BayesianCoreset,
    }[name]
    return cls(**{**common, **params})
