//! The harness works: STS through the real SDK, and AssumeRole into a second account.

use crosslink_aws::{Connector, SessionError};
use crosslink_desired::{AccountSpec, AssumeRole};
use crosslink_testkit::{DEFAULT_ACCOUNT, Moto, REGION};

fn spec(account: &str, role: bool) -> AccountSpec {
    AccountSpec {
        account_id: account.into(),
        region: REGION.into(),
        assume_role: role.then(|| AssumeRole {
            role_arn: format!("arn:aws:iam::{account}:role/crosslink"),
            external_id: Some("test-external-id".into()),
            session_name: None,
        }),
    }
}

#[tokio::test]
async fn caller_identity_and_assume_role_into_a_second_account() {
    let moto = Moto::start();
    let connector = Connector::from_config(super::base_config(&moto).await);

    let sts = aws_sdk_sts::Client::new(connector.base());
    let me = sts.get_caller_identity().send().await.expect("GetCallerIdentity");
    assert_eq!(me.account(), Some(DEFAULT_ACCOUNT));

    let other = connector.verified_session(&spec("222222222222", true)).await.expect("assumed into 222222222222");
    let who = aws_sdk_sts::Client::new(&other.config).get_caller_identity().send().await.unwrap();
    assert_eq!(who.account(), Some("222222222222"));
    assert!(who.arn().unwrap_or_default().contains("assumed-role/crosslink"), "{:?}", who.arn());

    // The ambient credentials are not account 222222222222: the check must catch it.
    let err = connector.verified_session(&spec("222222222222", false)).await.unwrap_err();
    assert!(matches!(err, SessionError::WrongAccount { ref actual, .. } if actual == DEFAULT_ACCOUNT), "{err}");
}
