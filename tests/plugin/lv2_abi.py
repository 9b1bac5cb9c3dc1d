"""The LV2 C ABI the headless host (tests/plugin/lv2_host.py) speaks through ctypes:
the structures of lv2.h, urid.h, options.h, worker.h and state.h, lilv's
instance, and the liblilv functions the host calls.
"""

from __future__ import annotations

import ctypes as C


class HostError(RuntimeError):
    """The plugin could not be found, loaded or instantiated."""


class Feature(C.Structure):
    _fields_ = [("URI", C.c_char_p), ("data", C.c_void_p)]


MAP_FN = C.CFUNCTYPE(C.c_uint32, C.c_void_p, C.c_char_p)
WORK_SCHEDULE_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_uint32, C.c_void_p)
WORK_RESPOND_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_uint32, C.c_void_p)
STORE_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_uint32, C.c_void_p, C.c_size_t, C.c_uint32,
                       C.c_uint32)
RETRIEVE_FN = C.CFUNCTYPE(C.c_void_p, C.c_void_p, C.c_uint32, C.POINTER(C.c_size_t),
                          C.POINTER(C.c_uint32), C.POINTER(C.c_uint32))


class UridMap(C.Structure):
    _fields_ = [("handle", C.c_void_p), ("map", MAP_FN)]


class WorkerSchedule(C.Structure):
    _fields_ = [("handle", C.c_void_p), ("schedule_work", WORK_SCHEDULE_FN)]


class Option(C.Structure):
    _fields_ = [("context", C.c_uint32), ("subject", C.c_uint32), ("key", C.c_uint32),
                ("size", C.c_uint32), ("type", C.c_uint32), ("value", C.c_void_p)]


RUN_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_uint32)
HANDLE_FN = C.CFUNCTYPE(None, C.c_void_p)
CONNECT_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_uint32, C.c_void_p)
EXTENSION_FN = C.CFUNCTYPE(C.c_void_p, C.c_char_p)


class Descriptor(C.Structure):
    _fields_ = [("URI", C.c_char_p), ("instantiate", C.c_void_p), ("connect_port", CONNECT_FN),
                ("activate", HANDLE_FN), ("run", RUN_FN), ("deactivate", HANDLE_FN),
                ("cleanup", HANDLE_FN), ("extension_data", EXTENSION_FN)]


class LilvInstance(C.Structure):
    _fields_ = [("descriptor", C.POINTER(Descriptor)), ("handle", C.c_void_p),
                ("pimpl", C.c_void_p)]


class WorkerInterface(C.Structure):
    _fields_ = [("work", C.CFUNCTYPE(C.c_int, C.c_void_p, WORK_RESPOND_FN, C.c_void_p,
                                     C.c_uint32, C.c_void_p)),
                ("work_response", C.c_void_p), ("end_run", C.c_void_p)]


class StateInterface(C.Structure):
    _fields_ = [("save", C.CFUNCTYPE(C.c_int, C.c_void_p, STORE_FN, C.c_void_p, C.c_uint32,
                                     C.c_void_p)),
                ("restore", C.CFUNCTYPE(C.c_int, C.c_void_p, RETRIEVE_FN, C.c_void_p,
                                        C.c_uint32, C.c_void_p))]


def lilv() -> C.CDLL:
    """liblilv, its functions typed."""
    try:
        lib = C.CDLL("liblilv-0.so.0")
    except OSError as err:
        raise HostError("liblilv-0.so.0 not found (apt-get install liblilv-0-0)") from err
    lib.lilv_world_new.restype = C.c_void_p
    lib.lilv_new_file_uri.restype = C.c_void_p
    lib.lilv_new_file_uri.argtypes = [C.c_void_p, C.c_char_p, C.c_char_p]
    lib.lilv_new_uri.restype = C.c_void_p
    lib.lilv_new_uri.argtypes = [C.c_void_p, C.c_char_p]
    lib.lilv_world_load_bundle.argtypes = [C.c_void_p, C.c_void_p]
    lib.lilv_world_get_all_plugins.restype = C.c_void_p
    lib.lilv_world_get_all_plugins.argtypes = [C.c_void_p]
    lib.lilv_plugins_get_by_uri.restype = C.c_void_p
    lib.lilv_plugins_get_by_uri.argtypes = [C.c_void_p, C.c_void_p]
    lib.lilv_plugin_get_num_ports.restype = C.c_uint32
    lib.lilv_plugin_get_num_ports.argtypes = [C.c_void_p]
    lib.lilv_plugin_get_port_by_index.restype = C.c_void_p
    lib.lilv_plugin_get_port_by_index.argtypes = [C.c_void_p, C.c_uint32]
    lib.lilv_port_get_symbol.restype = C.c_void_p
    lib.lilv_port_get_symbol.argtypes = [C.c_void_p, C.c_void_p]
    lib.lilv_node_as_string.restype = C.c_char_p
    lib.lilv_node_as_string.argtypes = [C.c_void_p]
    lib.lilv_plugin_get_port_ranges_float.argtypes = [
        C.c_void_p, C.POINTER(C.c_float), C.POINTER(C.c_float), C.POINTER(C.c_float)]
    lib.lilv_plugin_instantiate.restype = C.POINTER(LilvInstance)
    lib.lilv_plugin_instantiate.argtypes = [C.c_void_p, C.c_double, C.POINTER(C.POINTER(Feature))]
    lib.lilv_instance_free.argtypes = [C.POINTER(LilvInstance)]
    return lib
