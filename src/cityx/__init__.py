"""CityXchange: test smart-city AI in a simulated city before it goes live.

The front door: the verbs and types a user needs, one import away::

    import cityx

    submission = cityx.open_submission("examples/submissions/metro-congestion")
    outcome = cityx.run_trial(cityx.TrialPlan(submission=submission.folder, seed=1))
    print(outcome.gate.decision)

Every name below is imported on first use, so ``import cityx`` stays cheap
(the command line starts from it). ``docs/api.md`` has one runnable example
per capability. The layers underneath (``cityx.core`` for the contracts,
then ``data``, ``targets``, ``worlds``, ``interop``, ``governance``,
``store``, ``submissions``, ``attacks``, ``defenses``, ``assess``,
``runs``) stay importable for finer control.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("cityx")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

# Public name -> "module:attribute", resolved on first access.
_EXPORTS = {
    # submissions
    "Submission": "cityx.submissions:Submission",
    "open_submission": "cityx.submissions:open_submission",
    "validate_submission": "cityx.submissions:validate_submission",
    # trials and the gate
    "TrialPlan": "cityx.runs.trial:TrialPlan",
    "run_trial": "cityx.runs.trial:run_trial",
    "run_demo": "cityx.runs.demo:run_demo",
    "load_policy": "cityx.governance.policy:load_policy",
    "write_report": "cityx.governance.report:write_report",
    "export_aiverify": "cityx.governance.aiverify:export_trial",
    # the sandbox
    "WorldSpec": "cityx.worlds.traffic:WorldSpec",
    "run_world": "cityx.runs:run_controller_world",
    "list_scenarios": "cityx.worlds.traffic:list_scenarios",
    # red team
    "CampaignPlan": "cityx.runs.campaign:CampaignPlan",
    "run_campaign": "cityx.runs.campaign:run_campaign",
    "evade": "cityx.attacks.evasion:evade",
    "world_attack": "cityx.attacks:world_attack",
    # training data
    "audit_poisoning": "cityx.defenses.poisoning:audit",
    "sanitise": "cityx.defenses.poisoning:sanitise",
    # fairness
    "group_fairness": "cityx.assess.fairness:group_fairness",
    # signed messages
    "generate_key": "cityx.interop:generate_key",
    "Signer": "cityx.interop:Signer",
    "Verifier": "cityx.interop:Verifier",
    "StaticTrustStore": "cityx.interop:StaticTrustStore",
    # the store and the audit log
    "Store": "cityx.store:Store",
    # plugins
    "Registry": "cityx.core:Registry",
    "PluginKind": "cityx.core:PluginKind",
    "check_plugin": "cityx.testing:check_plugin",
    # errors
    "CityxError": "cityx.core:CityxError",
}

# Written out, not computed, so that linters and type checkers read it.
__all__ = [
    "CampaignPlan",
    "CityxError",
    "PluginKind",
    "Registry",
    "Signer",
    "StaticTrustStore",
    "Store",
    "Submission",
    "TrialPlan",
    "Verifier",
    "WorldSpec",
    "__version__",
    "audit_poisoning",
    "check_plugin",
    "evade",
    "export_aiverify",
    "generate_key",
    "group_fairness",
    "list_scenarios",
    "load_policy",
    "open_submission",
    "run_campaign",
    "run_demo",
    "run_trial",
    "run_world",
    "sanitise",
    "validate_submission",
    "world_attack",
    "write_report",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time each name loads on first use
    from cityx.assess.fairness import group_fairness
    from cityx.attacks import world_attack
    from cityx.attacks.evasion import evade
    from cityx.core import CityxError, PluginKind, Registry
    from cityx.defenses.poisoning import audit as audit_poisoning
    from cityx.defenses.poisoning import sanitise
    from cityx.governance.aiverify import export_trial as export_aiverify
    from cityx.governance.policy import load_policy
    from cityx.governance.report import write_report
    from cityx.interop import Signer, StaticTrustStore, Verifier, generate_key
    from cityx.runs import run_controller_world as run_world
    from cityx.runs.campaign import CampaignPlan, run_campaign
    from cityx.runs.demo import run_demo
    from cityx.runs.trial import TrialPlan, run_trial
    from cityx.store import Store
    from cityx.submissions import Submission, open_submission, validate_submission
    from cityx.testing import check_plugin
    from cityx.worlds.traffic import WorldSpec, list_scenarios


def __getattr__(name: str) -> Any:
    reference = _EXPORTS.get(name)
    if reference is None:
        raise AttributeError(f"module 'cityx' has no attribute {name!r}")
    module, _, attr = reference.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # cached: the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
