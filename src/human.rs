//! Quantities as people read them, in messages and tables.

use std::time::Duration;

/// Text from outside (a task, a plan, claude's words, a check's output) made safe for
/// a terminal: control characters other than newline and tab are shown escaped
/// (`\u{1b}`), so the text can neither move the cursor, retitle the window, clear
/// the screen nor colour what follows it. So are the bidirectional overrides, which
/// would reorder what a line shows (a task reading as another).
pub fn safe(text: &str) -> std::borrow::Cow<'_, str> {
    let harmful = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(harmful) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if harmful(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The first `max` items, comma-separated, and how many more: `a, b and 3 more`.
pub fn first_of<S: AsRef<str>>(items: &[S], max: usize) -> String {
    let shown: Vec<&str> = items.iter().take(max).map(AsRef::as_ref).collect();
    match items.len().saturating_sub(max) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// Text on one line, its line breaks shown as `⏎`, cut after `max` characters with `…`.
pub fn one_line(text: &str, max: usize) -> String {
    let flat = text.trim().replace('\n', " ⏎ ");
    let mut short: String = flat.chars().take(max).collect();
    if short.len() < flat.len() {
        short.push('…');
    }
    short
}

/// A duration: `250 ms`, `1.5 s`, `3 min`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else if ms < 2 * 3_600_000 {
        format!("{} min", d.as_secs() / 60)
    } else {
        format!("{} h {} min", d.as_secs() / 3600, d.as_secs() % 3600 / 60)
    }
}

/// A token count: `812`, `3k`, `995k`, `1M`, `1.2M`.
pub fn tokens(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{}k", n / 1_000),
        _ if n.is_multiple_of(1_000_000) => format!("{}M", n / 1_000_000),
        _ => format!("{:.1}M", n as f64 / 1_000_000.0),
    }
}

/// US dollars for people: `$0.42`; below a cent, up to four places: `$0.001`.
pub fn usd(amount: f64) -> String {
    if amount == 0.0 || amount.abs() >= 0.01 || !amount.is_finite() {
        return format!("${amount:.2}");
    }
    // Two significant digits of a small amount, never fewer than four places.
    let places = (-amount.abs().log10()).ceil().clamp(3.0, 9.0) as usize + 1;
    let text = format!("{amount:.places$}");
    let text = text.trim_end_matches('0');
    match text.ends_with('.') {
        true => format!("${amount:.2}"),
        false => format!("${text}"),
    }
}

/// A size: `512 KiB`, `312 MiB`, `4.0 GiB`.
pub fn bytes(n: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    match n {
        0..KIB => format!("{n} B"),
        KIB..MIB => format!("{} KiB", n / KIB),
        MIB..GIB => format!("{} MiB", n / MIB),
        _ => format!("{:.1} GiB", n as f64 / GIB as f64),
    }
}

/// A moment as a local wall clock: `14:00` within the next day, else `Mon 14:00`.
pub fn clock(unix_ms: u64) -> String {
    let Some(at) = local_time(unix_ms) else {
        return format!("{} (Unix s)", unix_ms / 1000);
    };
    let within_a_day = unix_ms.saturating_sub(crate::time::now_ms()) < 20 * 3600 * 1000;
    let hm = format!("{:02}:{:02}", at.tm_hour, at.tm_min);
    if within_a_day {
        return hm;
    }
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let day = usize::try_from(at.tm_wday).ok().and_then(|d| DAYS.get(d));
    format!("{} {hm}", day.unwrap_or(&"?"))
}

/// Which clock a moment to the second is read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The machine's: a log read where it was written.
    Local,
    /// UTC: a report, which reads the same on every machine.
    Utc,
}

/// A moment to the second: `14:00:05` on the local clock, `14:00:05 UTC` on UTC's.
pub fn clock_seconds(unix_ms: u64, zone: Zone) -> String {
    match zone {
        Zone::Local => match local_time(unix_ms) {
            Some(at) => format!("{:02}:{:02}:{:02}", at.tm_hour, at.tm_min, at.tm_sec),
            None => "--:--:--".to_string(),
        },
        Zone::Utc => format!("{} UTC", clock_of_day(unix_ms)),
    }
}

/// `HH:MM:SS` of a Unix time in ms, UTC, with no zone named.
pub fn clock_of_day(unix_ms: u64) -> String {
    let secs = (unix_ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

fn local_time(unix_ms: u64) -> Option<libc::tm> {
    let secs = libc::time_t::try_from(unix_ms / 1000).ok()?;
    // SAFETY: localtime_r only writes the `tm` it is given; both pointers are valid.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        (!libc::localtime_r(&secs, &mut tm).is_null()).then_some(tm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_outside_cannot_drive_the_terminal() {
        assert_eq!(safe("plain\n\ttext"), "plain\n\ttext");
        let forged = "\u{1b}]0;owned\u{7}\u{1b}[2Jall tests passed\r\u{9b}31m";
        let shown = safe(forged);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert!(shown.contains("\\u{1b}]0;owned"), "{shown}");
        assert!(shown.contains("all tests passed"));
        assert_eq!(safe("fix \u{202e}txt.exe"), "fix \\u{202e}txt.exe");
        assert_eq!(safe("\u{2066}a\u{2069}"), "\\u{2066}a\\u{2069}");
    }

    #[test]
    fn a_list_shows_its_first_items_and_counts_the_rest() {
        assert_eq!(first_of(&["a", "b"], 5), "a, b");
        assert_eq!(first_of(&["a", "b", "c"], 2), "a, b and 1 more");
        assert_eq!(first_of::<&str>(&[], 5), "");
    }

    #[test]
    fn token_counts_read_short() {
        assert_eq!(tokens(812), "812");
        assert_eq!(tokens(3_200), "3k");
        assert_eq!(tokens(995_000), "995k");
        assert_eq!(tokens(1_000_000), "1M");
        assert_eq!(tokens(1_250_000), "1.2M");
    }

    #[test]
    fn dollars_read_short() {
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.42), "$0.42");
        assert_eq!(usd(0.001), "$0.001");
        assert_eq!(usd(0.00125), "$0.0013");
        assert_eq!(usd(12.5), "$12.50");
        assert_eq!(usd(0.00001), "$0.00001");
        assert_eq!(usd(0.000_023_4), "$0.000023");
        assert_eq!(usd(1e-15), "$0.00");
    }

    #[test]
    fn sizes_read_short() {
        assert_eq!(bytes(900), "900 B");
        assert_eq!(bytes(300 << 20), "300 MiB");
        assert_eq!(bytes(4 << 30), "4.0 GiB");
    }

    #[test]
    fn clocks_read_as_hours_and_minutes() {
        let soon = clock(crate::time::now_ms() + 60_000);
        assert_eq!(soon.len(), 5, "{soon}");
        assert_eq!(&soon[2..3], ":");
        let later = clock(crate::time::now_ms() + 3 * 24 * 3600 * 1000);
        assert_eq!(later.len(), 9, "{later}");
    }

    #[test]
    fn clocks_to_the_second() {
        let an_hour_in = 86_400_000 + 3_723_000;
        assert_eq!(clock_seconds(an_hour_in, Zone::Utc), "01:02:03 UTC");
        let local = clock_seconds(an_hour_in, Zone::Local);
        assert_eq!(local.len(), 8, "{local}");
        assert!(local.ends_with(":02:03"), "{local}");
    }

    #[test]
    fn long_text_is_one_bounded_line() {
        assert_eq!(one_line("a\nb", 10), "a ⏎ b");
        assert_eq!(one_line(&"x".repeat(50), 10).chars().count(), 11);
    }
}
