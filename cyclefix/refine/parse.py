"""Pull the code out of a model's answer."""

from __future__ import annotations

import ast
import re

# A fenced block; the closing fence may be missing when generation stopped on it.
_FENCE = re.compile(r"```[ \t]*(?P<lang>[\w+-]*)[ \t]*\r?\n(?P<body>.*?)(?:\r?\n```|\Z)", re.DOTALL)


def extract_code(answer: str) -> str | None:
    """The answer's Python code: the largest fenced Python block, else the answer if it parses."""
    blocks = [
        m.group("body")
        for m in _FENCE.finditer(answer)
        if m.group("lang").lower() in ("", "python", "py", "python3")
    ]
    blocks = [b for b in blocks if b.strip()]
    if blocks:
        # Prefer blocks that define something; a model sometimes adds a usage example block.
        defining = [b for b in blocks if re.search(r"^\s*(async\s+def|def|class)\s", b, re.M)]
        return max(defining or blocks, key=len).rstrip() + "\n"
    text = answer.strip()
    if not text:
        return None
    try:
        ast.parse(text)
    except SyntaxError:
        return None
    return text + "\n" if re.search(r"^\s*(async\s+def|def|class)\s", text, re.M) else None
