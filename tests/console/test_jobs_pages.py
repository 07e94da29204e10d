"""The "Request a trial" form and the job page, without a browser: once-only, CSRF,
progress that htmx polls until the job ends, cancel, and tenancy."""

from __future__ import annotations

import time

from .conftest import CSRF_RE, ONCE_RE, Console, signed_in


def test_request_a_trial_follow_it_and_cancel_it(console: Console) -> None:
    page_url = f"/console/submissions/{console.submission_id}"
    with console.client() as client:
        auditor = signed_in(console.client(), console, "auditor").get(page_url).text
        assert "Request a trial" not in auditor  # reads, requests nothing
        page = signed_in(client, console, "vendor").get(page_url).text
        assert "Request a trial" in page
        csrf, once = CSRF_RE.search(page), ONCE_RE.search(page)
        assert csrf and once
        form = {"csrf": csrf.group(1), "once": once.group(1), "seed": "3"}
        url = f"/console/submissions/{console.submission_id}/trials"
        assert client.post(url, data=form | {"csrf": "forged"}).status_code == 403
        bad = client.post(url, data=form | {"seed": "minus one"})
        assert bad.status_code == 422 and "whole number" in bad.text
        before = len(console.store.jobs())
        first = client.post(url, data=form)
        assert first.status_code == 303
        again = client.post(url, data=form)  # a double click acts once
        assert again.headers["location"] == first.headers["location"]
        assert len(console.store.jobs()) == before + 1
        job_url = first.headers["location"]
        job_id = int(job_url.rsplit("/", 1)[1])

        shown = client.get(job_url)
        assert shown.status_code == 200 and f"Trial job #{job_id}" in shown.text
        # Polled by htmx while it runs; without JavaScript a reload shows the same.
        assert f'hx-get="/console/jobs/{job_id}/progress"' in shown.text
        assert "reload it" in shown.text
        fragment = client.get(f"{job_url}/progress")
        assert fragment.status_code == 200 and 'id="job-progress"' in fragment.text

        rival = signed_in(console.client(), console, "rival")
        assert rival.get(job_url).status_code == 404
        assert rival.get(f"{job_url}/progress").status_code == 404

        cancel = ONCE_RE.search(shown.text)
        assert cancel
        ended = client.post(
            f"{job_url}/cancel", data={"csrf": csrf.group(1), "once": cancel.group(1)}
        )
        assert ended.status_code == 303 and ended.headers["location"] == job_url
        job = console.store.job(job_id)
        assert job is not None and job.cancel_requested == "user:vendor"
        # Once ended (the runner kills a running job's process), polling stops.
        for _ in range(100):
            job = console.store.job(job_id)
            if job is not None and job.finished:
                break
            time.sleep(0.1)
        final = client.get(f"{job_url}/progress").text
        assert "failed" in final and "cancelled by user:vendor" in final
        assert "hx-trigger" not in final
        assert f'href="/console/jobs/{job_id}"' in client.get(page_url).text
