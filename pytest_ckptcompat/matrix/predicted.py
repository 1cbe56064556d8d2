"""Predicted columns of the matrix report: the torch releases the matrix did not install.

A matrix installs a few torch releases; the rules table (`scan.torch_table`)
knows every one from 1.13. `predict_columns` judges every torch golden of the
run, statically, by each release between the lowest and the highest torch the
matrix installed whose minor it did not install (the newest patch of that
minor), with each numpy the readers used and the allowlist the test applies (the
project's, plus the names its real loads reported as allowed by the user, such as
a marker's): columns marked *predicted*, so an upgrade to a release in between is
not a blind spot.

Where the matrix did install a release, the real load of every golden there
is compared with the prediction for that very reader (its torch, its numpy,
and the allowlist that load used: the project's, plus any name the load
reported as allowed by the user, such as a marker's): they agree when both
load (a `mismatch` loaded), or when neither does with the same outcome and
the same blocked and missing names. A disagreement is a bug of ours (in the
tables or the scan): `ckptcompat report` then exits 1.

`merge.merge_reports(..., goldens=...)` calls `predict_columns` with the
statuses the cells recorded. Nothing here imports torch or numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..errors import CkptCompatError
from ..golden import Golden, GoldenStore
from ..scan import torch_table
from ..scan.allowlist import Allowlist
from ..scan.predict import Prediction, predict_bytes, reader_numpy
from ..scan.releases import Release, release_of, version_key
from ..schemas import (
    MatrixDisagreement,
    MatrixDoc,
    MatrixPredicted,
    MatrixPredictedOutcome,
    MatrixPredictedReader,
)
from ..vocab import LOADED


def predicted_releases(installed: Iterable[str]) -> list[str]:
    """The releases to predict: one per minor strictly inside the installed range, not installed.

    `installed`: the readers' torch versions (`2.13.0+cpu` counts as 2.13).
    """
    minors = {release_of(v) for v in installed if v}
    if len(minors) < 2:
        return []
    low, high = min(minors), max(minors)
    newest: dict[Release, str] = {}
    for version in torch_table.known_versions():  # oldest first: the last one of a minor wins
        minor = release_of(version)
        if low < minor < high and minor not in minors:
            newest[minor] = version
    return [newest[m] for m in sorted(newest)]


def predict_columns(
    doc: MatrixDoc, goldens: Path, loads: Mapping[tuple[str, str, str], Mapping[str, str]]
) -> MatrixPredicted:
    """`ckptcompat.matrix/1`'s `predicted`: columns for releases not installed, agreement.

    `loads`: each real golden load's global statuses, by (artifact, writer, reader).
    """
    real_readers = [r for r in doc["readers"] if r.get("torch")]
    releases = predicted_releases(r["torch"] or "" for r in real_readers)
    problems: list[str] = []
    numpys = [
        n
        for n in sorted({r["numpy"] or "none" for r in real_readers}, key=version_key)
        if _numpy_known(n, problems)
    ]
    files = _read_goldens(goldens, doc, problems)
    readers: list[MatrixPredictedReader] = [
        {"tag": f"torch{t}-numpy{n} (predicted)", "torch": t, "numpy": n}
        for t in releases
        for n in numpys
    ]
    outcomes: list[MatrixPredictedOutcome] = []
    users = _user_names(loads)
    for numpy in numpys:
        for golden, data in files.values() if releases else ():
            # The test's own allowlist (a marker's, `check(safe_globals=...)`) applies on
            # every torch: the names its real loads reported allowed by the user.
            user = users.get((golden.artifact, golden.writer), [])
            allowlist = _allowlist([*doc["allowlist"], *user], numpy)
            prediction = _predict(golden, data, releases, numpy, allowlist)
            for release in releases:
                verdict = prediction.verdict(release)
                outcomes.append(
                    {
                        "artifact": golden.artifact,
                        "writer": golden.writer,
                        "reader": f"torch{release}-numpy{numpy} (predicted)",
                        "outcome": verdict["outcome"],
                        "blocked": verdict["blocked"],
                        "missing": verdict["missing"],
                    }
                )
    checked, disagreements = _agreement(doc, files, loads, problems)
    return {
        "releases": releases,
        "readers": readers,
        "outcomes": outcomes,
        "agreement": {"checked": checked, "disagreements": disagreements},
        "problems": list(dict.fromkeys(problems)),  # a reader's problem once, not per load
    }


def _numpy_known(numpy: str, problems: list[str]) -> bool:
    """Whether the numpy names table holds `numpy` (else a problem says so, as for a torch)."""
    try:
        reader_numpy(numpy)
    except CkptCompatError:
        problems.append(f"numpy {numpy} is not in the numpy names table: not predicted")
        return False
    return True


def _user_names(
    loads: Mapping[tuple[str, str, str], Mapping[str, str]],
) -> dict[tuple[str, str], list[str]]:
    """Each golden's names some real load reported as allowed by the user, by (artifact, writer)."""
    out: dict[tuple[str, str], dict[str, None]] = {}
    for (artifact, writer, _reader), statuses in loads.items():
        names = out.setdefault((artifact, writer), {})
        names.update(dict.fromkeys(n for n, s in sorted(statuses.items()) if s == "allowed-user"))
    return {key: list(names) for key, names in out.items()}


def _read_goldens(
    goldens: Path, doc: MatrixDoc, problems: list[str]
) -> dict[tuple[str, str], tuple[Golden, bytes]]:
    """The run's `torch.save` goldens and their bytes, by (artifact, writer), each read once.

    safetensors goldens never meet `torch.load`; one that fails its checksum is a problem
    to report, not a file to predict.
    """
    store = GoldenStore(goldens)
    wanted = set(doc["artifacts"])
    out: dict[tuple[str, str], tuple[Golden, bytes]] = {}
    if wanted and not goldens.is_dir():  # say so: an empty section is not an agreement
        problems.append(f"{goldens}: no such folder: no golden was predicted or checked")
    for artifact in store.artifacts():
        if artifact not in wanted:
            continue
        for golden in store.goldens(artifact):
            if golden.format != "torch" or "error" in golden.meta:
                continue
            try:
                out[(artifact, golden.writer)] = (golden, golden.read_verified())
            except CkptCompatError as exc:
                problems.append(f"not predicted: {exc}")
    return out


def _allowlist(entries: Sequence[str], numpy: str) -> Allowlist:
    # The report job has neither the project nor numpy: entries are taken as spelled.
    return Allowlist.for_reader(entries, reader_numpy(numpy), imports=False)


def _predict(
    golden: Golden, data: bytes, releases: Sequence[str], numpy: str, allowlist: Allowlist
) -> Prediction:
    return predict_bytes(
        data, releases, numpy=reader_numpy(numpy), allowlist=allowlist, shown=str(golden.path)
    )


def _agreement(
    doc: MatrixDoc,
    files: dict[tuple[str, str], tuple[Golden, bytes]],
    statuses: Mapping[tuple[str, str, str], Mapping[str, str]],
    problems: list[str],
) -> tuple[int, list[MatrixDisagreement]]:
    """Each real golden load against the prediction for its reader: (checked, disagreements)."""
    readers = {r["tag"]: r for r in doc["readers"]}
    checked, out = 0, list[MatrixDisagreement]()
    for row in doc["outcomes"]:
        found = files.get((row["artifact"], row["writer"]))
        reader = readers.get(row["reader"])
        if found is None or reader is None or not reader.get("torch"):
            continue  # a live roundtrip (no file), a safetensors golden, a reader without torch
        torch = str(reader["torch"])
        try:
            torch_table.entry(torch)
        except CkptCompatError:
            problems.append(f"{row['reader']}: torch {torch} is not in the rules table")
            continue
        numpy = reader["numpy"] or "none"
        if not _numpy_known(numpy, problems):
            continue
        key = (row["artifact"], row["writer"], row["reader"])
        user = [n for n, s in statuses.get(key, {}).items() if s == "allowed-user"]
        allowlist = _allowlist([*doc["allowlist"], *user], numpy)
        prediction = _predict(*found, [torch], numpy, allowlist)
        checked += 1
        verdict = prediction.verdict(torch)
        real_loads = row["outcome"] in LOADED
        same = real_loads == verdict["loadable"] and (
            real_loads
            or (
                row["outcome"] == verdict["outcome"]
                and sorted(row["blocked"]) == sorted(verdict["blocked"])
                and sorted(row["missing"]) == sorted(verdict["missing"])
            )
        )
        if not same:
            out.append(
                {
                    "artifact": row["artifact"],
                    "writer": row["writer"],
                    "reader": row["reader"],
                    "real": row["outcome"],
                    "predicted": verdict["outcome"],
                    "real_names": sorted({*row["blocked"], *row["missing"]}),
                    "predicted_names": sorted({*verdict["blocked"], *verdict["missing"]}),
                }
            )
    return checked, out


def disagreement_lines(predicted: MatrixPredicted) -> list[str]:
    """One line per disagreement between a prediction and a real load (empty when none)."""
    return [
        f"prediction disagrees with the real load: {d['artifact']} written by {d['writer']}, "
        f"read by {d['reader']}: real {d['real']} ({', '.join(d['real_names']) or 'no names'}), "
        f"predicted {d['predicted']} ({', '.join(d['predicted_names']) or 'no names'})"
        for d in predicted["agreement"]["disagreements"]
    ]
