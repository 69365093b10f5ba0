//! Starts moto server (the AWS emulator, from PyPI) on a free loopback port.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A running moto server, killed when dropped (and when this process dies).
pub struct MotoServer {
    pub endpoint: String,
    pid: u32,
}

/// The command that starts moto: `MOTO_SERVER` if set (a `moto_server` executable, moto as
/// published), else the repo's `infra/moto_server.py` on the `.venv`'s Python (installed by
/// `scripts/setup.sh`): moto_server with three fixes long runs need, explained in that file.
pub fn moto_command() -> Result<Command> {
    if let Ok(path) = std::env::var("MOTO_SERVER") {
        return Ok(Command::new(path));
    }
    let python = crate::repo_root().join(".venv/bin/python");
    if !python.exists() {
        bail!("{} not found: run scripts/setup.sh first (it installs moto into .venv)", python.display());
    }
    let mut command = Command::new(python);
    command.arg(crate::repo_root().join("infra/moto_server.py"));
    Ok(command)
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl MotoServer {
    pub fn start() -> Result<Self> {
        let port = free_port()?;
        let mut command = moto_command()?;
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; it asks the kernel to kill moto if we die,
        // so no emulator outlives a crashed test run.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        // PDEATHSIG fires when the spawning *thread* ends, so spawn from a thread that
        // lives exactly as long as moto does.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || match command.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(child.id()));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        });
        let pid = rx.recv().context("moto spawner thread")?.context("starting moto_server")?;
        let server = Self { endpoint: format!("http://127.0.0.1:{port}"), pid };
        server.wait_ready(Duration::from_secs(60))?;
        Ok(server)
    }

    fn wait_ready(&self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        let addr = self.endpoint.trim_start_matches("http://").to_owned();
        while start.elapsed() < limit {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("moto_server did not listen on {addr} within {limit:?}")
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // SAFETY: sending a signal to our own child's pid.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGKILL);
        }
    }
}
