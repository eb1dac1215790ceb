with

source as (
    select * from {{ source('raw_shopify', 'refunds') }}
),

latest as (
    select
        *,
        row_number() over (
            partition by id order by processed_at desc nulls last, _loaded_at desc
        ) as version_rank
    from source
),

final as (
    select
        id as refund_id,
        order_id,
        amount::numeric(12,2) as refund_amount,
        note,
        coalesce(restock, false) as is_restocked,
        created_at as refunded_at,
        processed_at
    from latest
    where version_rank = 1
)

select * from final
