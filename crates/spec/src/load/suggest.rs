//! "Did you mean …?": the help line of every diagnostic about an unknown name.
//!
//! Kept apart from the rules that call it so a reader of a rule sees the rule, not the edit
//! distance; every caller hands in the names it knows and a plural noun for them.

/// "did you mean" for a misspelt name.
pub(super) fn suggest(name: &str, known: &[String], what: &str) -> String {
    let best = known
        .iter()
        .map(|k| (crate::names::edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min();
    match best {
        Some((_, k)) => format!("did you mean `{k}`?"),
        None if known.is_empty() => format!("no {what} are declared"),
        None => {
            let mut list: Vec<&str> = known.iter().map(String::as_str).collect();
            list.sort();
            format!("declared {what}: {}", list.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_name_or_lists_the_known_ones() {
        let known = vec!["redis".to_string(), "rabbitmq".to_string()];
        assert_eq!(
            suggest("rediss", &known, "services"),
            "did you mean `redis`?"
        );
        assert_eq!(
            suggest("postgres", &known, "services"),
            "declared services: rabbitmq, redis"
        );
        assert_eq!(suggest("x", &[], "secrets"), "no secrets are declared");
        assert_eq!(crate::names::edit_distance("kitten", "sitting"), 3);
    }
}
