//! Zarr v3 and Binsparse metadata documents, as `docs/FORMAT.md` specifies them.

use super::{DenseEntry, IndexType, Layout, ValueType, BINSPARSE_VERSION, FORMAT_VERSION_PLAIN, MANIFEST_FILE};
use serde_json::{json, Value};

/// `zarr.json` of the matrix directory: a Zarr v3 group pointing at the manifest.
pub(crate) fn root_group_metadata() -> String {
    pretty(&json!({
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {
            // The lowest version a matrix can have; the manifest's own `format_version` is authoritative.
            "sparsedisk": {"format_version": FORMAT_VERSION_PLAIN, "manifest": MANIFEST_FILE}
        }
    }))
}

/// `zarr.json` of a one-chunk 1-D array of `len` elements of Zarr type `data_type`.
pub(crate) fn array_metadata(len: u64, data_type: &str) -> String {
    let fill_value = match data_type {
        "bool" => json!(false),
        "float64" | "float32" => json!(0.0),
        _ => json!(0),
    };
    // Zarr requires positive chunk dimensions; an empty array keeps chunk_shape 1 and has no chunk.
    let chunk = len.max(1);
    pretty(&json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": [len],
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [chunk]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill_value,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "attributes": {},
        "storage_transformers": []
    }))
}

/// `zarr.json` of a one-chunk n-D array of Zarr type `data_type` (C order).
pub(crate) fn array_metadata_nd(shape: &[u64], data_type: &str) -> String {
    let fill_value = match data_type {
        "float64" | "float32" => json!(0.0),
        _ => json!(0),
    };
    let chunk: Vec<u64> = shape.iter().map(|&d| d.max(1)).collect();
    pretty(&json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill_value,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "attributes": {},
        "storage_transformers": []
    }))
}

/// `zarr.json` of a segment's `dense` group: what its three arrays mean.
pub(crate) fn dense_group_metadata(layout: Layout, block_shape: [u64; 2], blocks: u64, nnz: u64) -> String {
    let (outer, inner) = match layout {
        Layout::Csr => ("row", "column"),
        Layout::Csc => ("column", "row"),
    };
    pretty(&json!({
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {
            "sparsedisk": {
                "dense_blocks": {
                    "block_format": "DMATR",
                    "block_shape": block_shape,
                    "blocks": blocks,
                    "number_of_stored_values": nnz,
                    "origins": format!("blocks x 3: {outer} offset within the band, {inner} offset, stored entries"),
                    "mask": "blocks x words: bit p % 64 of word p / 64 set when position p of the block is stored",
                    "values": format!("blocks x {} x {}: each block dense and row-major by {outer}", block_shape[0], block_shape[1])
                }
            }
        }
    }))
}

/// `zarr.json` of a segment: a Zarr v3 group carrying the Binsparse descriptor and the segment's place
/// in the whole matrix.
#[allow(clippy::too_many_arguments)]
pub(crate) fn segment_group_metadata(
    layout: Layout,
    global_shape: (u64, u64),
    start: u64,
    end: u64,
    nnz: u64,
    index_type: IndexType,
    value_type: ValueType,
    dense: Option<&DenseEntry>,
) -> String {
    let band = end - start;
    let (shape, offset_key) = match layout {
        Layout::Csr => ([band, global_shape.1], "row_offset"),
        Layout::Csc => ([global_shape.0, band], "col_offset"),
    };
    let values_type = match value_type {
        ValueType::Pattern => "iso[bint8]",
        other => other.name(),
    };
    let mut placement = serde_json::Map::new();
    placement.insert(offset_key.to_string(), json!(start));
    placement.insert("global_shape".to_string(), json!([global_shape.0, global_shape.1]));
    if let Some(d) = dense {
        // The Binsparse descriptor above covers the CSR arrays only; a reader that knows only
        // Binsparse sees the band without these entries.
        placement.insert(
            "dense_blocks".to_string(),
            json!({"group": super::paths::DENSE, "blocks": d.blocks, "number_of_stored_values": d.nnz}),
        );
    }
    pretty(&json!({
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {
            // The attribute named "binsparse" holds the whole Binsparse JSON descriptor, which is
            // itself an object with one member "binsparse" (the reference implementations' reading).
            "binsparse": {
                "binsparse": {
                    "version": BINSPARSE_VERSION,
                    "format": layout.binsparse_format(),
                    "shape": shape,
                    "number_of_stored_values": nnz,
                    "data_types": {
                        "pointers_to_1": "uint64",
                        "indices_1": index_type.name(),
                        "values": values_type
                    }
                }
            },
            "sparsedisk": Value::Object(placement)
        }
    }))
}

fn pretty(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("a JSON value always serialises");
    s.push('\n');
    s
}
