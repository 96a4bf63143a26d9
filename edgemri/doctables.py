"""Markdown tables in docs/ rendered from the registries, so the docs cannot drift from the code.

Each table sits between ``<!-- registry:KEY -->`` and ``<!-- /registry:KEY -->`` in its doc;
``python -m edgemri.doctables --write`` regenerates them and ``--check`` (the default, what
tests/test_docs.py runs) exits 1 naming every stale table. Reading the registries imports neither
Keras nor numpy, so this runs in a bare checkout.

The target table reads only ``name``, ``description``, ``quantized``, ``min_agreement`` and
``max_prob_diff``: the fields every target has had since the table existed.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The repository root in a source checkout (the docs are not installed with the package).
REPO_ROOT = Path(__file__).resolve().parents[1]


def _cell(value: Any) -> str:
    """One Markdown table cell: pipes escaped, newlines flattened."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _option(key: str, value: Any) -> str:
    shown = f'"{value}"' if isinstance(value, str) else value
    return f"`{key}` {shown}"


def models_table() -> str:
    """One row per architecture of ``edgemri.train.models.MODELS``."""
    from edgemri.train.models.registry import MODELS

    rows = [(f"`{e.name}`", e.description, ", ".join(_option(k, v) for k, v in e.defaults.items()) or "-",
             e.min_size) for e in MODELS.entries()]
    return _table(("name", "what", "options (`--arch-opt KEY=VALUE`, default)", "min size"), rows)


def _gate(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def targets_table() -> str:
    """One row per conversion target of ``edgemri.convert.targets.TARGETS``, then ``all``."""
    from edgemri.convert.targets import ALL, TARGETS

    rows = [(f"`{t.name}`", t.description, "yes" if t.quantized else "no", _gate(t.min_agreement),
             _gate(t.max_prob_diff)) for t in TARGETS.entries()]
    rows.append((f"`{ALL}`", "every target above", "", "", ""))
    return _table(("target", "what", "quantized", "min top-1 agreement", "max prob diff"), rows)


@dataclass(frozen=True)
class DocTable:
    key: str
    doc: str  # path relative to the repository root
    render: Callable[[], str]

    def markers(self) -> tuple[str, str]:
        return f"<!-- registry:{self.key} -->", f"<!-- /registry:{self.key} -->"


TABLES = (
    DocTable("models", "docs/train.md", models_table),
    DocTable("targets", "docs/convert.md", targets_table),
)


def _block(table: DocTable, text: str) -> re.Match[str]:
    begin, end = (re.escape(m) for m in table.markers())
    match = re.search(f"({begin}\n)(.*?)(\n?{end})", text, flags=re.DOTALL)
    if match is None:
        raise ValueError(f"{table.doc} has no {table.markers()[0]} ... {table.markers()[1]} block")
    return match


def current(table: DocTable, text: str) -> str:
    """The table as the doc has it now (between the markers)."""
    return _block(table, text).group(2).strip("\n")


def replace(table: DocTable, text: str, rendered: str) -> str:
    """``text`` with the block between the markers set to ``rendered``; the rest untouched."""
    match = _block(table, text)
    return text[:match.start(2)] + rendered + "\n" + text[match.end(2):].removeprefix("\n")


def stale(root: Path = REPO_ROOT) -> list[str]:
    """``doc: key`` for every table that disagrees with its registry."""
    return [f"{t.doc}: {t.key}" for t in TABLES
            if current(t, (root / t.doc).read_text(encoding="utf-8")) != t.render()]


def write(root: Path = REPO_ROOT) -> list[str]:
    """Regenerate every table in place; returns the docs that changed."""
    changed = []
    for t in TABLES:
        path = root / t.doc
        text = path.read_text(encoding="utf-8")
        new = replace(t, text, t.render())
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(t.doc)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgemri.doctables", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the tables in place")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    if args.write:
        for doc in write(args.root):
            print(f"wrote {doc}")
        return 0
    bad = stale(args.root)
    for item in bad:
        print(f"stale table {item}: run python -m edgemri.doctables --write", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
