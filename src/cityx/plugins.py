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
    (PluginKind.CHECK, "redteam.campaign"): "cityx.runs.campaign:RedteamCampaign",
    (PluginKind.CHECK, "fairness.groups"): "cityx.assess.fairness.check:GroupFairnessCheck",
    (PluginKind.CHECK, "poisoning.audit"): "cityx.defenses.poisoning.check:PoisoningAudit",
    (PluginKind.ATTACK, "evasion.constrained"): "cityx.attacks.evasion:ConstrainedEvasion",
    (PluginKind.ATTACK, "world.phantom-queue"): "cityx.attacks.world:PhantomQueue",
    (PluginKind.ATTACK, "world.hidden-vehicles"): "cityx.attacks.world:HiddenVehicles",
    (PluginKind.ATTACK, "world.stuck-at"): "cityx.attacks.world:StuckAt",
    (PluginKind.ATTACK, "world.blackout"): "cityx.attacks.world:Blackout",
    (PluginKind.ATTACK, "world.stale"): "cityx.attacks.world:Stale",
    (PluginKind.ATTACK, "world.cv-spoof"): "cityx.attacks.world:ConnectedVehicleSpoof",
    (PluginKind.ATTACK, "world.phantom-vehicles"): "cityx.attacks.world:PhantomVehicles",
    (PluginKind.ATTACK, "message.forge"): "cityx.attacks.world:Forge",
    (PluginKind.ATTACK, "message.replay"): "cityx.attacks.world:Replay",
    (PluginKind.ATTACK, "message.tamper"): "cityx.attacks.world:Tamper",
    (PluginKind.ATTACK, "message.flood"): "cityx.attacks.world:Flood",
    (PluginKind.ATTACK, "poisoning.label-flip"): "cityx.attacks.poisoning:LabelFlip",
    (PluginKind.ATTACK, "poisoning.backdoor"): "cityx.attacks.poisoning:Backdoor",
    (PluginKind.ATTACK, "poisoning.clean-label"): "cityx.attacks.poisoning:CleanLabel",
    (PluginKind.ATTACK, "poisoning.compromised"): "cityx.attacks.poisoning:CompromisedSensors",
    (PluginKind.ATTACK, "poisoning.demonstrations"): "cityx.attacks.poisoning:DemonstrationPoison",
    (PluginKind.TARGET, "onnx"): "cityx.targets.onnx_model:OnnxModel",
    (PluginKind.TARGET, "skops"): "cityx.targets.skops_model:SkopsModel",
    (PluginKind.TARGET, "lightgbm"): "cityx.targets.lightgbm_model:LightgbmModel",
    (PluginKind.TARGET, "entrypoint"): "cityx.targets.entrypoint:EntrypointModel",
    (PluginKind.TARGET, "pickle"): "cityx.targets.pickled:PickledModel",
}


def default_registry() -> Registry:
    """Built-ins plus whatever installed distributions register."""
    return Registry(BUILTINS)
