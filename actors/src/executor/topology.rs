//! The machine's NUMA nodes, their cores and their processing units, as far
//! as this process may use them.
//!
//! ```no_run
//! use proc_daemon_actors::executor::topology::Topology;
//!
//! let topology = Topology::detect();
//! for node in topology.nodes() {
//!     println!("node {}: CPUs {:?}", node.id, node.cpus().collect::<Vec<_>>());
//! }
//! ```
//!
//! # Sources
//!
//! - With the `hwloc` feature, the system hwloc library (through
//!   `hwlocality`) is asked first: its NUMA node and core objects and their
//!   CPU sets. If hwloc cannot load the topology, detection falls back to
//!   sysfs and says so in [`Topology::source`].
//! - `/sys/devices/system/node/node*/cpulist` gives each node's CPUs,
//!   `/sys/devices/system/cpu/online` which CPUs are online, and
//!   `cpu*/topology/thread_siblings_list` which CPUs are hyper-threads of one
//!   core.
//! - Where sysfs has no node directory (no NUMA support, or not Linux), the
//!   topology is one node holding every allowed CPU, one core each.
//!
//! Whatever the source, the result is intersected with the CPU set the
//! process may run on (`sched_getaffinity`, as `core_affinity` reports it),
//! so that a worker is never pinned outside a `taskset` or a cgroup cpuset.
//! Nodes and cores left with no allowed CPU are dropped.

use std::collections::BTreeSet;
use std::path::Path;

/// One logical CPU (a processing unit, as the kernel numbers it).
pub type Cpu = usize;

/// A physical core and its processing units (hyper-threads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Core {
    /// The processing units of this core, ascending.
    pub cpus: Vec<Cpu>,
}

/// A NUMA node and its cores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaNode {
    /// The kernel's node number.
    pub id: usize,
    /// The node's cores, ordered by their first CPU.
    pub cores: Vec<Core>,
}

impl NumaNode {
    /// Every processing unit of the node, core by core.
    pub fn cpus(&self) -> impl Iterator<Item = Cpu> + '_ {
        self.cores.iter().flat_map(|core| core.cpus.iter().copied())
    }
}

/// Where a [`Topology`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopologySource {
    /// The hwloc library (`hwloc` feature).
    Hwloc,
    /// `/sys/devices/system/node`.
    Sysfs,
    /// No NUMA information: one node with every allowed CPU.
    SingleNode,
}

/// The NUMA nodes this process may run on. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    nodes: Vec<NumaNode>,
    source: TopologySource,
}

/// hwloc could not provide a topology (`hwloc` feature).
#[cfg(feature = "hwloc")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hwloc topology: {reason}")]
pub struct HwlocError {
    reason: String,
}

/// A CPU list in the kernel's format could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a CPU list (such as `0-3,8,10-11`): {text:?}")]
pub struct CpuListError {
    /// The text that did not parse.
    pub text: String,
}

/// Parses the kernel's CPU-list format: `0-3,8,10-11`, possibly empty.
pub fn parse_cpu_list(text: &str) -> Result<BTreeSet<Cpu>, CpuListError> {
    let error = || CpuListError {
        text: text.to_owned(),
    };
    let mut cpus = BTreeSet::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => {
                let first: Cpu = first.trim().parse().map_err(|_| error())?;
                let last: Cpu = last.trim().parse().map_err(|_| error())?;
                if first > last {
                    return Err(error());
                }
                cpus.extend(first..=last);
            }
            None => {
                cpus.insert(part.trim().parse().map_err(|_| error())?);
            }
        }
    }
    Ok(cpus)
}

impl Topology {
    /// The topology of this machine, restricted to the CPUs this thread may
    /// run on.
    pub fn detect() -> Topology {
        let allowed = allowed_cpus();
        #[cfg(feature = "hwloc")]
        match Topology::from_hwloc(&allowed) {
            Ok(topology) => return topology,
            Err(error) => {
                tracing::warn!(%error, "hwloc could not read the topology; falling back to sysfs")
            }
        }
        Topology::from_sysfs(Path::new("/sys/devices/system"), &allowed)
            .unwrap_or_else(|| Topology::single_node(&allowed))
    }

    /// Asks the hwloc library for the NUMA nodes and cores, keeping the CPUs
    /// in `allowed`. Nodes with no allowed CPU are dropped; a processing
    /// unit that hwloc places under no core counts as a core of its own.
    #[cfg(feature = "hwloc")]
    pub fn from_hwloc(allowed: &BTreeSet<Cpu>) -> Result<Topology, HwlocError> {
        use hwlocality::object::types::ObjectType;

        let hwloc = hwlocality::Topology::new().map_err(|error| HwlocError {
            reason: error.to_string(),
        })?;
        let cpus_of = |object: &hwlocality::object::TopologyObject| -> BTreeSet<Cpu> {
            object
                .cpuset()
                .map(|set| {
                    set.iter_set()
                        .map(usize::from)
                        .filter(|cpu| allowed.contains(cpu))
                        .collect()
                })
                .unwrap_or_default()
        };
        let cores: Vec<BTreeSet<Cpu>> = hwloc
            .objects_with_type(ObjectType::Core)
            .map(cpus_of)
            .filter(|cpus| !cpus.is_empty())
            .collect();
        let mut nodes = Vec::new();
        for node in hwloc.objects_with_type(ObjectType::NUMANode) {
            let Some(id) = node.os_index() else {
                continue;
            };
            let node_cpus = cpus_of(node);
            if node_cpus.is_empty() {
                continue;
            }
            let mut node_cores: Vec<Core> = cores
                .iter()
                .filter(|core| {
                    core.iter()
                        .next()
                        .is_some_and(|first| node_cpus.contains(first))
                })
                .map(|core| Core {
                    cpus: core
                        .iter()
                        .copied()
                        .filter(|cpu| node_cpus.contains(cpu))
                        .collect(),
                })
                .collect();
            let in_a_core: BTreeSet<Cpu> = node_cores
                .iter()
                .flat_map(|core| core.cpus.iter().copied())
                .collect();
            node_cores.extend(
                node_cpus
                    .difference(&in_a_core)
                    .map(|&cpu| Core { cpus: vec![cpu] }),
            );
            node_cores.sort_by_key(|core| core.cpus[0]);
            nodes.push(NumaNode {
                id,
                cores: node_cores,
            });
        }
        if nodes.is_empty() {
            return Err(HwlocError {
                reason: "hwloc reported no NUMA node with an allowed CPU".to_owned(),
            });
        }
        nodes.sort_by_key(|node| node.id);
        Ok(Topology {
            nodes,
            source: TopologySource::Hwloc,
        })
    }

    /// Reads a sysfs tree rooted at `root` (normally `/sys/devices/system`)
    /// and keeps the CPUs in `allowed`. `None` when the tree has no node
    /// directory or no allowed CPU in any node.
    pub fn from_sysfs(root: &Path, allowed: &BTreeSet<Cpu>) -> Option<Topology> {
        let online = std::fs::read_to_string(root.join("cpu/online"))
            .ok()
            .and_then(|text| parse_cpu_list(&text).ok());
        let mut nodes = Vec::new();
        for entry in std::fs::read_dir(root.join("node")).ok()?.flatten() {
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_prefix("node"))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(entry.path().join("cpulist")) else {
                continue;
            };
            let Ok(listed) = parse_cpu_list(&text) else {
                continue;
            };
            let cpus: BTreeSet<Cpu> = listed
                .into_iter()
                .filter(|cpu| allowed.contains(cpu))
                .filter(|cpu| online.as_ref().is_none_or(|online| online.contains(cpu)))
                .collect();
            if cpus.is_empty() {
                continue;
            }
            nodes.push(NumaNode {
                id,
                cores: group_into_cores(root, &cpus),
            });
        }
        if nodes.is_empty() {
            return None;
        }
        nodes.sort_by_key(|node| node.id);
        Some(Topology {
            nodes,
            source: TopologySource::Sysfs,
        })
    }

    /// One node holding every CPU of `allowed`, one core each.
    pub fn single_node(allowed: &BTreeSet<Cpu>) -> Topology {
        Topology {
            nodes: vec![NumaNode {
                id: 0,
                cores: allowed
                    .iter()
                    .map(|&cpu| Core { cpus: vec![cpu] })
                    .collect(),
            }],
            source: TopologySource::SingleNode,
        }
    }

    /// The nodes, by ascending id.
    pub fn nodes(&self) -> &[NumaNode] {
        &self.nodes
    }

    /// Where this topology came from.
    pub fn source(&self) -> TopologySource {
        self.source
    }

    /// Every allowed CPU in NUMA order: node by node, core by core, so that
    /// consecutive entries share a node (and, with hyper-threads, a core
    /// comes before the next core's threads).
    pub fn cpus_in_numa_order(&self) -> Vec<Cpu> {
        self.nodes.iter().flat_map(NumaNode::cpus).collect()
    }

    /// The order in which the executor hands CPUs to workers: node by node,
    /// and inside a node the first hardware thread of every core before
    /// any core's second. Consecutive workers therefore share a node, and
    /// fewer workers than CPUs land on distinct physical cores before any
    /// two share one.
    pub fn cpus_for_workers(&self) -> Vec<Cpu> {
        let mut order = Vec::new();
        for node in &self.nodes {
            let deepest = node
                .cores
                .iter()
                .map(|core| core.cpus.len())
                .max()
                .unwrap_or(0);
            for thread in 0..deepest {
                order.extend(node.cores.iter().filter_map(|core| core.cpus.get(thread)));
            }
        }
        order
    }

    /// The node that holds `cpu`, if it is allowed.
    pub fn node_of(&self, cpu: Cpu) -> Option<usize> {
        self.nodes
            .iter()
            .find(|node| node.cpus().any(|c| c == cpu))
            .map(|node| node.id)
    }
}

/// Groups `cpus` into cores by their `thread_siblings_list`; a CPU without
/// that file is a core of its own.
fn group_into_cores(root: &Path, cpus: &BTreeSet<Cpu>) -> Vec<Core> {
    let mut placed = BTreeSet::new();
    let mut cores = Vec::new();
    for &cpu in cpus {
        if placed.contains(&cpu) {
            continue;
        }
        let siblings = std::fs::read_to_string(
            root.join(format!("cpu/cpu{cpu}/topology/thread_siblings_list")),
        )
        .ok()
        .and_then(|text| parse_cpu_list(&text).ok())
        .unwrap_or_default();
        let mut core: Vec<Cpu> = siblings
            .into_iter()
            .filter(|sibling| cpus.contains(sibling) && !placed.contains(sibling))
            .collect();
        if !core.contains(&cpu) {
            core.push(cpu);
            core.sort_unstable();
        }
        placed.extend(core.iter().copied());
        cores.push(Core { cpus: core });
    }
    cores
}

/// The CPUs the calling thread may run on. Falls back to `0..n` with `n`
/// from `available_parallelism` where the affinity cannot be read.
pub fn allowed_cpus() -> BTreeSet<Cpu> {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => ids.into_iter().map(|id| id.id).collect(),
        _ => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a fixture sysfs tree: `nodes` maps node ids to cpulists,
    /// `siblings` CPUs to their thread_siblings_list.
    fn fixture(
        online: &str,
        nodes: &[(usize, &str)],
        siblings: &[(Cpu, &str)],
    ) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("cpu")).unwrap();
        std::fs::write(root.join("cpu/online"), format!("{online}\n")).unwrap();
        for (id, list) in nodes {
            let node = root.join(format!("node/node{id}"));
            std::fs::create_dir_all(&node).unwrap();
            std::fs::write(node.join("cpulist"), format!("{list}\n")).unwrap();
        }
        // Files that are not node directories are ignored.
        std::fs::write(root.join("node/online"), "0-1\n").unwrap();
        for (cpu, list) in siblings {
            let dir = root.join(format!("cpu/cpu{cpu}/topology"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("thread_siblings_list"), format!("{list}\n")).unwrap();
        }
        dir
    }

    fn all(n: usize) -> BTreeSet<Cpu> {
        (0..n).collect()
    }

    #[test]
    fn parses_ranges_and_gaps() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n").unwrap(),
            [0, 1, 2, 3, 8, 10, 11].into_iter().collect()
        );
        assert_eq!(parse_cpu_list("").unwrap(), BTreeSet::new());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a-b").is_err());
    }

    #[test]
    fn two_nodes_of_four_cpus() {
        let tree = fixture("0-7", &[(0, "0-3"), (1, "4-7")], &[]);
        let topology = Topology::from_sysfs(tree.path(), &all(8)).unwrap();
        assert_eq!(topology.source(), TopologySource::Sysfs);
        assert_eq!(topology.nodes().len(), 2);
        assert_eq!(
            topology.nodes()[0].cpus().collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        assert_eq!(
            topology.nodes()[1].cpus().collect::<Vec<_>>(),
            vec![4, 5, 6, 7]
        );
        assert_eq!(topology.cpus_in_numa_order(), (0..8).collect::<Vec<_>>());
        assert_eq!(topology.node_of(5), Some(1));
    }

    #[test]
    fn interleaved_nodes_are_walked_in_numa_order() {
        let tree = fixture("0-7", &[(0, "0,2,4,6"), (1, "1,3,5,7")], &[]);
        let topology = Topology::from_sysfs(tree.path(), &all(8)).unwrap();
        assert_eq!(topology.cpus_in_numa_order(), vec![0, 2, 4, 6, 1, 3, 5, 7]);
    }

    #[test]
    fn offline_cpus_are_left_out() {
        let tree = fixture("0-2,4-7", &[(0, "0-3"), (1, "4-7")], &[]);
        let topology = Topology::from_sysfs(tree.path(), &all(8)).unwrap();
        assert_eq!(
            topology.nodes()[0].cpus().collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn ranges_with_gaps() {
        let tree = fixture("0-15", &[(0, "0-1,8-9"), (1, "2-3,10-11")], &[]);
        let topology = Topology::from_sysfs(tree.path(), &all(16)).unwrap();
        assert_eq!(
            topology.nodes()[0].cpus().collect::<Vec<_>>(),
            vec![0, 1, 8, 9]
        );
        assert_eq!(
            topology.nodes()[1].cpus().collect::<Vec<_>>(),
            vec![2, 3, 10, 11]
        );
    }

    #[test]
    fn a_restricted_affinity_mask_is_honoured() {
        let tree = fixture("0-7", &[(0, "0-3"), (1, "4-7")], &[]);
        let allowed: BTreeSet<Cpu> = [1, 2].into_iter().collect();
        let topology = Topology::from_sysfs(tree.path(), &allowed).unwrap();
        // Node 1 has no allowed CPU and is dropped.
        assert_eq!(topology.nodes().len(), 1);
        assert_eq!(topology.cpus_in_numa_order(), vec![1, 2]);
    }

    #[test]
    fn hyper_threads_are_grouped_into_cores() {
        let tree = fixture(
            "0-3",
            &[(0, "0-3")],
            &[(0, "0,2"), (1, "1,3"), (2, "0,2"), (3, "1,3")],
        );
        let topology = Topology::from_sysfs(tree.path(), &all(4)).unwrap();
        let cores: Vec<Vec<Cpu>> = topology.nodes()[0]
            .cores
            .iter()
            .map(|c| c.cpus.clone())
            .collect();
        assert_eq!(cores, vec![vec![0, 2], vec![1, 3]]);
        // Workers get one thread of each core before any core's second.
        assert_eq!(topology.cpus_for_workers(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn workers_fill_physical_cores_node_by_node() {
        let tree = fixture(
            "0-7",
            &[(0, "0-1,4-5"), (1, "2-3,6-7")],
            &[
                (0, "0,4"),
                (4, "0,4"),
                (1, "1,5"),
                (5, "1,5"),
                (2, "2,6"),
                (6, "2,6"),
                (3, "3,7"),
                (7, "3,7"),
            ],
        );
        let topology = Topology::from_sysfs(tree.path(), &all(8)).unwrap();
        assert_eq!(topology.cpus_in_numa_order(), vec![0, 4, 1, 5, 2, 6, 3, 7]);
        assert_eq!(topology.cpus_for_workers(), vec![0, 1, 4, 5, 2, 3, 6, 7]);
    }

    #[test]
    fn no_node_directory_means_no_sysfs_topology() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Topology::from_sysfs(dir.path(), &all(4)), None);
        let single = Topology::single_node(&all(3));
        assert_eq!(single.source(), TopologySource::SingleNode);
        assert_eq!(single.cpus_in_numa_order(), vec![0, 1, 2]);
    }

    #[cfg(feature = "hwloc")]
    #[test]
    fn hwloc_and_sysfs_agree_on_this_machine() {
        let allowed = allowed_cpus();
        let hwloc = Topology::from_hwloc(&allowed).expect("hwloc reads this machine");
        assert_eq!(hwloc.source(), TopologySource::Hwloc);
        let sysfs = Topology::from_sysfs(Path::new("/sys/devices/system"), &allowed)
            .unwrap_or_else(|| Topology::single_node(&allowed));
        // Same nodes, same cores, same CPUs; only the source differs.
        assert_eq!(
            hwloc.nodes(),
            sysfs.nodes(),
            "hwloc {hwloc:?}\nsysfs {sysfs:?}"
        );
        assert_eq!(Topology::detect().source(), TopologySource::Hwloc);
    }

    #[test]
    fn this_machine_is_detected_within_its_affinity() {
        let allowed = allowed_cpus();
        let topology = Topology::detect();
        let cpus = topology.cpus_in_numa_order();
        assert!(!cpus.is_empty());
        assert!(
            cpus.iter().all(|cpu| allowed.contains(cpu)),
            "{cpus:?} outside {allowed:?}"
        );
        assert_eq!(cpus.len(), allowed.len());
    }
}
