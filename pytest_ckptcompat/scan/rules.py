"""What one torch version's `weights_only` unpickler accepts, and the verdict on a pickle.

`TorchRules.from_installed()` reads the allowlist, the blocklist, the py2
name mapping and the supported opcodes from the torch installed here (never a
copied table). The few behaviours that are code rather than data (which
types BUILD and NEWOBJ may touch, whether the `(obj, "name")` form exists)
are fields too: `from_installed` keys them on the version (`releases`, each
with the release that changed it), and the offline table
(`torch_table.rules_for`, every release from 1.13) holds them as measured.

`TorchRules.judge(facts, user_keys)` is pure: the same `PickleFacts` can be
judged against any torch, which is how a scan predicts other readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..vocab import Kind, Status
from . import releases
from .danger import is_dangerous, is_dangerous_global, why_dangerous
from .machine import OPCODE_NAMES, PickleFacts
from .names import DYNAMIC_GLOBAL, is_numpy_dtype_class
from .verdict import Obstacle, Requirement, Verdict

# Types torch's BUILD accepts in every version, with no allowlist.
_ALWAYS_BUILDABLE = frozenset(
    {"torch.Tensor", "torch.nn.parameter.Parameter", "collections.OrderedDict"}
)
# SETITEM(S) targets torch >= 2.10 accepts (besides a plain dict).
_SETITEM_TARGETS = frozenset({"builtins.dict", "collections.OrderedDict", "collections.Counter"})
# The 34 opcodes of torch's unpickler (BINFLOAT from 2.0); used only when the
# installed torch does not expose its own list (see `_supported_opcodes`).
_FALLBACK_OPCODE_NAMES = [
    "APPEND", "APPENDS", "BINFLOAT", "BINGET", "BININT", "BININT1", "BININT2", "BINPERSID",
    "BINPUT", "BINUNICODE", "BUILD", "EMPTY_DICT", "EMPTY_LIST", "EMPTY_SET", "EMPTY_TUPLE",
    "GLOBAL", "LONG1", "LONG_BINGET", "LONG_BINPUT", "MARK", "NEWFALSE", "NEWOBJ", "NEWTRUE",
    "NONE", "PROTO", "REDUCE", "SETITEM", "SETITEMS", "SHORT_BINSTRING", "STOP", "TUPLE",
    "TUPLE1", "TUPLE2", "TUPLE3",
]  # fmt: skip
# Globals torch names in a dedicated error ("must be imported") instead of
# "not an allowed global": they are allowed once their module is imported.
_NEEDS_IMPORT = {
    "torch.nested._internal.nested_tensor.NestedTensor": "torch.nested",
    "torch.nested._internal.nested_tensor._rebuild_njt": "torch.nested",
    "torch._dynamo.decorators._DimRange": "torch._dynamo",
}


#: Which pickles torch maps python-2 names (`__builtin__.set`) in.
Py2Names = Literal["never", "protocol-2", "every"]


@dataclass(frozen=True)
class TorchRules:
    """The rules of one torch version's `weights_only=True` unpickler.

    The first fields are data read from torch. The behaviour fields after
    them (`user_allowlist` on) are code in torch: `from_installed` fills them
    from the release constants (`releases`), the offline table
    (`torch_table.rules_for`) from what the probe measured in that release.
    Left `None`, a behaviour follows the release constants.
    """

    version: str
    default_allowed: frozenset[str]
    blocklisted_modules: frozenset[str] = frozenset()
    supported_opcodes: frozenset[int] = frozenset()
    name_mapping: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    import_mapping: dict[str, str] = field(default_factory=dict)
    preregistered: frozenset[str] = frozenset()  # torch's own user-allowlist entries
    setitem_restricted: bool = False
    #: `torch.serialization.add_safe_globals` exists.
    user_allowlist: bool | None = None
    #: `torch.serialization.safe_globals(...)`, the context manager, exists.
    safe_globals_context: bool | None = None
    #: `add_safe_globals([(obj, "module.name")])` is understood.
    tuple_form: bool | None = None
    #: `torch.load(f)` without `weights_only` means `weights_only=True`.
    weights_only_default: bool | None = None
    #: `torch.load(weights_only=True)` refuses a TorchScript archive.
    torchscript_refused: bool | None = None
    #: An allowlisted object is keyed by `__module__.__qualname__` (else `__name__`).
    qualname_keys: bool | None = None
    #: Which pickles get the python-2 name mapping.
    py2_names: Py2Names | None = None
    #: BUILD accepts default-allowed types (else: user-allowlisted ones only).
    build_default_allowed: bool | None = None
    #: NEWOBJ accepts default-allowed types (else: user-allowlisted ones only).
    newobj_default_allowed: bool | None = None
    #: APPEND(S) to an allowlisted list subclass works (else: plain lists only).
    list_subclass_appends: bool | None = None
    #: Empty when these are this torch's own rules (the table's for its release, or read
    #: from it); else the sentence every scan judged by them says: where they come from
    #: and why they only approximate this torch (`torch_table.resolve`, `torch_reader`).
    #: Not a rule: equal rules are equal whatever their provenance, and JSON leaves it out.
    provenance: str = field(default="", compare=False)

    @property
    def release(self) -> releases.Release:
        """(major, minor) of this torch."""
        return releases.release_of(self.version)

    @property
    def has_user_allowlist(self) -> bool:
        """`torch.serialization.add_safe_globals` exists."""
        if self.user_allowlist is not None:
            return self.user_allowlist
        return self.release >= releases.USER_ALLOWLIST

    @property
    def has_tuple_form(self) -> bool:
        """`add_safe_globals([(obj, "module.name")])` is understood."""
        if self.tuple_form is not None:
            return self.tuple_form
        return self.release >= releases.TUPLE_FORM

    @property
    def default_weights_only(self) -> bool:
        """`torch.load` defaults to `weights_only=True`."""
        if self.weights_only_default is not None:
            return self.weights_only_default
        return self.release >= releases.WEIGHTS_ONLY_DEFAULT

    @property
    def refuses_torchscript(self) -> bool:
        """`torch.load(weights_only=True)` refuses a TorchScript archive."""
        if self.torchscript_refused is not None:
            return self.torchscript_refused
        return self.release >= releases.TORCHSCRIPT_REFUSED

    @property
    def uses_qualname_keys(self) -> bool:
        """`add_safe_globals([obj])` keys `obj` by `__qualname__` (else `__name__`)."""
        if self.qualname_keys is not None:
            return self.qualname_keys
        return self.release >= releases.QUALNAME_KEYS

    @property
    def py2_name_mapping(self) -> Py2Names:
        """Which pickles get the python-2 name mapping."""
        if self.py2_names is not None:
            return self.py2_names
        return releases.py2_names(self.release)

    def constructs_default_allowed(self, kind: Kind) -> bool:
        """BUILD (`kind="build"`) or NEWOBJ accepts a default-allowed type."""
        value = self.build_default_allowed if kind == "build" else self.newobj_default_allowed
        if value is not None:
            return value
        return self.release >= releases.BUILD_DEFAULT_ALLOWED

    @property
    def appends_to_list_subclasses(self) -> bool:
        """APPEND(S) to an allowlisted list subclass works."""
        if self.list_subclass_appends is not None:
            return self.list_subclass_appends
        return self.release == releases.LIST_SUBCLASS_APPENDS

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON (behaviours resolved): the rules table's and the cache's shape."""
        return {
            "version": self.version,
            "default_allowed": sorted(self.default_allowed),
            "blocklisted_modules": sorted(self.blocklisted_modules),
            "supported_opcodes": sorted(self.supported_opcodes),
            "name_mapping": sorted([list(k), list(v)] for k, v in self.name_mapping.items()),
            "import_mapping": dict(sorted(self.import_mapping.items())),
            "preregistered": sorted(self.preregistered),
            "setitem_restricted": self.setitem_restricted,
            "behaviours": self.behaviours(),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> TorchRules:
        """The rules `to_json` wrote (the table's entries have the same fields)."""
        return cls(
            version=str(doc["version"]),
            default_allowed=frozenset(doc["default_allowed"]),
            blocklisted_modules=frozenset(doc["blocklisted_modules"]),
            supported_opcodes=frozenset(doc["supported_opcodes"]),
            name_mapping={(a[0], a[1]): (b[0], b[1]) for a, b in doc["name_mapping"]},
            import_mapping=dict(doc["import_mapping"]),
            preregistered=frozenset(doc["preregistered"]),
            setitem_restricted=bool(doc["setitem_restricted"]),
            **doc["behaviours"],
        )

    def behaviours(self) -> dict[str, object]:
        """Every behaviour field as this torch has it (constants where not set)."""
        return {
            "user_allowlist": self.has_user_allowlist,
            "safe_globals_context": (
                self.safe_globals_context
                if self.safe_globals_context is not None
                else self.release >= releases.SAFE_GLOBALS_CONTEXT
            ),
            "tuple_form": self.has_tuple_form,
            "weights_only_default": self.default_weights_only,
            "torchscript_refused": self.refuses_torchscript,
            "qualname_keys": self.uses_qualname_keys,
            "py2_names": self.py2_name_mapping,
            "build_default_allowed": self.constructs_default_allowed("build"),
            "newobj_default_allowed": self.constructs_default_allowed("newobj"),
            "list_subclass_appends": self.appends_to_list_subclasses,
        }

    @classmethod
    def from_installed(cls) -> TorchRules:
        """Read the rules of the torch installed in this environment."""
        import torch
        from torch import _utils as tu
        from torch import _weights_only_unpickler as wou

        unpickler = getattr(wou, "Unpickler", None)
        user = getattr(wou, "_get_user_allowed_globals", None)
        # The behaviours that are code: the two helpers are looked up, the
        # rest follow the release constants (the offline table measures them
        # all, and tests/scan/test_torch_table.py checks the two agree).
        known = cls(str(torch.__version__), frozenset()).behaviours()
        known["user_allowlist"] = hasattr(torch.serialization, "add_safe_globals")
        known["safe_globals_context"] = hasattr(torch.serialization, "safe_globals")
        return cls(
            **known,  # type: ignore[arg-type]
            version=torch.__version__,
            default_allowed=frozenset(wou._get_allowed_globals()),
            blocklisted_modules=frozenset(getattr(wou, "_blocklisted_modules", ())),
            supported_opcodes=_supported_opcodes(wou),
            name_mapping=dict(getattr(tu, "NAME_MAPPING", {})),
            import_mapping=dict(getattr(tu, "IMPORT_MAPPING", {})),
            preregistered=frozenset(user()) if user else frozenset(),
            # 2.10 restricted SETITEM(S) targets; feature-detect it.
            setitem_restricted=hasattr(unpickler, "_check_set_item_target"),
        )

    def mapped_name(self, module: str, attr: str, protocol: int) -> str:
        """The key torch looks up for a GLOBAL, after its python-2 name mapping."""
        mapping = self.py2_name_mapping
        if mapping == "every" or (mapping == "protocol-2" and protocol == 2):
            if (module, attr) in self.name_mapping:
                module, attr = self.name_mapping[(module, attr)]
            elif module in self.import_mapping:
                module = self.import_mapping[module]
        return f"{module}.{attr}"

    def status(self, key: str, user_keys: frozenset[str]) -> Status:
        """The status (allowed / allowed-user / blocked) of one mapped name."""
        if key in self.default_allowed:
            return "allowed"
        if self.has_user_allowlist and (key in user_keys or key in self.preregistered):
            return "allowed-user"
        return "blocked"

    def judge(
        self,
        facts: PickleFacts,
        user_keys: frozenset[str] = frozenset(),
        user_types: frozenset[str] = frozenset(),
        missing: dict[str, str] | None = None,
    ) -> Verdict:
        """The verdict of this torch on `facts`, with `user_keys` allowlisted.

        `user_keys` are the names torch matches GLOBALs against; `user_types`
        the `module.qualname` of the allowlisted objects themselves, which is
        what BUILD and NEWOBJ compare (by identity, not by name). `missing`
        maps entries that name nothing in this environment to the reason; a
        blocked global listed there is reported `missing`.
        """
        missing = missing or {}
        type_keys = user_keys | user_types
        requirements: list[Requirement] = []
        obstacles: list[Obstacle] = []
        global_status: dict[str, Status] = {}

        for ref in sorted(facts.globals.values(), key=lambda r: r.first_offset):
            key = self.mapped_name(ref.module, ref.attr, facts.protocol)
            status = self.status(key, user_keys)
            fixable, note = self.has_user_allowlist, ""
            if ref.module in self.blocklisted_modules:
                status, fixable = "blocked", False
                note = f"torch blocks every global of module {ref.module!r}"
            elif ref.module == "copyreg.extension":
                status, fixable = "blocked", False
                note = "EXT code: resolved by the reader's copyreg registry, not named in the file"
            elif ref.module == DYNAMIC_GLOBAL:
                status, fixable = "blocked", False
                note = "STACK_GLOBAL of values computed while loading: no allowlist names it"
            elif status == "blocked" and key in _NEEDS_IMPORT:
                note = f"allowed once `import {_NEEDS_IMPORT[key]}` has run"
            elif status == "blocked" and ref.name in missing:
                status, note = "missing", missing[ref.name]
            elif "." in ref.attr:
                note = why_dangerous(ref.module, ref.attr)
            dangerous = is_dangerous_global(ref.module, ref.attr, key)
            if dangerous and status == "allowed-user":
                # torch would call it: a file naming it is never called loadable.
                status, fixable, note = "blocked", False, _ALLOWLISTED_DANGER
            global_status[ref.name] = status
            requirements.append(
                Requirement(
                    ref.name,
                    "global",
                    status,
                    dangerous,
                    ref.count,
                    fixable,
                    note,
                    key if key != ref.name else "",
                )
            )

        for type_name, count in facts.builds.items():
            if type_name in _ALWAYS_BUILDABLE:
                continue
            if type_name.startswith("<class or function "):
                # Setting attributes on a class or function rewrites code that
                # every later load (of anything) runs.
                requirements.append(
                    Requirement(
                        f"BUILD on {type_name}", "build", "blocked", True, count, False,
                        "sets attributes of a class or function: it rewrites code others run",
                    )
                )  # fmt: skip
                continue
            if type_name.startswith("<"):
                obstacles.append(
                    Obstacle("build-target", f"BUILD on {type_name} ({count}x): torch refuses it")
                )
                continue
            requirements.extend(
                self._constructed(type_name, "build", count, type_keys, global_status)
            )
        for type_name, count in facts.forged_dtypes.items():
            requirements.append(
                Requirement(
                    f"numpy dtype state hiding objects ({type_name})", "build", "blocked", True,
                    count, False, _FORGED_DTYPE,
                )
            )  # fmt: skip
        for (op, func), count in facts.calls.items():
            if func is None:
                obstacles.append(
                    Obstacle("call-target", f"{op} of a value that is not a global ({count}x)")
                )
            elif op == "NEWOBJ" and func != "torch.nn.parameter.Parameter":
                requirements.extend(
                    self._constructed(func, "newobj", count, type_keys, global_status)
                )

        for target, count in facts.setitems.items():
            if target in _TENSOR_TYPES or target.startswith("torch.storage."):
                requirements.append(
                    Requirement(
                        f"SETITEM on {target}", "setitem", "blocked", True, count, False,
                        _TENSOR_WRITE,
                    )
                )  # fmt: skip
        if self.setitem_restricted:
            for target, count in facts.setitems.items():
                if target not in _SETITEM_TARGETS:
                    obstacles.append(
                        Obstacle(
                            "setitem-target",
                            f"torch {self.version} only sets items on dict, OrderedDict and "
                            f"Counter, not {target} ({count}x); allowlisting does not help",
                        )
                    )
        for target, count in facts.appends.items():
            list_subclass_ok = (
                self.appends_to_list_subclasses and self.status(target, user_keys) == "allowed-user"
            )
            if not list_subclass_ok:
                obstacles.append(
                    Obstacle(
                        "append-target",
                        f"torch {self.version} appends only to plain lists, "
                        f"not {target} ({count}x)",
                    )
                )
        for kind, count in facts.persistent_ids.items():
            if kind != "storage":
                obstacles.append(
                    Obstacle(
                        "persistent-id",
                        f"persistent id {kind} ({count}x): torch only loads 'storage' ids",
                    )
                )
        for offset, missing_bytes in facts.short_frames:
            obstacles.append(
                Obstacle(
                    "malformed",
                    f"FRAME at byte {offset} declares {missing_bytes} more bytes than the pickle "
                    "has (pickle's pure-Python reader reads on regardless)",
                )
            )
        for code, offset in sorted(facts.opcodes.items(), key=lambda item: item[1]):
            if code not in self.supported_opcodes:
                opname = OPCODE_NAMES.get(code, f"0x{code:02x}")
                obstacles.append(
                    Obstacle(
                        "unsupported-opcode",
                        f"opcode {opname} (byte {offset}, pickle protocol {facts.protocol}) is not "
                        f"supported by torch {self.version}'s weights_only unpickler "
                        f"(`Unsupported operand {code}`); save with pickle protocol 2",
                    )
                )
        return Verdict(tuple(_dedupe(requirements)), tuple(obstacles))

    def _constructed(
        self,
        type_name: str,
        kind: Kind,
        count: int,
        user_keys: frozenset[str],
        global_status: dict[str, Status],
    ) -> list[Requirement]:
        """A type that BUILD or NEWOBJ checks: is it accepted by this torch?"""
        status = self.status(type_name, user_keys)
        if status == "allowed-user" and is_dangerous(type_name):
            return [
                Requirement(type_name, kind, "blocked", True, count, False, _ALLOWLISTED_DANGER)
            ]
        if status == "allowed-user" or (
            status == "allowed" and self.constructs_default_allowed(kind)
        ):
            return []
        if type_name in global_status and global_status[type_name] != "allowed":
            # Already reported as a blocked GLOBAL; allowlisting it fixes both (2.4+).
            return []
        if not self.has_user_allowlist:
            why = f"torch {self.version} can only {'build' if kind == 'build' else 'create'} "
            why += "tensors, Parameters and OrderedDicts; upgrade torch or save plain data"
            return [Requirement(type_name, kind, "blocked", False, count, False, why)]
        note = ""
        if status == "allowed":
            note = f"default-allowed, but torch {self.version} only {kind}s user-allowlisted types"
        elif is_numpy_dtype_class(type_name):
            note = "the numpy dtype class: checked at BUILD, never written as a GLOBAL"
        return [Requirement(type_name, kind, "blocked", is_dangerous(type_name), count, True, note)]


_TENSOR_TYPES = frozenset({"torch.Tensor", "torch.nn.parameter.Parameter"})
_TENSOR_WRITE = (
    "writes into a tensor or storage while loading: torch < 2.10 does it, and a file whose "
    "tensor claims more elements than its storage holds writes past it (CVE-2026-24747); "
    "torch.save never writes this"
)
_FORGED_DTYPE = (
    "an object, structured or subarray dtype whose flags deny holding objects: numpy trusts "
    "the flags, so a hidden object field is read as pointers from the file's bytes (a crash, or "
    "code execution); numpy writes such flags only for structured data without objects, which "
    "the scan cannot tell apart"
)
_ALLOWLISTED_DANGER = (
    "allowlisted, but it can run code: torch would call it, so the file is never called loadable"
)


def _dedupe(requirements: list[Requirement]) -> list[Requirement]:
    seen: dict[str, Requirement] = {}
    for req in requirements:
        if req.name not in seen:
            seen[req.name] = req
    return list(seen.values())


def _supported_opcodes(wou: object) -> frozenset[int]:
    # torch's unpickler imports exactly the opcodes it implements from `pickle`
    # (`from pickle import APPEND, ...`), so the module's namespace is its list.
    names = [n for n in OPCODE_NAMES.values() if isinstance(getattr(wou, n, None), bytes)]
    if len(names) < 20:  # a refactored torch: fall back to the known list
        names = _FALLBACK_OPCODE_NAMES
    import pickle

    return frozenset(getattr(pickle, n)[0] for n in names)
