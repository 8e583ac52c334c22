//! The AWS adapter: the only crate that links the AWS SDK. It turns accounts into authenticated
//! clients (`session`), and will observe and change AWS for the engine.

pub mod session;

pub use session::{Connector, Session, SessionError};
