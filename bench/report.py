"""The side-by-side table, the ratios against the targets, and the JSON record of a run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import SectionResult

# Targets: the project must beat the seed's Celery setup by this factor...
CELERY_TARGET = 4.0
# ...and keep this share of what the bare client and broker manage with the same durability.
RAW_TARGET = 0.60
# The real queuing endpoint keeps at least half the rate of a no-op one with the same body.
GATEWAY_TARGET = 0.50
# The notifier's pooled SMTP sending against a connection per message.
EMAIL_TARGET = 1.5
# Faster than naive Pillow while also validating and scanning.
FILES_TARGET = 1.0
PROJECT_KEYS = ("project_pg", "project_sqlite")
# What each project line is compared with, in column order: the key of the line, its column
# heading, and the target of the ratio (None: a peer measured for comparison, with no target).
BASELINES: tuple[tuple[str, str, float | None], ...] = (
    ("raw", "vs raw", RAW_TARGET),
    ("celery", "vs Celery", CELERY_TARGET),
    ("dramatiq", "vs Dramatiq", None),
    ("faststream", "vs FastStream", None),
)


def own_cpu_ms(result: SectionResult) -> float | None:
    """CPU ms per task of everything the section ran (servers included, other users excluded):
    what a task costs whatever else the machine is doing."""
    cpu: dict[str, float] = result.extra.get("cpu_ms_per_task", {})
    own = [ms for role, ms in cpu.items() if role != "other"]
    return sum(own) if own else None


@dataclass(frozen=True)
class Ratio:
    project: str
    baseline: str
    value: float
    target: float | None
    # The same ratio from CPU per task instead of wall-clock rate; it holds on a busy machine.
    by_cpu: float | None = None

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.value >= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "baseline": self.baseline,
            "value": self.value,
            "target": self.target,
            "met": self.met,
            "by_cpu": self.by_cpu,
        }


def ratios(results: Sequence[SectionResult]) -> list[Ratio]:
    by_key = {r.key: r for r in results if r.ok}
    out: list[Ratio] = []
    for key in PROJECT_KEYS:
        project = by_key.get(key)
        if project is None or project.rate is None:
            continue
        for baseline, _, target in BASELINES:
            base = by_key.get(baseline)
            if base is not None and base.rate:
                project_cpu, base_cpu = own_cpu_ms(project), own_cpu_ms(base)
                by_cpu = base_cpu / project_cpu if project_cpu and base_cpu else None
                out.append(Ratio(key, baseline, project.rate / base.rate, target, by_cpu))
    noop, gateway = by_key.get("gateway_noop"), by_key.get("gateway_queue")
    if noop is not None and gateway is not None and noop.rate and gateway.rate:
        # The Python load generator saturates before a no-op endpoint does, so the ratio
        # flatters the gateway: measured, but not held against the target.
        python_load = noop.extra.get("load_generator") == "python"
        target = None if python_load else GATEWAY_TARGET
        out.append(Ratio("gateway_queue", "gateway_noop", gateway.rate / noop.rate, target))
    naive, pipeline = by_key.get("files_naive"), by_key.get("files_pipeline")
    if naive is not None and pipeline is not None and naive.rate and pipeline.rate:
        out.append(Ratio("files_pipeline", "files_naive", pipeline.rate / naive.rate, FILES_TARGET))
    plain, pooled = by_key.get("email_plain"), by_key.get("email_notifier")
    if plain is not None and pooled is not None and plain.rate and pooled.rate:
        out.append(Ratio("email_notifier", "email_plain", pooled.rate / plain.rate, EMAIL_TARGET))
    return out


def _num(value: float | None, fmt: str) -> str:
    # A missing figure keeps its column's width.
    return format("-", f">{fmt.split('.')[0]}") if value is None else format(value, fmt)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.0f}%"


# Against a peer task system a ratio reads as a factor; against anything else as a share.
PEERS = ("celery", "dramatiq", "faststream")


def _ratio_text(ratio: Ratio, value: float | None = None) -> str:
    value = ratio.value if value is None else value
    return f"{value:.2f}x" if ratio.baseline in PEERS else f"{value:.0%}"


def _target_text(ratio: Ratio) -> str:
    """``(target >= 4x): met``, or ``(no target)`` for a peer measured only for comparison."""
    if ratio.target is None:
        return "(no target)"
    target = f">= {ratio.target:g}x" if ratio.baseline in PEERS else f">= {ratio.target:.0%}"
    return f"(target {target}): {'met' if ratio.met else 'NOT met'}"


def render(results: Sequence[SectionResult], header: str) -> str:
    found = ratios(results)
    lookup = {(r.project, r.baseline): r for r in found}
    lines = [header, ""]
    # A column per baseline some project line is compared with in this run.
    compared = [
        (key, title) for key, title, _ in BASELINES if any(f.baseline == key for f in found)
    ]
    columns = (
        f"{'section':<34} {'rate':>9} {'unit':<8} {'time s':>7} {'p50 ms':>8} {'p99 ms':>8} "
        + "".join(f"{title:>{max(7, len(title))}} " for _, title in compared)
        + f"{'CPU ms':>6} {'others':>6}"
    )
    lines += [columns, "-" * len(columns)]
    for r in results:
        if not r.ok:
            first_line = (r.error or "no result").splitlines()[0]
            lines.append(f"{r.label:<34} FAILED: {first_line}")
            continue
        cells = ""
        for key, title in compared:
            ratio = lookup.get((r.key, key))
            cells += f"{_ratio_text(ratio) if ratio else '':>{max(7, len(title))}} "
        lines.append(
            f"{r.label:<34} {_num(r.rate, '9.0f')} {r.unit:<8} {_num(r.seconds, '7.2f')} "
            f"{_num(r.p50_ms, '8.1f')} {_num(r.p99_ms, '8.1f')} {cells}"
            f"{_num(own_cpu_ms(r), '6.2f')} {_pct(r.extra.get('other_load_pct')):>6}"
        )
    if found:
        labels = {r.key: r.label for r in results}
        lines += ["", "Ratios (rate against rate; the target where one is set)"]
        for ratio in found:
            name = f"{labels[ratio.project]} / {labels[ratio.baseline]}"
            by_cpu = (
                ""
                if ratio.by_cpu is None
                else f"; by CPU per task {_ratio_text(ratio, ratio.by_cpu)}"
            )
            lines.append(f"  {name:<62} {_ratio_text(ratio):>7}  {_target_text(ratio)}{by_cpu}")
    lines += [
        "",
        "CPU ms: CPU per task (message) of the section's own processes and servers, all cores",
        "summed; RabbitMQ and Redis count whole, other users of the same servers included.",
        "others: share of the machine's CPU taken during the timed phase by processes outside the",
        "section (other users of the machine); a high value means the line was starved.",
        "Latency: all N are sent as fast as the sender goes, so p50/p99 include the wait behind",
        "the backlog; they compare only between lines of similar rate.",
        "",
        "How each line is measured",
    ]
    for r in results:
        lines.append(f"  {r.label}: {r.method}")
        for key, value in r.extra.items():
            if key.endswith("_ms"):
                lines.append(f"    {key}: {value:.1f}")
        cpu: dict[str, float] = r.extra.get("cpu_ms_per_task", {})
        if cpu:
            parts = ", ".join(f"{role} {ms:.2f}" for role, ms in cpu.items())
            lines.append(f"    CPU ms per task: {parts}")
    return "\n".join(lines)


def write_json(path: Path, results: Sequence[SectionResult], context: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **context,
        "sections": [r.as_json() for r in results],
        "ratios": [r.as_json() for r in ratios(results)],
        "targets": {"vs_celery": CELERY_TARGET, "vs_raw": RAW_TARGET},
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
