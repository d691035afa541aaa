//! `bookinfo up --ratings-db mysql[://URL]`: ratings v2 on a MySQL database, as Istio's
//! `bookinfo-ratings-v2-mysql.yaml` and `bookinfo-mysql.yaml` deploy it.
//!
//! With plain `mysql`, `up` starts a real server of its own: MariaDB's `mariadbd` (or MySQL's
//! `mysqld`), found on PATH or at `BOOKINFO_MYSQLD`, its data directory initialised in the run's
//! directory with what Istio's `mysqldb-init.sql` holds (database `test`, table `ratings`, rows
//! (1, 5) and (2, 4)), its socket there too, listening on 127.0.0.1 only. It is supervised like
//! the services (restarted with back-off when it dies), started through `bookinfo exec` so that
//! the kernel stops it with the stack, and its directory is removed when `up` stops: nothing of
//! the database outlives the stack. With a URL, ratings v2 uses that server instead.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use bookinfo_config::Source;
use bookinfo_ratings::mysql::{
    DATABASE, DB_TYPE, MYSQL_DB_HOST, MYSQL_DB_PASSWORD, MYSQL_DB_PORT, MYSQL_DB_USER,
};

use super::child::{Ready, Spec, Stops};
use crate::error::{Error, SetupError, StackError};

/// `BOOKINFO_MYSQLD`: the MariaDB or MySQL server `bookinfo up --ratings-db mysql` starts.
pub const BOOKINFO_MYSQLD: &str = "BOOKINFO_MYSQLD";
/// The database's port unless `--base-port` moves it (as it moves the others) or it is taken.
pub const DEFAULT_PORT: u16 = 3306;
/// The user ratings v2 connects as, and its password: those of Istio's manifests.
pub const USER: &str = "root";
/// See [`USER`].
pub const PASSWORD: &str = "password";
/// The version label of ratings v2 on MySQL, and the name of its DestinationRule subset.
pub const VERSION: &str = "v2-mysql";
/// Its pod.
pub const POD: &str = "ratings-v2-mysql";

/// What Istio's `mysqldb-init.sql` creates, run once when the data directory is made.
const SEED: &str = "CREATE DATABASE IF NOT EXISTS test;\n\
USE test;\n\
CREATE TABLE IF NOT EXISTS ratings (ReviewID INT NOT NULL, Rating INT, PRIMARY KEY (ReviewID));\n\
INSERT INTO ratings (ReviewID, Rating) VALUES (1, 5), (2, 4);\n";

/// Run at every start of the server: accounts cannot be made while the data directory is
/// initialised (the grant tables are not loaded then). Ratings connects over TCP from
/// 127.0.0.1, as it would from another pod.
const USERS: &str = "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY 'password';\n\
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1';\n";

/// `--ratings-db`: the server `up` starts, or one at a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RatingsDb {
    /// `mysql`: a server of the stack's own.
    Local,
    /// `mysql://user:pass@host:port/test`: an existing server.
    Url(Remote),
}

/// A server of the user's, given by URL: where it is and who ratings is there, as ratings v2
/// itself reads them.
pub use bookinfo_ratings::mysql::MysqlConfig as Remote;

/// Ratings v2's variables for the server at `remote`.
pub fn remote_env(remote: &Remote) -> Vec<(String, String)> {
    ratings_env(&remote.host, remote.port, remote.user.as_deref(), remote.password.as_deref())
}

impl FromStr for RatingsDb {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("mysql") {
            return Ok(RatingsDb::Local);
        }
        let expected = "expected mysql or mysql://USER:PASSWORD@HOST:PORT/test";
        let url = url::Url::parse(text).map_err(|err| format!("{err}: {expected}"))?;
        if url.scheme() != "mysql" {
            return Err(format!("only MySQL is supported (not {}): {expected}", url.scheme()));
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("no host: {expected}"))?;
        let database = url.path().trim_start_matches('/');
        if !database.is_empty() && database != DATABASE {
            return Err(format!("ratings reads the database {DATABASE}, as the original, not {database}"));
        }
        let decode = |s: &str| percent_decode(s);
        Ok(RatingsDb::Url(Remote {
            host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            port: url.port().unwrap_or(DEFAULT_PORT),
            user: Some(url.username()).filter(|u| !u.is_empty()).map(decode),
            password: url.password().map(decode),
        }))
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| text.to_owned())
}

/// The stack's own server, decided and initialised before anything starts.
#[derive(Debug, Clone)]
pub struct Local {
    /// `mariadbd` or `mysqld`.
    pub server: PathBuf,
    /// Its directory: the data, the socket, the start-up SQL; removed when `up` stops.
    pub dir: PathBuf,
    /// Where it listens.
    pub port: u16,
    /// Whether the port was picked free (then another is tried if it is taken meanwhile).
    pub picked: bool,
}

/// Finds the server: `BOOKINFO_MYSQLD`, else `mariadbd` or `mysqld` on the PATH of `source`
/// (or in the `sbin` directories, which a user's PATH may lack).
///
/// # Errors
/// None found: a one-line [`SetupError`] saying how to install one.
pub fn find(source: &(impl Source + ?Sized)) -> Result<PathBuf, Error> {
    if let Some(path) = source.get(BOOKINFO_MYSQLD).map(PathBuf::from) {
        return if path.is_file() { Ok(path) } else { Err(SetupError::MysqldNotAt(path).into()) };
    }
    ["mariadbd", "mysqld"]
        .iter()
        .find_map(|name| on_path(name, source))
        .ok_or_else(|| SetupError::MysqldMissing.into())
}

fn on_path(name: &str, source: &(impl Source + ?Sized)) -> Option<PathBuf> {
    let path = source.raw("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Makes `dir` and initialises the data directory in it (blocking: it runs the server's
/// installer, about a second); picks the port: [`DEFAULT_PORT`] moved as `base_port` moves the
/// services' (`0`: a free one), or a free one when that is taken.
///
/// # Errors
/// The directory cannot be made, or the data directory cannot be initialised.
pub fn prepare(
    server: PathBuf,
    dir: PathBuf,
    base_port: u16,
    source: &(impl Source + ?Sized),
) -> Result<Local, Error> {
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("seed.sql"), SEED)?;
    std::fs::write(dir.join("users.sql"), USERS)?;
    initialise(&server, &dir, source)?;
    let moved = i32::from(DEFAULT_PORT) + i32::from(base_port) - i32::from(bookinfo_config::DEFAULT_PORT);
    let wanted = u16::try_from(moved).ok().filter(|p| *p != 0 && base_port != 0);
    let (port, picked) = match wanted {
        Some(port) if is_free(port) => (port, false),
        _ => (free_port()?, true),
    };
    Ok(Local { server, dir, port, picked })
}

/// Runs MariaDB's `mariadb-install-db` (or `mysql_install_db`) with the seed; a server without
/// one (MySQL 8) initialises itself with `--initialize-insecure`, then the seed runs at start.
fn initialise(server: &Path, dir: &Path, source: &(impl Source + ?Sized)) -> Result<(), Error> {
    let data = dir.join("data");
    let beside = server.parent().and_then(Path::parent).map(|prefix| prefix.join("bin"));
    let installer = ["mariadb-install-db", "mysql_install_db"].iter().find_map(|name| {
        on_path(name, source).or_else(|| beside.as_ref().map(|b| b.join(name)).filter(|p| p.is_file()))
    });
    let mut command = match installer {
        Some(installer) => {
            let mut command = Command::new(installer);
            command.args(["--no-defaults", "--skip-test-db", "--skip-name-resolve"]);
            command.arg(format!("--extra-file={}", dir.join("seed.sql").display()));
            command
        }
        None => {
            let mut command = Command::new(server);
            command.args(["--no-defaults", "--initialize-insecure"]);
            command
        }
    };
    command.arg(format!("--datadir={}", data.display()));
    if let Some(user) = run_as() {
        command.arg(format!("--user={user}"));
    }
    let output =
        command.output().map_err(|source| StackError::Spawn { program: server.to_path_buf(), source })?;
    if !output.status.success() {
        let text = [output.stdout, output.stderr].concat();
        let said = String::from_utf8_lossy(&text)
            .lines()
            .filter(|l| l.contains("ERROR"))
            .map(str::to_owned)
            .collect();
        let name = "the database's initialisation".to_owned();
        return Err(StackError::NotReady { name, status: output.status.to_string(), said }.into());
    }
    Ok(())
}

/// The server refuses to run as root unless told to, as the user it already is: it never
/// switches to another user here, and its files stay the invoking user's.
fn run_as() -> Option<&'static str> {
    nix::unistd::geteuid().is_root().then_some("root")
}

fn is_free(port: u16) -> bool {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A port nothing listens on now. The server cannot be handed a listener, so another process
/// may take it before the server binds: [`Local::repick`] tries again then.
fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

impl Local {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port)
    }

    /// The server's child: `bookinfo exec SERVER ...` (`exe`), ready when it takes
    /// connections.
    pub fn spec(&self, exe: &Path) -> Spec {
        let data = self.dir.join("data");
        let mut args = vec![
            "exec".to_owned(),
            self.server.display().to_string(),
            "--no-defaults".to_owned(),
            format!("--datadir={}", data.display()),
            format!("--socket={}", self.socket().display()),
            format!("--pid-file={}", self.dir.join("mysqld.pid").display()),
            format!("--port={}", self.port),
            "--bind-address=127.0.0.1".to_owned(),
            // Accounts are matched by address: 127.0.0.1 is not turned into `localhost`.
            "--skip-name-resolve".to_owned(),
            format!("--init-file={}", self.dir.join("users.sql").display()),
            // Its start-up notes would bury the stack's banner, and a warning per connection
            // closed before it logged in would follow every readiness probe; the rest shows.
            "--silent-startup".to_owned(),
            "--log-warnings=0".to_owned(),
        ];
        if let Some(user) = run_as() {
            args.push(format!("--user={user}"));
        }
        Spec {
            name: "mysqldb".to_owned(),
            program: exe.to_path_buf(),
            args,
            env: Vec::new(),
            scrub: Vec::new(),
            ready: Ready::Tcp(self.addr()),
            stops: Stops::Then,
        }
    }

    /// Its socket, in its directory, unless that path is too long for a socket's address.
    pub fn socket(&self) -> PathBuf {
        let socket = self.dir.join("mysqld.sock");
        if socket.as_os_str().len() < 100 {
            socket
        } else {
            std::env::temp_dir().join(format!("bookinfo-mysqld-{}.sock", std::process::id()))
        }
    }

    /// Another free port, after the picked one was taken before the server bound it.
    ///
    /// # Errors
    /// No port can be had.
    pub fn repick(&mut self) -> Result<(), Error> {
        self.port = free_port()?;
        Ok(())
    }

    /// Removes its directory (the server has stopped).
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let socket = self.socket();
        if !socket.starts_with(&self.dir) {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// Whether a server that did not start said its port was taken.
pub fn port_was_taken(err: &Error) -> bool {
    matches!(err, Error::Stack(StackError::NotReady { said, .. })
        if said.iter().any(|line| line.contains("Address already in use") || line.contains("errno: 98")))
}

/// The variables of ratings v2 on the database at `host:port` (as `user`, `password`).
pub fn ratings_env(
    host: &str,
    port: u16,
    user: Option<&str>,
    password: Option<&str>,
) -> Vec<(String, String)> {
    let mut env = vec![
        (bookinfo_config::SERVICE_VERSION.to_owned(), "v2".to_owned()),
        (DB_TYPE.to_owned(), "mysql".to_owned()),
        (MYSQL_DB_HOST.to_owned(), host.to_owned()),
        (MYSQL_DB_PORT.to_owned(), port.to_string()),
    ];
    env.extend(user.map(|u| (MYSQL_DB_USER.to_owned(), u.to_owned())));
    env.extend(password.map(|p| (MYSQL_DB_PASSWORD.to_owned(), p.to_owned())));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_is_mysql_or_a_mysql_url_of_the_test_database() {
        assert_eq!("mysql".parse::<RatingsDb>(), Ok(RatingsDb::Local));
        assert_eq!(
            "mysql://root:p%40ss@db.example:3307/test".parse::<RatingsDb>(),
            Ok(RatingsDb::Url(Remote {
                host: "db.example".into(),
                port: 3307,
                user: Some("root".into()),
                password: Some("p@ss".into())
            }))
        );
        let plain = "mysql://127.0.0.1".parse::<RatingsDb>().unwrap();
        assert_eq!(
            plain,
            RatingsDb::Url(Remote { host: "127.0.0.1".into(), port: 3306, user: None, password: None })
        );
        for bad in ["mongodb://m:27017/test", "mysql://h/other", "postgres", "mysql://:1/test"] {
            assert!(bad.parse::<RatingsDb>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_port_taken_before_the_server_bound_it_is_told_apart() {
        let said = |line: &str| StackError::NotReady {
            name: "mysqldb".into(),
            status: "exit status: 1".into(),
            said: vec![line.to_owned()],
        };
        let taken = "[ERROR] Can't start server: Bind on TCP/IP port. Got error: 98: Address already in use";
        assert!(port_was_taken(&said(taken).into()));
        assert!(!port_was_taken(&said("[ERROR] Aborting").into()));
    }

    #[test]
    fn a_missing_server_is_one_line_naming_the_package() {
        let err = find(&[("BOOKINFO_MYSQLD", "/nonexistent/mariadbd")]).unwrap_err();
        assert!(err.to_string().contains("apt-get install mariadb-server"), "{err}");
        assert!(!err.to_string().contains('\n'));
    }
}
