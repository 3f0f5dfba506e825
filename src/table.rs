//! One table renderer for a terminal, shared by `report`, `session list` and the
//! watch: each column as wide as its widest cell (by display width, a CJK character
//! takes two), and on a narrow terminal the least telling columns go whole, header and
//! rows alike, by one ranking of every column leash shows.

/// Every column leash shows in a table, the most telling first. On a narrow terminal
/// columns go from the end of this list; the first [`KEPT`] never go.
pub const RANKING: &[&str] = &[
    "WORKER",
    "TASK",
    "OUTCOME",
    "STATE",
    "DOING",
    "PHASE",
    "EXIT",
    "LANDED",
    "COST",
    "ELAPSED",
    "TIME",
    "COMMITS",
    "CHECKS",
    "WENT WRONG",
    "ATTEMPTS",
    "NUDGES",
    "CTX",
    "REPOSITORY",
    "HOST",
    "TURNS",
    "BRANCH",
    "REVIEWS",
    "RESCOPES",
    "MODEL",
    "PID",
    "CWD",
];
const KEPT: usize = 4;

/// Columns between two cells.
const GAP: usize = 2;
/// What the flexible column keeps before any other column goes, and at least.
const FLEX_COMFORT: usize = 40;
const FLEX_MIN: usize = 20;

/// A column of a table: its header (a name in [`RANKING`]) and whether it holds a
/// number (right-aligned).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub numeric: bool,
}

impl Column {
    /// A column of words, aligned left.
    pub const fn text(name: &'static str) -> Column {
        Column {
            name,
            numeric: false,
        }
    }

    /// A column of figures, aligned right.
    pub const fn number(name: &'static str) -> Column {
        Column {
            name,
            numeric: true,
        }
    }
}

/// Where a column stands in the ranking: 0 is the most telling; a name not ranked
/// goes first.
fn rank(name: &str) -> usize {
    RANKING
        .iter()
        .position(|n| *n == name)
        .unwrap_or(RANKING.len())
}

/// Columns a text takes on a terminal.
pub fn width_of(text: &str) -> usize {
    console::measure_text_width(text)
}

/// At most `width` columns of a terminal, the cut shown.
pub fn cut(text: &str, width: usize) -> String {
    console::truncate_str(text, width, "…").into_owned()
}

/// A table fitted to a terminal.
pub struct Fitted {
    widths: Vec<usize>,
    shown: Vec<bool>,
}

/// A row as drawn: a task's, or a total whose words may run on over the empty cells
/// after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Header,
    Row,
    Total,
}

impl Fitted {
    /// Fits `cells` (each row a cell per column; escaped already) to `width` columns
    /// (`None`: as wide as it takes), showing only the columns `wanted`. The `flex`
    /// column gives way down to a comfortable width, then the least telling columns go,
    /// then `flex` gives way down to its least; what is left goes back to it.
    pub fn new(
        columns: &[Column],
        cells: &[Vec<String>],
        wanted: Vec<bool>,
        flex: usize,
        width: Option<usize>,
    ) -> Fitted {
        let mut widths: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cells
                    .iter()
                    .map(|row| row.get(i).map_or(0, |c| width_of(c)))
                    .max()
                    .unwrap_or(0)
                    .max(c.name.len())
            })
            .collect();
        let mut shown = wanted;
        let Some(width) = width else {
            return Fitted { widths, shown };
        };
        let used = |widths: &[usize], shown: &[bool]| -> usize {
            let cells: usize = widths
                .iter()
                .zip(shown)
                .filter(|(_, s)| **s)
                .map(|(w, _)| w + GAP)
                .sum();
            cells.saturating_sub(GAP)
        };
        let natural = widths[flex];
        widths[flex] = natural.min(FLEX_COMFORT);
        let mut order: Vec<usize> = (0..columns.len())
            .filter(|i| *i != flex && rank(columns[*i].name) >= KEPT)
            .collect();
        order.sort_by_key(|i| std::cmp::Reverse(rank(columns[*i].name)));
        for i in order {
            if used(&widths, &shown) <= width {
                break;
            }
            shown[i] = false;
        }
        let others = used(&widths, &shown) - widths[flex];
        widths[flex] = width
            .saturating_sub(others)
            .clamp(FLEX_MIN.min(natural), natural);
        Fitted { widths, shown }
    }

    /// Whether a column is shown.
    #[cfg(test)]
    pub fn shows(&self, column: usize) -> bool {
        self.shown[column]
    }

    /// One row drawn: cells cut to their columns and padded; `paint` may style a
    /// cell (as padded) of a row.
    pub fn line(
        &self,
        columns: &[Column],
        row: &[String],
        kind: Kind,
        paint: impl Fn(usize, String) -> String,
    ) -> String {
        let mut line = String::new();
        let mut i = 0;
        while i < columns.len() {
            if !self.shown[i] {
                i += 1;
                continue;
            }
            let mut room = self.widths[i];
            let mut next = i + 1;
            while kind == Kind::Total
                && width_of(&row[i]) > room
                && next < columns.len()
                && row[next].is_empty()
            {
                if self.shown[next] {
                    room += self.widths[next] + GAP;
                }
                next += 1;
            }
            let cell = cut(&row[i], room);
            let pad = " ".repeat(room.saturating_sub(width_of(&cell)));
            let padded = match columns[i].numeric {
                true => format!("{pad}{cell}"),
                false => format!("{cell}{pad}"),
            };
            line.push_str(&match kind {
                Kind::Row => paint(i, padded),
                _ => padded,
            });
            line.push_str(&" ".repeat(GAP));
            i = next;
        }
        line.trim_end().to_string()
    }

    /// The header, then each row, as lines.
    pub fn lines(&self, columns: &[Column], rows: &[Vec<String>]) -> Vec<String> {
        let header: Vec<String> = columns.iter().map(|c| c.name.to_string()).collect();
        std::iter::once(self.line(columns, &header, Kind::Header, |_, c| c))
            .chain(
                rows.iter()
                    .map(|r| self.line(columns, r, Kind::Row, |_, c| c)),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column; 6] = [
        Column::text("WORKER"),
        Column::text("STATE"),
        Column::number("COST"),
        Column::number("CTX"),
        Column::text("BRANCH"),
        Column::text("TASK"),
    ];

    fn rows() -> Vec<Vec<String>> {
        (1..=3)
            .map(|i| {
                vec![
                    format!("task-{i}"),
                    "busy".to_string(),
                    "$0.0012".to_string(),
                    "-".to_string(),
                    format!("leash/task-{i}-with-a-long-branch-name"),
                    format!("Add a --version flag that prints the build's commit, number {i} 中文"),
                ]
            })
            .collect()
    }

    #[test]
    fn at_80_100_and_120_columns_the_least_telling_go_whole_header_and_rows_alike() {
        let rows = rows();
        for width in [80, 100, 120] {
            let fitted = Fitted::new(&COLUMNS, &rows, vec![true; COLUMNS.len()], 5, Some(width));
            let lines = fitted.lines(&COLUMNS, &rows);
            for line in &lines {
                assert!(width_of(line) <= width, "{width}: {line}");
            }
            for (i, column) in COLUMNS.iter().enumerate() {
                let in_header = lines[0].split_whitespace().any(|w| w == column.name);
                assert_eq!(in_header, fitted.shows(i), "{width}: {}", column.name);
                let cell = &rows[0][i];
                if column.name != "TASK" && cell.len() > 1 {
                    assert_eq!(
                        lines[1].contains(cell.as_str()),
                        fitted.shows(i),
                        "{width}: {cell}"
                    );
                }
            }
            assert!(
                fitted.shows(2),
                "COST is more telling than BRANCH: {lines:#?}"
            );
            assert!(lines[1].contains("Add a --version flag"), "{lines:#?}");
        }
        let narrow = Fitted::new(&COLUMNS, &rows, vec![true; COLUMNS.len()], 5, Some(80));
        assert!(!narrow.shows(4), "the branch goes first at 80");
    }
}
