"""The page's section on users' lives: returning visits, activity per user, sign-ups and churn, holidays."""

from __future__ import annotations

from typing import Any

from .page import BLUE, ORANGE, _counts, _figure, _legend, _number, _percent, _svg, _table


def lifecycle_section(report: dict[str, Any]) -> str:
    """Returning share against 32 %, sessions per user per week, sign-ups and churn by day, holidays."""
    life = report.get("lifecycle") or {}
    rows = []
    for key, label in (("returning_visit_share", "answer key"), ("returning_visit_share_in_files", "files only")):
        entry = life.get(key)
        if entry:
            rows.append([f"returning visits ({label})", _percent(entry["value"]), "about 32 % (Databox)", entry["how"]])
    week = life.get("sessions_per_user_per_week") or {}
    month = life.get("bookings_per_user_per_month") or {}
    rows.append(
        [
            "sessions per user per week",
            f"mean {_number(week.get('mean'))}, median {_number(week.get('p50'))}, 99th {_number(week.get('p99'))}, "
            f"99.9th {_number(week.get('p999'))}, max {_number(week.get('max'), 0)}",
            "",
            "",
        ]
    )
    rows.append(
        [
            "bookings per booking user per month",
            f"99.9th {_number(month.get('p999'))}, max {_number(month.get('max'), 0)}",
            "",
            "",
        ]
    )
    html = _table(["measure", "measured", "published", "how"], rows)
    days = life.get("signups_and_churn_by_day") or []
    if days:

        def draw(ax: Any) -> None:
            ax.plot(range(len(days)), [d["signups"] for d in days], color=BLUE, label="sign-ups")
            ax.plot(range(len(days)), [d["churned"] for d in days], color=ORANGE, label="churned")
            step = max(1, len(days) // 8)
            ax.set_xticks(range(0, len(days), step), [d["day"][5:] for d in days][::step])
            ax.set_ylabel("users per day")
            _counts(ax.yaxis)
            _legend(ax)  # above the axes: inside them it crossed the sign-ups line

        html += _figure("signups", _svg(draw), "Sign-ups and churn by day (users.jsonl)")
    holidays = life.get("holidays") or []
    if holidays:
        html += "<h3>Holidays and deal days against ordinary days of the same weekday</h3>" + _table(
            ["market", "day", "name", "kind", "sessions", "ordinary same weekday", "ratio"],
            [
                [
                    h["country"],
                    h["day"],
                    h["name"],
                    h["kind"],
                    _number(h["sessions"], 0),
                    _number(h["ordinary_same_weekday"], 0),
                    _number(h["ratio"]),
                ]
                for h in holidays[:40]
            ],
        )
    return html
