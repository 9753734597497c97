//! System tests: the real Temporal dev server (started by `make test`), a fresh Postgres database
//! per test, the bank simulator over real HTTP, and the real worker.

mod api;
mod bank_tls;
mod codec;
mod consent;
mod crash;
mod exactly_once;
mod failover;
mod fault_logs;
mod least_privilege;
mod month;
mod ops;
mod phones;
mod qualification_rule;
mod replay;
mod report;
mod report_mail;
mod restarts;
mod retention;
mod scale;
mod sms;
mod sms_crash;
mod time_skipping;
mod tls;
mod vocabulary;
mod webhook;
