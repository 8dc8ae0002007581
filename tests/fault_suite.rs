//! The fault suite: bad inputs, one row each, run against a real daemon
//! process (the `shutdown_scenarios` example).
//!
//! Each row gives the input (a config file's content or a special path, a
//! set of environment variables, arguments, a prepared PID path, a
//! resource limit), the exit code it must end with and the words its
//! output must contain: the key, the value and the source, or for a
//! process case the path and what is wrong with it. A row fails on a crash
//! (death by a signal), on a hang (no exit within [`HANG`]), on another
//! exit code, or on missing words.
//!
//! The count of rows is quoted in docs/operations.md ("Fault suite"); the
//! last test checks that the quote matches the table, so that neither can
//! change without the other.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A daemon that has not exited by then is hung.
const HANG: Duration = Duration::from_secs(20);

/// The example binary, from `target/<profile>/examples/`, or the one
/// `FAULT_SUITE_BINARY` names (to run the suite against another build,
/// such as one from before a fix).
fn scenario_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("FAULT_SUITE_BINARY") {
        return PathBuf::from(binary);
    }
    let test_exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let binary = profile_dir.join("examples").join("shutdown_scenarios");
    assert!(
        binary.exists(),
        "{} is missing; `cargo test` builds it",
        binary.display()
    );
    binary
}

/// Where the config comes from.
enum ConfigInput {
    /// No `--config`: defaults and the environment.
    None,
    /// A file with this text.
    Text(String),
    /// A file with these bytes.
    Bytes(Vec<u8>),
    /// This path as it is (a device, a missing file).
    Path(&'static str),
    /// A directory in the test's temp dir.
    Directory,
    /// A FIFO in the test's temp dir, which nobody writes.
    Fifo,
    /// A symlink to a file with this text: allowed.
    SymlinkTo(String),
}

/// What sits at the PID path (`--pid-file <tempdir>/daemon.pid`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum PidInput {
    /// No `--pid-file`.
    None,
    /// A symlink to `victim`, a file that must stay untouched.
    SymlinkToVictim,
    /// A symlink to a path that does not exist and must not be created.
    DanglingSymlink,
    /// A FIFO.
    Fifo,
    /// A directory.
    Directory,
    /// A second hard link of `victim`.
    HardLinkToVictim,
    /// A path under a directory that does not exist.
    MissingDirectory,
}

struct Case {
    name: &'static str,
    config: ConfigInput,
    env: Vec<(OsString, OsString)>,
    args: Vec<&'static str>,
    pid: PidInput,
    /// `ulimit` options applied before the daemon starts (`-v 600000`).
    ulimit: Option<&'static str>,
    code: i32,
    words: Vec<String>,
}

fn case(name: &'static str) -> Case {
    Case {
        name,
        config: ConfigInput::None,
        env: Vec::new(),
        args: Vec::new(),
        pid: PidInput::None,
        ulimit: None,
        code: 1,
        words: Vec::new(),
    }
}

impl Case {
    fn file(mut self, text: impl Into<String>) -> Self {
        self.config = ConfigInput::Text(text.into());
        self
    }
    fn config(mut self, input: ConfigInput) -> Self {
        self.config = input;
        self
    }
    fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    fn args(mut self, args: &[&'static str]) -> Self {
        self.args.extend_from_slice(args);
        self
    }
    fn pid(mut self, input: PidInput) -> Self {
        self.pid = input;
        self
    }
    fn ulimit(mut self, options: &'static str) -> Self {
        self.ulimit = Some(options);
        self
    }
    /// Starts, warns and stops by itself with code 0.
    fn runs_and_warns(mut self) -> Self {
        self.code = 0;
        self.args(&["--request-shutdown-after-ms", "50"])
    }
    fn says(mut self, words: &[&str]) -> Self {
        self.words.extend(words.iter().map(|w| (*w).to_owned()));
        self
    }
}

/// A file's key set to a value in its section.
fn key(section: &str, line: &str) -> String {
    if section.is_empty() {
        format!("{line}\n")
    } else {
        format!("[{section}]\n{line}\n")
    }
}

fn cases() -> Vec<Case> {
    let file = "daemon.toml line";
    let mut cases = vec![
        // The file: syntax and structure.
        case("syntax error")
            .file("name = \n")
            .says(&["not valid TOML", file]),
        case("unknown key with a suggestion")
            .file("nmae = \"x\"\n")
            .says(&["`nmae`", "unknown key", "name"]),
        case("unknown section with a suggestion")
            .file("[loging]\nlevel = \"info\"\n")
            .says(&["loging", "logging"]),
        case("key in the wrong section")
            .file("timeout_ms = 5000\n")
            .says(&["timeout_ms", "shutdown.timeout_ms"]),
        case("section that is not a table")
            .file("shutdown = 5\n")
            .says(&["`shutdown`", "expected a table"]),
        case("array of tables for a section")
            .file("[[logging]]\nlevel = \"info\"\n")
            .says(&["`logging`", "found an array"]),
        case("duplicate key")
            .file("name = \"a\"\nname = \"b\"\n")
            .says(&["duplicate key", "line 2"]),
        case("key and its alias both set")
            .file(key("shutdown", "timeout_ms = 1000\ngraceful = 1000"))
            .says(&["shutdown.graceful", "already sets"]),
        case("nested array bomb")
            .file(format!(
                "name = {}{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ))
            .says(&["not valid TOML", "recursion"]),
        case("nested inline-table bomb")
            .file(format!(
                "name = {}1{}\n",
                "{a=".repeat(50_000),
                "}".repeat(50_000)
            ))
            .says(&["not valid TOML", "recursion"]),
        case("an array as a value")
            .file(format!("name = [{}1]\n", "1,".repeat(400_000)))
            .says(&["`name`", "expected a string, found an array"]),
        case("an inline table as a value")
            .file("name = { a = 1 }\n")
            .says(&["`name`", "found a table"]),
        case("a datetime as a value")
            .file("name = 1979-05-27\n")
            .says(&["`name`", "found the datetime"]),
        case("file larger than the bound")
            .file(format!("# {}\n", "x".repeat(1024 * 1024)))
            .says(&["larger than 1048576 bytes", "daemon.toml"]),
        case("file that is not UTF-8")
            .config(ConfigInput::Bytes(b"name = \"\xff\xfe\"\n".to_vec()))
            .says(&["not valid UTF-8", file]),
        case("missing file")
            .config(ConfigInput::Path("/nonexistent/daemon.toml"))
            .says(&[
                "could not read config file /nonexistent/daemon.toml",
                "No such file",
            ]),
        case("a directory as the file")
            .config(ConfigInput::Directory)
            .says(&["could not read config file", "it is a directory"]),
        case("/dev/zero as the file")
            .config(ConfigInput::Path("/dev/zero"))
            .says(&["/dev/zero", "it is a device", "regular file"]),
        case("a FIFO as the file")
            .config(ConfigInput::Fifo)
            .says(&["it is a FIFO", "regular file"]),
        case("a symlink to a bad file")
            .config(ConfigInput::SymlinkTo("name = 5\n".into()))
            .says(&["`name` = 5", "expected a string"]),
        // The file: values.
        case("name empty")
            .file("name = \"\"\n")
            .says(&["`name`", "must not be empty"]),
        case("name blank")
            .file("name = \"   \"\n")
            .says(&["`name`", "must not be empty"]),
        case("name with a newline")
            .file("name = \"a\\nb\"\n")
            .says(&["`name`", "control characters"]),
        case("name too long")
            .file(format!("name = \"{}\"\n", "n".repeat(300)))
            .says(&["`name`", "300 bytes", "the most is 256"]),
        case("name a megabyte long")
            .file(format!("name = \"{}\"\n", "n".repeat(1_000_000)))
            .says(&["`name`", "bytes in all", "the most is 256"]),
        case("name not a string")
            .file("name = 5\n")
            .says(&["`name` = 5", "expected a string"]),
        case("pid_file empty")
            .file("pid_file = \"\"\n")
            .says(&["`pid_file`", "must not be empty"]),
        case("pid_file with a NUL byte")
            .file("pid_file = \"/tmp/a\\u0000b\"\n")
            .says(&["`pid_file`", "NUL byte"]),
        case("pid_file longer than PATH_MAX")
            .file(format!("pid_file = \"/{}\"\n", "p".repeat(5000)))
            .says(&["`pid_file`", "a path may have at most 4095"]),
        case("work_dir missing")
            .file("work_dir = \"/nonexistent/work\"\n")
            .says(&["working directory /nonexistent/work", "No such file"]),
        case("work_dir empty")
            .file("work_dir = \"\"\n")
            .says(&["`work_dir`", "must not be empty"]),
        case("hot_reload not a boolean")
            .file("hot_reload = \"yes\"\n")
            .says(&["`hot_reload`", "expected a boolean"]),
        case("logging.level unknown")
            .file(key("logging", "level = \"verbose\""))
            .says(&["`logging.level`", "\"verbose\"", "one of"]),
        case("logging.level a number")
            .file(key("logging", "level = 3"))
            .says(&["`logging.level`", "the integer 3"]),
        case("logging.json not a boolean")
            .file(key("logging", "json = \"yes\""))
            .says(&["`logging.json`", "expected a boolean"]),
        case("logging.file in a missing directory")
            .file(key("logging", "file = \"/nonexistent/dir/daemon.log\""))
            .says(&["`logging.file`", "/nonexistent/dir", "does not exist"]),
        case("logging.file is a directory")
            .file(key("logging", "file = \"/tmp\""))
            .says(&["`logging.file`", "could not open it for appending"]),
        case("logging.file empty")
            .file(key("logging", "file = \"\""))
            .says(&["`logging.file`", "must not be empty"]),
        case("logging.max_file_size zero")
            .file(key("logging", "max_file_size = 0"))
            .says(&["`logging.max_file_size`", "greater than 0"]),
        case("logging.max_file_size too large")
            .file(key("logging", "max_file_size = 2199023255552"))
            .says(&["`logging.max_file_size`", "at most 1099511627776"]),
        case("logging.max_files zero")
            .file(key("logging", "max_files = 0"))
            .says(&["`logging.max_files`", "at least 1"]),
        case("logging.max_files too many")
            .file(key("logging", "max_files = 100000"))
            .says(&["`logging.max_files`", "at most 10000"]),
        case("logging.max_files past u32")
            .file(key("logging", "max_files = 4294967296"))
            .says(&["`logging.max_files`", "does not fit in 32 bits"]),
        case("shutdown.timeout_ms zero")
            .file(key("shutdown", "timeout_ms = 0"))
            .says(&["`shutdown.timeout_ms`", "greater than 0", file]),
        case("shutdown.timeout_ms negative")
            .file(key("shutdown", "timeout_ms = -5"))
            .says(&["`shutdown.timeout_ms`", "must not be negative"]),
        case("shutdown.timeout_ms a string")
            .file(key("shutdown", "timeout_ms = \"10\""))
            .says(&[
                "`shutdown.timeout_ms`",
                "non-negative integer",
                "the string",
            ]),
        case("shutdown.timeout_ms a float")
            .file(key("shutdown", "timeout_ms = 1e3"))
            .says(&["`shutdown.timeout_ms`", "the float"]),
        case("shutdown.timeout_ms of 31 years")
            .file(key("shutdown", "timeout_ms = 977616000000"))
            .says(&["`shutdown.timeout_ms`", "at most 86400000 (24 hours)"]),
        case("shutdown.timeout_ms past 64 bits")
            .file(key("shutdown", "timeout_ms = 99999999999999999999"))
            .says(&["`shutdown.timeout_ms`", "too large"]),
        case("shutdown.force_timeout_ms past the bound")
            .file(key("shutdown", "force_timeout_ms = 86400001"))
            .says(&["`shutdown.force_timeout_ms`", "at most 86400000"]),
        case("shutdown.kill_timeout_ms past the bound")
            .file(key("shutdown", "kill_timeout_ms = 86400001"))
            .says(&["`shutdown.kill_timeout_ms`", "at most 86400000"]),
        case("force shorter than graceful")
            .file(key(
                "shutdown",
                "timeout_ms = 5000\nforce_timeout_ms = 1000",
            ))
            .says(&[
                "`shutdown.timeout_ms`",
                "shutdown.force_timeout_ms",
                "must not be longer",
            ]),
        case("kill shorter than force")
            .file(key(
                "shutdown",
                "timeout_ms = 1000\nforce_timeout_ms = 5000\nkill_timeout_ms = 2000",
            ))
            .says(&["`shutdown.force_timeout_ms`", "shutdown.kill_timeout_ms"]),
        case("performance.worker_threads too many")
            .file(key("performance", "worker_threads = 100000"))
            .says(&["`performance.worker_threads`", "at most 1024"]),
        case("performance.worker_threads negative")
            .file(key("performance", "worker_threads = -1"))
            .says(&["`performance.worker_threads`", "must not be negative"]),
        case("performance.thread_pinning a number")
            .file(key("performance", "thread_pinning = 1"))
            .says(&["`performance.thread_pinning`", "expected a boolean"]),
        case("performance.memory_pool_size of a terabyte")
            .file(key("performance", "memory_pool_size = 1000000000000"))
            .says(&["`performance.memory_pool_size`", "at most 1073741824"]),
        case("performance.memory_pool_size of i64::MAX")
            .file(key("performance", "memory_pool_size = 9223372036854775807"))
            .says(&["`performance.memory_pool_size`", "at most 1073741824"]),
        case("performance.lock_free a string")
            .file(key("performance", "lock_free = \"false\""))
            .says(&["`performance.lock_free`", "expected a boolean"]),
        case("monitoring.metrics_interval_ms zero")
            .file(key("monitoring", "metrics_interval_ms = 0"))
            .says(&["`monitoring.metrics_interval_ms`", "greater than 0"]),
        case("monitoring.metrics_interval_ms past the bound")
            .file(key("monitoring", "metrics_interval_ms = 86400001"))
            .says(&["`monitoring.metrics_interval_ms`", "at most 86400000"]),
        case("monitoring.health_check_interval_ms zero")
            .file(key("monitoring", "health_check_interval_ms = 0"))
            .says(&["`monitoring.health_check_interval_ms`", "greater than 0"]),
        case("monitoring.health_check_interval_ms past the bound")
            .file(key("monitoring", "health_check_interval_ms = 100000000"))
            .says(&["`monitoring.health_check_interval_ms`", "at most 86400000"]),
        // The environment.
        case("env: not a number")
            .env("DAEMON_SHUTDOWN_TIMEOUT_MS", "lots")
            .says(&[
                "DAEMON_SHUTDOWN_TIMEOUT_MS",
                "\"lots\"",
                "non-negative integer",
            ]),
        case("env: u64::MAX timeout")
            .env("DAEMON_SHUTDOWN_TIMEOUT_MS", "18446744073709551615")
            .says(&["DAEMON_SHUTDOWN_TIMEOUT_MS", "at most 86400000 (24 hours)"]),
        case("env: timeout past 64 bits")
            .env("DAEMON_SHUTDOWN_TIMEOUT_MS", "99999999999999999999999")
            .says(&["DAEMON_SHUTDOWN_TIMEOUT_MS", "too large"]),
        case("env: negative")
            .env("DAEMON_SHUTDOWN_TIMEOUT_MS", "-1")
            .says(&["DAEMON_SHUTDOWN_TIMEOUT_MS", "\"-1\""]),
        case("env: empty number")
            .env("DAEMON_SHUTDOWN_TIMEOUT_MS", "")
            .says(&["DAEMON_SHUTDOWN_TIMEOUT_MS", "non-negative integer"]),
        case("env: unknown variable with a suggestion")
            .env("DAEMON_SHUTDOWN_TIMEOUTMS", "5")
            .says(&["DAEMON_SHUTDOWN_TIMEOUTMS", "DAEMON_SHUTDOWN_TIMEOUT_MS"]),
        case("env: too many workers")
            .env("DAEMON_PERFORMANCE_WORKER_THREADS", "100000")
            .says(&["DAEMON_PERFORMANCE_WORKER_THREADS", "at most 1024"]),
        case("env: pool size in float notation")
            .env("DAEMON_PERFORMANCE_MEMORY_POOL_SIZE", "1e12")
            .says(&["DAEMON_PERFORMANCE_MEMORY_POOL_SIZE", "\"1e12\""]),
        case("env: pool of a terabyte")
            .env("DAEMON_PERFORMANCE_MEMORY_POOL_SIZE", "1000000000000")
            .says(&["DAEMON_PERFORMANCE_MEMORY_POOL_SIZE", "at most 1073741824"]),
        case("env: unknown level")
            .env("DAEMON_LOGGING_LEVEL", "loud")
            .says(&["DAEMON_LOGGING_LEVEL", "\"loud\"", "one of"]),
        case("env: not a boolean")
            .env("DAEMON_LOGGING_JSON", "maybe")
            .says(&["DAEMON_LOGGING_JSON", "\"maybe\"", "boolean"]),
        case("env: empty name")
            .env("DAEMON_NAME", "")
            .says(&["DAEMON_NAME", "must not be empty"]),
        case("env: name of 100 KB")
            .env("DAEMON_NAME", "n".repeat(100_000))
            .says(&["DAEMON_NAME", "the most is 256"]),
        case("env: empty pid_file")
            .env("DAEMON_PID_FILE", "")
            .says(&["DAEMON_PID_FILE", "must not be empty"]),
        case("env: value not UTF-8")
            .env("DAEMON_NAME", OsString::from_vec(b"da\xffmon".to_vec()))
            .says(&["DAEMON_NAME", "not valid UTF-8"]),
        case("env: name not UTF-8")
            .env(OsString::from_vec(b"DAEMON_\xff".to_vec()), "1")
            .says(&["DAEMON_", "name is not valid UTF-8", "must name one"]),
        case("env: a key and its alias")
            .env("DAEMON_SHUTDOWN_TIMEOUT_MS", "1000")
            .env("DAEMON_SHUTDOWN_GRACEFUL", "1000")
            .says(&["shutdown.timeout_ms", "already sets this key"]),
        case("env: force shorter than the derived graceful")
            .env("DAEMON_SHUTDOWN_FORCE_TIMEOUT_MS", "10")
            .says(&["DAEMON_SHUTDOWN_FORCE_TIMEOUT_MS", "must not be longer"]),
        case("env: zero interval")
            .env("DAEMON_MONITORING_METRICS_INTERVAL_MS", "0")
            .says(&["DAEMON_MONITORING_METRICS_INTERVAL_MS", "greater than 0"]),
        case("env: missing work_dir")
            .env("DAEMON_WORK_DIR", "/nonexistent/work")
            .says(&["working directory /nonexistent/work"]),
        case("env: log file in a missing directory")
            .env("DAEMON_LOGGING_FILE", "/nonexistent/daemon.log")
            .says(&["`logging.file`", "does not exist"]),
        // The PID file.
        case("pid file: a symlink to a victim")
            .pid(PidInput::SymlinkToVictim)
            .says(&["daemon.pid", "symbolic link", "does not follow"]),
        case("pid file: a dangling symlink")
            .pid(PidInput::DanglingSymlink)
            .says(&["daemon.pid", "symbolic link"]),
        case("pid file: a FIFO").pid(PidInput::Fifo).says(&[
            "daemon.pid",
            "it is a FIFO",
            "regular file",
        ]),
        case("pid file: a directory")
            .pid(PidInput::Directory)
            .says(&["daemon.pid", "directory"]),
        case("pid file: a hard link to a victim")
            .pid(PidInput::HardLinkToVictim)
            .says(&["daemon.pid", "2 hard links"]),
        case("pid file: in a missing directory")
            .pid(PidInput::MissingDirectory)
            .says(&["missing/daemon.pid", "No such file"]),
        // Resources the config asks for and the machine refuses.
        case("pool of 1 GiB under a 600 MB address-space limit")
            .env("DAEMON_PERFORMANCE_MEMORY_POOL_SIZE", "1073741824")
            .ulimit("-v 600000")
            .says(&[
                "performance.memory_pool_size",
                "could not allocate",
                "1073741824",
            ]),
        case("1024 workers under a 256-descriptor limit")
            .env("DAEMON_PERFORMANCE_WORKER_THREADS", "1024")
            .ulimit("-n 256")
            .says(&[
                "ran out of file descriptors",
                "1024 workers",
                "is 256",
                "performance.worker_threads",
            ]),
        // Keys that are accepted but do nothing yet: a warning that names them.
        // With the watcher built, the warning is that a config from the
        // environment alone has no file to watch.
        case("hot_reload switched on")
            .env("DAEMON_HOT_RELOAD", "true")
            .runs_and_warns()
            .says(&[if cfg!(feature = "config-watch") {
                "there is nothing to watch"
            } else {
                "hot_reload = true has no effect"
            }]),
        // The monitoring endpoint's address: not an address at all, and an
        // address of another host (which this one cannot listen on; without
        // the `metrics` feature, any address is an error naming the flag).
        case("monitoring.http_listen not an address")
            .env("DAEMON_MONITORING_HTTP_LISTEN", "localhost:9090")
            .says(&[
                "monitoring.http_listen",
                "DAEMON_MONITORING_HTTP_LISTEN",
                "not an IP address and port",
            ]),
        case("monitoring.http_listen on another host's address")
            .file(key("monitoring", "http_listen = \"192.0.2.1:9090\""))
            .says(&if cfg!(feature = "metrics") {
                [
                    "could not listen on monitoring.http_listen",
                    "192.0.2.1:9090",
                ]
            } else {
                ["monitoring.http_listen", "the `metrics` feature"]
            }),
    ];
    if cfg!(feature = "metrics") {
        // Recording and tracking work in this build; two more endpoint
        // addresses take their places, so the suite's size is the same.
        cases.push(
            case("monitoring.enable_metrics with the endpoint on another host's IPv6 address")
                .file("[monitoring]\nenable_metrics = true\nhttp_listen = \"[2001:db8::1]:9090\"\n")
                .says(&[
                    "could not listen on monitoring.http_listen",
                    "[2001:db8::1]:9090",
                ]),
        );
        cases.push(
            case("monitoring.track_resources with the endpoint on another host's address")
                .env("DAEMON_MONITORING_TRACK_RESOURCES", "yes")
                .env("DAEMON_MONITORING_HTTP_LISTEN", "192.0.2.7:9090")
                .says(&[
                    "could not listen on monitoring.http_listen",
                    "192.0.2.7:9090",
                ]),
        );
    } else {
        cases.push(
            case("monitoring.enable_metrics switched on")
                .file(key("monitoring", "enable_metrics = true"))
                .runs_and_warns()
                .says(&["monitoring.enable_metrics = true has no effect"]),
        );
        cases.push(
            case("monitoring.track_resources switched on")
                .env("DAEMON_MONITORING_TRACK_RESOURCES", "yes")
                .runs_and_warns()
                .says(&["monitoring.track_resources = true has no effect"]),
        );
    }
    for case in &cases {
        if case.words.is_empty() {
            panic!("case `{}` checks no words", case.name);
        }
    }
    cases
}

/// What one run showed.
struct Outcome {
    /// `None`: killed by a signal (a crash).
    code: Option<i32>,
    hung: bool,
    output: String,
    /// Files changed that must not have been.
    damage: Vec<String>,
}

fn run(case: &Case, dir: &Path) -> Outcome {
    let binary = scenario_binary();
    let mut command = match case.ulimit {
        None => Command::new(&binary),
        Some(options) => {
            let mut shell = Command::new("sh");
            shell
                .arg("-c")
                .arg(format!("ulimit {options} && exec \"$0\" \"$@\""))
                .arg(&binary);
            shell
        }
    };
    let config_path = dir.join("daemon.toml");
    match &case.config {
        ConfigInput::None => {}
        ConfigInput::Text(text) => std::fs::write(&config_path, text).unwrap(),
        ConfigInput::Bytes(bytes) => std::fs::write(&config_path, bytes).unwrap(),
        ConfigInput::Path(_) => {}
        ConfigInput::Directory => std::fs::create_dir(&config_path).unwrap(),
        ConfigInput::Fifo => make_fifo(&config_path),
        ConfigInput::SymlinkTo(text) => {
            let target = dir.join("target.toml");
            std::fs::write(&target, text).unwrap();
            std::os::unix::fs::symlink(&target, &config_path).unwrap();
        }
    }
    match &case.config {
        ConfigInput::None => {}
        ConfigInput::Path(path) => {
            command.args(["--config", path]);
        }
        _ => {
            command.arg("--config").arg(&config_path);
        }
    }
    let victim = dir.join("victim");
    std::fs::write(&victim, "victim's content\n").unwrap();
    let pid_path = dir.join("daemon.pid");
    match case.pid {
        PidInput::None => {}
        PidInput::SymlinkToVictim => std::os::unix::fs::symlink(&victim, &pid_path).unwrap(),
        PidInput::DanglingSymlink => {
            std::os::unix::fs::symlink(dir.join("created-by-daemon"), &pid_path).unwrap()
        }
        PidInput::Fifo => make_fifo(&pid_path),
        PidInput::Directory => std::fs::create_dir(&pid_path).unwrap(),
        PidInput::HardLinkToVictim => std::fs::hard_link(&victim, &pid_path).unwrap(),
        PidInput::MissingDirectory => {}
    }
    match case.pid {
        PidInput::None => {}
        PidInput::MissingDirectory => {
            command
                .arg("--pid-file")
                .arg(dir.join("missing").join("daemon.pid"));
        }
        _ => {
            command.arg("--pid-file").arg(&pid_path);
        }
    }
    command
        .args(&case.args)
        .env("DAEMON_LOGGING_COLOR", "false")
        .envs(case.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start the daemon");
    // Both pipes are drained on threads, so a chatty daemon never blocks.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let started = Instant::now();
    let (status, hung) = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break (Some(status), false);
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            break (child.wait().ok(), true);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = format!("{}{}", out.join().unwrap(), err.join().unwrap());

    // Whatever the PID path held, the daemon must not have written through
    // it, created a link's target, or removed what it did not create.
    let mut damage = Vec::new();
    if std::fs::read_to_string(&victim).ok().as_deref() != Some("victim's content\n") {
        damage.push("the victim file was changed".to_owned());
    }
    if dir.join("created-by-daemon").exists() {
        damage.push("the daemon created a dangling symlink's target".to_owned());
    }
    if case.pid != PidInput::None
        && case.pid != PidInput::MissingDirectory
        && std::fs::symlink_metadata(&pid_path).is_err()
    {
        damage.push("the daemon removed a PID path it did not create".to_owned());
    }
    Outcome {
        code: status.and_then(|s| s.code()),
        hung,
        output,
        damage,
    }
}

fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The line docs/operations.md must carry for `tried` rows.
fn docs_line(tried: usize) -> String {
    format!("{tried} bad inputs tried; {tried} clear errors or warnings; 0 crashes, 0 hangs")
}

#[test]
fn every_bad_input_gets_a_clear_error_and_no_crash_or_hang() {
    let cases = cases();
    let mut failures = Vec::new();
    let (mut crashes, mut hangs) = (0, 0);
    for case in &cases {
        let dir = tempfile::tempdir().unwrap();
        let outcome = run(case, dir.path());
        if outcome.hung {
            hangs += 1;
            failures.push(format!(
                "{}: hung, damage {:?}; output: {}",
                case.name, outcome.damage, outcome.output
            ));
            continue;
        }
        let Some(code) = outcome.code else {
            crashes += 1;
            failures.push(format!(
                "{}: killed by a signal, damage {:?}; output: {}",
                case.name, outcome.damage, outcome.output
            ));
            continue;
        };
        let missing: Vec<&String> = case
            .words
            .iter()
            .filter(|w| !outcome.output.contains(w.as_str()))
            .collect();
        if code != case.code || !missing.is_empty() || !outcome.damage.is_empty() {
            let shown: String = outcome.output.chars().take(600).collect();
            failures.push(format!(
                "{}: exit {code} (expected {}), missing {missing:?}, damage {:?}; output: {shown}",
                case.name, case.code, outcome.damage
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed ({crashes} crashes, {hangs} hangs):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_operations_guide_quotes_the_suite_size() {
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .expect("docs/operations.md");
    let line = docs_line(cases().len());
    assert!(
        guide.contains(&line),
        "docs/operations.md must say \"{line}\" (the fault suite's size changed)"
    );
}
