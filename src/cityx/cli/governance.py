"""``cityx report render|compare`` and ``cityx evidence pack|verify``: the regulator's report.

``report render`` writes a trial's governance report (HTML, PDF or JSON, or
its one-page summary); ``report compare`` lists what changed between two
trials; ``evidence pack`` writes a signed evidence package and ``evidence
verify`` checks one (exit 3 when anything changed or the signer is not
trusted).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cityx.core import InputError
from cityx.core.audit import AuditHead

from .common import EXIT_OK, EXIT_VERDICT, Subparsers, add_command, add_group, emit

_FRAMEWORKS = ("aiverify", "nist", "euai", "atlas", "all")


def register(sub: Subparsers) -> None:
    report = add_group(sub, "report", "Render a trial's governance report, or compare two trials.")
    render = add_command(
        report,
        "render",
        "Write a trial's report with every framework's requirements, its evidence and "
        "status, and the vendor's claims against the measurements.",
        "cityx report render cityx-demo/acme-signals --format pdf --summary --out acme-summary.pdf",
        _render,
    )
    render.add_argument("trial", type=Path, metavar="TRIAL_DIR")
    render.add_argument("--format", choices=("html", "pdf", "json"), default="html")
    render.add_argument(
        "--framework",
        default="all",
        metavar="NAME",
        help=f"one of {', '.join(_FRAMEWORKS)} (default: all)",
    )
    render.add_argument("--summary", action="store_true", help="write the one-page summary")
    render.add_argument(
        "--checklist",
        type=Path,
        metavar="FILE",
        help="filled-in checklist answers (.csv, .xlsx, .json); an 'author' column names "
        "who attests each answer",
    )
    render.add_argument(
        "--store",
        metavar="URL",
        help="read the regulator's ruling on the trial, and the checklist answers the console "
        "stored, from this store",
    )
    render.add_argument(
        "--trust",
        type=Path,
        metavar="TRUST",
        help="the city's trust document or folder: checks the ruling's signature (and a "
        "decision log's seals when it holds their key)",
    )
    _oversight_arg(render)
    render.add_argument("--out", type=Path, required=True, metavar="FILE")
    render.add_argument("--json", action="store_true", help="print one JSON object")

    compare = add_command(
        report,
        "compare",
        "List findings fixed, new and unchanged between two trials, metric changes with "
        "their intervals, and policy and checklist changes.",
        "cityx report compare cityx-demo/metro-congestion cityx-demo/poisoning-drill/trial",
        _compare,
    )
    compare.add_argument("old", type=Path, metavar="OLD_TRIAL")
    compare.add_argument("new", type=Path, metavar="NEW_TRIAL")
    compare.add_argument("--json", action="store_true", help="print one JSON object")

    evidence = add_group(sub, "evidence", "Pack a trial's evidence, signed, or verify a package.")
    pack = add_command(
        evidence,
        "pack",
        "Write a trial's signed evidence package: results, report (HTML and PDF), ledgers, "
        "policy, checklist answers and artifact digests, with a signed manifest of SHA-256s.",
        "cityx evidence pack cityx-demo/acme-signals --key city-key --out evidence-acme",
        _pack,
    )
    pack.add_argument("trial", type=Path, metavar="TRIAL_DIR")
    pack.add_argument(
        "--key",
        type=Path,
        required=True,
        metavar="KEY",
        help="the signing key (.key.jwk from 'cityx interop keygen'), or its folder",
    )
    pack.add_argument("--out", type=Path, required=True, metavar="PKG")
    pack.add_argument("--archive", action="store_true", help="write one .tar.gz instead")
    pack.add_argument(
        "--trust", type=Path, metavar="TRUST", help="refuse a key this trust store does not hold"
    )
    pack.add_argument("--checklist", type=Path, metavar="FILE", help="checklist answers to add")
    pack.add_argument(
        "--audit-head", metavar="N:HASH", help="the audit log's head ('cityx audit head')"
    )
    pack.add_argument(
        "--store",
        metavar="URL",
        help="read the audit log's head (unless --audit-head), the regulator's ruling and the "
        "console's checklist answers from this store",
    )
    _oversight_arg(pack)
    pack.add_argument("--no-pdf", action="store_true", help="leave the PDF report out")
    pack.add_argument("--json", action="store_true", help="print one JSON object")

    verify = add_command(
        evidence,
        "verify",
        "Check an evidence package's signature and every file's digest; exit 3 naming the "
        "file or key when anything changed or the signer is not trusted.",
        "cityx evidence verify evidence-acme --trust city-key --json",
        _verify,
    )
    verify.add_argument("package", type=Path, metavar="PKG")
    verify.add_argument(
        "--trust", type=Path, required=True, metavar="TRUST", help="trust document or folder"
    )
    verify.add_argument("--json", action="store_true", help="print one JSON object")


def _oversight_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--oversight",
        type=Path,
        action="append",
        default=[],
        metavar="RUN_DIR",
        help="a run under oversight ('cityx oversee run|drill --out'): its decision log, drill "
        "and Art. 14(4) table become evidence; repeatable",
    )


def _render(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.governance.regulator import render, write_atomic
    from cityx.governance.trial_folder import open_trial
    from cityx.interop import load_trust
    from cityx.runs.report_inputs import build_report

    if args.framework not in _FRAMEWORKS:
        raise InputError(
            f"unknown framework {args.framework!r}", hint=f"use one of {', '.join(_FRAMEWORKS)}"
        )
    trial = open_trial(args.trial)
    trust = load_trust(args.trust) if args.trust else None
    report = build_report(
        trial,
        framework=args.framework,
        checklist=args.checklist,
        store_url=args.store,
        trust=trust,
        oversight=args.oversight,
    )
    data = render(report, args.format, summary_only=args.summary)
    out = write_atomic(data, args.out)
    counts = {a.framework.id: a.counts() for a in report.assessments}
    ruling = report.external.ruling
    emit(
        args,
        {
            "trial_id": trial.results.trial_id,
            "format": args.format,
            "summary": args.summary,
            "out": str(out),
            "bytes": len(data),
            "frameworks": counts,
            "ruling": ruling.to_json() if ruling else None,
            "oversight_runs": len(report.external.oversight),
        },
        "\n".join(
            [f"{fw}: " + ", ".join(f"{n} {s}" for s, n in c.items()) for fw, c in counts.items()]
            + [
                f"ruling: {ruling.decision} by {ruling.regulator}, signature "
                f"{ruling.signature_check}"
                if ruling
                else f"ruling: none shown ({report.external.ruling_note})",
                f"wrote {out}",
            ]
        ),
    )
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.governance.compare import compare_trials
    from cityx.governance.trial_folder import open_trial, trial_answers

    old = open_trial(args.old)
    new = open_trial(args.new)
    result = compare_trials(
        old.results,
        new.results,
        old_answers=trial_answers(old, None),
        new_answers=trial_answers(new, None),
    )
    emit(args, result.to_json(), result.text())
    return EXIT_OK


def _signing_key_path(path: Path) -> Path:
    if path.is_dir():
        keys = sorted(path.glob("*.key.jwk"))
        if len(keys) != 1:
            raise InputError(
                f"the folder holds {len(keys)} *.key.jwk files, not one",
                where=str(path),
                hint="give the key file itself",
            )
        return keys[0]
    return path


def _pack(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.interop import load_signing_key, load_trust
    from cityx.runs.evidence import pack_evidence

    key = load_signing_key(_signing_key_path(args.key))
    trust = load_trust(args.trust) if args.trust else None
    head = _head(args.audit_head) if args.audit_head else None
    if args.store and head is None:
        from cityx.store import Store  # lazy: cityx --help stays fast

        with Store.open(args.store) as store:
            head = store.head()
    packed = pack_evidence(
        args.trial,
        key,
        args.out,
        archive=args.archive,
        checklist=args.checklist,
        audit_head=head,
        pdf=not args.no_pdf,
        trust=trust,
        store_url=args.store,
        oversight=args.oversight,
    )
    emit(
        args,
        packed.to_json(),
        f"wrote {packed.path}: {len(packed.files)} files, signed with key {packed.kid}",
    )
    return EXIT_OK


def _head(text: str) -> AuditHead:
    entries, _, digest = text.partition(":")
    if not entries.isdigit() or len(digest) != 64:
        raise InputError(
            f"--audit-head {text!r} is not N:HASH", hint="as printed by 'cityx audit head'"
        )
    return AuditHead(int(entries), digest.lower())


def _verify(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.interop import load_trust
    from cityx.runs.evidence import verify_evidence

    trust = load_trust(args.trust)
    result = verify_evidence(args.package, trust)
    emit(args, result.to_json(), result.text())
    return EXIT_OK if result.ok else EXIT_VERDICT


__all__ = ["register"]
