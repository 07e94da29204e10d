"""Behavioural conformance of plugins, shipped as library code.

``check_plugin(plugin)`` runs a plugin (a class registered in the plugin
registry, or one about to be) through the checks its kind's contract
calls for, the way scikit-learn's ``check_estimator`` does: its metadata,
a constructor that does no work, a clear error for bad parameters, a run
on a tiny fixture, and the same result for the same seed. Third parties
run it in their own tests::

    from cityx.testing import check_plugin

    def test_my_attack_honours_the_contract():
        check_plugin(MyAttack)

``plugin_checks(plugin)`` yields the same checks one by one, named, for a
parametrised test. See ``docs/plugins.md``.
"""

from .conformance import ConformanceError, PluginCheck, check_plugin, plugin_checks

__all__ = ["ConformanceError", "PluginCheck", "check_plugin", "plugin_checks"]
