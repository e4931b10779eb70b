//! A fresh PostgreSQL database per test, dropped afterwards. The server is the local one
//! (`TIANJI_TEST_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/postgres).

use tokio_postgres::NoTls;

pub fn admin_url() -> String {
    std::env::var("TIANJI_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database that exists for the life of this value.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

/// A client on the server's admin database.
pub async fn admin() -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(&admin_url(), NoTls)
        .await
        .expect("PostgreSQL must be running for the tests (scripts/services starts it)");
    tokio::spawn(conn);
    c
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("tianji_t_{}", uuid::Uuid::now_v7().simple());
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        let base = admin_url();
        let url = match base.rfind('/') {
            Some(i)
                if base[..i].contains("://")
                    && base[i..].len() > 1
                    && !base[..i].ends_with('/') =>
            {
                format!("{}/{name}", &base[..i])
            }
            _ => format!("{}/{name}", base.trim_end_matches('/')),
        };
        Self { name, url }
    }

    /// A client on this database (for assertions).
    pub async fn client(&self) -> tokio_postgres::Client {
        let (c, conn) = tokio_postgres::connect(&self.url, NoTls).await.unwrap();
        tokio::spawn(conn);
        c
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop from a separate thread with its own runtime: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let _ = admin()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}
