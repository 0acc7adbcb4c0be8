//! Output: columns for people, JSON for programs. Colour only on a terminal: `anstream`
//! removes the styles when stdout is not one (and honours `NO_COLOR` and
//! `CLICOLOR_FORCE`).

use std::io::Write as _;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use serde_json::Value;

use crate::failure::Failure;

pub const PID: Style = Style::new().bold();
pub const NAME: Style = AnsiColor::Green.on_default();
pub const SERVICE: Style = AnsiColor::Cyan.on_default();
pub const DIM: Style = Style::new().dimmed();
pub const HEADER: Style = Style::new().bold().underline();
pub const WARN: Style = AnsiColor::Yellow.on_default();

/// Prints one line on stdout.
pub fn line(text: impl std::fmt::Display) -> Result<(), Failure> {
    let mut out = anstream::stdout();
    writeln!(out, "{text}").map_err(closed)
}

/// Prints `value` as JSON on stdout: pretty on a terminal, one line otherwise.
pub fn json(value: &Value) -> Result<(), Failure> {
    let text = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    line(text.map_err(|e| Failure::new(format!("cannot print JSON: {e}")))?)
}

/// A stdout that cannot be written. One closed by its reader (`gproc ls | head -1`) ends
/// the command quietly, as other tools do.
fn closed(e: std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    Failure::new(format!("cannot write to stdout: {e}"))
}

/// `text` in `style`.
pub fn styled(style: Style, text: impl std::fmt::Display) -> String {
    format!("{style}{text}{style:#}")
}

/// One cell of a table: its text, and its style.
pub struct Cell {
    text: String,
    style: Style,
}

impl Cell {
    pub fn new(text: impl Into<String>, style: Style) -> Cell {
        Cell {
            text: text.into(),
            style,
        }
    }

    pub fn plain(text: impl Into<String>) -> Cell {
        Cell::new(text, Style::new())
    }
}

/// Rows printed in aligned columns, two spaces apart, under a header; the last column
/// is not padded.
pub struct Table {
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        let header = header.iter().map(|h| Cell::new(*h, HEADER)).collect();
        Table { rows: vec![header] }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    pub fn print(&self) -> Result<(), Failure> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                let cells = self.rows.iter().filter_map(|row| row.get(c));
                cells
                    .map(|cell| cell.text.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = anstream::stdout();
        for row in &self.rows {
            let mut text = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    text.push_str("  ");
                }
                text.push_str(&styled(cell.style, &cell.text));
                if c + 1 < row.len() {
                    let pad = widths[c].saturating_sub(cell.text.chars().count());
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", text.trim_end()).map_err(closed)?;
        }
        Ok(())
    }
}

/// A duration as people read it: `41.2µs`, `3.05ms`, `12.3s`, `5m02s`, `2h13m`, `3d04h`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 if d.as_micros() < 1000 => format!("{:.1}µs", d.as_secs_f64() * 1e6),
        0 => format!("{:.2}ms", d.as_secs_f64() * 1e3),
        1..=59 => format!("{:.1}s", d.as_secs_f64()),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..=86_399 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// How long a process has run, to the tenth of a second that `/proc` knows it to.
pub fn age(d: Duration) -> String {
    if d.as_secs() < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        human(d)
    }
}

/// A duration in microseconds, for JSON.
pub fn micros(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

/// A fingerprint as inspect and ls print it.
pub fn fingerprint(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_nanos(41_250)), "41.2µs");
        assert_eq!(human(Duration::from_micros(3_050)), "3.05ms");
        assert_eq!(human(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(human(Duration::from_secs(302)), "5m02s");
        assert_eq!(human(Duration::from_secs(2 * 3600 + 13 * 60 + 5)), "2h13m");
        assert_eq!(human(Duration::from_secs(3 * 86_400 + 4 * 3600)), "3d04h");
        assert_eq!(age(Duration::from_millis(420)), "0.4s");
        assert_eq!(age(Duration::from_secs(302)), "5m02s");
        assert_eq!(micros(Duration::from_nanos(41_260)), 41.3);
    }
}
