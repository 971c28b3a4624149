//! NumPy `.npy` files for vectors and dense blocks of vectors, which numpy users open directly
//! (`numpy.load`, or `numpy.load(..., mmap_mode="r")`).
//!
//! Reading accepts format versions 1.0, 2.0 and 3.0, little-endian `float64`, `float32`, `int64` and
//! `int32` data (converted to `float64`), 1-D or 2-D, C or Fortran order (converted to row-major).
//! Anything else (object arrays, strings, booleans, big-endian data, 3-D arrays, a truncated file) is an
//! [`Error::Parse`] naming the file and what is wrong. Writing produces version 1.0, `<f8`, C order,
//! with the header padded so the data starts 64-byte aligned, as NumPy itself writes it.

use crate::directory::AtomicFile;
use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// A dense array read from `.npy`: row-major `float64` data and its shape (`cols` is 1 for 1-D).
#[derive(Debug, Clone, PartialEq)]
pub struct DenseArray {
    /// Row-major values.
    pub data: Vec<f64>,
    /// Rows (the length of a 1-D array).
    pub rows: usize,
    /// Columns (1 for a 1-D array).
    pub cols: usize,
    /// Whether the file held a 1-D array.
    pub one_dimensional: bool,
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::Parse { path: path.to_path_buf(), line: 1, msg: msg.into() }
}

/// Reads a `.npy` file as `float64`.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read; [`Error::Parse`] for anything that is not a 1-D or 2-D
/// numeric array.
pub fn read_npy(path: &Path) -> Result<DenseArray> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::io(path, "reading a .npy file", e))?;
    parse_npy(&bytes, path)
}

/// Parses the bytes of a `.npy` file (`path` only names it in errors).
///
/// # Errors
///
/// As [`read_npy`].
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<DenseArray> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad(path, "not a NumPy .npy file (no \\x93NUMPY magic)"));
    }
    let (header_len, header_start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(bad(path, format!("unsupported .npy format version {v}"))),
    };
    let header_end = header_start.checked_add(header_len).filter(|&e| e <= bytes.len());
    let Some(header_end) = header_end else { return Err(bad(path, "the .npy header is truncated")) };
    let header =
        std::str::from_utf8(&bytes[header_start..header_end]).map_err(|_| bad(path, "the .npy header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| bad(path, "the .npy header has no 'descr'"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = match dict_value(header, "fortran_order").map(str::trim) {
        Some("True") => true,
        Some("False") => false,
        _ => return Err(bad(path, "the .npy header has no valid 'fortran_order'")),
    };
    let shape_text = dict_value(header, "shape").ok_or_else(|| bad(path, "the .npy header has no 'shape'"))?;
    let dims: Vec<usize> = shape_text
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(path, format!("bad .npy shape {shape_text:?}"))))
        .collect::<Result<_>>()?;
    let (rows, cols, one_dimensional) = match dims.as_slice() {
        [n] => (*n, 1, true),
        [r, c] => (*r, *c, false),
        _ => return Err(bad(path, format!("expected a 1-D or 2-D array, found shape {shape_text}"))),
    };
    let width = match descr {
        "<f8" | "<f4" | "<i8" | "<i4" => descr[2..].parse::<usize>().unwrap_or(8),
        "|u1" | "|b1" | "|i1" => {
            return Err(bad(
                path,
                format!("expected a float64 array, found dtype {descr:?} (use numpy's astype(float))"),
            ))
        }
        d if d.starts_with('>') => {
            return Err(bad(path, format!("big-endian data ({d:?}) is not supported; save with '<f8'")))
        }
        d => return Err(bad(path, format!("expected a numeric array (float64), found dtype {d:?}"))),
    };
    let count = rows.checked_mul(cols).ok_or_else(|| bad(path, "the .npy shape overflows"))?;
    let data_bytes = &bytes[header_end..];
    if Some(data_bytes.len()) != count.checked_mul(width) {
        return Err(bad(
            path,
            format!(
                "the .npy data holds {} bytes, shape {shape_text} of {descr} needs {}",
                data_bytes.len(),
                count.saturating_mul(width)
            ),
        ));
    }
    let mut data: Vec<f64> = match descr {
        "<f8" => data_bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect(),
        "<f4" => {
            data_bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64).collect()
        }
        "<i8" => {
            data_bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64).collect()
        }
        _ => data_bytes.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as f64).collect(),
    };
    if fortran && !one_dimensional && rows > 1 && cols > 1 {
        let mut row_major = vec![0.0; count];
        for c in 0..cols {
            for r in 0..rows {
                row_major[r * cols + c] = data[c * rows + r];
            }
        }
        data = row_major;
    }
    Ok(DenseArray { data, rows, cols, one_dimensional })
}

/// The text of `key`'s value in the header's Python dict literal.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') { rest.find(')')? + 1 } else { rest.find([',', '}']).unwrap_or(rest.len()) };
    Some(&rest[..end])
}

/// Writes `data` as a `float64` `.npy` file of shape `(rows,)` (when `cols` is `None`) or
/// `(rows, cols)`, atomically (the file appears complete or not at all).
///
/// # Errors
///
/// [`Error::InvalidInput`] when the shape does not match the data or `path` is inside a matrix
/// directory ([`refuse_inside_matrix`](super::refuse_inside_matrix)); [`Error::Io`] on write failures.
pub fn write_npy(path: &Path, data: &[f64], rows: usize, cols: Option<usize>) -> Result<()> {
    let count = rows * cols.unwrap_or(1);
    if count != data.len() {
        return Err(Error::invalid(format!(
            "write_npy: {} values do not make a {rows} x {} array",
            data.len(),
            cols.unwrap_or(1)
        )));
    }
    let shape = match cols {
        None => format!("({rows},)"),
        Some(c) => format!("({rows}, {c})"),
    };
    super::refuse_inside_matrix(path)?;
    let mut file = AtomicFile::create(path)?;
    let w = file.writer();
    w.write_all(&npy_header("<f8", &shape)).map_err(|e| Error::io(path, "writing a .npy file", e))?;
    for chunk in data.chunks(1 << 16) {
        let mut buf = Vec::with_capacity(chunk.len() * 8);
        for v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf).map_err(|e| Error::io(path, "writing a .npy file", e))?;
    }
    file.commit(true)
}

/// Writes `data` as a 1-D `int64` `.npy` file, atomically (graph results: BFS levels, component
/// labels).
///
/// # Errors
///
/// [`Error::InvalidInput`] when `path` is inside a matrix directory; [`Error::Io`] on write failures.
pub fn write_npy_i64(path: &Path, data: &[i64]) -> Result<()> {
    super::refuse_inside_matrix(path)?;
    let mut file = AtomicFile::create(path)?;
    let w = file.writer();
    w.write_all(&npy_header("<i8", &format!("({},)", data.len())))
        .map_err(|e| Error::io(path, "writing a .npy file", e))?;
    for chunk in data.chunks(1 << 16) {
        let buf: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
        w.write_all(&buf).map_err(|e| Error::io(path, "writing a .npy file", e))?;
    }
    file.commit(true)
}

/// The magic, version 1.0 and a header dictionary padded so that the data starts at a multiple of 64
/// bytes.
fn npy_header(descr: &str, shape: &str) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    let total = (10 + header.len() + 1).next_multiple_of(64);
    header.push_str(&" ".repeat(total - 10 - header.len() - 1));
    header.push('\n');
    let mut head = Vec::with_capacity(total);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&[1, 0]);
    head.extend_from_slice(&(header.len() as u16).to_le_bytes());
    head.extend_from_slice(header.as_bytes());
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("v.npy");
        write_npy(&p, &[1.0, -2.5, 3.0], 3, None).unwrap();
        let a = read_npy(&p).unwrap();
        assert_eq!((a.data.as_slice(), a.rows, a.cols, a.one_dimensional), (&[1.0, -2.5, 3.0][..], 3, 1, true));
        write_npy(&p, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, Some(3)).unwrap();
        let a = read_npy(&p).unwrap();
        assert_eq!((a.rows, a.cols, a.one_dimensional), (2, 3, false));
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!((bytes.len() - 48) % 64, 0, "data is 64-byte aligned");
        for cut in [0, 5, 9, 20, bytes.len() - 1] {
            assert!(parse_npy(&bytes[..cut], &p).is_err(), "truncated at {cut}");
        }
        let mut bad_dtype = bytes.clone();
        let at = bad_dtype.windows(3).position(|w| w == b"<f8").unwrap();
        bad_dtype[at..at + 3].copy_from_slice(b"|O8");
        assert!(parse_npy(&bad_dtype, &p).unwrap_err().to_string().contains("numeric"));
    }
}
