"""read_mined: reads the rows that `engine mine` (and ``Index.mine(output=...)``) write, JSON lines or the binary
container (`--format binary`, docs/mining.md), with every checksum of the container verified."""

import json
import os
import struct

import numpy as np

from . import _validate as v
from ._native import CorruptFileError  # noqa: F401 (raised here, exported by the package)

MAGIC = b"ENGNIDX\0"
KIND = "mined-negatives"
ALIGN = 64
METRICS = {0: "l2", 1: "ip", 2: "cosine"}


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data, state=0xFFFFFFFF):
    """Running CRC-32C (Castagnoli) state over ``data``; finish with ``^ 0xFFFFFFFF``."""
    table = _TABLE
    for b in data:
        state = table[(state ^ b) & 0xFF] ^ (state >> 8)
    return state


def read_mined(path, verify=True):
    """Rows of a mining output file: a dict with ``anchor`` (int64 array), ``positives``, ``positive_scores``,
    ``negatives``, ``scores`` (lists of arrays, one per row) and ``report`` (dict, or None for JSON lines, whose report
    is the ``.report.json`` / manifest beside it); for the binary container also ``header`` (index description,
    metric, dimension). ``verify=False`` skips the CRC-32C checks (pure Python: about a few MB/s)."""
    raw_path = v.path(path)
    with open(raw_path, "rb") as f:
        data = f.read()
    if data.startswith(MAGIC):
        return _read_binary(raw_path, data, verify)
    rows = {"anchor": [], "positives": [], "positive_scores": [], "negatives": [], "scores": []}
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            rows["anchor"].append(int(obj["anchor"]))
            rows["positives"].append(np.asarray(obj["positives"], dtype=np.int64))
            rows["positive_scores"].append(np.asarray(obj.get("positive_scores", []), dtype=np.float32))
            rows["negatives"].append(np.asarray(obj["negatives"], dtype=np.int64))
            rows["scores"].append(np.asarray(obj["scores"], dtype=np.float32))
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptFileError(raw_path, f"line {number} is not a mined row ({e})") from None
    rows["anchor"] = np.asarray(rows["anchor"], dtype=np.int64)
    rows["report"] = None
    return rows


def _read_binary(path, data, verify):
    pos = 0

    def take(n, what):
        nonlocal pos
        if pos + n > len(data):
            raise CorruptFileError(path, f"truncated {what} at offset {pos}")
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    take(8, "magic")
    (version,) = struct.unpack("<I", take(4, "header"))
    if version not in (1, 2):
        raise CorruptFileError(path, f"format version {version}; this reader knows 1 and 2")
    (n,) = struct.unpack("<H", take(2, "header"))
    kind = take(n, "header").decode("utf-8", "replace")
    (n,) = struct.unpack("<H", take(2, "header"))
    description = take(n, "header").decode("utf-8", "replace")
    metric, dimension, _count = struct.unpack("<Biq", take(13, "header"))
    header_end = pos
    (crc,) = struct.unpack("<I", take(4, "header"))
    if verify and crc32c(data[:header_end]) ^ 0xFFFFFFFF != crc:
        raise CorruptFileError(path, "header checksum mismatch")
    if kind != KIND:
        raise CorruptFileError(path, f"holds a '{kind}' file, not '{KIND}'")
    section_crcs = bytearray()

    def section(tag):
        nonlocal pos
        start = pos
        got = take(4, "section head")
        if got != tag.encode("ascii"):
            raise CorruptFileError(path, f"expected section '{tag}' at offset {start}, found {got!r}")
        (length,) = struct.unpack("<Q", take(8, "section head"))
        pad = (-pos) % ALIGN if version >= 2 else 0
        body_start = pos
        take(pad, "section padding")
        payload = take(length, f"section '{tag}'")
        (crc,) = struct.unpack("<I", take(4, "section checksum"))
        if verify and crc32c(data[body_start:body_start + pad + length]) ^ 0xFFFFFFFF != crc:
            raise CorruptFileError(path, f"section '{tag}' at offset {start}: checksum mismatch")
        section_crcs.extend(struct.pack("<I", crc))
        return payload

    rows = {"anchor": [], "positives": [], "positive_scores": [], "negatives": [], "scores": []}
    while True:
        p = section("ROWS")
        if len(p) < 4:
            raise CorruptFileError(path, "ROWS section shorter than its row count")
        (count,) = struct.unpack_from("<i", p, 0)
        if count == 0:
            break
        off = 4
        for _ in range(count):
            if off + 16 > len(p):
                raise CorruptFileError(path, "ROWS section is shorter than its rows")
            anchor, n_pos, n_neg = struct.unpack_from("<qii", p, off)
            off += 16
            if n_pos < 0 or n_neg < 0 or off + 12 * (n_pos + n_neg) > len(p):
                raise CorruptFileError(path, "ROWS section is shorter than its rows")
            rows["anchor"].append(anchor)
            for key, dtype, count_ in (("positives", "<i8", n_pos), ("positive_scores", "<f4", n_pos),
                                       ("negatives", "<i8", n_neg), ("scores", "<f4", n_neg)):
                arr = np.frombuffer(p, dtype=dtype, count=count_, offset=off).astype(dtype[1:], copy=True)
                rows[key].append(arr)
                off += arr.nbytes
        if off != len(p):
            raise CorruptFileError(path, "ROWS section has trailing bytes")
    report = json.loads(section("REPT").decode("utf-8"))
    end = take(16, "trailer")
    tag, zero, crc = end[:4], struct.unpack_from("<Q", end, 4)[0], struct.unpack_from("<I", end, 12)[0]
    if tag != b"END\0" or zero != 0 or (verify and crc32c(bytes(section_crcs)) ^ 0xFFFFFFFF != crc):
        raise CorruptFileError(path, "trailer checksum mismatch")
    if pos != len(data):
        raise CorruptFileError(path, f"unexpected bytes after the trailer at offset {pos}")
    rows["anchor"] = np.asarray(rows["anchor"], dtype=np.int64)
    rows["report"] = report
    rows["header"] = {"description": description, "metric": METRICS.get(metric, metric), "dimension": dimension}
    return rows
