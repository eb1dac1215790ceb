with

source as (
    select * from {{ source('raw_shopify', 'order_lines') }}
),

latest as (
    select
        *,
        row_number() over (
            partition by id order by updated_at desc nulls last, _loaded_at desc
        ) as version_rank
    from source
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
        updated_at
    from latest
    where version_rank = 1
)

select * from final
