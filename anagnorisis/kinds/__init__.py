from anagnorisis.kinds.registry import MediaError, MediaKind, Probe, all_kinds, get_kind, kind_names, kind_of_extension, register

__all__ = ["MediaError", "MediaKind", "Probe", "all_kinds", "get_kind", "kind_names", "kind_of_extension", "register"]
