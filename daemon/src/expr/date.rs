//! Dates as Kestra's `date` filter and `now()` handle them: Java `DateTimeFormatter` patterns
//! (`yyyy-MM-dd'T'HH:mm:ss.SSSXXX`) and Kestra's named formats (`iso`, `sql`, `iso_date`, …).
//!
//! Formatting walks the Java pattern itself rather than mapping it to strftime, so offsets print
//! as Java prints them (`XXX` gives `Z` at UTC, `xxx` gives `+00:00`). The default zone is UTC
//! (Kestra uses the JVM's zone; the daemon's host zone is not something a flow should depend on).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// A zone given as `timeZone`: an IANA name (`Europe/Paris`), `UTC`/`Z`, or a fixed offset (`+02:00`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Zone {
    Named(Tz),
    Fixed(FixedOffset),
}

impl Zone {
    pub(crate) fn parse(s: &str) -> Result<Zone, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("utc") || s == "Z" || s.eq_ignore_ascii_case("gmt") {
            return Ok(Zone::Fixed(FixedOffset::east_opt(0).ok_or("bad offset")?));
        }
        if let Ok(tz) = s.parse::<Tz>() {
            return Ok(Zone::Named(tz));
        }
        if let Some(off) = parse_offset(s) {
            return Ok(Zone::Fixed(off));
        }
        Err(format!("unknown time zone `{s}`"))
    }

    fn id(&self) -> String {
        match self {
            Zone::Named(tz) => tz.name().to_string(),
            Zone::Fixed(off) if off.local_minus_utc() == 0 => "Z".to_string(),
            Zone::Fixed(off) => off.to_string(),
        }
    }

    /// Places a UTC instant in this zone.
    pub(crate) fn at(&self, utc: DateTime<Utc>) -> Zoned {
        match self {
            Zone::Named(tz) => {
                let local = utc.with_timezone(tz);
                let abbreviation = local.format("%Z").to_string();
                Zoned {
                    dt: local.fixed_offset(),
                    zone_id: self.id(),
                    abbreviation,
                }
            }
            Zone::Fixed(off) => {
                let dt = utc.with_timezone(off);
                let id = self.id();
                Zoned {
                    dt,
                    abbreviation: id.clone(),
                    zone_id: id,
                }
            }
        }
    }

    /// Interprets a local date-time in this zone (the earlier time when ambiguous).
    fn local(&self, naive: NaiveDateTime) -> Result<DateTime<Utc>, String> {
        let found = match self {
            Zone::Named(tz) => tz.from_local_datetime(&naive).earliest().map(|d| d.with_timezone(&Utc)),
            Zone::Fixed(off) => off
                .from_local_datetime(&naive)
                .earliest()
                .map(|d| d.with_timezone(&Utc)),
        };
        found.ok_or_else(|| format!("`{naive}` does not exist in time zone {}", self.id()))
    }
}

fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?),
        _ => return None,
    };
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// An instant with the zone it is shown in.
#[derive(Debug, Clone)]
pub(crate) struct Zoned {
    pub dt: DateTime<FixedOffset>,
    zone_id: String,
    abbreviation: String,
}

/// Kestra's named formats.
fn named_format(name: &str) -> Option<&'static str> {
    Some(match name {
        "iso" => "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
        "iso_sec" => "yyyy-MM-dd'T'HH:mm:ssXXX",
        "sql" => "yyyy-MM-dd HH:mm:ss.SSSSSS",
        "sql_seq" => "yyyy-MM-dd HH:mm:ss",
        "iso_date_time" | "iso_offset_date_time" => "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
        "iso_zoned_date_time" => "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX'['VV']'",
        "iso_date" | "iso_offset_date" => "yyyy-MM-ddXXX",
        "iso_time" | "iso_offset_time" => "HH:mm:ss.SSSSSSXXX",
        "iso_local_date" => "yyyy-MM-dd",
        "iso_local_time" => "HH:mm:ss.SSSSSS",
        "iso_local_date_time" => "yyyy-MM-dd'T'HH:mm:ss.SSSSSS",
        "iso_ordinal_date" => "yyyy-DDDXXX",
        "iso_week_date" => "YYYY-'W'ww-eXXX",
        "rfc_1123_date_time" => "EEE, d MMM yyyy HH:mm:ss 'GMT'",
        "full" => "EEEE, MMMM d, yyyy 'at' h:mm:ss a zzzz",
        "long" => "MMMM d, yyyy 'at' h:mm:ss a z",
        "medium" => "MMM d, yyyy, h:mm:ss a",
        "short" => "M/d/yy, h:mm a",
        _ => return None,
    })
}

/// Formats `z` with a Kestra named format or a Java pattern.
pub(crate) fn format(z: &Zoned, format: &str) -> Result<String, String> {
    if format == "iso_instant" {
        let utc = z.dt.with_timezone(&Utc);
        return format_pattern(
            &Zone::Fixed(FixedOffset::east_opt(0).ok_or("bad offset")?).at(utc),
            "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
        );
    }
    if format == "rfc_1123_date_time" {
        let utc = z.dt.with_timezone(&Utc);
        return format_pattern(
            &Zone::Fixed(FixedOffset::east_opt(0).ok_or("bad offset")?).at(utc),
            "EEE, d MMM yyyy HH:mm:ss 'GMT'",
        );
    }
    format_pattern(z, named_format(format).unwrap_or(format))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn pad(out: &mut String, n: i64, width: usize) {
    if n < 0 {
        out.push('-');
    }
    let digits = n.unsigned_abs().to_string();
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(&digits);
}

fn text(out: &mut String, full: &str, count: usize) {
    match count {
        1..=3 => out.extend(full.chars().take(3)),
        4 => out.push_str(full),
        _ => out.extend(full.chars().take(1)),
    }
}

/// Java offset styles: `X` family prints `Z` at zero, `x` never does, `Z` is `+HHMM`.
fn offset(out: &mut String, seconds: i32, letter: char, count: usize) -> Result<(), String> {
    if seconds == 0 && (letter == 'X' || (letter == 'Z' && count == 5)) {
        out.push('Z');
        return Ok(());
    }
    if seconds == 0 && letter == 'Z' && count == 4 {
        out.push_str("GMT");
        return Ok(());
    }
    let sign = if seconds < 0 { '-' } else { '+' };
    let abs = seconds.unsigned_abs();
    let (h, m, s) = (abs / 3600, (abs / 60) % 60, abs % 60);
    out.push(sign);
    match (letter, count) {
        ('X' | 'x', 1) => {
            out.push_str(&format!("{h:02}"));
            if m != 0 {
                out.push_str(&format!("{m:02}"));
            }
        }
        ('X' | 'x', 2) | ('Z', 1..=3) => out.push_str(&format!("{h:02}{m:02}")),
        ('X' | 'x', 3) | ('Z', 5) => out.push_str(&format!("{h:02}:{m:02}")),
        ('X' | 'x', 4) => {
            out.push_str(&format!("{h:02}{m:02}"));
            if s != 0 {
                out.push_str(&format!("{s:02}"));
            }
        }
        ('X' | 'x', 5) => {
            out.push_str(&format!("{h:02}:{m:02}"));
            if s != 0 {
                out.push_str(&format!(":{s:02}"));
            }
        }
        ('Z', 4) => {
            out.pop();
            out.push_str(&format!("GMT{sign}{h:02}:{m:02}"));
        }
        _ => {
            return Err(format!(
                "too many pattern letters `{}`",
                letter.to_string().repeat(count)
            ));
        }
    }
    Ok(())
}

/// Formats with a Java `DateTimeFormatter` pattern.
pub(crate) fn format_pattern(z: &Zoned, pattern: &str) -> Result<String, String> {
    let dt = &z.dt;
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal; '' is a single quote.
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => return Err("unclosed quote in date pattern".to_string()),
                    Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                        out.push('\'');
                        j += 2;
                    }
                    Some('\'') => break,
                    Some(ch) => {
                        out.push(*ch);
                        j += 1;
                    }
                }
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            if matches!(c, '[' | ']' | '{' | '}' | '#') {
                // Optional-section brackets and reserved characters: printed sections are always present.
                if c == '[' || c == ']' {
                    i += 1;
                    continue;
                }
                return Err(format!("reserved character `{c}` in date pattern"));
            }
            out.push(c);
            i += 1;
            continue;
        }
        let mut count = 1;
        while chars.get(i + count) == Some(&c) {
            count += 1;
        }
        i += count;
        match c {
            'G' => out.push_str(if dt.year() > 0 {
                if count == 4 { "Anno Domini" } else { "AD" }
            } else {
                "BC"
            }),
            'y' | 'u' | 'Y' => {
                let year = if c == 'Y' {
                    i64::from(dt.iso_week().year())
                } else {
                    i64::from(dt.year())
                };
                if count == 2 {
                    pad(&mut out, year.rem_euclid(100), 2);
                } else {
                    pad(&mut out, year, count);
                }
            }
            'M' | 'L' => {
                let m = dt.month();
                match count {
                    1 | 2 => pad(&mut out, i64::from(m), count),
                    _ => text(&mut out, MONTHS[(m as usize).saturating_sub(1) % 12], count),
                }
            }
            'd' => pad(&mut out, i64::from(dt.day()), count),
            'D' => pad(&mut out, i64::from(dt.ordinal()), count),
            'Q' | 'q' => {
                let q = (dt.month() - 1) / 3 + 1;
                match count {
                    1 | 2 => pad(&mut out, i64::from(q), count),
                    3 => out.push_str(&format!("Q{q}")),
                    _ => out.push_str(&format!(
                        "{}{} quarter",
                        q,
                        ["st", "nd", "rd", "th"][(q as usize - 1).min(3)]
                    )),
                }
            }
            'w' => pad(&mut out, i64::from(dt.iso_week().week()), count),
            'E' => text(&mut out, DAYS[dt.weekday().num_days_from_monday() as usize], count),
            'e' | 'c' => match count {
                1 | 2 => pad(&mut out, i64::from(dt.weekday().number_from_monday()), count),
                _ => text(&mut out, DAYS[dt.weekday().num_days_from_monday() as usize], count),
            },
            'a' => out.push_str(if dt.hour() < 12 { "AM" } else { "PM" }),
            'H' => pad(&mut out, i64::from(dt.hour()), count),
            'k' => pad(&mut out, i64::from(if dt.hour() == 0 { 24 } else { dt.hour() }), count),
            'K' => pad(&mut out, i64::from(dt.hour() % 12), count),
            'h' => pad(
                &mut out,
                i64::from(if dt.hour().is_multiple_of(12) {
                    12
                } else {
                    dt.hour() % 12
                }),
                count,
            ),
            'm' => pad(&mut out, i64::from(dt.minute()), count),
            's' => pad(&mut out, i64::from(dt.second()), count),
            'S' => {
                let nanos = format!("{:09}", dt.nanosecond() % 1_000_000_000);
                if count > 9 {
                    return Err("at most 9 `S` letters are allowed".to_string());
                }
                out.push_str(&nanos[..count]);
            }
            'n' => pad(&mut out, i64::from(dt.nanosecond() % 1_000_000_000), count),
            'A' => pad(
                &mut out,
                i64::from(dt.num_seconds_from_midnight()) * 1000 + i64::from(dt.nanosecond() / 1_000_000),
                count,
            ),
            'N' => pad(
                &mut out,
                i64::from(dt.num_seconds_from_midnight()) * 1_000_000_000 + i64::from(dt.nanosecond() % 1_000_000_000),
                count,
            ),
            'X' | 'x' | 'Z' => offset(&mut out, dt.offset().fix().local_minus_utc(), c, count)?,
            'O' => {
                let secs = dt.offset().fix().local_minus_utc();
                if secs == 0 {
                    out.push_str("GMT");
                } else {
                    let sign = if secs < 0 { '-' } else { '+' };
                    let abs = secs.unsigned_abs();
                    if count == 4 {
                        out.push_str(&format!("GMT{sign}{:02}:{:02}", abs / 3600, (abs / 60) % 60));
                    } else {
                        out.push_str(&format!("GMT{sign}{}", abs / 3600));
                        if !(abs / 60).is_multiple_of(60) {
                            out.push_str(&format!(":{:02}", (abs / 60) % 60));
                        }
                    }
                }
            }
            'z' => {
                if count == 4 {
                    out.push_str(&z.zone_id);
                } else {
                    out.push_str(&z.abbreviation);
                }
            }
            'V' => out.push_str(&z.zone_id),
            other => return Err(format!("date pattern letter `{other}` is not supported")),
        }
    }
    Ok(out)
}

/// Parses a date given as text: RFC 3339 / ISO with offset, a local date-time or a date (taken in
/// `zone`, dates at noon as Kestra does), or with an explicit Java pattern (`existingFormat`).
pub(crate) fn parse(text: &str, zone: &Zone, existing: Option<&str>) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Some(pattern) = existing {
        let pattern = named_format(pattern).unwrap_or(pattern);
        let strf = to_strftime(pattern)?;
        if let Ok(dt) = DateTime::parse_from_str(t, &strf) {
            return Ok(dt.with_timezone(&Utc));
        }
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, &strf) {
            return zone.local(naive);
        }
        if let Ok(d) = NaiveDate::parse_from_str(t, &strf) {
            return zone.local(d.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default()));
        }
        return Err(format!("`{t}` does not match the date format `{pattern}`"));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    // `2024-01-15T10:00:00+01:00[Europe/Paris]` (Java's zoned form): drop the bracketed zone id.
    if let Some(bracket) = t.find('[')
        && let Ok(dt) = DateTime::parse_from_rfc3339(&t[..bracket])
    {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
            return Ok(dt.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt) {
            return zone.local(naive);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return zone.local(d.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default()));
    }
    if let Ok(time) = NaiveTime::parse_from_str(t, "%H:%M:%S%.f").or_else(|_| NaiveTime::parse_from_str(t, "%H:%M")) {
        let today = Utc::now().date_naive();
        return zone.local(today.and_time(time));
    }
    Err(format!(
        "`{t}` is not a date (expected ISO-8601 such as 2024-01-15T10:00:00Z, or give existingFormat)"
    ))
}

/// Converts a Java pattern to a chrono format string, for parsing with `existingFormat`.
fn to_strftime(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' {
                if chars[j] == '%' {
                    out.push_str("%%");
                } else {
                    out.push(chars[j]);
                }
                j += 1;
            }
            if j == i + 1 {
                out.push('\'');
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        let mut count = 1;
        while chars.get(i + count) == Some(&c) {
            count += 1;
        }
        i += count;
        out.push_str(match (c, count) {
            ('y' | 'u', 2) => "%y",
            ('y' | 'u', _) => "%Y",
            ('M', 1 | 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', _) => "%d",
            ('D', _) => "%j",
            ('H', _) => "%H",
            ('h', _) => "%I",
            ('m', _) => "%M",
            ('s', _) => "%S",
            ('S', _) => "%f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('X' | 'x' | 'Z', 3 | 5) => "%:z",
            ('X' | 'x' | 'Z', _) => "%z",
            (other, _) => return Err(format!("date pattern letter `{other}` cannot be used to read dates")),
        });
    }
    Ok(out)
}

/// An instant from epoch seconds (Kestra reads numbers as epoch seconds).
pub(crate) fn from_epoch_seconds(secs: f64) -> Result<DateTime<Utc>, String> {
    if !secs.is_finite() {
        return Err("not a finite number of seconds".to_string());
    }
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
    if whole.abs() > 1e13 {
        return Err(format!("{secs} seconds is out of the supported date range"));
    }
    Utc.timestamp_opt(whole as i64, nanos)
        .single()
        .ok_or_else(|| format!("{secs} is out of the supported date range"))
}
