//! What a process and its descendants hold right now — memory and open file descriptors, from
//! /proc — for a soak that watches them for growth.

use serde::Serialize;

/// A process tree's current footprint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Footprint {
    /// Processes in the tree (the root and its live descendants).
    pub processes: usize,
    /// Resident memory, proportional set size summed over the tree (pages shared between its
    /// processes, such as PostgreSQL's shared buffers, count once), bytes. For a single process
    /// this is its resident memory less its share of libraries other processes map too.
    pub pss_bytes: u64,
    /// Of `pss_bytes`, shared-memory segments (`Pss_Shmem`: PostgreSQL's shared buffers), bytes.
    /// Such a segment's size is fixed when it is made; it is resident as its pages are first
    /// touched, so it fills up to that size and cannot grow beyond it.
    pub shmem_bytes: u64,
    /// Resident set size of the root process alone (VmRSS), bytes.
    pub root_rss_bytes: u64,
    /// Open file descriptors summed over the tree.
    pub open_fds: usize,
}

impl Footprint {
    /// PSS in MiB.
    pub fn pss_mib(&self) -> f64 {
        mib(self.pss_bytes)
    }

    /// PSS less shared-memory segments, MiB: the memory that can grow without bound.
    pub fn unsegmented_mib(&self) -> f64 {
        mib(self.pss_bytes.saturating_sub(self.shmem_bytes))
    }

    /// Shared-memory segments' PSS, MiB.
    pub fn shmem_mib(&self) -> f64 {
        mib(self.shmem_bytes)
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The footprint of `root` and its descendants; None once `root` has exited.
pub fn of_tree(root: u32) -> Option<Footprint> {
    let root_rss_bytes = kib_field(&read(root, "status")?, "VmRSS:")? * 1024;
    let tree = tree_of(root, &parents());
    let mut footprint = Footprint {
        processes: 0,
        pss_bytes: 0,
        shmem_bytes: 0,
        root_rss_bytes,
        open_fds: 0,
    };
    for pid in tree {
        // A descendant may exit between the listing and the reading: it then counts for nothing.
        let Some(rollup) = read(pid, "smaps_rollup") else {
            continue;
        };
        let Some(pss_kib) = kib_field(&rollup, "Pss:") else {
            continue;
        };
        footprint.processes += 1;
        footprint.pss_bytes += pss_kib * 1024;
        footprint.shmem_bytes += kib_field(&rollup, "Pss_Shmem:").unwrap_or(0) * 1024;
        footprint.open_fds += std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    }
    Some(footprint)
}

/// `root` and every process whose chain of parents leads to it.
fn tree_of(root: u32, parents: &[(u32, u32)]) -> Vec<u32> {
    let mut tree = vec![root];
    let mut next = 0;
    while let Some(&parent) = tree.get(next) {
        tree.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(pid, _)| *pid));
        next += 1;
    }
    tree
}

/// (pid, parent pid) of every live process.
fn parents() -> Vec<(u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_of(&read(pid, "stat")?)?)))
        .collect()
}

/// The parent pid in `/proc/<pid>/stat` text (field 4; the name in field 2 may hold spaces).
fn parent_of(stat: &str) -> Option<u32> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A `Name:   123 kB` line's number.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn read(pid: u32, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_the_root_and_everything_below_it() {
        let parents = [(2, 1), (3, 2), (4, 2), (5, 9), (6, 3)];
        let mut tree = tree_of(2, &parents);
        tree.sort_unstable();
        assert_eq!(tree, [2, 3, 4, 6]);
        assert_eq!(tree_of(5, &parents), [5]);
    }

    #[test]
    fn fields_are_read_where_proc_puts_them() {
        assert_eq!(parent_of("42 (a (b) c) S 7 42 42 0"), Some(7));
        assert_eq!(parent_of("garbage"), None);
        assert_eq!(kib_field("Rss:  10 kB\nPss:   8 kB\n", "Pss:"), Some(8));
        assert_eq!(kib_field("Rss:  10 kB\n", "Pss:"), None);
        let rollup = "Pss:   8 kB\nPss_Anon:  5 kB\nPss_Shmem:   3 kB\n";
        assert_eq!(kib_field(rollup, "Pss:"), Some(8));
        assert_eq!(kib_field(rollup, "Pss_Shmem:"), Some(3));
    }

    #[test]
    fn a_child_and_its_descriptors_count_in_its_parents_footprint() {
        let alone = of_tree(std::process::id()).expect("our own /proc entry");
        assert!(
            alone.pss_bytes > 0
                && alone.root_rss_bytes > 0
                && alone.open_fds > 0
                && alone.shmem_bytes <= alone.pss_bytes,
            "{alone:?}"
        );
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep starts");
        let tree = tree_of(std::process::id(), &parents());
        let with_child = of_tree(std::process::id()).expect("our own /proc entry");
        let _ = child.kill();
        let _ = child.wait();
        assert!(tree.contains(&child.id()), "{tree:?} lacks {}", child.id());
        assert!(with_child.processes >= 2, "{with_child:?}");
        assert_eq!(of_tree(child.id()), None, "an exited process has no footprint");
    }
}
