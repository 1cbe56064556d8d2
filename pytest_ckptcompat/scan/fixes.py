"""The fix for each blocked global: a better object to save, or allowlist code that always works.

Two kinds of fix, both shown, the better one first where it exists:

- change what you save (`str(path)`, `vars(namespace)`, `float(np_scalar)`):
  the checkpoint then needs no allowlist anywhere;
- allowlist it: the `ckpt_compat_safe_globals` entries and one snippet
  (`snippet.render_snippet`) that registers them on every torch from 2.4 and
  with both numpy majors. Printed only for names `plaindata.advice` calls
  safe (reviewed plain data, or the project's own classes); other names get
  "review before allowlisting" and no code, and a dangerous name gets "never".

When no allowlist can make a file load (an obstacle only a different file
fixes), or when it pickles whole objects (many classes of models and
trainers), `advise` says so instead of listing entries nobody should paste.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from .danger import why_dangerous
from .names import (
    dtype_class_code,
    numpy_core_rest,
    numpy_spellings,
    public_spelling,
    py3_name,
)
from .plaindata import REVIEW, Advice, advice
from .snippet import NP_CORE, NP_CORE_LINE, render_snippet
from .verdict import Obstacle, Requirement, Verdict

# Better things to save, by global (prefix match on numpy 2's spelling of the name).
# Loaded with no allowlist on torch 2.5.1 and 2.13 (tests/fixproof.py `changed`): numpy
# scalars, RNG states, Namespace, paths, sets, complex. The rest are plain types by
# construction (tuples, lists, dicts, numbers), not yet loaded by a test.
_CHANGES: tuple[tuple[str, str], ...] = (
    ("numpy._core.multiarray.scalar", "save a Python number: `float(x)` / `int(x)` / `x.item()`"),
    (
        "numpy._core.multiarray._reconstruct",
        "save a tensor: `torch.from_numpy(array)` (for uint16/32/64 arrays, "
        "`array.astype(np.int64)` first: torch < 2.6 cannot save unsigned tensors)",
    ),
    ("numpy.ndarray", "save a tensor: `torch.from_numpy(array)` (see _reconstruct)"),
    ("numpy.dtype", "comes with numpy arrays and scalars: save tensors / Python numbers"),
    (
        "numpy.random",
        "save the RNG's state as plain values: for a `RandomState` (or numpy's global one, "
        "`np.random`) `name, key, pos, has_gauss, gauss = rs.get_state()` and `key.tolist()` "
        "(restore with `rs.set_state`); for a `Generator`, the dict "
        "`rng.bit_generator.state` (numbers only for PCG64; restore by assigning it back)",
    ),
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
    code: tuple[str, ...]  # items of the snippet's SAFE_GLOBALS list
    imports: tuple[str, ...]  # the lines those items need
    change: str | None  # a better thing to save, when there is one
    warning: str | None = None
    advice: Advice = "allowlist"


def fix_for(req: Requirement, first_party: frozenset[str] = frozenset()) -> Fix:
    """The fix for one blocked requirement."""
    if req.dangerous and req.kind != "global":
        # What the file does (BUILD on a class, a forged dtype, TorchScript run at
        # load): the requirement's note says why; no entry of any allowlist is meant.
        warning = f"{req.name} can run code: no allowlist makes that safe"
        return Fix(req.name, (), (), (), None, warning, "never")
    return fix_for_name(
        req.lookup,
        dangerous=req.dangerous,
        fixable=req.fixable,
        note=req.note,
        first_party=first_party,
    )


def fix_for_name(
    name: str,
    *,
    dangerous: bool = False,
    fixable: bool = True,
    note: str = "",
    first_party: frozenset[str] = frozenset(),
) -> Fix:
    """The fix for the blocked global `name` (as torch looks it up)."""
    either_numpy = numpy_spellings(name)[-1]  # the prefixes above use numpy 2's spelling
    change = next((text for prefix, text in _CHANGES if either_numpy.startswith(prefix)), None)
    tier = "never" if dangerous else advice(name, first_party)
    if tier == "never":
        # No "save X instead": a file naming it was not written by `torch.save` of data.
        module, _, attr = name.rpartition(".")
        why = why_dangerous(module, attr) or note or "named dangerous"
        warning = f"{name} can run code ({why}): never allowlist it"
        return Fix(name, (), (), (), None, warning, "never")
    if not fixable:
        return Fix(name, (), (), (), change, note or "no allowlist entry helps here")
    if tier == "review":
        return Fix(name, (), (), (), change, None, "review")
    entries, code, imports = _allowlist_code(name)
    rng = _NUMPY_RANDOM_MAJOR if either_numpy.startswith("numpy.random.") else None
    return Fix(name, entries, code, imports, change, rng, tier)


# Measured on torch 2.5.1 / numpy 1.25.2 reading a RandomState numpy 2 wrote, with these
# names allowlisted: numpy 1 refuses numpy 2's bit generator ("MT19937 is not a known
# BitGenerator module"), whatever torch allows.
_NUMPY_RANDOM_MAJOR = (
    "numpy's RNG objects load only under the numpy major that wrote them (numpy 1 cannot "
    "rebuild numpy 2's, whatever torch allows): the allowlist makes them load there; the "
    "plain state above loads everywhere"
)


def _allowlist_code(name: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The ini entries, snippet items and imports that allowlist `name` everywhere."""
    if rest := numpy_core_rest(name):
        spellings = numpy_spellings(name)
        code = tuple(f'_named({NP_CORE}.{rest}, "{s}")' for s in spellings)
        return spellings, code, ("import numpy as np", NP_CORE_LINE)
    if dtype := dtype_class_code(name):
        # BUILD compares the class object itself: `type(np.dtype(...))` is that
        # class on every numpy, whatever it is called there.
        return (name,), (f'type(np.dtype("{dtype}"))',), ("import numpy as np",)
    # The object under its Python 3 import path; the key as the pickle spells it.
    public = public_spelling(py3_name(name))
    module, _, attr = public.rpartition(".")
    if public.startswith("pathlib."):
        # Python 3.13 writes `pathlib._local.X`, older ones `pathlib.X`: both spellings.
        spellings = (public, f"pathlib._local.{attr}")
        return (name,), tuple(f'_named({public}, "{s}")' for s in spellings), ("import pathlib",)
    if module == "numpy":
        return (name,), (f'_named(np.{attr}, "{name}")',), ("import numpy as np",)
    if module == "builtins":
        return (name,), (f'_named({attr}, "{name}")',), ()
    if module.startswith("numpy."):
        return (name,), (f'_named({public}, "{name}")',), (f"import {module}", "import numpy as np")
    return (name,), (f'_named({public}, "{name}")',), (f"import {module}",)


def snippet(fixes: Iterable[Fix], *, indent: str = "", readers: str = "") -> str:
    """The allowlist code of these fixes ("" when none of them may be allowlisted)."""
    allowable = [f for f in fixes if f.code]
    if not allowable:
        return ""
    return render_snippet(
        (c for f in allowable for c in f.code),
        (i for f in allowable for i in f.imports),
        indent=indent,
        readers=readers,
    )


def render(fixes: Iterable[Fix], *, indent: str = "    ", code: bool = True) -> str:
    """The fixes as text: better objects first, then ini entries and (`code`) the snippet."""
    fixes = list(fixes)
    lines: list[str] = []
    changes: dict[str, list[str]] = {}  # one advice, said once, for every name it serves
    for f in fixes:
        if f.change:
            changes.setdefault(f.change, []).append(f.name)
    if changes:
        lines.append("change what you save (then no allowlist is needed):")
        lines += [f"{indent}{', '.join(names)}: {text}" for text, names in changes.items()]
    # Fixes for both spellings of a numpy name share their code and notes: say each once.
    lines += [f"note: {w}" for w in dict.fromkeys(f.warning for f in fixes if f.warning)]
    review = [f.name for f in fixes if f.advice == "review"]
    if review:
        lines.append(f"{REVIEW}; not advised here, as no one checked what they do:")
        lines += [f"{indent}{name}" for name in dict.fromkeys(review)]
    allowable = [f for f in fixes if f.entries]
    if allowable:
        left = list(dict.fromkeys(f.name for f in fixes if not f.entries))
        if left:  # the code below is part of the fix, not all of it
            lines.append(
                f"(the allowlist below alone does not make it load: {', '.join(left)} "
                "still need the advice above)"
            )
        lines.append("or allowlist it, in pytest's ini (ckpt_compat_safe_globals):")
        lines += [f"{indent}{e}" for e in dict.fromkeys(e for f in allowable for e in f.entries)]
        if code:
            lines.append("and where your code calls torch.load (torch >= 2.4, numpy 1 and 2):")
            lines.append(snippet(allowable, indent=indent))
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
    first_party: frozenset[str] = frozenset(),
    *,
    also: Iterable[str] = (),
    indent: str = "    ",
) -> str:
    """The advice for a verdict that does not load: what to save, allowlist, or give up on.

    `also`: allowlist entries the project already has (its ini), put into the
    snippet too, so code that loads outside pytest gets everything it needs.
    """
    fixes = [fix_for(r, first_party) for r in verdict.troubles]
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
    have = {f.name for f in fixes}
    fixes += [
        dataclasses.replace(fix_for_name(n, first_party=first_party), change=None)
        for n in also
        if n not in have
    ]
    return render(fixes, indent=indent)


def _no_allowlist_helps(obstacles: Iterable[Obstacle]) -> list[str]:
    """The obstacles that no allowlist entry removes (the file itself must change)."""
    return [o.message for o in obstacles if o.code in _HOPELESS]


# Obstacle codes that mean: this file cannot load under weights_only, whatever is allowlisted.
_HOPELESS = frozenset(
    {"unsupported-opcode", "setitem-target", "append-target", "call-target", "persistent-id",
     "build-target"}
)  # fmt: skip
