{#-
    One row: the business at a glance and the opportunity sizing, each opportunity with its count,
    dollar value and the rule that defines it (rules read behaviour only, never demo truth):

    subscription conversion  customers with no subscription who re-bought a replenishable product
                             in 2+ separate orders; value = their replenishable re-order revenue
                             over var('opportunity_conversion_months') (average order value x
                             orders per period at their own cadence) x var('opportunity_conversion_uplift')
                             (the share of it a subscription adds: retention + frequency).
    at-risk subscribers      active or paused subscribers in lifecycle stage at_risk (overdue by
                             more than 1.25x their subscription interval); value = their annual
                             subscription value over var('opportunity_at_risk_months').
    win-back                 churned subscribers (cancelled, no order since) with lifetime value
                             >= $500 who cancelled within the last 365 days; value = their
                             subscription value over var('opportunity_winback_months').
-#}

with

customers as (
    select * from {{ ref('customers') }}
),

orders as (
    select * from {{ ref('int_orders_rolled_up') }}
    where not is_cancelled
),

as_of as (
    select * from {{ ref('int_as_of_date') }}
),

revenue as (
    select
        sum(net_revenue) filter (where order_date > as_of.as_of_date - 30) as revenue_30d,
        sum(net_revenue) filter (where order_date > as_of.as_of_date - 90) as revenue_90d,
        sum(net_revenue) filter (where order_date > as_of.as_of_date - 365) as revenue_365d,
        sum(net_revenue) as revenue_all_time
    from orders
    cross join as_of
    where order_date <= as_of.as_of_date
),

opportunities as (
    select
        count(*) filter (where is_prime_for_subscription) as conversion_customers,
        sum(
            average_order_value
            * ({{ var('opportunity_conversion_months') }} * 30.4375)
            / greatest(coalesce(expected_days_between_orders, replenish_days_fallback), 1)
            * {{ var('opportunity_conversion_uplift') }}
        ) filter (where is_prime_for_subscription) as conversion_value,
        count(*) filter (where is_subscriber and lifecycle_stage = 'at_risk')
            as at_risk_subscribers,
        sum(annual_subscription_value * {{ var('opportunity_at_risk_months') }} / 12.0)
            filter (where is_subscriber and lifecycle_stage = 'at_risk') as at_risk_value,
        count(*) filter (where is_winback_candidate) as winback_customers,
        sum(annual_subscription_value * {{ var('opportunity_winback_months') }} / 12.0)
            filter (where is_winback_candidate) as winback_value
    from (
        select
            *,
            60 as replenish_days_fallback,
            subscription_status = 'cancelled' and lifecycle_stage = 'churned'
                and lifetime_value >= 500 and days_since_subscription_cancelled <= 365
                as is_winback_candidate
        from customers
    ) as c
),

health as (
    select
        count(*) as customers,
        count(*) filter (where is_buyer) as buyers,
        count(*) filter (where subscription_status = 'active') as active_subscribers,
        count(*) filter (where subscription_status = 'paused') as paused_subscribers,
        count(*) filter (where lifecycle_stage = 'prospect') as stage_prospect,
        count(*) filter (where lifecycle_stage = 'new') as stage_new,
        count(*) filter (where lifecycle_stage = 'active') as stage_active,
        count(*) filter (where lifecycle_stage = 'at_risk') as stage_at_risk,
        count(*) filter (where lifecycle_stage = 'lapsed') as stage_lapsed,
        count(*) filter (where lifecycle_stage = 'churned') as stage_churned,
        sum(lifetime_value) as lifetime_value_total,
        avg(lifetime_value) filter (where is_buyer) as lifetime_value_avg
    from customers
),

final as (
    select
        as_of.as_of_date,
        health.customers,
        health.buyers,
        health.active_subscribers,
        health.paused_subscribers,
        health.stage_prospect,
        health.stage_new,
        health.stage_active,
        health.stage_at_risk,
        health.stage_lapsed,
        health.stage_churned,
        health.lifetime_value_total::numeric(14,2) as lifetime_value_total,
        health.lifetime_value_avg::numeric(12,2) as lifetime_value_avg,
        coalesce(revenue.revenue_30d, 0)::numeric(14,2) as revenue_30d,
        coalesce(revenue.revenue_90d, 0)::numeric(14,2) as revenue_90d,
        coalesce(revenue.revenue_365d, 0)::numeric(14,2) as revenue_365d,
        coalesce(revenue.revenue_all_time, 0)::numeric(14,2) as revenue_all_time,
        opportunities.conversion_customers,
        coalesce(opportunities.conversion_value, 0)::numeric(14,2) as conversion_value,
        'no subscription; re-bought a replenishable product in 2+ separate orders; value = '
            || 'average order value x re-orders in {{ var("opportunity_conversion_months") }} '
            || 'months at their cadence x {{ var("opportunity_conversion_uplift") }} uplift'
            as conversion_rule,
        opportunities.at_risk_subscribers,
        coalesce(opportunities.at_risk_value, 0)::numeric(14,2) as at_risk_value,
        'active/paused subscription and last order more than 1.25x the subscription interval '
            || 'ago; value = {{ var("opportunity_at_risk_months") }} months of subscription revenue'
            as at_risk_rule,
        opportunities.winback_customers,
        coalesce(opportunities.winback_value, 0)::numeric(14,2) as winback_value,
        'cancelled subscription in the last 365 days, no order since, lifetime value >= $500; '
            || 'value = {{ var("opportunity_winback_months") }} months of their subscription revenue'
            as winback_rule,
        (coalesce(opportunities.conversion_value, 0) + coalesce(opportunities.at_risk_value, 0)
            + coalesce(opportunities.winback_value, 0))::numeric(14,2) as total_opportunity_value
    from as_of
    cross join health
    cross join revenue
    cross join opportunities
)

select * from final
