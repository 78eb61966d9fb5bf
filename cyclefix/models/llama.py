"""The in-process llama.cpp backend: one loaded GGUF, streamed generation, KV-cache reuse.

KV reuse: llama-cpp-python's `Llama.generate` keeps the evaluated tokens of the last call and
only evaluates the part of a new prompt after the longest common token prefix, so refinement
rounds that share their opening messages skip most of the prompt work. The prompt's fixed
opening (system message, next turn's header) is also kept as a saved state (models.kv_state),
so a prompt after an unrelated one, or the first one of a fresh process, skips it too.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cyclefix.models.backend import (
    SAMPLER_MIN_P,
    SAMPLER_TOP_K,
    ChatMessage,
    Choice,
    FinishReason,
    Fork,
    ForksCheck,
    GenerationOptions,
    GenerationResult,
    TextCallback,
    TextCheck,
)
from cyclefix.models.errors import ModelError
from cyclefix.models.gguf_check import read_gguf_info
from cyclefix.models.hardware import check_safe_build, choose_device, read_cpuinfo, repack_weights
from cyclefix.models.kv_state import (
    PrefixStates,
    RecentReads,
    SavedState,
    common_prefix,
    restore,
    snapshot,
    state_key,
)
from cyclefix.models.llama_logits import (
    FORK_TOP_K,
    best_candidates,
    best_row,
    evaluate,
    forks_of,
    logits_row,
    other_choices,
    text_offsets,
)
from cyclefix.models.llama_runtime import _LOG, import_llama_cpp, model_params_amended

# Re-exported: callers and tests use them from here.
from cyclefix.models.llama_runtime import LLAMA_CPP_INSTALL_HINT as LLAMA_CPP_INSTALL_HINT
from cyclefix.models.llama_runtime import count_physical_cores as count_physical_cores
from cyclefix.models.llama_runtime import default_thread_count as default_thread_count
from cyclefix.models.replay import (
    AnswerText,
    ScoredAnswer,
    ScoredRow,
    replay,
    replay_start,
    whole_text,
)

if TYPE_CHECKING:
    import llama_cpp

DEFAULT_N_CTX = 8192
DEFAULT_N_BATCH = 512
# A shared prompt opening shorter than this is not worth a saved state.
MIN_SAVED_PREFIX = 8
# A recent read restored must share this many more tokens than the cache holds (a restore
# copies the whole state: tens of milliseconds for a long prompt).
MIN_RESTORE_GAIN = 32
# Tokens of an answer scored between two asks whether the forks so far are enough.
SCORE_CHUNK = 64
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class LlamaCppBackend:
    """A GGUF model loaded once into this process; one generation at a time."""

    def __init__(
        self,
        model_path: Path,
        *,
        name: str | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        n_batch: int = DEFAULT_N_BATCH,
        context_length: int | None = None,
        lora_path: Path | None = None,
        lora_scale: float = 1.0,
        state_dir: Path | None = None,
        prompt_lookup: int = 0,
        weight_repack: bool | None = None,
    ) -> None:
        """state_dir: where the KV states of prompt openings are saved for later processes;
        None keeps them in memory only. prompt_lookup: draft up to this many tokens per step
        from the prompt (speculative decoding; 0: off, see PROMPT_LOOKUP_NOTE). weight_repack:
        llama.cpp's repacking of the weights for its CPU kernels (None: as
        models.hardware.repack_weights chooses for this machine)."""
        info = read_gguf_info(model_path)
        llama_cpp_module = import_llama_cpp()
        from llama_cpp import llama_chat_format

        _LOG.install(llama_cpp_module)
        trained_context = context_length or info.context_length() or DEFAULT_N_CTX
        self.n_ctx = min(n_ctx or DEFAULT_N_CTX, trained_context)
        self.n_threads = n_threads or default_thread_count()
        check_safe_build(llama_cpp_module)
        # Where the layers run; named in the output of `fix` and `tui`.
        self.device = choose_device(llama_cpp_module, n_gpu_layers, self.n_threads)
        if weight_repack is None:
            weight_repack = repack_weights(self.device, read_cpuinfo())
        self.weight_repack = weight_repack
        self.model_path = model_path
        self._name = name or model_path.stem
        self._lock = threading.Lock()
        draft = None
        self._prompt_lookup = prompt_lookup
        if prompt_lookup > 0:
            from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

            draft = LlamaPromptLookupDecoding(num_pred_tokens=prompt_lookup)
        try:
            with model_params_amended(llama_cpp_module, use_extra_bufts=weight_repack):
                self._llama: llama_cpp.Llama | None = llama_cpp_module.Llama(
                    model_path=str(model_path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    n_gpu_layers=self.device.gpu_layers,
                    n_batch=n_batch,
                    verbose=False,
                    lora_path=str(lora_path) if lora_path else None,
                    lora_scale=lora_scale,
                    draft_model=draft,
                    # Its logits rows must span the context: it keeps one per token evaluated.
                    logits_all=draft is not None,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"llama.cpp could not load {model_path}: {_LOG.last_error()}") from exc
        llama = self._llama
        self._states = PrefixStates(state_key(llama, model_path, lora_path, lora_scale), state_dir)
        self._recent = RecentReads()
        # The copy the last scoring read, while the cache still holds it (models.replay).
        self._scored: ScoredAnswer | None = None
        eos_id = llama.token_eos()
        bos_id = llama.token_bos()
        self._eos_text = self._token_text(eos_id)
        template = info.metadata.get("tokenizer.chat_template")
        # The same formatter llama-cpp-python builds for create_chat_completion; rendering the
        # prompt here gives the exact prompt tokens and lets one stopping criterion count tokens.
        self._formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template if isinstance(template, str) else CHATML_TEMPLATE,
            eos_token=self._eos_text,
            bos_token=self._token_text(bos_id),
            stop_token_ids=[eos_id],
        )

    def _token_text(self, token: int) -> str:
        if token < 0 or self._llama is None:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", errors="replace")

    @property
    def name(self) -> str:
        return self._name

    @property
    def state_notes(self) -> list[str]:
        """One line per saved KV state that was ignored (unreadable, refused) or not saved."""
        return self._states.notes

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the rendered prompt of `messages` takes."""
        with self._lock:
            return len(self._prompt_tokens(messages))

    def _prompt_tokens(self, messages: Sequence[ChatMessage], answer_prefix: str = "") -> list[int]:
        llama = self._require_loaded()
        import jinja2

        chat: Any = [{"role": message.role, "content": message.content} for message in messages]
        try:
            rendered = self._formatter(messages=chat)
        except (jinja2.TemplateError, ValueError, TypeError) as exc:
            raise ModelError(f"the chat template of {self._name} failed: {exc}") from exc
        tokens: list[int] = llama.tokenize(
            (rendered.prompt + answer_prefix).encode("utf-8"),
            add_bos=not rendered.added_special,
            special=True,
        )
        return tokens

    def _require_loaded(self) -> llama_cpp.Llama:
        if self._llama is None:
            raise ModelError(f"model {self._name} was closed")
        return self._llama

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:
        with self._lock:
            return self._generate(messages, options, on_text, cancel, until)

    def _generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        on_text: TextCallback | None,
        cancel: threading.Event | None,
        until: TextCheck | None,
    ) -> GenerationResult:
        from llama_cpp import StoppingCriteriaList

        started = time.perf_counter()
        llama = self._require_loaded()
        prompt_tokens = self._prompt_tokens(messages, options.answer_prefix)
        if len(prompt_tokens) >= self.n_ctx:
            raise ModelError(
                f"the prompt has {len(prompt_tokens)} tokens, more than the model's context "
                f"window of {self.n_ctx}"
            )
        cached = self._reuse_prefix(llama, messages, prompt_tokens)
        replayed = self._replayed(prompt_tokens, options)
        drawn = [token for token, _ in replayed]
        if self._prompt_lookup:
            # Read here without logits: with a draft model llama-cpp-python keeps the logits
            # of every token it evaluates, which would slow the prompt by a sixth or more.
            live = common_prefix(llama.input_ids[: llama.n_tokens], prompt_tokens)
            self._extend_cache(llama, prompt_tokens[:-1], min(live, len(prompt_tokens) - 1))
        # Per sampled token: the best candidates' ids and logits, for forks.
        candidates: dict[int, tuple[Any, Any]] = {}
        if options.record_forks:
            for step, (_, row) in enumerate(replayed):
                candidates[step] = (row.ids[:FORK_TOP_K], row.logits[:FORK_TOP_K])
        # The steps drawn from the scored copy come first; the model samples after them.
        completion_prompt = [*prompt_tokens, *drawn]
        sampled = calls = 0
        first_token_at = time.perf_counter() if drawn else None

        def count_and_check_cancel(input_ids: Any, logits: Any) -> bool:
            # Called once per sampled token with the ids before it, and once more when the
            # stream ends: with the same ids, or with drafted tokens not yet checked too.
            nonlocal sampled, calls, first_token_at
            calls += 1
            sampled = max(sampled, min(len(input_ids) - len(completion_prompt) + 1, sampled + 1))
            if first_token_at is None:
                first_token_at = time.perf_counter()
            step = len(drawn) + sampled - 1
            if options.record_forks and step not in candidates:
                candidates[step] = best_candidates(llama)
            return cancel is not None and cancel.is_set()

        answer = AnswerText(options, on_text, until)
        answer.add(options.answer_prefix, check=False)
        if drawn:
            answer.add(llama.detokenize(drawn).decode("utf-8", errors="replace"))
        finish_reason: FinishReason = "length"
        evaluated = False  # whether the model sampled after the drawn steps
        if answer.ended or drawn[-1:] == [llama.token_eos()]:
            finish_reason = "stop"
        elif len(drawn) < options.max_tokens:
            evaluated = True
            # With stream=True this is an iterator of chunks; the declared type is a Union.
            stream: Iterator[Any] = llama.create_completion(  # type: ignore[assignment]
                completion_prompt,
                max_tokens=options.max_tokens - len(drawn),
                temperature=options.temperature,
                top_p=options.top_p,
                top_k=SAMPLER_TOP_K,
                min_p=SAMPLER_MIN_P,
                seed=options.seed,
                stop=[*options.stop, self._eos_text] if self._eos_text else list(options.stop),
                stream=True,
                stopping_criteria=StoppingCriteriaList([count_and_check_cancel]),
            )
            try:
                for chunk in stream:
                    choice = chunk["choices"][0]
                    answer.add(choice["text"])
                    if answer.ended:
                        finish_reason = "stop"
                        break
                    if choice["finish_reason"] == "stop":
                        finish_reason = "stop"
                    elif choice["finish_reason"] == "length":
                        finish_reason = "length"
                    if cancel is not None and cancel.is_set():
                        break
                else:
                    calls -= 1  # the stream ran to its end: its last call sampled nothing
            except (RuntimeError, ValueError) as exc:
                raise ModelError(f"llama.cpp failed while generating: {exc}") from exc
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        if cancel is not None and cancel.is_set():
            finish_reason = "cancelled"
        finished = time.perf_counter()
        text = answer.text
        forks: tuple[Fork, ...] = ()
        if candidates:
            # Ended within the drawn steps, the cache still holds the scored copy past them.
            generated = (
                [int(t) for t in llama.input_ids[len(prompt_tokens) : llama.n_tokens]]
                if evaluated
                else drawn
            )
            forks = forks_of(llama, generated, candidates, len(options.answer_prefix), len(text))
        return GenerationResult(
            text=text,
            prompt_tokens=len(prompt_tokens),
            # Every sampled token, the end-of-turn token included.
            completion_tokens=len(drawn) + max(calls, 0),
            seconds=finished - started,
            prompt_seconds=(first_token_at or finished) - started,
            finish_reason=finish_reason,
            forks=forks,
            prompt_tokens_cached=max(cached, 0),
            completion_tokens_replayed=len(drawn),
        )

    def _replayed(
        self, prompt: Sequence[int], options: GenerationOptions
    ) -> list[tuple[int, ScoredRow]]:
        """The answer's first steps drawn from the copy scored last, with the rows they were
        drawn from, where this prompt continues it and the cache still holds it
        (models.replay); empty otherwise, or with prompt-lookup drafts on."""
        scored, self._scored = self._scored, None
        llama = self._require_loaded()
        if scored is None or self._prompt_lookup:
            return []
        start = replay_start(scored, prompt)
        held = common_prefix(llama.input_ids[: llama.n_tokens], scored.tokens)
        if start is None or held < len(scored.tokens):
            return []
        rng = random.Random(options.seed)
        eos = frozenset({llama.token_eos()})
        drawn = replay(scored, start, options.temperature, options.top_p, rng, eos)
        # A character split across tokens is left for the model to finish.
        while drawn and not whole_text(llama.detokenize(drawn)):
            drawn.pop()
        drawn = drawn[: options.max_tokens]
        return [(token, scored.rows[start + i]) for i, token in enumerate(drawn)]

    def forks_along(
        self,
        messages: Sequence[ChatMessage],
        answer_prefix: str,
        continuation: str,
        *,
        cancel: threading.Event | None = None,
        enough: ForksCheck | None = None,
    ) -> tuple[Fork, ...] | None:
        with self._lock:
            return self._forks_along(messages, answer_prefix, continuation, cancel, enough)

    def _forks_along(
        self,
        messages: Sequence[ChatMessage],
        answer_prefix: str,
        continuation: str,
        cancel: threading.Event | None,
        enough: ForksCheck | None,
    ) -> tuple[Fork, ...]:
        llama = self._require_loaded()
        self._scored = None  # the cache is about to change
        prompt = self._prompt_tokens(messages, answer_prefix)
        answer: list[int] = llama.tokenize(continuation.encode("utf-8"), add_bos=False)
        if not answer or len(prompt) + len(answer) >= self.n_ctx:
            return ()  # nothing to score, or no room: generation reports its own overflow
        # As generate does: keep the cached start, and read the last prompt token again for
        # the logits that choose the answer's first token.
        self._reuse_prefix(llama, messages, prompt)
        cached = min(common_prefix(llama.input_ids[: llama.n_tokens], prompt), len(prompt) - 1)
        if not llama._ctx.kv_cache_seq_rm(-1, cached, -1):
            llama._ctx.kv_cache_seq_rm(-1, 0, -1)  # a cache that cannot drop its end starts over
            cached = 0
        llama.n_tokens = cached
        offsets = text_offsets(llama, answer, len(answer_prefix))
        forks: list[Fork] = []  # per answer token: the sampler's other choices
        rows: list[ScoredRow] = []  # per answer token: the sampler's best, for a replay

        def score(row: Any) -> None:
            best = best_row(row)
            rows.append(best)
            choices = other_choices(llama, row, best, answer[len(forks)])
            runner_up = next((c for c in choices if c.text), Choice("", -float("inf")))
            forks.append(Fork(offsets[len(forks)], runner_up.text, -runner_up.gap, choices))

        try:
            if not evaluate(llama, prompt[cached:], None, cancel):
                return ()
            if not self._recent.holds(prompt):  # a round scores one prompt for two copies
                self._recent.put(SavedState(tuple(prompt), snapshot(llama)))
            score(logits_row(llama, -1))
            # The logits after the last answer token would choose the next one: not needed.
            # Chunks smaller than a batch let `enough` stop the scoring early.
            chunk = SCORE_CHUNK if enough is not None else len(answer)
            for start in range(0, len(answer) - 1, chunk):
                if enough is not None and enough(forks):
                    break
                if not evaluate(
                    llama, answer[start : min(start + chunk, len(answer) - 1)], score, cancel
                ):
                    return ()
        except RuntimeError as exc:
            raise ModelError(f"llama.cpp failed while reading an answer: {exc}") from exc
        self._scored = ScoredAnswer(tuple(prompt), tuple(answer[: len(rows)]), tuple(rows))
        return tuple(forks)

    def _reuse_prefix(
        self, llama: llama_cpp.Llama, messages: Sequence[ChatMessage], prompt: Sequence[int]
    ) -> int:
        """Prompt tokens the cache holds for this call without evaluating them: the common
        prefix with the last call, or with a recent read that shares more (restored), or a
        saved state of the prompt's fixed opening (restored in place of an unrelated last
        call). The opening is evaluated and saved when none has it. At least the last prompt
        token is always evaluated again, for its logits."""
        limit = len(prompt) - 1
        live = common_prefix(llama.input_ids[: llama.n_tokens], prompt)
        read = self._recent.best(prompt)
        if read is not None and min(read[1], limit) >= live + MIN_RESTORE_GAIN:
            # The cache then holds the whole read; callers drop what follows the shared part.
            if restore(llama, read[0]):
                live = read[1]
            else:
                self._recent.forget(read[0])
                live = 0
        fixed = min(self._fixed_prefix(messages, prompt), limit)
        if live >= fixed:
            return min(live, limit)
        saved = self._states.longest(prompt, fixed + 1)
        if saved is not None and len(saved.tokens) > live:
            if restore(llama, saved):
                live = len(saved.tokens)
            else:
                self._states.unusable(saved)
                live = 0
        cached = min(live, limit)
        if live < fixed:
            # Evaluated alone, so the state holds exactly the opening and can be saved.
            self._extend_cache(llama, prompt[:fixed], live)
            self._states.save(SavedState(tuple(prompt[:fixed]), snapshot(llama)))
        return cached

    def _extend_cache(self, llama: llama_cpp.Llama, tokens: Sequence[int], live: int) -> None:
        """Make the cache hold exactly `tokens`, of which the first `live` are there already."""
        if not llama._ctx.kv_cache_seq_rm(-1, live, -1):
            llama._ctx.kv_cache_seq_rm(-1, 0, -1)  # a cache that cannot drop its end starts over
            live = 0
        llama.n_tokens = live
        evaluate(llama, tokens[live:], None, None)

    def _fixed_prefix(self, messages: Sequence[ChatMessage], prompt: Sequence[int]) -> int:
        """Tokens of `prompt` that do not depend on the task: the leading system messages and
        the header of the turn after them (0 when shorter than MIN_SAVED_PREFIX)."""
        lead = 0
        while lead < len(messages) and messages[lead].role == "system":
            lead += 1
        if lead == len(messages):
            return 0
        probe = [*messages[:lead], ChatMessage(messages[lead].role, "")]
        fixed = common_prefix(self._prompt_tokens(probe), prompt)
        return fixed if fixed >= MIN_SAVED_PREFIX else 0

    def close(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
