//! "Did you mean ...?" for misspelt names.

/// The candidate closest to `typo`, when it is close enough to be a typo.
pub(crate) fn closest<'a>(
    typo: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let typo_lower = typo.to_lowercase();
    candidates
        .into_iter()
        .filter(|candidate| *candidate != typo)
        .map(|candidate| {
            let score = strsim::jaro_winkler(&typo_lower, &candidate.to_lowercase());
            (candidate, score)
        })
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|(_, a), (_, b)| a.total_cmp(b))
        .map(|(candidate, _)| candidate)
}

/// `did you mean `x`?` for the closest candidate, if any.
pub(crate) fn did_you_mean<'a>(
    typo: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(typo, candidates).map(|candidate| format!("did you mean `{candidate}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_transpositions() {
        assert_eq!(
            closest("credentail", ["url", "credential", "headers"]),
            Some("credential")
        );
    }

    #[test]
    fn ignores_distant_names() {
        assert_eq!(closest("zzz", ["url", "credential"]), None);
    }
}
