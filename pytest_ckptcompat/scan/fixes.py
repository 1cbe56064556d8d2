"""The fix for each blocked global: a better object to save, or allowlist code for numpy 1 and 2.

Two kinds of fix, both shown, the better one first where it exists:

- change what you save (`str(path)`, `vars(namespace)`, `float(np_scalar)`):
  the checkpoint then needs no allowlist anywhere;
- allowlist it: the `ckpt_compat_safe_globals` entries and the
  `torch.serialization.add_safe_globals([...])` code, printed only for names
  `plaindata.advice` calls safe (reviewed plain data, or the project's own
  classes); other names get "review before allowlisting" and no code, and a
  dangerous name gets "never". numpy's `core` -> `_core` rename means a file
  written under numpy 1 names `numpy.core.multiarray.scalar` and under numpy 2
  `numpy._core...`; torch (2.6+) matches the names, not the objects, so the
  code registers the running numpy's object under *both* names with the
  `(obj, "name")` form.

When no allowlist can make a file load (an obstacle only a different file
fixes), or when it pickles whole objects (many classes of models and
trainers), `advise` says so instead of listing entries nobody should paste.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .danger import why_dangerous
from .names import dtype_class_code, numpy_core_rest, numpy_spellings, public_spelling
from .plaindata import REVIEW, Advice, advice
from .rules import TorchRules
from .verdict import Obstacle, Requirement, Verdict

_NP_CORE_LINE = '_np_core = np._core if int(np.__version__.split(".")[0]) >= 2 else np.core'

# Better things to save, by global (prefix match on the name).
_CHANGES: tuple[tuple[str, str], ...] = (
    ("numpy._core.multiarray.scalar", "save a Python number: `float(x)` / `int(x)` / `x.item()`"),
    ("numpy._core.multiarray._reconstruct", "save a tensor: `torch.from_numpy(array)`"),
    ("numpy.ndarray", "save a tensor: `torch.from_numpy(array)`"),
    ("numpy.dtype", "comes with numpy arrays and scalars: save tensors / Python numbers"),
    ("numpy.random", "save `rng.bit_generator.state` (a dict) instead of the generator"),
    ("argparse.Namespace", "save `vars(namespace)` (a dict)"),
    ("pathlib.", "save `str(path)`"),
    ("builtins.set", "save `sorted(the_set)` (a list)"),
    ("builtins.frozenset", "save `sorted(the_set)` (a list)"),
    ("builtins.complex", "save `(z.real, z.imag)`"),
    ("builtins.slice", "save `(s.start, s.stop, s.step)`"),
    ("builtins.range", "save `(r.start, r.stop, r.step)`"),
    ("collections.defaultdict", "save `dict(d)` (torch >= 2.10 cannot load a defaultdict at all)"),
    ("functools.partial", "save the function's name and arguments, rebuild the partial on load"),
    ("torch.torch_version.TorchVersion", "save `str(torch.__version__)`"),
    ("torch.nn.modules.", "save `module.state_dict()`, not the module"),
    ("enum.", "save `member.value`"),
)


@dataclass(frozen=True)
class Fix:
    """How to make one blocked name load."""

    name: str
    entries: tuple[str, ...]  # ini `ckpt_compat_safe_globals` entries; () = do not allowlist
    code: tuple[str, ...]  # items of the `add_safe_globals([...])` list
    imports: tuple[str, ...]
    change: str | None  # a better thing to save, when there is one
    warning: str | None = None
    advice: Advice = "allowlist"


@dataclass(frozen=True)
class FixTarget:
    """The reader a fix is written for, when there is no installed torch to ask (the matrix)."""

    version: str
    has_tuple_form: bool


def fix_for(
    req: Requirement, rules: TorchRules | FixTarget, first_party: frozenset[str] = frozenset()
) -> Fix:
    """The fix for one blocked requirement under `rules`'s torch."""
    if req.dangerous and req.kind != "global":
        # What the file does (BUILD on a class, a forged dtype, TorchScript run at
        # load): the requirement's note says why; no entry of any allowlist is meant.
        warning = f"{req.name} can run code: no allowlist makes that safe"
        return Fix(req.name, (), (), (), None, warning, "never")
    return fix_for_name(
        req.lookup,
        rules,
        dangerous=req.dangerous,
        fixable=req.fixable,
        note=req.note,
        first_party=first_party,
    )


def fix_for_name(
    name: str,
    rules: TorchRules | FixTarget,
    *,
    dangerous: bool = False,
    fixable: bool = True,
    note: str = "",
    first_party: frozenset[str] = frozenset(),
) -> Fix:
    """The fix for the blocked global `name` (as torch looks it up) under `rules`'s torch."""
    either_numpy = numpy_spellings(name)[-1]  # the prefixes above use numpy 2's spelling
    change = next((text for prefix, text in _CHANGES if either_numpy.startswith(prefix)), None)
    tier = "never" if dangerous else advice(name, first_party)
    if tier == "never":
        # No "save X instead": a file naming it was not written by `torch.save` of data.
        module, _, attr = name.rpartition(".")
        why = why_dangerous(module, attr) or note or "named dangerous"
        return Fix(
            name, (), (), (), None, f"{name} can run code ({why}): never allowlist it", "never"
        )
    if not fixable:
        return Fix(name, (), (), (), change, note or f"torch {rules.version} cannot allowlist it")
    if tier == "review":
        return Fix(name, (), (), (), change, None, "review")
    if rest := numpy_core_rest(name):
        both = numpy_spellings(name)
        if rules.has_tuple_form:
            code = tuple(f'(_np_core.{rest}, "{spelling}")' for spelling in both)
            return Fix(name, both, code, ("import numpy as np", _NP_CORE_LINE), change)
        return Fix(
            name,
            both,
            (f"_np_core.{rest}",),
            ("import numpy as np", _NP_CORE_LINE),
            change,
            f"torch {rules.version} has no (obj, name) form: this entry matches only files "
            "written by the same numpy major as the reader; torch >= 2.6 can match both",
        )
    if dtype := dtype_class_code(name):
        # BUILD compares the class object itself, so `type(np.dtype(...))` is
        # right on every numpy, whatever the class is called there.
        dtype_code = f'type(np.dtype("{dtype}"))'
        return Fix(name, (name,), (dtype_code,), ("import numpy as np",), change)
    module, _, attr = name.rpartition(".")
    if module == "numpy":
        return Fix(name, (name,), (f"np.{attr}",), ("import numpy as np",), change)
    if module == "builtins":
        return Fix(name, (name,), (attr,), (), change)
    public = public_spelling(name)
    if public != name and rules.has_tuple_form:
        pub_module = public.rpartition(".")[0]
        return Fix(name, (name,), (f'({public}, "{name}")',), (f"import {pub_module}",), change)
    return Fix(name, (name,), (public,), (f"import {public.rpartition('.')[0]}",), change)


def render(fixes: Iterable[Fix], *, indent: str = "    ") -> str:
    """The fixes as text: better objects first, then ini entries and code to paste."""
    fixes = list(fixes)
    lines: list[str] = []
    changes = [f for f in fixes if f.change]
    if changes:
        lines.append("change what you save (then no allowlist is needed):")
        lines += [f"{indent}{f.name}: {f.change}" for f in changes]
    # Fixes for both spellings of a numpy name share their code and notes: say each once.
    lines += [f"note: {w}" for w in dict.fromkeys(f.warning for f in fixes if f.warning)]
    review = [f.name for f in fixes if f.advice == "review"]
    if review:
        lines.append(f"{REVIEW}; not advised here, as no one checked what they do:")
        lines += [f"{indent}{name}" for name in dict.fromkeys(review)]
    allowable = [f for f in fixes if f.entries]
    if allowable:
        lines.append("or allowlist it, in pytest's ini (ckpt_compat_safe_globals):")
        entries = dict.fromkeys(e for f in allowable for e in f.entries)
        lines += [f"{indent}{e}" for e in entries]
        lines.append("and where your code calls torch.load:")
        imports = dict.fromkeys(["import torch", *(i for f in allowable for i in f.imports)])
        lines += [f"{indent}{i}" for i in imports]
        lines.append(f"{indent}torch.serialization.add_safe_globals([")
        lines += [f"{indent}    {c}," for c in dict.fromkeys(c for f in allowable for c in f.code)]
        lines.append(f"{indent}])")
    return "\n".join(lines)


DANGEROUS_FILE = (
    "this file can run code when it is loaded: no allowlist is advised for any of its names; "
    "do not load it unless you made it yourself"
)

#: More classes than this, none of them reviewed: the file pickles whole objects.
WHOLE_OBJECT_CLASSES = 8
_WHOLE_OBJECT_PREFIXES = ("torch.nn.modules.", "torch.optim.", "torch.utils.data.")


def advise(
    verdict: Verdict,
    rules: TorchRules | FixTarget,
    first_party: frozenset[str] = frozenset(),
    *,
    indent: str = "    ",
) -> str:
    """The advice for a verdict that does not load: what to save, allowlist, or give up on."""
    fixes = [fix_for(r, rules, first_party) for r in verdict.troubles]
    if verdict.dangerous:
        # A file that can run code gets no allowlist code at all: an entry that
        # lets its harmless-looking names through only brings its payload closer.
        return "\n".join(
            [f"note: {f.warning}" for f in fixes if f.advice == "never" and f.warning]
            + [DANGEROUS_FILE]
        )
    hopeless = _no_allowlist_helps(verdict.obstacles)
    unreviewed = [f for f in fixes if f.advice in ("review", "first-party")]
    modules = [f for f in fixes if f.name.startswith(_WHOLE_OBJECT_PREFIXES)]
    if hopeless or modules or len(unreviewed) > WHOLE_OBJECT_CLASSES:
        lines = []
        if hopeless:
            lines.append(f"no allowlist makes this file load ({'; '.join(hopeless)}).")
        if modules or len(unreviewed) > WHOLE_OBJECT_CLASSES:
            examples = ", ".join(f.name for f in (modules or unreviewed)[:3])
            lines.append(
                f"It pickles whole objects ({len(unreviewed)} classes, e.g. {examples}): "
                "save `model.state_dict()` (and optimizer.state_dict(), plain numbers and "
                "strings) instead of the objects themselves, and load those into code that "
                "builds the objects."
            )
        never = [f for f in fixes if f.advice == "never"]
        lines += [f"note: {f.warning}" for f in never if f.warning]
        return "\n".join(lines)
    return render(fixes, indent=indent)


def _no_allowlist_helps(obstacles: Iterable[Obstacle]) -> list[str]:
    """The obstacles that no allowlist entry removes (the file itself must change)."""
    return [o.message for o in obstacles if o.code in _HOPELESS]


# Obstacle codes that mean: this file cannot load under weights_only, whatever is allowlisted.
_HOPELESS = frozenset(
    {"unsupported-opcode", "setitem-target", "append-target", "call-target", "persistent-id",
     "build-target"}
)  # fmt: skip
