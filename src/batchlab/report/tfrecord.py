"""TFRecord framing, CRC-32C and the protobuf wire format, by hand (no tensorflow/tensorboard).

A TFRecord file is a sequence of records::

    uint64 length | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)

(little endian). CRC-32C is the Castagnoli polynomial; TensorFlow "masks" it by rotating right
15 bits and adding 0xa282ead8. The CRC is computed with a 256-entry table, vectorised with
numpy *across records*: records of one length advance in lockstep one byte per numpy step, so a
million small events cost a few dozen array operations per distinct length instead of a Python
loop over every byte.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected
_MASK_DELTA = 0xA282EAD8


def _make_table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(_POLY), t >> 1).astype(np.uint32)
    return t


TABLE = _make_table()


def crc32c_many(chunks: Sequence[bytes]) -> list[int]:
    """CRC-32C of every chunk. Chunks of equal length are processed together, a byte column
    at a time."""
    out = [0] * len(chunks)
    by_len: dict[int, list[int]] = {}
    for i, c in enumerate(chunks):
        by_len.setdefault(len(c), []).append(i)
    for length, idx in by_len.items():
        crc = np.full(len(idx), 0xFFFFFFFF, dtype=np.uint32)
        if length:
            data = np.frombuffer(b"".join(chunks[i] for i in idx), dtype=np.uint8).reshape(len(idx), length)
            for col in range(length):
                crc = TABLE[(crc ^ data[:, col]) & 0xFF] ^ (crc >> 8)
        for i, v in zip(idx, (crc ^ np.uint32(0xFFFFFFFF)).tolist(), strict=True):
            out[i] = v
    return out


def crc32c(data: bytes) -> int:
    """CRC-32C of one chunk (check value: crc32c(b'123456789') == 0xE3069283)."""
    return crc32c_many([data])[0]


def mask(crc: int) -> int:
    """TensorFlow's masked CRC: rotate right by 15 bits, add a constant (mod 2**32)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def frame_records(records: Sequence[bytes]) -> bytes:
    """The TFRecord file content holding ``records`` in order."""
    heads = [struct.pack("<Q", len(r)) for r in records]
    crcs = crc32c_many([*heads, *records])
    n = len(records)
    parts = []
    for i, (head, rec) in enumerate(zip(heads, records, strict=True)):
        parts += [head, struct.pack("<I", mask(crcs[i])), rec, struct.pack("<I", mask(crcs[n + i]))]
    return b"".join(parts)


class CorruptRecord(ValueError):
    """A record whose length or data does not match its masked CRC, or a truncated file."""


def read_records(path: Path) -> list[bytes]:
    """Every record of a TFRecord file, after checking both CRCs of each (CorruptRecord)."""
    blob = path.read_bytes()
    pos, heads, recs, stored = 0, [], [], []
    while pos < len(blob):
        if pos + 12 > len(blob):
            raise CorruptRecord(f"{path}: truncated record header at byte {pos}")
        head = blob[pos:pos + 8]
        (length,) = struct.unpack("<Q", head)
        (hcrc,) = struct.unpack("<I", blob[pos + 8:pos + 12])
        end = pos + 12 + length + 4
        if end > len(blob):
            raise CorruptRecord(f"{path}: truncated record at byte {pos}")
        heads.append(head)
        recs.append(blob[pos + 12:pos + 12 + length])
        (dcrc,) = struct.unpack("<I", blob[end - 4:end])
        stored.append((hcrc, dcrc))
        pos = end
    crcs = crc32c_many([*heads, *recs])
    for i, (hcrc, dcrc) in enumerate(stored):
        if mask(crcs[i]) != hcrc or mask(crcs[len(recs) + i]) != dcrc:
            raise CorruptRecord(f"{path}: CRC mismatch in record {i}")
    return recs


# ----------------------------------------------------------------- protobuf wire format
VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5


def varint(value: int) -> bytes:
    """Base-128 varint; negative int64 values take ten bytes (two's complement), as protobuf."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(field: int, wire: int) -> bytes:
    return varint((field << 3) | wire)


def field_bytes(field: int, data: bytes) -> bytes:
    """A length-delimited field: strings, bytes and nested messages."""
    return key(field, BYTES) + varint(len(data)) + data


def field_varint(field: int, value: int) -> bytes:
    return key(field, VARINT) + varint(value)


def field_double(field: int, value: float) -> bytes:
    return key(field, FIXED64) + struct.pack("<d", value)


def parse(message: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field, wire type, value) of each field: ints for varints, raw bytes otherwise."""
    pos = 0
    while pos < len(message):
        tag, pos = _read_varint(message, pos)
        field, wire = tag >> 3, tag & 7
        if wire == VARINT:
            value, pos = _read_varint(message, pos)
            yield field, wire, value
        elif wire == FIXED64:
            yield field, wire, message[pos:pos + 8]
            pos += 8
        elif wire == FIXED32:
            yield field, wire, message[pos:pos + 4]
            pos += 4
        elif wire == BYTES:
            length, pos = _read_varint(message, pos)
            yield field, wire, message[pos:pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
