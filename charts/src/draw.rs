//! Drawing the charts as SVG text with plotters' SVG backend.
//!
//! Text sizes here are plotters' sizes; the SVG gets `font-size` of a size
//! over 1.24. Widths of text are estimated (no font is read), generously, at
//! half a size per character, which fits the common sans-serif fonts.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::charts::{Bars, Chart, Lines, Panel};
use crate::error::Error;

const WIDTH: u32 = 1100;
/// The room across the top for the title, machine line and legend.
const HEADER_WIDTH: i32 = 1100 - 32;
const FONT: &str = "sans-serif";
const TITLE_SIZE: f64 = 21.0;
const MACHINE_SIZE: f64 = 17.0;
const LEGEND_SIZE: f64 = 16.0;
const LABEL_SIZE: f64 = 15.0;
const VALUE_SIZE: f64 = 12.0;
const AXIS_DESC_SIZE: f64 = 16.0;

/// Okabe and Ito's palette, which reads for the common kinds of colour
/// blindness; logstore, always the first series, takes the blue.
const COLORS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(213, 94, 0),
    RGBColor(86, 180, 233),
];
const STRIPE: RGBColor = RGBColor(244, 244, 244);
const MUTED: RGBColor = RGBColor(110, 110, 110);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// The chart as the text of an SVG file.
///
/// # Errors
///
/// plotters failed to draw (the error names the file).
pub fn svg(chart: &Chart) -> Result<String, Error> {
    let mut text = String::new();
    let drawn = match chart {
        Chart::Bars(bars) => draw_bars(bars, &mut text),
        Chart::Lines(lines) => draw_lines(lines, &mut text),
    };
    drawn.map_err(|reason| Error::Draw {
        file: chart.file().to_owned(),
        reason,
    })?;
    Ok(text)
}

fn text_width(text: &str, size: f64) -> i32 {
    (text.chars().count() as f64 * size * 0.5).ceil() as i32
}

fn style(size: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, size).into_font().color(&color).pos(Pos::new(h, v))
}

fn fail<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Rows of legend entries across `width`, each (label, colour).
fn legend_rows(entries: &[(&str, RGBColor)], width: i32) -> Vec<Vec<(String, RGBColor)>> {
    let mut rows: Vec<Vec<(String, RGBColor)>> = vec![Vec::new()];
    let mut used = 0;
    for &(label, color) in entries {
        let w = 26 + text_width(label, LEGEND_SIZE) + 24;
        if used + w > width && !rows.last().is_some_and(Vec::is_empty) {
            rows.push(Vec::new());
            used = 0;
        }
        used += w;
        if let Some(row) = rows.last_mut() {
            row.push((label.to_owned(), color));
        }
    }
    rows
}

const HEADER_TOP: i32 = 12;
const TITLE_LINE: i32 = 26;
const MACHINE_LINE: i32 = 22;
const LEGEND_ROW: i32 = 24;

/// The title and machine line, each wrapped at spaces to the header's
/// width, and the legend's rows.
struct Header {
    title: Vec<String>,
    machine: Vec<String>,
    legend: Vec<Vec<(String, RGBColor)>>,
}

impl Header {
    fn new(title: &str, machine: &str, entries: &[(&str, RGBColor)]) -> Header {
        Header {
            title: wrap(title, TITLE_SIZE, HEADER_WIDTH),
            machine: wrap(&format!("Machine: {machine}"), MACHINE_SIZE, HEADER_WIDTH),
            legend: legend_rows(entries, HEADER_WIDTH),
        }
    }

    fn height(&self) -> i32 {
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        HEADER_TOP
            + TITLE_LINE * count(self.title.len())
            + MACHINE_LINE * count(self.machine.len())
            + 12
            + LEGEND_ROW * count(self.legend.len())
            + 6
    }

    /// The title, the machine line and the legend, across the top of `area`.
    fn draw(&self, area: &Area<'_>) -> Result<(), String> {
        let left = 16;
        let mut y = HEADER_TOP;
        let title = (FONT, TITLE_SIZE, FontStyle::Bold)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Top));
        for line in &self.title {
            area.draw_text(line, &title, (left, y)).map_err(fail)?;
            y += TITLE_LINE;
        }
        for line in &self.machine {
            area.draw_text(
                line,
                &style(MACHINE_SIZE, MUTED, HPos::Left, VPos::Top),
                (left, y),
            )
            .map_err(fail)?;
            y += MACHINE_LINE;
        }
        y += 12;
        for row in &self.legend {
            let mut x = left;
            for (label, color) in row {
                area.draw(&Rectangle::new(
                    [(x, y + 3), (x + 18, y + 17)],
                    color.filled(),
                ))
                .map_err(fail)?;
                area.draw_text(
                    label,
                    &style(LEGEND_SIZE, BLACK, HPos::Left, VPos::Center),
                    (x + 26, y + 10),
                )
                .map_err(fail)?;
                x += 26 + text_width(label, LEGEND_SIZE) + 24;
            }
            y += LEGEND_ROW;
        }
        Ok(())
    }
}

/// `text` in lines no wider than `width` by the estimate, broken at spaces
/// (a single word wider than `width` keeps a line to itself).
fn wrap(text: &str, size: f64, width: i32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if text_width(&format!("{line} {word}"), size) <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// "1.5M", "20k", "7": numbers of operations or documents.
fn compact(v: f64) -> String {
    let (scaled, suffix) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if scaled >= 100.0 || scaled == scaled.round() {
        0
    } else {
        1
    };
    let text = format!("{scaled:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{suffix}")
}

/// Plain numbers for times and sizes: "0.5", "20", "1000".
fn plain(v: f64) -> String {
    if v >= 10.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        let text = format!("{v:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Whole decades around `lo..hi` (both positive).
///
/// # Errors
///
/// A range whose decades an `f64` cannot hold: plotters never finishes
/// laying out the ticks of an infinite axis.
fn decades(lo: f64, hi: f64) -> Result<(f64, f64), String> {
    let lo = 10f64.powf(lo.log10().floor());
    let mut hi_decade = 10f64.powf(hi.log10().ceil());
    if hi_decade <= lo {
        hi_decade = lo * 10.0;
    }
    finite(lo, hi_decade)
}

/// `lo..hi` when both ends are finite numbers.
///
/// # Errors
///
/// An end that is infinite or not a number: a figure too large to draw.
fn finite(lo: f64, hi: f64) -> Result<(f64, f64), String> {
    if lo.is_finite() && hi.is_finite() {
        Ok((lo, hi))
    } else {
        Err(format!(
            "a figure too large to draw (an axis from {lo} to {hi})"
        ))
    }
}

fn draw_bars(bars: &Bars, out: &mut String) -> Result<(), String> {
    let n_series = bars.series.len();
    let rows = bars.rows.len();
    let entries: Vec<(&str, RGBColor)> = bars
        .series
        .iter()
        .zip(COLORS.iter().cycle())
        .map(|(s, &c)| (s.label, c))
        .collect();
    let header = Header::new(&bars.title, &bars.machine, &entries);
    let bar_px = if n_series > 2 { 11 } else { 12 };
    let row_px = i32::try_from(n_series).map_err(fail)? * bar_px + 10;
    let axis_px = 60;
    let plot_px = row_px * i32::try_from(rows).map_err(fail)?;
    let height = header.height() + 10 + plot_px + axis_px + 20;
    let label_px = bars
        .rows
        .iter()
        .map(|r| text_width(r, LABEL_SIZE))
        .max()
        .unwrap_or(0)
        + 14;

    let values: Vec<f64> = bars
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    if values.is_empty() {
        return Err("no figure in the table to draw".to_owned());
    }
    // Room to the right of the longest bar for its value.
    let (lo, hi) = decades(lo, hi * 1.8)?;

    {
        let root = SVGBackend::with_string(out, (WIDTH, u32::try_from(height).map_err(fail)?))
            .into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let (top, body) = root.split_vertically(header.height());
        header.draw(&top)?;

        let n = rows as f64;
        let mut chart = ChartBuilder::on(&body)
            .margin_top(10)
            .margin_bottom(20)
            .margin_right(30)
            .x_label_area_size(axis_px)
            .y_label_area_size(label_px)
            .build_cartesian_2d((lo..hi).log_scale(), -0.5..n - 0.5)
            .map_err(fail)?;
        // Row i (the table's order) at y = n - 1 - i, so the first is on top.
        let y_of = |i: usize| n - 1.0 - i as f64;
        chart
            .draw_series((0..rows).step_by(2).map(|i| {
                Rectangle::new([(lo, y_of(i) - 0.5), (hi, y_of(i) + 0.5)], STRIPE.filled())
            }))
            .map_err(fail)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(12)
            .x_label_formatter(&|v| compact(*v))
            .x_label_style((FONT, LABEL_SIZE))
            .x_desc(bars.axis)
            .axis_desc_style((FONT, AXIS_DESC_SIZE))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(fail)?;

        let band = 0.8 / n_series as f64;
        for (k, (series, &color)) in bars.series.iter().zip(COLORS.iter().cycle()).enumerate() {
            for (i, value) in series.values.iter().enumerate() {
                let top_y = y_of(i) + 0.4 - band * k as f64;
                let bottom_y = top_y - band * 0.88;
                let middle = (top_y + bottom_y) / 2.0;
                let (px, py) = match value {
                    Some(v) if *v > 0.0 => {
                        chart
                            .draw_series([Rectangle::new(
                                [(lo, bottom_y), (*v, top_y)],
                                color.filled(),
                            )])
                            .map_err(fail)?;
                        chart.backend_coord(&(*v, middle))
                    }
                    _ => chart.backend_coord(&(lo, middle)),
                };
                let text = match value {
                    Some(v) if *v > 0.0 => compact(*v),
                    Some(_) => "0".to_owned(),
                    None => "n/a".to_owned(),
                };
                root.draw_text(
                    &text,
                    &style(VALUE_SIZE, MUTED, HPos::Left, VPos::Center),
                    (px + 4, py),
                )
                .map_err(fail)?;
            }
        }
        for (i, label) in bars.rows.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(lo, y_of(i)));
            root.draw_text(
                label,
                &style(LABEL_SIZE, BLACK, HPos::Right, VPos::Center),
                (px - 8, py),
            )
            .map_err(fail)?;
        }
        root.present().map_err(fail)?;
    }
    Ok(())
}

fn draw_lines(lines: &Lines, out: &mut String) -> Result<(), String> {
    let mut entries = Vec::new();
    let mut colors = COLORS.iter().cycle();
    let mut panel_colors = Vec::new();
    for panel in &lines.panels {
        let mut these = Vec::new();
        for series in &panel.series {
            let color = *colors.next().unwrap_or(&BLACK);
            entries.push((series.label, color));
            these.push(color);
        }
        panel_colors.push(these);
    }
    let header = Header::new(&lines.title, &lines.machine, &entries);
    let height = header.height() + 520;
    {
        let root = SVGBackend::with_string(out, (WIDTH, u32::try_from(height).map_err(fail)?))
            .into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let (top, body) = root.split_vertically(header.height());
        header.draw(&top)?;
        let areas = body.split_evenly((1, lines.panels.len()));
        for ((panel, area), colors) in lines.panels.iter().zip(&areas).zip(&panel_colors) {
            draw_panel(panel, area, lines.x_axis, colors)?;
        }
        root.present().map_err(fail)?;
    }
    Ok(())
}

fn draw_panel(
    panel: &Panel,
    area: &Area<'_>,
    x_axis: &str,
    colors: &[RGBColor],
) -> Result<(), String> {
    let points: Vec<(f64, f64)> = panel
        .series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .collect();
    if points.is_empty() {
        return Err(format!("no figure for \"{}\"", panel.y_axis));
    }
    let x_lo = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x_hi = points.iter().map(|p| p.0).fold(0.0, f64::max);
    let y_lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_hi = points.iter().map(|p| p.1).fold(0.0, f64::max);
    if x_lo <= 0.0 {
        return Err(format!(
            "a document count at or below zero on the log axis of \"{x_axis}\""
        ));
    }
    if panel.log && y_lo <= 0.0 {
        return Err(format!(
            "a value at or below zero on the log axis of \"{}\"",
            panel.y_axis
        ));
    }
    // Half a decade of room on either side of the document counts.
    let (x_lo, x_hi) = finite(x_lo / 2.0, x_hi * 2.0)?;
    let x_range = (x_lo..x_hi).log_scale();
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(20)
        .margin_left(10)
        .x_label_area_size(60)
        .y_label_area_size(90);
    let y_label = |v: f64| if panel.compact { compact(v) } else { plain(v) };
    let series_style = |color: RGBColor| ShapeStyle::from(&color).stroke_width(3);
    macro_rules! body {
        ($chart:expr, $fmt:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_labels(8)
                .y_labels(10)
                .x_label_formatter(&|v| compact(*v))
                .y_label_formatter(&$fmt)
                .label_style((FONT, LABEL_SIZE))
                .x_desc(x_axis)
                .y_desc(panel.y_axis)
                .axis_desc_style((FONT, AXIS_DESC_SIZE))
                .light_line_style(RGBColor(238, 238, 238))
                .bold_line_style(RGBColor(200, 200, 200))
                .draw()
                .map_err(fail)?;
            for (series, &color) in panel.series.iter().zip(colors) {
                chart
                    .draw_series(LineSeries::new(
                        series.values.iter().copied(),
                        series_style(color),
                    ))
                    .map_err(fail)?;
                chart
                    .draw_series(
                        series
                            .values
                            .iter()
                            .map(|&p| Circle::new(p, 5, color.filled())),
                    )
                    .map_err(fail)?;
            }
        }};
    }
    if panel.log {
        let (lo, hi) = decades(y_lo, y_hi)?;
        body!(
            builder
                .build_cartesian_2d(x_range, (lo..hi).log_scale())
                .map_err(fail)?,
            |v: &f64| y_label(*v)
        );
    } else {
        // All zero: an axis up to 1, not one of no height.
        let top = if y_hi > 0.0 { y_hi * 1.2 } else { 1.0 };
        let (_, hi) = finite(0.0, top)?;
        body!(
            builder.build_cartesian_2d(x_range, 0.0..hi).map_err(fail)?,
            |v: &f64| y_label(*v)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_numbers_read_as_written() {
        assert_eq!(compact(786_123.0), "786k");
        assert_eq!(compact(4_643_701.0), "4.6M");
        assert_eq!(compact(6_198.0), "6.2k");
        assert_eq!(compact(1_000.0), "1k");
        assert_eq!(compact(10_000_000.0), "10M");
        assert_eq!(compact(0.7), "0.7");
        assert_eq!(compact(65.0), "65");
    }

    #[test]
    fn long_lines_wrap_at_spaces_within_the_width() {
        let text = "one two three four five six seven";
        // Ten per character at size 20: "one two three" is 130.
        let lines = wrap(text, 20.0, 130);
        assert_eq!(lines, ["one two three", "four five six", "seven"]);
        assert!(lines.iter().all(|l| text_width(l, 20.0) <= 130));
        assert_eq!(wrap("unbreakable", 20.0, 30), ["unbreakable"]);
    }

    #[test]
    fn decades_enclose_the_range() {
        assert_eq!(decades(0.7, 4_643_701.0), Ok((0.1, 10_000_000.0)));
        assert_eq!(decades(100.0, 100.0), Ok((100.0, 1000.0)));
    }

    fn panel(log: bool, values: Vec<(f64, f64)>) -> Chart {
        Chart::Lines(Lines {
            file: "panel.svg",
            title: "panel".to_owned(),
            machine: "2 cores".to_owned(),
            x_axis: "documents in the store",
            panels: vec![Panel {
                y_axis: "bytes",
                log,
                compact: false,
                series: vec![crate::charts::Series {
                    label: "store",
                    values,
                }],
            }],
        })
    }

    #[test]
    fn a_zero_document_count_is_named_as_one() {
        let err = svg(&panel(false, vec![(0.0, 5.0), (10.0, 6.0)]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "drawing panel.svg: a document count at or below zero on the log axis of \"documents in the store\""
        );
    }

    #[test]
    fn a_linear_panel_of_zeros_has_an_axis_with_ticks() {
        let svg = svg(&panel(false, vec![(10.0, 0.0), (100.0, 0.0)])).unwrap();
        // The y axis's tick labels, "0" up to "1".
        assert!(svg.contains(">\n1\n</text>"), "{svg}");
        assert!(svg.contains(">\n0.4\n</text>"), "{svg}");
    }

    #[test]
    fn a_figure_near_the_largest_f64_is_an_error_not_an_endless_axis() {
        // Finite, but its decade above is not.
        assert!(decades(1.0, 1.7e308).is_err());
        assert!(decades(1.0, f64::INFINITY).is_err());
        let bars = Bars {
            file: "big.svg",
            title: "big".to_owned(),
            machine: "2 cores".to_owned(),
            axis: "ops",
            rows: vec!["put".to_owned()],
            series: vec![crate::charts::Series {
                label: "store",
                values: vec![Some(1.7e308)],
            }],
        };
        let err = svg(&Chart::Bars(bars)).unwrap_err().to_string();
        assert!(
            err.starts_with("drawing big.svg: a figure too large to draw"),
            "{err}"
        );
        let lines = Lines {
            file: "wide.svg",
            title: "wide".to_owned(),
            machine: "2 cores".to_owned(),
            x_axis: "documents",
            panels: vec![Panel {
                y_axis: "ratio",
                log: false,
                compact: false,
                series: vec![crate::charts::Series {
                    label: "store",
                    values: vec![(1.7e308, 1.0), (10.0, 1.7e308)],
                }],
            }],
        };
        let err = svg(&Chart::Lines(lines)).unwrap_err().to_string();
        assert!(
            err.starts_with("drawing wide.svg: a figure too large to draw"),
            "{err}"
        );
    }
}
