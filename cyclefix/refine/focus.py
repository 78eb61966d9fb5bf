"""The round's focus: which suspect it rewrites and the prompt that shows it.

The failures are localized (import-time errors included), the suspect whose turn it is chosen
(refine.turns), and its prompt built and fitted to the model's window (refine.fit): a suspect
whose prompt cannot fit even narrowed is skipped for good.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from cyclefix.models.backend import Backend
from cyclefix.refine.candidate import answer_budget
from cyclefix.refine.fit import FittedPrompt, fit_prompt, function_instead_of_module
from cyclefix.refine.importtime import failures_with_import_errors
from cyclefix.refine.localize import Localization, localize
from cyclefix.refine.pitfalls import with_pitfalls
from cyclefix.refine.probe import with_probe
from cyclefix.refine.project_index import ProjectIndex
from cyclefix.refine.prompt import RefinePrompt, other_failure_names
from cyclefix.refine.related import executed_neighbours, path_functions
from cyclefix.refine.round import Outcome, State
from cyclefix.refine.source import (
    MODULE_QUALNAME,
    called_functions,
    has_docstring,
    module_context,
    module_description,
    read_source,
)
from cyclefix.refine.suspicious_lines import edit_lines, with_suspicious_lines
from cyclefix.refine.turns import choose_focus, pointed_target, with_import_time_targets
from cyclefix.refine.types import RefineConfig, Target
from cyclefix.runner.feedback import feedback_text
from cyclefix.runner.results import TestRunResult


class Focus:
    """Chooses each round's target and prompt for one fix; `notes` gathers what the user
    should know (suspects skipped, nothing left to localize)."""

    def __init__(
        self, backend: Backend, config: RefineConfig, named_file: str | None, notes: list[str]
    ) -> None:
        self.backend = backend
        self.config = config
        self.named_file = named_file  # the file the user named, relative to the root
        self.notes = notes
        # Suspects whose prompt does not fit the model's window, even narrowed: never chosen.
        self.unfit: set[tuple[str, str]] = set()
        # Where the latest tested candidate's failure pointed ("path::qualname"), if elsewhere.
        self.pointed = ""
        # The function whose rewrite was last kept because more tests passed ("path::qualname").
        self.progressed = ""
        # What prompts left out to fit the model's window, for the notes.
        self.left_out: list[str] = []

    def next_focus(
        self,
        scratch: Path,
        initial: TestRunResult,
        state: State,
        fruitless: dict[tuple[str, str], int],
        targets: tuple[Target, ...],
        latest: Outcome | None,
    ) -> tuple[Localization, RefinePrompt, Outcome | None] | None:
        """The round's target, its prompt fitted to the model's window, and the latest attempt
        it shows: the failures localized (import-time errors included), the suspect whose turn
        it is chosen (refine.turns); a suspect whose prompt cannot fit is skipped for good. None,
        with a note, when no suspect is left."""
        while True:
            assert state.run is not None
            # Import-time errors in project code count as failures (refine.importtime).
            failures = failures_with_import_errors(state.run)
            project = ProjectIndex(scratch, dict(state.sources))
            loc = localize(
                project,
                failures,
                self.named_file,
                spectrum=initial,  # the traced run: what the tests executed ranks suspects
            )
            loc = with_import_time_targets(loc, project, failures)
            self.notes.extend(n for n in loc.notes if n not in self.notes)
            if not loc.targets:
                self.notes.append("could not find the code the failing tests exercise")
                return None
            # The helpers the best suspect calls in other files get their turns too.
            reach = tuple(
                t
                for t in path_functions(project, loc.targets[0], failures)
                if t.path != loc.targets[0].path
            )
            pointed = pointed_target(project, self.pointed)
            progressed = pointed_target(project, self.progressed)
            focus = choose_focus(
                loc, fruitless, self.named_file, self.unfit, pointed, reach, progressed
            )
            if focus is None:
                self.notes.append(
                    "stopped: no suspect's prompt fits the model's context window, even narrowed"
                )
                return None
            # New targets: show the current code, not an attempt at other code.
            fitted = self.fitted_prompt(
                scratch, focus, state, latest if focus.targets == targets else None
            )
            if fitted is not None:
                return fitted
            unfit = focus.targets[0]
            self.unfit.add((unfit.path, unfit.qualname))
            self.notes.append(
                f"`{unfit.qualname}` ({unfit.path}) skipped: its prompt does not fit the "
                "model's context window, even narrowed"
            )

    def prompt(
        self, scratch: Path, loc: Localization, state: State, latest: Outcome | None
    ) -> RefinePrompt:
        targets = loc.targets
        primary = loc.primary
        under_test = faulty = "\n".join(t.source.rstrip() for t in targets) + "\n"
        feedback = feedback_text(primary) if primary else ""
        if latest is not None:
            # CYCLE: refine the latest attempt, with that attempt's own feedback.
            faulty = latest.attempt.code
            feedback = latest.attempt.feedback or feedback
            if latest.failing is not None:
                primary = latest.failing
        context = description = ""
        first = targets[0]
        related: tuple[Target, ...] = ()
        if first.qualname != "<module>":
            project = ProjectIndex(scratch, dict(state.sources))
            failures = failures_with_import_errors(state.run) if state.run else ()
            # The failing path in other files is shown on its own (refine.related); in this
            # file, the functions the failing tests ran through it are shown in full.
            related = tuple(
                t for t in path_functions(project, first, failures) if t.path != first.path
            )
            executed_here = {
                t.qualname
                for t in executed_neighbours(project, first, failures)
                if t.path == first.path
            }
            text = state.sources.get(first.path) or read_source(scratch / first.path)
            try:
                tree = ast.parse(text)
                names = {t.qualname for t in targets}
                whole = called_functions(tree, names) | (executed_here - names)
                context = module_context(text, tree, names, whole=whole)
                if not has_docstring(first.source):
                    description = module_description(tree)
            except SyntaxError:
                context = ""
        # What the shown functions did in the failing test (the traced run's probe; an
        # attempt's own feedback has none: its run is not traced, and the code has changed).
        feedback = with_probe(feedback, None if latest else primary, (*targets, *related))
        # What Python does with a surprising construct the code uses (round() of a half, ...).
        feedback = with_pitfalls(feedback, faulty)
        # Where inside the shown functions the traced run points (lines the code still holds).
        shown_code = "\n".join((faulty, *(t.source for t in related)))
        feedback = with_suspicious_lines(feedback, loc, (*targets, *related), shown_code)
        failing_ids = [t.nodeid for t in state.run.failures] if state.run else []
        return RefinePrompt(
            names=tuple(t.qualname for t in targets if t.qualname != "<module>") or (first.path,),
            faulty_code=faulty,
            code_under_test=under_test,
            suspicious_lines=edit_lines(loc, targets, under_test),
            feedback=feedback,
            test_source=(primary.test_source or primary.assert_source or "") if primary else "",
            description=description,
            context=context,
            path=first.path,
            other_failures=other_failure_names(failing_ids, primary.nodeid if primary else None),
            related=related,
        )

    def fitted_prompt(
        self, scratch: Path, loc: Localization, state: State, latest: Outcome | None
    ) -> tuple[Localization, RefinePrompt, Outcome | None] | None:
        """The round's prompt, narrowed to fit the model's context window (refine.fit), with
        the localization and latest attempt it shows; None when nothing narrower fits.

        A whole-module target over the window becomes the function the failing tests point
        at; a latest attempt too long to show gives way to the code under test. The first
        of these that fits whole is taken, else the first that fits narrowed."""
        choices = [(loc, latest)]
        first = loc.targets[0]
        if first.qualname == MODULE_QUALNAME:
            project = ProjectIndex(scratch, dict(state.sources))
            failures = failures_with_import_errors(state.run) if state.run else ()
            narrowed = function_instead_of_module(project, first, failures)
            if narrowed is not None:
                primary = loc.blamed.get((narrowed.path, narrowed.qualname), loc.primary)
                choices.append(
                    (dataclasses.replace(loc, targets=(narrowed,), primary=primary), None)
                )
        if latest is not None:
            choices.append((loc, None))
        fits: list[tuple[Localization, Outcome | None, FittedPrompt]] = []
        for option, shown in choices:
            prompt = self.prompt(scratch, option, state, shown)
            fitted = fit_prompt(prompt, self.backend, answer_budget(self.config, prompt))
            if fitted is not None:
                fits.append((option, shown, fitted))
                if not fitted.left_out:
                    break
        whole = [f for f in fits if not f[2].left_out]
        for option, shown, fitted in whole[:1] or fits[:1]:
            left_out = list(fitted.left_out)
            if option is not loc:
                left_out.insert(
                    0, f"the rest of {first.path} (only `{option.targets[0].qualname}` shown)"
                )
            if shown is None and latest is not None:
                left_out.insert(0, "the latest attempt (the code under test shown instead)")
            self.left_out.extend(w for w in left_out if w not in self.left_out)
            return option, fitted.prompt, shown
        return None
