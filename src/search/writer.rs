//! The index writer's shape: its threads, how its segments merge, and their scheduling priorities.

use tantivy::indexer::{IndexWriterOptions, LogMergePolicy};
use tantivy::{IndexWriter, TantivyDocument};

use super::SearchIndex;

/// The indexer's scheduling priority, below ingest's, and that of tantivy's merges, below the indexer's.
pub(super) const INDEXER_NICE: i32 = 10;
const MERGE_NICE: i32 = 19;
/// Merges run at once. Two can already take both cores of a small machine after a large catch-up, but
/// only at the lowest priority.
const MERGE_THREADS: usize = 2;
/// Segments merged at once, where tantivy merges 8. Each commit writes a segment (four a second under a
/// steady load), and each merge rewrites every document in it: merging 8 at a time rewrote a document more
/// often than indexing it cost. With 24 they are rewritten about half as often, for a few more segments
/// for each search to look in.
const MERGE_SEGMENTS: usize = 24;

pub(super) fn open(
    index: &SearchIndex,
    threads: usize,
    memory: usize,
) -> tantivy::Result<IndexWriter<TantivyDocument>> {
    let options = IndexWriterOptions::builder()
        .num_worker_threads(threads)
        .memory_budget_per_thread(memory / threads)
        .num_merge_threads(MERGE_THREADS)
        .build();
    let writer = index.index.writer_with_options(options)?;
    let mut policy = LogMergePolicy::default();
    policy.set_min_num_segments(MERGE_SEGMENTS);
    writer.set_merge_policy(Box::new(policy));
    Ok(writer)
}

/// Merging is work that can wait: tantivy's merge threads run below the indexer, so while the segments of a
/// large catch-up merge, new deliveries still get the CPU to become searchable. tantivy names the threads;
/// they are found among this process's threads by name. A thread takes its name once it runs, which may
/// come after the writer is made, so the live indexer looks again after its first commits.
pub(super) struct MergeThreads {
    looks_left: u8,
}

/// Looks at the process's threads: when the writer is made and after each of its first commits.
const LOOKS: u8 = 4;

impl MergeThreads {
    /// For the live indexer, whose merges compete with ingest and with new deliveries.
    pub(super) fn lowered() -> Self {
        let mut threads = Self { looks_left: LOOKS };
        threads.after_commit();
        threads
    }

    /// For a rebuild from the command line, which has the machine to itself.
    pub(super) fn untouched() -> Self {
        Self { looks_left: 0 }
    }

    pub(super) fn after_commit(&mut self) {
        if self.looks_left == 0 {
            return;
        }
        self.looks_left -= 1;
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return };
        let mut lowered = 0;
        for task in tasks.flatten() {
            let merging =
                std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.starts_with("merge_thread_"));
            let tid = task.file_name().to_str().and_then(|t| t.parse().ok()).and_then(rustix::process::Pid::from_raw);
            if merging && let Some(tid) = tid {
                match rustix::process::setpriority_process(Some(tid), MERGE_NICE) {
                    Ok(()) => lowered += 1,
                    Err(e) => tracing::debug!(error = %e, "cannot lower a merge thread's priority"),
                }
            }
        }
        tracing::debug!(lowered, "merge threads at the lowest priority");
    }
}
