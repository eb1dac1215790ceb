{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        post_hook=[
            "{{ index_on(['customer_id'], unique=true) }}",
            "{{ index_on(['lifecycle_stage']) }}",
            "{{ delete_missing_from_this(ref('customers'), 'customer_id') }}",
            "{{ analyze_this(['customer_id', 'lifecycle_stage', 'subscription_status',
                'lifetime_value', 'orders_count', 'has_replenishable_repeat', 'churn_risk_score',
                'churn_risk_band']) }}",
        ],
    )
}}
{#- The table segments and people query: customers + churn scores (null until scored) + flags.

    Incremental on purpose, although every run recomputes every row: the segment materialized
    views select from this table, and a `table` materialization replaces it with
    `drop ... cascade`, which would drop every segment view on each build. Rows are replaced in
    place (delete+insert by customer_id) and customers that no longer exist (merged clusters)
    are deleted by the post-hook, so the views survive and refresh concurrently. Statistics are
    gathered for the key and the columns the pre-built segments filter on (all ~100 columns
    took 1 s at scale 1, 5 s at scale 10); autovacuum analyzes the rest. -#}

with

customers as (
    select * from {{ ref('customers') }}
),

churn_scores as (
    select * from {{ ref('stg_ml__churn_scores') }}
),

final as (
    select
        customers.*,
        churn_scores.churn_probability,
        churn_scores.churn_risk_score,
        churn_scores.risk_band as churn_risk_band,
        churn_scores.top_drivers as churn_top_drivers,
        churn_scores.early_warnings as churn_early_warnings,
        churn_scores.recommended_action,
        churn_scores.churn_value_at_stake,
        churn_scores.churn_model_version,
        churn_scores.churn_scored_at,
        customers.lifetime_value >= 1000 and customers.subscription_status = 'active'
            as is_vip,
        customers.lifecycle_stage = 'at_risk' and customers.is_subscriber
            as is_at_risk_subscriber,
        customers.subscription_status = 'cancelled' and customers.lifecycle_stage = 'churned'
            and customers.lifetime_value >= 500 as is_churned_high_value,
        -- where the customer's lifetime value ranks among the shop's buyers (0-100): "top 5%
        -- spenders" is >= 95 whatever the shop's prices
        case when customers.is_buyer then round((100 * percent_rank() over (
            partition by customers.is_buyer order by customers.lifetime_value
        ))::numeric, 1) end as lifetime_value_percentile
    from customers
    left join churn_scores on churn_scores.customer_id = customers.customer_id
)

select * from final
