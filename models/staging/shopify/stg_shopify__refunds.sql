with

source as (
    select * from {{ source('raw_shopify', 'refunds') }}
),

latest as (
    -- the latest version of each record. distinct on, not row_number() = 1: the planner
    -- estimates one row per id for it, but guesses 0.5% of rows for a rank filter and then
    -- picks nested loops for every join and test reading this view
    select distinct on (id)
        *
    from source
    order by id, processed_at desc nulls last, _loaded_at desc
),

final as (
    select
        id as refund_id,
        order_id,
        amount::numeric(12,2) as refund_amount,
        note,
        coalesce(restock, false) as is_restocked,
        created_at as refunded_at,
        processed_at,
        _loaded_at
    from latest
)

select * from final
