"""Check the runtime image's Python environment without a Docker engine.

Creates a clean venv, installs what the Dockerfile's runtime stage installs (the set from
docker/runtime_requirements.py, then ladts with --no-deps), and checks in it:
torch, matplotlib and numba are absent, ``pip check`` finds nothing but the deliberately excluded
core requirements, ``import ladts_operator`` works,
``ladts --help`` runs, ``ladts serve --help`` runs once the serve command exists, and the
bundled policy (``ladts_policy/bundled/lad-ts.onnx``, package data) is installed and loads.
Prints the installed size per distribution. Exits non-zero when any check fails.

    python docker/check_runtime_env.py [--venv DIR]   (needs the package index; pip's cache helps)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_requirements import EXCLUDED, runtime_requirements

REPO = Path(__file__).resolve().parents[1]
#: Modules that must not be importable in the runtime environment.
ABSENT = ("torch", "matplotlib", "numba")

BUNDLED = r"""
from ladts_policy.bundled import bundled_policy_path
from ladts_policy.onnx_eval import check_policy_file
path = bundled_policy_path()
info = check_policy_file(path)
print(f"{path.name} {path.stat().st_size / 2**20:.2f} MiB, version {info.policy_version}, "
      f"trained on {info.training_scenario}: loads with onnxruntime")
"""

SIZES = r"""
import json, importlib.metadata as md, pathlib
out = {}
for dist in md.distributions():
    total = 0
    for f in dist.files or []:
        p = pathlib.Path(dist.locate_file(f))
        if p.is_file():
            total += p.stat().st_size
    out[dist.metadata["Name"]] = total
print(json.dumps(out))
"""


def run(argv: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command outside the repository with a clean environment (no PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        command = " ".join(argv)
        raise RuntimeError(f"{command} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def directory_size(path: Path) -> int:
    """Bytes of all regular files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def check(venv_dir: Path) -> list[str]:
    """Build the environment in ``venv_dir`` and return the failed checks."""
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    py, bin_dir = venv_dir / "bin" / "python", venv_dir / "bin"
    requirements = runtime_requirements(REPO / "pyproject.toml")
    print("runtime requirements:", ", ".join(requirements))
    pip = [str(py), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    run([*pip, *requirements], venv_dir)
    run([*pip, "--no-deps", str(REPO)], venv_dir)
    failures: list[str] = []
    for module in ABSENT:
        probe = f"import importlib.util as u, sys; sys.exit(u.find_spec({module!r}) is not None)"
        if run([str(py), "-c", probe], venv_dir, check=False).returncode != 0:
            failures.append(f"{module} is installed in the runtime environment")
    # The one inconsistency allowed is the deliberate one: ladts' own excluded requirements.
    pip_check = run([str(py), "-m", "pip", "check"], venv_dir, check=False)
    allowed = {f"requires {name}, which is not installed." for name in EXCLUDED}
    problems = [
        line for line in pip_check.stdout.splitlines()
        if line.strip() and not (line.startswith("ladts ") and line.split(" ", 2)[2] in allowed)
    ]  # fmt: skip
    if problems:
        failures.append("pip check: " + "; ".join(problems))
    imports = "import ladts_operator, ladts_policy.features, ladts_policy.contract"
    result = run([str(py), "-c", imports], venv_dir, check=False)
    if result.returncode != 0:
        failures.append(f"{imports}: {result.stderr.strip()[-500:]}")
    top = run([str(bin_dir / "ladts"), "--help"], venv_dir, check=False)
    if top.returncode != 0:
        failures.append(f"ladts --help: {top.stderr.strip()[-500:]}")
    else:
        serve = run([str(bin_dir / "ladts"), "serve", "--help"], venv_dir, check=False)
        if serve.returncode != 0 and "invalid choice: 'serve'" in serve.stderr:
            print("ladts serve: not a command in this tree yet; checked `import ladts_operator`")
        elif serve.returncode != 0 or "--prometheus-url" not in serve.stdout:
            failures.append(f"ladts serve --help: {serve.stderr.strip()[-500:]}")
        else:
            print("ladts serve --help: ok (torch, matplotlib and numba absent)")
    # The bundled default policy is package data of the installed ladts and loads with
    # onnxruntime alone (the chart serves it by default).
    bundled = run([str(py), "-c", BUNDLED], venv_dir, check=False)
    if bundled.returncode != 0:
        failures.append(f"bundled policy: {bundled.stderr.strip()[-800:]}")
    else:
        print(f"bundled policy: {bundled.stdout.strip()}")
    sizes: dict[str, int] = json.loads(run([str(py), "-c", SIZES], venv_dir).stdout)
    site = next((venv_dir / "lib").glob("python3*/site-packages"))
    print(f"\ninstalled size: site-packages {directory_size(site) / 2**20:.1f} MiB, "
          f"whole venv {directory_size(venv_dir) / 2**20:.1f} MiB")
    print(f"{'distribution':<28} {'MiB':>7}")
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:15]:
        print(f"{name:<28} {size / 2**20:7.1f}")
    return failures


def main() -> int:
    """Run the checks in a temporary (or the given) venv folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="venv folder to (re)create; default a temp one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ladts-runtime-") as tmp:
        try:
            failures = check(args.venv or Path(tmp) / "venv")
        except RuntimeError as err:
            print(f"FAILED: {err}", file=sys.stderr)
            return 1
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    print("runtime environment: " + ("FAILED" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
