"""The built-in plugin table and the default registry.

Built-ins are named here with lazy ``"module:Object"`` references; nothing
is imported until a plugin is used. Third-party plugins come from the
``cityx.plugins`` entry-point group (see :mod:`cityx.core.registry`).
"""

from __future__ import annotations

from cityx.core import PluginKind, Registry

BUILTINS: dict[tuple[PluginKind, str], str] = {
    (PluginKind.CHECK, "admission"): "cityx.submissions.admission:Admission",
    (PluginKind.CHECK, "performance.nominal"): "cityx.assess.performance:NominalPerformance",
    (PluginKind.CHECK, "input.contract"): "cityx.assess.contract:InputContract",
    (PluginKind.CHECK, "sandbox.nominal"): "cityx.assess.sandbox:SandboxNominal",
    (PluginKind.CHECK, "fairness.groups"): "cityx.assess.fairness.check:GroupFairnessCheck",
    (PluginKind.ATTACK, "evasion.constrained"): "cityx.attacks.evasion:ConstrainedEvasion",
    (PluginKind.TARGET, "onnx"): "cityx.targets.onnx_model:OnnxModel",
    (PluginKind.TARGET, "skops"): "cityx.targets.skops_model:SkopsModel",
    (PluginKind.TARGET, "lightgbm"): "cityx.targets.lightgbm_model:LightgbmModel",
    (PluginKind.TARGET, "entrypoint"): "cityx.targets.entrypoint:EntrypointModel",
    (PluginKind.TARGET, "pickle"): "cityx.targets.pickled:PickledModel",
}


def default_registry() -> Registry:
    """Built-ins plus whatever installed distributions register."""
    return Registry(BUILTINS)
