"""Which statements matter: dead-code removal across training steps.

A statement is live if the update depends on it, in this step or a later one. State is
loop-carried: the returned ``m`` feeds the input ``m`` of the next step, so it matters only
if some live statement (or a returned name) reads the input ``m``. This finds the fixpoint.
Nothing here depends on ops: a statement reads its variable arguments (a literal
``name = c`` reads none) and writes its target.
"""

from __future__ import annotations

from typing import FrozenSet, List, Set, Tuple

from .program import INPUTS, STATE, Program

__all__ = ["NO_LR", "STATE", "live_mask", "live_state", "reads_lr", "strip_dead", "update_mask"]


def _backward(program: Program, needed: Set[str]) -> Tuple[List[bool], Set[str]]:
    """Mark statements whose targets are needed; return marks and inputs read before written."""
    live = set(needed)
    marks = [False] * len(program.stmts)
    for i in range(len(program.stmts) - 1, -1, -1):
        s = program.stmts[i]
        if s.target in live:
            marks[i] = True
            live.discard(s.target)
            live.update(s.vars())
    return marks, live & set(INPUTS)


def live_state(program: Program) -> FrozenSet[str]:
    """The state slots (``m``, ``v``) whose value can reach a future update."""
    state: Set[str] = set()
    while True:
        needed = {program.returns[0]} | {program.returns[1 + STATE.index(s)] for s in state}
        _, read = _backward(program, needed)
        new = state | (read & set(STATE))
        if new == state:
            return frozenset(state)
        state = new


def live_mask(program: Program) -> List[bool]:
    """One flag per statement: does it affect any present or future update?"""
    state = live_state(program)
    needed = {program.returns[0]} | {program.returns[1 + STATE.index(s)] for s in state}
    return _backward(program, needed)[0]


def update_mask(program: Program) -> List[bool]:
    """One flag per statement: does it feed this step's update (not only the state)?"""
    return _backward(program, {program.returns[0]})[0]


def strip_dead(program: Program) -> Program:
    """The program without dead statements. A state slot that no update ever reads returns
    whatever its plain name holds (its value can never matter), so the signature stays."""
    state = live_state(program)
    mask = live_mask(program)
    stmts = tuple(s for s, keep in zip(program.stmts, mask) if keep)
    returns = (program.returns[0],) + tuple(
        program.returns[1 + i] if s in state else s for i, s in enumerate(STATE))
    return Program(stmts, returns)


NO_LR = " [never reads lr]"  # how reports, show and the live display flag such a program


def reads_lr(program: Program) -> bool:
    """Whether the learning rate can reach an update, now or later: a live statement reads
    the ``lr`` input (before anything reassigns ``lr``), or an output is that input. A
    program for which this is False trains alike at every learning rate and schedule."""
    live = strip_dead(program)
    for s in live.stmts:
        if "lr" in s.vars():
            return True
        if s.target == "lr":
            return False
    return "lr" in live.returns
