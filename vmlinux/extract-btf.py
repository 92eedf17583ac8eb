#!/usr/bin/env python3
"""extract-btf.py KERNEL OUT: the kernel's own BTF (what /sys/kernel/btf/vmlinux shows when it
runs) as a raw BTF file, for `bpftool btf dump file OUT format c`.

KERNEL is a vmlinux ELF (its .BTF section), or a boot image without sections: arm64's Image
(Debian's arm64 vmlinuz), gzip-compressed or not, or x86's bzImage (Debian's amd64 vmlinuz),
whose payload (an ELF vmlinux, zstd, xz or gzip compressed) is unpacked first (zstd with the
`zstd` program). In an image the BTF blob is found by its header (magic 0xeb9f, version 1,
24-byte header, type section then string section, the first string empty); exactly one such
blob must be there."""
import gzip
import lzma
import struct
import subprocess
import sys
import zlib

HDR = struct.Struct("<HBBIIIII")


def blob_at(d, off):
    """The BTF blob starting at off, or None when the bytes there are not one."""
    if off + HDR.size > len(d):
        return None
    magic, ver, flags, hdr_len, type_off, type_len, str_off, str_len = HDR.unpack_from(d, off)
    if magic != 0xEB9F or ver != 1 or flags != 0 or hdr_len != HDR.size:
        return None
    if type_off != 0 or str_off != type_len or type_len == 0 or str_len == 0:
        return None
    end = off + hdr_len + str_off + str_len
    if end > len(d) or d[off + hdr_len + str_off] != 0 or d[end - 1] != 0:
        return None
    return d[off:end]


def from_elf(d):
    shoff, = struct.unpack_from("<Q", d, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)

    def sh(i):
        return struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize)

    names = sh(shstrndx)
    for i in range(shnum):
        s = sh(i)
        if d[names[4] + s[0]:].split(b"\0", 1)[0] == b".BTF":
            return d[s[4]:s[4] + s[5]]
    sys.exit("extract-btf: no .BTF section in the ELF file")


def from_image(d):
    found = []
    off = d.find(b"\x9f\xeb\x01\x00")
    while off >= 0:
        b = blob_at(d, off)
        if b is not None:
            found.append((off, b))
        off = d.find(b"\x9f\xeb\x01\x00", off + 1)
    if len(found) != 1:
        sys.exit(f"extract-btf: {len(found)} BTF blobs in the image (want exactly 1)")
    return found[0][1]


def bzimage_payload(d):
    """x86 boot protocol 2.08+: the compressed kernel at payload_offset past the setup, with
    the uncompressed size appended (4 bytes, which zstd would take for a broken frame)."""
    setup_sects = d[0x1F1] or 4
    off, length = struct.unpack_from("<II", d, 0x248)
    p = d[(setup_sects + 1) * 512 + off:][:length]
    if p[:4] == b"\x28\xb5\x2f\xfd":
        return subprocess.run(["zstd", "-dc"], input=p[:-4], capture_output=True, check=True).stdout
    if p[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMADecompressor().decompress(p)
    if p[:2] == b"\x1f\x8b":
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(p)
    sys.exit(f"extract-btf: unknown bzImage payload compression {p[:4].hex()}")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    d = open(sys.argv[1], "rb").read()
    if d[:2] == b"\x1f\x8b":
        d = gzip.decompress(d)
    elif d[0x202:0x206] == b"HdrS":
        d = bzimage_payload(d)
    btf = from_elf(d) if d[:4] == b"\x7fELF" else from_image(d)
    open(sys.argv[2], "wb").write(btf)
    print(f"extract-btf: {len(btf)} bytes of BTF", file=sys.stderr)


main()
