"""Write a benchmark report: ``report.json`` (everything), ``report.md`` and ``report.html``
(tables; the HTML also has inline plots), and print a terminal table.

The markdown and HTML are built from the same table rows (``tables(report)``) so they never
disagree. Every file is written atomically.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from edgemri.atomic import write_json, write_text
from edgemri.bench.machine import machine_name

Table = tuple[str, list[str], list[list[str]]]  # title, header, rows


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "html": out_dir / "report.html"}
    write_json(paths["json"], report)
    write_text(paths["md"], to_markdown(report))
    write_text(paths["html"], to_html(report))
    return paths


# -- formatting ------------------------------------------------------------------------------------
def _f(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}{suffix}"
    return str(value)


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100.0 * value:.2f}"


def _mb(nbytes: Any) -> str:
    return "–" if nbytes is None else f"{nbytes / 1e6:.3f}"


def _lat(row: dict[str, Any], key: str, stat: str) -> Any:
    return (row.get(key) or {}).get(stat)


def _first_per_target(report: dict[str, Any]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for row in report.get("rows", []):
        if row["name"] not in seen:
            seen.add(row["name"])
            out.append(row)
    return out


def tables(report: dict[str, Any]) -> list[Table]:
    """The report's tables: accuracy, per-class, latency, size, problems."""
    firsts = _first_per_target(report)
    classes = report.get("eval", {}).get("classes", [])
    acc_rows, cls_rows, size_rows = [], [], []
    ref_size = next((r.get("file_size_bytes") for r in firsts if r["name"] == report.get("reference")), None)
    for row in firsts:
        m, v = row.get("metrics") or {}, row.get("vs_reference") or {}
        acc_rows.append([row["name"], row.get("status", "?"), _pct(m.get("accuracy")),
                         _pct(m.get("balanced_accuracy")), _pct(m.get("macro_f1")), _f(m.get("roc_auc"), 4),
                         _f(m.get("ece"), 4), _f(v.get("accuracy_delta_points"), 2),
                         _pct(v.get("top1_agreement")), _f(v.get("max_prob_diff"), 4)])
        per = m.get("per_class") or {}
        cls_rows.append([row["name"]] + [
            f"{_pct((per.get(c) or {}).get('sensitivity'))} / {_pct((per.get(c) or {}).get('specificity'))}"
            for c in classes])
        size = row.get("file_size_bytes")
        ratio = f"{ref_size / size:.1f}x" if size and ref_size else "–"
        size_rows.append([row["name"], _mb(size), ratio])
    lat_rows = []
    for row in report.get("rows", []):
        lat_rows.append([
            row["name"], _f(row.get("threads"), 0), str(row.get("backend") or "–"), _f(row.get("xnnpack")),
            _f(row.get("load_ms"), 1), _f(row.get("first_inference_ms"), 1),
            _f(_lat(row, "latency_raw_ms", "p50")),
            " / ".join(_f(_lat(row, "latency_model_ms", s)) for s in ("p50", "p90", "p99")),
            f"{_f(_lat(row, 'latency_model_ms', 'mean'))} ± {_f(_lat(row, 'latency_model_ms', 'std'))}",
            " / ".join(_f(_lat(row, "latency_e2e_ms", s)) for s in ("p50", "p90", "p99")),
            _f(row.get("throughput_ips"), 1), _f(row.get("rss_first_inference_mb"), 1),
            _f(row.get("peak_rss_mb"), 1),
            _f(row.get("runtime_overhead_pct"), 1)])
    problems = [[r["name"], _f(r.get("threads"), 0), r.get("status", "?"), str(r.get("reason") or "")]
                for r in report.get("rows", []) if r.get("status") != "ok"]
    out: list[Table] = [
        ("Accuracy", ["target", "status", "accuracy %", "balanced acc %", "macro F1 %", "ROC AUC", "ECE",
                      "Δ acc (points)", "top-1 agreement %", "max |Δp|"], acc_rows),
        ("Per-class sensitivity / specificity (%)", ["target"] + list(classes), cls_rows),
        ("Latency (ms, batch 1)", ["target", "threads", "backend", "XNNPACK", "load", "first inference",
                                   "bare p50", "model p50 / p90 / p99", "model mean ± std",
                                   "end-to-end p50 / p90 / p99", "images/s", "RSS 1st inference MiB",
                                   "peak RSS MiB",
                                   "overhead %"], lat_rows),
        ("Size", ["target", "file MB", "smaller than FP32 by"], size_rows),
    ]
    tuning = tuning_rows(report)
    if tuning:
        out.append(("Runtime tuning (edgemri tune: winner and losers; hints used by each row)",
                    ["target", "configuration", "tuned p50 ms", "top-1 agree %", "result", "this bench ran"],
                    tuning))
    from edgemri.bench.safety import safety_tables

    out += safety_tables(report)
    if problems:
        out.append(("Problems", ["target", "threads", "status", "reason"], problems))
    return out


def tuning_rows(report: dict[str, Any]) -> list[list[str]]:
    """Per artifact: every configuration tune measured (winner first), and the runtime this bench used."""
    out = []
    for row in _first_per_target(report):
        tuning = row.get("tuning") or {}
        used = _runtime_used(row)
        cands = sorted((tuning.get("tune") or {}).get("candidates") or [],
                       key=lambda c: (not c.get("winner"), c.get("p50_ms") is None, c.get("p50_ms") or 0.0))
        if not cands:
            if tuning:
                out.append([row["name"], "not tuned", "–", "–", "–", used])
            continue
        for i, c in enumerate(cands):
            opts = ", ".join(f"{k}={v}" for k, v in (c.get("options") or {}).items()) or "engine defaults"
            label = f"{c.get('threads')} thr, {opts}" + (" (default)" if c.get("default") else "")
            agree = c.get("top1_agreement")
            result = "WINNER" if c.get("winner") else c.get("status") if c.get("status") != "ok" else "slower"
            out.append([row["name"] if i == 0 else "", label, _f(c.get("p50_ms"), 3),
                        _pct(agree), result + (f" ({c['reason']})" if c.get("reason") else ""),
                        used if i == 0 else ""])
    return out


def _runtime_used(row: dict[str, Any]) -> str:
    runtime = (row.get("tuning") or {}).get("runtime") or {}
    if not runtime:
        return "–"
    opts = ", ".join(f"{k}={v}" for k, v in (runtime.get("options") or {}).items())
    return f"hints {runtime.get('hints')}" + (f": {opts}" if opts else "")


def machine_lines(report: dict[str, Any]) -> list[str]:
    m, s, e = report.get("machine", {}), report.get("settings", {}), report.get("eval", {})
    return [
        (f"Machine: {machine_name(m)} ({m.get('arch')}), {m.get('cores')} cores "
         f"({m.get('cores_usable')} usable), {m.get('memory_gib')} GiB, {m.get('os')}, "
         f"Python {m.get('python')}, load average {m.get('load_average')}"),
        (f"Code: edgemri commit {report.get('git_commit') or 'unknown'}; run {report.get('run')}; "
         f"{report.get('created')}"),
        (f"Evaluation: {e.get('n_images')} images from {e.get('source')} "
         f"({len(e.get('bad_images') or {})} undecodable); latency: {s.get('warmup')} warm-up + "
         f"{s.get('runs')} timed runs per row, threads {s.get('threads')}"),
    ]


# -- markdown --------------------------------------------------------------------------------------
def md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    head = [h.replace("|", "\\|") for h in header]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(lines)


def to_markdown(report: dict[str, Any]) -> str:
    parts = ["# edgemri benchmark", ""] + [f"- {line}" for line in machine_lines(report)] + [""]
    parts += _gate_lines(report)
    for title, header, rows in tables(report):
        parts += [f"## {title}", "", md_table(header, rows), ""]
    parts += [("Fields are explained in docs/bench.md. Accuracy metrics are computed on the images every "
               "row could decode; Δ and agreement are against the Keras FP32 reference."), ""]
    return "\n".join(parts)


def _gate_lines(report: dict[str, Any]) -> list[str]:
    gates = report.get("gates") or {}
    if gates.get("min_accuracy") is None and gates.get("max_drop") is None:
        return []
    fails = gates.get("failures") or []
    head = (f"**Gates** (min accuracy {gates.get('min_accuracy')}, max drop {gates.get('max_drop')} points): "
            + ("FAILED" if fails else "passed"))
    return [head, ""] + [f"- {f}" for f in fails] + ([""] if fails else [])


# -- html ------------------------------------------------------------------------------------------
def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;
margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:0.5em 0}.fail{color:#b00}"""


def to_html(report: dict[str, Any]) -> str:
    """One self-contained page: tables plus inline base64 PNG plots (no external files)."""
    from edgemri.bench.plots import plot_images

    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>edgemri benchmark</title>",
             f"<style>{CSS}</style></head><body><h1>edgemri benchmark</h1><ul>"]
    parts += [f"<li>{html.escape(line)}</li>" for line in machine_lines(report)] + ["</ul>"]
    parts += [f"<p class='fail'>{html.escape(line.strip('*- '))}</p>" for line in _gate_lines(report) if line]
    for title, header, rows in tables(report):
        parts += [f"<h2>{html.escape(title)}</h2>", _html_table(header, rows)]
    images, note = plot_images(report)
    for title, b64 in images:
        img = f"<img alt='{html.escape(title)}' src='data:image/png;base64,{b64}'>"
        parts += [f"<h2>{html.escape(title)}</h2>", img]
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    from edgemri.bench.safety import reliability_svg

    parts.append(reliability_svg((report.get("safety") or {}).get("models", [])))
    parts.append("</body></html>\n")
    return "\n".join(parts)


# -- terminal --------------------------------------------------------------------------------------
def print_table(report: dict[str, Any], console: Any = None) -> None:
    """The summary a user reads first: one line per row, accuracy and latency side by side."""
    import sys

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table as RichTable

    # piped (CI logs, tee): rich would squeeze the table into 80 columns and elide the figures
    console = console or Console(width=None if sys.stdout.isatty() else 150)
    table = RichTable(title="edgemri bench", caption=escape(machine_lines(report)[0]), caption_justify="left")
    for col in ("target", "thr", "status", "acc %", "Δ pts", "agree %", "p50 ms", "p90 ms", "e2e p50",
                "load ms", "RSS 1st MiB", "MB"):
        table.add_column(col, justify="left" if col in ("target", "status") else "right")
    for row in report.get("rows", []):
        m, v = row.get("metrics") or {}, row.get("vs_reference") or {}
        status = row.get("status", "?")
        style = {"ok": "green", "failed-verification": "yellow"}.get(status, "red")
        table.add_row(row["name"], _f(row.get("threads"), 0), f"[{style}]{status}[/]", _pct(m.get("accuracy")),
                      _f(v.get("accuracy_delta_points")), _pct(v.get("top1_agreement")),
                      _f(_lat(row, "latency_model_ms", "p50")), _f(_lat(row, "latency_model_ms", "p90")),
                      _f(_lat(row, "latency_e2e_ms", "p50")), _f(row.get("load_ms"), 1),
                      _f(row.get("rss_first_inference_mb"), 1), _mb(row.get("file_size_bytes")))
    console.print(table)
    for row in report.get("rows", []):
        if row.get("reason"):
            console.print(f"[red]{escape(row['name'])}[/] ({row.get('status')}): {escape(str(row['reason']))}",
                          highlight=False)
