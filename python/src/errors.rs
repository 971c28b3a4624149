//! The exceptions of `sparsedisk._native` and the one mapping from the library's errors to them.
//!
//! `Error` is made with `create_exception!` (base `Exception`). The others need two bases each
//! (`NotFoundError` is also a `FileNotFoundError`, `IoError` an `OSError`, ...), which
//! `create_exception!` cannot express, so they are made once per interpreter by calling Python's
//! `type(name, (Error, Builtin), namespace)` when the module is initialised, kept in [`Exceptions`]
//! and added to the module. Both kinds live in `sparsedisk._native`; the Python package re-exports
//! them.

use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use sparsedisk::Error;

/// The base class, in a module of its own so that its Python name can be `Error`.
mod base {
    use pyo3::exceptions::PyException;
    pyo3::create_exception!(
        sparsedisk._native,
        Error,
        PyException,
        "Base class of every error sparsedisk raises. Its message is the library's, naming the file at fault."
    );
}

pub use base::Error as SparsediskError;

/// The exception classes with two bases, created at module initialisation.
pub struct Exceptions {
    /// `NotFoundError(Error, FileNotFoundError)`.
    not_found: Py<PyType>,
    /// `InvalidInputError(Error, ValueError)`.
    invalid_input: Py<PyType>,
    /// `CorruptError(Error)`.
    corrupt: Py<PyType>,
    /// `IoError(Error, OSError)`.
    io: Py<PyType>,
    /// `ParseError(Error, ValueError)`.
    parse: Py<PyType>,
    /// `InterruptedError(Error)`.
    interrupted: Py<PyType>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

/// Makes `class name(*bases)` with `doc`, in module `sparsedisk._native`.
fn make_class<'py>(py: Python<'py>, name: &str, bases: &[Bound<'py, PyType>], doc: &str) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__doc__", doc)?;
    namespace.set_item("__module__", "sparsedisk._native")?;
    let bases = PyTuple::new(py, bases)?;
    let class = py.get_type::<PyType>().call1((name, bases, namespace))?;
    Ok(class.cast_into::<PyType>()?.unbind())
}

fn create(py: Python<'_>) -> PyResult<Exceptions> {
    let base = py.get_type::<SparsediskError>();
    let value_error = py.get_type::<PyValueError>();
    Ok(Exceptions {
        not_found: make_class(
            py,
            "NotFoundError",
            &[base.clone(), py.get_type::<PyFileNotFoundError>()],
            "The path is not a sparsedisk matrix (missing, or a directory without manifest.json), or an \
             input file does not exist. Also a FileNotFoundError.",
        )?,
        invalid_input: make_class(
            py,
            "InvalidInputError",
            &[base.clone(), value_error.clone()],
            "The arguments cannot be used: a shape or dtype mismatch, an entry outside the matrix, an \
             unknown option, an output directory that already holds a matrix. Also a ValueError.",
        )?,
        corrupt: make_class(
            py,
            "CorruptError",
            std::slice::from_ref(&base),
            "A file of a matrix does not hold what the format requires (bad structure, checksum \
             mismatch, unsupported format version). Regenerate the matrix or restore it from a copy.",
        )?,
        io: make_class(
            py,
            "IoError",
            &[base.clone(), py.get_type::<PyOSError>()],
            "An operating-system I/O error (permission, full disk, ...) on the file the message names. \
             Also an OSError.",
        )?,
        parse: make_class(
            py,
            "ParseError",
            &[base.clone(), value_error],
            "A text input (Matrix Market, edge list, CSV) could not be parsed; the message gives the \
             file and line. Also a ValueError.",
        )?,
        interrupted: make_class(
            py,
            "InterruptedError",
            std::slice::from_ref(&base),
            "The call stopped because cancellation was requested (a Ctrl-C during another sparsedisk \
             call in this process). Nothing was published. A Ctrl-C during this call itself raises \
             KeyboardInterrupt.",
        )?,
    })
}

/// The classes, created on first use.
pub fn exceptions(py: Python<'_>) -> PyResult<&'static Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || create(py))
}

/// Adds every exception class to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<SparsediskError>())?;
    let e = exceptions(py)?;
    for class in [&e.not_found, &e.invalid_input, &e.corrupt, &e.io, &e.parse, &e.interrupted] {
        let class = class.bind(py);
        m.add(class.name()?, class)?;
    }
    Ok(())
}

/// The Python exception for a library error, carrying its message:
///
/// | library error | exception |
/// |---|---|
/// | `NotAMatrix`; `Io` whose cause is "not found" | `NotFoundError` |
/// | `Io` (other causes) | `IoError` |
/// | `InvalidInput`, `OutOfBounds` | `InvalidInputError` |
/// | `Corrupt`, `ChecksumMismatch`, `UnsupportedVersion` | `CorruptError` |
/// | `Parse` | `ParseError` |
/// | `Interrupted` | `InterruptedError` |
/// | anything added later | `Error` |
pub fn to_py_err(err: Error) -> PyErr {
    Python::attach(|py| {
        // The library's messages speak the command line's language in one place.
        let message = err.to_string().replace("pass --force to replace it", "pass overwrite=True to replace it");
        let Ok(e) = exceptions(py) else {
            return SparsediskError::new_err(message);
        };
        let class = match &err {
            Error::NotAMatrix { .. } => &e.not_found,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => &e.not_found,
            Error::Io { .. } => &e.io,
            Error::InvalidInput(_) | Error::OutOfBounds { .. } => &e.invalid_input,
            Error::Corrupt { .. } | Error::ChecksumMismatch { .. } | Error::UnsupportedVersion { .. } => &e.corrupt,
            Error::Parse { .. } => &e.parse,
            Error::Interrupted => &e.interrupted,
            _ => return SparsediskError::new_err(message),
        };
        PyErr::from_type(class.bind(py).clone(), message)
    })
}

/// An `InvalidInputError` with `message` (for checks made in the binding).
pub fn invalid(message: impl Into<String>) -> PyErr {
    to_py_err(Error::invalid(message))
}

/// The error for a panic inside the engine (a bug): a `sparsedisk.Error` saying so, rather than
/// PyO3's `PanicException`, which derives from `BaseException` and escapes `except Exception`.
pub fn internal(panic: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string());
    SparsediskError::new_err(format!(
        "internal error in sparsedisk (a bug; please report it with the input that caused it): {what}"
    ))
}

/// Extension: `result.py()` turns a library result into a Python one.
pub trait IntoPy<T> {
    /// The result with its error mapped by [`to_py_err`].
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for sparsedisk::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}
