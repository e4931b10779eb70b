//! PostgreSQL over TLS (`sslmode`, `sslrootcert`, `sslcert`, `sslkey` in `database_url`),
//! against a cluster of the test's own started with `ssl=on` and certificates made here: a CA,
//! the server's for `localhost`, a client's for the role `certuser`. Its `pg_hba.conf` refuses
//! every connection without TLS and lets `certuser` in only with its client certificate.
//! Also RDS IAM authentication (`iam_token_db_auth`): the token a connection sends as its
//! password, read by a server of the test's own.

use bytes::Bytes;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tianji::store::{Store, StoreError, StoreOptions};

use crate::common::pg_cluster::PgCluster;
use crate::common::{MASTER_KEY, TestGateway, send};

const HBA: &str = "local all all trust
hostssl all certuser 127.0.0.1/32 cert
hostssl all all 127.0.0.1/32 trust
host all all 127.0.0.1/32 reject
";

pub(crate) fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `names` (`cn` its common name) signed by `issuer`: (cert, key) PEM.
pub(crate) fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    names: &[&str],
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

struct Tls {
    pg: PgCluster,
    files: tempfile::TempDir,
}

impl Tls {
    fn start() -> Self {
        let ca = make_ca("tianji test CA");
        let (server_crt, server_key) = leaf(&ca, "localhost", &["localhost"]);
        let (client_crt, client_key) = leaf(&ca, "certuser", &[]);
        let other = make_ca("another CA");
        let pg = PgCluster::start(
            &[
                "ssl=on",
                "ssl_cert_file=server.crt",
                "ssl_key_file=server.key",
                "ssl_ca_file=ca.crt",
            ],
            &[
                ("server.crt", &server_crt),
                ("server.key", &server_key),
                ("ca.crt", &ca.pem()),
                ("pg_hba.conf", HBA),
            ],
        )
        .expect("PostgreSQL's initdb and pg_ctl must be installed for the TLS tests");
        let files = tempfile::tempdir().unwrap();
        for (name, contents) in [
            ("ca.pem", ca.pem()),
            ("other-ca.pem", other.pem()),
            ("client.crt", client_crt),
            ("client.key", client_key),
        ] {
            std::fs::write(files.path().join(name), contents).unwrap();
        }
        Self { pg, files }
    }

    fn file(&self, name: &str) -> String {
        self.files.path().join(name).display().to_string()
    }

    /// A URL of the cluster as `user` on `host`, with the query `q`.
    fn url(&self, user: &str, host: &str, q: &str) -> String {
        format!("postgres://{user}@{host}:{}/postgres?{q}", self.pg.port)
    }

    /// The superuser's client (over TLS: nothing else gets in).
    async fn admin(&self) -> tokio_postgres::Client {
        let t = tianji::store::tls::parse(&format!("{}?sslmode=require", self.pg.url())).unwrap();
        let (c, conn) = t.config.connect(t.tls).await.unwrap();
        tokio::spawn(conn);
        c
    }
}

async fn connect(url: &str) -> Result<Store, StoreError> {
    Store::connect(url, StoreOptions::default()).await
}

fn refusal(r: Result<Store, StoreError>) -> String {
    match r {
        Ok(_) => panic!("the connection should have been refused"),
        Err(e) => e.to_string(),
    }
}

/// How a connection attempt must end: connected, or refused saying this.
enum Ends {
    Connected,
    Refused(&'static str),
}

#[tokio::test]
async fn every_sslmode_connects_or_refuses_as_libpq_does() {
    use Ends::{Connected, Refused};
    let tls = Tls::start();
    let ca = tls.file("ca.pem");
    let other = tls.file("other-ca.pem");
    let client = format!(
        "sslcert={}&sslkey={}",
        tls.file("client.crt"),
        tls.file("client.key")
    );
    let cases: Vec<(&str, &str, String, Ends)> = vec![
        // verify-full: the chain and the host name
        (
            "postgres",
            "localhost",
            format!("sslmode=verify-full&sslrootcert={ca}"),
            Connected,
        ),
        (
            "postgres",
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={ca}"),
            Refused("not valid for name"),
        ),
        (
            "postgres",
            "localhost",
            format!("sslmode=verify-full&sslrootcert={other}"),
            Refused("UnknownIssuer"),
        ),
        // the public roots do not vouch for a private CA
        (
            "postgres",
            "localhost",
            "sslmode=verify-full".into(),
            Refused("UnknownIssuer"),
        ),
        // verify-ca: the chain only
        (
            "postgres",
            "127.0.0.1",
            format!("sslmode=verify-ca&sslrootcert={ca}"),
            Connected,
        ),
        (
            "postgres",
            "127.0.0.1",
            format!("sslmode=verify-ca&sslrootcert={other}"),
            Refused("UnknownIssuer"),
        ),
        // require: encrypted, unchecked; with a root certificate, checked as verify-ca
        ("postgres", "127.0.0.1", "sslmode=require".into(), Connected),
        (
            "postgres",
            "127.0.0.1",
            format!("sslmode=require&sslrootcert={other}"),
            Refused("UnknownIssuer"),
        ),
        // prefer (also without sslmode) takes the TLS the server offers; disable is refused here
        ("postgres", "127.0.0.1", "sslmode=prefer".into(), Connected),
        (
            "postgres",
            "127.0.0.1",
            "application_name=x".into(),
            Connected,
        ),
        (
            "postgres",
            "127.0.0.1",
            "sslmode=disable".into(),
            Refused("no encryption"),
        ),
        // a client certificate: certuser gets in with it, not without
        (
            "certuser",
            "localhost",
            format!("sslmode=verify-full&sslrootcert={ca}&{client}"),
            Connected,
        ),
        (
            "certuser",
            "localhost",
            format!("sslmode=verify-full&sslrootcert={ca}"),
            Refused("certificate"),
        ),
    ];
    tls.admin()
        .await
        .batch_execute("CREATE ROLE certuser LOGIN SUPERUSER")
        .await
        .unwrap();
    for (user, host, q, ends) in cases {
        let r = connect(&tls.url(user, host, &q)).await;
        match (ends, r) {
            (Connected, Ok(s)) => assert!(s.ping().await, "{user}@{host}?{q}"),
            (Refused(says), Err(e)) => {
                let e = e.to_string();
                assert!(
                    e.contains("refused the connection") && e.contains(says),
                    "{user}@{host}?{q}: {e}"
                );
            }
            (Connected, Err(e)) => panic!("{user}@{host}?{q}: {e}"),
            (Refused(_), Ok(_)) => panic!("{user}@{host}?{q} connected"),
        }
    }

    // options that cannot work are a configuration error, before any connection
    for (q, says) in [
        ("sslmode=verify-everything", "is not one of"),
        (
            "sslmode=verify-full&sslrootcert=/nonexistent.pem",
            "/nonexistent.pem",
        ),
        ("sslmode=require&sslcert=/c.pem", "give both or neither"),
    ] {
        let e = refusal(connect(&tls.url("postgres", "localhost", q)).await);
        assert!(
            e.starts_with("invalid database_url") && e.contains(says),
            "{q}: {e}"
        );
    }
}

#[tokio::test]
async fn the_gateway_works_over_verify_full() {
    let tls = Tls::start();
    let url = tls.url(
        "postgres",
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", tls.file("ca.pem")),
    );
    let gw = TestGateway::start(&format!(
        "model_list: []\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{url}\"\n"
    ))
    .await;
    let auth = format!("Bearer {MASTER_KEY}");
    let r = send(
        http::Method::POST,
        &gw.url("/key/generate"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Bytes::from_static(br#"{"key_alias": "over-tls"}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let admin = tls.admin().await;
    let n: i64 = admin
        .query_one(
            "SELECT count(*) FROM \"TianjiLLM_VerificationToken\" WHERE key_alias = 'over-tls'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    // the gateway's connections are encrypted (the server lets no other in, and says so)
    let plain: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.application_name = 'tianji' AND NOT s.ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let encrypted: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.application_name = 'tianji' AND s.ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(plain, 0);
    assert!(encrypted >= 1, "no TLS connection of the gateway");
}

/// A server that asks for a cleartext password (as RDS's IAM authentication does, over TLS)
/// and keeps what it was given, then refuses the connection.
async fn password_taker() -> (u16, tokio::sync::oneshot::Receiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        // the startup message (after an SSLRequest, refused with 'N')
        loop {
            let len = s.read_u32().await.unwrap() as usize;
            let mut body = vec![0; len - 4];
            s.read_exact(&mut body).await.unwrap();
            if body[..4] == 80_877_103u32.to_be_bytes() {
                s.write_all(b"N").await.unwrap();
                continue;
            }
            break;
        }
        // AuthenticationCleartextPassword, then the PasswordMessage
        s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await.unwrap();
        assert_eq!(s.read_u8().await.unwrap(), b'p');
        let len = s.read_u32().await.unwrap() as usize;
        let mut password = vec![0; len - 4];
        s.read_exact(&mut password).await.unwrap();
        password.pop(); // its terminating NUL
        let _ = tx.send(String::from_utf8(password).unwrap());
        let mut err = vec![b'S'];
        err.extend(b"FATAL\0");
        err.push(b'C');
        err.extend(b"28P01\0");
        err.push(b'M');
        err.extend(b"password authentication failed\0\0");
        let mut msg = vec![b'E'];
        msg.extend(((err.len() + 4) as u32).to_be_bytes());
        msg.extend(err);
        s.write_all(&msg).await.unwrap();
    });
    (port, rx)
}

#[tokio::test]
async fn rds_iam_authentication_sends_a_token_signed_for_the_host_port_and_user() {
    use tianji::providers::bedrock::sigv4::Credentials;
    use tianji::store::iam::Iam;
    let (port, password) = password_taker().await;
    let iam = Iam {
        region: "us-east-1".into(),
        credentials: Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        },
    };
    let opts = StoreOptions {
        iam: Some(iam.clone()),
        ..StoreOptions::default()
    };
    let url = format!("postgres://iam_user@127.0.0.1:{port}/app?sslmode=disable");
    let e = refusal(Store::connect(&url, opts).await);
    assert!(e.contains("password authentication failed"), "{e}");
    let token = password.await.unwrap();
    // the token the gateway sent is the one made at its X-Amz-Date for this host, port and user
    let date = token
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-Date="))
        .unwrap();
    let at = amz_date(date);
    assert_eq!(token, iam.token("127.0.0.1", port, "iam_user", at).unwrap());
    assert!(token.starts_with(&format!(
        "127.0.0.1:{port}/?Action=connect&DBUser=iam_user&"
    )));
    assert!(token.contains("X-Amz-Expires=900"), "{token}");
}

/// `YYYYMMDDTHHMMSSZ` as a time.
fn amz_date(s: &str) -> std::time::SystemTime {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    // days from the civil date (Howard Hinnant's algorithm)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15);
    std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64)
}

#[test]
fn iam_without_a_url_makes_it_from_the_database_variables() {
    let l = tianji::Loaded::from_yaml(
        "environment_variables:\n  IAM_TOKEN_DB_AUTH: \"True\"\n  DATABASE_HOST: db.example.rds.amazonaws.com\n  DATABASE_USER: app user\n  DATABASE_NAME: tianji\ngeneral_settings:\n  master_key: sk-x\n",
    )
    .unwrap();
    let g = &l.config.general_settings;
    assert!(g.iam_token_db_auth);
    assert_eq!(
        g.database_url.as_deref(),
        Some("postgres://app%20user@db.example.rds.amazonaws.com:5432/tianji")
    );
}
