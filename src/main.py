"""CLI entry point: ``python -m src.main``. Parses flags, prints, exits; the work is library calls."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click

from . import tuning  # noqa: F401  (first: it sets up the runtime before polars is imported)
from .config import Settings, SettingsError, check_output_dir, load_settings, redis_address
from .early import MEMORY_HINT, out_of_memory, signalled, stdout_was_closed
from .generator import EventGenerator, new_seed
from .output.files import FolderLock, WriteFailed
from .output.manifest import begin_run, check_new_run, record_run, run_record
from .progress import Progress, thousands
from .publishers import (
    FilePublisher,
    Publisher,
    RedisPublisher,
    RedisUnavailable,
    StreamPublisher,
    redis_client,
)
from .runner import ENCODE_THREADS, RunResult, events_per_second, run_batch, run_live

EXAMPLES = """
\b
Examples:
  python -m src.main --count 10000                      # 10,000 events into $OUTPUT_DIR
  python -m src.main --count 50000 --rate 100           # paced at 100 events/s
  python -m src.main --count 1000000 --days 28 --seed 1 --overwrite
  python -m src.main --start 2026-01-01 --end 2026-02-01 --count 2000000
  python -m src.main --output stdout --count 100 | head -3
  OUTPUT_DIR=./data CLICK_THROUGH_RATE=0.25 python -m src.main --count 10000
  python -m src.main --mode continuous --output redis   # live, at EVENTS_PER_SECOND, until Ctrl-C
  python -m src.main --mode continuous --rate 2000 --duration 60 --output both
\b
Every setting can also be given as an environment variable (see README);
a flag wins over the environment, which wins over the default.
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


def _summary(result: RunResult, where: str, outputs: list[str], redis: RedisPublisher | None) -> str:
    counts = ", ".join(f"{thousands(n)} {t}" for t, n in result.counts.items())
    lines = [
        f"{'stopped after writing' if result.interrupted else 'wrote'} {thousands(result.total)} events ({counts}) "
        f"in {result.elapsed:.2f} s, {thousands(events_per_second(result))} events/s",
        f"seed {result.seed} (repeat with --seed {result.seed}); {where}",
        *outputs,
    ]
    if redis is not None and redis.reconnects:
        lines.append(f"redis: reconnected {redis.reconnects} time(s); every event delivered once")
    return "\n".join(lines)


def _redis(settings: Settings) -> RedisPublisher:
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    try:
        client, where = redis_client(
            settings.redis_url, settings.redis_host, settings.redis_port, password, settings.redis_db
        )
    except ValueError:
        url = redis_address(str(settings.redis_url))
        raise SettingsError(f"REDIS_URL={url}: not a Redis URL redis-py can read") from None
    try:
        return RedisPublisher(
            client,
            where,
            prefix=settings.stream_prefix,
            maxlen=settings.stream_maxlen,
            buffer_events=settings.redis_buffer_events,
            give_up_after=settings.redis_retry_seconds,
        )
    except RedisUnavailable as exc:
        if exc.setting == "REDIS_HOST":
            name = f"REDIS_URL={where}" if settings.redis_url else f"REDIS_HOST:REDIS_PORT={where}"
            raise SettingsError(f"{name}: {exc}; start Redis or point REDIS_HOST/REDIS_PORT at it") from None
        value = settings.stream_prefix if exc.setting == "STREAM_PREFIX" else "***"
        raise SettingsError(f"{exc.setting}={value}: {exc}") from None


def _status(settings: Settings, generator: EventGenerator, progress: Progress, redis: RedisPublisher | None) -> str:
    """Extra figures for the status line of a live run."""
    parts = []
    if settings.mode == "continuous":
        achieved = progress.written / max(progress.elapsed, 1e-9)
        parts += [
            f"target {thousands(settings.events_per_second)}/s",
            f"achieved {thousands(achieved)}/s",
            f"{thousands(generator.in_flight())} sessions in flight",
            f"lag {generator.lag_ms():,} ms",
        ]
    if redis is not None:
        state = "retrying" if redis.retrying else "ok"
        parts.append(f"redis {state}, {redis.reconnects} reconnects, {thousands(redis.buffered)} buffered")
    return ", ".join(parts)


def _iso(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def _generate(flags: dict[str, Any]) -> int:
    # First: from here on a signal asks the run to stop (before, src.early ends the process quietly).
    _Stop.requested, _Stop.signum = False, 0
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _Stop.handle)
    if signalled():  # a signal while starting whose SystemExit Python dropped (src.early said so already)
        return 128 + signalled()
    settings = load_settings(flags)
    writes_files = settings.output in ("file", "both")
    dir_name = "--output-dir" if flags.get("output_dir") else "OUTPUT_DIR"
    if settings.output == "stdout" and (stdout_was_closed() or sys.stdout is None):
        raise SettingsError("--output=stdout: standard output is closed; give the run somewhere to write")
    if writes_files:
        check_output_dir(settings.output_dir, dir_name)
    redis = _redis(settings) if settings.output in ("redis", "both") else None
    seed = settings.seed if settings.seed is not None else new_seed()
    live = settings.mode == "continuous"
    if live:
        length = f"for {settings.duration:g} s" if settings.duration else "until stopped (Ctrl-C)"
        where = f"continuous at {thousands(settings.events_per_second)} events/s {length}"
    else:
        start, end = settings.window()
        where = f"window {start:%Y-%m-%dT%H:%M:%SZ} to {end:%Y-%m-%dT%H:%M:%SZ}"
    what = "" if live else f"{thousands(settings.event_count)} events, "
    # One writer per folder, and not the same run twice: refused before anything in the folder is touched.
    lock = FolderLock(settings.output_dir, dir_name) if writes_files else None
    try:
        if lock is not None and not settings.overwrite:
            check_new_run(settings.output_dir, settings, seed, None if live else (_iso(start), _iso(end)), dir_name)
        _say(settings, f"generating {what}seed {seed}, {where}")
        generator = EventGenerator(settings, seed)
        if _Stop.requested:
            return _stopped_before_start(settings, lock)
        publishers: list[Publisher] = []
        outputs: list[str] = []
        if lock is not None:
            file_publisher = FilePublisher(
                settings.output_dir, overwrite=settings.overwrite, lock=lock, replace_at_end=not live, name=dir_name
            )
            for event_type, removed in file_publisher.repaired.items():
                path = file_publisher.paths[event_type]
                _say(settings, f"repaired {path}: removed a partial last line ({removed} bytes)")
            begin_run(file_publisher, settings, seed, None if live else (_iso(start), _iso(end)))
            publishers.append(file_publisher)
            outputs.append("files: " + ", ".join(str(p) for p in file_publisher.paths.values()))
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if redis is not None:
        publishers.append(redis)
        outputs.append(f"redis: {redis.where} streams {', '.join(redis.streams)}")
    if settings.output == "stdout":
        publishers.append(StreamPublisher(sys.stdout.buffer))

    total = None if live else settings.event_count
    if live and settings.duration:
        total = int(settings.events_per_second * settings.duration)
    progress = Progress(sys.stderr, total, enabled=not settings.quiet)

    def on_batch(counts: dict[str, int]) -> None:
        progress.update(counts, lambda: _status(settings, generator, progress, redis))

    if redis is not None:
        redis.stopping = lambda: _Stop.requested
    began = datetime.now(UTC)
    result = RunResult(seed=seed)
    failure: str | None = None
    files_failed = False  # a write error or no memory: an --overwrite run's new files are dropped
    reader_gone = False
    try:
        if live:
            run_live(
                generator,
                publishers,
                settings.events_per_second,
                settings.duration,
                should_stop=lambda: _Stop.requested,
                on_batch=on_batch,
                result=result,
            )
        else:
            run_batch(
                generator,
                publishers,
                settings.event_count,
                start,
                end,
                rate=settings.batch_rate,
                should_stop=lambda: _Stop.requested,
                on_batch=on_batch,
                # With Redis, its sender thread (and often the server itself) needs a core of its own.
                encode_threads=1 if redis is not None else ENCODE_THREADS,
                result=result,
            )
    except RedisUnavailable as exc:
        failure = str(exc)
    except WriteFailed as exc:
        failure, files_failed = str(exc), True
    except (MemoryError, RuntimeError) as exc:
        files_failed = True
        if not out_of_memory(exc):
            raise
        failure = f"out of memory after {thousands(result.total)} events ({type(exc).__name__}); {MEMORY_HINT}"
    except BrokenPipeError:
        # A reader such as `head` closed standard output: stop quietly, as Unix tools do.
        reader_gone = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except BaseException:
        files_failed = True  # a bug: an --overwrite run's new files are dropped, the old ones stay
        raise
    finally:
        progress.close()
        for publisher in publishers:
            try:
                if files_failed and isinstance(publisher, FilePublisher):
                    publisher.discard()
                else:
                    publisher.close()
            except (RedisUnavailable, WriteFailed) as exc:
                failure = failure or str(exc)
            except BrokenPipeError:
                reader_gone = True
    if lock is not None:
        if live:
            span = {
                "window_start": _iso(began),
                "window_end": _iso(datetime.now(UTC)),
                "rate": settings.events_per_second,
            }
        else:
            span = {"window_start": _iso(start), "window_end": _iso(end)}
        record = run_record(settings, generator.model, seed, result.counts, span, result.interrupted or bool(failure))
        try:
            manifest = record_run(file_publisher, record, overwrite=settings.overwrite)
            outputs.append(f"answer key: {manifest}" if manifest else "files: left as they were")
        except WriteFailed as exc:
            failure = failure or str(exc)
        finally:
            lock.release()
    if reader_gone:
        return 0
    _say(settings, _summary(result, where, outputs, redis))
    if failure is not None:
        click.echo(f"error: {failure}", err=True)
        return 1
    return 0


def _stopped_before_start(settings: Settings, lock: FolderLock | None) -> int:
    """A signal came before any event was generated: nothing is written; exit 128 + the signal's number."""
    if lock is not None:
        lock.release()
    _say(settings, f"stopped by {signal.Signals(_Stop.signum).name} before any event was written")
    return 128 + _Stop.signum


@click.group(
    invoke_without_command=True,
    epilog=EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--count", "event_count", metavar="N", help="Events to write in batch mode, over all types. [EVENT_COUNT, 10000]"
)
@click.option(
    "--rate",
    metavar="R",
    help="Events per second: pace a batch run, or the rate of continuous mode. [EVENTS_PER_SECOND, 10]",
)
@click.option("--mode", metavar="MODE", help="batch (also: once, burst) or continuous. [MODE, batch]")
@click.option("--output", metavar="OUT", help="file, stdout (also: console), redis or both. [OUTPUT, file]")
@click.option("--output-dir", metavar="DIR", help="Directory for the JSONL files. [OUTPUT_DIR, /data/raw]")
@click.option("--seed", metavar="S", help="Seed: the same seed and settings give the same bytes. [SEED, random]")
@click.option(
    "--start", "window_start", metavar="TIME", help="Start of the batch window, e.g. 2026-01-01. [WINDOW_START]"
)
@click.option(
    "--end",
    "window_end",
    metavar="TIME",
    help="End of the batch window, e.g. 2026-01-31T12:00:00Z. [WINDOW_END, this hour]",
)
@click.option(
    "--days", "window_days", metavar="D", help="Length of the window when --start is not given. [WINDOW_DAYS, 7]"
)
@click.option("--duration", metavar="S", help="Seconds a continuous run lasts; until Ctrl-C if unset. [DURATION]")
@click.option(
    "--overwrite", is_flag=True, default=None, help="Start the files afresh instead of appending. [OVERWRITE]"
)
@click.option("--quiet", "-q", is_flag=True, default=None, help="Print nothing but errors. [QUIET]")
@click.pass_context
def cli(ctx: click.Context, /, rate: str | None, **flags: Any) -> int:
    """Simulate the search, click and booking traffic of a travel site, as JSON lines.

    Batch mode (the default) writes exactly --count events over a time window into
    search_events.jsonl, click_events.jsonl and conversion_events.jsonl in OUTPUT_DIR.
    """
    if ctx.invoked_subcommand is not None:
        return 0
    flags["events_per_second"] = rate
    flags["batch_rate"] = rate
    return _generate(flags)


@cli.command()
@click.option("--input", "input_dir", metavar="DIR", help="Directory of the JSONL files. [OUTPUT_DIR]")
@click.option("--out", "out_file", metavar="FILE", help="The HTML page to write. [DIR/report.html]")
@click.option("--quiet", "-q", is_flag=True, default=None, help="Print nothing but errors.")
def report(input_dir: str | None, out_file: str | None, quiet: bool | None) -> int:
    """Measure a run's events against their targets: report.html and report.json.

    \b
    Examples:
      python -m src.main report                      # reads OUTPUT_DIR
      python -m src.main report --input ./data/raw --out /tmp/report.html
    """
    from .report.load import ReportError, build_report
    from .report.page import write

    directory = Path(input_dir) if input_dir else load_settings({}).output_dir
    html_path = Path(out_file) if out_file else directory / "report.html"
    json_path = html_path.with_suffix(".json")
    try:
        data = build_report(directory)
        write(data, html_path, json_path)
    except ReportError as exc:
        raise SettingsError(str(exc)) from None
    except OSError as exc:
        raise SettingsError(f"--out={html_path}: cannot write ({exc.strerror or exc})") from None
    if not quiet:
        for problem in data["problems"][:20]:
            where = f"{problem['file']}" + (f", line {problem['line']}" if problem["line"] is not None else "")
            click.echo(f"warning: {where}: {problem['problem']}", err=True)
        funnel = data["funnel"]
        failing = [k for k, v in data["integrity"].items() if (sum(v.values()) if isinstance(v, dict) else v)]
        click.echo(
            f"report: {html_path} and {json_path}\n"
            f"CTR {100 * (funnel['click_through_rate']['value'] or 0):.2f} %, "
            f"CVR {100 * (funnel['conversion_rate']['value'] or 0):.2f} %; "
            + ("integrity: all checks 0" if not failing else f"integrity: {', '.join(failing)} not 0"),
            err=True,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; a user's mistake is one line on stderr and exit status 2."""
    try:
        code = cli.main(
            args=list(argv) if argv is not None else None, prog_name="python -m src.main", standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        click.echo(f"error: {exc.format_message()} (see --help)", err=True)
        return 2
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
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
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
