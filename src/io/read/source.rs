//! Opening the input (file, standard input, gzip) and the two ways text leaves it: line by line for
//! the header ([`Prefix`]), block by block from a reader thread for the data ([`read_blocks`]).

use super::MAX_LINE_BYTES;
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

/// An open input: the decompressed text stream and a counter of the bytes read from the file as
/// stored, for progress.
pub(crate) struct Input {
    pub reader: Box<dyn Read + Send>,
    pub stored: Arc<AtomicU64>,
    pub file_size: Option<u64>,
    /// What reading does, for [`Error::Io`]'s `action`.
    pub action: &'static str,
}

/// Counts the bytes that pass through.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// How errors name the input: `<stdin>` for standard input (`-`), else its path.
pub(crate) fn shown(path: &Path) -> PathBuf {
    if path == Path::new("-") {
        PathBuf::from("<stdin>")
    } else {
        path.to_path_buf()
    }
}

/// Opens `path` (`-`: standard input), decompressing when the name ends in `.gz` or the content starts
/// with the gzip magic bytes.
pub(crate) fn open_input(path: &Path) -> Result<Input> {
    let stored = Arc::new(AtomicU64::new(0));
    let (raw, file_size): (Box<dyn Read + Send>, Option<u64>) = if path == Path::new("-") {
        (Box::new(io::stdin()), None)
    } else {
        let file = File::open(path).map_err(|e| Error::io(path, "opening the input", e))?;
        let size = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        (Box::new(file), size)
    };
    let mut buffered = BufReader::with_capacity(1 << 16, Counting { inner: raw, count: Arc::clone(&stored) });
    let named_gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let magic =
        buffered.fill_buf().map_err(|e| Error::io(shown(path), "reading the input", e))?.starts_with(&[0x1f, 0x8b]);
    if named_gz || magic {
        Ok(Input {
            reader: Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            stored,
            file_size,
            action: "reading and decompressing the input (gzip)",
        })
    } else {
        Ok(Input { reader: Box::new(buffered), stored, file_size, action: "reading the input" })
    }
}

/// One line of the header, by position in [`Prefix`]'s buffer. Valid until the next `peek_line`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    pub start: usize,
    /// End of the content (before `\n`; a `\r` is left in).
    pub end: usize,
    /// Start of the next line.
    pub next: usize,
    /// 1-based line number.
    pub number: u64,
}

/// The start of the text, read line by line while the header is parsed. What the header does not
/// consume is handed to the block reader.
pub(crate) struct Prefix {
    input: Input,
    path: PathBuf,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Lines consumed, a last line without `\n` included.
    lines: u64,
    /// Text bytes consumed (a byte order mark included).
    bytes: u64,
}

/// What the header left for the data reader.
pub(crate) struct Rest {
    pub input: Input,
    pub carry: Vec<u8>,
    pub eof: bool,
    pub lines: u64,
    pub bytes: u64,
}

impl Prefix {
    /// Starts reading `input` (opened from `path`), skipping a UTF-8 byte order mark.
    pub fn new(input: Input, path: &Path) -> Result<Prefix> {
        let mut prefix = Prefix { input, path: shown(path), buf: Vec::new(), pos: 0, eof: false, lines: 0, bytes: 0 };
        while prefix.buf.len() < 3 && !prefix.eof {
            prefix.fill()?;
        }
        if prefix.buf.starts_with(b"\xEF\xBB\xBF") {
            prefix.pos = 3;
            prefix.bytes = 3;
        }
        Ok(prefix)
    }

    /// Size of the file as stored, when known.
    pub fn file_size(&self) -> Option<u64> {
        self.input.file_size
    }

    /// Lines consumed so far.
    pub fn lines_consumed(&self) -> u64 {
        self.lines
    }

    fn fill(&mut self) -> Result<()> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let want = 1 << 16;
        let n = (&mut self.input.reader)
            .take(want)
            .read_to_end(&mut self.buf)
            .map_err(|e| Error::io(&self.path, self.input.action, e))?;
        if (n as u64) < want {
            self.eof = true;
        }
        Ok(())
    }

    /// The next line, not consumed; `None` at the end of the input.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when reading fails, [`Error::Parse`] for a line longer than [`MAX_LINE_BYTES`].
    pub fn peek_line(&mut self) -> Result<Option<Line>> {
        let mut searched = 0;
        loop {
            if let Some(k) = memchr::memchr(b'\n', &self.buf[self.pos + searched..]) {
                let end = self.pos + searched + k;
                return Ok(Some(Line { start: self.pos, end, next: end + 1, number: self.lines + 1 }));
            }
            if self.eof {
                if self.pos == self.buf.len() {
                    return Ok(None);
                }
                let end = self.buf.len();
                return Ok(Some(Line { start: self.pos, end, next: end, number: self.lines + 1 }));
            }
            searched = self.buf.len() - self.pos;
            if searched > MAX_LINE_BYTES {
                return Err(self.error(self.lines + 1, long_line_message()));
            }
            self.fill()?;
        }
    }

    /// The content of `line` (without `\n`).
    pub fn slice(&self, line: Line) -> &[u8] {
        &self.buf[line.start..line.end]
    }

    /// Consumes `line`, which must be the line `peek_line` just returned.
    pub fn consume(&mut self, line: Line) {
        debug_assert_eq!(line.start, self.pos);
        self.bytes += (line.next - line.start) as u64;
        self.pos = line.next;
        self.lines += 1;
    }

    /// A parse error at `line` of this input.
    pub fn error(&self, line: u64, msg: impl Into<String>) -> Error {
        Error::Parse { path: self.path.clone(), line, msg: msg.into() }
    }

    /// Hands the unconsumed text and the stream over to the data reader.
    pub fn into_rest(mut self) -> Rest {
        self.buf.drain(..self.pos);
        Rest { input: self.input, carry: self.buf, eof: self.eof, lines: self.lines, bytes: self.bytes }
    }
}

pub(crate) fn long_line_message() -> String {
    format!("line is longer than {} MiB: is this a line-oriented text file?", MAX_LINE_BYTES >> 20)
}

/// A block of text: whole lines (the last block may end without `\n`).
pub(crate) struct Block {
    /// The buffer; the text is `data[..len]`. Bytes past `len` are stale but initialized, so a recycled
    /// buffer is never zeroed again.
    pub data: Vec<u8>,
    pub len: usize,
    /// Bytes of the stored file read when the block was complete.
    pub stored: u64,
}

impl Block {
    /// The block's text.
    pub fn text(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// What the reader thread sends.
pub(crate) enum Msg {
    Block(Block),
    Failed(io::Error),
    /// No line break within [`MAX_LINE_BYTES`] from the start of the next block.
    LongLine,
}

/// The reader thread: reads `reader` in blocks of about `block_bytes`, each cut after its last `\n` (the
/// rest is carried into the next block; a line longer than a block makes a longer block), and sends them
/// in order until the end of the input, a read error, or the receiver hanging up. Buffers come back
/// through `recycle`, so the steady state allocates nothing and copies only the carried partial line.
pub(crate) fn read_blocks(
    mut reader: Box<dyn Read + Send>,
    stored: Arc<AtomicU64>,
    mut carry: Vec<u8>,
    mut eof: bool,
    block_bytes: usize,
    tx: SyncSender<Msg>,
    recycle: Receiver<Vec<u8>>,
) {
    // Reads go into initialized bytes (`Read::read` into `&mut [u8]`): `read_to_end` into spare capacity
    // would zero it first on every block, which costs 5% of the whole import.
    fn grow(buf: &mut Vec<u8>, len: usize) {
        if buf.len() < len {
            buf.resize(len, 0);
        }
    }
    loop {
        let mut buf = recycle.try_recv().unwrap_or_default();
        grow(&mut buf, carry.len());
        buf[..carry.len()].copy_from_slice(&carry);
        let mut filled = carry.len();
        carry.clear();
        let mut target = block_bytes;
        // Bytes before `searched` hold no newline.
        let mut searched = 0;
        let cut = loop {
            if !eof && filled < target {
                grow(&mut buf, target);
                while filled < target {
                    match reader.read(&mut buf[filled..target]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Msg::Failed(e));
                            return;
                        }
                    }
                }
            }
            if eof && filled <= target {
                break filled;
            }
            // The last newline within the target size, else the first one after it.
            let limit = filled.min(target);
            let from = searched.min(limit);
            if let Some(k) = memchr::memrchr(b'\n', &buf[from..limit]) {
                break from + k + 1;
            }
            if let Some(k) = memchr::memchr(b'\n', &buf[limit..filled]) {
                break limit + k + 1;
            }
            if eof {
                break filled;
            }
            if filled > MAX_LINE_BYTES {
                let _ = tx.send(Msg::LongLine);
                return;
            }
            searched = filled;
            target = filled + block_bytes;
        };
        carry.extend_from_slice(&buf[cut..filled]);
        if cut == 0 {
            return;
        }
        let block = Block { data: buf, len: cut, stored: stored.load(Ordering::Relaxed) };
        if tx.send(Msg::Block(block)).is_err() || (eof && carry.is_empty()) {
            return;
        }
    }
}
