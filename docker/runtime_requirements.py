"""Print the runtime image's dependency set, one requirement a line, from pyproject.toml.

The runtime image (Dockerfile target ``runtime``) runs ``ladts serve`` beside kube-scheduler:
the core dependencies without the plotting library, plus the ``serve`` extra. torch is in
the ``train`` extra and never part of it. One function, used by the Dockerfile and by
``docker/check_runtime_env.py``, so the image and its check install the same set.

    python docker/runtime_requirements.py [pyproject.toml]
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

#: Core dependencies the runtime image leaves out: matplotlib is only imported when a plot
#: is written (ladts_policy/plots.py), which the extender never does; numba (with llvmlite,
#: about 200 MiB) only compiles the vectorised simulator (ladts_policy/sim/dynamics/cluster_vec.py),
#: which falls back to the reference simulator without it and which the extender never runs.
EXCLUDED = frozenset({"matplotlib", "numba"})
#: Optional-dependency groups installed on top of the core set.
EXTRAS = ("serve",)


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def runtime_requirements(pyproject: Path) -> list[str]:
    """Core dependencies minus ``EXCLUDED``, plus every ``EXTRAS`` group, in file order."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    missing = [e for e in EXTRAS if e not in extras]
    if missing:
        raise KeyError(f"{pyproject}: no optional-dependencies group {missing}")
    core = [r for r in project["dependencies"] if requirement_name(r) not in EXCLUDED]
    return core + [r for e in EXTRAS for r in extras[e]]


def main(argv: list[str]) -> int:
    """Print the requirements of the pyproject.toml given (default: the repository's)."""
    default = Path(__file__).resolve().parents[1] / "pyproject.toml"
    path = Path(argv[0]) if argv else default
    print("\n".join(runtime_requirements(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
