//! "Did you mean" suggestions for misspelt names.

/// The closest candidate, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = input.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (c, strsim::jaro_winkler(&lower, &c.to_ascii_lowercase())))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let c = ["listenerPort", "targets", "routes", "gateway"];
        assert_eq!(did_you_mean("listnerPort", &c), Some("listenerPort"));
        assert_eq!(did_you_mean("target", &c), Some("targets"));
        assert_eq!(did_you_mean("Gateway", &c), Some("gateway"));
        assert_eq!(did_you_mean("zzz", &c), None);
    }
}
