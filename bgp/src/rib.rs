//! Adj-RIB-In and Adj-RIB-Out of one peer (RFC 4271 §3.2). Pure: they turn
//! changes into the UPDATEs to send, and received UPDATEs into a table.
//! The tables are small (a few anycast prefixes and mitigation rules), so
//! they are plain lists.

use crate::wire::{Attributes, Nlri, Update};

/// What we announce to one peer.
#[derive(Clone, Debug, Default)]
pub struct AdjRibOut {
    routes: Vec<(Nlri, Attributes)>,
}

impl AdjRibOut {
    pub fn routes(&self) -> &[(Nlri, Attributes)] {
        &self.routes
    }

    /// Replaces the table with `desired` and returns the UPDATEs that
    /// take the peer from the old table to the new one.
    pub fn replace(&mut self, desired: Vec<(Nlri, Attributes)>) -> Vec<Update> {
        let mut updates = Vec::new();
        for (nlri, _) in &self.routes {
            if !desired.iter().any(|(wanted, _)| wanted == nlri) {
                updates.push(Update {
                    withdrawn: vec![nlri.clone()],
                    ..Update::default()
                });
            }
        }
        for (nlri, attributes) in &desired {
            let unchanged = self
                .routes
                .iter()
                .any(|(old, old_attributes)| old == nlri && old_attributes == attributes);
            if !unchanged {
                updates.push(announcement(nlri, attributes));
            }
        }
        self.routes = desired;
        updates
    }

    /// Every route, as UPDATEs: for a session that just came up, or a
    /// ROUTE-REFRESH (RFC 2918).
    pub fn full(&self) -> Vec<Update> {
        self.routes
            .iter()
            .map(|(nlri, attributes)| announcement(nlri, attributes))
            .collect()
    }
}

fn announcement(nlri: &Nlri, attributes: &Attributes) -> Update {
    Update {
        withdrawn: Vec::new(),
        attributes: Some(attributes.clone()),
        announced: vec![nlri.clone()],
    }
}

/// Why an UPDATE could not be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RibInError {
    /// RFC 4486 Cease subcode 1.
    #[error("the peer sent more than {limit} routes")]
    MaxPrefixes { limit: u32 },
}

/// What one peer sent us, kept for `show` and for the decision of what
/// to trust.
#[derive(Clone, Debug)]
pub struct AdjRibIn {
    local_asn: u32,
    limit: u32,
    routes: Vec<(Nlri, Attributes)>,
    /// Routes dropped because their AS path holds our own AS.
    looped: u64,
}

impl AdjRibIn {
    pub fn new(local_asn: u32, limit: u32) -> Self {
        Self {
            local_asn,
            limit,
            routes: Vec::new(),
            looped: 0,
        }
    }

    pub fn routes(&self) -> &[(Nlri, Attributes)] {
        &self.routes
    }

    /// Routes refused so far because they carried our AS (RFC 4271 §9.1.2:
    /// a loop; FRR also reflects our own routes back to us).
    pub fn looped(&self) -> u64 {
        self.looped
    }

    /// Session down: forget everything.
    pub fn clear(&mut self) {
        self.routes.clear();
    }

    /// Applies a received UPDATE.
    pub fn apply(&mut self, update: &Update) -> Result<(), RibInError> {
        self.routes
            .retain(|(nlri, _)| !update.withdrawn.contains(nlri));
        if let Some(attributes) = &update.attributes {
            for nlri in &update.announced {
                self.routes.retain(|(old, _)| old != nlri);
                if attributes.as_path.contains(&self.local_asn) {
                    self.looped += 1;
                } else {
                    self.routes.push((nlri.clone(), attributes.clone()));
                }
            }
        }
        let count = u32::try_from(self.routes.len()).unwrap_or(u32::MAX);
        if count > self.limit {
            return Err(RibInError::MaxPrefixes { limit: self.limit });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Origin;

    fn prefix(text: &str) -> Nlri {
        Nlri::Unicast(text.parse().unwrap())
    }

    fn attributes(as_path: &[u32]) -> Attributes {
        Attributes {
            origin: Origin::Igp,
            as_path: as_path.to_vec(),
            next_hop: Some("198.51.100.11".parse().unwrap()),
            communities: Vec::new(),
            large_communities: Vec::new(),
            flow_actions: Vec::new(),
        }
    }

    #[test]
    fn out_sends_only_what_changed() {
        let mut out = AdjRibOut::default();
        let first = out.replace(vec![(prefix("192.0.2.0/24"), attributes(&[65000]))]);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].announced, [prefix("192.0.2.0/24")]);
        // Same table again: nothing to send.
        assert!(
            out.replace(vec![(prefix("192.0.2.0/24"), attributes(&[65000]))])
                .is_empty()
        );
        // A longer path (a prepend) is a new announcement; a removed prefix
        // a withdrawal.
        let changed = out.replace(vec![(prefix("192.0.2.0/24"), attributes(&[65000, 65000]))]);
        assert_eq!(changed.len(), 1);
        assert_eq!(
            changed[0].attributes.as_ref().unwrap().as_path,
            [65000, 65000]
        );
        let withdrawn = out.replace(Vec::new());
        assert_eq!(
            withdrawn,
            [Update {
                withdrawn: vec![prefix("192.0.2.0/24")],
                ..Update::default()
            }]
        );
        assert!(out.full().is_empty());
    }

    #[test]
    fn in_drops_looped_routes_and_enforces_the_limit() {
        let mut rib = AdjRibIn::new(65000, 2);
        let announce = |nlri: Nlri, path: &[u32]| Update {
            withdrawn: Vec::new(),
            attributes: Some(attributes(path)),
            announced: vec![nlri],
        };
        rib.apply(&announce(prefix("198.51.100.64/26"), &[65010]))
            .unwrap();
        // Our own anycast prefix reflected back by the telco: refused.
        rib.apply(&announce(prefix("192.0.2.0/24"), &[65010, 65000]))
            .unwrap();
        assert_eq!(rib.routes().len(), 1);
        assert_eq!(rib.looped(), 1);
        rib.apply(&announce(prefix("198.51.100.96/27"), &[65010]))
            .unwrap();
        assert_eq!(
            rib.apply(&announce(prefix("203.0.113.0/24"), &[65010])),
            Err(RibInError::MaxPrefixes { limit: 2 })
        );
        rib.apply(&Update {
            withdrawn: vec![prefix("198.51.100.64/26")],
            ..Update::default()
        })
        .unwrap();
        assert!(
            rib.routes()
                .iter()
                .all(|(nlri, _)| *nlri != prefix("198.51.100.64/26"))
        );
    }
}
