//! A cgroup v1 memory limit around the server for the flood: the budget claims the process
//! stays inside its heap ceiling, and a hard kernel limit (as systemd's MemoryMax= would set)
//! proves it does not get OOM-killed under attack. Needs root and the v1 memory controller at
//! /sys/fs/cgroup/memory.

use std::path::PathBuf;

const ROOT: &str = "/sys/fs/cgroup/memory";

pub struct Cgroup {
    dir: PathBuf,
    /// Each moved pid with the memory cgroup it came from, to put it back.
    moved: Vec<(u32, PathBuf)>,
}

/// What the kernel recorded for the group.
pub struct Report {
    pub limit_bytes: u64,
    pub max_usage_bytes: u64,
    pub failcnt: u64,
    pub oom_kill: u64,
}

fn write(path: &PathBuf, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("write {value} to {}: {e}", path.display()))
}

fn read_u64(path: PathBuf) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The memory cgroup a process is in now (relative to the controller's root).
fn memory_cgroup_of(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()?
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then(|| path.to_string())
        })
}

impl Cgroup {
    /// Creates `NAME` with a limit of `mib` MiB and moves `pids` into it.
    pub fn create(name: &str, mib: u64, pids: &[u32]) -> Result<Cgroup, String> {
        let dir = PathBuf::from(ROOT).join(name);
        if dir.exists() {
            // Left over from an interrupted run: reuse it (rmdir works only when empty).
            let _ = std::fs::remove_dir(&dir);
        }
        if !dir.exists() {
            std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        }
        let mut group = Cgroup {
            dir,
            moved: Vec::new(),
        };
        write(
            &group.dir.join("memory.limit_in_bytes"),
            &(mib << 20).to_string(),
        )?;
        // Charge what the process already holds to the new group too, so max_usage covers the
        // whole process and not only what it allocates after the move (deprecated in recent
        // kernels; without it the figure is a lower bound, said in the report).
        let _ = write(&group.dir.join("memory.move_charge_at_immigrate"), "3");
        for pid in pids {
            let from = memory_cgroup_of(*pid).unwrap_or_else(|| "/".into());
            write(&group.dir.join("cgroup.procs"), &pid.to_string())?;
            let back = PathBuf::from(ROOT).join(from.trim_start_matches('/'));
            group.moved.push((*pid, back));
        }
        Ok(group)
    }

    pub fn moved_charges(&self) -> bool {
        std::fs::read_to_string(self.dir.join("memory.move_charge_at_immigrate"))
            .is_ok_and(|s| s.trim() == "3")
    }

    pub fn report(&self) -> Report {
        let oom = std::fs::read_to_string(self.dir.join("memory.oom_control")).unwrap_or_default();
        let oom_kill = oom
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Report {
            limit_bytes: read_u64(self.dir.join("memory.limit_in_bytes")),
            max_usage_bytes: read_u64(self.dir.join("memory.max_usage_in_bytes")),
            failcnt: read_u64(self.dir.join("memory.failcnt")),
            oom_kill,
        }
    }

    /// Moves the processes back where they were and removes the group.
    pub fn remove(mut self) -> Result<(), String> {
        self.restore()
    }

    fn restore(&mut self) -> Result<(), String> {
        for (pid, back) in self.moved.drain(..) {
            if crate::proc::alive(pid) {
                let _ = write(&back.join("cgroup.procs"), &pid.to_string()).or_else(|_| {
                    write(&PathBuf::from(ROOT).join("cgroup.procs"), &pid.to_string())
                });
            }
        }
        // The kernel may take a moment to let go of an exiting process's charge.
        for _ in 0..20 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(format!("could not remove {}", self.dir.display()))
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.dir.exists() {
            let _ = self.restore();
        }
    }
}
