with

source as (
    select * from {{ source('ml', 'churn_scores') }}
),

final as (
    select
        customer_id,
        churn_probability,
        churn_risk_score,
        risk_band,
        top_drivers,
        early_warnings,
        recommended_action,
        value_at_stake::numeric(12,2) as churn_value_at_stake,
        model_version as churn_model_version,
        scored_at as churn_scored_at
    from source
)

select * from final
