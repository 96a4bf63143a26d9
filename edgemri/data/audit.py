"""Dataset audit: counts, sizes, duplicates, near-duplicates, label conflicts, leakage verdict.

Why: public medical sets are assembled from several sources and contain the same scan more than
once, sometimes under two labels and sometimes in both the train and the test split. A random
split of such a set reports an accuracy no clinic will see. The audit finds these before training.

Definitions (what the numbers in the report mean):

* exact duplicate: two files whose DECODED canonical pixels (``runtime.images.load_image``: same
  shape, same bytes) are identical: SHA-256 over shape + pixel bytes. This catches re-saved copies
  with different names or metadata (a byte hash would miss them); the file-byte SHA-256 is also
  computed (``identical_files`` counts byte-identical files).
* near-duplicate: two files whose 256-bit dHash differs in at most ``near_threshold`` bits
  (default 16 of 256, the same 6 % as the common "4 of 64") and that are not exact duplicates.
  dHash: the grayscale image is resized to 17x16 (Pillow BOX filter) and each bit says whether
  a pixel is brighter than its right neighbour. It survives re-encoding, resizing, small
  brightness changes and JPEG noise (flip/rotation are NOT detected). Why 256 and not the usual
  64 bits: every axial brain slice is a grey oval on black, and at 9x8 they all look alike. On
  the 5,708-image brain set a 64-bit dHash at <= 4 bits flags 10,749 pairs, only 39 % of them
  visually near-identical (32x32 correlation > 0.95) and 1,186 under two labels; the 256-bit
  hash at <= 16 flags 2,667 pairs, 99 % near-identical, none under two labels.
* label conflict: an exact or near duplicate pair whose two files carry different classes.
* cross-split pair: an exact or near duplicate pair whose files are in different splits
  (train/val/test folders, or ROOT vs ``--against`` OTHER). Each one is leakage.

Verdict: ``leak`` if any cross-split pair exists; otherwise ``risk`` if duplicates or conflicts
exist inside one split (a random split of this folder would leak them, so split by group or
deduplicate first); otherwise ``clean``.

Cost: pairwise Hamming distances by numpy XOR + popcount in blocks (n^2/2 popcounts: 16M for the
5,708-image brain set, well under a second); decoding is threaded.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edgemri.data.discover import DEFAULT_MASK_PATTERN, DatasetIndex, Sample, discover
from edgemri.errors import DataError, EdgemriError
from edgemri.runtime.images import DICOM_SUFFIXES, load_image, pil_to_array

DEFAULT_NEAR_THRESHOLD = 16
HASH_SIZE = 16  # 16x16 = 256-bit dHash
HASH_BITS = HASH_SIZE * HASH_SIZE
MAX_LISTED = 10_000  # pairs/groups listed in the JSON (closest first); the counts are always complete


@dataclass
class ImageFacts:
    sample: Sample
    source: str  # the split name, or "root"/"against"
    size: tuple[int, int] | None = None  # (width, height)
    mode: str | None = None
    file_sha: str | None = None
    pixel_sha: str | None = None
    dhash: bytes = b""
    error: str | None = None


def audit(root: str | os.PathLike[str], against: str | os.PathLike[str] | None = None,
          mask_pattern: str | None = DEFAULT_MASK_PATTERN, near_threshold: int = DEFAULT_NEAR_THRESHOLD,
          progress: bool = False) -> dict:
    """Audit ``root`` (and ``against``); return the JSON-ready report described above."""
    start = time.perf_counter()
    index = discover(root, mask_pattern)
    items = [(s, s.split or ("root" if against else "all")) for s in index.samples]
    other = None
    if against is not None:
        other = discover(against, mask_pattern)
        items += [(s, "against" if not s.split else f"against/{s.split}") for s in other.samples]
    facts = _collect(items, progress)
    good = [f for f in facts if f.error is None]
    exact_groups = _exact_groups(good)
    near_pairs = _near_pairs(good, near_threshold)
    report = {
        "root": str(index.root),
        "against": str(other.root) if other else None,
        "layout": index.layout,
        "classes": sorted(set(index.classes) | set(other.classes if other else [])),
        "images": len(facts),
        "unreadable": [{"path": str(f.sample.path), "error": f.error} for f in facts if f.error],
        "counts": _counts(facts),
        "sizes": _top(Counter(f"{f.size[0]}x{f.size[1]}" for f in good)),
        "modes": dict(Counter(f.mode for f in good).most_common()),
        "near_threshold": near_threshold,
        "identical_files": _dup_count(Counter(f.file_sha for f in good)),
        "exact": _summarize_exact(exact_groups),
        "near": _summarize_near(good, near_pairs),
    }
    report["verdict"], report["verdict_reason"] = _verdict(report)
    report["seconds"] = round(time.perf_counter() - start, 2)
    return report


def duplicate_groups(index: DatasetIndex, near_threshold: int = DEFAULT_NEAR_THRESHOLD,
                     progress: bool = False) -> dict[Path, str]:
    """{path: group id} joining every exact and near duplicate of ``index`` into one group.

    Pass it to ``make_split(..., groups=...)`` so each cluster of copies lands in ONE split: the
    only defence when file names carry no patient id (the Kaggle brain set: ``Tr-gl_0001.jpg``).
    """
    facts = _collect([(s, s.split or "all") for s in index.samples], progress)
    good = [f for f in facts if f.error is None]
    uf = UnionFind()
    pos = {id(f): k for k, f in enumerate(good)}
    for group in _exact_groups(good):
        for f in group[1:]:
            uf.union(pos[id(f)], pos[id(group[0])])
    for a, b, _ in _near_pairs(good, near_threshold):
        uf.union(pos[id(a)], pos[id(b)])
    # only files that took part in a union are known: every one is in a cluster of >= 2
    return {good[k].sample.path: f"dup{uf.find(k)}" for k in uf.members()}


class UnionFind:
    """Disjoint sets over hashable ids (path halving); only ids ever joined are members."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)

    def members(self) -> list[int]:
        return list(self.parent)


# ---------------------------------------------------------------- per-image facts

def _collect(items: list[tuple[Sample, str]], progress: bool) -> list[ImageFacts]:
    facts = [ImageFacts(s, src) for s, src in items]
    workers = min(8, os.cpu_count() or 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_fill, facts, chunksize=16)
        if progress and facts and sys.stderr.isatty():  # a bar on a terminal; piped output stays clean
            from rich.console import Console
            from rich.progress import Progress

            with Progress(transient=True, console=Console(stderr=True)) as bar:
                task = bar.add_task("hashing images", total=len(facts))
                for _ in results:
                    bar.advance(task)
        else:
            for _ in results:
                pass
    return facts


def _fill(f: ImageFacts) -> None:
    path = f.sample.path
    try:
        data = path.read_bytes()
        f.file_sha = hashlib.sha256(data).hexdigest()
        if path.suffix.lower() in DICOM_SUFFIXES:
            arr = load_image(path)
            f.mode = "DICOM"
        else:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                f.mode = img.mode
                arr = pil_to_array(img)
        f.size = (int(arr.shape[1]), int(arr.shape[0]))
        f.pixel_sha = hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).hexdigest()
        f.dhash = dhash(arr)
    except EdgemriError as exc:
        f.error = exc.message
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop an audit; it is reported
        f.error = f"{type(exc).__name__}: {exc}"


def dhash(arr: np.ndarray, hash_size: int = HASH_SIZE) -> bytes:
    """``hash_size**2``-bit difference hash of a canonical uint8 image (see the module docstring)."""
    if arr.ndim == 3:
        f = arr[..., :3].astype(np.float64)
        arr = np.clip(np.rint(f @ np.array([0.299, 0.587, 0.114])), 0, 255).astype(np.uint8)
    small = np.asarray(Image.fromarray(arr, mode="L").resize((hash_size + 1, hash_size), Image.Resampling.BOX),
                       dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return np.packbits(bits).tobytes()


def hamming_pairs(hashes: np.ndarray, threshold: int, block: int = 256) -> np.ndarray:
    """All index pairs (i < j) whose hashes differ in <= threshold bits, as an (M, 2) int array.

    ``hashes`` is (n, words) uint64 (one row per image). Rows lo..hi are compared with columns
    lo..n only (upper triangle), so each block is O(block * n * words) popcounts.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    if hashes.ndim == 1:
        hashes = hashes[:, None]
    n = len(hashes)
    found = [np.zeros((0, 2), dtype=np.int64)]
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        dist = np.bitwise_count(hashes[lo:hi, None, :] ^ hashes[None, lo:, :]).sum(axis=-1, dtype=np.int32)
        ii, jj = np.nonzero(dist <= threshold)
        keep = jj > ii  # both offset by lo: keeps pair (lo+i, lo+j) with j > i only
        found.append(np.stack([ii[keep] + lo, jj[keep] + lo], axis=1).astype(np.int64))
    return np.concatenate(found)


def hamming(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


# ---------------------------------------------------------------- duplicates

def _exact_groups(good: list[ImageFacts]) -> list[list[ImageFacts]]:
    groups: dict[str, list[ImageFacts]] = defaultdict(list)
    for f in good:
        groups[f.pixel_sha].append(f)
    return [g for g in groups.values() if len(g) > 1]


def _near_pairs(good: list[ImageFacts], threshold: int) -> list[tuple[ImageFacts, ImageFacts, int]]:
    if len(good) < 2 or threshold < 0:
        return []
    hashes = np.frombuffer(b"".join(f.dhash for f in good), dtype=">u8").reshape(len(good), -1)
    pairs = hamming_pairs(hashes, threshold)
    out = []
    for i, j in pairs:
        a, b = good[int(i)], good[int(j)]
        if a.pixel_sha != b.pixel_sha:
            out.append((a, b, hamming(a.dhash, b.dhash)))
    return out


def _pair_kind(a: ImageFacts, b: ImageFacts) -> tuple[bool, bool]:
    """(cross_label, cross_split)."""
    return a.sample.label != b.sample.label, a.source != b.source


def _summarize_exact(groups: list[list[ImageFacts]]) -> dict:
    cross_label_groups = [g for g in groups if len({f.sample.label for f in g}) > 1]
    cross_split_groups = [g for g in groups if len({f.source for f in g}) > 1]
    listed = sorted(groups, key=lambda g: (-len(g), str(g[0].sample.path)))[:MAX_LISTED]
    return {
        "groups": len(groups),
        "images_in_groups": sum(len(g) for g in groups),
        "redundant_images": sum(len(g) - 1 for g in groups),
        "cross_label_groups": len(cross_label_groups),
        "cross_split_groups": len(cross_split_groups),
        "within_split_groups": sum(1 for g in groups if len({f.source for f in g}) == 1),
        "listed": [[_describe(f) for f in g] for g in listed],
    }


def _summarize_near(good: list[ImageFacts], pairs: list[tuple[ImageFacts, ImageFacts, int]]) -> dict:
    kinds = [_pair_kind(a, b) for a, b, _ in pairs]
    clusters = _clusters(good, pairs)
    listed = sorted(pairs, key=lambda p: (p[2], str(p[0].sample.path)))[:MAX_LISTED]
    return {
        "pairs": len(pairs),
        "clusters": len(clusters),
        "images_in_clusters": sum(len(c) for c in clusters),
        "cross_label_pairs": sum(1 for cl, _ in kinds if cl),
        "cross_split_pairs": sum(1 for _, cs in kinds if cs),
        "within_split_pairs": sum(1 for _, cs in kinds if not cs),
        "distance_histogram": dict(sorted(Counter(d for _, _, d in pairs).items())),
        "listed": [{"a": _describe(a), "b": _describe(b), "distance": d} for a, b, d in listed],
    }


def _clusters(good: list[ImageFacts], pairs) -> list[set[int]]:
    """Connected components of the near-duplicate graph (union-find on object ids)."""
    uf = UnionFind()
    for a, b, _ in pairs:
        uf.union(id(a), id(b))
    comps: dict[int, set[int]] = defaultdict(set)
    for x in uf.members():
        comps[uf.find(x)].add(x)
    return [c for c in comps.values() if len(c) > 1]


def _describe(f: ImageFacts) -> dict:
    return {"path": str(f.sample.path), "class": f.sample.label, "split": f.source}


def _counts(facts: list[ImageFacts]) -> dict[str, dict[str, int]]:
    """{source: {class: n}}."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for (src, label), n in sorted(Counter((f.source, f.sample.label) for f in facts).items()):
        out[src][label] = n
    return dict(out)


def _top(counter: Counter, n: int = 10) -> dict[str, int]:
    top = dict(counter.most_common(n))
    rest = sum(counter.values()) - sum(top.values())
    if rest:
        top["other"] = rest
    return top


def _dup_count(counter: Counter) -> int:
    return sum(n - 1 for n in counter.values() if n > 1)


def _verdict(r: dict) -> tuple[str, str]:
    ex, ne = r["exact"], r["near"]
    cross = ex["cross_split_groups"] + ne["cross_split_pairs"]
    if cross:
        return "leak", (f"{ex['cross_split_groups']} exact-duplicate groups and {ne['cross_split_pairs']} "
                        "near-duplicate pairs span two splits")
    inside = ex["groups"] + ne["pairs"]
    if inside:
        return "risk", (f"{ex['groups']} exact-duplicate groups ({ex['cross_label_groups']} under two labels) and "
                        f"{ne['pairs']} near-duplicate pairs inside one split: a random split will leak them; "
                        "deduplicate or split by group")
    return "clean", "no duplicates or near-duplicates found"


def check_threshold(value: int) -> int:
    if not 0 <= value <= HASH_BITS:
        raise DataError(f"near-duplicate threshold must be 0..{HASH_BITS} bits, got {value}")
    return value


def render_table(report: dict) -> None:
    """Print the report as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    counts = Table(title=f"edgemri data audit: {report['root']}" + (f" vs {report['against']}" if report["against"] else ""))
    counts.add_column("split")
    for c in report["classes"]:
        counts.add_column(c, justify="right")
    counts.add_column("total", justify="right")
    for src, per in report["counts"].items():
        counts.add_row(src, *[str(per.get(c, 0)) for c in report["classes"]], str(sum(per.values())))
    console.print(counts)
    sizes = ", ".join(f"{k} ({v})" for k, v in report["sizes"].items())
    modes = ", ".join(f"{k} ({v})" for k, v in report["modes"].items())
    console.print(f"sizes: {sizes}\nmodes: {modes}")
    ex, ne = report["exact"], report["near"]
    dup = Table(title=f"duplicates (near = dHash distance <= {report['near_threshold']}/{HASH_BITS} bits)")
    for col in ("kind", "groups/pairs", "images", "under two labels", "across splits", "inside a split"):
        dup.add_column(col, justify="right" if col != "kind" else "left")
    dup.add_row("exact (pixels)", str(ex["groups"]), str(ex["images_in_groups"]), str(ex["cross_label_groups"]),
                str(ex["cross_split_groups"]), str(ex["within_split_groups"]))
    dup.add_row("near", str(ne["pairs"]), str(ne["images_in_clusters"]), str(ne["cross_label_pairs"]),
                str(ne["cross_split_pairs"]), str(ne["within_split_pairs"]))
    console.print(dup)
    if report["unreadable"]:
        console.print(f"[red]{len(report['unreadable'])} unreadable image(s)[/red], e.g. {report['unreadable'][0]['path']}")
    colour = {"clean": "green", "risk": "yellow", "leak": "red"}[report["verdict"]]
    console.print(f"verdict: [bold {colour}]{report['verdict'].upper()}[/] - {report['verdict_reason']} "
                  f"({report['images']} images, {report['seconds']} s)")

