//! The band writer: the rows a task computed ([`TaskOut`]), and the helper thread that writes one
//! band of the product, in order and in a few large writes per task, while the next band is
//! computed. Written buffers go back to a spare list for the next band's tasks.

use crate::element::Element;
use crate::element::StoredIndex;
use crate::error::Result;
use crate::writer::MatrixWriter;
use std::sync::Mutex;

/// The rows a task computed.
pub(super) struct TaskOut<I, T> {
    pub(super) counts: Vec<u64>,
    pub(super) cols: Vec<I>,
    pub(super) vals: Vec<T>,
    pub(super) bad: bool,
}

impl<I: StoredIndex, T: Element> TaskOut<I, T> {
    /// A recycled buffer from `spare` (its pages already mapped), else a new one.
    pub(super) fn reuse(spare: &Mutex<Vec<TaskOut<I, T>>>) -> Self {
        spare.lock().map(|mut v| v.pop()).unwrap_or(None).unwrap_or_else(|| TaskOut {
            counts: Vec::new(),
            cols: Vec::new(),
            vals: Vec::new(),
            bad: false,
        })
    }

    #[inline(always)]
    pub(super) fn emit(&mut self, c: I, v: T, drop_zeros: bool) {
        if !(drop_zeros && v.is_zero()) {
            self.cols.push(c);
            self.vals.push(v);
        }
    }
}

/// Runs `compute` (the next band) on this thread while a helper thread writes `pending` (the band
/// before, if any); returns what `compute` made once both are done.
pub(super) fn compute_while_writing<I: StoredIndex, T: Element>(
    writer: &mut MatrixWriter<T>,
    pending: Option<Vec<TaskOut<I, T>>>,
    spare: &Mutex<Vec<TaskOut<I, T>>>,
    compute: impl FnOnce() -> Vec<TaskOut<I, T>>,
) -> Result<Vec<TaskOut<I, T>>> {
    std::thread::scope(|s| -> Result<Vec<TaskOut<I, T>>> {
        let w = pending.map(|band| s.spawn(|| write_band(writer, band, spare)));
        let outs = compute();
        if let Some(w) = w {
            w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))?;
        }
        Ok(outs)
    })
}

/// Writes a band's rows, in order.
pub(super) fn write_band<I: StoredIndex, T: Element>(
    writer: &mut MatrixWriter<T>,
    band: Vec<TaskOut<I, T>>,
    spare: &Mutex<Vec<TaskOut<I, T>>>,
) -> Result<()> {
    for mut task in band {
        writer.push_rows_encoded(&task.counts, bytemuck::cast_slice::<I, u8>(&task.cols), T::le_bytes(&task.vals))?;
        task.counts.clear();
        task.cols.clear();
        task.vals.clear();
        task.bad = false;
        if let Ok(mut v) = spare.lock() {
            v.push(task);
        }
    }
    Ok(())
}
