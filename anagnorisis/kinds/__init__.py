from anagnorisis.kinds.registry import (
    MediaError, MediaKind, Probe, all_kinds, find_kind, get_kind, kind_names, kind_of_extension, register, unregister,
)

__all__ = ["MediaError", "MediaKind", "Probe", "all_kinds", "find_kind", "get_kind", "kind_names", "kind_of_extension",
           "register", "unregister"]
