//! Phone numbers at rest: `rotate-keys` at the seeds' scale, and the cost of sealing per message.
//!
//! - `rotate_keys_rows_per_s`: every customer's number re-sealed from `dev1` to a new key by
//!   `key_rotation::rotate` (batches of 1,000: read, open, seal, index, one UPDATE each), against
//!   the same rows rewritten by one plain `UPDATE` without any cryptography (the database's own
//!   rewrite rate) as the baseline.
//! - `phone_seal_open_us`: one seal + one open + one blind index, in microseconds, against
//!   rendering the message text (the work the SMS step does per message anyway).

use std::time::Instant;

use pcn_activities::keyring::{BlindIndex, Keyring, development};
use pcn_activities::phone_vault::{Context, PhoneVault};
use pcn_workflows::customer::FirstName;
use pcn_workflows::domain::{Language, Phone, YearMonth};

use crate::{Args, Figure, figure, fresh_database, seed_customers};

/// The benchmark's second key.
const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

/// Runs both figures.
pub async fn run(args: &Args, figures: &mut Vec<Figure>) -> anyhow::Result<()> {
    let pool = fresh_database(&args.admin_url, crate::Schema::Partitioned).await?;
    let n = args.customers;
    println!("keys: seeding {n} customers (sealed with dev1)");
    seed_customers(&pool, n).await?;

    let started = Instant::now();
    let rewritten = sqlx::query("UPDATE customers SET phone_key_id = phone_key_id")
        .execute(&pool)
        .await?
        .rows_affected();
    let baseline = rewritten as f64 / started.elapsed().as_secs_f64();
    sqlx::query("VACUUM ANALYZE customers")
        .execute(&pool)
        .await?;

    let vault = PhoneVault::new(
        Keyring::parse(
            "PCN_PHONE_KEYS",
            &format!("{K2},{}", development::PHONE_KEYS),
        )?,
        BlindIndex::parse("PCN_PHONE_INDEX_KEY", development::PHONE_INDEX_KEY)?,
    );
    let started = Instant::now();
    let done = pcn_activities::key_rotation::rotate(&pool, &vault, 1_000, false, "bench").await?;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        done.rows[0] == n,
        "rotate-keys re-sealed {} of {n} customers",
        done.rows[0]
    );
    let ours = done.total() as f64 / secs;
    figures.push(figure(
        "rotate_keys_rows_per_s",
        ours,
        "rows/s",
        baseline,
        ours / baseline,
        &format!("{n} customers in {secs:.1} s; baseline: one plain UPDATE of the same rows"),
    ));

    let phone = Phone::parse("+972501234567")?;
    let name = FirstName::parse("Dana")?;
    let templates = pcn_activities::templates::load_dir(
        std::path::Path::new("templates/sms"),
        Default::default(),
    )?;
    let month = YearMonth::parse("2026-11")?;
    let rounds = 20_000u32;
    let started = Instant::now();
    for i in 0..rounds {
        let reference = format!("sms/2026-11/C{i:010}#1");
        let sealed = vault.seal(&phone, Context::Attempt(&reference));
        let opened = vault.open(&sealed.key_id, &sealed.sealed, Context::Attempt(&reference))?;
        std::hint::black_box((opened, vault.index(&phone)));
    }
    let crypto = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(templates.render(Language::Hebrew, &name, month));
    }
    let render = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    figures.push(figure(
        "phone_seal_open_us",
        crypto,
        "us/message",
        render,
        crypto / render,
        "seal + open + index per message; baseline: rendering the message",
    ));
    pool.close().await;
    Ok(())
}
