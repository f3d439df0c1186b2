"""CLI entry point: ``python -m src.main``. Parses flags, prints, exits; the work is library calls."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import click
from click.core import ParameterSource

from . import (
    __version__,
    tuning,  # noqa: F401  (first: it sets up the runtime before polars is imported)
)
from .api import GenerateResult, generate
from .config import Settings, SettingsError, check_output_dir, load_settings, source_of
from .early import MEMORY_HINT, signalled, signals_held, stdout_was_closed
from .flag_rules import check_flags, check_summary_json
from .output.files import WriteFailed
from .progress import thousands

EXAMPLES = """
\b
Examples:
  python -m src.main --count 10000                      # 10,000 events into $OUTPUT_DIR
  python -m src.main generate --count 10000             # the same, with the command named
  python -m src.main --count 50000 --rate 100           # paced at 100 events/s
  python -m src.main --count 1000000 --days 28 --seed 1 --overwrite
  python -m src.main --start 2026-01-01 --end 2026-02-01 --count 2000000
  python -m src.main --output stdout --count 100 | head -3
  OUTPUT_DIR=./data CLICK_THROUGH_RATE=0.25 python -m src.main --count 10000
  python -m src.main --mode continuous --output redis   # live, at EVENTS_PER_SECOND, until Ctrl-C
  python -m src.main --mode continuous --rate 2000 --duration 60 --output both
  python -m src.main --config run.toml --summary-json   # settings from a file; summary as JSON
  python -m src.main --count 1000000 --impressions      # also each search's page, to fit click models
  python -m src.main --count 20000000 --days 28 --output parquet   # Parquet datasets by date, for a warehouse
  python -m src.main --count 1000000 --faults chaos     # labelled mess to test a pipeline; truth in faults.jsonl
  FAULT_LATE_RATE=0.05 python -m src.main --faults light --count 100000   # a preset with one kind overridden
\b
Every setting can also be given as an environment variable, NAME or SEARCHFLOW_NAME
(see README), or in a config file (--config or SEARCHFLOW_CONFIG): a flag wins over
the environment, which wins over the config file, which wins over the default.
"""


class _Stop:
    """Set by SIGINT or SIGTERM: the run stops at the next batch and flushes what it made."""

    requested = False
    signum = 0

    @classmethod
    def handle(cls, signum: int, frame: FrameType | None) -> None:
        cls.requested = True
        cls.signum = cls.signum or signum


def _say(settings: Settings, message: str) -> None:
    if not settings.quiet:
        click.echo(message, err=True)


def _summary(result: GenerateResult) -> str:
    counts = ", ".join(f"{thousands(n)} {t}" for t, n in result.counts.items())
    lines = [
        f"{'stopped after writing' if result.interrupted else 'wrote'} {thousands(result.total)} events ({counts}) "
        f"in {result.elapsed:.2f} s, {thousands(result.events_per_second)} events/s",
        f"seed {result.seed} (repeat with --seed {result.seed}); {result.description}",
    ]
    if result.files:
        lines.append("files: " + ", ".join(str(p) for p in result.files.values()))
    if result.datasets:
        lines.append("parquet: " + ", ".join(f"{p}/" for p in result.datasets.values()))
    if result.redis is not None:
        lines.append(f"redis: {result.redis} streams {', '.join(result.streams)}")
    if result.manifest is not None:
        lines.append(f"answer key: {result.manifest}")
    if result.users is not None:
        lines.append(f"users: {result.users}")
    if result.items is not None:
        lines.append(f"items: {result.items}")
    if result.redis_reconnects:
        lines.append(f"redis: reconnected {result.redis_reconnects} time(s); every event delivered once")
    return "\n".join(lines)


def _given(ctx: click.Context) -> dict[str, str]:
    """The options typed on the command line (not defaults), by parameter name, as the user wrote them."""
    shown = {}
    for param in ctx.command.params:
        if param.name and ctx.get_parameter_source(param.name) == ParameterSource.COMMANDLINE:
            shown[param.name] = param.opts[0]
    return shown


def _generate(ctx: click.Context, flags: dict[str, Any]) -> int:
    # First: from here on a signal asks the run to stop (before, src.early ends the process quietly).
    _Stop.requested, _Stop.signum = False, 0
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _Stop.handle)
    if signalled():  # a signal while starting whose SystemExit Python dropped (src.early said so already)
        return 128 + signalled()
    config, summary_json, rate = flags.pop("config"), flags.pop("summary_json"), flags.pop("rate")
    flags["events_per_second"] = rate
    flags["batch_rate"] = rate
    settings = load_settings(flags, config)
    # The settings the user typed as flags (not those from the environment, a config file or defaults).
    given = {name: flags[name] for name in _given(ctx) if flags.get(name) is not None}
    for warning in check_flags(settings, given):
        click.echo(f"warning: {warning}", err=True)
    if summary_json:
        check_summary_json(settings)
    if settings.output == "stdout" and (stdout_was_closed() or sys.stdout is None):
        raise SettingsError("--output=stdout: standard output is closed; give the run somewhere to write")
    dir_name = _name_of("output_dir", flags, "--output-dir", config)
    if settings.writes_folder:
        check_output_dir(settings.output_dir, dir_name)
    result = generate(
        settings,
        log=None if settings.quiet else lambda message: click.echo(message, err=True),
        progress=None if settings.quiet else sys.stderr,
        should_stop=lambda: _Stop.requested,
        dir_name=dir_name,
    )
    if not result.started:
        _say(settings, f"stopped by {signal.Signals(_Stop.signum).name} before any event was written")
        return 128 + _Stop.signum
    if result.reader_gone:
        return 0
    _say(settings, _summary(result))
    if summary_json:
        click.echo(json.dumps(result.summary()))
    if result.failure is not None:
        click.echo(f"error: {result.failure}", err=True)
        return 1
    return 0


def _name_of(field: str, flags: dict[str, Any], flag: str, config: str | None) -> str:
    """How a message names the source of ``field``: its flag, its variable or config file, or its variable."""
    if flags.get(field) is not None:
        return flag
    source = source_of(field, Path(config) if config else None)
    return source[0] if source else field.upper()


def _setting_hint(field: str, shown: str | None = None) -> str:
    """``[VARIABLE, default]`` for a help text, from the settings object itself."""
    default = Settings.model_fields[field].default
    value = (
        shown
        if shown is not None
        else ("unset" if default is None else f"{default:g}" if isinstance(default, float) else str(default))
    )
    return f"[{field.upper()}, {value}]"


_CONFIG_HELP = "Read settings from a TOML (.toml) or .env file, below the environment. [SEARCHFLOW_CONFIG]"


def _generation_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The flags of a generation run, shared by the bare command and ``generate``."""
    options = [
        click.option(
            "--count",
            "event_count",
            metavar="N",
            help=f"Events to write in batch mode, over all types. {_setting_hint('event_count')}",
        ),
        click.option(
            "--rate",
            metavar="R",
            help="Events per second of wall-clock time. Batch: paces the run; unset, it runs as fast as it can "
            f"{_setting_hint('batch_rate')}. Continuous: the rate {_setting_hint('events_per_second')}.",
        ),
        click.option(
            "--mode", metavar="MODE", help=f"batch (also: once, burst) or continuous. {_setting_hint('mode')}"
        ),
        click.option(
            "--output",
            metavar="OUT",
            help="file (JSONL), parquet, redis, stdout (also: console), both (file and redis), or a list such as "
            f"parquet,redis. {_setting_hint('output')}",
        ),
        click.option(
            "--output-dir",
            metavar="DIR",
            help=f"Directory for the JSONL files and Parquet datasets. {_setting_hint('output_dir')}",
        ),
        click.option(
            "--seed",
            metavar="S",
            help=f"Seed: the same seed and settings give the same bytes. {_setting_hint('seed', 'random')}",
        ),
        click.option(
            "--start",
            "window_start",
            metavar="TIME",
            help=f"Start of the batch window, e.g. 2026-01-01. {_setting_hint('window_start', 'end - days')}",
        ),
        click.option(
            "--end",
            "window_end",
            metavar="TIME",
            help=f"End of the batch window, e.g. 2026-01-31T12:00:00Z. {_setting_hint('window_end', 'this hour')}",
        ),
        click.option(
            "--days",
            "window_days",
            metavar="D",
            help=f"Length of the window when --start is not given. {_setting_hint('window_days')}",
        ),
        click.option(
            "--workers",
            metavar="N",
            help=f"Workers generating a batch run's shards (two threads to a process). "
            f"{_setting_hint('workers', 'all cores')}",
        ),
        click.option(
            "--duration",
            metavar="S",
            help=f"Seconds a continuous run lasts. {_setting_hint('duration', 'until Ctrl-C')}",
        ),
        click.option(
            "--overwrite",
            is_flag=True,
            default=None,
            help=f"Start the files afresh instead of appending. {_setting_hint('overwrite')}",
        ),
        click.option(
            "--impressions",
            is_flag=True,
            default=None,
            help=f"Also write impressions.jsonl, the results each search showed. {_setting_hint('impressions')}",
        ),
        click.option(
            "--faults",
            metavar="PRESET",
            help="Inject labelled faults (duplicates, late, malformed lines...) listed in faults.jsonl: none, light "
            f"or chaos; FAULT_<KIND>_RATE sets one kind. {_setting_hint('faults')}",
        ),
        click.option(
            "--quiet",
            "-q",
            is_flag=True,
            default=None,
            help=f"Print nothing but errors and warnings. {_setting_hint('quiet')}",
        ),
        click.option("--config", metavar="FILE", help=_CONFIG_HELP),
        click.option(
            "--summary-json",
            is_flag=True,
            default=False,
            help="Also print the run's summary as one JSON object on stdout (not with --output stdout).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(
    invoke_without_command=True,
    epilog=EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="searchflow-events", message="%(prog)s %(version)s")
@_generation_options
@click.pass_context
def cli(ctx: click.Context, /, **flags: Any) -> int:
    """Simulate the search, click and booking traffic of a travel site, as JSON lines.

    Batch mode (the default) writes exactly --count events over a time window into
    search_events.jsonl, click_events.jsonl and conversion_events.jsonl in OUTPUT_DIR.
    The flags below are those of `generate`, which is also the command run when none is named.
    """
    if ctx.invoked_subcommand is not None:
        typed = _given(ctx)
        if typed:
            first = next(iter(typed.values()))
            raise click.UsageError(
                f"{first}: given before the {ctx.invoked_subcommand!r} command; "
                f"put flags after it (python -m src.main {ctx.invoked_subcommand} --help lists them)"
            )
        return 0
    return _generate(ctx, flags)


@cli.command("generate", epilog=EXAMPLES)
@_generation_options
@click.pass_context
def generate_command(ctx: click.Context, /, **flags: Any) -> int:
    """Write events: a batch of --count events over a window, or continuous live traffic (the default command)."""
    return _generate(ctx, flags)


@cli.command()
@click.option("--input", "input_dir", metavar="DIR", help="Directory of the JSONL files. [OUTPUT_DIR, /data/raw]")
@click.option(
    "--out", "out_file", metavar="FILE", help="The HTML page to write; missing folders are created. [DIR/report.html]"
)
@click.option("--json", "json_file", metavar="FILE", help="The JSON of every figure. [the page's path, ending .json]")
@click.option("--config", metavar="FILE", help=_CONFIG_HELP)
@click.option("--quiet", "-q", is_flag=True, default=None, help="Print nothing but errors.")
def report(
    input_dir: str | None, out_file: str | None, json_file: str | None, config: str | None, quiet: bool | None
) -> int:
    """Measure a run's events against their targets: report.html and report.json.

    \b
    Examples:
      python -m src.main report                      # reads OUTPUT_DIR
      python -m src.main report --input ./data/raw --out /tmp/report.html
      python -m src.main report --out site/index.html --json figures/report.json
    """
    try:
        with signals_held():
            import duckdb  # noqa: F401
            import matplotlib  # noqa: F401

            from .report.page import problem_place
            from .report.run import write_report
    except ImportError as exc:
        raise SettingsError(
            f"report: needs {exc.name}, which is not installed; pip install 'searchflow-event-generator[report]'"
        ) from None

    if input_dir:
        directory, name = Path(input_dir), "--input"
    else:
        directory = load_settings({}, config).output_dir
        name = _name_of("output_dir", {}, "--input", config)
    written = write_report(
        directory,
        Path(out_file) if out_file else None,
        Path(json_file) if json_file else None,
        input_name=name,
        config=Path(config) if config else None,
    )
    data = written.data
    if not quiet:
        for problem in data["problems"][:20]:
            click.echo(f"warning: {problem_place(problem)}: {problem['problem']}", err=True)
        funnel = data["funnel"]
        failing = [k for k, v in data["integrity"].items() if (sum(v.values()) if isinstance(v, dict) else v)]
        click.echo(
            f"report: {written.html} and {written.json}\n"
            f"CTR {100 * (funnel['click_through_rate']['value'] or 0):.2f} %, "
            f"CVR {100 * (funnel['conversion_rate']['value'] or 0):.2f} %; "
            + ("integrity: all checks 0" if not failing else f"integrity: {', '.join(failing)} not 0"),
            err=True,
        )
        if data["faults"]["sidecar"]:
            found = data["faults"]["found"]
            injected = sum(data["faults"]["sidecar"]["injected"].values())
            click.echo(
                f"faults: {injected:,} injected ({data['faults']['sidecar']['file']}); found and taken out "
                f"{found['duplicate']:,} retries, {found['resend']:,} re-sends, {found['malformed_or_missing']:,} "
                f"bad lines, {found['drift']:,} lines of schema version 2, {found['bot']:,} bot searches; "
                "the figures are of the rest",
                err=True,
            )
    return 0


def _prog_name() -> str:
    """``python -m src.main`` from the checkout, or the installed command's name (``searchflow-events``)."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "python -m src.main" if name in ("", "main.py", "__main__.py", "-c") else name


def run_command(command: click.Command, argv: Sequence[str] | None, prog_name: str) -> int:
    """Run a click command; a user's mistake (a bad flag or setting) is one line on stderr and exit status 2."""
    try:
        code = command.main(args=list(argv) if argv is not None else None, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        click.echo(f"error: {exc.format_message()} (see --help)", err=True)
        return 2
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    return int(code or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; a user's mistake is one line on stderr and exit status 2."""
    try:
        return run_command(cli, argv, _prog_name())
    except BrokenPipeError:
        # A reader such as `head` closed standard output: stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except WriteFailed as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except MemoryError:
        click.echo(f"error: out of memory; {MEMORY_HINT}", err=True)
        return 1
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        click.echo(f"error: {exc.strerror or exc}{where}", err=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
