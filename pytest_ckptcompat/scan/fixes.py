"""The fix for each blocked global: a better object to save, or allowlist code for numpy 1 and 2.

Two kinds of fix, both shown, the better one first where it exists:

- change what you save (`str(path)`, `vars(namespace)`, `float(np_scalar)`):
  the checkpoint then needs no allowlist anywhere;
- allowlist it: the `ckpt_compat_safe_globals` entries and the
  `torch.serialization.add_safe_globals([...])` code. numpy's `core` ->
  `_core` rename means a file written under numpy 1 names
  `numpy.core.multiarray.scalar` and under numpy 2 `numpy._core...`; torch
  (2.6+) matches the names, not the objects, so the code registers the
  running numpy's object under *both* names with the `(obj, "name")` form.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .danger import is_dangerous
from .names import dtype_class_code, numpy_core_rest, numpy_spellings, public_spelling
from .rules import TorchRules
from .verdict import Requirement

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


@dataclass(frozen=True)
class FixTarget:
    """The reader a fix is written for, when there is no installed torch to ask (the matrix)."""

    version: str
    has_tuple_form: bool


def fix_for(req: Requirement, rules: TorchRules | FixTarget) -> Fix:
    """The fix for one blocked requirement under `rules`'s torch."""
    return fix_for_name(
        req.lookup, rules, dangerous=req.dangerous, fixable=req.fixable, note=req.note
    )


def fix_for_name(
    name: str,
    rules: TorchRules | FixTarget,
    *,
    dangerous: bool = False,
    fixable: bool = True,
    note: str = "",
) -> Fix:
    """The fix for the blocked global `name` (as torch looks it up) under `rules`'s torch."""
    either_numpy = numpy_spellings(name)[-1]  # the prefixes above use numpy 2's spelling
    change = next((text for prefix, text in _CHANGES if either_numpy.startswith(prefix)), None)
    if dangerous or is_dangerous(name):
        # No "save X instead": a file naming it was not written by `torch.save` of data.
        return Fix(name, (), (), (), None, f"{name} can run code: never allowlist it")
    if not fixable:
        return Fix(name, (), (), (), change, note or f"torch {rules.version} cannot allowlist it")
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
