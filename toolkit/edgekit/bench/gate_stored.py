"""Stored gate baselines: measured once, checked key by key, compared only on the same machine and the same data.

A stored baseline pairs with nothing (its blocks ran at another time), so the test is Mann-Whitney; its NME is
compared only when the evaluation set (data, count, a hash of the arrays) and preprocessing match, and its
latencies only when the fingerprint (CPU model, id, flags, cores, governor, runtime versions, threads) does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..errors import EdgekitError
from ..hashing import sha256_file
from ..jsonio import is_finite_number, read_json_object
from ..runtime.registry import runtime_packages
from ..slices import ATTRIBUTE_PREFIX
from .decision import INCONCLUSIVE, REGRESSION, GateRule, accuracy_verdict, combine, too_few_blocks, unpaired_verdict
from .gate import GateOptions, _candidate_blocks, _eval_npz, _Measurer, _not_measured, _preprocess

BASELINE_SCHEMA = "edgekit-gate-baseline/3"
# eval: the accuracy set's identity ({data, images, sha256} of the preprocessed images and labels); preprocess: the
# sidecar's normalisation it was built with. Both must match for the stored NME to be compared.
BASELINE_KEYS = {"schema", "target", "artifact", "sha256", "fingerprint", "runtime", "block_p50_ms", "nme", "slices",
                 "budgets", "eval", "preprocess"}

def eval_identity(opts: GateOptions, npz: Path | None) -> dict | None:
    """What an NME was measured on: the --data spec, the image count and a hash of the arrays themselves (so a
    changed renderer, label file or normalisation shows as a different set, not as a model regression)."""
    if npz is None:
        return None
    digest = hashlib.sha256()
    with np.load(npz) as z:
        for key in sorted(k for k in z.files if not k.startswith(ATTRIBUTE_PREFIX)):  # the images' own draws
            digest.update(key.encode() + np.ascontiguousarray(z[key]).tobytes())
        images = int(z["x"].shape[0])
    return {"data": opts.data, "images": images, "sha256": digest.hexdigest()}


def fingerprint_key(fp: dict, threads: int) -> dict:
    """What must match for stored latencies to be comparable."""
    pk = fp.get("packages", {})
    cpu = fp["cpu"]
    key = {"cpu_model": cpu["model"], "cpu_id": cpu.get("id"), "cpu_flags": cpu["flags"], "arch": cpu["arch"],
           "cores": cpu.get("cores"), "governor": cpu.get("governor"), "threads": threads,
           "numpy": pk.get("numpy"), **{p: pk.get(p) for p in runtime_packages()},
           "gpu": [g["name"] for g in fp.get("gpu", [])]}
    if fp.get("jetson"):
        j = fp["jetson"]
        key.update(l4t=j.get("l4t"), jetpack=j.get("jetpack"), nvpmodel=j.get("nvpmodel"),
                   jetson_clocks=j.get("jetson_clocks"))
    return key


def update_baseline(path: Path, artifact: Path, target: str, opts: GateOptions, workdir: Path) -> dict:
    rule = opts.rule()
    short = too_few_blocks(opts.blocks, rule, paired=False)
    if short:
        raise EdgekitError(f"--blocks {opts.blocks} is too few for a stored baseline: {short['reason']}")
    preprocess = _preprocess(artifact, opts)
    m = _Measurer(opts, _eval_npz(opts, artifact, workdir, preprocess), (artifact,))
    accuracy: dict = {}
    try:
        here = m.fingerprint(artifact)
        got = _candidate_blocks(m, artifact, opts.blocks, accuracy)
    finally:
        m.close()
    if got["errors"]:
        raise EdgekitError(f"cannot store a baseline for an artifact that fails: {got['errors']['candidate']}")
    nme = (accuracy.get("candidate") or {}).get("nme")
    if m.eval_npz is not None and not (is_finite_number(nme) and nme > 0):
        raise EdgekitError(f"cannot store a baseline whose NME was not measured ({nme!r}); check --data")
    doc = {"schema": BASELINE_SCHEMA, "target": target, "artifact": str(artifact), "sha256": sha256_file(artifact),
           "fingerprint": fingerprint_key(here, opts.threads), "runtime": opts.runtime,
           "block_p50_ms": got["B"], "nme": nme, "slices": (accuracy.get("candidate") or {}).get("slices"),
           "budgets": dict(opts.overrides),
           "eval": eval_identity(opts, m.eval_npz), "preprocess": preprocess}
    write_json(path, doc)
    return doc


def validate_baseline(doc: object, path: Path) -> dict:
    """Every key of a stored baseline checked, so a hand-edited or truncated file fails here with its name."""
    if not isinstance(doc, dict):
        raise EdgekitError("not a stored baseline: expected a JSON object", path=path)
    if doc.get("schema") != BASELINE_SCHEMA:
        raise EdgekitError(f"schema {doc.get('schema')!r} is not {BASELINE_SCHEMA!r}; re-create the file with "
                           "`edgekit gate --update-baseline`", path=path)
    unknown = sorted(set(doc) - BASELINE_KEYS)
    if unknown:
        raise EdgekitError(f"unknown key {unknown[0]!r}; expected only {', '.join(sorted(BASELINE_KEYS))}", path=path)
    blocks = doc.get("block_p50_ms")
    if not isinstance(blocks, list) or not blocks or not all(is_finite_number(b) and b > 0 for b in blocks):
        raise EdgekitError("key 'block_p50_ms': expected a non-empty list of positive latencies in ms", path=path)
    if not isinstance(doc.get("fingerprint"), dict):
        raise EdgekitError("key 'fingerprint': expected an object", path=path)
    nme = doc.get("nme")
    if nme is not None and not (is_finite_number(nme) and nme > 0):
        raise EdgekitError(f"key 'nme': expected a positive number or null, got {nme!r}", path=path)
    slices = doc.get("slices")
    if slices is not None and not (isinstance(slices, dict) and all(
            isinstance(v, dict) and isinstance(v.get("n"), int) and (v.get("nme") is None or is_finite_number(v["nme"]))
            for v in slices.values())):
        raise EdgekitError("key 'slices': expected null or an object of {\"n\": count, \"nme\": number or null} "
                           "per slice", path=path)
    budgets = doc.get("budgets", {})
    if not isinstance(budgets, dict):
        raise EdgekitError("key 'budgets': expected an object", path=path)
    for k, v in budgets.items():
        if k not in GateRule.keys():
            raise EdgekitError(f"key 'budgets.{k}' is unknown; expected one of {', '.join(GateRule.keys())}",
                               path=path)
        if not is_finite_number(v) or v < 0:
            raise EdgekitError(f"key 'budgets.{k}': expected a number >= 0, got {v!r}", path=path)
    return doc


def load_baseline(path: Path) -> dict:
    if not path.exists():
        raise EdgekitError("no stored baseline; create it with `edgekit gate --update-baseline`", path=path)
    return validate_baseline(read_json_object(path, "stored baseline"), path)


def stored(baseline_path: Path, candidate: Path, opts: GateOptions, workdir: Path) -> dict:
    doc = load_baseline(baseline_path)
    preprocess = _preprocess(candidate, opts) if doc.get("nme") is not None and opts.eval_images else None
    m = _Measurer(opts, _eval_npz(opts, candidate, workdir, preprocess) if preprocess else None, (candidate,))
    try:
        return _judge_stored(doc, baseline_path, candidate, opts, m, preprocess)
    finally:
        m.close()


def _judge_stored(doc: dict, baseline_path: Path, candidate: Path, opts: GateOptions, m: _Measurer,
                  preprocess: dict | None) -> dict:
    here = fingerprint_key(m.fingerprint(candidate), opts.threads)
    diff = {k: (doc["fingerprint"].get(k), v) for k, v in here.items() if doc["fingerprint"].get(k) != v}
    report = {"mode": "stored", "baseline": str(baseline_path), "candidate": str(candidate)}
    if diff:
        what = "; ".join(f"{k}: baseline {a!r}, here {b!r}" for k, (a, b) in diff.items())
        report.update(verdict=INCONCLUSIVE, reason=f"inconclusive: fingerprint differs ({what})",
                      fingerprint_diff={k: list(v) for k, v in diff.items()})
        return report
    rule = opts.rule(doc.get("budgets"))
    n = len(doc["block_p50_ms"])
    short = too_few_blocks(n, rule, paired=False)
    if short:
        return _not_measured(report, short)
    _same_eval(doc, opts, m.eval_npz, preprocess, baseline_path)
    accuracy: dict = {}
    got = _candidate_blocks(m, candidate, n, accuracy)
    if got["errors"]:
        report["latency"] = {"verdict": REGRESSION, "reason": f"candidate failed to run: {got['errors']['candidate']}"}
    else:
        report["latency"] = unpaired_verdict(doc["block_p50_ms"], got["B"], rule)
    cand = accuracy.get("candidate") or {}
    report["accuracy"] = accuracy_verdict(doc.get("nme"), cand.get("nme"), rule, expected=m.eval_npz is not None,
                                          baseline_slices=doc.get("slices"), candidate_slices=cand.get("slices"))
    report["verdict"] = combine(report["latency"]["verdict"], report["accuracy"]["verdict"])
    return report


def _same_eval(doc: dict, opts: GateOptions, npz: Path | None, preprocess: dict | None, path: Path) -> None:
    """A stored NME is comparable only on the same images, preprocessed the same way; refuse anything else."""
    if npz is None:
        return
    stored_eval, here = doc.get("eval"), eval_identity(opts, npz)
    if not isinstance(stored_eval, dict):
        raise EdgekitError("the baseline records no evaluation data, so its NME cannot be compared; re-create it "
                           "with `edgekit gate --update-baseline`", path=path)
    diff = [f"{k}: baseline {stored_eval.get(k)!r}, here {here[k]!r}" for k in ("data", "images", "sha256")
            if stored_eval.get(k) != here[k]]
    if doc.get("preprocess") != preprocess:
        diff.append(f"preprocess: baseline {doc.get('preprocess')!r}, here {preprocess!r}")
    if diff:
        raise EdgekitError(f"evaluation data differs from the baseline's ({'; '.join(diff)}); gate with the same "
                           "--data and --eval-images, or re-create the baseline", path=path)
