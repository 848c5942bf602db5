"""A DR report as a standalone HTML page for people; every value from the report is escaped."""

import json
from html import escape
from typing import Any

from orchestrator.dr.models import DrReport

# The page loads nothing and runs nothing: a report body is data, whatever strings it holds.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;width:100%}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.pass{color:#0a6b0a}.fail{color:#b00020}
code,pre{font-family:ui-monospace,monospace;font-size:.85rem;word-break:break-all;white-space:pre-wrap}
"""


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _cell(value: Any) -> str:
    return escape(_text(value))


def _seconds(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _cell(value)
    minutes, seconds = divmod(round(value), 60)
    return escape(f"{value} s ({minutes} min {seconds} s)" if minutes else f"{value} s")


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{escape(label)}</th><td>{html}</td></tr>" for label, html in pairs)


def _started_by(value: Any) -> str:
    if isinstance(value, dict):
        return escape(" ".join(_text(value.get(k)) for k in ("kind", "name", "id") if value.get(k) is not None))
    return _cell(value)


def _measure(body: dict[str, Any], measured: str, target: str) -> str:
    value, goal = body.get(measured), body.get(target)
    within = isinstance(value, int | float) and isinstance(goal, int | float) and value <= goal
    verdict = "" if goal is None or value is None else (" — within target" if within else " — over target")
    return f"{_seconds(value)} (target {_seconds(goal)}){escape(verdict)}"


def render(report: DrReport) -> str:
    body: dict[str, Any] = json.loads(report.body)
    passed = body.get("passed")
    outcome = '<span class="pass">PASSED</span>' if passed else '<span class="fail">FAILED</span>'
    summary = _rows(
        [
            ("Outcome", outcome + (f": {_cell(body['failed_check'])}" if body.get("failed_check") else "")),
            ("Kind", _cell(body.get("kind"))),
            ("Service", f"{_cell(body.get('service_id'))} ({_cell(body.get('offering'))})"),
            ("Ministry", _cell(body.get("ministry"))),
            ("Operation", _cell(body.get("operation_id"))),
            ("Started by", _started_by(body.get("started_by"))),
            ("Started", _cell(body.get("started_at"))),
            ("Finished", _cell(body.get("finished_at"))),
            ("RTO", _measure(body, "rto_seconds", "target_rto_seconds")),
            ("RPO", _measure(body, "rpo_seconds", "target_rpo_seconds")),
            ("Cleanup verified", _cell(body.get("cleanup_verified"))),
            ("Left over", _cell(", ".join(map(str, body.get("leftovers") or [])) or "nothing")),
        ]
    )
    point = body.get("restore_point")
    restore = (
        _rows([(str(k), _cell(v)) for k, v in sorted(point.items())])
        if isinstance(point, dict)
        else _rows([("Restore point", "none")])
    )
    steps = "".join(
        "<tr>"
        + "".join(f"<td>{_cell(step.get(k))}</td>" for k in ("name", "status", "started_at", "finished_at", "error"))
        + "</tr>"
        for step in body.get("steps") or []
        if isinstance(step, dict)
    )
    integrity = _rows(
        [
            ("Report", _cell(report.id)),
            ("Position in the chain", _cell(report.seq)),
            ("Recorded", _cell(report.recorded_at.isoformat())),
            ("Body sha256", f"<code>{_cell(report.body_sha256)}</code>"),
            ("Previous report's hash", f"<code>{_cell(report.prev_hash)}</code>"),
            ("Hash", f"<code>{_cell(report.hash)}</code>"),
            ("Ed25519 signature", f"<code>{_cell(report.signature)}</code>"),
            ("Signing key id", f"<code>{_cell(report.key_id)}</code>"),
        ]
    )
    title = escape(f"{_text(body.get('kind'))} report — service {_text(body.get('service_id'))}")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1><table>{summary}</table>"
        f"<h2>Restore point</h2><table>{restore}</table>"
        "<h2>Steps</h2><table><tr><th>step</th><th>status</th><th>started</th><th>finished</th><th>error</th></tr>"
        f"{steps}</table>"
        f"<h2>Integrity</h2><p>Check the whole chain with <code>tonle dr verify</code>.</p><table>{integrity}</table>"
        f"<h2>Signed body</h2><pre>{escape(report.body)}</pre>"
        "</body></html>"
    )
