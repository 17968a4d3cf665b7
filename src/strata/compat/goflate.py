"""How many bytes Go's ``compress/gzip`` writes for some input at its default level (6), without writing
them: what Docker's CLI counts as it sends a ``--compress``ed build context. zlib's deflate is another
algorithm (another hash, minimum match 3, other trees and block splits) and gives other sizes, so the
LZ77 pass (lazy matching: good 8, lazy 16, nice 128, chain 128; 4-byte minimum match, 17-bit hash of
four bytes, blocks of at most 16384 tokens), the block choice (stored, fixed or dynamic Huffman, the
smallest) and the length-limited Huffman code lengths are Go's, as its package documents them and as
its output shows. Only sizes are computed: bit counts, never codes.

Pure Python: a few seconds a megabyte; ``gzip_size`` takes chunks (the input is never held whole)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

__all__ = ["GzipCounter", "gzip_size"]

_W = 1 << 15  # window
_MASK = _W - 1
_HASH_SHIFT = 32 - 17
_HASH_MASK = (1 << 17) - 1
_MIN, _MAX = 4, 258  # match lengths the compressor emits
_LOOK = _MIN + _MAX
_GOOD, _LAZY, _NICE, _CHAIN = 8, 16, 128, 128
_MAX_TOKENS = 1 << 14
_MAX_HASH_OFFSET = 1 << 24
_LEN_BASE = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192,
             224, 255)  # fmt: skip
_LEN_EXTRA = (0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0)
_OFF_BASE = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072,
             4096, 6144, 8192, 12288, 16384, 24576)  # fmt: skip
_OFF_EXTRA = (0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13)
_CODEGEN_ORDER = (16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15)
_FIXED_LIT = [8] * 144 + [9] * 112 + [7] * 24 + [8] * 6  # 286 literal/length codes
_NUM_LIT = 286


def gzip_size(chunks: Iterable[bytes]) -> int:
    """The gzip stream's length: a 10-byte header, the deflate stream, an 8-byte trailer."""
    d = GzipCounter()
    for chunk in chunks:
        d.write(chunk)
    return d.close()


class GzipCounter:
    """``gzip_size`` fed as the bytes come: ``write`` each, ``close`` for the size."""

    def __init__(self) -> None:
        self._d = _Deflater()

    def write(self, data: bytes) -> None:
        self._d.write(data)

    def close(self) -> int:
        return 10 + self._d.close() + 8


def _code_lengths(freq: list[int], max_bits: int) -> list[int]:
    """Go's huffmanEncoder.generate: length-limited code lengths for ``freq`` (0 for unused symbols)."""
    lengths = [0] * len(freq)
    nodes = sorted((f, i) for i, f in enumerate(freq) if f)
    if len(nodes) <= 2:
        for _, i in nodes:
            lengths[i] = 1
        return lengths
    for bits, count in enumerate(_bit_counts([f for f, _ in nodes], max_bits)):
        if bits and count:
            for _, i in nodes[len(nodes) - count :]:
                lengths[i] = bits
            nodes = nodes[: len(nodes) - count]
    return lengths


def _bit_counts(freqs: list[int], max_bits: int) -> list[int]:
    """How many symbols get each code length (index: bits), by Go's level-by-level chain building
    over the frequencies in increasing order."""
    n = len(freqs)
    big = 1 << 31
    fl = [*freqs, big]
    max_bits = min(max_bits, n - 1)
    last, next_char, next_pair, needed = [0] * 17, [0] * 17, [0] * 17, [0] * 17
    leaf = [[0] * 17 for _ in range(17)]
    for lv in range(1, max_bits + 1):
        last[lv], next_char[lv], next_pair[lv] = fl[1], fl[2], fl[0] + fl[1]
        leaf[lv][lv] = 2
        if lv == 1:
            next_pair[lv] = big
    needed[max_bits] = 2 * n - 4
    lv = max_bits
    while True:
        if next_pair[lv] == big and next_char[lv] == big:
            needed[lv] = 0
            next_pair[lv + 1] = big
            lv += 1
            continue
        prev = last[lv]
        if next_char[lv] < next_pair[lv]:
            k = leaf[lv][lv] + 1
            last[lv] = next_char[lv]
            leaf[lv][lv] = k
            next_char[lv] = fl[k]
        else:
            last[lv] = next_pair[lv]
            leaf[lv][:lv] = leaf[lv - 1][:lv]
            needed[lv - 1] = 2
        needed[lv] -= 1
        if needed[lv] == 0:
            if lv == max_bits:
                break
            next_pair[lv + 1] = prev + last[lv]
            lv += 1
        else:
            while needed[lv - 1] > 0:
                lv -= 1
    counts = [0] * (max_bits + 1)
    top = leaf[max_bits]
    for bits, level in enumerate(range(max_bits, 0, -1), 1):
        counts[bits] = top[level] - top[level - 1]
    return counts


def _codegen_freq(lengths: list[int]) -> list[int]:
    """Go's generateCodegen: the run-length code of the code lengths, as frequencies of its 19 symbols."""
    freq = [0] * 19
    i, n = 0, len(lengths)
    while i < n:
        size, run = lengths[i], 1
        while i + run < n and lengths[i + run] == size:
            run += 1
        i += run
        if size:
            freq[size] += 1
            run -= 1
            while run >= 3:
                freq[16] += 1
                run -= min(6, run)
        else:
            while run >= 11:
                freq[18] += 1
                run -= min(138, run)
            if run >= 3:
                freq[17] += 1
                run = 0
        freq[size] += run
    return freq


def _block_bits(lit: list[int], off: list[int], stored_len: int | None) -> tuple[int, bool]:
    """A block's size in bits as Go's writeBlock chooses it (and whether it is stored); ``stored_len``:
    the input bytes when the block may be stored (its window still held)."""
    nlit = _NUM_LIT
    while lit[nlit - 1] == 0:
        nlit -= 1
    noff = 30
    while noff > 0 and off[noff - 1] == 0:
        noff -= 1
    phantom = noff == 0  # no match: Go counts one offset code (estimated, never written)
    if phantom:
        off = off[:]
        off[0], noff = 1, 1
    extra = sum(lit[257 + c] * _LEN_EXTRA[c] for c in range(29)) + sum(off[c] * _OFF_EXTRA[c] for c in range(30))
    lit_len, off_len = _code_lengths(lit, 15), _code_lengths(off, 15)
    fixed = 3 + sum(f * b for f, b in zip(lit, _FIXED_LIT, strict=True)) + 5 * sum(off) + extra
    cg = _codegen_freq(lit_len[:nlit] + off_len[:noff])
    cg_len = _code_lengths(cg, 7)
    ncg = 19
    while ncg > 4 and cg[_CODEGEN_ORDER[ncg - 1]] == 0:
        ncg -= 1
    dynamic = (3 + 5 + 5 + 4 + 3 * ncg + sum(f * b for f, b in zip(cg, cg_len, strict=True)) + cg[16] * 2 + cg[17] * 3
               + cg[18] * 7 + sum(f * b for f, b in zip(lit, lit_len, strict=True))
               + sum(f * b for f, b in zip(off, off_len, strict=True)) + extra)  # fmt: skip
    size, unwritten = (dynamic, off_len[0]) if dynamic < fixed else (fixed, 5)
    if stored_len is not None and stored_len <= 65535 and (stored_len + 5) * 8 < size:
        return stored_len, True
    return size - (unwritten if phantom else 0), False


class _Deflater:
    """Go's compressor at level 6 (``deflate``/``fillDeflate``), counting the bits its blocks take."""

    def __init__(self) -> None:
        self.window = bytearray(2 * _W)
        self.end = self.index = self.block_start = 0
        self.head = [0] * (1 << 17)
        self.prev = [0] * _W
        self.hash_offset, self.chain_head = 1, -1
        self.length, self.offset, self.available = _MIN - 1, 0, False
        self.lit, self.off, self.ntokens = [0] * _NUM_LIT, [0] * 30, 0
        self.bits = 0  # written so far
        self.sync = False

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while len(view):
            self._step()
            n = self._fill(view)
            view = view[n:]

    def close(self) -> int:
        """The deflate stream's length in bytes (the last block, then an empty final stored block)."""
        self.sync = True
        self._step()
        self.bits = ((self.bits + 3 + 7) // 8) * 8 + 32  # writeStoredHeader(0, true), flushed
        return self.bits // 8

    def _fill(self, data: memoryview) -> int:
        if self.index >= 2 * _W - _LOOK:
            self.window[:_W] = self.window[_W:]
            self.index -= _W
            self.end -= _W
            self.block_start = self.block_start - _W if self.block_start >= _W else 1 << 62
            self.hash_offset += _W
            if self.hash_offset > _MAX_HASH_OFFSET:
                delta = self.hash_offset - 1
                self.hash_offset -= delta
                self.chain_head -= delta
                self.prev = [v - delta if v > delta else 0 for v in self.prev]
                self.head = [v - delta if v > delta else 0 for v in self.head]
        n = min(len(data), 2 * _W - self.end)
        self.window[self.end : self.end + n] = data[:n]
        self.end += n
        return n

    def _literal(self, byte: int) -> None:
        self.lit[byte] += 1
        self.ntokens += 1

    def _match(self, length: int, offset: int) -> None:
        self.lit[257 + bisect_right(_LEN_BASE, length - 3) - 1] += 1
        self.off[bisect_right(_OFF_BASE, offset - 1) - 1] += 1
        self.ntokens += 1

    def _write_block(self, index: int) -> None:
        if index <= 0:
            return
        stored = index - self.block_start if self.block_start <= index else None
        self.block_start = index
        self.lit[256] += 1  # the end-of-block marker
        size, is_stored = _block_bits(self.lit, self.off, stored)
        if is_stored:
            self.bits = ((self.bits + 3 + 7) // 8) * 8 + 32 + 8 * size
        else:
            self.bits += size
        self.lit, self.off, self.ntokens = [0] * _NUM_LIT, [0] * 30, 0

    def _hash(self, i: int) -> int:
        w = self.window
        return (((w[i] << 24 | w[i + 1] << 16 | w[i + 2] << 8 | w[i + 3]) * 0x1E35A7BD) & 0xFFFFFFFF) >> _HASH_SHIFT

    def _insert(self, i: int) -> None:
        h = self._hash(i) & _HASH_MASK
        self.prev[i & _MASK] = self.head[h]
        self.head[h] = i + self.hash_offset

    def _step(self) -> None:
        if self.end - self.index < _LOOK and not self.sync:
            return
        win, max_insert = self.window, self.end - (_MIN - 1)
        while True:
            lookahead = self.end - self.index
            if lookahead < _LOOK:
                if not self.sync:
                    return
                if lookahead == 0:
                    if self.available:
                        self._literal(win[self.index - 1])
                        self.available = False
                    if self.ntokens:
                        self._write_block(self.index)
                    return
            if self.index < max_insert:
                h = self._hash(self.index) & _HASH_MASK
                self.chain_head = self.head[h]
                self.prev[self.index & _MASK] = self.chain_head
                self.head[h] = self.index + self.hash_offset
            prev_length, prev_offset = self.length, self.offset
            self.length, self.offset = _MIN - 1, 0
            min_index = max(self.index - _W, 0)
            if (self.chain_head - self.hash_offset >= min_index and lookahead > prev_length
                    and prev_length < _LAZY):  # fmt: skip
                found = self._find(self.index, self.chain_head - self.hash_offset, lookahead)
                if found is not None:
                    self.length, self.offset = found
            if prev_length >= _MIN and self.length <= prev_length:
                self._match(prev_length, prev_offset)
                new_index = self.index + prev_length - 1
                self.index += 1
                while self.index < new_index:
                    if self.index < max_insert:
                        self._insert(self.index)
                    self.index += 1
                self.available = False
                self.length = _MIN - 1
                if self.ntokens == _MAX_TOKENS:
                    self._write_block(self.index)
            else:
                if self.available:
                    self._literal(win[self.index - 1])
                    if self.ntokens == _MAX_TOKENS:
                        self._write_block(self.index)
                self.index += 1
                self.available = True

    def _find(self, pos: int, i: int, lookahead: int) -> tuple[int, int] | None:
        """Go's findMatch: the longest match before ``pos`` along the hash chain from ``i``."""
        win, prev, hash_offset = self.window, self.prev, self.hash_offset
        look = min(_MAX, lookahead)
        nice = min(look, _NICE)
        here = int.from_bytes(win[pos : pos + look], "big")
        length, found = _MIN - 1, None
        w_end = win[pos + length]
        min_index = pos - _W
        for _ in range(_CHAIN):  # the previous length (3) is below "good": the whole chain
            if w_end == win[i + length]:
                diff = here ^ int.from_bytes(win[i : i + look], "big")
                n = look - (diff.bit_length() + 7) // 8  # the bytes equal from the start
                if n > length and (n > _MIN or pos - i <= 4096):
                    length, found = n, (n, pos - i)
                    if n >= nice:
                        break
                    w_end = win[pos + n]
            if i == min_index:
                break
            i = prev[i & _MASK] - hash_offset
            if i < min_index or i < 0:
                break
        return found
