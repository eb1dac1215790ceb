{#-
    Tables that models read but Python assets produce. On a fresh warehouse they do not exist
    yet; create them empty (same columns as their producers write) so the first build succeeds.
    Producers own their contents; these statements never touch an existing table.
-#}
{% macro ensure_external_tables() %}
    create schema if not exists ml;
    create table if not exists ml.churn_scores (
        customer_id         text primary key,
        scored_at           timestamptz,
        churn_probability   double precision,
        churn_risk_score    integer,
        risk_band           text,
        top_drivers         jsonb,
        early_warnings      jsonb,
        recommended_action  text,
        value_at_stake      numeric(12,2),
        model_version       text
    );
    create schema if not exists segments;
    create table if not exists segments.membership_changes (
        segment      text not null,
        customer_id  text not null,
        change       text not null,
        changed_at   timestamptz not null,
        run_id       text
    );
    create schema if not exists pii;
    create table if not exists pii.blocked_values (
        pii_type     text not null,
        value_hash   text not null,
        rule         text not null,
        created_at   timestamptz not null default now(),
        primary key (pii_type, value_hash)
    );
{% endmacro %}
