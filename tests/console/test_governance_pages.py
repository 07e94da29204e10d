"""The process checklist answered and stored in the console, and the auditor's evidence export."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

from cityx.interop import trust_of_jwk
from cityx.runs.evidence import verify_evidence
from cityx.server.access import ServerState
from cityx.store import ChecklistAnswerRecord

from .conftest import CSRF_RE, Console, signed_in

GOLDEN = Path(__file__).parents[1] / "governance" / "golden" / "results-example.json"
ITEM = "aiverify.9.1.2"


def stored_answer(console: Console) -> ChecklistAnswerRecord | None:
    """The stored answer to ITEM for trial-v1's version (other tests answer other items)."""
    found = console.store.checklist_answers(system_id=console.system, version="1.0.0")
    return next((a for a in found if a.item_id == ITEM), None)


def test_the_vendor_answers_and_the_answers_are_stored_with_their_author(
    console: Console,
) -> None:
    with console.client() as client:
        signed_in(client, console, "vendor")
        page = client.get("/console/trials/trial-v1/checklist")
        assert page.status_code == 200
        names = re.findall(r'<select id="(answer-[^"]+)"', page.text)
        assert f"answer-{ITEM}" in names and len(names) > 90
        csrf = CSRF_RE.search(page.text)
        assert csrf
        form = {"csrf": csrf.group(1), f"answer-{ITEM}": "no"}
        refused = client.post("/console/trials/trial-v1/checklist", data=form)
        assert refused.status_code == 422 and f'id="comment-{ITEM}-error"' in refused.text
        assert stored_answer(console) is None
        form |= {f"answer-{ITEM}": "yes", f"comment-{ITEM}": "committee since 2025"}
        stored = client.post("/console/trials/trial-v1/checklist", data=form)
        assert stored.status_code == 303 and stored.headers["location"].endswith("saved=1")
        # the same form again (a double submit) stores nothing new
        again = client.post("/console/trials/trial-v1/checklist", data=form)
        assert again.headers["location"].endswith("saved=0")
        answer = stored_answer(console)
        assert answer is not None and (answer.answer, answer.author) == ("yes", "vendor")
        shown = client.get("/console/trials/trial-v1/checklist").text
        assert "Last answered by vendor" in shown
        download = client.get("/console/trials/trial-v1/checklist.json")
        items = {i["id"]: i for i in download.json()["items"]}
        assert (
            items[ITEM]["author"] == "vendor" and items[ITEM]["comment"] == "committee since 2025"
        )
    with console.client() as rival:
        signed_in(rival, console, "rival")
        assert rival.get("/console/trials/trial-v1/checklist").status_code == 404
        token = CSRF_RE.search(rival.get("/console").text)
        assert token
        form = {"csrf": token.group(1), f"answer-{ITEM}": "no", f"comment-{ITEM}": "x"}
        assert rival.post("/console/trials/trial-v1/checklist", data=form).status_code == 404
        after = stored_answer(console)
        assert after is not None and after.answer == "yes"  # the rival's "no" was not stored


def test_the_auditor_reads_the_checklist_but_cannot_answer(console: Console) -> None:
    with console.client() as client:
        signed_in(client, console, "auditor")
        page = client.get("/console/trials/trial-v1/checklist")
        assert page.status_code == 200 and "<select" not in page.text
        assert 'method="post"' not in page.text.split("<main", 1)[-1]
        assert client.post("/console/trials/trial-v1/checklist", data={}).status_code == 403
        api = client.put(
            "/api/v1/trials/trial-v1/checklist",
            json={"answers": [{"item": ITEM, "answer": "yes"}]},
        )
        assert api.status_code in (401, 403)


def test_a_bad_answer_through_the_api_names_the_item(console: Console) -> None:
    headers = {"Authorization": f"Bearer {console.tokens['vendor']}"}
    with console.client() as client:
        bad = client.put(
            "/api/v1/trials/trial-v2/checklist",
            json={"answers": [{"item": "aiverify.99.1.1", "answer": "yes"}]},
            headers=headers,
        )
        assert bad.status_code == 422 and "aiverify.99.1.1" in bad.text
        wrong = client.put(
            "/api/v1/trials/trial-v2/checklist",
            json={"answers": [{"item": ITEM, "answer": "maybe"}]},
            headers=headers,
        )
        assert wrong.status_code == 422 and ITEM in wrong.text


def test_the_auditor_exports_a_signed_package_that_verifies(
    console: Console, tmp_path: Path
) -> None:
    # A trial with a real folder (the fixture's trials point at /nowhere).
    folder = tmp_path / "trial-evidence"
    folder.mkdir()
    results = json.loads(GOLDEN.read_text("utf-8")) | {"trial_id": "trial-evidence"}
    (folder / "results.json").write_text(json.dumps(results), "utf-8")
    sub = console.store.submission(console.submission_id)
    assert sub is not None
    console.store.begin_trial(
        trial_id="trial-evidence",
        system_id=sub.system_id,
        version=sub.version,
        sha256=sub.sha256,
        seed=0,
        policy_id="cityx.default",
        policy_sha256="0" * 64,
        out_dir=str(folder),
        plan={},
    )
    console.store.finish_trial(
        trial_id="trial-evidence",
        results=results,
        findings=[],
        gate={"decision": "pass", "reasons": []},
    )
    with console.client() as client:
        signed_in(client, console, "auditor")
        page = client.get("/console/trials/trial-evidence")
        assert 'href="/console/trials/trial-evidence/evidence"' in page.text
        answer = client.get("/console/trials/trial-evidence/evidence?pdf=false")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/gzip"
        state: ServerState = client.app.state.cityx  # type: ignore[attr-defined]
        key = state.city_key()
    archive = tmp_path / "evidence.tar.gz"
    archive.write_bytes(answer.content)
    result = verify_evidence(archive, trust_of_jwk(key.public_jwk()))
    assert result.ok, result.problems
    with tarfile.open(fileobj=io.BytesIO(answer.content)) as tar:
        names = set(tar.getnames())
    assert {"results.json", "report.html", "checklist.json", "audit-head.json"} <= names
    with console.client() as client:
        signed_in(client, console, "vendor")
        assert client.get("/console/trials/trial-evidence/evidence").status_code == 403
