with

source as (
    select * from {{ source('raw_shopify', 'order_lines') }}
),

latest as (
    -- the latest version of each record. distinct on, not row_number() = 1: the planner
    -- estimates one row per id for it, but guesses 0.5% of rows for a rank filter and then
    -- picks nested loops for every join and test reading this view
    select distinct on (id)
        *
    from source
    order by id, updated_at desc nulls last, _loaded_at desc
),

final as (
    select
        id as order_line_id,
        order_id,
        product_id,
        variant_id,
        sku,
        title as product_title,
        quantity,
        price::numeric(12,2) as unit_price,
        coalesce(total_discount, 0)::numeric(12,2) as total_discount,
        (price * quantity - coalesce(total_discount, 0))::numeric(12,2) as line_net_amount,
        updated_at,
        _loaded_at
    from latest
)

select * from final
