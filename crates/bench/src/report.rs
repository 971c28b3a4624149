//! The report: `results.jsonl` (one [`Record`] per line), `report.md` (tables), `readme-fragment.md`
//! (the same tables for a README section) and SVG plots, all generated from the records alone, so a
//! report can be regenerated from `results.jsonl`.

use super::{Record, Spread};
use plotters::prelude::*;
use sparsedisk::error::{Error, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The plots a report has: file name and what it shows.
pub const PLOTS: [(&str, &str); 3] = [
    ("throughput_vs_cap.svg", "SpMV throughput (GB/s of matrix) against matrix size over the memory cap"),
    ("ns_per_nnz.svg", "sparsedisk's time per nonzero per kernel against the number of nonzeros (in core, warm)"),
    ("baselines.svg", "speed relative to the baselines (baseline time over sparsedisk's; above 1: faster)"),
];

/// Writes `records` to `path` as JSON lines.
///
/// # Errors
///
/// [`Error::Io`].
pub fn write_jsonl(path: &Path, records: &[Record]) -> Result<()> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).map_err(|e| Error::invalid(format!("serialising a record: {e}")))?);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, "writing", e))
}

/// Reads the records of a `results.jsonl`.
///
/// # Errors
///
/// [`Error::Io`]; [`Error::InvalidInput`] naming the line that is not a record.
pub fn read_jsonl(path: &Path) -> Result<Vec<Record>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::invalid(format!("{}:{}: not a benchmark record: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Seconds with three significant digits and a unit.
pub(crate) fn secs(s: f64) -> String {
    if !s.is_finite() {
        "-".into()
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// `median (min-max)` of a spread scaled by `1 / ops`.
fn spread_text(s: &Spread, ops: f64) -> String {
    let ops = ops.max(1.0);
    format!("{} ({} – {})", secs(s.median / ops), secs(s.min / ops), secs(s.max / ops))
}

/// `x` with `digits` decimals, `-` when it is not finite.
pub(crate) fn num(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "-".into()
    }
}

fn ops_of(r: &Record) -> f64 {
    r.params.get("iterations").and_then(|v| v.as_f64()).unwrap_or(1.0)
}

fn ratio_text(r: &Record, baseline: &str) -> String {
    r.ratios.get(baseline).map_or("-".into(), |x| format!("{x:.2}x"))
}

/// The physical limits' table, heading at `level` (`"##"`).
pub fn limits_table(records: &[Record], level: &str) -> String {
    let mut md = String::new();
    let limits: Vec<&Record> = records.iter().filter(|r| r.kernel == "limit").collect();
    let _ = writeln!(md, "{level} Physical limits (measured in the same run)\n");
    let _ = writeln!(md, "| limit | threads | bytes | time median (min – max) | GB/s median (min – max) |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for r in &limits {
        let bytes = r.figures.bytes_moved as f64;
        let rate = r.seconds.map(|s| bytes / s / 1e9);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} ({} – {}) |",
            r.tool,
            r.params.get("threads").map_or("-".into(), |v| v.to_string()),
            sparsedisk::units::format_bytes(r.figures.bytes_moved),
            spread_text(&r.seconds, 1.0),
            num(rate.median, 2),
            num(rate.min, 2),
            num(rate.max, 2)
        );
    }
    md
}

/// The tables (limits, in core, out of core, notes) as Markdown, headings at `level` (`"##"`).
pub fn tables(records: &[Record], level: &str) -> String {
    let mut md = limits_table(records, level);
    let in_core: Vec<&Record> =
        records.iter().filter(|r| r.kernel != "limit" && r.regime == "in_core_warm" && r.note.is_none()).collect();
    let _ = writeln!(md, "\n{level} In core (files in the page cache)\n");
    let _ = writeln!(
        md,
        "Time per operation (a product; an iteration for PageRank and CG; the whole import or SpGEMM), median \
         (min – max) of the repeated runs. GB/s: bytes moved per operation (the matrix's arrays; input and \
         output for import and SpGEMM) over the median; \"of limit\": that over the memory read bandwidth. \
         vs X: X's median time over sparsedisk's (above 1: sparsedisk is faster).\n"
    );
    let _ = writeln!(
        md,
        "| kernel | matrix | nnz | tool | threads | time per op | ns/nnz | GB/s | of limit | vs scipy | vs sprs | vs fmm |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &in_core {
        let m = r.matrix.as_ref();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.kernel,
            m.map_or("-", |m| &m.name),
            m.map_or(0, |m| m.nnz),
            r.tool,
            r.params.get("threads").map_or("-".into(), |v| v.to_string()),
            spread_text(&r.seconds, ops_of(r)),
            num(r.figures.ns_per_nnz, 2),
            num(r.figures.gb_per_s, 2),
            r.limit.as_ref().map_or("-".into(), |l| format!("{:.0}%", l.fraction * 100.0)),
            ratio_text(r, "scipy"),
            ratio_text(r, "sprs"),
            ratio_text(r, "fast_matrix_market"),
        );
    }
    let ooc: Vec<&Record> =
        records.iter().filter(|r| r.regime == "out_of_core_cold" && r.kernel != "limit" && r.note.is_none()).collect();
    let _ = writeln!(md, "\n{level} Out of core (cold cache, under a memory cap)\n");
    let _ = writeln!(
        md,
        "Each run starts with the matrix's files dropped from the page cache and runs in a memory cgroup \
         (page cache included). Cold: the first product; steady: the median of the following ones. GB/s \
         and \"of limit\": the matrix's bytes over the cold product's median, against the disk's cold \
         sequential read bandwidth. vs memmap: numpy.memmap + scipy's cold time over sparsedisk's.\n"
    );
    let _ = writeln!(
        md,
        "| matrix | size | cap | size / cap | tool | cold product | GB/s | of limit | steady | peak memory | vs memmap |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &ooc {
        let m = r.matrix.as_ref();
        let bytes = m.map_or(0, |m| m.bytes);
        let cap = r.cap.as_ref();
        let cap_text = cap.map_or("-".into(), |c| {
            let size = sparsedisk::units::format_bytes(c.requested_bytes);
            if c.applied {
                size
            } else {
                format!("{size} (not applied: {})", c.reason.as_deref().unwrap_or("?"))
            }
        });
        let steady = r.params.get("steady_seconds").and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.map_or("-", |m| &m.name),
            sparsedisk::units::format_bytes(bytes),
            cap_text,
            cap.map_or("-".into(), |c| num(bytes as f64 / c.requested_bytes as f64, 2)),
            r.tool,
            spread_text(&r.seconds, 1.0),
            num(r.figures.gb_per_s, 2),
            r.limit.as_ref().map_or("-".into(), |l| format!("{:.0}%", l.fraction * 100.0)),
            secs(steady),
            cap.and_then(|c| c.peak_bytes).map_or("-".into(), sparsedisk::units::format_bytes),
            ratio_text(r, "numpy.memmap+scipy"),
        );
    }
    let notes: Vec<&Record> = records.iter().filter(|r| r.note.is_some()).collect();
    let cap_notes: Vec<String> =
        records.iter().filter_map(|r| r.cap.as_ref().filter(|c| !c.applied).and_then(|c| c.reason.clone())).collect();
    if !notes.is_empty() || !cap_notes.is_empty() {
        let _ = writeln!(md, "\n{level} Notes\n");
        let mut seen = std::collections::BTreeSet::new();
        for r in notes {
            let what = format!(
                "{} {} on {}: {}",
                r.tool,
                r.kernel,
                r.matrix.as_ref().map_or("-", |m| &m.name),
                r.note.as_deref().unwrap_or("")
            );
            if seen.insert(what.clone()) {
                let _ = writeln!(md, "- {what}");
            }
        }
        for reason in cap_notes {
            if seen.insert(reason.clone()) {
                let _ = writeln!(md, "- memory cap not applied: {reason}");
            }
        }
    }
    md
}

/// The whole `report.md`: a header (suite, command, machine, versions, wall time), the tables and the
/// plots (the scale suite: its own tables, no plots).
pub fn markdown(records: &[Record], command: &str, wall_seconds: f64) -> String {
    let mut md = String::from("# sparsedisk benchmark report\n\n");
    if let Some(r) = records.first() {
        let _ = writeln!(md, "- suite: `{}`, {} measurements, wall time {:.0} s", r.suite, records.len(), wall_seconds);
        let _ = writeln!(md, "- command: `{command}`");
        let _ = writeln!(md, "- machine: {}", r.machine.summary());
        let v = &r.versions;
        let _ = writeln!(
            md,
            "- versions: sparsedisk {}, sprs {}, {}; Python baselines: {}\n",
            v.sparsedisk,
            v.sprs,
            v.rustc_on_path.as_deref().unwrap_or("rustc unknown"),
            match (&v.python, &v.scipy) {
                (Some(p), Some(s)) => format!(
                    "Python {p}, numpy {}, scipy {s}, fast_matrix_market {}",
                    v.numpy.as_deref().unwrap_or("?"),
                    v.fast_matrix_market.as_deref().unwrap_or("not installed")
                ),
                _ => "not run (see the notes)".into(),
            }
        );
    }
    if records.iter().any(|r| r.suite == "scale") {
        md.push_str(&crate::scale::tables(records, "##"));
        return md;
    }
    md.push_str(&tables(records, "##"));
    let _ = writeln!(md, "\n## Plots\n");
    for (file, what) in PLOTS {
        let _ = writeln!(md, "{what}:\n\n![{what}]({file})\n");
    }
    md
}

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("drawing a plot: {e}"))
}

/// A series: name and points.
type Series = (String, Vec<(f64, f64)>);

/// A tick label: `500`, `2.5K`, `4M`, `1.2G`, or a plain number below 1000.
fn compact(x: f64) -> String {
    let (v, unit) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, "G"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "K"),
        _ => (x, ""),
    };
    let text = format!("{v:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{unit}")
}

/// One chart of `series` into `path` (x logarithmic; y logarithmic if `log_y`, else from 0), with horizontal
/// reference lines, points joined by lines if `lines`, and the legend in a panel on the right (so it
/// never hides a point).
#[allow(clippy::too_many_arguments)]
fn chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    hlines: &[(String, f64)],
    log_y: bool,
    lines: bool,
) -> Result<()> {
    // Logarithmic axes are drawn as linear axes over log10 of the values, labelled with the values:
    // evenly spaced ticks at any range (plotters' own log axis labels powers of ten only).
    let fx = |x: f64| x.log10();
    let fy = |y: f64| if log_y { y.log10() } else { y };
    let unfy = move |v: f64| if log_y { 10f64.powf(v) } else { v };
    let usable = |p: &(f64, f64)| p.0 > 0.0 && p.1.is_finite() && p.1 > 0.0;
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in series.iter().flat_map(|s| s.1.iter()).filter(|p| usable(p)) {
        (x0, x1) = (x0.min(fx(p.0)), x1.max(fx(p.0)));
        (y0, y1) = (y0.min(fy(p.1)), y1.max(fy(p.1)));
    }
    for (_, h) in hlines {
        (y0, y1) = (y0.min(fy(*h)), y1.max(fy(*h)));
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if y0 > y1 {
        (y0, y1) = (0.0, 1.0);
    }
    let pad = |a: f64, b: f64| ((b - a) * 0.08).max(0.05);
    let (x0, x1) = (x0 - pad(x0, x1), x1 + pad(x0, x1));
    let (y0, y1) = if log_y { (y0 - pad(y0, y1), y1 + pad(y0, y1)) } else { (0.0, y1 * 1.1) };
    let root = SVGBackend::new(path, (1000, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (plot_area, legend_area) = root.split_horizontally(690);
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&|v| compact(10f64.powf(*v)))
        .y_label_formatter(&|v| compact(unfy(*v)))
        .light_line_style(WHITE)
        .draw()
        .map_err(plot_err)?;
    let colors: Vec<RGBAColor> = (0..series.len()).map(|i| Palette99::pick(i).to_rgba()).collect();
    for (_, line) in hlines {
        chart
            .draw_series(LineSeries::new(vec![(x0, fy(*line)), (x1, fy(*line))], BLACK.mix(0.5).stroke_width(1)))
            .map_err(plot_err)?;
    }
    for ((_, points), color) in series.iter().zip(&colors) {
        let mut points: Vec<(f64, f64)> = points.iter().filter(|p| usable(p)).map(|p| (fx(p.0), fy(p.1))).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        if lines {
            chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2))).map_err(plot_err)?;
        }
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(plot_err)?;
    }
    let style = ("sans-serif", 13).into_font().color(&BLACK);
    let mut y = 50;
    for (name, _) in hlines {
        legend_area.draw(&PathElement::new(vec![(5, y), (25, y)], BLACK.mix(0.5).stroke_width(1))).map_err(plot_err)?;
        legend_area.draw(&Text::new(name.clone(), (32, y - 7), style.clone())).map_err(plot_err)?;
        y += 22;
    }
    for ((name, _), color) in series.iter().zip(&colors) {
        legend_area.draw(&Circle::new((15, y), 4, color.filled())).map_err(plot_err)?;
        legend_area.draw(&Text::new(name.clone(), (32, y - 7), style.clone())).map_err(plot_err)?;
        y += 22;
    }
    root.present().map_err(plot_err)
}

/// Draws the [`PLOTS`] into `dir`.
///
/// # Errors
///
/// [`Error::InvalidInput`] when a plot cannot be drawn or written.
pub fn plots(records: &[Record], dir: &Path) -> Result<()> {
    let ok = |r: &&Record| r.note.is_none() && r.matrix.is_some();
    let limit = |tool: &str| records.iter().find(|r| r.kernel == "limit" && r.tool == tool).map(|r| r.figures.gb_per_s);
    // 1. Throughput against size over cap: out-of-core SpMV (per tool and cap) and in-core SpMV (at the
    //    position of the smallest cap, so that the two regimes share the axis).
    let mut by: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in records.iter().filter(ok).filter(|r| r.kernel == "spmv" && r.regime == "out_of_core_cold") {
        let (Some(m), Some(c)) = (&r.matrix, &r.cap) else { continue };
        let key = format!("{} cold, cap {}", r.tool, sparsedisk::units::format_bytes(c.requested_bytes));
        by.entry(key).or_default().push((m.bytes as f64 / c.requested_bytes as f64, r.figures.gb_per_s));
    }
    let mut hlines = Vec::new();
    if let Some(d) = limit("disk-read") {
        hlines.push((format!("disk cold read {d:.2} GB/s"), d));
    }
    let series: Vec<Series> = by.into_iter().collect();
    chart(
        &dir.join(PLOTS[0].0),
        "SpMV out of core: throughput vs matrix size / memory cap",
        "matrix bytes / memory cap",
        "GB/s of matrix (cold product)",
        &series,
        &hlines,
        false,
        true,
    )?;
    // 2. ns per nonzero per kernel (ours, in core, all threads).
    let mut by: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let cores = records.first().map_or(1, |r| r.machine.cores);
    for r in records.iter().filter(ok).filter(|r| r.tool == "sparsedisk" && r.regime == "in_core_warm") {
        let threads = r.params.get("threads").and_then(|v| v.as_u64()).unwrap_or(cores as u64);
        if threads as usize != cores {
            continue;
        }
        let m = r.matrix.as_ref().map_or(0, |m| m.nnz);
        by.entry(r.kernel.clone()).or_default().push((m as f64, r.figures.ns_per_nnz));
    }
    chart(
        &dir.join(PLOTS[1].0),
        &format!("sparsedisk in core: time per nonzero ({cores} threads)"),
        "nonzeros",
        "ns per nonzero per operation",
        &by.into_iter().collect::<Vec<_>>(),
        &[],
        true,
        false,
    )?;
    // 3. Ratios against the baselines.
    let mut by: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in records.iter().filter(ok).filter(|r| r.tool == "sparsedisk") {
        let threads = r.params.get("threads").and_then(|v| v.as_u64()).unwrap_or(cores as u64);
        if threads as usize != cores && r.regime == "in_core_warm" {
            continue;
        }
        let nnz = r.matrix.as_ref().map_or(0, |m| m.nnz) as f64;
        for (baseline, ratio) in &r.ratios {
            let regime = if r.regime == "in_core_warm" { "" } else { " (out of core)" };
            by.entry(format!("{} vs {baseline}{regime}", r.kernel)).or_default().push((nnz, *ratio));
        }
    }
    chart(
        &dir.join(PLOTS[2].0),
        "sparsedisk against the baselines (baseline time / ours)",
        "nonzeros",
        "speed ratio (above 1: sparsedisk faster)",
        &by.into_iter().collect::<Vec<_>>(),
        &[("1x (parity)".to_string(), 1.0)],
        false,
        false,
    )
}
