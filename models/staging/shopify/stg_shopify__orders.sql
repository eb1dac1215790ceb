with

source as (
    select * from {{ source('raw_shopify', 'orders') }}
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
        id as order_id,
        customer_id as shopify_customer_id,
        name as order_number,
        email_hash,
        phone_hash,
        financial_status,
        fulfillment_status,
        currency,
        subtotal_price::numeric(12,2) as subtotal_price,
        coalesce(total_discounts, 0)::numeric(12,2) as total_discounts,
        coalesce(total_shipping_price, 0)::numeric(12,2) as total_shipping_price,
        coalesce(total_tax, 0)::numeric(12,2) as total_tax,
        total_price::numeric(12,2) as total_price,
        nullif(trim(discount_codes), '') as discount_codes,
        source_name,
        landing_site,
        referring_site,
        tags,
        coalesce(tags ilike '%subscription%' or source_name = 'subscription_contract', false)
            as is_subscription_order,
        cancelled_at is not null or financial_status = 'voided' as is_cancelled,
        shipping_city,
        shipping_province_code,
        shipping_country_code,
        created_at as ordered_at,
        processed_at,
        cancelled_at,
        updated_at,
        _loaded_at
    from latest
    where not coalesce(test, false)
)

select * from final
