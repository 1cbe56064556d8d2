"""The symbolic machine on every protocol and on the opcodes torch.save never writes.

Expected globals are computed independently with `pickletools` (a real
STACK_GLOBAL resolution through the memo), never with our own code.
"""

from __future__ import annotations

import argparse
import collections
import copyreg
import pathlib
import pickle
import pickletools

import pytest

from pytest_ckptcompat.errors import PickleFormatError
from pytest_ckptcompat.scan.machine import analyze


class Plain:
    def __init__(self) -> None:
        self.x = 1


def reference_globals(data: bytes) -> set[str]:
    """GLOBAL/INST names and STACK_GLOBAL pairs resolved through the memo, by pickletools."""
    names, memo, recent = set(), {}, []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            names.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            names.add(f"{recent[-2]}.{recent[-1]}")
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            recent.append(arg)
        elif op.name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = recent[-1] if recent else None
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            recent.append(memo.get(arg))
    return names


OBJECTS = {
    "namespace": argparse.Namespace(p=pathlib.PurePosixPath("/x"), n=3),
    "containers": {"d": collections.defaultdict(list), "c": collections.Counter("ab"), "s": {1}},
    "plain": [Plain(), Plain()],
    "bytes": [b"x" * 300, bytearray(b"ab"), 2**3000, 1.5, "é" * 300],
}


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_every_protocol_finds_every_global(name, protocol):
    data = pickle.dumps(OBJECTS[name], protocol=protocol)
    facts = analyze(data)
    assert facts.end == len(data)
    assert set(facts.globals) == reference_globals(data)
    if protocol >= 2:
        assert facts.protocol == protocol


def test_stack_global_through_the_memo_is_resolved():
    # protocol 4: module and name strings are memoized, then re-used via BINGET
    data = pickle.dumps([Plain(), Plain(), pathlib.PurePosixPath("/a")], protocol=4)
    facts = analyze(data)
    assert {"test_machine.Plain", "pathlib.PurePosixPath"} <= set(facts.globals)
    assert facts.globals["test_machine.Plain"].opcodes == {"STACK_GLOBAL"}


def test_hand_built_stack_global_from_memo_strings():
    # '\x8c os \x94 \x8c system \x94 h0 h1 \x93' : both names only reached through the memo
    data = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x30\x30h\x00h\x01\x93\x8c\x04echo\x85R."
    facts = analyze(data)
    assert set(facts.globals) == {"os.system"}
    assert ("REDUCE", "os.system") in facts.calls


@pytest.mark.parametrize(
    ("data", "opcode", "call"),
    [
        # Python 2's old-style instances: MARK args INST module name
        (b"(I1\nisubprocess\nPopen\n.", "INST", "INST"),
        # MARK cls args OBJ
        (b"(csubprocess\nPopen\nI1\no.", "GLOBAL", "OBJ"),
    ],
)
def test_inst_and_obj(data, opcode, call):
    assert reference_globals(data) == {"subprocess.Popen"}
    facts = analyze(data)
    assert facts.globals["subprocess.Popen"].opcodes == {opcode}
    assert facts.calls == {(call, "subprocess.Popen"): 1}


def test_ext_codes_are_named_by_code():
    copyreg.add_extension("test_machine", "Plain", 0xABCD)
    try:
        data = pickle.dumps(Plain(), protocol=2)
    finally:
        copyreg.remove_extension("test_machine", "Plain", 0xABCD)
    facts = analyze(data)
    assert "copyreg.extension.43981" in facts.globals
    assert facts.ext_codes == {0xABCD}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"\x80\x02]q\x00(K\x01", "truncated"),
        (b"\x80\x02X\xff\xff\xff\x7fabc", "truncated"),
        (b"\x80\x02h\x05.", "memo key 5"),
        (b"\x80\x02e.", "no MARK"),
        (b"\x80\x02\xff.", "invalid pickle opcode 0xff"),
        (b"\x80\x02\x8d" + (2**63).to_bytes(8, "little") + b"x.", "truncated"),
    ],
)
def test_malformed_input_raises_its_own_error(data, message):
    with pytest.raises(PickleFormatError, match=message):
        analyze(data)


def test_deep_nesting_needs_no_recursion():
    data = b"\x80\x02" + b"(" * 100_000 + b"t" * 100_000 + b"."
    facts = analyze(data)
    assert facts.end == len(data)
