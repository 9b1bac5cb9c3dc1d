"""The built bundles: lv2_validate on the LV2 one, and the VST3 module's
entry, factory and the class it offers (processing through VST3:
test_plugin_vst3.py).
"""

from __future__ import annotations

import ctypes as C
import shutil
import subprocess

import pytest

from tests.plugin.lv2_host import BUNDLE, PLUGIN_DIR, require_built

pytestmark = pytest.mark.plugin

VST3_BINARY = PLUGIN_DIR / "cadenza.vst3" / "Contents" / "x86_64-linux" / "cadenza.so"
# DPF writes MOD's brand and label properties into every plugin's TTL; MOD's
# vocabulary is not installed here, so lv2_validate calls them undefined.
MOD = "http://moddevices.com/ns/mod#"


def _errors(output: str) -> list[str]:
    """lv2_validate's messages: 'error:' or 'warning:' and the lines indented under it."""
    messages: list[str] = []
    for line in output.splitlines():
        if line.startswith(("error:", "warning:")):
            messages.append(line)
        elif line.startswith(" ") and messages:
            messages[-1] += "\n" + line
    return messages


def test_lv2_validate_finds_nothing_but_dpfs_mod_properties():
    require_built(BUNDLE / "manifest.ttl")
    if shutil.which("lv2_validate") is None or shutil.which("sord_validate") is None:
        pytest.skip("lv2_validate not installed (apt-get install lv2-dev sordi)")
    ttl = sorted(str(p) for p in BUNDLE.glob("*.ttl"))
    done = subprocess.run(["lv2_validate", *ttl], capture_output=True, text=True, timeout=120)
    messages = _errors(done.stdout + done.stderr)
    known = [m for m in messages if MOD + "brand" in m or MOD + "label" in m]
    assert len(known) == 4, messages  # mod:brand and mod:label: each undefined, each unlabelled
    assert [m for m in messages if m not in known] == []


class _ClassInfo(C.Structure):
    _fields_ = [("class_id", C.c_uint8 * 16), ("cardinality", C.c_int32),
                ("category", C.c_char * 32), ("name", C.c_char * 64)]


def test_the_vst3_module_loads_and_offers_cadenza():
    require_built(VST3_BINARY)
    module = C.CDLL(str(VST3_BINARY))
    module.ModuleEntry.argtypes = [C.c_void_p]
    module.ModuleEntry.restype = C.c_bool
    module.GetPluginFactory.restype = C.c_void_p
    assert module.ModuleEntry(None)
    try:
        factory = module.GetPluginFactory()
        assert factory
        vtable = C.cast(C.cast(factory, C.POINTER(C.c_void_p))[0], C.POINTER(C.c_void_p))
        # IPluginFactory after FUnknown's three: get_factory_info, num_classes, get_class_info.
        num_classes = C.CFUNCTYPE(C.c_int32, C.c_void_p)(vtable[4])
        get_class_info = C.CFUNCTYPE(C.c_int32, C.c_void_p, C.c_int32,
                                     C.POINTER(_ClassInfo))(vtable[5])
        names = []
        for index in range(num_classes(factory)):
            info = _ClassInfo()
            assert get_class_info(factory, index, C.byref(info)) == 0
            names.append((info.category.decode(), info.name.decode()))
        assert ("Audio Module Class", "Cadenza") in names
    finally:
        module.ModuleExit()
