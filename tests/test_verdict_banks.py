"""Verdicts from behaviour alone, and points that follow the work (issue 22).

- The lying bank (tests/bank/lying.py): per part, a submission that lies about itself never scores
  above its honest control. Graded through the real path (``grade_class.grade_many``: ``pytest
  autograder`` with the submission in its sandboxed worker), where a lie acts on the worker only.
- The do-nothing bank (tests/bank/do_nothing.py): a part that keeps its shapes but skips its work
  keeps at most a quarter of its points and costs nothing elsewhere (graded in-process, every
  part, with the registry's weights: tests/verdict_grades.py).
- Planted bugs: with a defence removed (a check judging from what the module reports about itself,
  the grader's markers constant again, the grader's classes left unguarded in the worker, the
  training verdict read from the worker's record of calls) the lying bank's assertion fails.
"""

from __future__ import annotations

import nbformat
import pytest
import torch

from tests.bank.blind_spots import BLIND_SPOTS, NOW_ACCEPTED
from tests.bank.do_nothing import DO_NOTHING, MAX_SHARE
from tests.bank.lying import PAIRS
from tests.verdict_grades import REFERENCE, grade_apart, share

# a tier of its own (.ci/run): the lying bank through the real worker path, the do-nothing and
# blind-spot banks graded apart in-process (the fast tier judges those two banks too, with the
# shared in-process runner: tests/test_bank_inprocess.py)
pytestmark = pytest.mark.verdict_banks


@pytest.fixture(scope="module")
def reference_nb():
    return nbformat.read(REFERENCE, as_version=4)


@pytest.fixture(scope="module")
def lying_grades(reference_nb, tmp_path_factory):
    """Every lie and control of the bank, graded in one grade_many batch (the real worker path)."""
    from instructor.grade_class import grade_many

    root = tmp_path_factory.mktemp("lying")
    paths = {}
    for pair in PAIRS:
        for rewrite in (pair.lie, pair.control):
            paths[rewrite.id] = rewrite.write(root / "submissions", reference_nb)
    return grade_many(paths, root / "out", jobs=2, timeout=300, reference=REFERENCE, reports=False)


@pytest.mark.parametrize("pair", PAIRS, ids=[p.lie.id for p in PAIRS])
def test_a_lie_never_scores_above_its_control(lying_grades, pair):
    lie, control = lying_grades[pair.lie.id], lying_grades[pair.control.id]
    for r in (lie, control):
        assert r["status"] == "ok", f"{r}"
    above = {p: (lie["parts"][p], control["parts"][p]) for p in control["parts"]
             if lie["parts"][p] > control["parts"][p] + 1e-9}
    assert not above, f"{pair.lie.id} ({pair.lie.why}) scores above its honest control in {above}"
    # the control is wrong code: its part is not full marks, so the comparison means something
    assert control["parts"][pair.control.part] < control["max"][pair.control.part] - 1e-9


@pytest.fixture(scope="module")
def reference_grade():
    return grade_apart(REFERENCE)


@pytest.mark.parametrize("rewrite", DO_NOTHING, ids=[r.id for r in DO_NOTHING])
def test_a_do_nothing_part_keeps_at_most_a_quarter_and_costs_nothing_elsewhere(reference_nb, reference_grade,
                                                                                tmp_path, rewrite):
    got = grade_apart(rewrite.write(tmp_path, reference_nb))
    assert share(got, rewrite.part) <= MAX_SHARE, (
        f"{rewrite.id} ({rewrite.why}) keeps {float(share(got, rewrite.part)):.0%} of {rewrite.part}: "
        f"{got[rewrite.part]['failed']}")
    assert got[rewrite.part]["score"] < reference_grade[rewrite.part]["score"]
    elsewhere = [p for p in got if p != rewrite.part and got[p]["score"] != reference_grade[p]["score"]]
    assert not elsewhere, f"{rewrite.id} costs points in {elsewhere}: {[got[p]['failed'] for p in elsewhere]}"


@pytest.mark.parametrize("mutant", BLIND_SPOTS, ids=[m.id for m in BLIND_SPOTS])
def test_a_blind_spot_is_caught_in_its_own_part_and_named(reference_nb, reference_grade, tmp_path, mutant):
    from tests.conftest import write_edit

    got = grade_apart(write_edit(mutant, tmp_path, reference_nb))
    assert got[mutant.part]["score"] < reference_grade[mutant.part]["score"], f"{mutant.id} ({mutant.why}) not caught"
    assert any(mutant.expect in m for m in got[mutant.part]["failed"].values()), got[mutant.part]["failed"]
    elsewhere = [p for p in got if p != mutant.part and got[p]["score"] != reference_grade[p]["score"]]
    assert not elsewhere, f"{mutant.id} costs points in {elsewhere}: {[got[p]['failed'] for p in elsewhere]}"


@pytest.mark.parametrize("alternative", NOW_ACCEPTED, ids=[a.id for a in NOW_ACCEPTED])
def test_what_the_contract_allows_keeps_full_marks(reference_nb, tmp_path, alternative):
    from tests.conftest import write_edit

    got = grade_apart(write_edit(alternative, tmp_path, reference_nb))
    lost = {p: g["failed"] for p, g in got.items() if g["score"] != g["points"]}
    assert not lost, f"{alternative.id} ({alternative.why}) loses points: {lost}"


def test_the_reference_keeps_full_marks_in_process(reference_grade):
    assert all(g["score"] == g["points"] for g in reference_grade.values()), \
        {p: g["failed"] for p, g in reference_grade.items() if g["failed"]}


# -- planted bugs: each a defence removed, in a forked child only ---------------------------------


def plant_checks_trust_reported_state():
    """The worker reads and writes state through the module's own methods, and the feed-forward,
    block and GPT checks compute what they expect from what the module reports (as before issue 22)."""
    from autograder.checks import test_decoder_block, test_feedforward, test_gpt
    from autograder.engine import module_state

    module_state.read_state = lambda m: {k: v.detach().clone() for k, v in m.state_dict().items()}
    module_state.write_state = lambda m, state: m.load_state_dict(state, strict=False)

    def ff_from_reported_state(sub):
        import torch.nn.functional as F

        ff = test_feedforward._ff(sub, seed=6)
        state = ff.state_dict()
        names = test_feedforward.layer_names(state)
        assert names is not None
        w1, b1, w2, b2 = (state[n] for n in names)
        x = torch.randn(2, 3, test_feedforward.C, generator=torch.Generator().manual_seed(7))
        assert torch.allclose(ff(x), F.linear(F.relu(F.linear(x, w1, b1)), w2, b2), atol=1e-5)

    ff_from_reported_state.__name__ = "test_feedforward_computes_linear_relu_linear"
    test_feedforward.test_feedforward_computes_linear_relu_linear = ff_from_reported_state

    # the block and the GPT: the "known" weights are whatever the module reports
    block_real, gpt_real = test_decoder_block._block, test_gpt._gpt

    def block_from_reported(sub):
        block, _ = block_real(sub)
        state = block.state_dict()
        return block, state

    def gpt_from_reported(sub):
        model, _ = gpt_real(sub)
        return model, model.state_dict()

    test_decoder_block._block, test_gpt._gpt = block_from_reported, gpt_from_reported


def plant_markers_are_constants():
    """The estimate_loss markers fixed constants of the grader's code again."""
    from autograder.checks import standins, test_estimate_loss

    standins.TRAIN_MODE_OFFSET, standins.GRAD_OFFSET = 1000.0, 4000.0
    test_estimate_loss._offsets = lambda: (1000.0, 4000.0)


def plant_grader_classes_unguarded():
    """The worker's guard no longer restores the grader's classes."""
    from autograder.checks import standins

    standins.GRADER_CLASSES = ()


def plant_train_verdict_from_records():
    """'updates parameters' judged from the grader's record of calls in the worker."""
    from autograder.checks import test_train
    from autograder.checks.verdicts import expect

    def from_records(sub):
        model, _, _ = test_train.run(sub)
        events = [e for e in model.get("events") if e in ("backward", "step")]
        expect(events.count("backward") == test_train.ITERS and events.count("step") == test_train.ITERS, "no")

    from_records.__name__ = "test_train_updates_parameters"
    test_train.test_train_updates_parameters = from_records


PLANTED = [
    ("checks trust the reported state", plant_checks_trust_reported_state,
     ("lie_ff_state_dict", "lie_block_state_dict", "lie_gpt_state_dict")),
    ("markers are constants", plant_markers_are_constants, ("lie_el_subtracts_markers",)),
    ("grader classes unguarded", plant_grader_classes_unguarded, ("lie_el_patches_grader_classes",)),
    ("train verdict from records", plant_train_verdict_from_records, ("lie_train_fills_records",)),
]


@pytest.mark.parametrize("planted", [False, True], ids=["clean", "planted"])
@pytest.mark.parametrize("row", PLANTED, ids=[row[0] for row in PLANTED])
def test_the_lying_bank_fails_with_a_defence_removed(reference_nb, tmp_path, row, planted):
    """Clean: each lie of the row scores no more than its control (in-process). Planted: at least
    one scores more, so the bank's assertion would fail."""
    _, plant, lies = row
    pairs = [p for p in PAIRS if p.lie.id in lies]
    above = []
    for pair in pairs:
        part = pair.lie.part
        lie = grade_apart(pair.lie.write(tmp_path, reference_nb), (part,), plant if planted else None)
        control = grade_apart(pair.control.write(tmp_path, reference_nb), (part,), plant if planted else None)
        if lie[part]["score"] > control[part]["score"]:
            above.append((pair.lie.id, float(lie[part]["score"]), float(control[part]["score"])))
    if planted:
        assert above, f"with '{row[0]}' planted no lie of {lies} scores above its control"
    else:
        assert not above, f"lies score above their controls: {above}"
