"""Untrained copies of a model for the refits behind ``temperature="auto"`` and
``alpha_reliability``.

``sklearn.base.clone`` copies a model's parameters. A skorch net built from a module
*instance* (``NeuralNetClassifier(MyModule(), ...)``) has that instance as its ``module``
parameter, and skorch trains it in place, so the clone's module carries the trained weights:
a "held-out" refit would start from weights that saw the held-out fold. :func:`untrained`
re-initialises every ``torch.nn.Module`` found among a clone's parameters (nested ones too:
a skorch net inside a pipeline or a bagging ensemble) with the submodules' own
``reset_parameters``, in registration order, so that under the same seed the copy starts
from the weights a net built from the module class would draw.
"""
from __future__ import annotations

import torch

__all__ = ["untrained", "RefitError"]


class RefitError(ValueError):
    """A parameter of the model is a torch module that cannot be re-initialised."""


def _modules_in_params(estimator, seen):
    get_params = getattr(estimator, "get_params", None)
    if get_params is None or id(estimator) in seen:
        return
    seen.add(id(estimator))
    try:
        params = get_params(deep=False)
    except Exception:  # noqa: BLE001 - not a scikit-learn style estimator
        return
    for name, value in params.items():
        if isinstance(value, torch.nn.Module):
            yield name, value
        elif isinstance(value, (list, tuple)):  # Pipeline.steps, VotingClassifier.estimators
            for item in value:
                item = item[-1] if isinstance(item, tuple) and item else item
                yield from _modules_in_params(item, seen)
        else:
            yield from _modules_in_params(value, seen)


def _reset(name, module):
    stuck = []
    for sub_name, sub in module.named_modules():
        if hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
        elif any(True for _ in sub.parameters(recurse=False)):
            stuck.append(sub_name or type(sub).__name__)
    if stuck:
        raise RefitError(
            f"the model's {name!r} parameter is a {type(module).__name__} instance (trained in "
            f"place), and its submodule(s) {stuck} have parameters but no reset_parameters(), "
            "so a refit cannot start from untrained weights. Build the net from the module "
            f"class instead (e.g. NeuralNetClassifier({type(module).__name__}, ...)) or give "
            "those submodules a reset_parameters() method.")


def untrained(cloned) -> None:
    """Re-initialise, in place, every torch module held as a parameter of ``cloned``.

    ``cloned`` must be a fresh ``sklearn.base.clone`` (its modules are its own deep copies, never
    the user's). Call it under the seed the refit runs with. Raises :class:`RefitError` when a
    module has parameters that no ``reset_parameters`` covers.
    """
    for name, module in _modules_in_params(cloned, set()):
        _reset(name, module)
