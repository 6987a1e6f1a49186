//! The SMS port: how sign-in codes reach a phone. The senders are in [`crate::adapters::sms`].

use crate::error::Result;
use crate::model::phone::Phone;
use async_trait::async_trait;

/// One text message to send.
#[derive(Clone, Debug)]
pub struct Sms {
    /// Recipient.
    pub to: Phone,
    /// The text, which contains the code: never log it outside the `log` sender.
    pub text: String,
}

/// Sends text messages.
#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Delivers one SMS to the sender's channel.
    ///
    /// # Errors
    /// [`crate::error::Error::SmsUnavailable`] when the channel failed after its retries.
    async fn send(&self, sms: &Sms) -> Result<()>;
}
