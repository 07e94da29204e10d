"""The built-in plugin table: (kind, id) -> lazy ``"module:Object"`` reference.

This is the one list of cityx's own plugins; :class:`~cityx.core.registry.Registry`
reads it and adds what installed distributions register. Nothing named
here is imported until it is used, so the table may name modules of every
layer without importing them.
"""

from __future__ import annotations

_CHECKS = {
    "admission": "cityx.submissions.admission:Admission",
    "performance.nominal": "cityx.assess.performance:NominalPerformance",
    "input.contract": "cityx.assess.contract:InputContract",
    "sandbox.nominal": "cityx.assess.sandbox:SandboxNominal",
    "redteam.campaign": "cityx.runs.campaign.check:RedteamCampaign",
    "fairness.groups": "cityx.assess.fairness.check:GroupFairnessCheck",
    "poisoning.audit": "cityx.defenses.poisoning.check:PoisoningAudit",
    "redteam.evasion": "cityx.attacks.evasion.check:EvasionCheck",
    "explain.fidelity": "cityx.assess.explain.check:ExplainFidelity",
    "explain.scaffolding": "cityx.assess.explain.scaffolding_check:ExplainScaffolding",
}
_ATTACKS = {
    "evasion.constrained": "cityx.attacks.evasion:ConstrainedEvasion",
    "world.phantom-queue": "cityx.attacks.world.sensor:PhantomQueue",
    "world.hidden-vehicles": "cityx.attacks.world.sensor:HiddenVehicles",
    "world.stuck-at": "cityx.attacks.world.sensor:StuckAt",
    "world.blackout": "cityx.attacks.world.sensor:Blackout",
    "world.stale": "cityx.attacks.world.sensor:Stale",
    "world.cv-spoof": "cityx.attacks.world.sensor:ConnectedVehicleSpoof",
    "world.phantom-vehicles": "cityx.attacks.world.phantom:PhantomVehicles",
    "message.forge": "cityx.attacks.world.message:Forge",
    "message.replay": "cityx.attacks.world.message:Replay",
    "message.tamper": "cityx.attacks.world.message:Tamper",
    "message.flood": "cityx.attacks.world.message:Flood",
    "poisoning.label-flip": "cityx.attacks.poisoning.label_flip:LabelFlip",
    "poisoning.backdoor": "cityx.attacks.poisoning.backdoor:Backdoor",
    "poisoning.clean-label": "cityx.attacks.poisoning.backdoor:CleanLabel",
    "poisoning.compromised": "cityx.attacks.poisoning.compromised:CompromisedSensors",
    "poisoning.demonstrations": "cityx.attacks.poisoning.demonstrations:DemonstrationPoison",
    "explanation.scaffold": "cityx.attacks.scaffold:ScaffoldAttack",
}
_TARGETS = {
    "onnx": "cityx.targets.onnx_model:OnnxModel",
    "skops": "cityx.targets.skops_model:SkopsModel",
    "lightgbm": "cityx.targets.lightgbm_model:LightgbmModel",
    "entrypoint": "cityx.targets.entrypoint:EntrypointModel",
    "pickle": "cityx.targets.pickled:PickledModel",
}
_CONTROLLERS = {
    "fixed": "cityx.worlds.traffic.controllers:FixedTime",
    "actuated": "cityx.worlds.traffic.controllers:Actuated",
    "max-pressure": "cityx.worlds.traffic.controllers:MaxPressurePlugin",
}
_SCENARIOS = {
    "grid3x3": "cityx.worlds.traffic.catalogue:Grid3x3",
    "cologne1": "cityx.worlds.traffic.catalogue:Cologne1",
    "cologne3": "cityx.worlds.traffic.catalogue:Cologne3",
    "cologne8": "cityx.worlds.traffic.catalogue:Cologne8",
    "ingolstadt1": "cityx.worlds.traffic.catalogue:Ingolstadt1",
    "ingolstadt7": "cityx.worlds.traffic.catalogue:Ingolstadt7",
    "ingolstadt21": "cityx.worlds.traffic.catalogue:Ingolstadt21",
    "grid4x4": "cityx.worlds.traffic.catalogue:Grid4x4",
    "arterial4x4": "cityx.worlds.traffic.catalogue:Arterial4x4",
}
_GUARDS = {
    "runtime": "cityx.defenses.guards:RuntimeGuardPlugin",
    "liveness": "cityx.defenses.liveness:LivenessGuardPlugin",
}
_POISONING_DETECTORS = {
    name: f"cityx.defenses.poisoning.detectors:{cls}"
    for name, cls in (
        ("label_consistency", "LabelConsistency"),
        ("confident_learning", "ConfidentLearning"),
        ("class_isolation", "ClassIsolation"),
        ("spectral", "Spectral"),
        ("temporal", "Temporal"),
        ("physical", "Physical"),
        ("cross_sensor", "CrossSensor"),
        ("next_interval", "NextInterval"),
        ("bounds", "Bounds"),
        ("declared_bounds", "DeclaredBounds"),
        ("reading_consistency", "ReadingConsistency"),
        ("trigger_boxes", "TriggerBoxes"),
    )
}

BUILTINS: dict[tuple[str, str], str] = {
    (kind, plugin_id): reference
    for kind, table in (
        ("check", _CHECKS),
        ("attack", _ATTACKS),
        ("target", _TARGETS),
        ("controller", _CONTROLLERS),
        ("scenario", _SCENARIOS),
        ("guard", _GUARDS),
        ("poisoning-detector", _POISONING_DETECTORS),
    )
    for plugin_id, reference in table.items()
}

__all__ = ["BUILTINS"]
