//! CPU time of processes, from `/proc/<pid>/stat` (Linux).

use std::{collections::HashMap, time::Duration};

/// Clock ticks per second of `/proc` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU time a process has used so far; `None` if it cannot
/// be read (not Linux, or the process is gone).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU time of this process.
pub fn own_cpu_time() -> Option<Duration> {
    cpu_time(std::process::id())
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) may contain spaces, so fields are counted after
/// its closing parenthesis.
pub fn parse_stat(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state): utime is field 14 → index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) as f64 / TICKS_PER_SECOND))
}

/// CPU time so far of every process whose command name is `name`, by pid
/// (e.g. all PostgreSQL backends, which come and go with connections).
pub fn by_command(name: &str) -> HashMap<u32, Duration> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == name))
        .filter_map(|pid| Some((pid, cpu_time(pid)?)))
        .collect()
}

/// CPU used between two [`by_command`] samples; processes that appeared in
/// between count from zero, those that ended are lost (a floor).
pub fn used_between(before: &HashMap<u32, Duration>, after: &HashMap<u32, Duration>) -> Duration {
    after.iter().map(|(pid, a)| a.saturating_sub(before.get(pid).copied().unwrap_or_default())).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_even_with_spaces_in_the_name() {
        let stat = "4242 (caravan (w 1)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat(stat), Some(Duration::from_secs(3)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn usage_between_samples_counts_new_processes_from_zero() {
        let before = HashMap::from([(1, Duration::from_secs(5)), (2, Duration::from_secs(1))]);
        let after = HashMap::from([(1, Duration::from_secs(7)), (3, Duration::from_millis(500))]);
        assert_eq!(used_between(&before, &after), Duration::from_millis(2500));
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        assert!(own_cpu_time().is_some());
    }
}
