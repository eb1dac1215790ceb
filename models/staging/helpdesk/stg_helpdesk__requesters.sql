with

source as (
    select * from {{ source('raw_helpdesk', 'requesters') }}
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
        id as requester_id,
        case when external_id ~ '^[0-9]{1,18}$' then external_id::bigint end
            as shopify_customer_id,
        email_hash,
        phone_hash,
        first_name_hash,
        last_name_hash,
        created_at,
        updated_at
    from latest
    where version_rank = 1
)

select * from final
