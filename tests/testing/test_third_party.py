"""A third-party plugin package registers a target, an attack, a controller and a check
through the ``cityx.plugins`` entry points, and each passes ``check_plugin``."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityx.core import PluginKind, Registry
from cityx.testing import check_plugin

from ..support.cli import cityx

PACKAGE = Path(__file__).parents[1] / "fixtures" / "cityx-plugin-example"
DISTRIBUTION = "cityx-plugin-example"
PLUGINS = [
    (PluginKind.TARGET, "example.npz-linear"),
    (PluginKind.ATTACK, "example.dropout"),
    (PluginKind.CONTROLLER, "example.longest-queue"),
    (PluginKind.CHECK, "example.label-balance"),
]


@pytest.fixture(scope="module")
def installed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """The example package installed into a folder of its own, on this process's path and
    on the path of every child (the isolated worker and the world run there)."""
    site = tmp_path_factory.mktemp("site")
    # Built from a copy: a build writes build/ and *.egg-info beside its sources.
    source = tmp_path_factory.mktemp("source") / PACKAGE.name
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    previous = os.environ.get("PYTHONPATH")
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), previous]))
    importlib.invalidate_caches()
    yield site
    sys.path.remove(str(site))
    if previous is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = previous
    for name in [m for m in sys.modules if m.startswith("cityx_plugin_example")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def test_the_entry_points_register_every_kind_with_its_distribution(installed: Path) -> None:
    registry = Registry()
    for kind, plugin_id in PLUGINS:
        assert plugin_id in registry.ids(kind)
        assert registry.info(kind, plugin_id).distribution == DISTRIBUTION
    listed = cityx("plugins", "--json").json()["plugins"]
    mine = {(r["kind"], r["id"]): r for r in listed if r["distribution"] == DISTRIBUTION}
    assert set(mine) == {(k.value, i) for k, i in PLUGINS}
    assert mine[("target", "example.npz-linear")]["supports"] == ["controller", "predictor"]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "plugin_id"), PLUGINS, ids=[i for _, i in PLUGINS])
def test_each_plugin_passes_check_plugin(
    installed: Path, tmp_path: Path, kind: PluginKind, plugin_id: str
) -> None:
    registry = Registry()
    plugin = registry.load(kind, plugin_id)
    done = check_plugin(plugin, registry=registry, workdir=tmp_path)
    assert done == ["metadata", "constructor", "parameters", "runs", "deterministic"]


def test_an_allow_list_keeps_unlisted_distributions_out(installed: Path) -> None:
    allowed = Registry(allow=[DISTRIBUTION])
    assert "example.dropout" in allowed.ids(PluginKind.ATTACK)
    closed = Registry(allow=[])
    assert "example.dropout" not in closed.ids(PluginKind.ATTACK)
    assert "world.stale" in closed.ids(PluginKind.ATTACK)  # built-ins are always allowed
    with pytest.raises(Exception, match="not on the allow-list"):
        closed.load(PluginKind.ATTACK, "example.dropout")
    assert json.dumps([r.to_json() for r in closed.refused()])


@pytest.mark.slow
def test_a_trial_loads_a_third_party_target_only_when_the_policy_allows_it(
    installed: Path, tmp_path: Path
) -> None:
    from cityx import TrialPlan, run_trial
    from cityx.core import ManifestError
    from cityx.data import file_sha256
    from cityx.testing.fixtures import predictor_submission

    folder = predictor_submission(tmp_path / "npz")
    # The vendor ships the same kind of model in the example package's own format.
    from cityx_plugin_example.target import make_artifact

    artifact = make_artifact(folder).artifact
    manifest = (folder / "cityx.toml").read_text()
    start = manifest.index('path = "model.skops"')
    end = manifest.index("\n", manifest.index("sha256 = ", start))
    manifest = (
        manifest[:start]
        + f'path = "{artifact.name}"\nformat = "example.npz-linear"\n'
        + f'sha256 = "{file_sha256(artifact)}"'
        + manifest[end:]
    )
    (folder / "cityx.toml").write_text(manifest)
    (folder / "model.skops").unlink()
    policy = tmp_path / "closed.toml"
    policy.write_text(
        'schema_version = 1\nid = "closed"\nversion = "1"\n[plugins]\nallow = []\n'
        '[checks."performance.nominal"]\n'
    )
    store = f"sqlite:///{tmp_path / 'store.db'}"
    opened = run_trial(TrialPlan(submission=folder, out=tmp_path / "t1", store=store, seed=1))
    used = {(p["kind"], p["id"]): p for p in opened.results["plugins"]}
    assert used[("target", "example.npz-linear")]["distribution"] == DISTRIBUTION
    # Admission loads the model under the policy's allow-list: refused before anything
    # is written (a ManifestError naming the artifact), no trial folder left behind.
    with pytest.raises(ManifestError, match="not on the allow-list"):
        run_trial(
            TrialPlan(submission=folder, out=tmp_path / "t2", store=store, policy=policy, seed=1)
        )
    assert not (tmp_path / "t2").exists()
