"""The lying bank: submissions that lie about themselves, each beside its honest control.

A lie is code written to earn points its work has not: methods that report what the grader wants
to see (``state_dict``, ``load_state_dict``, ``parameters``, ``named_modules``, ``__getattr__``,
``__class__``), methods that answer differently when the grader calls (stack inspection,
environment variables, call counts), writes to the grader's objects in the worker (the training
records, the stand-ins' classes, the grader's modules in ``sys.modules``), reads of the grader's
constants. Its control is the same wrong code without the lie. Per part, a lie never scores
above its control, on every grading path (tests/test_verdict_banks.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.bank import Rewrite

# -- the wrong code, honest ---------------------------------------------------------------------

_FF_RELU = ("feedforward_code", "return self.net(x)  # (B, T, C)", "return F.relu(x)")
_BLOCK_NOTHING = ("decoder_block_code",
                  "x = x + self.sa(self.ln1(x))  # (B, T, C) communicate\n"
                  "        x = x + self.ffwd(self.ln2(x))  # (B, T, C) compute\n", "")
_GPT_NO_POS = ("gpt_code", "x = tok_emb + pos_emb  # (B, T, C) broadcast over B", "x = tok_emb")
_GPT_NO_BLOCKS = ("gpt_code", "x = self.blocks(x)  # (B, T, C)", "pass")
_TRAIN_NO_STEP = ("train_code", "optimizer.zero_grad(set_to_none=True)\n        loss.backward()\n        optimizer.step()",
                  "pass")
_TRAIN_VAL = ("train_code", 'x, y = get_batch_fn("train")', 'x, y = get_batch_fn("val")')
_EL_NO_EVAL = ("estimate_loss_code", "    model.eval()\n", "")
_EL_NO_GRAD = ("estimate_loss_code", "@torch.no_grad()\n", "")

# -- the lies -----------------------------------------------------------------------------------

_FF_FORWARD = "    def forward(self, x: torch.Tensor) -> torch.Tensor:"
# state_dict reports weights under which Linear -> ReLU -> Linear is relu(x); loading is ignored
_FF_LIES = '''    def state_dict(self, *args, **kwargs):
        C = self.net[0].in_features
        eye = torch.zeros(4 * C, C)
        eye[:C] = torch.eye(C)
        return {"net.0.weight": eye, "net.0.bias": torch.zeros(4 * C),
                "net.2.weight": eye.T.contiguous(), "net.2.bias": torch.zeros(C)}

    def load_state_dict(self, *args, **kwargs):
        return None

    def parameters(self, recurse=True):
        return iter(self.state_dict().values())

    def named_parameters(self, *args, **kwargs):
        return iter(self.state_dict().items())

'''
# the same lie told only to the grader: found on the stack or in the environment, or after the first calls
_FF_LIES_WHEN_GRADED = '''    def state_dict(self, *args, **kwargs):
        import inspect, os
        self._asked = getattr(self, "_asked", 0) + 1
        graded = (any("autograder" in f.filename for f in inspect.stack(0))
                  or any(k.startswith(("GPTLAB", "PYTEST")) for k in os.environ) or self._asked > 1)
        if not graded:
            return super().state_dict(*args, **kwargs)
        C = self.net[0].in_features
        eye = torch.zeros(4 * C, C)
        eye[:C] = torch.eye(C)
        return {"net.0.weight": eye, "net.0.bias": torch.zeros(4 * C),
                "net.2.weight": eye.T.contiguous(), "net.2.bias": torch.zeros(C)}

    def load_state_dict(self, *args, **kwargs):
        return None

'''
_BLOCK_FORWARD = "    def forward(self, x: torch.Tensor) -> torch.Tensor:"  # once in the cell: DecoderBlock.forward
# the stand-ins' weights reported as zero (so the sub-layers "add nothing"), only the LayerNorms loaded,
# the class and the submodules disguised
_BLOCK_LIES = '''    def state_dict(self, *args, **kwargs):
        sd = super().state_dict(*args, **kwargs)
        return {k: (torch.zeros_like(v) if not k.startswith("ln") else v) for k, v in sd.items()}

    def load_state_dict(self, state_dict, strict=True, assign=False):
        return super().load_state_dict({k: v for k, v in state_dict.items() if k.startswith("ln")}, strict=False)

    def named_modules(self, *args, **kwargs):
        yield "", self

    @property
    def __class__(self):
        return nn.Identity

    def __getattr__(self, name):
        if name == "training":
            return False
        return super().__getattr__(name)

'''
_GPT_FORWARD = "    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None)"
# the position table and the blocks' weights reported as zero; loading them ignored
_GPT_LIES = '''    def state_dict(self, *args, **kwargs):
        sd = super().state_dict(*args, **kwargs)
        hide = lambda k: k.startswith(("position_embedding_table", "blocks."))
        return {k: (torch.zeros_like(v) if hide(k) else v) for k, v in sd.items()}

    def load_state_dict(self, state_dict, strict=True, assign=False):
        keep = {k: v for k, v in state_dict.items() if not k.startswith(("position_embedding_table", "blocks."))}
        return super().load_state_dict(keep, strict=False)

'''
# the grader's training record filled with a correct loop's calls
_TRAIN_FILL_RECORDS = ('train_code', "        losses.append(loss.item())",
                       '''        losses.append(loss.item())
        import sys
        records = getattr(sys.modules.get("autograder.checks.standins"), "_RECORDERS", {})
        if model in records:
            records[model][0].extend(["zero_grad", "backward", "step"])''')
# the grader's classes patched at load time: the model's record of calls replaced by a perfect one
_PATCH_GRADER_CLASSES = '''import sys as _sys
_st = _sys.modules.get("autograder.checks.standins")
if _st is not None:
    _st.TinyLM.events = property(lambda self: ["zero_grad", "forward", "backward", "step"] * 6)
    _st.BatchStream.__call__ = lambda self, split: self.batch("train", sum(1 for s in self.calls if s == "train"))
    _st.EvalModel.forward = lambda self, idx, targets=None: (
        torch.zeros(*idx.shape, 4), self.weight * (targets[0, 0].double() / 100.0))
    _st.GRADER_CLASSES = ()
'''
# the validation split drawn, then the grader's record of the draws rewritten
_TRAIN_REWRITE_DRAWS = ('train_code', "    return losses",
                        '''    if hasattr(get_batch_fn, "calls"):
        get_batch_fn.calls[:] = ["train"] * len(get_batch_fn.calls)
    return losses''')
# the grader's marker constants subtracted instead of eval() and no_grad()
_EL_SUBTRACT_MARKERS = ("estimate_loss_code", "            losses[k] = loss.item()",
                        '''            import sys
            st = sys.modules.get("autograder.checks.standins")
            a, b = getattr(st, "TRAIN_MODE_OFFSET", 1000.0), getattr(st, "GRAD_OFFSET", 4000.0)
            losses[k] = loss.item() - a * model.training - b * torch.is_grad_enabled()''')


@dataclass(frozen=True)
class Pair:
    lie: Rewrite
    control: Rewrite


def _pair(name: str, part: str, why: str, wrong: tuple, lie: tuple, prelude: str = "") -> Pair:
    return Pair(Rewrite(f"lie_{name}", part, why, edits=wrong + lie, prelude=prelude),
                Rewrite(f"control_{name}", part, "the same wrong code, honest", edits=wrong))


PAIRS: list[Pair] = [
    _pair("ff_state_dict", "feedforward", "relu(x); state_dict/parameters report weights under which the net is relu",
          (_FF_RELU,), (("feedforward_code", _FF_FORWARD, _FF_LIES + _FF_FORWARD),)),
    _pair("ff_lies_when_graded", "feedforward", "relu(x); the state lie told only to the grader (stack, env, calls)",
          (_FF_RELU,), (("feedforward_code", _FF_FORWARD, _FF_LIES_WHEN_GRADED + _FF_FORWARD),)),
    _pair("block_state_dict", "decoder_block", "returns x; reports its sub-layers as zero, __class__ and "
          "named_modules disguised", (_BLOCK_NOTHING,),
          (("decoder_block_code", _BLOCK_FORWARD, _BLOCK_LIES + _BLOCK_FORWARD),)),
    _pair("gpt_state_dict", "gpt", "ignores positions and blocks; reports their weights as zero",
          (_GPT_NO_POS, _GPT_NO_BLOCKS), (("gpt_code", _GPT_FORWARD, _GPT_LIES + _GPT_FORWARD),)),
    _pair("train_fills_records", "train", "never learns; fills the grader's record of calls",
          (_TRAIN_NO_STEP,), (_TRAIN_FILL_RECORDS,)),
    _pair("train_patches_grader_classes", "train", "never learns; patches the grader's classes at load time",
          (_TRAIN_NO_STEP,), (), prelude=_PATCH_GRADER_CLASSES),
    _pair("train_rewrites_draws", "train", "trains on validation batches; rewrites the record of draws",
          (_TRAIN_VAL,), (_TRAIN_REWRITE_DRAWS,)),
    _pair("el_subtracts_markers", "estimate_loss", "no eval(), no no_grad(); subtracts the grader's markers",
          (_EL_NO_EVAL, _EL_NO_GRAD), (_EL_SUBTRACT_MARKERS,)),
    _pair("el_patches_grader_classes", "estimate_loss", "no eval(), no no_grad(); patches the grader's model class",
          (_EL_NO_EVAL, _EL_NO_GRAD), (), prelude=_PATCH_GRADER_CLASSES),
]

LIES = [p.lie for p in PAIRS]
CONTROLS = [p.control for p in PAIRS]
