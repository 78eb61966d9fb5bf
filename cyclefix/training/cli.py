"""`cyclefix data lintseq|collect`, `train`, `export`: build data, fine-tune, export.

Only argparse here; torch, transformers and pylint load inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from cyclefix.errors import CyclefixError

if TYPE_CHECKING:
    from cyclefix.training.samples import TrainingRecord


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    data = subparsers.add_parser(
        "data", help="build training data (LintSeq edit sequences, CYCLE samples)"
    )
    data_commands = data.add_subparsers(dest="data_command", metavar="KIND", required=True)

    lintseq = data_commands.add_parser(
        "lintseq",
        help="programs -> sequences of lint-clean insertion edits (LintSeq)",
        description="Backward-sample each program with pylint (E, F, W0311, W0231 count as "
        "errors), write "
        "forward zero-context diffs joined by <|diff|>, and keep only sequences that rebuild "
        "their program "
        "with every intermediate state lint-clean.",
    )
    lintseq.add_argument(
        "input", type=Path, help="MBPP-style .jsonl (text + code), a .py file or a folder"
    )
    lintseq.add_argument("-o", "--output", type=Path, required=True, help="output .jsonl")
    lintseq.add_argument(
        "--per-program", type=int, default=5, help="sequences per program (default 5)"
    )
    lintseq.add_argument("--seed", type=int, default=0)
    lintseq.add_argument("--workers", type=int, default=1, help="pylint worker processes")
    lintseq.add_argument(
        "--split",
        default="train,validation",
        help="MBPP splits to use (default train,validation; 'all' for every row)",
    )
    lintseq.add_argument("--limit", type=int, default=None, help="use only the first N programs")
    lintseq.add_argument("--max-lines", type=int, default=300, help="skip longer programs")
    lintseq.set_defaults(func=_lintseq)

    collect = data_commands.add_parser(
        "collect",
        help="sample a model on MBPP problems and keep plain and refine samples (CYCLE phase II)",
    )
    _problem_arguments(collect, default="mbpp-train")
    collect.add_argument("--model", required=True, help="model spec, as for `cyclefix fix --model`")
    collect.add_argument("--samples", type=int, default=1, help="samples per problem (default 1)")
    collect.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="sampling temperature (default 0.2 for one sample, 0.8 for several)",
    )
    collect.add_argument("--max-tokens", type=int, default=512)
    collect.add_argument("--seed", type=int, default=0)
    collect.add_argument(
        "--no-reference-plain",
        action="store_true",
        help="do not add each problem's reference solution as a plain sample",
    )
    collect.set_defaults(func=_collect)

    seeded = data_commands.add_parser(
        "seeded",
        help="refine samples from seeded bugs: reference solutions with one mutation (no model)",
        description="Mutate each problem's reference solution at one spot (bench's mutator), "
        "keep the mutants its asserts catch, and write the product's refine prompt for each "
        "with the reference as the target.",
    )
    _problem_arguments(seeded, default="mbpp-train+validation")
    seeded.add_argument(
        "--per-problem", type=int, default=2, help="refine samples per problem (default 2)"
    )
    seeded.add_argument(
        "--tries", type=int, default=6, help="mutants tried per problem at most (default 6)"
    )
    seeded.add_argument("--seed", type=int, default=0)
    seeded.add_argument("--workers", type=int, default=1, help="problems tested at once")
    seeded.set_defaults(func=_seeded)

    plain = data_commands.add_parser(
        "plain", help="reference solutions as plain samples (CYCLE phase I data; no model needed)"
    )
    _problem_arguments(plain, default="mbpp-train+validation")
    plain.set_defaults(func=_plain)

    train = subparsers.add_parser(
        "train", help="LoRA fine-tuning with the Past Generation Mask (CYCLE)"
    )
    train.add_argument(
        "--base", required=True, help="registry name, .gguf file or Hugging Face folder"
    )
    train.add_argument("--data", type=Path, nargs="+", required=True, help="sample files (.jsonl)")
    train.add_argument(
        "--mix", type=float, default=0.4, help="fraction of refine samples (default 0.4)"
    )
    train.add_argument(
        "--pgm",
        type=float,
        default=0.3,
        help="fraction of faulty-code + feedback tokens hidden from attention (default 0.3)",
    )
    train.add_argument("--lora-r", type=int, default=8)
    train.add_argument("--lora-alpha", type=int, default=16)
    train.add_argument("--steps", type=int, default=100)
    train.add_argument("--lr", type=float, default=2e-4)
    train.add_argument("--batch", type=int, default=1)
    train.add_argument("--max-length", type=int, default=1024, help="skip longer samples (tokens)")
    train.add_argument("--save-every", type=int, default=50, help="checkpoint every N steps")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--format",
        choices=("chat", "marker"),
        default=None,
        help="prompt layout (default: chat when the tokenizer has a template)",
    )
    train.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    train.add_argument("--out", type=Path, default=Path("cyclefix-train"), help="output folder")
    train.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in --out"
    )
    train.set_defaults(func=_train)

    export = subparsers.add_parser(
        "export", help="a trained adapter as a GGUF LoRA adapter or merged model"
    )
    export.add_argument(
        "folder", type=Path, help="a `cyclefix train --out` folder or one of its checkpoints"
    )
    export.add_argument("--out", type=Path, required=True, help="NAME.gguf to write")
    export.add_argument(
        "--name", default=None, help="adapter name for --model (default: the file's stem)"
    )
    export.add_argument("--merge", action="store_true", help="merge into the base and quantize")
    export.add_argument(
        "--quant", default="Q4_K_M", help="quantization with --merge (default Q4_K_M)"
    )
    export.add_argument(
        "--outtype",
        default="f16",
        choices=("f32", "f16", "bf16", "q8_0"),
        help="adapter tensor type (default f16)",
    )
    export.set_defaults(func=_export)


def _problem_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    """--problems, -o and --limit, shared by the data commands that read MBPP-style problems."""
    parser.add_argument(
        "--problems",
        default=default,
        help="mbpp-train, mbpp-validation, mbpp-train+validation or PATH.jsonl[:splits]",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="output .jsonl")
    parser.add_argument("--limit", type=int, default=None, help="first N problems only")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _record_writer(handle: TextIO) -> Callable[[list[TrainingRecord]], None]:
    """Writes records as they come: a long run interrupted keeps what it made."""

    def write(records: list[TrainingRecord]) -> None:
        for record in records:
            handle.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
        handle.flush()

    return write


def _without_pytest_plugins() -> None:
    # MBPP tests need no plugin, and loading every installed one costs seconds per run.
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"


def _lintseq(args: argparse.Namespace) -> int:
    from cyclefix.training.lintseq import build_lintseq, load_sources
    from cyclefix.training.mbpp import write_jsonl

    if args.per_program < 1:
        raise CyclefixError("--per-program must be at least 1")
    sources, too_long = load_sources(args.input, tuple(args.split.split(",")), args.max_lines)
    if args.limit is not None:
        sources = sources[: args.limit]
    report = build_lintseq(
        sources,
        per_program=args.per_program,
        seed=args.seed,
        workers=args.workers,
        on_progress=_say,
    )
    write_jsonl(args.output, (s.to_json() for s in report.samples))
    dropped = [*too_long, *report.dropped]
    for item in dropped:
        _say(f"dropped {item.name}: {item.reason}")
    # How many programs yielded k distinct sequences, most first: "5 (300 programs), 4 (2)".
    yields = Counter(report.distinct_sequences.values())
    per_program = ", ".join(
        f"{k} ({yields[k]} program{'s' if yields[k] != 1 else ''})"
        for k in sorted(yields, reverse=True)
    )
    print(
        f"{len(report.samples)} edit sequences from {len(sources)} programs "
        f"written to {args.output}; "
        f"distinct sequences per program: {per_program or 'none'}; "
        f"{report.duplicates} duplicate sequences removed; "
        f"{len(dropped)} dropped; pylint ran on {report.files_linted} files"
    )
    return 0


def _collect(args: argparse.Namespace) -> int:
    from cyclefix.refine import open_backend
    from cyclefix.training.collect import collect
    from cyclefix.training.mbpp import load_problems, resolve_problem_source

    path, splits = resolve_problem_source(args.problems)
    problems = load_problems(path, splits)
    if args.limit is not None:
        problems = problems[: args.limit]
    if not problems:
        raise CyclefixError(f"no problems in {args.problems}")
    backend = open_backend(args.model)
    _without_pytest_plugins()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as handle:
        write = _record_writer(handle)
        try:
            _, stats = collect(
                problems,
                backend,
                samples=args.samples,
                temperature=args.temperature,
                seed=args.seed,
                max_tokens=args.max_tokens,
                reference_plain=not args.no_reference_plain,
                on_progress=_say,
                on_records=write,
            )
        finally:
            backend.close()
    summary = {
        "problems": stats.problems,
        "samples": stats.samples,
        "passing": stats.passing,
        "failing": stats.failing,
        "unusable": stats.unusable,
        "pass_rate": round(stats.pass_rate, 4),
        "plain_records": stats.plain_records,
        "refine_records": stats.refine_records,
        "generation_seconds": round(stats.generation_seconds, 1),
    }
    args.output.with_suffix(".stats.json").write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )
    print(
        f"{stats.plain_records} plain and {stats.refine_records} refine samples "
        f"from {stats.problems} problems "
        f"({stats.passing}/{stats.samples} samples passed) written to {args.output}"
    )
    return 0


def _seeded(args: argparse.Namespace) -> int:
    from cyclefix.training.mbpp import load_problems, resolve_problem_source
    from cyclefix.training.seeded import seeded_records

    path, splits = resolve_problem_source(args.problems)
    problems = load_problems(path, splits)[: args.limit]
    if not problems:
        raise CyclefixError(f"no problems in {args.problems}")
    _without_pytest_plugins()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as handle:
        write = _record_writer(handle)
        _, stats = seeded_records(
            problems,
            per_problem=args.per_problem,
            tries=args.tries,
            seed=args.seed,
            workers=args.workers,
            on_progress=_say,
            on_records=write,
        )
    print(
        f"{stats.records} refine samples from {stats.problems} problems written to "
        f"{args.output}; {stats.caught} of {stats.mutants_tried} mutants tried failed a test"
    )
    return 0


def _plain(args: argparse.Namespace) -> int:
    from cyclefix.training.collect import reference_records
    from cyclefix.training.mbpp import load_problems, resolve_problem_source, write_jsonl

    path, splits = resolve_problem_source(args.problems)
    problems = load_problems(path, splits)[: args.limit]
    if not problems:
        raise CyclefixError(f"no problems in {args.problems}")
    count = write_jsonl(args.output, (r.to_json() for r in reference_records(problems)))
    print(f"{count} plain samples written to {args.output}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from cyclefix.training.train import TrainConfig, train

    for path in args.data:
        if not path.is_file():
            raise CyclefixError(f"no such data file: {path}")
    if args.steps < 1 or args.batch < 1:
        raise CyclefixError("--steps and --batch must be at least 1")
    if not 0.0 <= args.pgm < 1.0:
        raise CyclefixError("--pgm must lie in [0, 1)")
    config = TrainConfig(
        base=args.base,
        data=tuple(args.data),
        out=args.out,
        mix=args.mix,
        pgm=args.pgm,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        steps=args.steps,
        lr=args.lr,
        batch=args.batch,
        max_length=args.max_length,
        save_every=args.save_every,
        seed=args.seed,
        resume=args.resume,
        prompt_format=args.format,
        device=args.device,
    )
    summary = train(config, on_progress=_say)
    first = sum(summary.losses[:5]) / max(1, len(summary.losses[:5]))
    last = sum(summary.losses[-5:]) / max(1, len(summary.losses[-5:]))
    print(
        f"trained {summary.steps} steps on {summary.device} in {summary.seconds / 60:.1f} min; "
        f"loss {first:.3f} -> {last:.3f}; "
        f"PGM hid {summary.masked_fraction:.1%} of the past-generation "
        f"tokens; adapter in {summary.adapter}"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from cyclefix.training.export import export_lora, export_merged

    if args.out.suffix != ".gguf":
        raise CyclefixError("--out must name a .gguf file")
    if args.merge:
        result = export_merged(args.folder, args.out, args.quant, on_progress=_say)
        print(
            f"merged model written to {result.path} ({result.size / 2**20:.0f} MiB); "
            f"use it with --model {result.path}"
        )
    else:
        result = export_lora(args.folder, args.out, args.outtype, args.name)
        print(
            f"LoRA adapter written to {result.path} ({result.size / 2**20:.1f} MiB) "
            f"for base {result.base}; "
            f"recorded as {result.name!r}: use --model {result.name} "
            f"or --model {result.base}+{result.path}"
        )
    return 0
