//! One integration-test binary: the HTTP API end to end, against the embedded SQLite store and
//! against a real PostgreSQL the harness starts.

mod audit;
mod bad_input;
mod browser;
mod faults;
mod lifecycle;
mod log;
mod nats;
mod pages;
mod process;
mod proofs;
mod read_api;
mod signed_in;
mod supervision;
mod support;
mod views;
mod writers;

use saoma_tests::PgServer;
use std::sync::OnceLock;
use support::{spawn_app, Backend};

/// Runs each named scenario against SQLite, and against PostgreSQL.
macro_rules! on_both_stores {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::$module::$name(crate::spawn_app(crate::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(url) = crate::postgres_database().await else { return };
                    crate::$module::$name(crate::spawn_app(crate::Backend::Postgres(url)).await).await;
                }
            )*
        }
    };
}

on_both_stores!(
    lifecycle::every_kind_of_code_completes_its_lifecycle,
    lifecycle::a_second_planned_code_over_the_plan_frequency_is_refused,
    lifecycle::a_revoked_code_frees_its_plan_visit_and_its_scan_is_refused_and_recorded,
    lifecycle::a_code_for_tomorrow_is_not_yet_valid_and_the_refused_scan_is_recorded,
    lifecycle::an_enterprise_rates_once_and_only_after_scanning,
    lifecycle::an_officer_not_on_the_code_cannot_act_on_it,
    bad_input::malformed_and_mistyped_bodies_are_refused,
    bad_input::an_oversized_body_is_refused,
    bad_input::a_bad_credit_code_check_digit_is_refused,
    bad_input::a_201_character_supplement_reason_is_refused,
    bad_input::bad_signatures_replays_and_unknown_or_suspended_officers_are_refused,
    bad_input::admin_endpoints_need_the_admin_token,
    bad_input::an_import_with_one_bad_row_changes_nothing,
    bad_input::a_forged_token_is_refused_and_recorded,
    pages::the_enterprise_page_shows_the_code_in_chinese_and_records_one_scan,
    pages::an_enterprise_rates_through_the_form_once_and_sees_submitted_and_the_result,
    pages::a_rating_form_without_its_tag_or_with_bad_input_changes_nothing,
    pages::forged_and_malformed_tokens_get_an_honest_page_and_a_forged_scan_is_recorded,
    pages::an_expired_revoked_or_early_code_shows_why_and_records_the_refused_scan,
    pages::a_decoded_qr_code_opens_the_right_page,
);

/// Runs each named browser scenario against SQLite: the pages are the same on either store, and
/// the store's part is tested above.
macro_rules! in_browser_on_sqlite {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod browser_on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::$module::$name(crate::spawn_app(crate::Backend::Sqlite).await).await;
                }
            )*
        }
    };
}

in_browser_on_sqlite!(
    browser::an_enterprise_on_a_phone_checks_the_code_rates_once_and_sees_the_result,
    browser::an_expired_code_shows_an_honest_page_on_the_phone,
    browser::a_forged_or_unknown_code_shows_an_honest_page_on_the_phone,
    browser::long_unbroken_text_does_not_widen_the_page_on_a_phone,
);

/// Runs each named browser scenario, which builds its own service, on SQLite.
macro_rules! in_browser_with_own_service {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod browser_with_own_service {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::$module::$name(crate::Backend::Sqlite).await;
                }
            )*
        }
    };
}

in_browser_with_own_service!(
    browser::a_supervisor_follows_a_simulated_warning_to_its_evidence_and_proof,
    browser::an_officer_signs_in_and_finds_an_inspection_by_a_name_fragment,
);

/// Runs each named scenario, which builds its own services on the given backend, on both stores.
macro_rules! on_both_backends {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::$module::$name(crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(url) = crate::postgres_database().await else { return };
                    crate::$module::$name(crate::Backend::Postgres(url)).await;
                }
            )*
        }
    };
}

on_both_backends!(
    writers::two_writers_on_one_store_never_fork_a_stream,
    writers::concurrent_commands_are_grouped_without_losing_or_repeating_any,
    views::live_views_resumed_in_the_middle_equal_a_replay,
    views::the_read_api_answers_from_the_live_views,
    views::one_process_keeps_the_views_and_another_takes_over,
    read_api::history_filters_and_searches_answer_exactly_the_submitted_inspections,
    read_api::the_worst_rated_visits_come_per_agency_officer_region_and_month,
    views::backfilled_years_are_followed_holding_only_the_recent_visits,
    proofs::the_served_proofs_verify_against_the_served_checkpoints,
    audit::tampering_with_the_store_or_a_bundle_is_caught_where_it_happened,
    audit::a_filtered_bundle_proves_its_inspections_whole,
    signed_in::accounts_are_refused_for_bad_input_and_replaced_whole,
    signed_in::wrong_passwords_look_alike_and_lock_the_login_and_the_address,
    signed_in::the_session_cookie_is_strict_and_sign_out_needs_its_form_tag,
    signed_in::an_officer_finds_an_own_inspection_by_a_fragment_of_the_enterprise_name,
    signed_in::another_officers_inspection_is_not_found_and_no_session_goes_to_sign_in,
    signed_in::the_public_rate_limit_answers_429_when_set_low,
    supervision::a_supervisor_sees_the_own_province_follows_a_warning_and_verifies_its_proof,
);

/// A fresh database on the shared test PostgreSQL server (started on first use), or `None`
/// with a loud message when PostgreSQL is not installed and not required.
async fn postgres_database() -> Option<String> {
    static PG: OnceLock<Option<PgServer>> = OnceLock::new();
    // Starting the server blocks for a few seconds: keep it off the async worker.
    tokio::task::spawn_blocking(|| {
        let pg = PG.get_or_init(PgServer::start_or_skip).as_ref()?;
        Some(pg.fresh_database().expect("creating a test database"))
    })
    .await
    .expect("postgres start-up task")
}
