with

source as (
    select * from {{ source('raw_subscriptions', 'subscriptions') }}
),

latest as (
    -- the latest version of each record. distinct on, not row_number() = 1: the planner
    -- estimates one row per id for it, but guesses 0.5% of rows for a rank filter and then
    -- picks nested loops for every join and test reading this view
    select distinct on (id)
        *
    from source
    order by id, updated_at desc, _loaded_at desc
),

final as (
    select
        id as subscription_id,
        customer_id as subscription_customer_id,
        external_product_id as product_id,
        sku,
        product_title,
        quantity,
        price::numeric(12,2) as unit_price,
        (price * coalesce(quantity, 1))::numeric(12,2) as charge_amount,
        order_interval_unit,
        order_interval_frequency,
        -- the cadence in days, so intervals compare across units
        round(
            order_interval_frequency * case order_interval_unit
                when 'day' then 1
                when 'week' then 7
                when 'month' then 30.4375
            end
        )::integer as interval_days,
        lower(status) as subscription_status,
        cancellation_reason,
        cancellation_reason_comments,
        next_charge_scheduled_at,
        created_at,
        updated_at,
        paused_at,
        cancelled_at
    from latest
)

select * from final
