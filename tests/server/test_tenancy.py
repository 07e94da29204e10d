"""Another tenant's objects do not exist for a vendor: 404 on every object route, nothing listed."""

from __future__ import annotations

import io
import tarfile

import pytest

from .conftest import World
from .test_policy_matrix import MATRIX, call, ended_job

# Every route that names an object (by a path parameter) and that vendors may use.
OBJECT_ROUTES = sorted(k for k, who in MATRIX.items() if "{" in k[1] and "vendor" in who)


@pytest.mark.parametrize(("method", "path"), OBJECT_ROUTES)
def test_a_rival_vendor_gets_404_for_every_object_route(
    world: World, method: str, path: str
) -> None:
    ended_job(world)  # the job the job routes name, made before counting entries
    before = len(world.store.audit_entries())
    answer = call(world, method, path, "rival")
    assert answer.status_code == 404, answer.text
    # The answer is the same as for an id that does not exist, and the refusal is audited.
    denied = world.store.audit_entries()[before:]
    assert [e.action for e in denied] == ["access.denied"]
    assert denied[0].actor == "user:rival"


@pytest.mark.parametrize("user", ["regulator", "vendor", "rival", "redteam", "auditor"])
@pytest.mark.parametrize("guess", ["999", "0", "-1"])
def test_guessed_ids_are_404_for_everyone(world: World, user: str, guess: str) -> None:
    for path in ("submissions/{}", "trials/{}", "trials/{}/ruling"):
        answer = world.client.get(f"/api/v1/{path.format(guess)}", headers=world.auth(user))
        assert answer.status_code in (403, 404), answer.text


def test_listings_show_only_the_callers_organisation(world: World) -> None:
    for route in ("submissions", "trials"):
        own = world.client.get(f"/api/v1/{route}", headers=world.auth("vendor")).json()[route]
        rival = world.client.get(f"/api/v1/{route}", headers=world.auth("rival")).json()[route]
        everyone = world.client.get(f"/api/v1/{route}", headers=world.auth("auditor")).json()
        assert own and rival == []
        assert {o["organisation"] for o in own} == {"metro-analytics"}
        assert len(everyone[route]) >= len(own)


def test_system_ids_are_namespaced_by_the_uploaders_organisation(world: World) -> None:
    sub = world.client.get(f"/api/v1/submissions/{world.model_id}", headers=world.auth("vendor"))
    # The manifest says "Metro Analytics Ltd"; the identity says metro-analytics.
    assert sub.json()["system"] == "metro-analytics/metro-congestion"
    assert sub.json()["organisation"] == "metro-analytics"


def test_the_artifact_goes_to_its_own_organisation_only(world: World) -> None:
    answer = world.client.get(
        f"/api/v1/submissions/{world.model_id}/artifact", headers=world.auth("vendor")
    )
    assert answer.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(answer.content), mode="r:gz") as tar:
        names = tar.getnames()
    assert any(n.endswith("cityx.toml") for n in names)
    assert any(n.endswith("model.onnx") for n in names)
    assert world.store.audit_entries()[-1].action == "artifact.downloaded"
    for user in ("regulator", "redteam", "auditor"):
        refused = world.client.get(
            f"/api/v1/submissions/{world.model_id}/artifact", headers=world.auth(user)
        )
        assert refused.status_code == 403
