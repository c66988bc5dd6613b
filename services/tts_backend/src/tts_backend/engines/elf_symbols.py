"""Addresses of symbols in an ELF64 shared library, read from its own symbol table.

Used to reach the few internal (non-exported) variables of eSpeak NG that keep
state between synthesis calls; the dynamic symbol table does not list them but
the full ``.symtab`` of an unstripped library does. Little-endian ELF64 only.
"""

from __future__ import annotations

import struct
from pathlib import Path

_SHT_SYMTAB = 2
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")


def read_symbols(path: str | Path) -> dict[str, int]:
    """Map symbol name -> value (offset from the load base) for every .symtab entry.

    Local static variables keep their compiler suffix (``Flutter_ix.5965``).
    Returns an empty dict for a stripped library or a file that is not ELF64 LE.
    """
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return {}
    section_offset = struct.unpack_from("<Q", data, 0x28)[0]
    entry_size, count = struct.unpack_from("<HH", data, 0x3A)
    sections = [
        _SECTION_HEADER.unpack_from(data, section_offset + i * entry_size) for i in range(count)
    ]
    symbols: dict[str, int] = {}
    for section in sections:
        _, kind, _, _, offset, size, link, _, _, sym_size = section
        if kind != _SHT_SYMTAB or sym_size == 0:
            continue
        strings_offset = sections[link][4]
        for start in range(offset, offset + size, sym_size):
            name_index, _, _, _, value, _ = _SYMBOL.unpack_from(data, start)
            if name_index == 0 or value == 0:
                continue
            end = data.index(b"\x00", strings_offset + name_index)
            symbols[data[strings_offset + name_index : end].decode(errors="replace")] = value
    return symbols


def find_symbol(symbols: dict[str, int], name: str) -> int | None:
    """Value of ``name`` or of a local static ``name.<n>``; None when absent or ambiguous."""
    if name in symbols:
        return symbols[name]
    matches = [value for key, value in symbols.items() if key.startswith(name + ".")]
    return matches[0] if len(matches) == 1 else None
