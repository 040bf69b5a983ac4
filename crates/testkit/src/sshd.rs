//! A private OpenSSH `sshd` serving Git over SSH, for tests: its own configuration and host keys
//! made per server with `ssh-keygen`, a free port on 127.0.0.1, keys authorised one by one with
//! what each may do, and `git-upload-pack` as the only command (every authorised key carries a
//! forced command that refuses anything else and hands the rest to `git-shell`).
//!
//! It runs as the current user (`UsePAM no`, `StrictModes no`, `AuthorizedKeysFile` in its own
//! directory), never touches the system's sshd or its configuration, and logs at `VERBOSE` so a
//! test can read what authenticated. `AcceptEnv GIT_PROTOCOL` is set only when asked, which is
//! how one server speaks protocol v2 and another only v0.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `openssh-server` puts the daemon; sshd wants an absolute path.
pub const SSHD: &str = "/usr/sbin/sshd";

/// What a key may do on the test server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshAccess {
    /// `git-upload-pack` on any repository.
    All,
    /// Only the repository at this absolute path; anything else gets
    /// `ERROR: access denied or repository not exported: '<path>'` on standard error.
    Only(PathBuf),
    /// Accepts the key and then never answers.
    Stall,
    /// Answers with a valid v0 advertisement that never ends (tags, forever).
    Endless,
}

pub struct SshServer {
    pub port: u16,
    /// The account keys log in as (the current user).
    pub user: String,
    dir: tempfile::TempDir,
    child: Child,
    keys: Vec<String>,
}

impl SshServer {
    /// Starts a server; `accept_git_protocol` adds `AcceptEnv GIT_PROTOCOL` (protocol v2).
    pub fn start(accept_git_protocol: bool) -> SshServer {
        assert!(Path::new(SSHD).exists(), "{SSHD} is missing: install Debian's openssh-server");
        let dir = tempfile::Builder::new().prefix("berth-sshd-").tempdir().expect("temporary directory for sshd");
        let d = dir.path();
        for t in ["ed25519", "ecdsa", "rsa"] {
            keygen(t, &d.join(format!("host_{t}")), "");
        }
        let gate = d.join("gate.sh");
        std::fs::write(&gate, GATE).expect("write gate.sh");
        set_mode(&gate, 0o755);
        std::fs::write(d.join("authorized_keys"), "").expect("write authorized_keys");
        let user = current_user();
        let port = free_port();
        let mut config = format!(
            "Port {port}\nListenAddress 127.0.0.1\n\
             HostKey {d}/host_ed25519\nHostKey {d}/host_ecdsa\nHostKey {d}/host_rsa\n\
             PidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nAllowUsers {user}\n\
             PrintMotd no\nLogLevel VERBOSE\nMaxStartups 100\nMaxSessions 100\n",
            d = d.display()
        );
        if accept_git_protocol {
            config.push_str("AcceptEnv GIT_PROTOCOL\n");
        }
        std::fs::write(d.join("sshd_config"), config).expect("write sshd_config");
        if is_root() {
            // sshd started by root separates privileges and needs this directory, which the
            // package creates only when its own service starts.
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-E")
            .arg(d.join("sshd.log"))
            .arg("-f")
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
        let mut server = SshServer { port, user, dir, child, keys: Vec::new() };
        server.wait_listening();
        server
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            // The log, not a probe connection: a test may count the connections sshd saw.
            if self.log().contains("Server listening on") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited with {status}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sshd did not listen on 127.0.0.1:{} within 10 s: {}", self.port, self.log());
    }

    /// The directory of this server's files (a test may put repositories there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The host's public keys as OpenSSH lines (`ssh-ed25519 AAAA…`), ed25519, ECDSA, RSA.
    pub fn host_keys(&self) -> Vec<String> {
        ["ed25519", "ecdsa", "rsa"]
            .iter()
            .map(|t| {
                let line = std::fs::read_to_string(self.dir().join(format!("host_{t}.pub"))).expect("host key");
                line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
            })
            .collect()
    }

    /// `[127.0.0.1]:port`, as known_hosts names the endpoint.
    pub fn host_label(&self) -> String {
        format!("[127.0.0.1]:{}", self.port)
    }

    /// `ssh://<user>@127.0.0.1:<port><path>` for a repository at the absolute `path`.
    pub fn url(&self, path: &Path) -> String {
        format!("ssh://{}@127.0.0.1:{}{}", self.user, self.port, path.display())
    }

    /// Authorises a public key (OpenSSH line) with what it may do. Takes effect at once: sshd
    /// reads the file on every login.
    pub fn authorize(&mut self, public_line: &str, access: SshAccess) {
        let gate = self.dir().join("gate.sh");
        let mode = match access {
            SshAccess::All => "all".to_owned(),
            SshAccess::Only(p) => format!("only:{}", p.display()),
            SshAccess::Stall => "stall".to_owned(),
            SshAccess::Endless => "endless".to_owned(),
        };
        self.keys.push(format!("command=\"{} {mode}\",restrict {}", gate.display(), public_line.trim()));
        let mut f = std::fs::File::create(self.dir().join("authorized_keys")).expect("rewrite authorized_keys");
        for k in &self.keys {
            writeln!(f, "{k}").expect("write authorized_keys");
        }
    }

    /// sshd's log so far (`LogLevel VERBOSE`: accepted keys, forced commands, refusals).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("sshd.log")).unwrap_or_default()
    }

    /// How many logins were accepted so far.
    pub fn accepted_logins(&self) -> usize {
        self.log().matches("Accepted publickey for").count()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The forced command of every authorised key: only `git-upload-pack`, then what the key's mode
/// allows. Its single argument is the mode.
const GATE: &str = r#"#!/bin/sh
mode="$1"
case "$SSH_ORIGINAL_COMMAND" in
  "git-upload-pack '"*) ;;
  *) echo "ERROR: only git-upload-pack may run here" >&2; exit 1 ;;
esac
path="${SSH_ORIGINAL_COMMAND#git-upload-pack }"
case "$mode" in
  stall) exec sleep 120 ;;
  endless)
    printf '0032%s HEAD\n' 1111111111111111111111111111111111111111
    exec yes '003f1111111111111111111111111111111111111111 refs/tags/endless' ;;
  only:*)
    want="'${mode#only:}'"
    if [ "$path" != "$want" ]; then
      echo "ERROR: access denied or repository not exported: $path" >&2
      exit 1
    fi ;;
esac
exec git-shell -c "$SSH_ORIGINAL_COMMAND"
"#;

/// Makes a key pair with `ssh-keygen` (`t` is ed25519, ecdsa or rsa) at `path` and
/// `path.pub`, protected by `passphrase` when it is not empty. Returns the public line.
pub fn keygen(t: &str, path: &Path, passphrase: &str) -> String {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", t, "-C", "berth-test", "-f"]).arg(path).arg("-N").arg(passphrase);
    if t == "rsa" {
        cmd.args(["-b", "3072"]);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run ssh-keygen: {e}"));
    assert!(out.status.success(), "ssh-keygen -t {t} failed: {}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    public.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}
