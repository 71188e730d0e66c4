//! The registries as the command service consults them: every entity's current state, folded
//! from its sealed `Registry` events.

use saoma_domain::ids::{AgencyCode, CreditCode, ItemCode, PlanId};
use saoma_domain::registry::{
    Agency, Enterprise, Entry, Item, Officer, Plan, Registry, RegistryEvent,
};
use saoma_domain::seal::Sealed;
use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct RegistryView {
    entries: HashMap<String, Registry>,
}

impl RegistryView {
    /// Folds one committed registry event into the view. `entity` is the stream id
    /// (`officer:…`, `agency:…`, …).
    pub fn apply(&mut self, entity: &str, event: &Sealed<RegistryEvent>) {
        let entry = self.entries.entry(entity.to_string()).or_default();
        cqrs_es::Aggregate::apply(entry, event.clone());
    }

    /// Replaces one entity's state with one reloaded from the store, unless the view already
    /// holds a later one (a change this process committed and applied while the reload read).
    pub fn replace(&mut self, entity: &str, state: Registry) {
        match self.entries.get(entity) {
            Some(held) if held.chain.version > state.chain.version => {}
            _ => {
                self.entries.insert(entity.to_string(), state);
            }
        }
    }

    fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key).map(|r| &r.entry)
    }

    pub fn officer(&self, key: &str) -> Option<&Officer> {
        match self.entry(&format!("officer:{key}")) {
            Some(Entry::Officer(o)) => Some(o),
            _ => None,
        }
    }

    pub fn agency(&self, code: &AgencyCode) -> Option<&Agency> {
        match self.entry(&format!("agency:{code}")) {
            Some(Entry::Agency(a)) => Some(a),
            _ => None,
        }
    }

    pub fn enterprise(&self, code: &CreditCode) -> Option<&Enterprise> {
        match self.entry(&format!("enterprise:{code}")) {
            Some(Entry::Enterprise(e)) => Some(e),
            _ => None,
        }
    }

    pub fn item(&self, code: &ItemCode) -> Option<&Item> {
        match self.entry(&format!("item:{code}")) {
            Some(Entry::Item(i)) => Some(i),
            _ => None,
        }
    }

    pub fn plan(&self, id: &PlanId) -> Option<&Plan> {
        match self.entry(&format!("plan:{id}")) {
            Some(Entry::Plan(p)) => Some(p),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saoma_domain::seal::Chain;

    fn at_version(version: u64) -> Registry {
        Registry {
            chain: Chain {
                version,
                ..Chain::default()
            },
            ..Registry::default()
        }
    }

    #[test]
    fn a_reload_older_than_the_held_state_does_not_replace_it() {
        let mut view = RegistryView::default();
        view.replace("officer:A", at_version(2));
        view.replace("officer:A", at_version(1));
        assert_eq!(view.entries["officer:A"].chain.version, 2);
        view.replace("officer:A", at_version(2));
        view.replace("officer:A", at_version(3));
        assert_eq!(view.entries["officer:A"].chain.version, 3);
        view.replace("agency:B", at_version(1));
        assert_eq!(view.len(), 2);
    }
}
