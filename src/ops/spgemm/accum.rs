//! The row accumulators: a row's products combined and emitted in column order, by sorting
//! (ESC), by an open-addressing hash table, or by a dense array with a bitmap of the columns
//! touched, over every column or over the narrow window a row spans (with a second bitmap level).
//! Which one a row uses is [`choose`](super::plan::choose)'s decision.

use super::band::Emit;
use super::plan::SMALL_ROW_FLOPS;
use super::ring::Ring;
use crate::element::Element;
use crate::element::StoredIndex;

/// Columns of the windowed dense accumulator: 32 Ki, 384 KiB of stamps and float64 values per
/// thread, within a core's L2 cache.
pub(super) const WINDOW: usize = 1 << 15;

/// One thread's accumulator state, reused across rows and tasks.
pub(super) struct Acc<I, T> {
    dense_vals: Vec<T>,
    dbits: Vec<u64>,
    keys: Vec<I>,
    hvals: Vec<T>,
    slots: Vec<usize>,
    pairs: Vec<(I, T)>,
    wbits: Vec<u64>,
    wvals: Vec<T>,
}

impl<I: StoredIndex, T: Element> Acc<I, T> {
    pub(super) fn new() -> Self {
        Acc {
            dense_vals: Vec::new(),
            dbits: Vec::new(),
            keys: Vec::new(),
            hvals: Vec::new(),
            slots: Vec::new(),
            pairs: Vec::new(),
            wbits: Vec::new(),
            wvals: Vec::new(),
        }
    }
}

/// Sorts a short slice by insertion: stable, and faster than a general sort below a few dozen
/// elements (it needs no buffer).
#[inline]
fn insertion_sort_by_key<E: Copy, K: Ord>(v: &mut [E], key: impl Fn(&E) -> K) {
    for i in 1..v.len() {
        let e = v[i];
        let mut j = i;
        while j > 0 && key(&v[j - 1]) > key(&e) {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = e;
    }
}

/// Expand, sort, compress: the row's products sorted stably by column, so that equal columns
/// combine in the order the other accumulators combine them.
pub(super) fn sort_row<I: StoredIndex, T: Element, R: Ring<T>>(
    sel: &[(&[I], &[T], T)],
    acc: &mut Acc<I, T>,
    out: &mut Emit<'_, I, T>,
) {
    let pairs = &mut acc.pairs;
    pairs.clear();
    for &(bc, bv, av) in sel {
        pairs.extend(bc.iter().zip(bv).map(|(&c, &b)| (c, R::mul(av, b))));
    }
    if pairs.len() <= SMALL_ROW_FLOPS as usize {
        insertion_sort_by_key(pairs, |e| e.0);
    } else {
        pairs.sort_by_key(|e| e.0);
    }
    let mut i = 0;
    while i < pairs.len() {
        let (c, mut v) = pairs[i];
        i += 1;
        while i < pairs.len() && pairs[i].0 == c {
            v = R::add(v, pairs[i].1);
            i += 1;
        }
        out.emit(c, v);
    }
}

/// A dense array over the columns `first..first + width` the row's products span (at most
/// [`WINDOW`]): rows of a banded matrix touch a narrow range of columns, so this is a dense
/// accumulator whose footprint stays in cache whatever the matrix's width.
pub(super) fn window_row<I: StoredIndex, T: Element, R: Ring<T>>(
    sel: &[(&[I], &[T], T)],
    first: usize,
    width: usize,
    acc: &mut Acc<I, T>,
    out: &mut Emit<'_, I, T>,
) {
    if acc.wbits.len() != WINDOW / 64 {
        acc.wbits = vec![0; WINDOW / 64];
        acc.wvals = vec![R::IDENTITY.unwrap_or_default(); WINDOW];
    }
    // One summary word (in a register) covers the 4096 columns of a 2-D Laplacian's row up to n = 1023.
    if width <= SUMMARY_COLS {
        summary_row::<I, T, R, 1>(sel, first, &mut acc.wbits, &mut acc.wvals, out)
    } else {
        summary_row::<I, T, R, { WINDOW / SUMMARY_COLS }>(sel, first, &mut acc.wbits, &mut acc.wvals, out)
    }
}

/// Columns one word of a two-level bitmap's summary covers: 64 words of 64 columns.
const SUMMARY_COLS: usize = 64 * 64;

/// [`bitmap_row`] over `S` x [`SUMMARY_COLS`] columns from `first`, with a second level: a bit per
/// word of the bitmap, set as products arrive, so that only the words touched are scanned (a
/// Laplacian's row touches about 7 words of the 63 its products span). The cost follows the work,
/// not the width.
#[inline(always)]
fn summary_row<I: StoredIndex, T: Element, R: Ring<T>, const S: usize>(
    sel: &[(&[I], &[T], T)],
    first: usize,
    bits: &mut [u64],
    dense: &mut [T],
    out: &mut Emit<'_, I, T>,
) {
    let bits = &mut bits[..S * 64];
    let dense = &mut dense[..S * SUMMARY_COLS];
    let mut summary = [0u64; S];
    let start = R::IDENTITY.unwrap_or_default();
    for &(bc, bv, av) in sel {
        for (&c, &b) in bc.iter().zip(bv) {
            // Below the caller's width; the mask only spares the compiler's bounds checks.
            let j = (c.as_usize() - first) & (S * SUMMARY_COLS - 1);
            summary[j / 64 / 64] |= 1u64 << (j / 64 % 64);
            accumulate::<T, R>(bits, dense, j, av, b);
        }
    }
    for (s, &y) in summary.iter().enumerate() {
        let mut y = y;
        while y != 0 {
            let w = s * 64 + y.trailing_zeros() as usize;
            y &= y - 1;
            emit_word(&mut bits[w], w, first, dense, start, out);
        }
    }
}

/// Adds `av * b` into slot `j` of a bitmap accumulator, marking it in `bits` (see [`bitmap_row`]).
#[inline(always)]
fn accumulate<T: Element, R: Ring<T>>(bits: &mut [u64], dense: &mut [T], j: usize, av: T, b: T) {
    let (w, m) = (j / 64, 1u64 << (j % 64));
    match R::IDENTITY {
        Some(_) => {
            bits[w] |= m;
            dense[j] = R::add(dense[j], R::mul(av, b));
        }
        None => {
            let prod = R::mul(av, b);
            let fresh = bits[w] & m == 0;
            bits[w] |= m;
            let old = dense[j];
            dense[j] = if fresh { prod } else { R::add(old, prod) };
        }
    }
}

/// Emits, in column order, the slots marked in word `w` of a bitmap accumulator whose slot 0 is
/// column `first`, putting each slot back to `start` and clearing the word.
#[inline(always)]
fn emit_word<I: StoredIndex, T: Element>(
    word: &mut u64,
    w: usize,
    first: usize,
    dense: &mut [T],
    start: T,
    out: &mut Emit<'_, I, T>,
) {
    let mut x = std::mem::take(word);
    while x != 0 {
        let j = w * 64 + x.trailing_zeros() as usize;
        out.emit(I::from_u64((first + j) as u64), std::mem::replace(&mut dense[j], start));
        x &= x - 1;
    }
}

/// A dense array over every column (rows whose flops are a fair fraction of the columns).
pub(super) fn dense_row<I: StoredIndex, T: Element, R: Ring<T>>(
    sel: &[(&[I], &[T], T)],
    ncols: usize,
    acc: &mut Acc<I, T>,
    out: &mut Emit<'_, I, T>,
) {
    let words = ncols.div_ceil(64);
    if acc.dbits.len() != words {
        acc.dbits = vec![0; words];
        acc.dense_vals = vec![R::IDENTITY.unwrap_or_default(); words * 64];
    }
    bitmap_row::<I, T, R>(sel, 0, &mut acc.dbits, &mut acc.dense_vals, out);
}

/// Accumulates the row's products in `dense[column - first]`, marking the columns touched in
/// `bits`, then emits them in column order by scanning `bits` a word at a time (a word per 64
/// columns, no sort: the callers choose this when that scan is not much longer than the work). Every
/// product is accumulated without a data-dependent branch (whether a column is new is a coin toss
/// the branch predictor loses): slots hold the ring's identity when it has one, and are put back to
/// it as they are read, so that accumulating is an add; else the first product is selected. `bits`
/// is left all clear.
#[inline(always)]
fn bitmap_row<I: StoredIndex, T: Element, R: Ring<T>>(
    sel: &[(&[I], &[T], T)],
    first: usize,
    bits: &mut [u64],
    dense: &mut [T],
    out: &mut Emit<'_, I, T>,
) {
    let start = R::IDENTITY.unwrap_or_default();
    for &(bc, bv, av) in sel {
        for (&c, &b) in bc.iter().zip(bv) {
            accumulate::<T, R>(bits, dense, c.as_usize() - first, av, b);
        }
    }
    for (w, word) in bits.iter_mut().enumerate() {
        emit_word(word, w, first, dense, start, out);
    }
}

/// An open-addressing hash table sized to twice the row's flops; its entries sorted at the end.
pub(super) fn hash_row<I: StoredIndex, T: Element, R: Ring<T>>(
    sel: &[(&[I], &[T], T)],
    flops: u64,
    ncols: usize,
    acc: &mut Acc<I, T>,
    out: &mut Emit<'_, I, T>,
) {
    let size = (2 * flops.min(ncols as u64)).next_power_of_two().max(16) as usize;
    if acc.keys.len() < size {
        acc.keys.resize(size, I::MAX);
        acc.hvals.resize(size, T::default());
    }
    let mask = size - 1;
    let Acc { keys, hvals, slots, pairs, .. } = acc;
    slots.clear();
    for &(bc, bv, av) in sel {
        for (&c, &b) in bc.iter().zip(bv) {
            let prod = R::mul(av, b);
            let mut h = ((c.as_usize() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask;
            loop {
                let key = keys[h];
                if key == c {
                    hvals[h] = R::add(hvals[h], prod);
                    break;
                }
                if key == I::MAX {
                    keys[h] = c;
                    hvals[h] = prod;
                    slots.push(h);
                    break;
                }
                h = (h + 1) & mask;
            }
        }
    }
    pairs.clear();
    for &h in slots.iter() {
        pairs.push((keys[h], hvals[h]));
        keys[h] = I::MAX;
    }
    pairs.sort_unstable_by_key(|e| e.0);
    for &(c, v) in pairs.iter() {
        out.emit(c, v);
    }
}
