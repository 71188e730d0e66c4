//! The warning rule book in force: `rules_path` when set, else the rule sets shipped in
//! `deploy/rules/regions.toml` (compiled in, so a bare `saoma serve` has them).

use crate::config::Settings;
use anyhow::Context as _;
use saoma_projections::rules::{RuleBook, SHIPPED_RULES};

pub fn load(settings: &Settings) -> anyhow::Result<RuleBook> {
    match &settings.rules_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the rule book {}", path.display()))?;
            RuleBook::from_toml(&text).with_context(|| format!("in {}", path.display()))
        }
        None => RuleBook::from_toml(SHIPPED_RULES).context("the shipped rule book"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rule_book_loads_and_a_broken_file_is_refused_with_its_name() {
        assert!(load(&Settings::default()).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, "[default]\nname = 1\n").unwrap();
        let settings = Settings {
            rules_path: Some(path.clone()),
            ..Settings::default()
        };
        let e = format!("{:#}", load(&settings).unwrap_err());
        assert!(e.contains("rules.toml"), "{e}");
    }
}
