with

source as (
    select * from {{ source('raw_subscriptions', 'events') }}
),

latest as (
    select
        *,
        row_number() over (partition by id order by _loaded_at desc) as version_rank
    from source
),

final as (
    select
        id as subscription_event_id,
        subscription_id,
        customer_id as subscription_customer_id,
        lower(verb) as event_type,
        reason,
        created_at as occurred_at
    from latest
    where version_rank = 1
)

select * from final
