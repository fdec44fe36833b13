//! The control socket: `ixgate ctl` talks to a running `ixgate run` over a
//! Unix socket that only root can open, one JSON request and one JSON
//! answer per connection.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::run::Appliance;

/// A Flowspec rule as an operator gives it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct FlowSpec {
    pub destination: IpNet,
    pub source: Option<IpNet>,
    pub protocol: Option<u8>,
    pub destination_port: Option<u16>,
    /// TCP flags that must all be set (a flood's SYNs: 0x02).
    #[serde(default)]
    pub tcp_flags: Option<u8>,
    /// Inclusive IP packet-length range.
    #[serde(default)]
    pub packet_length: Option<(u16, u16)>,
    /// Bytes per second the telco lets through; 0 discards.
    pub rate_bytes: f32,
}

impl std::fmt::Display for FlowSpec {
    /// In the words of a Flowspec rule: `dst 192.0.2.10/32 proto 6 dport
    /// 443 flags 0x02 length 40 → discard`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dst {}", self.destination)?;
        if let Some(source) = self.source {
            write!(f, " src {source}")?;
        }
        if let Some(protocol) = self.protocol {
            write!(f, " proto {protocol}")?;
        }
        if let Some(port) = self.destination_port {
            write!(f, " dport {port}")?;
        }
        if let Some(flags) = self.tcp_flags {
            write!(f, " flags {flags:#04x}")?;
        }
        match self.packet_length {
            Some((low, high)) if low == high => write!(f, " length {low}")?,
            Some((low, high)) => write!(f, " length {low}-{high}")?,
            None => {}
        }
        if self.rate_bytes > 0.0 {
            write!(f, " → {} bytes/s", self.rate_bytes)
        } else {
            f.write_str(" → discard")
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "request", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    ShowPeers,
    ShowRoutes {
        peer: IpAddr,
    },
    ShowMitigations,
    ShowCounters,
    ShowFloods,
    /// Policy routing: desired and actual addresses, routes and rules.
    ShowRouting,
    /// Withdraw the anycast prefixes from one telco, or from all.
    Drain {
        telco: Option<String>,
    },
    /// Announce them again to that telco, or to all.
    Undrain {
        telco: Option<String>,
    },
    FlowAdd(FlowSpec),
    FlowRemove(FlowSpec),
    BlackholeAdd {
        prefix: IpNet,
    },
    BlackholeRemove {
        prefix: IpNet,
    },
    /// The proxy's services: names, origins and their health.
    ShowServices,
    /// Read the configuration again and apply what can change while
    /// running (the proxy's certificates, CAs, CRLs, ticket keys and
    /// services); a bad configuration changes nothing.
    Reload,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Answer {
    pub ok: bool,
    #[serde(default)]
    pub data: serde_json::Value,
    pub error: Option<String>,
}

impl Answer {
    pub fn data(data: impl Serialize) -> Self {
        match serde_json::to_value(data) {
            Ok(data) => Self {
                ok: true,
                data,
                error: None,
            },
            Err(error) => Self::error(error.to_string()),
        }
    }

    pub fn error(error: String) -> Self {
        Self {
            ok: false,
            data: serde_json::Value::Null,
            error: Some(error),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {path}: {reason}")]
    Protocol { path: PathBuf, reason: String },
}

/// Listens on `path`, replacing a socket a crashed run left there; only
/// root may connect (mode 0600).
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let socket_error = |source| ControlError::Socket {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(socket_error)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(socket_error(error)),
    }
    let listener = UnixListener::bind(path).map_err(socket_error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(socket_error)?;
    Ok(listener)
}

/// Answers requests until the listener fails.
pub async fn serve(listener: UnixListener, appliance: Arc<Appliance>) {
    while let Ok((stream, _)) = listener.accept().await {
        let appliance = appliance.clone();
        tokio::spawn(async move {
            let _ = answer(stream, &appliance).await;
        });
    }
}

/// The longest request line read; a request is a few hundred bytes.
const MAX_REQUEST: usize = 64 * 1024;

async fn answer(stream: UnixStream, appliance: &Appliance) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST as u64);
    reader.read_line(&mut line).await?;
    let answer = match serde_json::from_str::<Request>(&line) {
        Ok(request) => appliance.handle(request),
        Err(error) => Answer::error(format!("bad request: {error}")),
    };
    let mut text = serde_json::to_string(&answer)
        .unwrap_or_else(|_| r#"{"ok":false,"error":"unencodable answer"}"#.into());
    text.push('\n');
    write.write_all(text.as_bytes()).await
}

/// Sends `request` to the control socket at `path` and returns the answer.
pub fn ask(path: &Path, request: &Request) -> Result<Answer, ControlError> {
    use std::io::{BufRead as _, Write as _};
    let socket_error = |source| ControlError::Socket {
        path: path.to_owned(),
        source,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(socket_error)?;
    let mut line = serde_json::to_string(request).map_err(|error| ControlError::Protocol {
        path: path.to_owned(),
        reason: error.to_string(),
    })?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(socket_error)?;
    let mut answer = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(socket_error)?;
    serde_json::from_str(&answer).map_err(|error| ControlError::Protocol {
        path: path.to_owned(),
        reason: format!("{error}: {answer}"),
    })
}
