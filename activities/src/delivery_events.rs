//! Reads and flags of `delivery_events` that the SMS steps need (the webhook stores them; see
//! `pcn_worker::webhook`): the evidence for an attempt in doubt, and the FOREIGN flag of a report
//! that names our reference but not the carrier id of that attempt.

use sqlx::PgPool;

/// The carrier ids that stored delivery events of `reference` name (not those already flagged
/// FOREIGN), oldest first.
pub async fn carrier_ids_for(
    pool: &PgPool,
    carrier: &str,
    reference: &str,
) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT carrier_message_id FROM delivery_events
          WHERE message_ref = $1 AND carrier = $2 AND flag IS NULL
          GROUP BY carrier_message_id ORDER BY min(id)",
    )
    .bind(reference)
    .bind(carrier)
    .fetch_all(pool)
    .await?)
}

/// Flags the events of `reference` that name `carrier_message_id` as FOREIGN: kept, never
/// applied.
pub async fn flag_foreign(
    pool: &PgPool,
    carrier: &str,
    reference: &str,
    carrier_message_id: &str,
) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE delivery_events SET flag = 'FOREIGN'
          WHERE message_ref = $1 AND carrier = $2 AND carrier_message_id = $3 AND flag IS NULL",
    )
    .bind(reference)
    .bind(carrier)
    .bind(carrier_message_id)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Once an attempt's carrier id is known, flags the events of its reference that name any other
/// id as FOREIGN (a report that overtook the submission and turned out to be about another
/// message).
pub async fn flag_others_foreign(
    conn: &mut sqlx::PgConnection,
    carrier: &str,
    reference: &str,
    carrier_message_id: &str,
) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE delivery_events SET flag = 'FOREIGN'
          WHERE message_ref = $1 AND carrier = $2 AND carrier_message_id <> $3 AND flag IS NULL",
    )
    .bind(reference)
    .bind(carrier)
    .bind(carrier_message_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// [`flag_others_foreign`] for a batch of `(reference, carrier id)` pairs.
pub async fn flag_others_foreign_many(
    conn: &mut sqlx::PgConnection,
    carrier: &str,
    pairs: &[(String, String)],
) -> anyhow::Result<u64> {
    let (references, ids): (Vec<String>, Vec<String>) = pairs.iter().cloned().unzip();
    Ok(sqlx::query(
        "UPDATE delivery_events e SET flag = 'FOREIGN'
           FROM UNNEST($1::text[], $2::text[]) AS u(message_ref, id)
          WHERE e.message_ref = u.message_ref AND e.carrier = $3
            AND e.carrier_message_id <> u.id AND e.flag IS NULL",
    )
    .bind(&references)
    .bind(&ids)
    .bind(carrier)
    .execute(conn)
    .await?
    .rows_affected())
}
