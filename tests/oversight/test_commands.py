"""Operator scripts and the command queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityx.core import InputError
from cityx.oversight import Action, CommandQueue, OperatorCommand, load_operator_file

EXAMPLE = Path(__file__).parents[2] / "examples" / "oversight" / "operator.toml"


def test_the_example_script_loads() -> None:
    commands = load_operator_file(EXAMPLE)
    assert [c.action for c in commands] == [Action.HOLD, Action.PHASE, Action.STOP, Action.RESUME]
    assert commands[1].phase == 4 and commands[2].intersection == "*"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[command]]\nat_s = 1\nintersection = "a"\naction = "hodl"\n', "unknown action"),
        ('[[command]]\nat_s = 1\nintersection = "a"\naction = "phase"\n', "needs a phase"),
        ('[[command]]\nat_s = 1\nintersection = "a"\naction = "hold"\nphse = 2\n', "phse"),
        ('[[command]]\nintersection = "a"\naction = "hold"\n', "missing 'at_s'"),
        ("[[commands]]\nat_s = 1\n", "unknown top-level"),
        ('[[command]]\nat_s = "soon"\nintersection = "a"\naction = "hold"\n', "at_s"),
        ("[[command]\n", "not valid TOML"),
    ],
)
def test_a_bad_script_is_one_clear_error_naming_the_command(
    tmp_path: Path, text: str, needle: str
) -> None:
    path = tmp_path / "op.toml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_operator_file(path)
    assert needle in caught.value.message and str(path) in str(caught.value.where)


def test_the_queue_hands_out_commands_when_due_and_live_ones_at_once() -> None:
    queue = CommandQueue()
    late = queue.submit(OperatorCommand("a", Action.HOLD, at_s=10))
    early = queue.submit(OperatorCommand("a", Action.STOP, at_s=5))
    live = queue.submit(OperatorCommand("b", Action.RESUME))
    assert [cid for cid, _ in queue.due(0)] == [live]
    assert [cid for cid, _ in queue.due(9.5)] == [early]
    queue.annotate(early, "smoke seen")
    assert queue.notes() == [(early, "smoke seen", "urn:cityx:operator:scripted")]
    assert [cid for cid, _ in queue.remaining()] == [late]
