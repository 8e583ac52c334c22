//! How long ago an RFC 3339 time from the status report was, said briefly for people.

use std::time::SystemTime;

/// `"42s ago"`, `"5m ago"`, `"3h ago"`, `"2d ago"`; `None` when the text is not RFC 3339 or lies
/// in the future (clock skew between reader and daemon), where an age would mislead.
pub(crate) fn ago(rfc3339: &str, now: SystemTime) -> Option<String> {
    let then = humantime::parse_rfc3339_weak(rfc3339).ok()?;
    let secs = now.duration_since(then).ok()?.as_secs();
    Some(match secs {
        0..90 => format!("{secs}s ago"),
        90..5_400 => format!("{}m ago", secs / 60),
        5_400..172_800 => format!("{}h ago", secs / 3_600),
        _ => format!("{}d ago", secs / 86_400),
    })
}

/// The time followed by its age in brackets, or just the time when no age can be given.
pub(crate) fn with_age(rfc3339: &str, now: SystemTime) -> String {
    match ago(rfc3339, now) {
        Some(age) => format!("{rfc3339} ({age})"),
        None => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn ages_use_one_coarse_unit() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |secs_before: u64| crosslink_controller::status::rfc3339(1_000_000 - secs_before);
        assert_eq!(ago(&at(0), now).as_deref(), Some("0s ago"));
        assert_eq!(ago(&at(89), now).as_deref(), Some("89s ago"));
        assert_eq!(ago(&at(90), now).as_deref(), Some("1m ago"));
        assert_eq!(ago(&at(2 * 3_600), now).as_deref(), Some("2h ago"));
        assert_eq!(ago(&at(3 * 86_400), now).as_deref(), Some("3d ago"));
    }

    #[test]
    fn no_age_for_the_future_or_for_garbage() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(ago(&crosslink_controller::status::rfc3339(1_000_060), now), None);
        assert_eq!(ago("yesterday", now), None);
        assert_eq!(with_age("yesterday", now), "yesterday");
    }
}
