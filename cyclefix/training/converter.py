"""llama.cpp's own conversion scripts, taken from the llama-cpp-python source release we run.

The installed wheel has no Python scripts, but its sdist vendors llama.cpp with
convert_lora_to_gguf.py, convert_hf_to_gguf.py, the conversion/ package and gguf-py. They are
extracted once into the cyclefix cache (or found via $CYCLEFIX_LLAMA_CONVERT_DIR).
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import platformdirs

from cyclefix.errors import CyclefixError

CONVERT_DIR_ENV = "CYCLEFIX_LLAMA_CONVERT_DIR"
LORA_SCRIPT = "convert_lora_to_gguf.py"
HF_SCRIPT = "convert_hf_to_gguf.py"
_MEMBERS = (LORA_SCRIPT, HF_SCRIPT, "conversion/", "gguf-py/")


def llama_cpp_version() -> str:
    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        raise CyclefixError("llama-cpp-python is not installed") from None


def cached_dir(version: str) -> Path:
    return Path(platformdirs.user_cache_dir("cyclefix")) / "llama.cpp-convert" / version


def _complete(folder: Path) -> bool:
    return (
        (folder / LORA_SCRIPT).is_file()
        and (folder / HF_SCRIPT).is_file()
        and (folder / "gguf-py").is_dir()
    )


def extract_scripts(sdist: Path, target: Path) -> Path:
    """Copy the conversion scripts out of a llama-cpp-python sdist into `target`."""
    tmp = Path(
        tempfile.mkdtemp(
            prefix="cyclefix-convert-", dir=target.parent if target.parent.exists() else None
        )
    )
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            parts = member.name.split("/", 3)
            if len(parts) < 4 or parts[1:3] != ["vendor", "llama.cpp"]:
                continue
            inner = parts[3]
            if not any(inner == m or (m.endswith("/") and inner.startswith(m)) for m in _MEMBERS):
                continue
            if not (member.isfile() or member.isdir()):
                continue
            member.name = inner
            archive.extract(member, tmp, filter="data")
    if not _complete(tmp):
        raise CyclefixError(f"{sdist.name} does not hold llama.cpp's conversion scripts")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)
    return target


def fetch_scripts(version: str, target: Path) -> Path:
    """Download the matching llama-cpp-python sdist with pip and extract the scripts."""
    with tempfile.TemporaryDirectory(prefix="cyclefix-sdist-") as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--quiet",
            "-d",
            tmp,
            f"llama-cpp-python=={version}",
        ]
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        found = sorted(Path(tmp).glob("*.tar.gz"))
        if proc.returncode != 0 or not found:
            detail = (proc.stderr.strip().splitlines() or ["no sdist"])[-1]
            raise CyclefixError(
                "cannot get llama.cpp's conversion scripts "
                f"(pip download llama-cpp-python=={version}): "
                f"{detail}; or set {CONVERT_DIR_ENV} to a llama.cpp checkout"
            )
        return extract_scripts(found[0], target)


def converter_dir(fetch: bool = True) -> Path:
    """The folder holding llama.cpp's conversion scripts, fetching them on first use."""
    override = os.environ.get(CONVERT_DIR_ENV)
    if override:
        folder = Path(override).expanduser()
        if not _complete(folder):
            raise CyclefixError(
                f"{CONVERT_DIR_ENV}={folder} does not hold {LORA_SCRIPT}, {HF_SCRIPT} and gguf-py/"
            )
        return folder
    version = llama_cpp_version()
    folder = cached_dir(version)
    if _complete(folder):
        return folder
    if not fetch:
        raise CyclefixError(f"llama.cpp's conversion scripts are not in {folder}")
    return fetch_scripts(version, folder)


def run_script(script: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run one conversion script with this Python; a one-line error with its last message."""
    folder = converter_dir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(folder), str(folder / "gguf-py"), env.get("PYTHONPATH", "")]
    )
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [sys.executable, str(folder / script), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).strip().splitlines() if ln.strip()]
        raise CyclefixError(
            f"{script} failed: {lines[-1] if lines else f'exit code {proc.returncode}'}"
        )
    return proc


if __name__ == "__main__":
    # `python -m cyclefix.training.converter`: fetch the scripts ahead of time (make setup).
    print(converter_dir())
