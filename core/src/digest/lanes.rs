//! A SHA-1 state of our own, so that two states can take the same bytes in one pass.
//!
//! A big upload hashes every byte twice: into its part's digest and into the whole file's. With
//! SHA-NI one state's rounds form a serial chain, so a single pass waits on each instruction's
//! latency. Fed the same 64-byte block, two states share its message schedule and their rounds
//! interleave, which fills those waits: both digests cost about 1.6 times one, not 2
//! (`cargo bench -p box-upload-core --bench sha1_impls`, `two_passes_8MiB`). Without SHA-NI, or
//! when the two states are not at the same offset within a block, each state is fed in turn by
//! the `sha1` crate's compression function.

use sha1::digest::generic_array::GenericArray;

/// SHA-1's initial state (FIPS 180-4, 5.3.1).
const INITIAL: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];

const BLOCK: usize = 64;

/// An incremental SHA-1: chaining value, bytes fed, and the partial block.
#[derive(Clone)]
pub(crate) struct Sha1State {
    h: [u32; 5],
    len: u64,
    buf: [u8; BLOCK],
    buf_len: usize,
}

impl Default for Sha1State {
    fn default() -> Self {
        Self { h: INITIAL, len: 0, buf: [0; BLOCK], buf_len: 0 }
    }
}

impl Sha1State {
    /// Bytes fed so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        let data = self.fill(data);
        if self.buf_len > 0 {
            return; // everything went into the partial block
        }
        let (blocks, tail) = split_blocks(data);
        compress(&mut self.h, blocks);
        self.keep_tail(tail);
    }

    /// Feeds `data` to both states, in one pass where the CPU allows.
    pub(crate) fn update_pair(a: &mut Self, b: &mut Self, data: &[u8]) {
        if a.buf_len != b.buf_len {
            a.update(data);
            b.update(data);
            return;
        }
        a.len += data.len() as u64;
        b.len += data.len() as u64;
        // Equal partial lengths: both take the same bytes to finish their blocks.
        let rest = a.fill(data);
        let _ = b.fill(data);
        if a.buf_len > 0 {
            return;
        }
        let (blocks, tail) = split_blocks(rest);
        compress_pair(&mut a.h, &mut b.h, blocks);
        a.keep_tail(tail);
        b.keep_tail(tail);
    }

    /// The digest of everything fed.
    pub(crate) fn finish(mut self) -> [u8; 20] {
        let bits = self.len.wrapping_mul(8);
        let mut block = [0u8; BLOCK];
        block[..self.buf_len].copy_from_slice(&self.buf[..self.buf_len]);
        block[self.buf_len] = 0x80;
        if self.buf_len >= BLOCK - 8 {
            compress(&mut self.h, &block);
            block = [0; BLOCK];
        }
        block[BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
        compress(&mut self.h, &block);
        let mut out = [0u8; 20];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.h) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// Tops up the partial block from `data`, compressing it once full; the bytes left.
    fn fill<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        if self.buf_len == 0 {
            return data;
        }
        let n = (BLOCK - self.buf_len).min(data.len());
        self.buf[self.buf_len..self.buf_len + n].copy_from_slice(&data[..n]);
        self.buf_len += n;
        if self.buf_len == BLOCK {
            compress(&mut self.h, &self.buf);
            self.buf_len = 0;
        }
        &data[n..]
    }

    fn keep_tail(&mut self, tail: &[u8]) {
        self.buf[..tail.len()].copy_from_slice(tail);
        self.buf_len = tail.len();
    }
}

/// `data` cut into whole blocks and the bytes after them.
fn split_blocks(data: &[u8]) -> (&[u8], &[u8]) {
    data.split_at(data.len() - data.len() % BLOCK)
}

/// One state over whole blocks, through the `sha1` crate (which picks SHA-NI when the CPU has it).
fn compress(h: &mut [u32; 5], blocks: &[u8]) {
    for block in blocks.chunks_exact(BLOCK) {
        sha1::compress(h, std::slice::from_ref(GenericArray::from_slice(block)));
    }
}

/// Two states over the same whole blocks.
fn compress_pair(a: &mut [u32; 5], b: &mut [u32; 5], blocks: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    if shani::compress_pair(a, b, blocks) {
        return;
    }
    compress(a, blocks);
    compress(b, blocks);
}

/// The SHA-NI kernel: the `sha1` crate's round structure with a second state interleaved.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod shani {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_extract_epi32, _mm_loadu_si128, _mm_set_epi32, _mm_set_epi64x, _mm_sha1msg1_epu32,
        _mm_sha1msg2_epu32, _mm_sha1nexte_epu32, _mm_sha1rnds4_epu32, _mm_shuffle_epi8, _mm_xor_si128,
    };

    fn available() -> bool {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse2")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1")
    }

    /// Runs the kernel; `false` (and nothing done) when the CPU lacks SHA-NI.
    pub(super) fn compress_pair(a: &mut [u32; 5], b: &mut [u32; 5], blocks: &[u8]) -> bool {
        if !available() {
            return false;
        }
        // SAFETY: the CPU has every feature the kernel is compiled for (checked just above).
        unsafe { kernel(a, b, blocks) };
        true
    }

    // Four rounds of one state: the next E folded into the schedule word, then the rounds.
    macro_rules! rounds4 {
        ($h0:ident, $h1:ident, $w:expr, $f:expr) => {
            _mm_sha1rnds4_epu32($h0, _mm_sha1nexte_epu32($h1, $w), $f)
        };
    }

    // The next four schedule words (shared by both states), then four rounds of each state.
    macro_rules! schedule_rounds4 {
        ($a0:ident, $a1:ident, $b0:ident, $b1:ident, $w0:ident, $w1:ident, $w2:ident, $w3:ident, $w4:ident, $f:expr) => {
            $w4 = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32($w0, $w1), $w2), $w3);
            $a1 = rounds4!($a0, $a1, $w4, $f);
            $b1 = rounds4!($b0, $b1, $w4, $f);
        };
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn kernel(a: &mut [u32; 5], b: &mut [u32; 5], blocks: &[u8]) {
        // Reverses the bytes of the vector: big-endian words, word 0 in the top lane.
        let mask = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0A0B_0C0D_0E0F);
        let load = |s: &[u32; 5]| {
            (_mm_set_epi32(s[0] as i32, s[1] as i32, s[2] as i32, s[3] as i32), _mm_set_epi32(s[4] as i32, 0, 0, 0))
        };
        let (mut abcd_a, mut e_a) = load(a);
        let (mut abcd_b, mut e_b) = load(b);
        for block in blocks.chunks_exact(64) {
            let p = block.as_ptr().cast::<__m128i>();
            // SAFETY: `block` is 64 bytes, four unaligned 16-byte loads from its start.
            let (mut w0, mut w1, mut w2, mut w3) = unsafe {
                (
                    _mm_shuffle_epi8(_mm_loadu_si128(p), mask),
                    _mm_shuffle_epi8(_mm_loadu_si128(p.add(1)), mask),
                    _mm_shuffle_epi8(_mm_loadu_si128(p.add(2)), mask),
                    _mm_shuffle_epi8(_mm_loadu_si128(p.add(3)), mask),
                )
            };
            let mut w4;
            let (mut a0, mut b0) = (abcd_a, abcd_b);
            let mut a1 = _mm_add_epi32(e_a, w0);
            let mut b1 = _mm_add_epi32(e_b, w0);

            // Rounds 0..20
            a1 = _mm_sha1rnds4_epu32(a0, a1, 0);
            b1 = _mm_sha1rnds4_epu32(b0, b1, 0);
            a0 = rounds4!(a1, a0, w1, 0);
            b0 = rounds4!(b1, b0, w1, 0);
            a1 = rounds4!(a0, a1, w2, 0);
            b1 = rounds4!(b0, b1, w2, 0);
            a0 = rounds4!(a1, a0, w3, 0);
            b0 = rounds4!(b1, b0, w3, 0);
            schedule_rounds4!(a0, a1, b0, b1, w0, w1, w2, w3, w4, 0);

            // Rounds 20..40
            schedule_rounds4!(a1, a0, b1, b0, w1, w2, w3, w4, w0, 1);
            schedule_rounds4!(a0, a1, b0, b1, w2, w3, w4, w0, w1, 1);
            schedule_rounds4!(a1, a0, b1, b0, w3, w4, w0, w1, w2, 1);
            schedule_rounds4!(a0, a1, b0, b1, w4, w0, w1, w2, w3, 1);
            schedule_rounds4!(a1, a0, b1, b0, w0, w1, w2, w3, w4, 1);

            // Rounds 40..60
            schedule_rounds4!(a0, a1, b0, b1, w1, w2, w3, w4, w0, 2);
            schedule_rounds4!(a1, a0, b1, b0, w2, w3, w4, w0, w1, 2);
            schedule_rounds4!(a0, a1, b0, b1, w3, w4, w0, w1, w2, 2);
            schedule_rounds4!(a1, a0, b1, b0, w4, w0, w1, w2, w3, 2);
            schedule_rounds4!(a0, a1, b0, b1, w0, w1, w2, w3, w4, 2);

            // Rounds 60..80
            schedule_rounds4!(a1, a0, b1, b0, w1, w2, w3, w4, w0, 3);
            schedule_rounds4!(a0, a1, b0, b1, w2, w3, w4, w0, w1, 3);
            schedule_rounds4!(a1, a0, b1, b0, w3, w4, w0, w1, w2, 3);
            schedule_rounds4!(a0, a1, b0, b1, w4, w0, w1, w2, w3, 3);
            schedule_rounds4!(a1, a0, b1, b0, w0, w1, w2, w3, w4, 3);

            abcd_a = _mm_add_epi32(abcd_a, a0);
            e_a = _mm_sha1nexte_epu32(a1, e_a);
            abcd_b = _mm_add_epi32(abcd_b, b0);
            e_b = _mm_sha1nexte_epu32(b1, e_b);
        }
        let store = |s: &mut [u32; 5], abcd: __m128i, e: __m128i| {
            *s = [
                _mm_extract_epi32(abcd, 3) as u32,
                _mm_extract_epi32(abcd, 2) as u32,
                _mm_extract_epi32(abcd, 1) as u32,
                _mm_extract_epi32(abcd, 0) as u32,
                _mm_extract_epi32(e, 3) as u32,
            ];
        };
        store(a, abcd_a, e_a);
        store(b, abcd_b, e_b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::{Digest as _, Sha1};

    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn one_state_matches_the_sha1_crate_for_every_padding_case() {
        for len in (0..200).chain([1000, 4095, 4096, 65_537]) {
            let data = bytes(len, len as u64);
            let mut s = Sha1State::default();
            // Fed in uneven pieces, so partial blocks are topped up in every way.
            for piece in data.chunks(37) {
                s.update(piece);
            }
            assert_eq!(s.len(), len as u64);
            assert_eq!(s.finish(), <[u8; 20]>::from(Sha1::digest(&data)), "len {len}");
        }
    }

    #[test]
    fn pairs_match_two_separate_hashes() {
        // `a` starts `lead` bytes in (so its partial block may differ from `b`'s), then both take
        // the same pieces; the pair path and the fallback both run.
        for lead in [0usize, 1, 63, 64, 65, 128, 200] {
            for piece in [1usize, 63, 64, 100, 4096, 256 * 1024] {
                let prefix = bytes(lead, 7);
                let data = bytes(300_000, (lead * 1000 + piece) as u64);
                let mut a = Sha1State::default();
                a.update(&prefix);
                let mut b = Sha1State::default();
                for chunk in data.chunks(piece) {
                    Sha1State::update_pair(&mut a, &mut b, chunk);
                }
                let whole: Vec<u8> = prefix.iter().chain(&data).copied().collect();
                assert_eq!(a.finish(), <[u8; 20]>::from(Sha1::digest(&whole)), "lead {lead} piece {piece}");
                assert_eq!(b.finish(), <[u8; 20]>::from(Sha1::digest(&data)), "lead {lead} piece {piece}");
            }
        }
    }

    #[test]
    fn the_pair_kernel_equals_the_crate_on_any_chaining_values() {
        let blocks = bytes(64 * 50, 3);
        let (mut a, mut b) = ([1, 2, 3, 4, 5], INITIAL);
        let (mut a2, mut b2) = (a, b);
        compress_pair(&mut a, &mut b, &blocks);
        compress(&mut a2, &blocks);
        compress(&mut b2, &blocks);
        assert_eq!((a, b), (a2, b2));
    }
}
