"""Time llama.cpp scoring a copy of faulty code in one batch against in chunks.

Before a round samples anything, the refine loop scores the faulty code as if the model had
written it back (`Backend.forks_along`). It reads the code in chunks so that it can stop once a
copy is unlikely; this measures what the chunks cost when it cannot stop (a likely copy, read
to the end) and what stopping saves (a copy the model departs from early). The answer is each
HumanEval canonical solution with its prompt, the request a refine prompt stand-in; the prompt
is cached by a first call, so each timing is the answer alone. Median over --runs.

    python benchmarks/score_chunks.py --model qwen2.5-coder-1.5b --tasks 10 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence

from cyclefix.bench.humaneval import default_data_file, read_problems
from cyclefix.models.backend import Backend, ChatMessage, Fork, ForksCheck
from cyclefix.models.load import open_backend

PREFIX = "```python\n"


def seconds_to_score(
    backend: Backend,
    messages: list[ChatMessage],
    code: str,
    enough: ForksCheck | None,
) -> float:
    started = time.perf_counter()
    backend.forks_along(messages, PREFIX, code, enough=enough)
    return time.perf_counter() - started


def never(_: Sequence[Fork]) -> bool:
    return False


def past_first_line(code: str) -> ForksCheck:
    """As if the copy chance fell below one half within the signature line."""
    first_line_end = len(PREFIX) + code.index("\n", code.index("def "))
    return lambda so_far: bool(so_far) and so_far[-1].offset > first_line_end


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    backend = open_backend(args.model, n_threads=args.threads)
    timings: dict[str, list[float]] = {"one_batch": [], "chunks_to_the_end": [], "stopped": []}
    tokens = 0
    rows = read_problems(default_data_file())[: args.tasks]
    for row in rows:
        code = row["prompt"] + row["canonical_solution"]
        messages = [ChatMessage("user", f"Fix this function.\n\n```python\n{code}```")]
        forks = backend.forks_along(messages, PREFIX, code)  # also caches the prompt
        tokens += len(forks or ())  # one fork per token
        for _ in range(args.runs):
            for label, enough in (
                ("one_batch", None),
                ("chunks_to_the_end", never),
                ("stopped", past_first_line(code)),
            ):
                timings[label].append(seconds_to_score(backend, messages, code, enough))
    summary: dict[str, object] = {
        "model": args.model,
        "tasks": len(rows),
        "runs": args.runs,
        "mean_code_tokens": round(tokens / len(rows), 1),
    }
    for label, values in timings.items():
        summary[f"median_seconds_{label}"] = round(statistics.median(values), 3)
    print(json.dumps(summary, indent=2))
    backend.close()


if __name__ == "__main__":
    main()
