//! The read-ahead stream: how an [`Operator`]'s segments reach the compute, resident or streamed,
//! read ahead on a reader thread and released after use (see [`CachePolicy`]).

use super::operator::{CachePolicy, Operator, READ_AHEAD_SEGMENTS};
use crate::error::{Error, Result};
use crate::segment::MappedSegment;
use std::sync::atomic::Ordering;

/// Visits the segments in order. Resident segments are visited as they are; with the managed policy,
/// a reader thread reads each segment in (mapping the streamed ones) up to [`READ_AHEAD_SEGMENTS`]
/// ahead of the compute, and streamed segments are unmapped once computed and, when the matrix does not
/// fit the resident budget, dropped from the page cache.
pub(super) fn stream(op: &Operator<'_>, mut visit: impl FnMut(&MappedSegment) -> Result<()>) -> Result<()> {
    let a = op.matrix;
    let n = a.segments().len();
    let first = op.resident.len();
    if op.policy == CachePolicy::Kernel || (first == n && op.warm.load(Ordering::Relaxed)) {
        return op.resident.iter().try_for_each(visit);
    }
    let resident = &op.resident;
    std::thread::scope(|scope| -> Result<()> {
        // The reader sends `None` for a resident segment it has read in, `Some` for a streamed one it
        // has mapped and read in. The channel's bound is the read-ahead window; when the compute stops
        // early (an error), the receiver is dropped and the reader's next send ends it.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Option<MappedSegment>>>(READ_AHEAD_SEGMENTS - 1);
        scope.spawn(move || {
            for i in 0..n {
                let item = if let Some(seg) = resident.get(i) {
                    seg.populate();
                    Ok(None)
                } else {
                    crate::scan::map_sequential(a, i).map(|seg| {
                        seg.populate();
                        Some(seg)
                    })
                };
                let failed = item.is_err();
                if tx.send(item).is_err() || failed {
                    return;
                }
            }
        });
        // Computed segments are unmapped (and dropped from the page cache) on a third thread: for a
        // 64 MiB segment that takes longer than computing a banded one, and is not the compute's work.
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<MappedSegment>(1);
        let drop_streamed = op.drop_streamed;
        scope.spawn(move || {
            for seg in done_rx {
                let paths = seg.array_paths();
                // Unmapped first: the kernel does not drop pages that are still mapped.
                drop(seg);
                if drop_streamed {
                    paths.iter().for_each(|p| crate::storage::drop_clean_pages(p));
                }
            }
        });
        for i in 0..n {
            let item = rx.recv().map_err(|_| Error::invalid("the segment reader thread stopped unexpectedly"))?;
            match item? {
                None => visit(resident.get(i).expect("the reader sends None only for resident segments"))?,
                Some(seg) => {
                    seg.check_row_pointers()?;
                    visit(&seg)?;
                    // The releaser only stops when this sender is dropped, so the send cannot fail.
                    let _ = done_tx.send(seg);
                }
            }
        }
        Ok(())
    })?;
    if first == n {
        op.warm.store(true, Ordering::Relaxed);
    }
    Ok(())
}
