"""Job rows on both backends: one claim of a job wins, a requeued job runs again."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from cityx.store import Store


def _job(store: Store) -> int:
    store.record_submission(
        system_id="v/s",
        version="1",
        vendor="v",
        kind="predictor",
        sha256="0" * 64,
        path="/nowhere",
        manifest={},
    )
    sid = store.submission_id("v/s", "1", "0" * 64)
    assert sid is not None
    return store.add_job(
        kind="trial", submission_id=sid, system_id="v/s", organisation="v", actor="t", params={}
    )


def test_one_claim_wins_and_a_requeued_job_is_claimed_again(any_url: str) -> None:
    with Store.open(any_url) as store:
        job = _job(store)
        # A job queued twice (a message left over, a worker rebuilding the queue) runs once.
        with ThreadPoolExecutor(8) as pool:
            claims = list(
                pool.map(
                    lambda i: store.claim_job(job_id=job, trial_id=f"t-{i}", actor="w"), range(8)
                )
            )
        won = [c for c in claims if c is not None]
        assert len(won) == 1 and won[0].status == "running"
        assert store.job_ids("running") == [job] and store.job_ids("queued") == []
        assert store.claim_job(job_id=job, trial_id="t-late", actor="w") is None

        assert store.requeue_job(job, actor="w", reason="interrupted")
        assert not store.requeue_job(job, actor="w", reason="twice")  # it is queued now
        again = store.job(job)
        assert again is not None
        assert (again.status, again.stage, again.trial_id, again.started_at) == (
            "queued",
            "queued",
            None,
            None,
        )
        entry = [e for e in store.audit_entries() if e.action == "job.requeued"]
        assert [e.payload for e in entry] == [
            {"reason": "interrupted", "abandoned_trial": won[0].trial_id}
        ]
        rerun = store.claim_job(job_id=job, trial_id="t-again", actor="w")
        assert rerun is not None and rerun.trial_id == "t-again"
        assert store.finish_job(job, ok=True, error=None, actor="w")
        assert not store.requeue_job(job, actor="w", reason="done already")
