//! The physical limits a streaming kernel is measured against, measured in the same run:
//!
//! * **memory read bandwidth**: threads summing disjoint parts of one large buffer (a streaming read,
//!   what a product over a matrix in the page cache does at best);
//! * **cold sequential disk read bandwidth**: a file written to the data directory, synced, dropped
//!   from the page cache (`posix_fadvise(DONTNEED)`, as [`evict_page_cache`] does), then read front to
//!   back in large reads: what a product over a matrix that is not in memory does at best;
//! * **sequential disk write bandwidth**: a file written front to back in large writes and synced
//!   (`fsync`, inside the timing): what a build that writes its output durably does at best.

use super::{time_runs, Spread};
use rayon::prelude::*;
use sparsedisk::error::{Error, Result};
use sparsedisk::storage::evict_page_cache;
use std::io::{Read, Write};
use std::path::Path;

/// Read size of the disk probe: large enough that per-call overhead is negligible, as a streaming
/// reader uses.
const READ_CHUNK: usize = 8 << 20;

/// Reads a `bytes`-byte buffer (rounded down to whole 8-byte words, at least one) `repeat` times on
/// `threads` threads (each summing one contiguous part); returns the seconds of each pass and the
/// bytes read per pass. GB/s: bytes over seconds. The buffer is filled (touched) before timing.
pub fn memory_read_bandwidth(bytes: usize, threads: usize, repeat: usize) -> Result<(Spread, u64)> {
    let words = (bytes / 8).max(1);
    let mut buf = sparsedisk::kernels::dense_vector(0);
    buf.reserve_exact(words);
    buf.extend((0..words).map(|i| i as f64));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::invalid(format!("cannot start {threads} threads: {e}")))?;
    let part = words.div_ceil(threads.max(1));
    let (seconds, sum) = time_runs(
        repeat,
        || Ok::<(), Error>(()),
        || {
            // Four independent accumulators per thread so the adds do not serialise on one register.
            let sum: f64 = pool.install(|| {
                buf.par_chunks(part)
                    .map(|c| {
                        let mut acc = [0.0f64; 4];
                        let mut quads = c.chunks_exact(4);
                        for q in &mut quads {
                            acc[0] += q[0];
                            acc[1] += q[1];
                            acc[2] += q[2];
                            acc[3] += q[3];
                        }
                        quads.remainder().iter().sum::<f64>() + acc.iter().sum::<f64>()
                    })
                    .sum()
            });
            Ok(sum)
        },
    )?;
    // Keeps the reads from being optimised away.
    std::hint::black_box(sum);
    Ok((Spread::of(&seconds), (words * 8) as u64))
}

/// A block of pseudo-random bytes to write: not zeros, which a filesystem could store sparsely and
/// "read" or "write" without the disk.
fn probe_block() -> Vec<u8> {
    let mut block = vec![0u8; READ_CHUNK];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in block.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes());
    }
    block
}

/// Writes `bytes` bytes of `block` (repeated, each copy slightly changed) to a new file at `path` and
/// syncs it; returns the bytes written.
fn write_probe(path: &Path, block: &mut [u8], bytes: u64) -> Result<u64> {
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, "creating the disk probe", e))?;
    let mut written = 0u64;
    while written < bytes {
        let n = (bytes - written).min(block.len() as u64) as usize;
        block[0] = block[0].wrapping_add(1);
        f.write_all(&block[..n]).map_err(|e| Error::io(path, "writing the disk probe", e))?;
        written += n as u64;
    }
    f.sync_all().map_err(|e| Error::io(path, "syncing the disk probe", e))?;
    Ok(written)
}

/// Writes a `bytes`-byte probe file in `dir` (removed afterwards), then `repeat` times drops it from
/// the page cache and reads it sequentially; returns the seconds of each read and the bytes read.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be written, evicted or read.
pub fn disk_read_bandwidth(dir: &Path, bytes: u64, repeat: usize) -> Result<(Spread, u64)> {
    let path = dir.join(".sparsedisk-bench-disk-probe");
    let result = (|| {
        let mut block = probe_block();
        write_probe(&path, &mut block, bytes)?;
        let (seconds, read) = time_runs(
            repeat,
            || evict_page_cache(&path),
            || {
                let mut f = std::fs::File::open(&path).map_err(|e| Error::io(&path, "opening the disk probe", e))?;
                let mut total = 0u64;
                loop {
                    let n = f.read(&mut block).map_err(|e| Error::io(&path, "reading the disk probe", e))?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                Ok(total)
            },
        )?;
        Ok((Spread::of(&seconds), read))
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// `repeat` times writes a new `bytes`-byte probe file in `dir` in 8 MiB writes and syncs it (the
/// `fsync` is timed: without it the figure would be the page cache's); the previous probe is removed
/// (untimed) before each write and the last one at the end. Returns the seconds of each write and
/// the bytes written.
///
/// Buffered writes plus `fsync` rather than `O_DIRECT`: it is how sparsedisk's writers write, so the
/// figure is the ceiling they are held to.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be written, synced or removed.
pub fn disk_write_bandwidth(dir: &Path, bytes: u64, repeat: usize) -> Result<(Spread, u64)> {
    let path = dir.join(".sparsedisk-bench-disk-write-probe");
    let mut block = probe_block();
    let result = time_runs(
        repeat,
        || {
            // Each write starts with no dirty pages and no old file to overwrite in place.
            let _ = std::fs::remove_file(&path);
            Ok(())
        },
        || write_probe(&path, &mut block, bytes),
    );
    let _ = std::fs::remove_file(&path);
    let (seconds, written) = result?;
    Ok((Spread::of(&seconds), written))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_measure_something() {
        let (s, bytes) = memory_read_bandwidth(1 << 20, 2, 2).unwrap();
        assert_eq!(bytes, 1 << 20);
        assert!(s.median > 0.0 && s.samples.len() == 2);
        let dir = tempfile::tempdir().unwrap();
        let (s, bytes) = disk_read_bandwidth(dir.path(), 3 << 20, 1).unwrap();
        assert_eq!(bytes, 3 << 20);
        assert!(s.median > 0.0);
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "probe file left behind");
        let (s, bytes) = disk_write_bandwidth(dir.path(), 9 << 20, 2).unwrap();
        assert_eq!(bytes, 9 << 20);
        assert!(s.median > 0.0 && s.samples.len() == 2);
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "write probe left behind");
    }
}
