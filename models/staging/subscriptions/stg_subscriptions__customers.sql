with

source as (
    select * from {{ source('raw_subscriptions', 'customers') }}
),

latest as (
    select
        *,
        row_number() over (
            partition by id order by updated_at desc, _loaded_at desc
        ) as version_rank
    from source
),

final as (
    select
        id as subscription_customer_id,
        external_customer_id as shopify_customer_id,
        email_hash,
        first_name_hash,
        last_name_hash,
        lower(status) as customer_status,
        created_at,
        updated_at
    from latest
    where version_rank = 1
)

select * from final
