#!/usr/bin/env python3
"""Turns the raw output of `fiso-bench` runs into a Markdown report with PNG charts.

Usage: bench_report.py RESULTS_DIR

RESULTS_DIR holds raw/<benchmark>.txt (what `fiso-bench <benchmark>` printed, its last line
`exit_status=N seconds=S`) and optionally meta.txt (machine and command). Writes
RESULTS_DIR/report.md and RESULTS_DIR/*.png. It reads what every benchmark prints:

- tables whose header names columns such as `req/s`, `p50 ms`, `p99 ms`, `vs baseline`;
- summary lines made only of key=value pairs (`baseline_rps=162 pipeline_rps=141 ratio=0.870`);
- the WASM benchmark's per-round lines (`wasmkit median_ms=… p99_ms=…; wasmtime-py median_ms=…`);
- the CEL benchmark's `(b)/(a) = 0.89 (goal ≤ 1.50)` line.

A benchmark whose output has none of these is still reported, with its raw output.
"""

import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ORDER = ["http", "cel", "wasm", "grpc", "kafka", "temporal"]
TITLES = {
    "http": "HTTP → 6-field CEL → HTTP vs nginx proxy_pass under wrk (or a bare proxy without nginx)",
    "cel": "CEL transform: decode + 6 fields + encode vs decode + encode",
    "wasm": "WASM interceptor per call: WasmKit vs Wasmtime (Python binding)",
    "grpc": "gRPC streaming → pipeline → HTTP vs a bare gRPC echo",
    "kafka": "Kafka → CEL → Kafka vs a raw consume-produce loop",
    "temporal": "HTTP → pipeline → Temporal workflow starts vs a plain grpc-swift client",
}
NUMBER = re.compile(r"^-?\d+(\.\d+)?%?$")
PAIR = re.compile(r"(\w+)=(\S+)")


def number(text):
    text = text.strip().rstrip("%").rstrip("x")
    try:
        return float(text)
    except ValueError:
        return None


def parse_tables(lines):
    """Tables: a header line with 'p50 ms', 'req/s', 'records/s', 'events/s' or 'vs baseline',
    then rows of cells separated by two or more spaces."""
    tables = []
    index = 0
    while index < len(lines):
        header = lines[index]
        if not re.search(r"p50 ms|p99 ms|req/s|records/s|events/s|vs baseline", header):
            index += 1
            continue
        columns = [cell for cell in re.split(r"\s{2,}", header.strip()) if cell]
        if len(columns) < 2:
            index += 1
            continue
        rows = []
        index += 1
        while index < len(lines) and lines[index].strip():
            cells = [cell for cell in re.split(r"\s{2,}", lines[index].strip()) if cell]
            if len(cells) == len(columns) + 1:
                label, values = cells[0], cells[1:]
            elif len(cells) == len(columns) and not NUMBER.match(cells[0]):
                label, values = cells[0], cells[1:]
            else:
                break
            if not any(NUMBER.match(value) for value in values):
                break
            names = columns if len(cells) == len(columns) + 1 else columns[1:]
            rows.append((label, dict(zip(names, values))))
            index += 1
        if rows:
            tables.append((columns, rows))
    return tables


def parse_summary(lines):
    """Every line made only of key=value pairs, merged."""
    summary = {}
    for line in lines:
        stripped = line.strip()
        if stripped and PAIR.sub("", stripped).strip() == "":
            summary.update(dict(PAIR.findall(stripped)))
    return summary


def parse_wasm_rounds(lines):
    """Best (lowest median) round per module: {module: {engine: (median_ms, p99_ms)}}."""
    modules = {}
    pattern = re.compile(r"^\s*(.+?), round \d+: (.*)$")
    for line in lines:
        match = pattern.match(line)
        if not match:
            continue
        module = match.group(1)
        for part in match.group(2).split(";"):
            words = part.split()
            if not words:
                continue
            engine = words[0]
            values = dict(PAIR.findall(part))
            if "median_ms" in values and "p99_ms" in values:
                median, p99 = float(values["median_ms"]), float(values["p99_ms"])
                best = modules.setdefault(module, {}).get(engine)
                if best is None or median < best[0]:
                    modules[module][engine] = (median, p99)
    return modules


def parse_cel(lines):
    for line in lines:
        match = re.search(r"\(b\)/\(a\) = ([\d.]+)(?: \(goal ≤ ([\d.]+)\))?", line)
        if match:
            return float(match.group(1)), (float(match.group(2)) if match.group(2) else None)
    return None


GOAL_LINE = re.compile(r"^(?P<label>[^\n]*?)(?P<value>-?\d+(?:\.\d+)?)\s*(?:ms|x|%)?\s*\(goal (?P<op>[≥≤]) (?P<goal>[\d.]+)[^)]*\)")


def goal_lines(text):
    """Every printed goal: (label, value, op, goal, met) for lines such as
    `throughput ratio (pipeline / nginx): 0.412  (goal ≥ 0.40)`."""
    found = []
    for line in text.splitlines():
        match = GOAL_LINE.search(line.strip())
        if not match:
            continue
        value, goal = float(match.group("value")), float(match.group("goal"))
        met = value >= goal if match.group("op") == "≥" else value <= goal
        label = match.group("label").strip().rstrip(":=").strip()
        found.append((label, value, match.group("op"), goal, met))
    return found


def goal_from_text(text, key):
    match = re.search(key + r"[^\n]*?\(goal ≥ ([\d.]+)\)", text)
    return float(match.group(1)) if match else None


def headline(name, text, summary):
    """(label, ratio, goal, higher_is_better) for the ratio chart, or None."""
    if name == "cel":
        parsed = parse_cel(text.splitlines())
        if parsed:
            return ("CEL cost (b)/(a)", parsed[0], parsed[1], False)
        return None
    if "ratio" not in summary:
        return None
    ratio = number(summary["ratio"])
    goal = number(summary["goal"]) if "goal" in summary else goal_from_text(text, "throughput ratio")
    label = {
        "http": "HTTP throughput", "grpc": "gRPC throughput", "kafka": "Kafka throughput",
        "temporal": "Temporal starts",
    }.get(name, name)
    return (label + " vs baseline", ratio, goal, True)


def bar_chart(path, title, labels, series, unit, log=False):
    """Grouped bars: series is [(name, [value per label])]."""
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(labels) + 2), 4))
    width = 0.8 / max(1, len(series))
    for offset, (name, values) in enumerate(series):
        positions = [index + offset * width - 0.4 + width / 2 for index in range(len(labels))]
        bars = axes.bar(positions, [value or 0 for value in values], width, label=name)
        axes.bar_label(bars, labels=[f"{value:.3g}" if value is not None else "" for value in values], fontsize=8)
    axes.set_xticks(range(len(labels)))
    axes.set_xticklabels(labels, fontsize=8, rotation=10)
    axes.set_ylabel(unit)
    axes.set_title(title, fontsize=10)
    if log:
        axes.set_yscale("log")
    if len(series) > 1:
        axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def ratio_chart(path, entries):
    figure, axes = plt.subplots(figsize=(10, 0.6 * len(entries) + 1.8))
    labels = [entry[0] for entry in entries]
    values = [entry[1] for entry in entries]
    colors = []
    for _, value, goal, higher in entries:
        if goal is None:
            colors.append("tab:grey")
        else:
            colors.append("tab:green" if (value >= goal if higher else value <= goal) else "tab:red")
    bars = axes.barh(labels, values, color=colors)
    axes.bar_label(bars, labels=[f"{value:.3f}" for value in values], fontsize=8)
    for index, (_, _, goal, higher) in enumerate(entries):
        if goal is not None:
            axes.plot([goal, goal], [index - 0.4, index + 0.4], color="black", linewidth=2)
            axes.annotate(("goal ≥ " if higher else "goal ≤ ") + f"{goal:g}", (goal, index + 0.42), fontsize=7)
    axes.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    # Ratios span orders of magnitude (an interpreter against a JIT): a log axis keeps all visible.
    axes.set_xscale("log")
    axes.set_xlabel("ratio to the baseline measured in the same run (1.0 = baseline; log scale)")
    axes.set_title("Ratios against each benchmark's baseline (green: goal met, red: missed, grey: no goal)", fontsize=10)
    axes.invert_yaxis()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown_table(columns, rows):
    names = list(dict.fromkeys(name for _, values in rows for name in values))
    lines = ["| " + " | ".join([""] + names) + " |", "|" + "---|" * (len(names) + 1)]
    for label, values in rows:
        lines.append("| " + " | ".join([label] + [values.get(name, "") for name in names]) + " |")
    return "\n".join(lines)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    results = Path(sys.argv[1])
    raw = results / "raw"
    names = [name for name in ORDER if (raw / f"{name}.txt").exists()]
    names += sorted(path.stem for path in raw.glob("*.txt") if path.stem not in ORDER)
    if not names:
        print(f"bench_report: no raw/*.txt in {results}", file=sys.stderr)
        return 1
    meta = (results / "meta.txt").read_text() if (results / "meta.txt").exists() else ""
    report = ["# Fiso-Flow benchmark report", ""]
    if meta:
        report += ["```", meta.strip(), "```", ""]
    report += [
        "Every benchmark measures its baseline in the same run and reports a ratio to it, so the",
        "figures compare within a run; absolute numbers depend on the machine and its load. The",
        "benchmarks print percentiles, not individual samples: latency charts show p50 and p99.",
        "",
    ]
    summary_rows = []
    ratios = []
    sections = []
    goals = []
    for name in names:
        text = (raw / f"{name}.txt").read_text(errors="replace")
        lines = text.splitlines()
        status_match = re.search(r"^exit_status=(\d+) seconds=(\d+)", text, re.MULTILINE)
        status = int(status_match.group(1)) if status_match else None
        seconds = status_match.group(2) if status_match else "?"
        summary = parse_summary([line for line in lines if not line.startswith("exit_status=")])
        goals += [(name,) + goal for goal in goal_lines(text)]
        tables = parse_tables(lines)
        section = [f"## {name}: {TITLES.get(name, name)}", ""]
        result = headline(name, text, summary)
        if result:
            ratios.append(result)
        if name == "wasm":
            modules = parse_wasm_rounds(lines)
            if modules:
                labels = list(modules)
                engines = list(dict.fromkeys(engine for values in modules.values() for engine in values))
                series = []
                for engine in engines:
                    series.append((f"{engine} median", [modules[m].get(engine, (None, None))[0] for m in labels]))
                    series.append((f"{engine} p99", [modules[m].get(engine, (None, None))[1] for m in labels]))
                image = "wasm-latency.png"
                bar_chart(results / image, "WASM call latency per module (best round)", labels, series, "ms", log=True)
                section += [f"![WASM call latency]({image})", ""]
                for module, values in modules.items():
                    if "wasmkit" in values and "wasmtime-py" in values and values["wasmtime-py"][0] > 0:
                        ratios.append((f"WASM {module} median: wasmkit / wasmtime", values["wasmkit"][0] / values["wasmtime-py"][0], None, False))
        for number_, (columns, rows) in enumerate(tables, start=1):
            section += [markdown_table(columns, rows), ""]
            latency_columns = [column for column in ("p50 ms", "p99 ms") if any(column in values for _, values in rows)]
            if latency_columns and name != "wasm":
                image = f"{name}-latency-{number_}.png"
                series = [(column, [number(values.get(column, "")) for _, values in rows]) for column in latency_columns]
                bar_chart(results / image, f"{name}: latency per contender", [label for label, _ in rows], series, "ms")
                section += [f"![{name} latency]({image})", ""]
            rate_column = next((c for c in ("req/s", "events/s", "records/s") if any(c in v for _, v in rows)), None)
            if rate_column:
                image = f"{name}-throughput-{number_}.png"
                values = [number(v.get(rate_column, "")) for _, v in rows]
                bar_chart(results / image, f"{name}: throughput per contender", [label for label, _ in rows], [(rate_column, values)], rate_column)
                section += [f"![{name} throughput]({image})", ""]
        if summary:
            section += ["Summary: " + " ".join(f"`{key}={value}`" for key, value in summary.items()), ""]
        section += ["<details><summary>raw output</summary>", "", "```", text.strip(), "```", "", "</details>", ""]
        sections += section
        state = "ok" if status == 0 else ("failed" if status is not None else "unknown")
        summary_rows.append((name, state, seconds, f"{result[1]:.3f}" if result else "—",
                             (("≥ " if result[3] else "≤ ") + f"{result[2]:g}") if result and result[2] is not None else "—"))
    report += ["| benchmark | run | seconds | headline ratio | goal |", "|---|---|---|---|---|"]
    report += [f"| {n} | {s} | {t} | {r} | {g} |" for n, s, t, r, g in summary_rows]
    report.append("")
    if goals:
        report += ["## Goals", "", "Every line a benchmark printed with a goal, and whether this run met it.", ""]
        report += ["| benchmark | measure | value | goal | met |", "|---|---|---|---|---|"]
        report += [f"| {n} | {label} | {value:g} | {op} {goal:g} | {'yes' if met else '**no**'} |"
                   for n, label, value, op, goal, met in goals]
        report.append("")
    if ratios:
        ratio_chart(results / "ratios.png", ratios)
        report += ["![Ratios against the baselines](ratios.png)", ""]
    report += sections
    (results / "report.md").write_text("\n".join(report) + "\n")
    print(results / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
