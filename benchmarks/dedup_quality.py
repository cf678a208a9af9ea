"""B-cubed precision and recall of grouping by fingerprint against the true bug of each report.

Usage: uv run python benchmarks/dedup_quality.py [STORE_DIR ...] [--algorithm v1]

STORE_DIR is a legacy store made by /work/shared/legacy/generate.py (default: the shared
sample). Only MANIFEST lines with expected == "import" count. Reports with a stack trace
(structured frames, or a traceback in the field or in the description) and prose-only reports
are scored separately, each within its own set; targets for stacks: P >= 0.98, R >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from bugdesk.fingerprint import CURRENT, Signal, compute, frames_from_list, parse_traceback

DEFAULT_STORE = Path("/work/shared/legacy/sample")


def load_signals(store_dir: str | Path) -> list[tuple[str, bool, Signal]]:
    """(bug_key, has_stack, Signal) for every manifest line expected to import.

    A stand-in for the real importer: decodes UTF-8 (BOM tolerated) or Latin-1, reads tree
    files, agent-inbox.jsonl lines (`line`, 1-based) and batch array elements (`index`), and
    maps the three generations' fields onto a Signal.
    """
    store = Path(store_dir)
    docs: dict[str, object] = {}

    def document(rel: str) -> object:
        if rel not in docs:
            raw = (store / rel).read_bytes()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")
            docs[rel] = text.splitlines() if rel.endswith(".jsonl") else json.loads(text)
        return docs[rel]

    out = []
    with open(store / "MANIFEST.jsonl", encoding="utf-8") as fh:
        for raw_line in fh:
            entry = json.loads(raw_line)
            if entry.get("expected") != "import":
                continue
            doc = document(entry["path"])
            if entry.get("line") is not None:
                rec = json.loads(doc[entry["line"] - 1])
            elif entry.get("index") is not None:
                rec = doc[entry["index"]]
            else:
                rec = doc
            if "schema" in rec:  # gen 3
                sig = Signal(
                    title=rec.get("title"),
                    description=rec.get("description"),
                    stacktrace=rec.get("stacktrace"),
                    component=rec.get("component"),
                    route=rec.get("route"),
                )
            elif rec.get("version") == 2:
                exc = rec.get("exception") or {}
                ctx = rec.get("context") or {}
                sig = Signal(
                    title=rec.get("summary"),
                    description=rec.get("description"),
                    frames=frames_from_list(rec.get("stack")) or None,
                    exception_type=exc.get("type"),
                    exception_message=exc.get("message"),
                    component=ctx.get("component"),
                    route=ctx.get("route"),
                )
            else:  # gen 1
                sig = Signal(
                    title=rec.get("title"),
                    description=rec.get("body"),
                    stacktrace=rec.get("traceback"),
                    component=rec.get("component"),
                    route=rec.get("url"),
                )
            out.append((entry["bug_key"], _has_stack(sig), sig))
    return out


def _has_stack(sig: Signal) -> bool:
    if sig.frames:
        return True
    for text in (sig.stacktrace, sig.description):
        parsed = parse_traceback(text) if text else None
        if parsed and any(e.frames for e in parsed.exceptions):
            return True
    return False


def bcubed(truth: list[str], groups: list[str]) -> tuple[float, float]:
    """Mean B-cubed precision and recall of `groups` (one label per item) against `truth`."""
    if not truth:
        return float("nan"), float("nan")
    pair = Counter(zip(truth, groups, strict=True))
    by_truth = Counter(truth)
    by_group = Counter(groups)
    p = sum(n * n / by_group[g] for (t, g), n in pair.items()) / len(truth)
    r = sum(n * n / by_truth[t] for (t, g), n in pair.items()) / len(truth)
    return p, r


def evaluate(store_dir: str | Path, algorithm: str = CURRENT) -> dict[str, dict[str, float]]:
    """Score one store; returns {subset: {reports, bugs, groups, precision, recall}}."""
    rows = load_signals(store_dir)
    subsets: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for bug, has_stack, sig in rows:
        h = compute(sig, algorithm).hash
        subsets["stack" if has_stack else "prose"].append((bug, h))
        subsets["all"].append((bug, h))
    result = {}
    for name in ("stack", "prose", "all"):
        items = subsets[name]
        truth = [b for b, _ in items]
        groups = [g for _, g in items]
        p, r = bcubed(truth, groups)
        result[name] = dict(reports=len(items), bugs=len(set(truth)), groups=len(set(groups)), precision=p, recall=r)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stores", nargs="*", default=[str(DEFAULT_STORE)], metavar="STORE_DIR")
    ap.add_argument("--algorithm", default=CURRENT)
    args = ap.parse_args(argv)
    print(f"algorithm {args.algorithm}; B-cubed per subset (targets for stack: P>=0.98, R>=0.95)")
    header = f"{'store':<34} {'subset':<6} {'reports':>7} {'bugs':>5} {'groups':>6} {'P':>6} {'R':>6}"
    print(header)
    print("-" * len(header))
    ok = True
    for store in args.stores:
        t0 = time.perf_counter()
        res = evaluate(store, args.algorithm)
        for name, m in res.items():
            print(
                f"{str(store)[-34:]:<34} {name:<6} {m['reports']:>7} {m['bugs']:>5} "
                f"{m['groups']:>6} {m['precision']:>6.3f} {m['recall']:>6.3f}"
            )
        ok &= res["stack"]["precision"] >= 0.98 and res["stack"]["recall"] >= 0.95
        print(f"{'':<34} ({time.perf_counter() - t0:.1f} s)")
    print("stack targets met" if ok else "stack targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
