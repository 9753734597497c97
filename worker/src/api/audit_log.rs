//! The audit log: `ListAuditEntries`.

use pcn_activities::audit;
use pcn_proto::v1 as pb;
use pcn_workflows::domain::DomainError;
use sqlx::Row as _;
use tonic::{Request, Response, Status};

use super::auth::Role;
use super::convert::{self, ts};
use super::service::Control;
use super::{db_error, invalid};

impl Control {
    pub(super) async fn list_audit_entries_impl(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        self.caller(&request, Role::Viewer, "ListAuditEntries")?;
        let r = request.into_inner();
        let limit = convert::page_size(r.page_size).map_err(invalid)?;
        for (field, value) in [
            ("subject_type", &r.subject_type),
            ("subject_id", &r.subject_id),
            ("actor", &r.actor),
            ("action", &r.action),
        ] {
            if value.len() > 200 {
                return Err(invalid(DomainError::new(field, "at most 200 characters")));
            }
        }
        let query = format!(
            "a|{}|{}|{}|{}",
            r.subject_type, r.subject_id, r.actor, r.action
        );
        let before = convert::read_page_token(&r.page_token, &query)
            .map_err(invalid)?
            .map(|s| s.parse::<i64>())
            .transpose()
            .map_err(|_| invalid(DomainError::new("page_token", "not a page token")))?;
        fn given(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        let filter = audit::Filter {
            subject_type: given(&r.subject_type),
            subject_id: given(&r.subject_id),
            actor: given(&r.actor),
            action: given(&r.action),
            before,
        };
        let rows = audit::list(&self.state.pool, &filter, limit + 1)
            .await
            .map_err(|e| db_error("listing audit entries", e))?;
        let entry = |row: &sqlx::postgres::PgRow| pb::AuditEntry {
            id: u64::try_from(row.get::<i64, _>("id")).unwrap_or(0),
            occurred_at: ts(row.get("occurred_at")),
            actor: row.get("actor"),
            action: row.get("action"),
            subject_type: row.get("subject_type"),
            subject_id: row.get("subject_id"),
            details_json: row.get("details"),
        };
        let mut entries: Vec<pb::AuditEntry> = rows.iter().map(entry).collect();
        let next = if entries.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
            entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            entries.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(Response::new(pb::ListAuditEntriesResponse {
            entries,
            next_page_token: next
                .map(|last| convert::page_token(&query, &last))
                .unwrap_or_default(),
        }))
    }
}
