//! Fleet mode against a secured etcd: a user and password, and mutual
//! TLS with throwaway certificates made here (rcgen).
//!
//! * `a_fleet_logs_in_to_etcd_and_a_wrong_password_is_refused_unshown`:
//!   with auth enabled in etcd, an instance logged in as a user allowed
//!   only the fleet's keys leads and publishes (the configuration is in
//!   etcd, read as root); one with a wrong password, one with no user,
//!   one whose user has no permission and one with an empty password file
//!   do not start, each with an error naming authentication (or the
//!   file's flag) and never a password.
//! * `a_fleet_over_mutual_tls_leads_and_without_its_certificate_cannot_start`:
//!   etcd with `--client-cert-auth` on https: two instances with the CA
//!   and a client certificate elect a leader that publishes and a
//!   standby that reads; without the client certificate, with a CA that
//!   did not sign etcd's certificate, with a certificate but no key, or
//!   with a user for this etcd without authentication, an instance does
//!   not start.
//! * `the_login_flags_come_in_pairs_and_the_etcd_flags_need_a_fleet`:
//!   usage errors (exit 2) before anything starts.

use crate::cluster::{Cluster, FLEET};
use crate::etcd::{Etcd, ServerTls};
use etcd_client::{Client, ConnectOptions, Permission};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PASSWORD: &str = "right horse battery staple";
const WRONG: &str = "wrong horse battery staple";
const ROOT_PASSWORD: &str = "root's own password";

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// etcd's authentication on: `root` (which etcd requires before it
/// enables it), `hotpath` with `password` and read and write on the
/// fleet's keys only, and `nobody` with `password` and no role.
fn enable_auth(url: &str, password: &str) {
    block_on(async {
        let mut client = Client::connect([url], None).await.expect("etcd");
        client
            .user_add("root", ROOT_PASSWORD, None)
            .await
            .expect("root");
        // etcd 3.4 grants the root role without it existing; later
        // versions want it made first.
        let _ = client.role_add("root").await;
        client.user_grant_role("root", "root").await.expect("grant");
        client.role_add("hotpath").await.expect("role");
        let keys = format!("/hotpath/fleet/{FLEET}/");
        client
            .role_grant_permission("hotpath", Permission::read_write(keys).with_prefix())
            .await
            .expect("permission");
        for user in ["hotpath", "nobody"] {
            client.user_add(user, password, None).await.expect("user");
        }
        client
            .user_grant_role("hotpath", "hotpath")
            .await
            .expect("grant");
        client.auth_enable().await.expect("auth enabled");
    });
}

/// The fleet's published `config` generation, read as `root`.
fn published_as_root(url: &str) -> Option<u64> {
    block_on(async {
        let login = ConnectOptions::new().with_user("root", ROOT_PASSWORD);
        let mut client = Client::connect([url], Some(login)).await.expect("login");
        let key = format!("/hotpath/fleet/{FLEET}/config");
        let response = client.get(key, None).await.expect("get");
        let kv = response.kvs().first()?;
        let config: serde_json::Value = serde_json::from_slice(kv.value()).ok()?;
        config["generation"].as_u64()
    })
}

fn args<const N: usize>(pairs: [(&str, &Path); N]) -> Vec<OsString> {
    pairs
        .into_iter()
        .flat_map(|(flag, path)| [OsString::from(flag), path.as_os_str().to_owned()])
        .collect()
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path
}

#[test]
fn a_fleet_logs_in_to_etcd_and_a_wrong_password_is_refused_unshown() {
    let etcd = Etcd::start();
    enable_auth(&etcd.url(), PASSWORD);
    let dir = tempfile::tempdir().expect("dir");
    let right = write(dir.path(), "right", &format!("{PASSWORD}\n"));
    let wrong = write(dir.path(), "wrong", &format!("{WRONG}\n"));
    let empty = write(dir.path(), "empty", "\n");
    let login = |user: &str, file: &Path| {
        let mut a = vec![OsString::from("--etcd-user"), OsString::from(user)];
        a.extend(args([("--etcd-password-file", file)]));
        a
    };
    let user = |file: &Path| login("hotpath", file);

    let mut cluster = Cluster::new(&etcd.url(), 5, 2, user(&right));
    cluster.spawn(0);
    let (_, status) = cluster
        .wait_leader(None, Duration::from_secs(15))
        .expect("the instance with the right password leads");
    let published = status["fleet"]["published_generation"]
        .as_u64()
        .expect("published");
    let read = cluster.get(0, "/v1/config").expect("a read answers");
    assert_eq!(read.status, 200, "{}", read.text());
    assert!(read.json()["generation"].as_u64() >= Some(published));
    assert!(
        published_as_root(&etcd.url()) >= Some(published),
        "the publication is in etcd"
    );

    let refusals = [
        (user(&wrong), "etcd authentication as user `hotpath`"),
        (Vec::new(), "etcd authentication"),
        (login("nobody", &right), "permission denied"),
        (user(&empty), "--etcd-password-file"),
    ];
    for (i, (extra, says)) in refusals.into_iter().enumerate() {
        cluster.extra = extra;
        let (code, stderr) = cluster.refused(i + 1, Duration::from_secs(10));
        assert!(!code.success(), "instance {} started: {stderr}", i + 1);
        assert!(stderr.contains(says), "not {says:?}: {stderr}");
        assert!(
            !stderr.contains(WRONG) && !stderr.contains(PASSWORD),
            "a password shown: {stderr}"
        );
        println!("refused: {}", stderr.lines().last().unwrap_or(""));
    }
    assert_eq!(cluster.stop(0).map(|s| s.success()), Some(true));
    let log = std::fs::read_to_string(cluster.err_file(0)).expect("log");
    assert!(!log.contains(PASSWORD), "the password logged: {log}");
}

/// A throwaway certificate authority.
struct Authority {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).expect("CA").pem();
        Authority {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (DNS names or IP addresses) and its key,
    /// as PEM.
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "hotpath test");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }
}

#[test]
fn a_fleet_over_mutual_tls_leads_and_without_its_certificate_cannot_start() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let ca = Authority::new("hotpath test CA");
    let (server_cert, server_key) = ca.issue(
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = ca.issue(&["i0"], ExtendedKeyUsagePurpose::ClientAuth);
    let ca_file = write(d, "ca.pem", &ca.pem);
    let other_ca = write(d, "other-ca.pem", &Authority::new("another CA").pem);
    let client_cert = write(d, "client.pem", &client_cert);
    let client_key = write(d, "client-key.pem", &client_key);
    let etcd = Etcd::start_tls(ServerTls {
        cert: write(d, "server.pem", &server_cert),
        key: write(d, "server-key.pem", &server_key),
        client_ca: ca_file.clone(),
    });
    assert!(etcd.url().starts_with("https://"));

    let full = args([
        ("--etcd-ca", &ca_file),
        ("--etcd-cert", &client_cert),
        ("--etcd-key", &client_key),
    ]);
    let mut cluster = Cluster::new(&etcd.url(), 6, 2, full.clone());
    cluster.spawn(0);
    cluster.spawn(1);
    let (leader, status) = cluster
        .wait_leader(None, Duration::from_secs(15))
        .expect("a leader over TLS");
    assert!(status["fleet"]["published_generation"].as_u64().is_some());
    let read = cluster
        .get(1 - leader, "/v1/config")
        .expect("the standby reads");
    assert_eq!(read.status, 200, "{}", read.text());

    let refusals = [
        (args([("--etcd-ca", &ca_file)]), "etcd over TLS"),
        (
            args([
                ("--etcd-ca", &other_ca),
                ("--etcd-cert", &client_cert),
                ("--etcd-key", &client_key),
            ]),
            "UnknownIssuer",
        ),
        (
            args([("--etcd-ca", &ca_file), ("--etcd-cert", &client_cert)]),
            "--etcd-key",
        ),
        (
            [
                full.clone(),
                vec!["--etcd-user".into(), "hotpath".into()],
                args([("--etcd-password-file", &write(d, "password", "pw\n"))]),
            ]
            .concat(),
            "authentication is not enabled",
        ),
    ];
    for (i, (extra, says)) in refusals.into_iter().enumerate() {
        cluster.extra = extra;
        let (code, stderr) = cluster.refused(i + 2, Duration::from_secs(10));
        assert!(!code.success(), "instance {} started: {stderr}", i + 2);
        assert!(stderr.contains(says), "not {says:?}: {stderr}");
        println!("refused: {}", stderr.lines().last().unwrap_or(""));
    }
}

#[test]
fn the_login_flags_come_in_pairs_and_the_etcd_flags_need_a_fleet() {
    let fleet = [
        "--fleet",
        "f",
        "--etcd",
        "http://127.0.0.1:1",
        "--token-file",
        "t",
    ];
    let cases: [(&[&str], &[&str], &str); 3] = [
        (&fleet, &["--etcd-user", "u"], "--etcd-password-file"),
        (&fleet, &["--etcd-password-file", "p"], "--etcd-user"),
        (&[], &["--etcd-ca", "ca.pem"], "--fleet"),
    ];
    for (base, extra, missing) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotpath"))
            .args(["serve", "--config", "x.toml", "--data", "d"])
            .args(base)
            .args(extra)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(missing), "{extra:?} without {missing}: {err}");
    }
}
