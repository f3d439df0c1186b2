"""The report as a self-contained HTML page: measured against target, with charts as inline SVG.

Charts are drawn with matplotlib and embedded, so the page needs no network and no script.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from .checks import Check, checks

BLUE, ORANGE, GREY = "#2b6cb0", "#dd6b20", "#718096"
# Below this many searches the page says its figures are mostly noise (a 95 % interval of a 30 % rate is ±3 points).
FEW_SEARCHES = 1000


def _svg(draw: Callable[[Any], None], width: float = 6.4, height: float = 3.2) -> str:
    """Draw one chart and return it as an inline SVG element."""
    figure, axes = plt.subplots(figsize=(width, height), dpi=100)
    draw(axes)
    axes.grid(axis="y", alpha=0.3)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout()
    buffer = io.StringIO()
    # "tight" keeps legends placed above the axes inside the picture.
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _legend(ax: Any) -> None:
    """The legend in a row above the axes, where it covers no data."""
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=3, frameon=False, borderaxespad=0)


def _shares(axis: Any) -> None:
    """Tick labels of a share axis as percentages."""
    axis.set_major_formatter(PercentFormatter(xmax=1, decimals=None))  # as many decimals as the range needs


def _counts(axis: Any) -> None:
    """Tick labels of a count axis with thousands separators, whole numbers only."""
    axis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))


def _percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}\u00a0%"  # no break between number and %


def _number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    # Wide tables scroll inside their own box on a phone instead of widening the page.
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _status(ok: bool | None) -> str:
    if ok is None:
        return ""
    return '<span class="ok">ok</span>' if ok else '<span class="off">off</span>'


def _funnel(r: dict[str, Any]) -> str:
    f = r["funnel"]
    rows = []
    for name in ("click_through_rate", "conversion_rate"):
        x = f[name]
        rows.append(
            [
                name.replace("_", " "),
                _percent(x["value"], 2),
                _percent(x.get("target"), 2),
                f"{_percent(x['ci95'][0], 2)} to {_percent(x['ci95'][1], 2)}" if x["ci95"] else "n/a",
                _status(x.get("within_ci")),
            ]
        )
    segments = f["by_platform_and_device"]
    labels = [f"{s['platform']}/{s['device']}" for s in segments]

    def draw(ax: Any) -> None:
        ctr = [s["click_through_rate"]["value"] or 0 for s in segments]
        # No bar where there is no interval (more clicks than searches), and never a negative one: matplotlib
        # refuses it (a segment of a few searches, none clicked, can round its interval a hair past the rate).
        spans = [s["click_through_rate"]["ci95"] or (v, v) for v, s in zip(ctr, segments, strict=True)]
        low = [max(0.0, v - span[0]) for v, span in zip(ctr, spans, strict=True)]
        high = [max(0.0, span[1] - v) for v, span in zip(ctr, spans, strict=True)]
        ax.bar(labels, ctr, yerr=[low, high], color=BLUE, capsize=3, label="click-through rate")
        cvr = [s["conversion_rate"]["value"] or 0 for s in segments]
        ax.plot(labels, cvr, "o", color=ORANGE, label="conversion rate")
        ax.axhline(f["click_through_rate"].get("target", 0), color=BLUE, ls="--", lw=1)
        ax.axhline(f["conversion_rate"].get("target", 0), color=ORANGE, ls="--", lw=1)
        ax.set_ylabel("rate")
        _shares(ax.yaxis)
        ax.tick_params(axis="x", labelrotation=30)
        _legend(ax)

    segment_rows = [
        [
            s["platform"],
            s["device"],
            _number(s["click_through_rate"]["denominator"]),
            _percent(s["click_through_rate"]["value"], 2),
            _percent(s["conversion_rate"]["value"], 2),
        ]
        for s in segments
    ]
    counts = f"<p>{_number(f['searches'])} searches, {_number(f['clicks'])} clicks, {_number(f['conversions'])} conversions.</p>"
    return (
        counts
        + _table(["rate", "measured", "target", "95 % interval", ""], rows)
        + _figure("funnel", _svg(draw), "Rates by platform and device (bars: CTR with 95 % intervals; dashed: targets)")
        + _table(["platform", "device", "searches", "CTR", "CVR"], segment_rows)
    )


def _figure(name: str, svg: str, caption: str) -> str:
    return f'<figure class="chart" data-chart="{name}">{svg}<figcaption>{html.escape(caption)}</figcaption></figure>'


def _ranks(r: dict[str, Any]) -> str:
    rows = r["ranks"]["by_rank"]

    def draw(ax: Any) -> None:
        x = [row["rank"] for row in rows]
        ax.bar(x, [row["share"] for row in rows], color=BLUE, label="measured")
        ax.plot(x, [row["sistrix_share"] for row in rows], "o-", color=ORANGE, label="Sistrix 2020")
        model = [(row["rank"], row["model_examination_share"]) for row in rows if row["model_examination_share"]]
        if model:
            ax.plot(*zip(*model, strict=True), "x--", color=GREY, label="model's examination (answer key)")
        ax.set_xticks(x)
        ax.set_xlabel("rank")
        ax.set_ylabel("share of clicks on ranks 1-10")
        _shares(ax.yaxis)
        _legend(ax)

    table = _table(
        ["rank", "measured", "Sistrix", "relative", "model's examination", ""],
        [
            [
                row["rank"],
                _percent(row["share"]),
                _percent(row["sistrix_share"]),
                f"{100 * row['relative_to_sistrix']:+.0f} %",
                _percent(row["model_examination_share"]),
                _status(abs(row["relative_to_sistrix"]) <= 0.25),
            ]
            for row in rows[:5]
        ],
    )
    backlinko = r["ranks"]["backlinko"]
    note = (
        f"<p>Top 3 take {_percent(r['ranks']['top_3_share'])} of clicks on the first ten ranks (Backlinko: about "
        f"{_percent(backlinko['top_3_share_of_clicks'], 0)}); {_percent(r['ranks']['share_beyond_rank_10'])} of all "
        "clicks are beyond rank 10 (Sistrix: about 2 % reach page 2).</p>"
    )
    if rows[0]["model_examination_share"] is not None:
        note += (
            f"<p>The model's examination curve ({html.escape(str(r['ranks'].get('model_examination') or 'answer key'))}"
            ", normalised over ranks 1-10) is how often a user looks at each rank; clicks fall faster with rank "
            "than it, because the site ranks cheaper, better and more popular offers first and those are clicked "
            "more when looked at.</p>"
        )
    return _figure("ranks", _svg(draw), "Clicks by rank against the published curve") + table + note


def _rhythm(r: dict[str, Any]) -> str:
    hours, days = r["rhythm"]["by_hour"], r["rhythm"]["by_weekday"]

    def draw_hours(ax: Any) -> None:
        ax.bar([h["hour"] for h in hours], [h["share"] for h in hours], color=BLUE, label="events")
        if hours[0]["target"] is not None:
            ax.plot([h["hour"] for h in hours], [h["target"] for h in hours], "o-", color=ORANGE, label="target")
        ax.plot([h["hour"] for h in hours], [h["bookings_share"] for h in hours], ":", color=GREY, label="bookings")
        ax.set_xlabel("local hour")
        ax.set_ylabel("share")
        ax.set_xticks(range(0, 24, 3))
        _shares(ax.yaxis)
        _legend(ax)

    def draw_days(ax: Any) -> None:
        ax.bar([d["weekday"] for d in days], [d["share"] for d in days], color=BLUE, label="events")
        if days[0]["target"] is not None:
            ax.plot([d["weekday"] for d in days], [d["target"] for d in days], "o-", color=ORANGE, label="target")
        ax.set_ylabel("share")
        _shares(ax.yaxis)
        _legend(ax)

    worst_hour = max((abs(h["share"] - h["target"]) for h in hours if h["target"] is not None), default=None)
    worst_day = max((abs(d["share"] - d["target"]) for d in days if d["target"] is not None), default=None)
    note = (
        f"<p>Largest gap to target: {_percent(worst_hour, 2)} (hours), {_percent(worst_day, 2)} (weekdays, over "
        f"{_number(r['rhythm']['weeks_covered'], 1)} weeks). Night 00-06h: {_percent(r['rhythm']['night_share_00_06'])}; "
        f"evening 18-22h: {_percent(r['rhythm']['evening_share_18_22'])}.</p>"
    )
    return (
        _figure("hours", _svg(draw_hours), "Events by local hour of day (bookings dotted)")
        + _figure("weekdays", _svg(draw_days, 5.0), "Events by local day of week")
        + note
    )


def _sessions(r: dict[str, Any]) -> str:
    s = r["sessions"]
    histogram = s["searches_per_session"]["histogram"]

    def draw(ax: Any) -> None:
        keys = [int(k) for k in histogram]
        ax.bar(keys, list(histogram.values()), color=[GREY if k == 10 else BLUE for k in keys])
        ax.set_xticks(keys, [f"{k}+" if k == 10 else str(k) for k in keys])
        ax.set_xlabel("searches in the session (10+: ten or more)")
        ax.set_ylabel("sessions")
        _counts(ax.yaxis)

    rows = [
        [
            "searches per session (mean)",
            _number(s["searches_per_session"]["mean"]),
            _number(s["searches_per_session"]["target_mean"]),
            "1.6 to 3 (Jansen et al. 2009)",
        ],
        [
            "session length, median",
            f"{_number((s['session_seconds']['median'] or 0) / 60, 1)} min",
            "",
            "about 6 min (Similarweb)",
        ],
        ["anonymous sessions", _percent(s["anonymous_share"]["value"]), _percent(s["anonymous_share"]["target"]), ""],
        [
            "sessions per logged-in user (mean)",
            _number(s["sessions_per_user"]["mean"]),
            "",
            "many visits before a booking",
        ],
        ["returning visits", _percent(s["returning_visit_share"]["value"]), "", "about 32 % (Databox)"],
    ]
    return _table(["measure", "measured", "configured", "published"], rows) + _figure(
        "sessions", _svg(draw, 5.0), "Searches per session"
    )


def _note(text: str) -> str:
    """A line in place of a figure that the files hold too little to measure."""
    return f'<p class="meta">{html.escape(text)}</p>'


def _geography(r: dict[str, Any]) -> str:
    top = r["geography"]["top_cities"]
    if all(row["share"] is None for row in top):
        return _note("No logged-in user in the files: their home cities cannot be measured.")

    def draw(ax: Any) -> None:
        names = [row["city"] for row in top]
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], [row["share"] for row in top], 0.4, color=BLUE, label="share of users")
        ax.bar(
            [i + 0.2 for i in x],
            [row["population_share"] for row in top],
            0.4,
            color=ORANGE,
            label="share of population",
        )
        ax.set_xticks(list(x), names, rotation=35, ha="right", fontsize=8)
        _shares(ax.yaxis)
        _legend(ax)

    rows = [
        [
            html.escape(f"{row['city']}, {row['country']}"),
            _number(row["users"]),
            _percent(row["share"], 2),
            _percent(row["population_share"], 2),
            _status(row["relative"] is not None and abs(row["relative"]) <= 0.2),
        ]
        for row in top
    ]
    return _figure("cities", _svg(draw, 7.0, 3.4), "Top home cities") + _table(
        ["city", "users", "share of users", "share of population", ""], rows
    )


def _devices_channels(r: dict[str, Any]) -> str:
    matrix = r["devices"]["matrix_share_of_sessions"]
    devices = ["desktop", "mobile", "tablet"]

    def draw(ax: Any) -> None:
        values = [[row[d] for d in devices] for row in matrix]
        image = ax.imshow(values, cmap="Blues")
        ax.set_xticks(range(3), devices)
        ax.set_yticks(range(len(matrix)), [row["platform"] for row in matrix])
        top = max((v for row in values for v in row), default=0) or 1
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                # White on the dark half of the colour scale, black on the light half.
                colour = "white" if v > top / 2 else "black"
                ax.text(j, i, f"{100 * v:.1f} %", ha="center", va="center", fontsize=8, color=colour)
        bar = ax.figure.colorbar(image, ax=ax)
        _shares(bar.ax.yaxis)
        ax.grid(False)

    channels = r["channels"]["by_source_medium"]

    def draw_channels(ax: Any) -> None:
        labels = [f"{c['source']}/{c['medium']}" for c in channels]
        ax.barh(labels, [c["share"] for c in channels], color=BLUE)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlabel("share of sessions")
        _shares(ax.xaxis)

    rows = [
        [
            html.escape(c["source"]),
            html.escape(c["medium"]),
            _percent(c["share"]),
            _percent(c["configured_new_share"]),
            _percent(c["configured_returning_share"]),
        ]
        for c in channels
    ]
    note = (
        f"<p>Phones carry {_percent(r['devices']['mobile_share']['value'])} of sessions (Similarweb: about 55 % of "
        f"travel traffic); apps on a desktop: {r['devices']['apps_on_desktop']}.</p>"
    )
    return (
        _figure("devices", _svg(draw, 5.0, 2.8), "Sessions by platform and device")
        + note
        + _figure("channels", _svg(draw_channels, 6.4, 3.8), "Sessions by UTM source and medium")
        + _table(["source", "medium", "measured", "configured, new visits", "configured, returning"], rows)
    )


def _trips_money(r: dict[str, Any]) -> str:
    t, m = r["trips"], r["money"]
    weeks = t["lead_time_weeks_histogram"]

    def draw(ax: Any) -> None:
        keys = [int(k) for k in weeks]
        last = max(keys, default=0)
        ax.bar(keys, list(weeks.values()), color=[GREY if k == last else BLUE for k in keys])
        ticks = [k for k in keys if k % 2 == 0 and k < last - 1] + [last]
        ax.set_xticks(ticks, [f"{k}+" if k == last else str(k) for k in ticks])
        ax.set_xlabel(f"lead time, whole weeks (search day to trip start; {last}+: {last} weeks or more)")
        ax.set_ylabel("searches")
        _counts(ax.yaxis)

    lead_rows = [
        [
            row["device"],
            _number(row["mean"], 1),
            _number(row["median"], 1),
            _percent(row["within_7"]),
            _percent(row["within_30"]),
        ]
        for row in t["lead_time_days"]
    ]
    price_rows = [
        [p["product"], _number(p["mean_usd"]), _number(p["median_usd"]), _number(p["clicks"])]
        for p in m["click_prices"]
    ]
    booking_rows = [
        [
            b["product"],
            _number(b["bookings"]),
            _number(b["mean_value_usd"]),
            _percent(b["commission_share"]),
            _percent(b["configured_commission"]),
            _percent(b["desktop_share"]),
            _percent(b["published_desktop_share"], 0),
        ]
        for b in m["bookings"]
    ]
    device_rows = [
        [d["device"], _number(d["bookings"]), _number(d["mean_value_usd"]), _percent(d["relative_to_desktop"], 0)]
        for d in m["bookings_by_device"]
    ]

    def draw_money(ax: Any) -> None:
        ax.bar([b["product"] for b in m["bookings"]], [b["mean_value_usd"] for b in m["bookings"]], color=ORANGE)
        ax.set_ylabel("mean booking value, USD")
        _counts(ax.yaxis)

    nights = t["nights"]
    return (
        _figure("lead", _svg(draw), "Lead time of searches")
        + _table(["device", "mean days", "median days", "within 7 days", "within 30 days"], lead_rows)
        + f"<p>Published: mean 21-24 days, 41.5 % within 7 days, 80 % within 30 (Agoda, nSight, Koddi). "
        f"Nights: mean {_number(nights['mean'])}, median {_number(nights['median'], 1)} (Airbnb: mean about 4, median 2-3).</p>"
        + _table(["product", "mean click price, USD", "median", "clicks"], price_rows)
        + _figure("bookings", _svg(draw_money, 5.0), "Mean booking value by product")
        + _table(
            ["product", "bookings", "mean value, USD", "commission", "configured", "on desktop", "published"],
            booking_rows,
        )
        + _table(["device", "bookings", "mean value, USD", "vs desktop"], device_rows)
        + "<p>Published: hotel night $155.62 (CoStar/STR), airfare $469 round trip (BTS), car $55-85 a day; "
        "a smartphone booking is worth 57 % of a desktop one (Criteo 2015).</p>"
    )


def problem_place(problem: dict[str, Any]) -> str:
    """Where a problem is: a file and line, or a figure of the report."""
    if problem.get("figure"):
        return f"figure {problem['figure']}"
    return f"{problem['file']}" + ("" if problem["line"] is None else f", line {problem['line']}")


def _references(r: dict[str, Any]) -> str:
    found: list[Check] = checks(r)
    rows = [
        [
            html.escape(c.label),
            _checked(c.measured, c.unit),
            f"{_checked(c.low, c.unit)} to {_checked(c.high, c.unit)}",
            html.escape(c.reference),
            _status(c.ok),
        ]
        for c in found
    ]
    off = sum(1 for c in found if c.ok is False)
    summary = (
        f'<p class="flagged">{off} of {len(found)} figures are outside their reference\'s tolerance (flagged <span class="off">off</span>; '
        "listed under problems in report.json).</p>"
        if off
        else f"<p>All {len(found)} figures are within their reference's tolerance.</p>"
    )
    return summary + _table(["figure", "measured", "allowed", "reference", ""], rows)


def _checked(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return _percent(value) if unit == "%" else _number(float(value))


def _integrity(r: dict[str, Any]) -> str:
    rows = []
    for name, value in r["integrity"].items():
        if isinstance(value, dict):
            total = sum(value.values())
            detail = ", ".join(f"{k}: {v}" for k, v in value.items())
            rows.append([name.replace("_", " "), f"{total} ({detail})", _status(total == 0)])
        else:
            rows.append([name.replace("_", " "), _number(value), _status(value == 0)])
    problems = r["problems"]
    listing = "".join(f"<li>{html.escape(problem_place(p))}: {html.escape(p['problem'])}</li>" for p in problems[:50])
    return _table(["check", "count", ""], rows) + (f"<h3>Problems</h3><ul>{listing}</ul>" if problems else "")


STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:980px;padding:0 1rem;color:#1a202c;line-height:1.4}
h1{margin-bottom:0}h2{border-bottom:1px solid #cbd5e0;margin-top:2.2rem}table{border-collapse:collapse;margin:.6rem 0}
div.table{overflow-x:auto;max-width:100%}
td,th{border:1px solid #e2e8f0;padding:.25rem .6rem;text-align:right}th{background:#f7fafc}td:first-child{text-align:left}
.ok{color:#276749;font-weight:600}.off{color:#c53030;font-weight:600}figure{margin:1rem 0}figcaption{color:#4a5568;font-size:.9rem}
svg{max-width:100%;height:auto}.meta{color:#4a5568}.when{white-space:nowrap}.runs{margin:.3rem 0;padding-left:1.2rem;color:#4a5568}
.flagged{border-left:4px solid #c53030;padding-left:.6rem}
@media (max-width:600px){body{margin:1rem auto}td,th{padding:.2rem .35rem;font-size:.85rem}}"""


# The page reads without script; this one only says on the console whether every chart has a size,
# so a browser test (or a curious reader's console) can tell that the charts rendered.
# It also notes every console error and failed resource on the page's <body>, where a headless
# browser's DOM dump shows them.
WATCH_ERRORS = """window.pageErrors=[];window.addEventListener('error',function(e){
window.pageErrors.push(String(e.message||(e.target&&(e.target.src||e.target.href))||'error'));},true);
var consoleError=console.error;console.error=function(){
window.pageErrors.push(Array.prototype.join.call(arguments,' '));consoleError.apply(console,arguments);};"""
CHECK_CHARTS = """(function(){var charts=document.querySelectorAll('figure.chart');var empty=[];
charts.forEach(function(f){var s=f.querySelector('svg');var b=s&&s.getBoundingClientRect();
if(!s||b.width<50||b.height<50){empty.push(f.dataset.chart);}});
if(empty.length){console.error('charts not rendered: '+empty.join(', '));}
else{console.log('charts rendered: '+charts.length);}
document.body.setAttribute('data-charts-rendered',String(charts.length-empty.length));
document.body.setAttribute('data-console-errors',JSON.stringify(window.pageErrors));
document.body.setAttribute('data-page-width',String(document.documentElement.scrollWidth));
document.body.setAttribute('data-viewport-width',String(window.innerWidth));})();"""


def _when(stamp: Any) -> str:
    """A manifest time (2026-11-01T00:00:00Z) as one unbreakable piece of text: 2026-11-01 00:00 UTC."""
    text = str(stamp)
    if len(text) >= 16 and text[10] == "T":
        text = f"{text[:10]} {text[11:16]} UTC"
    return f'<span class="when">{html.escape(text)}</span>'


def _header(report: dict[str, Any]) -> str:
    """What was measured: the folder, its counts, and every run written into its files."""
    manifest = report.get("manifest") or {}
    counts = ", ".join(f"{_number(n)} {t}" for t, n in report["counts"].items())
    runs = manifest.get("runs") or ([manifest] if manifest else [])
    items = []
    for run in runs:
        window = (
            f"{_when(run['window_start'])} to {_when(run['window_end'])}"
            if "window_start" in run and "window_end" in run
            else "window not recorded"
        )
        written = ", ".join(f"{_number(n)} {t}" for t, n in (run.get("counts") or {}).items())
        extra = " (interrupted)" if run.get("interrupted") else ""
        items.append(
            f"<li>seed {html.escape(str(run.get('seed', '?')))}, {html.escape(str(run.get('mode', 'batch')))}, "
            f"{window}{': ' + written if written else ''}{extra}</li>"
        )
    listing = (
        f'<p class="meta">{len(runs)} run{"s" if len(runs) != 1 else ""} in these files:</p><ul class="runs">{"".join(items)}</ul>'
        if runs
        else '<p class="meta">No manifest.json beside the files: seeds and windows are unknown.</p>'
    )
    searches = report["counts"].get("search", 0)
    few = (
        _note(
            f"Only {searches:,} valid search{'es' if searches != 1 else ''}: too few to hold most figures against "
            "their targets: intervals are wide, and figures without data read n/a."
        )
        if searches < FEW_SEARCHES
        else ""
    )
    return (
        f'<p class="meta">{html.escape(report["input"])} ({html.escape(report.get("input_format", "jsonl"))}): {counts}. Targets from {html.escape(report["targets_from"])}. '
        "Published figures and their sources: docs/REALISM.md in the SearchFlow Event Generator repository.</p>"
        + few
        + listing
    )


def _lifecycle(report: dict[str, Any]) -> str:
    from .lifecycle_page import lifecycle_section  # it draws with this module's helpers

    return lifecycle_section(report)


def _offers(report: dict[str, Any]) -> str:
    from .offers_page import offers_section  # it draws with this module's helpers

    return offers_section(report)


def _faults(report: dict[str, Any]) -> str:
    from .faults_page import faults_section  # it draws with this module's helpers

    return faults_section(report)


def render(report: dict[str, Any]) -> str:
    """The whole page."""
    sections = [
        ("references", "Against the published figures", _references),
        ("funnel", "Funnel", _funnel),
        ("clicks", "Clicks by rank", _ranks),
        ("rhythm", "Daily and weekly rhythm", _rhythm),
        ("sessions", "Sessions and users", _sessions),
        ("users", "Users' lives", _lifecycle),
        ("home", "Home cities", _geography),
        ("devices", "Devices and channels", _devices_channels),
        ("trips", "Trips, prices and bookings", _trips_money),
        ("offers", "Prices and offers", _offers),
        ("integrity", "Integrity", _integrity),
        ("faults", "Faults in the input", _faults),
    ]
    body = "".join(f'<section id="{key}"><h2>{title}</h2>{make(report)}</section>' for key, title, make in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>SearchFlow realism report</title>'
        f"<script>{WATCH_ERRORS}</script><style>{STYLE}</style></head><body><h1>SearchFlow realism report</h1>"
        f"{_header(report)}{body}<script>{CHECK_CHARTS}</script></body></html>"
    )


def write(report: dict[str, Any], html_path: Path, json_path: Path) -> None:
    """Write the page and the JSON summary of every figure, each through a temporary file and a rename.

    Both are written before either is renamed: a failed write (a full disk) leaves the old
    files, or none, never an empty or partial one, and raises WriteFailed naming the file.
    """
    from ..output.files import write_all_atomically

    page = render(report).encode("utf-8")
    figures = (json.dumps(report, indent=2, default=str) + "\n").encode("utf-8")
    write_all_atomically([(html_path, page), (json_path, figures)])
