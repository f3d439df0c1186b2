"""The page's section on faults in the input: what the report found and took out, and the run's sidecar."""

from __future__ import annotations

import html
from typing import Any

from .page import _number, _table


def faults_section(report: dict[str, Any]) -> str:
    """Found in the data beside injected (faults.jsonl), or what was found when there is no sidecar."""
    faults = report.get("faults") or {}
    found = faults.get("found") or {}
    sidecar = faults.get("sidecar")
    intro = (
        "<p>Every figure above is measured on the events as the site made them: later copies of an event "
        "(its event_id again, or all but its id again), lines that are not JSON, not UTF-8 or fail the "
        "schema, lines of another schema version, and the searches of bot sessions (10 or more searches, "
        "a median gap under 5 s, no click) are taken out first.</p>"
    )
    if not sidecar:
        rows = [
            ["retries (an event_id on an earlier line)", _number(found.get("duplicate"))],
            ["re-sends (the same event under a new id)", _number(found.get("resend"))],
            ["lines not JSON, not UTF-8 or off the schema", _number(found.get("malformed_or_missing"))],
            ["lines of another schema version", _number(found.get("drift"))],
            ["searches of bot sessions", _number(found.get("bot"))],
            ["search lines over 5 min behind the 50 around them", _number(found.get("searches_behind"))],
            ["search lines over 5 min ahead of the 50 around them", _number(found.get("searches_ahead"))],
        ]
        return intro + "<p>No faults.jsonl: the run injected none.</p>" + _table(["found", "lines"], rows)
    rows = [
        [html.escape(r["kind"]), _number(r["injected"]), _number(r["found"]), html.escape(r["how"])]
        for r in sidecar["compared"]
    ]
    unseen = ", ".join(f"{html.escape(k)} {_number(v)}" for k, v in sidecar["not_seen_in_files"].items())
    injected = ", ".join(f"{html.escape(k)} {_number(v)}" for k, v in sidecar["injected"].items())
    return (
        intro
        + f"<p>The run injected faults and listed each in {html.escape(sidecar['file'])}: {injected}.</p>"
        + _table(["kind", "in faults.jsonl", "found in the data", "how the report finds them"], rows)
        + (f"<p>Not to be seen in the files alone (no order between them): {unseen}.</p>" if unseen else "")
    )
