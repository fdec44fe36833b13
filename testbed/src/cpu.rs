//! CPU time from /proc, as the benchmarks read it: the whole machine's
//! (/proc/stat) and one process's (/proc/PID/stat), in seconds.

use std::io;
use std::sync::OnceLock;

/// Non-idle CPU time of the whole machine, as /proc/stat splits it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MachineCpu {
    /// system, irq and softirq, seconds.
    pub kernel: f64,
    /// user and nice, seconds.
    pub user: f64,
}

impl MachineCpu {
    pub fn busy(self) -> f64 {
        self.kernel + self.user
    }

    /// What was spent from `earlier` to `self`.
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        Self {
            kernel: self.kernel - earlier.kernel,
            user: self.user - earlier.user,
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// The whole machine's CPU time so far.
pub fn machine() -> io::Result<MachineCpu> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .next()
        .ok_or_else(|| invalid("/proc/stat is empty"))?;
    // Counts of ticks, read as f64: exact far beyond any uptime.
    let fields: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| invalid("/proc/stat: not a number"))?;
    // user nice system idle iowait irq softirq
    let field = |index: usize| fields.get(index).copied().unwrap_or(0.0);
    let tick = tick_seconds()?;
    Ok(MachineCpu {
        kernel: tick * (field(2) + field(5) + field(6)),
        user: tick * (field(0) + field(1)),
    })
}

/// User plus system CPU seconds of process `pid` so far, all its threads.
pub fn process(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses; utime and
    // stime are fields 14 and 15, and the rest starts at field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |field: usize| -> io::Result<f64> {
        fields
            .get(field - 3)
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| invalid("/proc/PID/stat: short or not a number"))
    };
    Ok(tick_seconds()? * (ticks(14)? + ticks(15)?))
}

/// One clock tick of /proc's counts (1 / USER_HZ), seconds.
pub fn tick_seconds() -> io::Result<f64> {
    static TICK: OnceLock<f64> = OnceLock::new();
    if let Some(tick) = TICK.get() {
        return Ok(*tick);
    }
    let output = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()?;
    let per_second: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| invalid("getconf CLK_TCK: not a number"))?;
    if per_second <= 0.0 {
        return Err(invalid("getconf CLK_TCK: not positive"));
    }
    Ok(*TICK.get_or_init(|| 1.0 / per_second))
}
