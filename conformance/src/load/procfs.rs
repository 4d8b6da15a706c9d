//! What the load tool reads from Linux `/proc`: CPU time (`/proc/PID/stat` utime + stime),
//! resident and proportional memory (`/proc/PID/status` VmRSS, `/proc/PID/smaps_rollup`
//! Pss), thread counts, a process's descendants (so a forking proxy such as Dante is
//! counted whole), and the tool's own file-descriptor limit.
//!
//! The parsers are pure functions over the file text; the readers cap every file at
//! [`MAX_PROC_FILE_LEN`] bytes and every scan at [`MAX_PROC_SCAN`] entries. CPU times are
//! in clock ticks (`sysconf(_SC_CLK_TCK)`, usually 100 per second), so a measurement is
//! only as fine as 1/ticks seconds per process. Children that exited during a measurement
//! count once their parent has waited for them (cutime, cstime). It is for benchmarks,
//! not for monitoring.

use core::fmt;
use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// Largest `/proc` file read (status and smaps_rollup are about 1-2 KiB).
pub const MAX_PROC_FILE_LEN: u64 = 64 * 1024;
/// Most `/proc` entries looked at when collecting descendants.
pub const MAX_PROC_SCAN: usize = 1 << 20;
/// Most processes in one measured tree.
pub const MAX_TREE: usize = 4096;

/// The fields of `/proc/PID/stat` the tool uses (proc(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 4: parent pid.
    pub ppid: u32,
    /// Field 14: user-mode CPU time in clock ticks (all threads).
    pub utime: u64,
    /// Field 15: kernel-mode CPU time in clock ticks (all threads).
    pub stime: u64,
    /// Fields 16 + 17: cutime + cstime, CPU time of children that exited and were waited
    /// for (so a forking server's short-lived workers are not lost).
    pub children_time: u64,
    /// Field 20: number of threads.
    pub threads: u64,
}

impl Stat {
    /// utime + stime + cutime + cstime: everything this process and its reaped children
    /// ran.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime + self.stime + self.children_time
    }
}

/// Memory of one process or a tree, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// Resident set size (`Rss:` of smaps_rollup; for a tree, the sum, which counts shared
    /// pages once per process).
    pub rss_kib: u64,
    /// Proportional set size (`Pss:`): shared pages divided among their users, so the sum
    /// over a tree is what the tree really costs.
    pub pss_kib: u64,
}

/// A moment's reading of a process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeSample {
    /// utime + stime + cutime + cstime of every live process of the tree, in clock ticks.
    pub cpu_ticks: u64,
    /// Threads in the tree.
    pub threads: u64,
    /// Processes in the tree.
    pub processes: u64,
    /// Memory, when asked for.
    pub memory: Option<Memory>,
}

/// Why `/proc` could not be read or understood.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcError {
    /// The file could not be read (the process may have exited).
    Read {
        /// The file.
        path: String,
        /// Why.
        error: io::Error,
    },
    /// The file did not have the expected shape.
    Malformed {
        /// The file (`stat`, `status`, `smaps_rollup`).
        file: &'static str,
        /// The field that was missing or not a number.
        field: &'static str,
    },
    /// The file-descriptor limit could not be raised.
    Rlimit(io::Error),
}

impl fmt::Display for ProcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcError::Read { path, error } => write!(f, "reading {path}: {error}"),
            ProcError::Malformed { file, field } => {
                write!(f, "unexpected /proc/PID/{file}: no usable `{field}`")
            }
            ProcError::Rlimit(e) => write!(f, "raising RLIMIT_NOFILE: {e}"),
        }
    }
}

impl std::error::Error for ProcError {}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Result<Stat, ProcError> {
    let malformed = |field| ProcError::Malformed {
        file: "stat",
        field,
    };
    let (_, after) = text.rsplit_once(')').ok_or(malformed("comm"))?;
    // Field 3 (state) is index 0 of what follows the name.
    let fields: Vec<&str> = after.split_ascii_whitespace().take(20).collect();
    let field = |n: usize, name: &'static str| -> Result<u64, ProcError> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or(malformed(name))
    };
    Ok(Stat {
        ppid: u32::try_from(field(4, "ppid")?).map_err(|_| malformed("ppid"))?,
        utime: field(14, "utime")?,
        stime: field(15, "stime")?,
        children_time: field(16, "cutime")? + field(17, "cstime")?,
        threads: field(20, "num_threads")?,
    })
}

/// The number after `key` (for example `VmRSS:` or `Pss:`) on its own line, without the
/// unit; None if absent or not a number.
pub fn parse_key_number(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?;
        rest.split_ascii_whitespace().next()?.parse().ok()
    })
}

/// Parses `/proc/PID/smaps_rollup` (Linux 4.14+): `Rss:` and `Pss:` in kB.
pub fn parse_smaps_rollup(text: &str) -> Result<Memory, ProcError> {
    let malformed = |field| ProcError::Malformed {
        file: "smaps_rollup",
        field,
    };
    Ok(Memory {
        rss_kib: parse_key_number(text, "Rss:").ok_or(malformed("Rss"))?,
        pss_kib: parse_key_number(text, "Pss:").ok_or(malformed("Pss"))?,
    })
}

/// Reads a whole `/proc` file, at most [`MAX_PROC_FILE_LEN`] bytes.
pub fn read_capped(path: &Path) -> Result<String, ProcError> {
    let read_error = |error| ProcError::Read {
        path: path.display().to_string(),
        error,
    };
    let file = fs::File::open(path).map_err(read_error)?;
    let mut text = String::new();
    file.take(MAX_PROC_FILE_LEN)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    Ok(text)
}

/// `/proc/PID/stat` of one process (`pid` None: this process).
pub fn read_stat(pid: Option<u32>) -> Result<Stat, ProcError> {
    parse_stat(&read_capped(&proc_path(pid, "stat"))?)
}

/// `/proc/PID/smaps_rollup` of one process.
pub fn read_memory(pid: Option<u32>) -> Result<Memory, ProcError> {
    parse_smaps_rollup(&read_capped(&proc_path(pid, "smaps_rollup"))?)
}

/// `VmRSS` of `/proc/PID/status` in KiB (the kernel's counter, cheaper than smaps).
pub fn read_vm_rss(pid: Option<u32>) -> Result<u64, ProcError> {
    let text = read_capped(&proc_path(pid, "status"))?;
    parse_key_number(&text, "VmRSS:").ok_or(ProcError::Malformed {
        file: "status",
        field: "VmRSS",
    })
}

fn proc_path(pid: Option<u32>, file: &str) -> std::path::PathBuf {
    match pid {
        Some(p) => Path::new("/proc").join(p.to_string()).join(file),
        None => Path::new("/proc/self").join(file),
    }
}

/// `root` and every live descendant, root first, at most [`MAX_TREE`] processes. Processes
/// that vanish during the scan are skipped.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.take(MAX_PROC_SCAN).flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Ok(stat) = read_stat(Some(pid)) {
                parents.push((pid, stat.ppid));
            }
        }
    }
    tree_from_parents(root, &parents)
}

/// `root` and its descendants from (pid, ppid) pairs, breadth first, at most [`MAX_TREE`].
pub fn tree_from_parents(root: u32, parents: &[(u32, u32)]) -> Vec<u32> {
    let mut tree = vec![root];
    let mut seen = BTreeSet::from([root]);
    let mut next = 0;
    while let Some(&parent) = tree.get(next) {
        next += 1;
        for &(pid, ppid) in parents {
            if ppid == parent && tree.len() < MAX_TREE && seen.insert(pid) {
                tree.push(pid);
            }
        }
    }
    tree
}

/// Reads CPU time, threads and (if `memory`) RSS and PSS of `root` and its descendants.
/// Fails only if `root` itself cannot be read.
pub fn sample_tree(root: u32, memory: bool) -> Result<TreeSample, ProcError> {
    let root_stat = read_stat(Some(root))?;
    let root_memory = if memory {
        Some(read_memory(Some(root))?)
    } else {
        None
    };
    let mut sample = TreeSample {
        cpu_ticks: root_stat.cpu_ticks(),
        threads: root_stat.threads,
        processes: 1,
        memory: root_memory,
    };
    for pid in process_tree(root).into_iter().skip(1) {
        let Ok(stat) = read_stat(Some(pid)) else {
            continue;
        };
        sample.cpu_ticks += stat.cpu_ticks();
        sample.threads += stat.threads;
        sample.processes += 1;
        if let Some(total) = sample.memory.as_mut() {
            if let Ok(m) = read_memory(Some(pid)) {
                total.rss_kib += m.rss_kib;
                total.pss_kib += m.pss_kib;
            }
        }
    }
    Ok(sample)
}

/// Busy time of the whole machine from `/proc/stat`'s first line (user, nice, system,
/// irq, softirq, steal; not idle or iowait), in clock ticks, summed over all CPUs.
pub fn parse_machine_busy(text: &str) -> Result<u64, ProcError> {
    let line = text.lines().next().ok_or_else(malformed_cpu)?;
    let mut fields = line.split_ascii_whitespace();
    if fields.next() != Some("cpu") {
        return Err(malformed_cpu());
    }
    let values: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse::<u64>().map_err(|_| malformed_cpu()))
        .collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal
    match values.as_slice() {
        [user, nice, system, _idle, _iowait, irq, softirq, steal] => {
            Ok(user + nice + system + irq + softirq + steal)
        }
        _ => Err(malformed_cpu()),
    }
}

fn malformed_cpu() -> ProcError {
    ProcError::Malformed {
        file: "stat",
        field: "cpu",
    }
}

/// Busy clock ticks of the whole machine so far (see [`parse_machine_busy`]).
pub fn machine_busy_ticks() -> Result<u64, ProcError> {
    parse_machine_busy(&read_capped(Path::new("/proc/stat"))?)
}

/// CPU ticks (utime + stime) used so far by this process, all threads.
pub fn self_cpu_ticks() -> Result<u64, ProcError> {
    read_stat(None).map(|s| s.utime + s.stime)
}

/// Clock ticks per second of the CPU times in `/proc/PID/stat`.
pub fn clock_ticks_per_second() -> u64 {
    clock::ticks_per_second()
}

mod clock {
    #![allow(unsafe_code)]

    /// `sysconf(_SC_CLK_TCK)`, or the Linux default of 100 if it fails.
    pub(super) fn ticks_per_second() -> u64 {
        // SAFETY: sysconf takes an integer name and returns an integer; it reads no memory
        // of ours and has no preconditions. _SC_CLK_TCK is a valid name on every libc.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
    }
}

/// Converts ticks to seconds.
pub fn ticks_to_secs(ticks: u64) -> f64 {
    ticks as f64 / clock_ticks_per_second() as f64
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit and answers how many more
/// descriptors it may open now (the limit minus those already open).
pub fn raise_nofile() -> Result<u64, ProcError> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        )
        .map_err(|e| ProcError::Rlimit(e.into()))?;
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let open = fs::read_dir("/proc/self/fd")
        .map(|d| d.take(MAX_PROC_SCAN).count() as u64)
        .unwrap_or(0);
    Ok(soft.saturating_sub(open))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 1234 0 5 0 \
        777 333 5 6 20 0 17 0 123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 \
        4096 0 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn stat_fields_counted_after_the_name() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(
            s,
            Stat {
                ppid: 1,
                utime: 777,
                stime: 333,
                children_time: 11,
                threads: 17
            }
        );
    }

    #[test]
    fn stat_rejects_truncated_or_garbage() {
        assert!(parse_stat("").is_err());
        assert!(parse_stat("12 (x").is_err());
        assert!(parse_stat("12 (x) S 1 2 3").is_err());
        let cut = STAT.split_at(STAT.find("777").unwrap()).0;
        assert!(matches!(
            parse_stat(cut),
            Err(ProcError::Malformed { field: "utime", .. })
        ));
        assert!(parse_stat(&STAT.replace(" 333 ", " x ")).is_err());
        assert!(parse_stat(&STAT.replace(") S 1 ", ") S 99999999999 ")).is_err());
    }

    #[test]
    fn status_and_rollup() {
        let status = "Name:\ttriproxy\nThreads:\t9\nVmHWM:\t  9000 kB\nVmRSS:\t    5120 kB\n";
        assert_eq!(parse_key_number(status, "VmRSS:"), Some(5120));
        assert_eq!(parse_key_number(status, "Threads:"), Some(9));
        assert_eq!(parse_key_number(status, "VmSwap:"), None);
        let rollup = "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:               12345 kB\n\
            Pss:                6789 kB\nPss_Anon:           100 kB\nShared_Clean:  1 kB\n";
        assert_eq!(
            parse_smaps_rollup(rollup).unwrap(),
            Memory {
                rss_kib: 12345,
                pss_kib: 6789
            }
        );
        assert!(parse_smaps_rollup("Rss: 1 kB\n").is_err());
        assert!(parse_smaps_rollup("Rss: x kB\nPss: 1 kB\n").is_err());
    }

    #[test]
    fn machine_busy_from_proc_stat() {
        let text = "cpu  100 2 30 5000 7 1 4 3 0 0\ncpu0 50 1 15 2500 3 0 2 1 0 0\n";
        assert_eq!(parse_machine_busy(text).unwrap(), 100 + 2 + 30 + 1 + 4 + 3);
        assert!(parse_machine_busy("").is_err());
        assert!(parse_machine_busy("cpu0 1 2 3 4 5 6 7 8\n").is_err());
        assert!(parse_machine_busy("cpu 1 2 3\n").is_err());
        assert!(parse_machine_busy("cpu 1 2 x 4 5 6 7 8\n").is_err());
        assert!(machine_busy_ticks().is_ok());
    }

    #[test]
    fn tree_is_breadth_first_and_ignores_cycles() {
        let parents = [(10, 1), (11, 10), (12, 10), (13, 11), (20, 1), (10, 13)];
        assert_eq!(tree_from_parents(10, &parents), vec![10, 11, 12, 13]);
        assert_eq!(tree_from_parents(99, &parents), vec![99]);
        let many: Vec<(u32, u32)> = (2..10_000).map(|p| (p, 1)).collect();
        assert_eq!(tree_from_parents(1, &many).len(), MAX_TREE);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let stat = read_stat(None).unwrap();
        assert!(stat.threads >= 1);
        let sample = sample_tree(me, true).unwrap();
        assert!(sample.processes >= 1);
        let m = sample.memory.unwrap();
        assert!(m.rss_kib > 0 && m.pss_kib > 0 && m.pss_kib <= m.rss_kib);
        assert!(read_vm_rss(Some(me)).unwrap() > 0);
        assert!(clock_ticks_per_second() > 0);
        assert!(self_cpu_ticks().is_ok());
        assert!(read_stat(Some(u32::MAX)).is_err());
        assert!(process_tree(me).contains(&me));
    }

    #[test]
    fn nofile_can_be_raised() {
        assert!(raise_nofile().unwrap() > 0);
    }
}
