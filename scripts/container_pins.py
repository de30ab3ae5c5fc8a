"""Print pins of Broadsheet's runtime dependencies as installed here (no dev tools, no torch).

The image installs with them as constraints (container-constraints.txt), so it gets the
versions the tests ran on and pip does not backtrack through releases that conflict:

    .venv/bin/python scripts/container_pins.py > container-constraints.txt
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

# installed on its own first, pinned in the Containerfile (the CPU build)
SEPARATE = {"torch"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_pins() -> dict[str, str]:
    """Each package that ``broadsheet`` needs to run, with its installed version."""
    pins: dict[str, tuple[str, set[str]]] = {}
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    wanted = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    stack = [Requirement(line) for line in wanted]
    while stack:
        req = stack.pop()
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            continue
        name = canonical(req.name)
        known = pins.get(name)
        if known is not None and set(req.extras) <= known[1]:
            continue
        extras = (known[1] if known else set()) | set(req.extras)
        pins[name] = (dist.version, extras)
        for line in dist.requires or []:
            sub = Requirement(line)
            if not sub.marker or any(sub.marker.evaluate({"extra": e}) for e in ["", *extras]):
                stack.append(sub)
    return {name: version for name, (version, _) in sorted(pins.items()) if name not in SEPARATE}


if __name__ == "__main__":
    print("# Broadsheet's runtime dependencies as tested: constraints for the image's pip install.")
    print("# Made by: .venv/bin/python scripts/container_pins.py > container-constraints.txt")
    for name, version in runtime_pins().items():
        print(f"{name}=={version}")
