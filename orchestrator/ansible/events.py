"""Turning ansible-runner events into progress events: one per task result, nothing secret."""

from typing import Any

from orchestrator.ports import ProgressEvent

RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
    "runner_item_on_failed": "failed",
}


def translate(event: dict[str, Any]) -> ProgressEvent | None:
    kind = event.get("event")
    data = event.get("event_data") or {}
    if kind == "playbook_on_play_start":
        return ProgressEvent(type="ansible.play", message=f"PLAY [{data.get('play', '')}]")
    if kind in RESULT_EVENTS:
        outcome = RESULT_EVENTS[kind]
        if kind == "runner_on_failed" and data.get("ignore_errors"):
            outcome = "failed (ignored)"
        result = data.get("res") or {}
        changed = bool(result.get("changed")) and outcome == "ok"
        message = f"TASK [{data.get('task', '')}] {data.get('host', '')}: {'changed' if changed else outcome}"
        error = _error_text(result) if outcome in ("failed", "unreachable") else ""
        if error:
            message += f": {error}"
        return ProgressEvent(
            type="ansible.task",
            message=message,
            level="error" if outcome in ("failed", "unreachable") else "info",
            data={
                "host": data.get("host"),
                "task": data.get("task"),
                "role": data.get("role"),
                "outcome": outcome,
                "changed": changed,
            },
        )
    if kind == "playbook_on_stats":
        stats = {key: data.get(key) or {} for key in ("ok", "changed", "failures", "dark", "skipped")}
        return ProgressEvent(
            type="ansible.stats",
            message="RECAP " + ", ".join(f"{k}={sum(v.values())}" for k, v in stats.items()),
            data=stats,
        )
    return None


def _error_text(result: dict[str, Any]) -> str:
    # A task run with no_log has its result censored by Ansible itself; keep it that way.
    if result.get("censored"):
        return str(result["censored"])
    parts = [_last_line(result.get(key)) for key in ("msg", "reason", "stderr")]
    return ": ".join(p for p in parts if p)[:500]


def _last_line(value: Any) -> str:
    text = str(value or "").strip()
    return text.splitlines()[-1] if text else ""
