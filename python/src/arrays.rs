//! numpy arguments: the checks that refuse what the kernels cannot take (with a message saying what
//! was expected), lossless index conversions, and dicts from the library's serializable reports.

use crate::errors::invalid;
use numpy::ndarray::Dimension;
use numpy::{Element, PyArray, PyArray1, PyArrayMethods, PyReadonlyArray, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::borrow::Cow;

/// A short description of `obj` for error messages: `numpy.ndarray of int32, shape (3, 4)` or its
/// Python type.
pub fn describe(obj: &Bound<'_, PyAny>) -> String {
    match obj.cast::<PyUntypedArray>() {
        Ok(a) => {
            let dtype = a.dtype().str().map(|s| s.to_string()).unwrap_or_else(|_| "?".into());
            let contiguous = if a.is_c_contiguous() { "" } else { ", not C-contiguous" };
            let dims: Vec<String> = a.shape().iter().map(|d| d.to_string()).collect();
            let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
            format!("numpy.ndarray of {dtype}, shape {shape}{contiguous}")
        }
        Err(_) => match obj.get_type().name() {
            Ok(name) => format!("a {name}"),
            Err(_) => "an object of unknown type".into(),
        },
    }
}

/// `obj` as a read-only C-contiguous float64 array of `D` dimensions, or an `InvalidInputError`
/// naming `name` and `expected` (e.g. "a C-contiguous float64 array of shape (100,)").
pub fn f64_array<'py, D: Dimension>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    expected: &str,
) -> PyResult<PyReadonlyArray<'py, f64, D>> {
    let refuse = || invalid(format!("{name} must be {expected}, not {}", describe(obj)));
    let untyped = obj.cast::<PyUntypedArray>().map_err(|_| refuse())?;
    if !untyped.is_c_contiguous() {
        return Err(refuse());
    }
    let typed = obj.cast::<PyArray<f64, D>>().map_err(|_| refuse())?;
    typed.try_readonly().map_err(|e| invalid(format!("{name} cannot be read: {e}")))
}

/// Values of one numpy dtype as a slice: borrowed when the array is C-contiguous, else copied.
pub fn slice_of<'a, T: Element + Copy>(a: &'a PyReadonlyArray<'_, T, numpy::Ix1>) -> Cow<'a, [T]> {
    match a.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}

/// A 1-D array of non-negative integers as `u64`: borrowed for C-contiguous uint64 (and int64, once
/// checked non-negative), converted for the other integer dtypes. Holds the read-only borrow.
pub enum Indices<'py> {
    /// uint64.
    U64(PyReadonlyArray<'py, u64, numpy::Ix1>),
    /// int64, checked non-negative.
    I64(PyReadonlyArray<'py, i64, numpy::Ix1>),
    /// Any other integer dtype (or a non-contiguous array), converted.
    Owned(Vec<u64>),
}

impl Indices<'_> {
    /// The indices.
    pub fn as_slice(&self) -> Cow<'_, [u64]> {
        match self {
            Indices::U64(a) => slice_of(a),
            Indices::I64(a) => match a.as_slice() {
                Ok(s) => Cow::Borrowed(bytemuck::cast_slice(s)),
                Err(_) => Cow::Owned(a.as_array().iter().map(|&v| v as u64).collect()),
            },
            Indices::Owned(v) => Cow::Borrowed(v),
        }
    }
}

/// `obj` as 1-D non-negative integer indices (any integer dtype); `InvalidInputError` for another
/// dtype or a negative entry, naming `name`.
pub fn indices<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Indices<'py>> {
    let refuse = || invalid(format!("{name} must be a 1-D numpy array of integers, not {}", describe(obj)));
    let negative = |k: usize, v: i64| invalid(format!("{name}[{k}] is {v}: indices cannot be negative"));
    fn read<'py, T: Element>(a: &Bound<'py, PyArray1<T>>, name: &str) -> PyResult<PyReadonlyArray<'py, T, numpy::Ix1>> {
        a.try_readonly().map_err(|e| invalid(format!("{name} cannot be read: {e}")))
    }
    if let Ok(a) = obj.cast::<PyArray1<u64>>() {
        return Ok(Indices::U64(read(a, name)?));
    }
    if let Ok(a) = obj.cast::<PyArray1<i64>>() {
        let a = read(a, name)?;
        if let Some((k, &v)) = a.as_array().iter().enumerate().find(|(_, &v)| v < 0) {
            return Err(negative(k, v));
        }
        return Ok(Indices::I64(a));
    }
    macro_rules! convert {
        ($($t:ty),*) => {$(
            if let Ok(a) = obj.cast::<PyArray1<$t>>() {
                let a = read(a, name)?;
                let mut out = Vec::with_capacity(a.len());
                for (k, &v) in a.as_array().iter().enumerate() {
                    #[allow(unused_comparisons)]
                    if v < 0 {
                        return Err(negative(k, v as i64));
                    }
                    out.push(v as u64);
                }
                return Ok(Indices::Owned(out));
            }
        )*};
    }
    convert!(i32, u32, i16, u16, i8, u8);
    Err(refuse())
}

/// A dict from anything serde serializes as a JSON object (the library's reports and stats).
pub fn to_dict<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyDict>> {
    let text = serde_json::to_string(value).map_err(|e| invalid(format!("cannot convert a report: {e}")))?;
    let object = py.import("json")?.call_method1("loads", (text,))?;
    Ok(object.cast_into::<PyDict>()?)
}
