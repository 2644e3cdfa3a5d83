"""zipcraft — a byte-exact ZIP writer (and small reader) for hostile test archives.

Python's ``zipfile`` refuses to write most of what a code-signing gate has to
reject (duplicate names, lying sizes, overlapping entries, unknown flags, ...).
This module writes every record of a ZIP archive field by field so a test can
produce exactly the bytes it wants.

Two layers:

* Record functions — :func:`local_header`, :func:`central_header`,
  :func:`data_descriptor`, :func:`zip64_extra`, :func:`zip64_eocd`,
  :func:`zip64_locator`, :func:`eocd` — return the bytes of one record; every
  field is a keyword argument, and length fields (name, extra, comment) can be
  given explicitly to lie.
* :class:`Entry` + :func:`build` — describe entries at a high level (name, content,
  method, Unix mode, data descriptor, Zip64, ...), get a consistent archive by
  default, and override any single field of the local header (``local=``), the
  central entry (``central=``), the data descriptor (``descriptor_fields=``), the
  EOCD (``eocd=``) or the Zip64 records.  :func:`build` returns a :class:`Built`
  holding the bytes and the offset of every record, so a test can patch bytes
  after the fact.

:func:`parse` reads an archive back (EOCD found by the "file ends exactly at
EOCD + 22 + comment length" rule), giving the offsets of every record and the
field tables ``LOCAL_FIELDS``, ``CENTRAL_FIELDS``, ``EOCD_FIELDS`` so tamper
tests can locate and flip one named field.  :func:`with_comment` replaces the
EOCD comment and fixes the comment length.

Names are bytes (``str`` is encoded as UTF-8).  Nothing here validates anything.
"""

from __future__ import annotations

import stat
import struct
import zlib
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

LOCAL_SIG = 0x04034B50        # PK\3\4
CENTRAL_SIG = 0x02014B50      # PK\1\2
EOCD_SIG = 0x06054B50         # PK\5\6
ZIP64_EOCD_SIG = 0x06064B50   # PK\6\6
ZIP64_LOCATOR_SIG = 0x07064B50  # PK\6\7
DESCRIPTOR_SIG = 0x08074B50   # PK\7\8

STORED = 0
DEFLATED = 8

FLAG_ENCRYPTED = 0x0001
FLAG_DESCRIPTOR = 0x0008
FLAG_UTF8 = 0x0800

HOST_MSDOS = 0
HOST_UNIX = 3

ZIP64_EXTRA_ID = 0x0001
U32_MAX = 0xFFFFFFFF
U16_MAX = 0xFFFF

# DOS date 1980-01-01, time 00:00:00 — deterministic archives.
DEFAULT_DATE = (0 << 9) | (1 << 5) | 1
DEFAULT_TIME = 0

# (field name, offset from record start, size in bytes)
LOCAL_FIELDS = [
    ("signature", 0, 4), ("version", 4, 2), ("flags", 6, 2), ("method", 8, 2),
    ("mtime", 10, 2), ("mdate", 12, 2), ("crc", 14, 4), ("csize", 18, 4),
    ("usize", 22, 4), ("name_len", 26, 2), ("extra_len", 28, 2),
]
LOCAL_FIXED = 30

CENTRAL_FIELDS = [
    ("signature", 0, 4), ("made_by", 4, 2), ("version", 6, 2), ("flags", 8, 2),
    ("method", 10, 2), ("mtime", 12, 2), ("mdate", 14, 2), ("crc", 16, 4),
    ("csize", 20, 4), ("usize", 24, 4), ("name_len", 28, 2), ("extra_len", 30, 2),
    ("comment_len", 32, 2), ("disk", 34, 2), ("internal", 36, 2), ("external", 38, 4),
    ("offset", 42, 4),
]
CENTRAL_FIXED = 46

EOCD_FIELDS = [
    ("signature", 0, 4), ("disk", 4, 2), ("cd_disk", 6, 2), ("disk_entries", 8, 2),
    ("total_entries", 10, 2), ("cd_size", 12, 4), ("cd_offset", 16, 4),
    ("comment_len", 20, 2),
]
EOCD_FIXED = 22
ZIP64_EOCD_FIXED = 56
ZIP64_LOCATOR_SIZE = 20

BytesLike = Union[bytes, bytearray, str]


def as_bytes(name: BytesLike) -> bytes:
    """``str`` → UTF-8 bytes; bytes unchanged."""
    if isinstance(name, str):
        return name.encode("utf-8")
    return bytes(name)


# --------------------------------------------------------------------------
# compression helpers

def deflate(data: bytes, level: int = 6) -> bytes:
    """Raw deflate (no zlib header), as ZIP method 8 stores it."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def deflate_zeros(count: int, level: int = 9, chunk: int = 1 << 20) -> bytes:
    """Raw deflate of ``count`` zero bytes without holding them all in memory
    (a high-ratio "bomb" payload)."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    block = bytes(min(chunk, max(count, 1)))
    out = []
    left = count
    while left > 0:
        n = min(left, len(block))
        out.append(c.compress(block[:n]))
        left -= n
    out.append(c.flush())
    return b"".join(out)


def crc_zeros(count: int, chunk: int = 1 << 20) -> int:
    """CRC-32 of ``count`` zero bytes, computed in chunks."""
    crc = 0
    block = bytes(min(chunk, max(count, 1)))
    left = count
    while left > 0:
        n = min(left, len(block))
        crc = zlib.crc32(block[:n], crc)
        left -= n
    return crc


def inflate(data: bytes) -> bytes:
    """Raw inflate; raises zlib.error on a bad stream."""
    d = zlib.decompressobj(-15)
    out = d.decompress(data) + d.flush()
    return out


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def unix_external(mode: int) -> int:
    """External attributes for a Unix ``st_mode``: mode in the high 16 bits, and
    the MS-DOS directory bit (0x10) for directories."""
    attr = (mode & 0xFFFF) << 16
    if stat.S_ISDIR(mode):
        attr |= 0x10
    return attr


def version_made_by(host: int = HOST_UNIX, version: int = 30) -> int:
    """"version made by": host system in the high byte, spec version low."""
    return ((host & 0xFF) << 8) | (version & 0xFF)


# --------------------------------------------------------------------------
# record writers

def local_header(name: BytesLike, *, version: int = 20, flags: int = 0, method: int = STORED,
                 mtime: int = DEFAULT_TIME, mdate: int = DEFAULT_DATE, crc: int = 0,
                 csize: int = 0, usize: int = 0, extra: bytes = b"",
                 name_len: Optional[int] = None, extra_len: Optional[int] = None,
                 signature: int = LOCAL_SIG) -> bytes:
    """Local file header (30 bytes + name + extra)."""
    name = as_bytes(name)
    return struct.pack(
        "<IHHHHHIIIHH", signature, version, flags, method, mtime, mdate,
        crc & 0xFFFFFFFF, csize & 0xFFFFFFFF, usize & 0xFFFFFFFF,
        len(name) if name_len is None else name_len,
        len(extra) if extra_len is None else extra_len,
    ) + name + extra


def central_header(name: BytesLike, *, made_by: int = version_made_by(HOST_UNIX, 30), version: int = 20,
                   flags: int = 0, method: int = STORED, mtime: int = DEFAULT_TIME,
                   mdate: int = DEFAULT_DATE, crc: int = 0, csize: int = 0, usize: int = 0,
                   disk: int = 0, internal: int = 0, external: int = 0, offset: int = 0,
                   extra: bytes = b"", comment: bytes = b"",
                   name_len: Optional[int] = None, extra_len: Optional[int] = None,
                   comment_len: Optional[int] = None, signature: int = CENTRAL_SIG) -> bytes:
    """Central directory file header (46 bytes + name + extra + comment)."""
    name = as_bytes(name)
    return struct.pack(
        "<IHHHHHHIIIHHHHHII", signature, made_by, version, flags, method, mtime, mdate,
        crc & 0xFFFFFFFF, csize & 0xFFFFFFFF, usize & 0xFFFFFFFF,
        len(name) if name_len is None else name_len,
        len(extra) if extra_len is None else extra_len,
        len(comment) if comment_len is None else comment_len,
        disk, internal, external & 0xFFFFFFFF, offset & 0xFFFFFFFF,
    ) + name + extra + comment


def data_descriptor(crc: int, csize: int, usize: int, *, signature: bool = True,
                    zip64: bool = False, signature_value: int = DESCRIPTOR_SIG) -> bytes:
    """Data descriptor: [signature] crc csize usize (sizes 8 bytes when zip64)."""
    head = struct.pack("<I", signature_value) if signature else b""
    if zip64:
        return head + struct.pack("<IQQ", crc & 0xFFFFFFFF, csize, usize)
    return head + struct.pack("<III", crc & 0xFFFFFFFF, csize & 0xFFFFFFFF, usize & 0xFFFFFFFF)


def extra_field(header_id: int, data: bytes, size: Optional[int] = None) -> bytes:
    """One extra-field block: id, size, data (size may lie)."""
    return struct.pack("<HH", header_id, len(data) if size is None else size) + data


def zip64_extra(*, usize: Optional[int] = None, csize: Optional[int] = None,
                offset: Optional[int] = None, disk: Optional[int] = None,
                size: Optional[int] = None) -> bytes:
    """Zip64 extended-information extra field (id 0x0001).  Only the values given
    are written, in the APPNOTE order usize, csize, offset, disk."""
    data = b""
    if usize is not None:
        data += struct.pack("<Q", usize)
    if csize is not None:
        data += struct.pack("<Q", csize)
    if offset is not None:
        data += struct.pack("<Q", offset)
    if disk is not None:
        data += struct.pack("<I", disk)
    return extra_field(ZIP64_EXTRA_ID, data, size)


def eocd(*, disk: int = 0, cd_disk: int = 0, disk_entries: int = 0, total_entries: int = 0,
         cd_size: int = 0, cd_offset: int = 0, comment: bytes = b"",
         comment_len: Optional[int] = None, signature: int = EOCD_SIG) -> bytes:
    """End of central directory record (22 bytes + comment)."""
    return struct.pack(
        "<IHHHHIIH", signature, disk, cd_disk, disk_entries & 0xFFFF, total_entries & 0xFFFF,
        cd_size & 0xFFFFFFFF, cd_offset & 0xFFFFFFFF,
        len(comment) if comment_len is None else comment_len,
    ) + comment


def zip64_eocd(*, made_by: int = version_made_by(HOST_UNIX, 45), version: int = 45, disk: int = 0,
               cd_disk: int = 0, disk_entries: int = 0, total_entries: int = 0,
               cd_size: int = 0, cd_offset: int = 0, extensible: bytes = b"",
               record_size: Optional[int] = None, signature: int = ZIP64_EOCD_SIG) -> bytes:
    """Zip64 end of central directory record (56 bytes + extensible data).
    ``record_size`` is the size of the remaining record (44 + extensible)."""
    return struct.pack(
        "<IQHHIIQQQQ", signature,
        44 + len(extensible) if record_size is None else record_size,
        made_by, version, disk, cd_disk, disk_entries, total_entries, cd_size, cd_offset,
    ) + extensible


def zip64_locator(*, offset: int, disk: int = 0, total_disks: int = 1,
                  signature: int = ZIP64_LOCATOR_SIG) -> bytes:
    """Zip64 end of central directory locator (20 bytes)."""
    return struct.pack("<IIQI", signature, disk, offset, total_disks)


# --------------------------------------------------------------------------
# high level: entries and archives

@dataclass
class Entry:
    """One archive entry.  Defaults produce a consistent, legitimate entry;
    every attribute is a way to make it lie.

    name            entry name (bytes, or str encoded as UTF-8)
    data            the uncompressed content (drives CRC and usize defaults)
    method          compression method written in both headers
    payload         the exact bytes after the local header (before any data
                    descriptor); default ``data`` stored or raw-deflated
    flags           general-purpose flags (FLAG_DESCRIPTOR is added when
                    ``descriptor`` is true)
    mode            Unix st_mode → external attributes high 16 bits and
                    version-made-by host 3 (Unix); e.g. 0o100644, 0o120777
    external_attr   raw external attributes (overrides ``mode``)
    made_by         raw version-made-by
    version         version needed to extract (default 20, 45 with zip64)
    crc/csize/usize override the computed values in both headers
    descriptor      stream the entry: bit 3 set, local CRC/sizes zero, data
                    descriptor after the payload
    descriptor_signature / descriptor_zip64 / descriptor_fields / descriptor_bytes
                    shape of the descriptor (fields: crc, csize, usize)
    zip64           write sizes (and the central offset) as 0xFFFFFFFF with a
                    Zip64 extra field in both headers
    local_extra / central_extra / comment   extra bytes appended
    local / central dict of field overrides passed to :func:`local_header` /
                    :func:`central_header` (e.g. ``central={"offset": 0}``)
    write_local     False: no local record (central entry only)
    same_local_as   index of an earlier entry whose local header offset this
                    central entry points at (implies write_local=False)
    gap_before      junk bytes written just before this entry's local header
    """

    name: BytesLike
    data: bytes = b""
    method: int = STORED
    payload: Optional[bytes] = None
    flags: int = 0
    mode: Optional[int] = None
    external_attr: Optional[int] = None
    made_by: Optional[int] = None
    version: Optional[int] = None
    mtime: int = DEFAULT_TIME
    mdate: int = DEFAULT_DATE
    crc: Optional[int] = None
    csize: Optional[int] = None
    usize: Optional[int] = None
    descriptor: bool = False
    descriptor_signature: bool = True
    descriptor_zip64: Optional[bool] = None
    descriptor_fields: dict = field(default_factory=dict)
    descriptor_bytes: Optional[bytes] = None
    zip64: bool = False
    local_extra: bytes = b""
    central_extra: bytes = b""
    comment: bytes = b""
    local: dict = field(default_factory=dict)
    central: dict = field(default_factory=dict)
    write_local: bool = True
    same_local_as: Optional[int] = None
    gap_before: bytes = b""

    def stored_payload(self) -> bytes:
        if self.payload is not None:
            return self.payload
        if self.method == DEFLATED:
            return deflate(self.data)
        return self.data


def file_entry(name: BytesLike, data: bytes = b"", *, mode: int = 0o100644, **kw) -> Entry:
    """A regular file entry (Unix mode 0644 by default)."""
    return Entry(name, data, mode=mode, **kw)


def dir_entry(name: BytesLike, *, mode: int = 0o040755, **kw) -> Entry:
    """A directory entry; add the trailing '/' yourself if you want it."""
    return Entry(name, b"", mode=mode, **kw)


def symlink_entry(name: BytesLike, target: BytesLike, *, mode: int = 0o120777, **kw) -> Entry:
    """A Unix symlink entry: mode 0120xxx, content = target."""
    return Entry(name, as_bytes(target), mode=mode, **kw)


@dataclass
class Built:
    """Result of :func:`build`: the archive bytes and where each record lies."""

    data: bytes
    entries: list           # per Entry: dict(local_offset, data_offset, data_end,
                            #   record_end, central_offset, central_end)
    cd_offset: int
    cd_size: int
    zip64_eocd_offset: Optional[int]
    zip64_locator_offset: Optional[int]
    eocd_offset: int

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.data)
        return path

    def __len__(self) -> int:
        return len(self.data)


def build(entries: Sequence[Entry], *, comment: bytes = b"", comment_len: Optional[int] = None,
          prepend: bytes = b"", append: bytes = b"", before_cd: bytes = b"",
          before_eocd: bytes = b"", central_order: Optional[Sequence[int]] = None,
          extra_central: bytes = b"", offset_shift: int = 0, zip64: bool = False,
          eocd_fields: Optional[dict] = None, zip64_eocd_fields: Optional[dict] = None,
          zip64_locator_fields: Optional[dict] = None) -> Built:
    """Lay out an archive:

        prepend | [gap_before, local header, payload, descriptor]... | before_cd |
        central entries (in ``central_order``) + extra_central | before_eocd |
        [zip64 EOCD, zip64 locator] | EOCD + comment | append

    Offsets written into the records are absolute file offsets (so with
    ``prepend`` this is an "adjusted" self-extractor) plus ``offset_shift``.
    ``zip64`` writes the Zip64 EOCD and locator and sets the EOCD's fields to
    their 0xFFFF/0xFFFFFFFF markers.  ``eocd_fields`` / ``zip64_eocd_fields`` /
    ``zip64_locator_fields`` override single fields of those records.
    """
    out = bytearray(prepend)
    infos = []
    centrals = []
    for idx, e in enumerate(entries):
        name = as_bytes(e.name)
        payload = e.stored_payload()
        crc = crc32(e.data) if e.crc is None else e.crc
        csize = len(payload) if e.csize is None else e.csize
        usize = len(e.data) if e.usize is None else e.usize
        flags = e.flags | (FLAG_DESCRIPTOR if e.descriptor else 0)
        version = e.version if e.version is not None else (45 if e.zip64 else 20)
        if e.external_attr is not None:
            external = e.external_attr
        elif e.mode is not None:
            external = unix_external(e.mode)
        else:
            external = 0
        if e.made_by is not None:
            mb = e.made_by
        elif e.mode is not None or e.external_attr is not None:
            mb = version_made_by(HOST_UNIX, 30)
        else:
            mb = version_made_by(HOST_MSDOS, 20)

        info = {"name": name}
        if e.same_local_as is not None or not e.write_local:
            if e.same_local_as is not None:
                local_offset = infos[e.same_local_as]["local_offset"]
            else:
                local_offset = e.central.get("offset", 0) - offset_shift
            info.update(local_offset=local_offset, data_offset=None, data_end=None,
                        record_end=None)
        else:
            out += e.gap_before
            local_offset = len(out)
            lfields = dict(version=version, flags=flags, method=e.method, mtime=e.mtime,
                           mdate=e.mdate, crc=crc, csize=csize, usize=usize)
            lextra = e.local_extra
            if e.descriptor:
                lfields.update(crc=0, csize=0, usize=0)
            if e.zip64:
                lextra = zip64_extra(usize=0 if e.descriptor else usize,
                                     csize=0 if e.descriptor else csize) + lextra
                lfields.update(csize=U32_MAX, usize=U32_MAX)
            lfields["extra"] = lextra
            lfields.update(e.local)
            lname = lfields.pop("name", name)
            out += local_header(lname, **lfields)
            data_offset = len(out)
            out += payload
            data_end = len(out)
            if e.descriptor:
                if e.descriptor_bytes is not None:
                    out += e.descriptor_bytes
                else:
                    d = dict(crc=crc, csize=csize, usize=usize)
                    d.update(e.descriptor_fields)
                    out += data_descriptor(
                        d["crc"], d["csize"], d["usize"], signature=e.descriptor_signature,
                        zip64=e.zip64 if e.descriptor_zip64 is None else e.descriptor_zip64)
            info.update(local_offset=local_offset, data_offset=data_offset,
                        data_end=data_end, record_end=len(out))
        infos.append(info)

        cfields = dict(made_by=mb, version=version, flags=flags, method=e.method,
                       mtime=e.mtime, mdate=e.mdate, crc=crc, csize=csize, usize=usize,
                       external=external, offset=local_offset + offset_shift,
                       comment=e.comment)
        cextra = e.central_extra
        if e.zip64:
            cextra = zip64_extra(usize=usize, csize=csize,
                                 offset=local_offset + offset_shift) + cextra
            cfields.update(csize=U32_MAX, usize=U32_MAX, offset=U32_MAX)
        cfields["extra"] = cextra
        cfields.update(e.central)
        cname = cfields.pop("name", name)
        centrals.append(central_header(cname, **cfields))

    out += before_cd
    cd_offset = len(out)
    order = range(len(entries)) if central_order is None else central_order
    for i in order:
        infos[i].setdefault("central_offset", len(out))
        out += centrals[i]
        infos[i].setdefault("central_end", len(out))
    out += extra_central
    cd_size = len(out) - cd_offset
    out += before_eocd
    n = len(order)

    z64_offset = z64_loc_offset = None
    efields = dict(disk_entries=n, total_entries=n, cd_size=cd_size,
                   cd_offset=cd_offset + offset_shift, comment=comment, comment_len=comment_len)
    if zip64:
        z64_offset = len(out)
        zf = dict(disk_entries=n, total_entries=n, cd_size=cd_size,
                  cd_offset=cd_offset + offset_shift)
        zf.update(zip64_eocd_fields or {})
        out += zip64_eocd(**zf)
        z64_loc_offset = len(out)
        lf = dict(offset=z64_offset + offset_shift)
        lf.update(zip64_locator_fields or {})
        out += zip64_locator(**lf)
        efields.update(disk_entries=U16_MAX, total_entries=U16_MAX, cd_size=U32_MAX,
                       cd_offset=U32_MAX)
    efields.update(eocd_fields or {})
    eocd_offset = len(out)
    out += eocd(**efields)
    out += append
    return Built(bytes(out), infos, cd_offset, cd_size, z64_offset, z64_loc_offset, eocd_offset)


def empty_archive(comment: bytes = b"") -> bytes:
    """An archive with no entries: just the EOCD."""
    return eocd(comment=comment)


# --------------------------------------------------------------------------
# reading back (for tamper tests)

@dataclass
class ParsedEntry:
    name: bytes
    central_offset: int       # start of the central record
    central_end: int
    local_offset: int         # start of the local header
    data_offset: int          # first byte of the payload
    data_end: int             # one past the payload
    method: int
    flags: int
    crc: int
    csize: int
    usize: int
    external: int


@dataclass
class Parsed:
    size: int
    eocd_offset: int
    comment_offset: int       # == eocd_offset + 22
    comment: bytes
    cd_offset: int
    cd_size: int
    zip64_eocd_offset: Optional[int]
    zip64_locator_offset: Optional[int]
    entries: list             # ParsedEntry

    def canonical(self, data: bytes) -> bytes:
        """DESIGN §4 canonical bytes: [0, E+20) + two zero bytes."""
        return data[: self.eocd_offset + 20] + b"\0\0"


def find_eocd(data: bytes) -> int:
    """Offset of the last EOCD whose comment ends exactly at end of file."""
    limit = max(0, len(data) - EOCD_FIXED - 0xFFFF)
    pos = len(data) - EOCD_FIXED
    while pos >= limit:
        if data[pos:pos + 4] == b"PK\x05\x06":
            (clen,) = struct.unpack_from("<H", data, pos + 20)
            if pos + EOCD_FIXED + clen == len(data):
                return pos
        pos -= 1
    raise ValueError("no end of central directory record")


def _zip64_values(extra: bytes, want: Sequence[str]) -> dict:
    vals = {}
    i = 0
    while i + 4 <= len(extra):
        hid, hsz = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4:i + 4 + hsz]
        if hid == ZIP64_EXTRA_ID:
            j = 0
            for key in want:
                if key == "disk":
                    vals[key] = struct.unpack_from("<I", body, j)[0]
                    j += 4
                else:
                    vals[key] = struct.unpack_from("<Q", body, j)[0]
                    j += 8
            break
        i += 4 + hsz
    return vals


def parse(data: bytes) -> Parsed:
    """Parse an archive (non-hostile: trusts its fields) and report offsets."""
    e = find_eocd(data)
    (_, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, clen) = struct.unpack_from(
        "<IHHHHIIH", data, e)
    z64 = z64loc = None
    if e >= ZIP64_LOCATOR_SIZE and data[e - 20:e - 16] == b"PK\x06\x07":
        z64loc = e - 20
        (_, _, z64, _) = struct.unpack_from("<IIQI", data, z64loc)
        (_, _, _, _, _, _, n_disk, n_total, cd_size, cd_offset) = struct.unpack_from(
            "<IQHHIIQQQQ", data, z64)
    entries = []
    pos = cd_offset
    for _ in range(n_total):
        (sig, _mb, _ver, flags, method, _t, _d, crc, csize, usize, nlen, xlen, cmlen, _dk, _ia,
         ext, off) = struct.unpack_from("<IHHHHHHIIIHHHHHII", data, pos)
        if sig != CENTRAL_SIG:
            raise ValueError("bad central header at %d" % pos)
        name = data[pos + 46:pos + 46 + nlen]
        extra = data[pos + 46 + nlen:pos + 46 + nlen + xlen]
        want = [k for k, v in (("usize", usize), ("csize", csize), ("offset", off))
                if v == U32_MAX]
        z = _zip64_values(extra, want)
        usize, csize, off = z.get("usize", usize), z.get("csize", csize), z.get("offset", off)
        end = pos + 46 + nlen + xlen + cmlen
        (lsig,) = struct.unpack_from("<I", data, off)
        if lsig != LOCAL_SIG:
            raise ValueError("bad local header at %d" % off)
        lnlen, lxlen = struct.unpack_from("<HH", data, off + 26)
        dstart = off + 30 + lnlen + lxlen
        entries.append(ParsedEntry(name, pos, end, off, dstart, dstart + csize, method, flags,
                                   crc, csize, usize, ext))
        pos = end
    return Parsed(len(data), e, e + EOCD_FIXED, data[e + EOCD_FIXED:], cd_offset, cd_size,
                  z64, z64loc, entries)


def field_span(fields, name: str) -> tuple:
    """(offset, size) of a named field in LOCAL_FIELDS/CENTRAL_FIELDS/EOCD_FIELDS."""
    for fname, off, size in fields:
        if fname == name:
            return off, size
    raise KeyError(name)


def with_comment(data: bytes, comment: bytes, comment_len: Optional[int] = None) -> bytes:
    """Replace the EOCD comment (and set the comment length, by default to the
    real length of the new comment)."""
    e = find_eocd(data)
    n = len(comment) if comment_len is None else comment_len
    return data[:e + 20] + struct.pack("<H", n) + comment


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    """Copy of ``data`` with the byte at ``offset`` XORed with ``mask``."""
    b = bytearray(data)
    b[offset] ^= mask
    return bytes(b)
