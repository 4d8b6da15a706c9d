//! What the load tool reads from Linux `/proc`: CPU time (`/proc/PID/stat` utime + stime),
//! resident and proportional memory (`/proc/PID/smaps_rollup` Rss and Pss), thread counts,
//! a process's descendants (so a forking proxy such as Dante is counted whole), the whole
//! machine's busy time (`/proc/stat`), and the tool's own file-descriptor limit.
//!
//! The files are read and parsed by the [`procfs`] crate; this module is the glue
//! that turns its values into the tool's units (clock ticks, KiB) and refuses values that
//! cannot be right (a negative thread count or child time). Every scan is capped at
//! [`MAX_PROC_SCAN`] `/proc` entries and every tree at [`MAX_TREE`] processes. Files are
//! not length-capped any more: they are written by the kernel in a fixed shape, and the
//! only text a process chooses, its command name, is at most 16 bytes (`TASK_COMM_LEN`).
//!
//! CPU times are in clock ticks (`sysconf(_SC_CLK_TCK)`, usually 100 per second), so a
//! measurement is only as fine as 1/ticks seconds per process. Children that exited during
//! a measurement count once their parent has waited for them (cutime, cstime). It is for
//! benchmarks, not for monitoring.

use core::fmt;
use std::collections::BTreeSet;
use std::io;

use ::procfs::process::{self as pp, Process};
use ::procfs::{CpuTime, CurrentSI, KernelStats};

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
    /// The file could not be read or parsed (the process may have exited).
    Read {
        /// The file.
        path: String,
        /// Why, as `procfs` says it.
        error: ::procfs::ProcError,
    },
    /// The file did not have the expected shape.
    Malformed {
        /// The file (`stat`, `smaps_rollup`).
        file: &'static str,
        /// The field that was missing or out of range.
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

/// Reads `file` of `/proc/PID` (`pid` None: this process) with `procfs`. A pid above
/// `i32::MAX` is no process.
fn read<T>(
    pid: Option<u32>,
    file: &str,
    read: impl FnOnce(&Process) -> ::procfs::ProcResult<T>,
) -> Result<T, ProcError> {
    let process = match pid.map(i32::try_from) {
        None => Process::myself(),
        Some(Ok(p)) => Process::new(p),
        Some(Err(_)) => Err(::procfs::ProcError::NotFound(None)),
    };
    process
        .and_then(|p| read(&p))
        .map_err(|error| ProcError::Read {
            path: match pid {
                Some(p) => format!("/proc/{p}/{file}"),
                None => format!("/proc/self/{file}"),
            },
            error,
        })
}

/// The tool's [`Stat`] from what `procfs` parsed: the kernel prints ppid, cutime, cstime
/// and num_threads as signed numbers, and a negative one is refused as malformed.
fn stat_from(s: &pp::Stat) -> Result<Stat, ProcError> {
    let malformed = |field| ProcError::Malformed {
        file: "stat",
        field,
    };
    let cutime = u64::try_from(s.cutime).map_err(|_| malformed("cutime"))?;
    let cstime = u64::try_from(s.cstime).map_err(|_| malformed("cstime"))?;
    Ok(Stat {
        ppid: u32::try_from(s.ppid).map_err(|_| malformed("ppid"))?,
        utime: s.utime,
        stime: s.stime,
        children_time: cutime.saturating_add(cstime),
        threads: u64::try_from(s.num_threads).map_err(|_| malformed("num_threads"))?,
    })
}

/// The tool's [`Memory`] from what `procfs` parsed of smaps_rollup: `procfs` gives bytes
/// (the kernel's kB times 1024), the tool KiB. The rollup is one entry; entries are summed
/// all the same.
fn memory_from(rollup: &pp::SmapsRollup) -> Result<Memory, ProcError> {
    let malformed = |field| ProcError::Malformed {
        file: "smaps_rollup",
        field,
    };
    let maps = &rollup.memory_map_rollup.0;
    if maps.is_empty() {
        return Err(malformed("Rss"));
    }
    let sum_kib = |key: &'static str| -> Result<u64, ProcError> {
        maps.iter().try_fold(0u64, |total, map| {
            let bytes = map.extension.map.get(key).ok_or(malformed(key))?;
            Ok(total.saturating_add(bytes / 1024))
        })
    };
    Ok(Memory {
        rss_kib: sum_kib("Rss")?,
        pss_kib: sum_kib("Pss")?,
    })
}

/// `/proc/PID/stat` of one process (`pid` None: this process).
pub fn read_stat(pid: Option<u32>) -> Result<Stat, ProcError> {
    stat_from(&read(pid, "stat", Process::stat)?)
}

/// `/proc/PID/smaps_rollup` of one process (Linux 4.14+).
pub fn read_memory(pid: Option<u32>) -> Result<Memory, ProcError> {
    memory_from(&read(pid, "smaps_rollup", Process::smaps_rollup)?)
}

/// `root` and every live descendant, root first, at most [`MAX_TREE`] processes. Processes
/// that vanish during the scan are skipped.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(all) = ::procfs::process::all_processes() {
        for process in all.take(MAX_PROC_SCAN).flatten() {
            let Ok(pid) = u32::try_from(process.pid()) else {
                continue;
            };
            if let Ok(stat) = process.stat() {
                if let Ok(ppid) = u32::try_from(stat.ppid) {
                    parents.push((pid, ppid));
                }
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

/// Busy time of the whole machine from `/proc/stat`'s `cpu` line (user, nice, system,
/// irq, softirq, steal; not idle or iowait), in clock ticks, summed over all CPUs. Fails if
/// the kernel gave no irq, softirq or steal (before Linux 2.6.11).
fn machine_busy_from(total: &CpuTime) -> Result<u64, ProcError> {
    let malformed = ProcError::Malformed {
        file: "stat",
        field: "cpu",
    };
    match (total.irq, total.softirq, total.steal) {
        (Some(irq), Some(softirq), Some(steal)) => {
            Ok([total.user, total.nice, total.system, irq, softirq, steal]
                .into_iter()
                .fold(0u64, u64::saturating_add))
        }
        _ => Err(malformed),
    }
}

/// Busy clock ticks of the whole machine so far (user, nice, system, irq, softirq, steal of
/// `/proc/stat`; not idle or iowait).
pub fn machine_busy_ticks() -> Result<u64, ProcError> {
    let stats = KernelStats::current().map_err(|error| ProcError::Read {
        path: "/proc/stat".to_owned(),
        error,
    })?;
    machine_busy_from(&stats.total)
}

/// CPU ticks (utime + stime) used so far by this process, all threads.
pub fn self_cpu_ticks() -> Result<u64, ProcError> {
    read_stat(None).map(|s| s.utime + s.stime)
}

/// The CPU readings at the start of a measurement window: the proxy's process tree (when
/// its pid is known), this tool, and the whole machine. Every measurement of the load tool
/// takes them the same way: [`CpuWindow::start`] just before the window,
/// [`CpuWindow::finish`] just after it (in the reverse order, so the proxy's and the tool's
/// readings bracket the machine's).
#[derive(Debug, Clone)]
pub struct CpuWindow {
    pid: Option<u32>,
    proxy: Option<TreeSample>,
    tool: u64,
    machine: u64,
}

/// CPU time spent during a window, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSpent {
    /// By the proxy's process tree (None without a pid).
    pub proxy: Option<f64>,
    /// By this tool.
    pub tool: f64,
    /// By the whole machine (busy time from `/proc/stat`).
    pub machine: f64,
}

impl CpuWindow {
    /// Reads the counters at the start of a window; `pid` is the proxy's, if known.
    pub fn start(pid: Option<u32>) -> Result<CpuWindow, ProcError> {
        let proxy = pid.map(|p| sample_tree(p, false)).transpose()?;
        let tool = self_cpu_ticks()?;
        let machine = machine_busy_ticks()?;
        Ok(CpuWindow {
            pid,
            proxy,
            tool,
            machine,
        })
    }

    /// Reads them again at the end of the window: what was spent in between.
    pub fn finish(self) -> Result<CpuSpent, ProcError> {
        let machine = machine_busy_ticks()?;
        let tool = self_cpu_ticks()?;
        let proxy = self.pid.map(|p| sample_tree(p, false)).transpose()?;
        Ok(CpuSpent {
            proxy: self
                .proxy
                .zip(proxy)
                .map(|(b, a)| ticks_to_secs(a.cpu_ticks.saturating_sub(b.cpu_ticks))),
            tool: ticks_to_secs(tool.saturating_sub(self.tool)),
            machine: ticks_to_secs(machine.saturating_sub(self.machine)),
        })
    }
}

/// Clock ticks per second of the CPU times in `/proc/PID/stat` (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks_per_second() -> u64 {
    ::procfs::ticks_per_second().max(1)
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
    let open = read(None, "fd", Process::fd_count).map_or(0, |n| n as u64);
    Ok(soft.saturating_sub(open))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::procfs::{ExplicitSystemInfo, FromBufReadSI, FromRead};

    const STAT: &str = "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 1234 0 5 0 \
        777 333 5 6 20 0 17 0 123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 \
        4096 0 0 0 0 17 1 0 0 0 0 0\n";

    fn stat(text: &str) -> Result<Stat, ProcError> {
        let parsed = pp::Stat::from_read(text.as_bytes()).map_err(|error| ProcError::Read {
            path: "test".to_owned(),
            error,
        })?;
        stat_from(&parsed)
    }

    #[test]
    fn stat_fields_counted_after_the_name() {
        let s = stat(STAT).unwrap();
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
    fn stat_rejects_truncated_garbage_or_negative() {
        assert!(stat("").is_err());
        assert!(stat("12 (x").is_err());
        assert!(stat("12 (x) S 1 2 3").is_err());
        let cut = STAT.split_at(STAT.find("777").unwrap()).0;
        assert!(stat(cut).is_err());
        assert!(stat(&STAT.replace(" 333 ", " x ")).is_err());
        assert!(stat(&STAT.replace(") S 1 ", ") S 99999999999 ")).is_err());
        assert!(matches!(
            stat(&STAT.replace(" 5 6 20 ", " -5 6 20 ")),
            Err(ProcError::Malformed {
                field: "cutime",
                ..
            })
        ));
        assert!(matches!(
            stat(&STAT.replace(" 20 0 17 ", " 20 0 -17 ")),
            Err(ProcError::Malformed {
                field: "num_threads",
                ..
            })
        ));
    }

    fn rollup(text: &str) -> Result<Memory, ProcError> {
        let parsed =
            pp::SmapsRollup::from_read(text.as_bytes()).map_err(|error| ProcError::Read {
                path: "test".to_owned(),
                error,
            })?;
        memory_from(&parsed)
    }

    #[test]
    fn rollup_in_kib() {
        let text = "55d0a0000000-7ffd00000000 ---p 00000000 00:00 0    [rollup]\n\
            Rss:               12345 kB\nPss:                6789 kB\n\
            Pss_Anon:           100 kB\nShared_Clean:  1 kB\n";
        assert_eq!(
            rollup(text).unwrap(),
            Memory {
                rss_kib: 12345,
                pss_kib: 6789
            }
        );
        assert!(rollup("").is_err());
        assert!(rollup("Rss: 1 kB\n").is_err());
        let head = "55d0a0000000-7ffd00000000 ---p 00000000 00:00 0    [rollup]\n";
        assert!(rollup(&format!("{head}Rss: 1 kB\n")).is_err());
        assert!(rollup(&format!("{head}Rss: x kB\nPss: 1 kB\n")).is_err());
    }

    fn busy(text: &str) -> Result<u64, ProcError> {
        let info = ExplicitSystemInfo {
            boot_time_secs: 0,
            ticks_per_second: 100,
            page_size: 4096,
            is_little_endian: true,
        };
        let parsed = KernelStats::from_buf_read(text.as_bytes(), &info).map_err(|error| {
            ProcError::Read {
                path: "test".to_owned(),
                error,
            }
        })?;
        machine_busy_from(&parsed.total)
    }

    #[test]
    fn machine_busy_from_proc_stat() {
        let tail = "ctxt 1\nbtime 2\nprocesses 3\n";
        let text = format!("cpu  100 2 30 5000 7 1 4 3 0 0\ncpu0 50 1 15 2500 3 0 2 1 0 0\n{tail}");
        assert_eq!(busy(&text).unwrap(), 100 + 2 + 30 + 1 + 4 + 3);
        assert!(busy("").is_err());
        assert!(busy(&format!("cpu0 1 2 3 4 5 6 7 8\n{tail}")).is_err());
        assert!(busy(&format!("cpu  1 2 3 4\n{tail}")).is_err());
        assert!(busy(&format!("cpu  1 2 x 4 5 6 7 8\n{tail}")).is_err());
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
        assert_eq!(read_stat(Some(me)).unwrap().ppid, stat.ppid);
        let sample = sample_tree(me, true).unwrap();
        assert!(sample.processes >= 1);
        let m = sample.memory.unwrap();
        assert!(m.rss_kib > 0 && m.pss_kib > 0 && m.pss_kib <= m.rss_kib);
        assert!(clock_ticks_per_second() > 0);
        assert!(self_cpu_ticks().is_ok());
        assert!(read_stat(Some(u32::MAX)).is_err());
        assert!(read_stat(Some(i32::MAX as u32)).is_err());
        assert!(process_tree(me).contains(&me));
    }

    #[test]
    fn tree_holds_a_child() {
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let tree = process_tree(me);
        let sample = sample_tree(me, false).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(tree.first(), Some(&me));
        assert!(tree.contains(&child.id()));
        assert!(sample.processes >= 2 && sample.memory.is_none());
    }

    #[test]
    fn nofile_can_be_raised() {
        assert!(raise_nofile().unwrap() > 0);
    }
}
