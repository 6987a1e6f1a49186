//! The product's model: the types every layer speaks in (ids, numbers and codes as people type
//! them, times, accounts, tickets, attachments, agents, profiles, purchases, telemetry, the keys of stored objects, the text of the SMS that
//! carries a code). Plain data and the rules that belong to the data itself; nothing here does I/O.

pub mod account;
pub mod agent;
pub mod attachment;
pub mod audit;
pub mod deletion;
pub mod event;
pub mod ids;
pub mod label;
pub mod language;
pub mod note;
pub mod object;
pub mod phone;
pub mod profile;
pub mod purchase;
pub mod push;
pub mod rating;
pub mod report;
pub mod search;
pub mod sms;
pub mod telemetry;
pub mod text;
pub mod ticket;
pub mod time;
pub mod typed;
