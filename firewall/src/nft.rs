//! Our own nf_tables message builder (linux/netfilter/nf_tables.h), on a
//! plain netlink socket: tables, chains, counter objects and rules with
//! the expressions the ruleset uses, sent as one batch that the kernel
//! applies whole or not at all. The `nft` binary is only a test oracle.
//!
//! nf_tables integers are big-endian on the wire; attributes are netlink
//! TLVs padded to 4 bytes, nested ones flagged `NLA_F_NESTED`.

use std::io;

use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};

/// nfnetlink subsystem of nf_tables.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_DELSET: u16 = 11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_NEWOBJ: u16 = 18;
const NFT_MSG_GETOBJ: u16 = 19;
const NFT_MSG_DELOBJ: u16 = 20;

const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;

/// Address families of nf_tables (NFPROTO_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Inet = 1,
    Ipv4 = 2,
    Netdev = 5,
}

/// Netlink TLV attributes being written.
#[derive(Default)]
pub(crate) struct Attributes {
    pub(crate) bytes: Vec<u8>,
}

impl Attributes {
    pub(crate) fn put(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let length = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        self.bytes.extend_from_slice(&length.to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(value);
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
        self
    }

    fn string(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.put(kind, &bytes)
    }

    fn be32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.put(kind, &value.to_be_bytes())
    }

    fn nested(&mut self, kind: u16, fill: impl FnOnce(&mut Self)) -> &mut Self {
        let mut inner = Self::default();
        fill(&mut inner);
        self.put(kind | NLA_F_NESTED, &inner.bytes)
    }
}

/// Where a payload expression reads from (NFT_PAYLOAD_*_HEADER).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    Link = 0,
    Network = 1,
    Transport = 2,
}

/// A verdict: NF_DROP, NF_ACCEPT, or on to another chain (NFT_JUMP
/// returns here afterwards, NFT_GOTO does not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Drop,
    Accept,
    Jump(String),
    Goto(String),
}

impl Verdict {
    fn code(&self) -> i32 {
        match self {
            Self::Drop => 0,
            Self::Accept => 1,
            Self::Jump(_) => -3,
            Self::Goto(_) => -4,
        }
    }

    fn chain(&self) -> Option<&str> {
        match self {
            Self::Jump(chain) | Self::Goto(chain) => Some(chain),
            Self::Drop | Self::Accept => None,
        }
    }
}

/// The expressions rules are built from, each loading into or reading
/// register 1 (NFT_REG_1) where it uses one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expression {
    /// `meta load KEY => reg 1` (NFT_META_PROTOCOL = 1, NFT_META_L4PROTO = 16).
    Meta { key: u32 },
    /// `payload load LEN @ HEADER + OFFSET => reg 1`.
    Payload {
        header: Header,
        offset: u32,
        length: u32,
    },
    /// `cmp eq reg 1 DATA` (NFT_CMP_EQ = 0, NFT_CMP_NEQ = 1).
    Compare { not: bool, data: Vec<u8> },
    /// `exthdr load ipv6 1b @ 44 + 0 present => reg 1`: 1 when the IPv6
    /// packet has a fragment header, whatever its offset.
    Ipv6FragmentHeader,
    /// `bitwise reg 1 = (reg 1 & MASK) ^ 0`.
    Mask { mask: Vec<u8> },
    /// An anonymous counter.
    Counter,
    /// `objref`: count into the named counter object.
    NamedCounter(String),
    /// `immediate reg 0 VERDICT`.
    Verdict(Verdict),
    /// A token bucket of `rate` packets per second and `burst` packets;
    /// with `over`, it matches what exceeds the rate.
    Limit { rate: u64, burst: u32, over: bool },
    /// `numgen random mod MODULUS => reg 1`.
    RandomNumber { modulus: u32 },
    /// Send the packet's first `snaplen` bytes to NFLOG group `group`.
    Log { group: u16, snaplen: u32 },
    /// Exempt the packet from connection tracking.
    Notrack,
    /// `ct load state => reg 1`: the connection-tracking state bits, in
    /// host byte order (invalid = 1, untracked = 64).
    ConntrackState,
    /// Answer the SYN with a SYN cookie and open the connection to the
    /// server only once the client's ACK proves it real. Only the MSS is
    /// announced: window scaling and SACK ride in the timestamp option's
    /// cookie, and with timestamps on every proxied handshake took one
    /// second (the server's SYN-ACK retransmission) on these kernels.
    Synproxy { mss: u16 },
    /// Matches when register 1 is (with `inverted`: is not) in the set.
    Lookup {
        set: String,
        set_id: u32,
        inverted: bool,
    },
    /// Adds register 1 to the set, with a per-element expression (a
    /// meter: `add @set { key limit … }`).
    AddToSet {
        set: String,
        set_id: u32,
        per_element: Box<Expression>,
    },
}

/// A set of addresses, in a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    pub name: String,
    /// An id for rules of the same batch to refer to it by.
    pub id: u32,
    pub ipv6: bool,
    /// Elements at most.
    pub size: u32,
    /// Elements expire after this long.
    pub timeout: Option<std::time::Duration>,
    /// Rules may add elements (a meter).
    pub dynamic: bool,
}

/// NFT_META_* keys used by the ruleset.
pub mod meta {
    /// The EtherType (netdev) or network protocol.
    pub const PROTOCOL: u32 = 1;
    /// The transport protocol.
    pub const L4PROTO: u32 = 16;
    /// The network family (NFPROTO_IPV4 = 2, NFPROTO_IPV6 = 10), in inet tables.
    pub const NFPROTO: u32 = 15;
}

const REG_1: u32 = 1;
const REG_VERDICT: u32 = 0;
/// NFT_OBJECT_COUNTER.
const OBJECT_COUNTER: u32 = 1;

impl Expression {
    /// Loads the IPv4 source address (network header, offset 12).
    #[must_use]
    pub fn ipv4_source() -> Self {
        Self::Payload {
            header: Header::Network,
            offset: 12,
            length: 4,
        }
    }

    /// Loads the IPv4 destination address (network header, offset 16).
    #[must_use]
    pub fn ipv4_destination() -> Self {
        Self::Payload {
            header: Header::Network,
            offset: 16,
            length: 4,
        }
    }

    /// Matches when register 1 holds exactly `data`.
    #[must_use]
    pub fn equals(data: impl Into<Vec<u8>>) -> Self {
        Self::Compare {
            not: false,
            data: data.into(),
        }
    }

    /// The kernel's name of the expression.
    fn name(&self) -> &'static str {
        match self {
            Self::Meta { .. } => "meta",
            Self::Payload { .. } => "payload",
            Self::Compare { .. } => "cmp",
            Self::Ipv6FragmentHeader => "exthdr",
            Self::Mask { .. } => "bitwise",
            Self::ConntrackState => "ct",
            Self::RandomNumber { .. } => "numgen",
            Self::Counter => "counter",
            Self::NamedCounter(_) => "objref",
            Self::Verdict(_) => "immediate",
            Self::Limit { .. } => "limit",
            Self::Log { .. } => "log",
            Self::Notrack => "notrack",
            Self::Synproxy { .. } => "synproxy",
            Self::Lookup { .. } => "lookup",
            Self::AddToSet { .. } => "dynset",
        }
    }

    /// NFTA_EXPR_DATA of expressions that load or test register 1.
    fn match_data(&self, data: &mut Attributes) {
        match self {
            Self::Meta { key } => {
                data.be32(1, REG_1).be32(2, *key);
            }
            Self::Payload {
                header,
                offset,
                length,
            } => {
                data.be32(1, REG_1)
                    .be32(2, *header as u32)
                    .be32(3, *offset)
                    .be32(4, *length);
            }
            Self::Compare { not, data: value } => {
                data.be32(1, REG_1).be32(2, u32::from(*not)).nested(3, |d| {
                    d.put(1, value);
                });
            }
            Self::Mask { mask } => {
                let length = u32::try_from(mask.len()).unwrap_or(u32::MAX);
                data.be32(1, REG_1).be32(2, REG_1).be32(3, length);
                data.nested(4, |d| {
                    d.put(1, mask);
                });
                data.nested(5, |d| {
                    d.put(1, &vec![0; mask.len()]);
                });
            }
            // NFTA_EXTHDR_{DREG, TYPE, OFFSET, LEN, FLAGS, OP}: IPPROTO_FRAGMENT,
            // NFT_EXTHDR_F_PRESENT, NFT_EXTHDR_OP_IPV6.
            Self::Ipv6FragmentHeader => {
                data.be32(1, REG_1)
                    .put(2, &[44])
                    .be32(3, 0)
                    .be32(4, 1)
                    .be32(5, 1)
                    .be32(6, 0);
            }
            // NFT_CT_STATE.
            Self::ConntrackState => {
                data.be32(1, REG_1).be32(2, 0);
            }
            // NFT_NG_RANDOM.
            Self::RandomNumber { modulus } => {
                data.be32(1, REG_1).be32(2, *modulus).be32(3, 1);
            }
            _ => self.statement_data(data),
        }
    }

    /// NFTA_EXPR_DATA of statements: counting, verdicts and actions.
    fn statement_data(&self, data: &mut Attributes) {
        match self {
            Self::Counter => {
                data.put(1, &0_u64.to_be_bytes())
                    .put(2, &0_u64.to_be_bytes());
            }
            Self::NamedCounter(name) => {
                data.be32(1, OBJECT_COUNTER).string(2, name);
            }
            // NFTA_IMMEDIATE_DATA { NFTA_DATA_VERDICT { CODE, CHAIN } }.
            Self::Verdict(verdict) => {
                data.be32(1, REG_VERDICT).nested(2, |d| {
                    d.nested(2, |v| {
                        v.put(1, &verdict.code().to_be_bytes());
                        if let Some(chain) = verdict.chain() {
                            v.string(2, chain);
                        }
                    });
                });
            }
            // Per second (unit 1), counting packets (NFT_LIMIT_PKTS),
            // inverted for "over" (NFT_LIMIT_F_INV).
            Self::Limit { rate, burst, over } => {
                data.put(1, &rate.to_be_bytes())
                    .put(2, &1_u64.to_be_bytes())
                    .be32(3, *burst)
                    .be32(4, 0)
                    .be32(5, u32::from(*over));
            }
            Self::Log { group, snaplen } => {
                data.put(1, &group.to_be_bytes()).be32(3, *snaplen);
            }
            // NF_SYNPROXY_OPT_MSS.
            Self::Synproxy { mss } => {
                data.put(1, &mss.to_be_bytes()).be32(3, 0x01);
            }
            Self::Lookup {
                set,
                set_id,
                inverted,
            } => {
                // NFT_LOOKUP_F_INV.
                data.string(1, set)
                    .be32(2, REG_1)
                    .be32(4, *set_id)
                    .be32(5, u32::from(*inverted));
            }
            Self::AddToSet {
                set,
                set_id,
                per_element,
            } => {
                // NFT_DYNSET_OP_ADD; the per-element expression is one
                // NFTA_DYNSET_EXPR of name and data.
                data.string(1, set)
                    .be32(2, *set_id)
                    .be32(3, 0)
                    .be32(4, REG_1);
                data.nested(7, |expression| per_element.write_named(expression));
            }
            // No attributes.
            _ => {}
        }
    }

    fn write(&self, list: &mut Attributes) {
        // NFTA_LIST_ELEM (1) { NFTA_EXPR_NAME (1), NFTA_EXPR_DATA (2) }
        list.nested(1, |element| self.write_named(element));
    }

    /// NFTA_EXPR_NAME (1) and NFTA_EXPR_DATA (2): the shape of an
    /// expression both in a rule's list and inside a dynset.
    fn write_named(&self, into: &mut Attributes) {
        let mut data = Attributes::default();
        self.match_data(&mut data);
        into.string(1, self.name());
        if !data.bytes.is_empty() {
            into.put(2 | NLA_F_NESTED, &data.bytes);
        }
    }
}

/// A chain: bound to a hook (a base chain), or reached by jump and goto.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub hook: Option<Hook>,
}

/// Where a base chain sees packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// NF_NETDEV_INGRESS = 0; for inet: NF_INET_PRE_ROUTING = 0, LOCAL_IN = 1.
    pub number: u32,
    pub priority: i32,
    /// The device of a netdev ingress chain.
    pub device: Option<String>,
    /// `policy accept` when true, else drop.
    pub accept_by_default: bool,
}

impl Chain {
    /// A chain reached only by jump and goto.
    pub fn regular(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            hook: None,
        }
    }
}

/// One nf_tables transaction: everything in it applies, or nothing does.
#[derive(Debug, Default)]
pub struct Batch {
    messages: Vec<u8>,
    sequence: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("netlink socket: {0}")]
    Socket(#[from] io::Error),
    #[error("the kernel refused the batch (message {sequence}): {error}")]
    Refused { sequence: u32, error: io::Error },
    #[error("counter {name} is not in table {table}")]
    MissingCounter { table: String, name: String },
}

impl Batch {
    fn message(&mut self, kind: u16, flags: u16, family: Family, attributes: &Attributes) {
        self.sequence += 1;
        self.messages.extend(request(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_ACK | flags,
            self.sequence,
            family as u8,
            0,
            &attributes.bytes,
        ));
    }

    /// Creates the table (or keeps it, when it exists).
    pub fn add_table(&mut self, family: Family, name: &str) -> &mut Self {
        let mut attributes = Attributes::default();
        attributes.string(1, name);
        self.message(NFT_MSG_NEWTABLE, NLM_F_CREATE, family, &attributes);
        self
    }

    /// Deletes the table with everything in it.
    pub fn delete_table(&mut self, family: Family, name: &str) -> &mut Self {
        let mut attributes = Attributes::default();
        attributes.string(1, name);
        self.message(NFT_MSG_DELTABLE, 0, family, &attributes);
        self
    }

    /// Creates the chain (or keeps it, when it exists with the same hook).
    pub fn add_chain(&mut self, family: Family, table: &str, chain: &Chain) -> &mut Self {
        let mut attributes = Attributes::default();
        attributes.string(1, table).string(3, &chain.name);
        if let Some(hook) = &chain.hook {
            attributes.nested(4, |attribute| {
                attribute
                    .be32(1, hook.number)
                    .put(2, &hook.priority.to_be_bytes());
                if let Some(device) = &hook.device {
                    attribute.string(3, device);
                }
            });
            attributes
                .be32(5, u32::from(hook.accept_by_default))
                .string(7, "filter");
        }
        self.message(NFT_MSG_NEWCHAIN, NLM_F_CREATE, family, &attributes);
        self
    }

    /// Deletes a chain; it must hold no rules and no jump may lead to it.
    pub fn delete_chain(&mut self, family: Family, table: &str, chain: &str) -> &mut Self {
        let mut attributes = Attributes::default();
        attributes.string(1, table).string(3, chain);
        self.message(NFT_MSG_DELCHAIN, 0, family, &attributes);
        self
    }

    /// Deletes every rule of a chain (DELRULE naming no rule).
    pub fn flush_chain(&mut self, family: Family, table: &str, chain: &str) -> &mut Self {
        let mut attributes = Attributes::default();
        attributes.string(1, table).string(2, chain);
        self.message(NFT_MSG_DELRULE, 0, family, &attributes);
        self
    }

    /// Deletes a set no rule refers to any more.
    pub fn delete_set(&mut self, family: Family, table: &str, set: &str) -> &mut Self {
        let mut attributes = Attributes::default();
        attributes.string(1, table).string(2, set);
        self.message(NFT_MSG_DELSET, 0, family, &attributes);
        self
    }

    /// Deletes a counter object no rule refers to any more.
    pub fn delete_counter(&mut self, family: Family, table: &str, name: &str) -> &mut Self {
        let mut attributes = Attributes::default();
        attributes
            .string(1, table)
            .string(2, name)
            .be32(3, OBJECT_COUNTER);
        self.message(NFT_MSG_DELOBJ, 0, family, &attributes);
        self
    }

    /// Adds addresses to a set (refreshing their timeout when present),
    /// with the set's own timeout.
    pub fn add_elements(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
        addresses: &[std::net::IpAddr],
    ) -> &mut Self {
        let mut attributes = Attributes::default();
        attributes.string(1, table).string(2, set);
        // NFTA_SET_ELEM_LIST_ELEMENTS { NFTA_LIST_ELEM { NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE } } }
        attributes.nested(3, |list| {
            for address in addresses {
                let key = match address {
                    std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                    std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                list.nested(1, |element| {
                    element.nested(1, |value| {
                        value.put(1, &key);
                    });
                });
            }
        });
        self.message(NFT_MSG_NEWSETELEM, NLM_F_CREATE, family, &attributes);
        self
    }

    /// A set of IPv4 or IPv6 addresses.
    pub fn add_set(&mut self, family: Family, table: &str, set: &Set) -> &mut Self {
        // NFT_SET_TIMEOUT, NFT_SET_EVAL (dynamic); TYPE_IPADDR / TYPE_IP6ADDR.
        let flags =
            if set.timeout.is_some() { 0x10 } else { 0 } | if set.dynamic { 0x20 } else { 0 };
        let (key_type, key_length) = if set.ipv6 { (8, 16) } else { (7, 4) };
        let mut attributes = Attributes::default();
        attributes
            .string(1, table)
            .string(2, &set.name)
            .be32(3, flags)
            .be32(4, key_type)
            .be32(5, key_length);
        attributes.nested(9, |description| {
            description.be32(1, set.size);
        });
        attributes.be32(10, set.id);
        if let Some(timeout) = set.timeout {
            let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            attributes.put(11, &millis.to_be_bytes());
        }
        self.message(NFT_MSG_NEWSET, NLM_F_CREATE, family, &attributes);
        self
    }

    /// A named counter object.
    pub fn add_counter(&mut self, family: Family, table: &str, name: &str) -> &mut Self {
        let mut attributes = Attributes::default();
        attributes
            .string(1, table)
            .string(2, name)
            .be32(3, OBJECT_COUNTER);
        attributes.nested(4, |data| {
            data.put(1, &0_u64.to_be_bytes())
                .put(2, &0_u64.to_be_bytes());
        });
        self.message(NFT_MSG_NEWOBJ, NLM_F_CREATE, family, &attributes);
        self
    }

    /// Appends a rule to a chain.
    pub fn add_rule(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
        expressions: &[Expression],
    ) -> &mut Self {
        let mut attributes = Attributes::default();
        attributes.string(1, table).string(2, chain);
        attributes.nested(4, |list| {
            for expression in expressions {
                expression.write(list);
            }
        });
        self.message(
            NFT_MSG_NEWRULE,
            NLM_F_CREATE | NLM_F_APPEND,
            family,
            &attributes,
        );
        self
    }

    /// The whole batch, framed by BATCH_BEGIN and BATCH_END (whose
    /// resource id names the subsystem the batch is for).
    fn framed(&self) -> Vec<u8> {
        let frame =
            |kind: u16, sequence: u32| request(kind, 0, sequence, 0, NFNL_SUBSYS_NFTABLES, &[]);
        let mut bytes = frame(NFNL_MSG_BATCH_BEGIN, 0);
        bytes.extend_from_slice(&self.messages);
        bytes.extend(frame(NFNL_MSG_BATCH_END, self.sequence + 1));
        bytes
    }

    /// Sends the batch and waits for the kernel's answer to every message.
    pub fn apply(&self) -> Result<(), NftError> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.send(&self.framed(), 0)?;
        await_acknowledgements(&socket, self.sequence)
    }
}

/// Waits for `count` acknowledgements; the first refusal is the error.
pub(crate) fn await_acknowledgements(socket: &Socket, count: u32) -> Result<(), NftError> {
    let mut acknowledged = 0;
    let mut buffer = Vec::with_capacity(1 << 16);
    while acknowledged < count {
        buffer.clear();
        socket.recv(&mut buffer, 0)?;
        for message in messages(&buffer) {
            if message.kind == NLMSG_ERROR {
                check_acknowledgement(&message)?;
                acknowledged += 1;
            }
        }
    }
    Ok(())
}

/// One nfnetlink request: the netlink header (always NLM_F_REQUEST),
/// struct nfgenmsg (family, version 0, big-endian resource id), then the
/// attributes.
pub(crate) fn request(
    kind: u16,
    flags: u16,
    sequence: u32,
    family: u8,
    resource: u16,
    attributes: &[u8],
) -> Vec<u8> {
    let length = u32::try_from(20 + attributes.len()).unwrap_or(u32::MAX);
    let mut bytes = Vec::with_capacity(20 + attributes.len());
    bytes.extend_from_slice(&length.to_ne_bytes());
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    bytes.extend_from_slice(&sequence.to_ne_bytes());
    bytes.extend_from_slice(&0_u32.to_ne_bytes());
    bytes.push(family);
    bytes.push(0);
    bytes.extend_from_slice(&resource.to_be_bytes());
    bytes.extend_from_slice(attributes);
    bytes
}

/// One netlink message as received.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub(crate) kind: u16,
    pub(crate) sequence: u32,
    /// What follows the 16-byte header.
    pub(crate) payload: &'a [u8],
}

/// The messages in one datagram; a truncated or malformed tail ends it.
pub(crate) fn messages(buffer: &[u8]) -> impl Iterator<Item = Message<'_>> {
    let mut rest = buffer;
    std::iter::from_fn(move || {
        let header = rest.get(..16)?;
        let length = usize::try_from(u32::from_ne_bytes(word(header, 0)?)).ok()?;
        let body = rest.get(16..length)?;
        let message = Message {
            kind: u16::from_ne_bytes([header[4], header[5]]),
            sequence: u32::from_ne_bytes(word(header, 8)?),
            payload: body,
        };
        rest = rest.get((length + 3) & !3..).unwrap_or_default();
        Some(message)
    })
}

/// The four bytes at `at`, when there are four.
fn word(bytes: &[u8], at: usize) -> Option<[u8; 4]> {
    bytes.get(at..at + 4)?.try_into().ok()
}

/// NLMSG_ERROR carries an errno; zero is the acknowledgement.
fn check_acknowledgement(message: &Message<'_>) -> Result<(), NftError> {
    let code = word(message.payload, 0).map_or(0, i32::from_ne_bytes);
    if code == 0 {
        return Ok(());
    }
    Err(NftError::Refused {
        sequence: message.sequence,
        error: io::Error::from_raw_os_error(-code),
    })
}

/// The netlink attributes in `bytes` as (type without flags, value).
pub(crate) fn attributes(bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let header = rest.get(..4)?;
        let length = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let kind = u16::from_ne_bytes([header[2], header[3]]) & !NLA_F_NESTED;
        let value = rest.get(4..length)?;
        rest = rest.get((length + 3) & !3..).unwrap_or_default();
        Some((kind, value))
    })
}

/// What a named counter object has counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

/// Reads the named counters of a table in one dump (NFT_MSG_GETOBJ), in
/// the order asked. The kernel answers a dump of an absent table with
/// nothing, so a counter not found is an error: someone removed our
/// table, or never let us apply it.
pub fn read_counters(family: Family, table: &str, names: &[&str]) -> Result<Vec<Count>, NftError> {
    let found = dump_counters(family, table)?;
    names
        .iter()
        .map(|name| {
            found
                .iter()
                .find(|(found, _)| found == name)
                .map(|(_, count)| *count)
                .ok_or_else(|| NftError::MissingCounter {
                    table: table.to_owned(),
                    name: (*name).to_owned(),
                })
        })
        .collect()
}

/// Every named counter of a table.
fn dump_counters(family: Family, table: &str) -> Result<Vec<(String, Count)>, NftError> {
    let mut filter = Attributes::default();
    filter.string(1, table).be32(3, OBJECT_COUNTER);
    let message = request(
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETOBJ,
        NLM_F_DUMP,
        1,
        family as u8,
        0,
        &filter.bytes,
    );

    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.send(&message, 0)?;
    let mut counters = Vec::new();
    let mut buffer = Vec::with_capacity(1 << 16);
    loop {
        buffer.clear();
        socket.recv(&mut buffer, 0)?;
        for message in messages(&buffer) {
            match message.kind {
                NLMSG_DONE => return Ok(counters),
                NLMSG_ERROR => check_acknowledgement(&message)?,
                _ => counters.extend(counter_object(table, &message)),
            }
        }
    }
}

/// A NEWOBJ message of the dump: the counter's name and count, when it
/// is a counter of `table` (the kernel filters, this makes sure).
fn counter_object(table: &str, message: &Message<'_>) -> Option<(String, Count)> {
    // struct nfgenmsg precedes the attributes.
    let mut name = None;
    let mut in_table = false;
    let mut count = None;
    for (kind, value) in attributes(message.payload.get(4..)?) {
        match kind {
            1 => in_table = value.strip_suffix(&[0]) == Some(table.as_bytes()),
            2 => name = String::from_utf8(value.strip_suffix(&[0])?.to_vec()).ok(),
            3 if word(value, 0).map(u32::from_be_bytes) != Some(OBJECT_COUNTER) => return None,
            4 => {
                let mut read = Count::default();
                for (field, bytes) in attributes(value) {
                    let number = u64::from_be_bytes(bytes.try_into().ok()?);
                    match field {
                        1 => read.bytes = number,
                        2 => read.packets = number,
                        _ => {}
                    }
                }
                count = Some(read);
            }
            _ => {}
        }
    }
    if !in_table {
        return None;
    }
    Some((name?, count?))
}

#[cfg(test)]
pub(crate) mod tests;
