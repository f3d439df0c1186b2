"""Which command-line flags apply to which run: a flag that does not apply is an error or a warning, never ignored.

The command line calls :func:`check_flags` with the settings of the run and the flags the
user typed; these rules live here, apart from ``main``, so they can be read and tested alone.
"""

from __future__ import annotations

from typing import Any

from .config import FLAGS, Settings, SettingsError

# Flags that only make sense in one mode: given in the other, they are an error.
# (--start also starts a continuous run in the past: it catches up, then goes live.)
BATCH_ONLY = ("event_count", "window_end", "window_days", "workers")
CONTINUOUS_ONLY = ("duration",)
# Flags about files: with an output that writes none, they are a warning.
FILES_ONLY = ("output_dir", "overwrite", "impressions")


def _shown(field: str, value: Any) -> str:
    flag = FLAGS[field]
    return flag if isinstance(value, bool) else f"{flag}={value}"


def check_flags(settings: Settings, given: dict[str, Any]) -> list[str]:
    """Raise SettingsError for a flag of the other mode; return warnings for flags the output does not use.

    ``given`` holds the settings set by flags (field name to the value typed).
    """
    for field in BATCH_ONLY:
        if field in given and settings.mode == "continuous":
            hint = "; --duration bounds a continuous run" if field == "event_count" else ""
            raise SettingsError(
                f"{_shown(field, given[field])}: applies to batch mode only, and the mode is continuous"
                f" (drop it, or use --mode batch){hint}"
            )
    for field in CONTINUOUS_ONLY:
        if field in given and settings.mode == "batch":
            raise SettingsError(
                f"{_shown(field, given[field])}: applies to continuous mode only, and the mode is batch"
                " (drop it, or add --mode continuous; --count sets the length of a batch)"
            )
    warnings = []
    if not settings.writes_folder:
        for field in FILES_ONLY:
            if field in given:
                warnings.append(
                    f"{_shown(field, given[field])}: ignored, output {settings.output} writes no files"
                    " (--output file, parquet or both writes them)"
                )
    elif "impressions" in given and not settings.writes_lines:
        warnings.append(
            f"{_shown('impressions', given['impressions'])}: ignored, impressions.jsonl goes beside the JSONL files"
            f" and output {settings.output} writes none (add file: --output file,parquet)"
        )
    return warnings


def check_summary_json(settings: Settings) -> None:
    """``--summary-json`` prints on standard output, so it cannot share it with the events."""
    if settings.output == "stdout":
        raise SettingsError(
            "--summary-json: standard output carries the events with output stdout;"
            " use it with --output file, redis or both"
        )
