//! Amazon RDS IAM authentication (`general_settings.iam_token_db_auth`): no stored password;
//! each new connection's password is an authentication token, a SigV4-presigned
//! `connect` request for the host, port and user of `database_url` (service `rds-db`, valid
//! 15 minutes for opening connections), signed with the AWS credentials of the environment.
//! Made as boto3's `generate_db_auth_token` makes it (the tests hold it to botocore's output).

use std::time::{Duration, SystemTime};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::providers::bedrock::sigv4::{self, Credentials};

/// What a query value keeps unencoded (AWS's unreserved characters).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How long a token opens connections (RDS's limit).
const VALID: Duration = Duration::from_secs(900);

/// The region and credentials tokens are signed with.
#[derive(Debug, Clone)]
pub struct Iam {
    pub region: String,
    pub credentials: Credentials,
}

impl Iam {
    /// The region (`AWS_REGION_NAME`, `AWS_REGION` or `AWS_DEFAULT_REGION`) and credentials
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) of the environment
    /// `var` reads.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let region = ["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|n| var(n))
            .ok_or(
                "iam_token_db_auth needs the database's region: set AWS_REGION_NAME or AWS_REGION",
            )?;
        let (Some(access_key_id), Some(secret_access_key)) =
            (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(
                "iam_token_db_auth needs AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                    .into(),
            );
        };
        Ok(Self {
            region,
            credentials: Credentials {
                access_key_id,
                secret_access_key,
                session_token: var("AWS_SESSION_TOKEN"),
            },
        })
    }

    /// The authentication token for `user` at `host:port`, signed at `at`.
    pub fn token(
        &self,
        host: &str,
        port: u16,
        user: &str,
        at: SystemTime,
    ) -> Result<String, String> {
        let user = utf8_percent_encode(user, QUERY);
        let uri = format!("https://{host}:{port}/?Action=connect&DBUser={user}");
        let params = sigv4::presign(&uri, &self.credentials, &self.region, "rds-db", at, VALID)
            .map_err(|e| format!("RDS IAM token: {e}"))?;
        let mut token = uri["https://".len()..].to_string();
        for (k, v) in params {
            token.push('&');
            token.push_str(k);
            token.push('=');
            token.extend(utf8_percent_encode(&v, QUERY));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_and_credentials_must_be_in_the_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                vars.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            }
        };
        let e = Iam::from_env(env(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
        ]));
        assert!(e.unwrap_err().contains("AWS_REGION"));
        let e = Iam::from_env(env(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "a"),
        ]));
        assert!(e.unwrap_err().contains("AWS_SECRET_ACCESS_KEY"));
        let iam = Iam::from_env(env(&[
            ("AWS_REGION_NAME", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
            ("AWS_SESSION_TOKEN", ""),
        ]))
        .unwrap();
        assert_eq!(iam.region, "eu-west-1");
        assert_eq!(iam.credentials.session_token, None);
    }

    /// botocore's `generate_db_auth_token` for the same input, at 2018-07-31T23:52:09Z.
    #[test]
    fn tokens_match_botocore() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_533_081_129);
        let iam = Iam {
            region: "us-east-1".into(),
            credentials: Credentials {
                access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                session_token: None,
            },
        };
        assert_eq!(
            iam.token(
                "db.example.us-east-1.rds.amazonaws.com",
                5432,
                "jane_doe",
                at
            )
            .unwrap(),
            "db.example.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=jane_doe&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20180731%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20180731T235209Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=cd11039a7bda4065ff56370bf558f865f0e2526889492b9a9e2ebe4d1826a9b4"
        );
        let temporary = Iam {
            region: "eu-west-1".into(),
            credentials: Credentials {
                access_key_id: "ASIAIOSFODNN7EXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                session_token: Some("FQoGZXIvYXdzE+/session=".into()),
            },
        };
        assert_eq!(
            temporary
                .token(
                    "db.example.eu-west-1.rds.amazonaws.com",
                    5432,
                    "app user",
                    at
                )
                .unwrap(),
            "db.example.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=app%20user&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAIOSFODNN7EXAMPLE%2F20180731%2Feu-west-1%2Frds-db%2Faws4_request&X-Amz-Date=20180731T235209Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FQoGZXIvYXdzE%2B%2Fsession%3D&X-Amz-Signature=387f4372a70b16e6a8672f355bf72e8df026607a6ad4e5d15f30e7526f3e361c"
        );
    }
}
