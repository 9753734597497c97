//! Customers: `GetCustomer`, `UpsertCustomers` (the import, written in chunks) and `SetOptOut`.

use pcn_activities::phone_vault::PhoneVault;
use std::collections::HashMap;

use pcn_activities::audit::AuditEntry;
use pcn_activities::{attempts, consent, customers, notifications, qualify, sweep};
use pcn_proto::v1 as pb;
use pcn_workflows::customer::Customer;
use pcn_workflows::domain::{CustomerId, DomainError, YearMonth};
use serde_json::json;
use sqlx::Row as _;
use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status, Streaming};

use super::auth::Role;
use super::convert::{self, opt_dec, opt_ts, ts};
use super::service::{Control, customer_of, month_of, reason_of};
use super::{db_error, invalid, read_error};

impl Control {
    pub(super) async fn get_customer_impl(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::GetCustomerResponse>, Status> {
        self.caller(&request, Role::Viewer, "GetCustomer")?;
        let r = request.into_inner();
        let customer = customer_of(&r.customer_id)?;
        let month = if r.month.is_empty() {
            None
        } else {
            Some(month_of(&r.month)?)
        };
        self.customer_detail(&customer, month)
            .await
            .map(Response::new)
    }

    pub(super) async fn upsert_customers_impl(
        &self,
        request: Request<Streaming<pb::CustomerRow>>,
    ) -> Result<Response<pb::UpsertCustomersResponse>, Status> {
        let caller = self.caller(&request, Role::Admin, "UpsertCustomers")?;
        let mut stream = request.into_inner();
        let actor = caller.actor();
        let mut import = Import::default();
        let mut index: u64 = 0;
        while let Some(row) = stream.next().await {
            let row = row?;
            import.add(index, &row);
            index += 1;
            if import.valid.len() >= IMPORT_CHUNK {
                import
                    .flush(&self.state.pool, &self.state.phones, &actor)
                    .await?;
            }
        }
        import
            .flush(&self.state.pool, &self.state.phones, &actor)
            .await?;
        let response = import.response(index);
        self.audit(AuditEntry {
            actor: caller.actor(),
            action: "CUSTOMERS_IMPORTED",
            subject_type: "customers",
            subject_id: uuid::Uuid::new_v4().to_string(),
            details: json!({
                "received": response.received,
                "upserted": response.upserted,
                "unchanged": response.unchanged,
                "rejected": response.rejected,
            }),
            idempotency_key: None,
        })
        .await?;
        Ok(Response::new(response))
    }

    pub(super) async fn set_opt_out_impl(
        &self,
        request: Request<pb::SetOptOutRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let caller = self.caller(&request, Role::Admin, "SetOptOut")?;
        let r = request.into_inner();
        let customer = customer_of(&r.customer_id)?;
        let reason = reason_of(&r.reason)?;
        if !r.opted_out && reason.is_empty() {
            return Err(invalid(DomainError::new(
                "reason",
                "required to opt a customer back in (say why, e.g. the customer's written consent)",
            )));
        }
        let actor = caller.actor();
        let fact = consent::Fact {
            customer: customer.as_str(),
            source: consent::Source::Admin,
            actor: &actor,
            reason: Some(&reason).filter(|r| !r.is_empty()).map(String::as_str),
            carrier_message_id: None,
            idempotency_key: None,
        };
        let mut tx = self
            .state
            .pool
            .begin()
            .await
            .map_err(|e| db_error("opt-out", e))?;
        let recorded = if r.opted_out {
            consent::opt_out(&mut tx, &fact).await
        } else {
            consent::opt_in(&mut tx, &fact).await
        };
        match recorded {
            Ok(_) => {}
            Err(consent::ConsentError::UnknownCustomer(_)) => {
                return Err(Status::not_found(format!("customer {customer} not found")));
            }
            Err(consent::ConsentError::OptInRefused(what)) => {
                return Err(invalid(DomainError::new(
                    "reason",
                    format!("opting a customer back in needs {what}"),
                )));
            }
            Err(consent::ConsentError::Database(e)) => return Err(db_error("opt-out", e)),
        }
        let row = customers::profile(&mut *tx, &customer)
            .await
            .map_err(|e| db_error("opt-out", e))?
            .ok_or_else(|| Status::not_found(format!("customer {customer} not found")))?;
        tx.commit().await.map_err(|e| db_error("opt-out", e))?;
        Ok(Response::new(convert::customer(&row)))
    }

    async fn customer_detail(
        &self,
        customer: &CustomerId,
        month: Option<YearMonth>,
    ) -> Result<pb::GetCustomerResponse, Status> {
        let pool = &self.state.pool;
        let profile = customers::profile(pool, customer)
            .await
            .map_err(|e| db_error("reading the customer", e))?
            .ok_or_else(|| Status::not_found(format!("customer {customer} not found")))?;
        let checks_month = match month {
            Some(m) => Some(m.first_day().as_naive()),
            None => sweep::latest_checked_month(pool, customer)
                .await
                .map_err(|e| db_error("reading checks", e))?,
        };
        let (checks, decisions, notifications, attempts, consent) = tokio::try_join!(
            async {
                match checks_month {
                    None => Ok(Vec::new()),
                    Some(first) => sweep::customer_checks(pool, customer, first)
                        .await
                        .map_err(|e| db_error("reading checks", e)),
                }
            },
            async {
                qualify::of_customer(pool, customer)
                    .await
                    .map_err(|e| db_error("reading decisions", e))
            },
            async {
                notifications::of_customer(pool, customer)
                    .await
                    .map_err(|e| db_error("reading notifications", e))
            },
            async {
                attempts::of_customer(pool, customer)
                    .await
                    .map_err(|e| db_error("reading attempts", e))
            },
            async {
                consent::history(pool, customer)
                    .await
                    .map_err(|e| read_error("reading the consent history", e))
            },
        )?;
        let mut by_month: HashMap<chrono::NaiveDate, Vec<pb::SmsAttempt>> = HashMap::new();
        for row in &attempts {
            by_month
                .entry(row.get("month"))
                .or_default()
                .push(pb::SmsAttempt {
                    attempt: u32::try_from(row.get::<i16, _>("attempt")).unwrap_or(0),
                    message_ref: row.get("message_ref"),
                    carrier: row.get("carrier"),
                    carrier_message_id: row
                        .get::<Option<String>, _>("carrier_message_id")
                        .unwrap_or_default(),
                    status: row.get("status"),
                    error_code: row
                        .get::<Option<String>, _>("error_code")
                        .unwrap_or_default(),
                    failure_category: row
                        .get::<Option<String>, _>("failure_category")
                        .unwrap_or_default(),
                    submitted_at: opt_ts(row.get("submitted_at")),
                    finished_at: opt_ts(row.get("finished_at")),
                });
        }
        let notifications = notifications
            .iter()
            .map(|row| {
                let mut n = convert::notification(row);
                n.sms_attempts = by_month
                    .remove(&row.get::<chrono::NaiveDate, _>("month"))
                    .unwrap_or_default();
                n
            })
            .collect();
        Ok(pb::GetCustomerResponse {
            customer: Some(convert::customer(&profile)),
            checks_month: checks_month
                .map(|d| d.format("%Y-%m").to_string())
                .unwrap_or_default(),
            checks: checks
                .iter()
                .map(|row| pb::BalanceCheck {
                    date: row.get::<chrono::NaiveDate, _>("business_date").to_string(),
                    outcome: convert::outcome(row.get::<&str, _>("outcome")).into(),
                    amount: opt_dec(row.get("amount")),
                    threshold: row.get::<rust_decimal::Decimal, _>("threshold").to_string(),
                    detail: row.get::<Option<String>, _>("detail").unwrap_or_default(),
                    fetched_at: ts(row.get("fetched_at")),
                })
                .collect(),
            qualifications: decisions.iter().map(convert::qualification).collect(),
            notifications,
            consent: consent
                .into_iter()
                .map(|e| pb::ConsentEvent {
                    opted_out: e.opted_out,
                    source: e.source.as_str().to_owned(),
                    occurred_at: ts(e.occurred_at),
                    actor: e.actor,
                    reason: e.reason.unwrap_or_default(),
                    carrier_message_id: e.carrier_message_id.unwrap_or_default(),
                })
                .collect(),
        })
    }
}

/// Rows per database write of an import.
const IMPORT_CHUNK: usize = 2_000;
/// Row errors returned in full (all are counted).
const MAX_LISTED_ERRORS: usize = 1_000;

/// An import in progress: validated rows waiting for their write, counts, errors.
#[derive(Default)]
struct Import {
    valid: Vec<(u64, Customer)>,
    /// Which row of this import claimed each customer id and account id.
    customer_rows: HashMap<String, u64>,
    account_owner: HashMap<String, String>,
    upserted: u64,
    written: u64,
    rejected: u64,
    errors: Vec<pb::RowError>,
}

impl Import {
    fn reject(&mut self, index: u64, customer_id: &str, field: &str, message: String) {
        self.rejected += 1;
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(pb::RowError {
                index,
                customer_id: customer_id.chars().take(64).collect(),
                field: field.to_owned(),
                message,
            });
        }
    }

    fn add(&mut self, index: u64, row: &pb::CustomerRow) {
        let parsed = crate::customers::parse_row(
            [
                &row.customer_id,
                &row.account_id,
                &row.first_name,
                &row.phone,
                &row.language,
                &row.monitored_since,
            ],
            row.opted_out,
            row.active.unwrap_or(true),
        );
        let customer = match parsed {
            Ok(c) => c,
            Err(err) => {
                return self.reject(index, &row.customer_id, err.field, err.to_string());
            }
        };
        let id = customer.customer_id.as_str().to_owned();
        if let Some(first) = self.customer_rows.get(&id) {
            let message = format!("customer_id {id} already appears in row {first} of this import");
            return self.reject(index, &id, "customer_id", message);
        }
        let account = customer.account_id.as_str().to_owned();
        if let Some(owner) = self.account_owner.get(&account) {
            let message = format!("account_id is already given to customer {owner} in this import");
            return self.reject(index, &id, "account_id", message);
        }
        self.customer_rows.insert(id.clone(), index);
        self.account_owner.insert(account, id);
        self.valid.push((index, customer));
    }

    /// Writes the valid rows. An account id that belongs to another customer in the database is
    /// a row error, not a failed import.
    async fn flush(
        &mut self,
        pool: &sqlx::PgPool,
        phones: &PhoneVault,
        actor: &str,
    ) -> Result<(), Status> {
        if self.valid.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.valid);
        let accounts: Vec<String> = batch
            .iter()
            .map(|(_, c)| c.account_id.as_str().to_owned())
            .collect();
        let owners = customers::account_owners(pool, &accounts)
            .await
            .map_err(|e| db_error("import", e))?;
        let mut keep = Vec::with_capacity(batch.len());
        for (index, customer) in batch {
            match owners.get(customer.account_id.as_str()) {
                Some(owner) if owner != customer.customer_id.as_str() => {
                    let message = format!("account_id already belongs to customer {owner}");
                    self.reject(index, customer.customer_id.as_str(), "account_id", message);
                }
                _ => keep.push((index, customer)),
            }
        }
        let customers: Vec<Customer> = keep.iter().map(|(_, c)| c.clone()).collect();
        match customers::upsert(pool, phones, &customers, actor).await {
            Ok(upserted) => self.count(&keep, upserted),
            Err(err) => {
                // A concurrent import took an account id between the check and the write: write
                // row by row so only the conflicting rows fail.
                tracing::warn!(error = %format!("{err:#}"), "import chunk failed; writing row by row");
                for (index, customer) in keep {
                    let one = [(index, customer)];
                    match customers::upsert(pool, phones, std::slice::from_ref(&one[0].1), actor)
                        .await
                    {
                        Ok(upserted) => self.count(&one, upserted),
                        Err(_) => self.reject(
                            index,
                            one[0].1.customer_id.as_str(),
                            "account_id",
                            "conflicts with another customer's account_id".to_owned(),
                        ),
                    }
                }
            }
        }
        Ok(())
    }

    /// Counts a written chunk: rows refused for trying to opt a customer back in are row errors
    /// (nothing of them was written).
    fn count(&mut self, rows: &[(u64, Customer)], upserted: pcn_activities::customers::Upserted) {
        for (customer, why) in &upserted.refused {
            let index = rows
                .iter()
                .find(|(_, c)| c.customer_id.as_str() == customer)
                .map_or(0, |(i, _)| *i);
            self.reject(index, customer, "opted_out", why.clone());
        }
        let written = rows.len().saturating_sub(upserted.refused.len());
        self.written += u64::try_from(written).unwrap_or(u64::MAX);
        self.upserted += upserted.touched;
    }

    fn response(self, received: u64) -> pb::UpsertCustomersResponse {
        pb::UpsertCustomersResponse {
            received,
            upserted: self.upserted,
            unchanged: self.written.saturating_sub(self.upserted),
            rejected: self.rejected,
            errors: self.errors,
        }
    }
}
