"""The console's pages through the app (no browser): login, policy, tenancy, forms."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cityx.server.console.session import CONSOLE_COOKIE, safe_next

from ..server.conftest import METRO, pack
from .conftest import CSRF_RE, ONCE_RE, PASSWORD, Console, login, signed_in

PAGES = (
    "/console",
    "/console/submissions",
    "/console/submissions/{sub}",
    "/console/trials",
    "/console/trials/trial-v1",
    "/console/trials/trial-v1/report",
    "/console/trials/trial-v1/checklist",
    "/console/compare?system={system}",
    "/console/queue",
    "/console/policy",
    "/console/alerts",
    "/console/audit",
    "/console/users",
)
# Which role reaches which page: the server's policy, written out again by hand.
R, V, T, OV, A, M = "regulator", "vendor", "redteam", "overseer", "auditor", "admin"
EVERYONE = {R, V, T, OV, A, M}
ALLOWED = {
    "/console": EVERYONE,
    "/console/submissions": {R, V, T, A},
    "/console/submissions/{sub}": {R, V, T, A},
    "/console/trials": {R, V, A},
    "/console/trials/trial-v1": {R, V, A},
    "/console/trials/trial-v1/report": {R, V, A},
    "/console/trials/trial-v1/checklist": {R, V, A},
    "/console/compare?system={system}": {R, V, A},
    "/console/queue": {R},
    "/console/policy": {R, V, A},
    "/console/alerts": {R, A},
    "/console/audit": {R, A},
    "/console/users": {M},
}


def url(console: Console, page: str) -> str:
    return page.replace("{sub}", str(console.submission_id)).replace("{system}", console.system)


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/console/trials", "/console/trials"),
        ("/console/audit?after=5", "/console/audit?after=5"),
        ("//evil.example/x", "/console"),
        ("https://evil.example/", "/console"),
        ("/\\evil.example", "/console"),
        ("javascript:alert(1)", "/console"),
        ("", "/console"),
    ],
)
def test_next_is_a_same_origin_path_only(asked: str, kept: str) -> None:
    assert safe_next(asked) == kept


def test_login_returns_to_the_page_asked_for_and_never_off_site(console: Console) -> None:
    with console.client() as client:
        first = client.get("/console/trials")
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=%2Fconsole%2Ftrials"
        login(client, "vendor", next_="/console/trials")
        assert client.get("/console/trials").status_code == 200
    with console.client() as client:
        page = client.get("/login")
        csrf = CSRF_RE.search(page.text)
        assert csrf
        answer = client.post(
            "/login",
            data={
                "username": "vendor",
                "password": PASSWORD,
                "csrf": csrf.group(1),
                "next": "//evil.example/steal",
            },
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/console"


def test_login_errors_sit_beside_their_field(console: Console) -> None:
    with console.client() as client:
        csrf = CSRF_RE.search(client.get("/login").text)
        assert csrf
        empty = client.post("/login", data={"username": "", "password": "", "csrf": csrf.group(1)})
        assert empty.status_code == 401
        assert (
            'id="username-error"' in empty.text
            and 'aria-describedby="username-error"' in empty.text
        )
        assert 'id="password-error"' in empty.text
        wrong = client.post(
            "/login",
            data={"username": "vendor", "password": "not it at all", "csrf": csrf.group(1)},
        )
        assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
        assert 'aria-describedby="password-error"' in wrong.text
        assert CONSOLE_COOKIE not in wrong.cookies
        forged = client.post(
            "/login", data={"username": "vendor", "password": PASSWORD, "csrf": "x"}
        )
        assert forged.status_code == 422 and "form expired" in forged.text


def test_an_expired_session_goes_to_login_keeping_the_page(console: Console) -> None:
    with console.client() as client:
        signed_in(client, console, "auditor")
        assert client.get("/console/audit").status_code == 200
        # The session ends (revoked here; an expired one is refused the same way).
        token = client.cookies[CONSOLE_COOKIE]
        console.store.revoke_tokens(actor="test", token_id=token.split("_")[1])
        again = client.get("/console/audit?after=3")
        assert again.status_code == 303
        assert again.headers["location"] == "/login?next=%2Fconsole%2Faudit%3Fafter%3D3"


@pytest.mark.parametrize("user", [R, V, T, OV, A, M])
def test_each_role_reaches_exactly_its_pages(console: Console, user: str) -> None:
    with console.client() as client:
        signed_in(client, console, user)
        for page in PAGES:
            answer = client.get(url(console, page))
            expected = 200 if user in ALLOWED[page] else 403
            assert answer.status_code == expected, (user, page, answer.text[:300])
            assert answer.headers["content-type"].startswith("text/html")
        # The navigation offers only what the role may open.
        home = client.get("/console").text
        for page in ("/console/queue", "/console/audit", "/console/users"):
            assert (f'href="{page}"' in home) == (user in ALLOWED[page]), (user, page)


def test_another_vendor_reaches_nothing_of_vendor_a_by_url(console: Console) -> None:
    with console.client() as client:
        signed_in(client, console, "rival")
        for page in (
            f"/console/submissions/{console.submission_id}",
            "/console/trials/trial-v1",
            "/console/trials/trial-v1/report",
            f"/console/compare?system={console.system}",
            "/console/trials/no-such-trial",
            "/console/submissions/999999",
        ):
            answer = client.get(page)
            assert answer.status_code == 404, page
            assert console.system not in answer.text
        assert console.system not in client.get("/console/submissions").text
        assert "trial-v1" not in client.get("/console/trials").text


def test_pages_carry_a_strict_csp_without_inline_script(console: Console) -> None:
    with console.client() as client:
        signed_in(client, console, "regulator")
        page = client.get("/console/trials/trial-v1")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe" not in csp
        assert len(page.headers.get_list("content-security-policy")) == 1
        assert "<script>" not in page.text and " style=" not in page.text
        api = client.get("/api/v1/openapi.json")
        assert api.headers["content-security-policy"].startswith("default-src 'none'")
        assert client.get("/console/static/htmx.min.js").status_code == 200
        assert client.get("/console/static/PROVENANCE.md").status_code == 404


def _ruling_form(client: TestClient, trial: str) -> dict[str, str]:
    page = client.get(f"/console/trials/{trial}").text
    csrf, once = CSRF_RE.search(page), ONCE_RE.search(page)
    assert csrf and once, page
    return {"csrf": csrf.group(1), "once": once.group(1)}


def test_a_ruling_form_checks_its_fields_and_acts_once(console: Console) -> None:
    trial = "trial-spare-1"
    with console.client() as client:
        signed_in(client, console, "regulator")
        form = _ruling_form(client, trial)
        bad = client.post(
            f"/console/trials/{trial}/ruling",
            data=form | {"decision": "approve-with-conditions", "reasons": "", "conditions": ""},
        )
        assert bad.status_code == 422
        assert 'id="reasons-error"' in bad.text and 'id="conditions-error"' in bad.text
        good = form | {
            "decision": "approve-with-conditions",
            "reasons": "accuracy is close to target",
            "conditions": "re-trial in 90 days\nreport drift monthly",
        }
        first = client.post(f"/console/trials/{trial}/ruling", data=good)
        second = client.post(f"/console/trials/{trial}/ruling", data=good)
        assert first.status_code == second.status_code == 303
        assert first.headers["location"] == second.headers["location"]
        rulings = [e for e in console.store.audit_entries() if e.action == "ruling.recorded"]
        assert [e.subject for e in rulings].count(trial) == 1
        shown = client.get(f"/console/trials/{trial}").text
        assert "re-trial in 90 days" in shown and "Decide and sign" not in shown
        # The vendor sees the ruling and its conditions on its own trial.
    with console.client() as vendor:
        signed_in(vendor, console, "vendor")
        assert "report drift monthly" in vendor.get(f"/console/trials/{trial}").text


def test_forms_without_the_csrf_field_are_refused(console: Console) -> None:
    with console.client() as client:
        signed_in(client, console, "regulator")
        form = _ruling_form(client, "trial-spare-2")
        answer = client.post(
            "/console/trials/trial-spare-2/ruling",
            data={"once": form["once"], "decision": "reject", "reasons": "no"},
        )
        assert answer.status_code == 403
        assert console.store.ruling("trial-spare-2") is None
        assert client.post("/logout", data={}).status_code == 403


def test_an_upload_shows_its_problems_by_file_and_field(console: Console, tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in METRO.iterdir():
        if item.is_file():
            (broken / item.name).write_bytes(item.read_bytes())
    manifest = broken / "cityx.toml"
    manifest.write_text(manifest.read_text().replace('id = "', 'id = "Not A Valid Id ', 1))
    with console.client() as client:
        signed_in(client, console, "vendor")
        page = client.get("/console/submissions").text
        form = {"csrf": CSRF_RE.search(page).group(1), "once": ONCE_RE.search(page).group(1)}  # type: ignore[union-attr]
        refused = client.post(
            "/console/submissions",
            data=form,
            files={"archive": ("broken.tar.gz", pack(broken), "application/gzip")},
        )
        assert refused.status_code == 422, refused.text[:500]
        assert "Validation problems" in refused.text and "cityx.toml" in refused.text
        nothing = client.post("/console/submissions", data=form)
        assert nothing.status_code == 422 and "Choose a .tar.gz" in nothing.text
        fresh = client.get("/console/submissions").text
        form = {"csrf": CSRF_RE.search(fresh).group(1), "once": ONCE_RE.search(fresh).group(1)}  # type: ignore[union-attr]
        stored = client.post(
            "/console/submissions",
            data=form,
            files={"archive": ("metro.tar.gz", pack(METRO), "application/gzip")},
        )
        assert stored.status_code == 303, stored.text[:500]
        assert stored.headers["location"].startswith("/console/submissions/")
        again = client.post(
            "/console/submissions",
            data=form,
            files={"archive": ("metro.tar.gz", pack(METRO), "application/gzip")},
        )
        assert again.headers["location"] == stored.headers["location"]


def test_the_auditor_verifies_the_audit_log_read_only(console: Console) -> None:
    with console.client() as client:
        signed_in(client, console, "auditor")
        page = client.get("/console/audit?verify=1")
        assert page.status_code == 200 and "The chain verifies." in page.text
        # Read-only: the auditor's pages hold no form that changes anything.
        for path in ("/console/audit", "/console/trials/trial-v1", "/console/alerts"):
            text = client.get(path).text
            assert 'method="post" action="/console' not in text, path


def test_a_malformed_address_is_an_html_page(console: Console) -> None:
    with console.client() as client:
        signed_in(client, console, "auditor")
        answer = client.get("/console/submissions/not-a-number")
        assert answer.status_code == 422 and answer.headers["content-type"].startswith("text/html")
        assert "submission_id" in answer.text
