"""What a wheel needs to run, taken from this environment: its declared requirements and theirs, as a folder of links.

The install test's fresh venv sees only this folder (through a .pth file), not the whole test environment, so a
dependency the wheel forgets to declare is missing there as it would be after `pip install .`, without a download.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from email.parser import Parser
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path, PurePosixPath

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def wheel_requirements(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA, markers included."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(archive.read(metadata).decode("utf-8"))
    return message.get_all("Requires-Dist") or []


def closure(requirements: Iterable[str], extras: Iterable[str] = ()) -> dict[str, Distribution]:
    """The installed distributions these requirements need, transitively, by normalized name.

    A requirement counts when its environment marker holds for this interpreter and for one of ``extras`` (none: the
    base requirements only); a distribution's own requirements are followed for the extras its requirer names
    (``polars[pyarrow]``). Fails when one is not installed or its installed version is outside the specifier.
    """
    found: dict[str, Distribution] = {}
    followed: set[tuple[str, str]] = set()
    pending = [(Requirement(line), frozenset(extras)) for line in requirements]
    while pending:
        requirement, asked = pending.pop()
        marker = requirement.marker
        if marker is not None and not any(marker.evaluate({"extra": extra}) for extra in asked or {""}):
            continue
        name = canonicalize_name(requirement.name)
        try:
            installed = distribution(requirement.name)
        except PackageNotFoundError:
            raise AssertionError(f"{requirement} is needed but not installed in the test environment") from None
        assert requirement.specifier.contains(installed.version, prereleases=True), (
            f"{requirement} is needed but {installed.version} is installed"
        )
        found[name] = installed
        for extra in {"", *requirement.extras}:
            if (name, extra) not in followed:
                followed.add((name, extra))
                own = frozenset({extra}) if extra else frozenset()
                pending.extend((Requirement(line), own) for line in installed.requires or [])
    return found


def link(distributions: Iterable[Distribution], directory: Path) -> None:
    """Link each distribution's top-level entries into ``directory``: packages, modules, *.libs, its dist-info.

    The entries come from the distribution's RECORD; scripts (outside site-packages) and the shared __pycache__
    are left out. Two distributions sharing a namespace folder share one folder of site-packages: it is linked once.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for installed in distributions:
        files = installed.files
        assert files, f"{installed.metadata['Name']} has no RECORD: which files are its own is unknown"
        tops = {PurePosixPath(file).parts[0] for file in files if not PurePosixPath(file).is_absolute()}
        for top in tops - {"..", "__pycache__"}:
            source = Path(str(installed.locate_file(top)))
            target = directory / top
            if source.exists() and not target.exists():
                target.symlink_to(source)
