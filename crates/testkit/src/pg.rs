//! A private PostgreSQL for tests, started from the system's binaries (`initdb`, `postgres`,
//! `createdb`): one cluster per test process in a temporary directory on a free port, and a
//! fresh database per test. Nothing is shared with a PostgreSQL the machine may already run.
//!
//! The server lives as long as the test process: it is started under a small shell that waits
//! on a pipe from this process and stops the server (and deletes its files) when the pipe
//! closes, which happens however the process ends. PostgreSQL refuses to run as root, so as
//! root the cluster runs as the `postgres` user (Debian's package creates it).
//!
//! `BERTH_TEST_DATABASE=postgres` makes [`test_database_url`] hand out PostgreSQL databases,
//! which is how the same suites run on both databases.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The database the suites run on, from `BERTH_TEST_DATABASE` (`sqlite`, the default, or
/// `postgres`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestDatabase {
    Sqlite,
    Postgres,
}

impl TestDatabase {
    pub fn from_env() -> TestDatabase {
        match std::env::var("BERTH_TEST_DATABASE").unwrap_or_default().as_str() {
            "postgres" | "postgresql" | "pg" => TestDatabase::Postgres,
            "" | "sqlite" => TestDatabase::Sqlite,
            other => panic!("BERTH_TEST_DATABASE={other:?}: use sqlite or postgres"),
        }
    }
}

/// A database URL for one test: a new SQLite file under `dir`, or a new, empty database in
/// this process's private PostgreSQL cluster.
pub fn test_database_url(dir: &Path) -> String {
    match TestDatabase::from_env() {
        TestDatabase::Sqlite => format!("sqlite://{}", dir.join("berth.db").display()),
        TestDatabase::Postgres => PgCluster::shared().create_database(),
    }
}

pub struct PgCluster {
    port: u16,
    socket_dir: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    as_postgres_user: bool,
    /// The server's options, to start it again after [`PgCluster::stop_server`].
    options: String,
    /// Whether this cluster is a test's own (stopped and removed when dropped).
    private: bool,
    next_db: AtomicU32,
    /// Closing this pipe stops the server; it is held for the life of the process.
    _stop: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

static SHARED: OnceLock<PgCluster> = OnceLock::new();

impl PgCluster {
    /// The process's cluster, started on first use.
    pub fn shared() -> &'static PgCluster {
        SHARED.get_or_init(|| PgCluster::start(false))
    }

    /// A cluster of the calling test's own, which it may stop and start again (a database
    /// outage) without disturbing the tests that share [`PgCluster::shared`]. Stopped and
    /// removed when dropped.
    pub fn private() -> PgCluster {
        PgCluster::start(true)
    }

    /// Stops the server as an operator's `pg_ctl stop -m fast` does: sessions are ended and
    /// new connections refused until [`PgCluster::start_server`].
    pub fn stop_server(&self) {
        let out = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"]).output().expect("run pg_ctl stop");
        assert!(out.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts the server again after [`PgCluster::stop_server`] and waits until it answers.
    pub fn start_server(&self) {
        let log = self.data.parent().map(|b| b.join("restarted.log")).unwrap_or_default();
        let out = self
            .pg_ctl(&["start", "-w", "-t", "60", "-o", &self.options])
            .arg("-l")
            .arg(&log)
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(&self.data).args(args).stdin(Stdio::null());
        cmd
    }

    /// A URL any number of connections (and several Berth instances) can share.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://berth@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a new empty database and returns its URL.
    pub fn create_database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("berth_test_{}_{n}", std::process::id());
        let out = self
            .command("createdb")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "berth", &name])
            .output()
            .expect("run createdb");
        assert!(out.status.success(), "createdb {name} failed: {}", String::from_utf8_lossy(&out.stderr));
        self.url(&name)
    }

    /// The CA that signed the server's certificate (for `sslrootcert=`).
    pub fn ca_file(&self) -> PathBuf {
        self.data.parent().map(|b| b.join("tls").join("ca.pem")).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The cluster's data directory (`base/`, `global/`, `pg_wal/`, …), e.g. to search its files.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Runs one SQL statement with `psql` as the superuser in `database`; returns its output
    /// (tuples only, unaligned).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let own = self.bin.join("psql");
        let mut cmd = if own.exists() { self.command("psql") } else { command_as(Path::new("psql"), self.as_postgres_user) };
        let out = cmd
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "berth", "-d", database, "-tAX", "-c", sql])
            .output()
            .expect("run psql");
        assert!(out.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn command(&self, program: &str) -> Command {
        command_as(&self.bin.join(program), self.as_postgres_user)
    }

    fn start(private: bool) -> PgCluster {
        let bin = find_bin_dir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL's server binaries (initdb, postgres) were not found: install Debian's `postgresql` \
                 package (scripts/test does) or set BERTH_PG_BIN to their directory"
            )
        });
        let as_postgres_user = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        let base = tempfile::Builder::new().prefix("berth-pg-").tempdir().expect("temp dir").keep();
        let data = base.join("data");
        let socket_dir = base.join("sock");
        std::fs::create_dir_all(&socket_dir).expect("socket dir");
        // The server also speaks TLS, with a certificate for 127.0.0.1 from a private CA, so
        // `sslmode=verify-full` can be tested end to end.
        let tls = base.join("tls");
        std::fs::create_dir_all(&tls).expect("tls dir");
        crate::make_certs(&tls, crate::LeafCert::Valid);
        // PostgreSQL refuses a key that others may read.
        std::fs::set_permissions(tls.join("leaf.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("key mode");
        if as_postgres_user {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&base)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot hand {} to the postgres user", base.display());
        }
        let out = command_as(&bin.join("initdb"), as_postgres_user)
            .args(["-D"])
            .arg(&data)
            .args(["-U", "berth", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));

        let port = free_port();
        // `BERTH_TEST_PG_OPTIONS` adds server options for a profiling run, e.g.
        // `-c shared_preload_libraries=pg_stat_statements`; nothing sets it by default.
        let extra = std::env::var("BERTH_TEST_PG_OPTIONS").unwrap_or_default();
        let options = format!(
            "-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 \
             -c shared_buffers=64MB -c ssl=on -c ssl_cert_file={tls}/leaf.pem -c ssl_key_file={tls}/leaf.key {extra}",
            sock = socket_dir.display(),
            tls = tls.display(),
        );
        // The shell starts the server, then waits for this process's pipe to close; then it
        // stops the server quickly and removes the cluster's files.
        let script = format!(
            "{postgres} -D {data} {options} >{base}/server.log 2>&1 & pid=$!; \
             cat >/dev/null; kill -INT $pid; wait $pid; rm -rf {base}",
            postgres = bin.join("postgres").display(),
            data = data.display(),
            base = base.display(),
        );
        let mut child = command_as(Path::new("sh"), as_postgres_user)
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let stop = child.stdin.take().expect("the pipe to the server's shell");
        let cluster = PgCluster {
            port,
            socket_dir,
            data,
            bin,
            as_postgres_user,
            options,
            private,
            next_db: AtomicU32::new(0),
            _stop: Mutex::new(stop),
            _child: Mutex::new(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = cluster
                .command("pg_isready")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "berth", "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(base.join("server.log")).unwrap_or_default();
                panic!("PostgreSQL did not start within 60 s: {log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }
}

impl Drop for PgCluster {
    /// A private cluster may run a server started again by `pg_ctl`, which the shell that
    /// removes the files does not know: stop it first. (The shared one lives until exit.)
    fn drop(&mut self) {
        if self.private {
            let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

fn command_as(program: &Path, as_postgres_user: bool) -> Command {
    if as_postgres_user {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// `BERTH_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`, else `initdb` on PATH.
fn find_bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("BERTH_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, p)| p.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, p)) = versions.pop() {
        return Some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find(|p| p.join("initdb").exists() && p.join("postgres").exists())
    })
}
