//! Putting the ruleset in the kernel and taking it out, touching only our
//! own tables.
//!
//! The first apply of a process replaces our tables whole (whatever a
//! crashed predecessor left is gone). Later applies change them in place
//! in one batch: every chain of ours is flushed and refilled, sets and
//! counters that stay are left alone. So a tightened limit or a new
//! sampling rate keeps the counters and the trusted sources. A batch the
//! kernel refuses changes nothing; [`Installer`] then replaces the tables
//! whole, which resets the counters (the reader notices the reset).

use std::net::IpAddr;

use crate::nft::{Batch, Chain, NftError};
use crate::ruleset::{Ruleset, TABLE, Table};

/// The one batch that takes the kernel from `previous` (what we applied
/// last, if anything) to `next`.
pub fn batch_for(previous: Option<&Ruleset>, next: &Ruleset) -> Batch {
    let mut batch = Batch::default();
    for table in &next.tables {
        let before = previous.and_then(|previous| {
            previous
                .tables
                .iter()
                .find(|old| old.family == table.family)
        });
        match before {
            Some(before) if same_hooks(before, table) => update(&mut batch, before, table),
            _ => replace(&mut batch, table),
        }
    }
    if let Some(previous) = previous {
        for table in &previous.tables {
            if !next.tables.iter().any(|new| new.family == table.family) {
                batch
                    .add_table(table.family, TABLE)
                    .delete_table(table.family, TABLE);
            }
        }
    }
    batch
}

/// The batch that removes every table of `ruleset`'s families, present or
/// not (create-or-keep, then delete).
pub fn removal(ruleset: &Ruleset) -> Batch {
    let mut batch = Batch::default();
    for table in &ruleset.tables {
        batch
            .add_table(table.family, TABLE)
            .delete_table(table.family, TABLE);
    }
    batch
}

/// Base chains keep their hooks in place: a changed device or priority
/// needs the table built anew.
fn same_hooks(before: &Table, after: &Table) -> bool {
    let base = |table: &Table| -> Vec<Chain> {
        table
            .chains
            .iter()
            .filter(|chain| chain.hook.is_some())
            .cloned()
            .collect()
    };
    base(before) == base(after)
}

/// Create-or-keep, delete, create: the table anew, in the same batch.
fn replace(batch: &mut Batch, table: &Table) {
    let family = table.family;
    batch
        .add_table(family, TABLE)
        .delete_table(family, TABLE)
        .add_table(family, TABLE);
    for set in &table.sets {
        batch.add_set(family, TABLE, set);
    }
    for counter in &table.counters {
        batch.add_counter(family, TABLE, counter);
    }
    for chain in &table.chains {
        batch.add_chain(family, TABLE, chain);
    }
    add_rules(batch, table);
}

/// In place: flush every old chain, delete what is gone, add what is new,
/// refill the chains.
fn update(batch: &mut Batch, before: &Table, after: &Table) {
    let family = after.family;
    for chain in &before.chains {
        batch.flush_chain(family, TABLE, &chain.name);
    }
    for chain in &before.chains {
        if !after.chains.iter().any(|new| new.name == chain.name) {
            batch.delete_chain(family, TABLE, &chain.name);
        }
    }
    for set in &before.sets {
        if !after.sets.contains(set) {
            batch.delete_set(family, TABLE, &set.name);
        }
    }
    for counter in &before.counters {
        if !after.counters.contains(counter) {
            batch.delete_counter(family, TABLE, counter);
        }
    }
    for set in &after.sets {
        if !before.sets.contains(set) {
            batch.add_set(family, TABLE, set);
        }
    }
    for counter in &after.counters {
        if !before.counters.contains(counter) {
            batch.add_counter(family, TABLE, counter);
        }
    }
    for chain in &after.chains {
        if !before.chains.iter().any(|old| old.name == chain.name) {
            batch.add_chain(family, TABLE, chain);
        }
    }
    add_rules(batch, after);
}

fn add_rules(batch: &mut Batch, table: &Table) {
    for rule in &table.rules {
        batch.add_rule(table.family, TABLE, &rule.chain, &rule.expressions);
    }
}

/// Our tables in the kernel, as this process last applied them.
#[derive(Debug, Default)]
pub struct Installer {
    applied: Option<Ruleset>,
}

impl Installer {
    /// Makes the kernel hold `ruleset`. In place when we applied one before;
    /// if the kernel refuses that (someone changed our tables), replaced
    /// whole. On error the kernel holds what it held before.
    pub fn apply(&mut self, ruleset: &Ruleset) -> Result<(), NftError> {
        let in_place = batch_for(self.applied.as_ref(), ruleset).apply();
        match in_place {
            Ok(()) => {}
            Err(_) if self.applied.is_some() => batch_for(None, ruleset).apply()?,
            Err(error) => return Err(error),
        }
        self.applied = Some(ruleset.clone());
        Ok(())
    }

    /// What this process applied last.
    pub fn applied(&self) -> Option<&Ruleset> {
        self.applied.as_ref()
    }

    /// Adds sources to the trusted sets (refreshing the timeout of those
    /// already there).
    pub fn trust(&self, sources: &[IpAddr]) -> Result<(), NftError> {
        let Some(ruleset) = &self.applied else {
            return Ok(());
        };
        let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = sources.iter().partition(|ip| ip.is_ipv4());
        let mut batch = Batch::default();
        for (set, members) in [(&ruleset.trusted_v4, v4), (&ruleset.trusted_v6, v6)] {
            if !members.is_empty() {
                batch.add_elements(crate::nft::Family::Netdev, TABLE, set, &members);
            }
        }
        batch.apply()
    }

    /// Removes our tables; other tables stay as they are.
    pub fn remove(&mut self) -> Result<(), NftError> {
        if let Some(ruleset) = self.applied.take() {
            removal(&ruleset).apply()?;
        }
        Ok(())
    }
}
