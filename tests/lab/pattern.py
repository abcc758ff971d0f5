"""tests/lab/pattern.py - the dataplane's diagnostic byte pattern
(dataplane/diag/diag.h): a 64 KiB splitmix64 block, block j with j added
to every byte. pattern_bytes(off, n) gives bytes [off, off+n) of it."""

M = (1 << 64) - 1
BLOCK = 65536


def _mix(k):
    z = ((k + 1) * 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


_T = b"".join(_mix(k).to_bytes(8, "little") for k in range(BLOCK // 8))
_blocks = {}


def _block(j):
    j &= 255  # adding j mod 256 repeats every 256 blocks
    b = _blocks.get(j)
    if b is None:
        b = _blocks[j] = _T.translate(bytes((x + j) & 255 for x in range(256)))
    return b


def pattern_bytes(off, n):
    out = []
    while n > 0:
        j, r = divmod(off, BLOCK)
        take = min(n, BLOCK - r)
        out.append(_block(j)[r:r + take])
        off += take
        n -= take
    return b"".join(out)


if __name__ == "__main__":
    import hashlib
    assert pattern_bytes(0, 16).hex() == "afcd1d7b39a820e2f465b9a16a9e786e"
    print(hashlib.sha256(pattern_bytes(0, 1000000)).hexdigest())
