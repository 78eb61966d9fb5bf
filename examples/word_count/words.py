"""Word statistics for short texts."""

import re

WORD = re.compile(r"[a-z']+")


def tokenize(text: str) -> list[str]:
    """Lower-cased words of `text`."""
    return WORD.findall(text.lower())


def word_counts(text: str) -> dict[str, int]:
    """How often each word occurs in `text`."""
    counts: dict[str, int] = {}
    for word in tokenize(text):
        counts[word] += 1
    return counts


def most_common(text: str, n: int) -> list[tuple[str, int]]:
    """The `n` most frequent words, most frequent first, ties in alphabetical order."""
    return sorted(word_counts(text).items(), key=lambda kv: (-kv[1], kv[0]))[:n]
